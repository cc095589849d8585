"""The trees evaluated with numpy (boosting.Forest) say what scikit-learn says: the same
log-odds, and the same contributions as evaluating the whole model once per term."""

from __future__ import annotations

import numpy as np
import pytest

from userdesk.churn import boosting, model
from userdesk.churn.features import PER_TYPE


def _fitted(rng: np.random.Generator, n: int, width: int) -> tuple[np.ndarray, object]:
    table = rng.normal(size=(n, width))
    table[rng.random(size=table.shape) < 0.2] = np.nan  # never seen: the trees send it a way
    signal = np.nan_to_num(table[:, 0]) - np.nan_to_num(table[:, 12]) + np.isnan(table[:, 3])
    churned = (signal + rng.normal(scale=0.5, size=n) > 0).astype(np.float64)
    return table, boosting.trees().fit(table, churned)


def test_the_forest_gives_the_log_odds_of_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    table, fitted = _fitted(rng, 4000, len(boosting.FEATURES) + len(PER_TYPE))
    forest = boosting.Forest.of(fitted)
    assert forest is not None
    fresh = rng.normal(size=(3000, table.shape[1]))
    fresh[rng.random(size=fresh.shape) < 0.3] = np.nan
    assert forest.raw(fresh) == pytest.approx(fitted.decision_function(fresh), abs=1e-9)


def test_contributions_from_the_trees_that_split_on_a_term_equal_a_whole_evaluation() -> None:
    rng = np.random.default_rng(6)
    types = ("post.created",)
    table, fitted = _fitted(rng, 4000, len(boosting.FEATURES) + len(PER_TYPE) * len(types))
    medians = np.nanmedian(table, axis=0)
    medians[2] = np.nan  # a median nobody has: the trees send it the missing way
    fast = boosting.Booster(fitted, model.Calibration(0.7, -0.2), medians, types=types)
    slow = boosting.Booster(
        fitted, model.Calibration(0.7, -0.2), medians, types=types, _forest=False
    )
    assert fast.forest is not None
    assert slow.forest is None
    fast.splits = slow.splits = boosting._splits(fitted)
    got, want = fast.contributions(table), slow.contributions(table)
    assert np.abs(want).max() > 0.1
    assert got == pytest.approx(want, abs=1e-9)
