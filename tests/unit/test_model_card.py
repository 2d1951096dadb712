"""The model card (training/model_card.py): its numbers by hand, and the page in a real browser."""

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from athlete_platform.training import model_card as mc
from tests import browser


def races(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    distance = rng.choice([5000.0, 10000.0, 21097.5, 42195.0], n)
    actual = distance / 1000 * rng.uniform(240, 330, n)
    predicted = actual * np.exp(rng.normal(0, 0.03, n))
    return pd.DataFrame(
        {
            "distance_m": distance,
            "actual_s": actual,
            "predicted_s": predicted,
            # a few ranges that miss their own point (a biased interval model): still drawable
            "p10_s": predicted * np.where(np.arange(n) % 17 == 0, 1.01, 0.96),
            "p90_s": predicted * 1.04,
            "riegel_s": np.where(rng.random(n) < 0.7, actual * np.exp(rng.normal(0, 0.05, n)), np.nan),
            "races_before": np.where(np.arange(n) % 50 == 0, np.nan, rng.integers(0, 9, n)),
            "ctl": np.where(rng.random(n) < 0.95, rng.uniform(10, 90, n), np.nan),
        }
    )


def test_breakdown_by_hand():
    frame = pd.DataFrame(
        {
            "distance_m": [5000.0, 5000.0, 10000.0],
            "actual_s": [1000.0, 1000.0, 2000.0],
            "predicted_s": [1100.0, 950.0, 2000.0],  # errors 10 %, 5 %, 0 %
            "p10_s": [1050.0, 900.0, 1900.0],  # the first misses (1000 < 1050)
            "p90_s": [1200.0, 1050.0, 2100.0],
            "riegel_s": [1200.0, np.nan, 2200.0],  # 20 %, none, 10 %
            "races_before": [0, 4, 7],
            "ctl": [20.0, 55.0, np.nan],
        }
    )
    by_distance = mc.tables(frame)["By race distance"]
    assert by_distance.index.tolist() == ["5K", "10K"]
    five = by_distance.loc["5K"]
    assert (five["races"], five["riegel_races"]) == (2, 1)
    assert five["model_mape"] == pytest.approx(0.075) and five["riegel_mape"] == pytest.approx(0.2)
    assert five["p10_p90_coverage"] == pytest.approx(0.5)
    assert mc.tables(frame)["By racing experience"].index.tolist() == ["first race", "3-5 before", "6+ before"]
    assert mc.tables(frame)["By fitness (CTL on race day)"].index.tolist() == ["CTL < 30", "CTL 50-70", "CTL unknown"]


def test_the_page_renders_in_a_browser_with_its_tables_and_plots(tmp_path):
    frame = races()
    page = mc.render("uc_athlete_data.ml.time_estimator", "7", frame, {"MAPE": 0.031, "Riegel MAPE": 0.042})
    assert page.count("<table>") == 3
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == 2
    for png in pngs:  # each plot is a real, non-blank image
        with Image.open(io.BytesIO(base64.b64decode(png))) as image:
            assert image.width > 300 and len(image.convert("RGB").getcolors(1 << 20)) > 20
    experience = mc.tables(frame)["By racing experience"]
    assert experience.index[-1] == "unknown" and experience["races"].sum() == len(frame)
    assert "Model card: uc_athlete_data.ml.time_estimator v7" in page and "MAPE 3.10%" in page
    path = tmp_path / "card.html"
    path.write_text(page)
    shown = browser.render(path, tmp_path / "card.png")
    assert shown.console == [] and shown.distinct_colours > 50


def test_missing_columns_and_no_races_are_errors_that_say_so():
    with pytest.raises(ValueError, match=r"lacks \['ctl'\]"):
        mc.render("m", "1", races().drop(columns="ctl"), {})
    with pytest.raises(ValueError, match="no held-out races"):
        mc.render("m", "1", races().iloc[0:0], {})
