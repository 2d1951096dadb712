"""Per-kilometre splits of race sessions: how the finish time was spread over the race.

The finish time itself is fixed first (Daniels time at the latent VDOT times the race noise,
`physiology.simulate_latent_fitness`); the splits only distribute it, so every existing value
of the generator stays as it was. Each split's pace relative to the race's mean pace is

    log r_k = slope * (x_k - 0.5)                                  pacing tendency
            + fade * max(0, x_k - onset)^2 / (1 - onset)^2         fatigue late in the race
            - FIRST_KM_BOOST [k = 1]                               a fast start
            + e_k,  e_k = AR(1) noise (rho SPLIT_NOISE_RHO, sd SPLIT_NOISE_SIGMA)

with ``x_k`` the fraction of the race at the split's midpoint. ``slope`` is the athlete's
pacing tendency (even, positive or negative splitter, drawn once per athlete); ``fade`` grows
with the distance, is larger for a less fit athlete (lower latent VDOT) and on a bad day (the
race's own noise ``z``: a race that ends slow mostly loses its time late). Times are rounded to
0.1 s and the last split takes the rest, so the splits sum to the finish time exactly (to the
stored 0.1 s). Heart rate per split rises from a lower first kilometre with cardiac drift and
with effort (a faster split, a higher HR), shifted so the time-weighted mean is the session's
``avg_hr``, and kept within [hr_rest, max_hr]; a race recorded without HR has null split HRs.

Splits come from their own random stream per athlete (`config.SPLITS_STREAM`), so drawing
them cannot move any other generated value.
"""

from __future__ import annotations

import math

import numpy as np

SPLIT_LENGTH_M = 1000.0
FIRST_KM_BOOST = 0.015
SPLIT_NOISE_SIGMA = 0.012
SPLIT_NOISE_RHO = 0.6
# Pacing tendencies: (probability, mean slope, sd slope); slope > 0 is a positive split (slower second half).
PACING_TENDENCIES: dict[str, tuple[float, float, float]] = {
    "even": (0.45, 0.0, 0.01),
    "positive": (0.4, 0.05, 0.015),
    "negative": (0.15, -0.03, 0.01),
}
# Fatigue by race distance (m): (fade amplitude at VDOT 50, onset fraction).
FADE_BY_DISTANCE: dict[float, tuple[float, float]] = {
    5000.0: (0.01, 0.5),
    10000.0: (0.02, 0.5),
    21097.5: (0.04, 0.55),
    42195.0: (0.09, 0.6),
}
FADE_REFERENCE_VDOT = 50.0
BAD_DAY_FADE_GAIN = 0.6  # fade *= exp(gain * z) for the race's noise z
HR_FIRST_KM_DROP_BPM = 8.0
HR_EFFORT_BPM_PER_LOG_PACE = 60.0
HR_NOISE_BPM = 1.5


def draw_pacing_slope(rng: np.random.Generator) -> float:
    """The athlete's pacing tendency: the first draw of its splits stream."""
    kinds = list(PACING_TENDENCIES.values())
    kind = kinds[int(rng.choice(len(kinds), p=[k[0] for k in kinds]))]
    return float(rng.normal(kind[1], kind[2]))


def split_distances_m(distance_m: float) -> np.ndarray:
    """Whole kilometres, then the partial last one (21 097.5 m: 21 x 1000 + 97.5)."""
    full = int(math.floor(distance_m / SPLIT_LENGTH_M + 1e-9))
    rest = round(distance_m - full * SPLIT_LENGTH_M, 1)
    return np.array([SPLIT_LENGTH_M] * full + ([rest] if rest > 0 else []), dtype=float)


def race_splits(
    rng: np.random.Generator,
    pacing_slope: float,
    distance_m: float,
    finish_time_s: int,
    vdot: float,
    race_z: float,
    avg_hr: int | None,
    max_hr: int | None,
    hr_rest: int,
) -> list[dict]:
    """The splits of one race: ``[{"km", "distance_m", "time_s", "avg_hr"}, ...]`` (see the module docstring)."""
    dist = split_distances_m(distance_m)
    n = len(dist)
    x = (np.cumsum(dist) - dist / 2.0) / distance_m
    fade_amp, onset = FADE_BY_DISTANCE.get(float(distance_m), (0.04, 0.55))
    fade = fade_amp * (FADE_REFERENCE_VDOT / vdot) * math.exp(BAD_DAY_FADE_GAIN * race_z)
    noise = np.empty(n)
    draws = rng.standard_normal(n)  # the pace noise, then the HR noise: a fixed draw order per race
    hr_draws = rng.standard_normal(n)
    noise[0] = SPLIT_NOISE_SIGMA * draws[0]
    innovation = SPLIT_NOISE_SIGMA * math.sqrt(1.0 - SPLIT_NOISE_RHO**2)
    for k in range(1, n):
        noise[k] = SPLIT_NOISE_RHO * noise[k - 1] + innovation * draws[k]
    log_r = pacing_slope * (x - 0.5) + fade * np.maximum(0.0, x - onset) ** 2 / (1.0 - onset) ** 2 + noise
    log_r[0] -= FIRST_KM_BOOST
    weight = dist * np.exp(log_r)
    times = np.round(finish_time_s * weight / weight.sum(), 1)
    times[-1] = round(finish_time_s - float(times[:-1].sum()), 1)
    hrs: list[int | None] = [None] * n
    if avg_hr is not None:
        drift = 4.0 + 10.0 * distance_m / 42195.0
        effort = HR_EFFORT_BPM_PER_LOG_PACE * (np.average(log_r, weights=times) - log_r)
        raw = drift * (x - 0.5) + effort + HR_NOISE_BPM * hr_draws
        raw[0] -= HR_FIRST_KM_DROP_BPM
        raw = raw - np.average(raw, weights=times) + avg_hr
        top = max_hr if max_hr is not None else avg_hr + 15
        hrs = np.clip(np.rint(raw), hr_rest, max(top, avg_hr)).astype(int).tolist()
    return [{"km": k + 1, "distance_m": float(dist[k]), "time_s": float(times[k]), "avg_hr": hrs[k]} for k in range(n)]
