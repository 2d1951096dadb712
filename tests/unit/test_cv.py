"""Time-series folds (training/cv.py): no fold learns from the future, days are never split,
every late race is validated exactly once."""

import numpy as np
import pytest

from athlete_platform.training.cv import time_series_folds


def test_expanding_folds_never_look_ahead_and_cover_the_later_days_once():
    rng = np.random.default_rng(0)
    days = np.datetime64("2024-01-01") + rng.integers(0, 300, 900).astype("timedelta64[D]")
    folds = time_series_folds(days, folds=4, min_train_fraction=0.4)
    assert len(folds) == 4
    validated = np.concatenate([f.validate for f in folds])
    assert len(validated) == len(set(validated.tolist()))  # each row validated at most once
    for fold in folds:
        assert days[fold.train].max() < days[fold.validate].min() == fold.cutoff_day
        assert not set(days[fold.train].tolist()) & set(days[fold.validate].tolist())  # no day split
    assert [len(f.train) for f in folds] == sorted(len(f.train) for f in folds)  # expanding
    first_cutoff = folds[0].cutoff_day
    assert set(validated.tolist()) == set(np.flatnonzero(days >= first_cutoff).tolist())


def test_too_little_history_and_bad_arguments_are_errors():
    days = np.array(["2024-01-01", "2024-01-02", "2024-01-02"], dtype="datetime64[D]")
    with pytest.raises(ValueError, match="2 race days cannot make 4 folds"):
        time_series_folds(days, folds=4)
    with pytest.raises(ValueError, match="min_train_fraction in"):
        time_series_folds(days, folds=1, min_train_fraction=1.0)
