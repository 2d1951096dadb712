"""Split-conformal prediction intervals (training/intervals.py) on data with known noise."""

import numpy as np
import pytest

from athlete_platform.training import intervals as iv


def test_order_statistics_are_the_split_conformal_ones():
    residuals = np.arange(1.0, 20.0)  # n = 19: (n + 1) * 0.1 = 2, (n + 1) * 0.9 = 18
    offsets = iv.conformal_offsets(residuals)
    assert (offsets.low, offsets.high, offsets.rows) == (2.0, 18.0, 19)
    # n = 25: (n + 1) * 0.1 = 2.6 -> floor 2, (n + 1) * 0.9 = 23.4 -> ceil 24 (not 3 and 23)
    offsets = iv.conformal_offsets(np.arange(1.0, 26.0)[::-1])
    assert (offsets.low, offsets.high) == (2.0, 24.0)
    # 9 rows is the least for 80 %: the 1st and 9th; 8 cannot promise it
    assert iv.min_calibration_rows(0.8) == 9 and iv.min_calibration_rows(0.9) == 19
    assert (iv.conformal_offsets(np.arange(9.0)).low, iv.conformal_offsets(np.arange(9.0)).high) == (0.0, 8.0)
    with pytest.raises(ValueError, match=r"8 calibration residuals .* \(at least 9 are needed\)"):
        iv.conformal_offsets(np.arange(8.0))
    with pytest.raises(ValueError, match="0 calibration residuals"):
        iv.conformal_offsets(np.array([np.nan]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coverage_holds_per_group_when_the_noise_differs_by_group(seed):
    """Two distances with different noise (sd 0.02 and 0.06 in log pace, skewed for the
    second): calibrated per group on about 2,000 races each, 80 % intervals cover 77-83 % of 20,000
    new races of each group; pooled offsets would not (too wide for one, too narrow for the other)."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        groups = rng.choice(["5000", "42195"], size=n)
        noise = np.where(groups == "5000", rng.normal(0, 0.02, n), rng.gamma(4.0, 0.03, n) - 0.12)
        return groups, noise

    cal_groups, cal_residuals = draw(4000)
    offsets = iv.calibrate(cal_residuals, cal_groups)
    assert set(offsets) == {"5000", "42195", iv.POOLED}

    groups, noise = draw(40000)
    predicted = rng.normal(0, 0.1, len(groups))  # whatever the model says; the error is the noise
    actual = predicted + noise
    low, high = iv.interval(predicted, groups, offsets)
    for group in ("5000", "42195"):
        mine = groups == group
        assert 0.77 <= iv.coverage_of(actual[mine], low[mine], high[mine]) <= 0.83, group
    pooled_low, pooled_high = iv.interval(predicted, groups, {iv.POOLED: offsets[iv.POOLED]})
    narrow = groups == "42195"
    assert iv.coverage_of(actual[~narrow], pooled_low[~narrow], pooled_high[~narrow]) > 0.9


def test_a_small_group_uses_the_pooled_offsets():
    residuals = np.concatenate([np.linspace(-0.1, 0.1, 200), np.full(5, 0.5)])
    groups = np.array(["5000"] * 200 + ["21097.5"] * 5)
    offsets = iv.calibrate(residuals, groups)
    assert "21097.5" not in offsets
    low, high = iv.interval(np.zeros(2), np.array(["21097.5", "5000"]), offsets)
    assert (low[0], high[0]) == (offsets[iv.POOLED].low, offsets[iv.POOLED].high)
    assert (low[1], high[1]) == (offsets["5000"].low, offsets["5000"].high)
