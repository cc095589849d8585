"""How good probabilities are against what happened: pure functions on numpy arrays.

`outcomes` are 1 (it happened) or 0, `probabilities` the predicted chances of a 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from userdesk.churn.features import Floats

EPSILON = 1e-15  # log loss clips the probabilities to [EPSILON, 1 - EPSILON]


def _pair(outcomes: Any, probabilities: Any) -> tuple[Floats, Floats]:
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    if y.shape != p.shape or not len(y):
        raise ValueError(f"need as many outcomes as probabilities, not {len(y)} and {len(p)}")
    return y, p


def _ranks(values: Floats) -> Floats:
    """The ranks of VALUES from 1, ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(values)] - 1
    mean_rank = (first + last) / 2 + 1
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[group]
    return ranks


def roc_auc(outcomes: Any, probabilities: Any) -> float:
    """The chance that a random 1 is ranked above a random 0 (a tie counts half): the
    Mann-Whitney statistic from the ranks."""
    y, p = _pair(outcomes, probabilities)
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        raise ValueError("ROC AUC needs both outcomes")
    rank_sum = float(_ranks(p)[y == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def log_loss(outcomes: Any, probabilities: Any) -> float:
    """The mean negative log-likelihood, the probabilities clipped away from 0 and 1."""
    y, p = _pair(outcomes, probabilities)
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(outcomes: Any, probabilities: Any) -> float:
    """The mean squared difference between probability and outcome."""
    y, p = _pair(outcomes, probabilities)
    return float(np.mean((p - y) ** 2))


def top_decile_lift(outcomes: Any, probabilities: Any) -> float:
    """The rate of 1s among the tenth with the highest probabilities (ceil of a tenth of
    them; ties at the edge broken by order), over the rate in all."""
    y, p = _pair(outcomes, probabilities)
    base = float(y.mean())
    if base == 0:
        raise ValueError("lift needs some 1s")
    size = max(1, -(-len(y) // 10))
    top = np.argsort(-p, kind="mergesort")[:size]
    return float(y[top].mean()) / base


def summary(outcomes: Any, probabilities: Any) -> dict[str, float]:
    """AUC, log loss, Brier score, top-decile lift and the base rate."""
    y, p = _pair(outcomes, probabilities)
    return {
        "auc": roc_auc(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "lift": top_decile_lift(y, p),
        "base_rate": float(y.mean()),
    }
