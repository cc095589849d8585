"""The churn score: a transparent model that needs no labelled history.

Risk rises with the days since the last event, falls with recent activity, regular weeks
and a rising trend; a user who never accepted the invitation or never confirmed their
email is at more risk. Each term's contribution, against a steady user's, gives the
reasons in words. The raw score is calibrated on the organization's own past (a backtest
30 days back, see scoring.calibrate) so that the probability means what it says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from userdesk.churn.features import FeatureColumns, Features, Floats
from userdesk.churn.rules import DEFAULT_CUTOFFS, LEVELS

# weight, and the value of a steady user (active weekly, a few events a week, flat trend)
WEIGHTS = {
    "recency": (1.3, 2.0),  # days since the last event, in weeks, capped at 9
    "frequency": (-0.9, math.log1p(12)),  # log(1 + events in 28 days)
    "trend": (-0.8, 0.0),
    "regularity": (-1.5, 0.75),  # share of the last 12 weeks with an event
    "not_accepted": (1.5, 0.0),
    "not_verified": (0.5, 0.0),
}
STEADY_LOG_ODDS = -2.2  # a steady user: about 1 in 10
REASON_FROM = 0.15  # the push on the log-odds from which a term is a reason
# The features the reasons' words tell of (`_said`'s arguments after the term), in order.
FACTS = ("days_since_event", "days_since_login", "events_28", "trend", "active_week_share")


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: probability = sigmoid(a * score + b), fitted on a backtest."""

    a: float = 1.0
    b: float = 0.0

    def probability(self, score: float) -> float:
        return sigmoid(self.a * score + self.b)

    def probabilities(self, scores: Floats) -> Floats:
        z = np.clip(self.a * scores + self.b, -500.0, 500.0)
        result: Floats = 1.0 / (1.0 + np.exp(-z))
        return result


@dataclass(frozen=True)
class Prediction:
    probability: float
    level: str
    reasons: list[str]


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


def values(f: Features | FeatureColumns) -> dict[str, Any]:
    """The terms of the score, of one user (numbers) or of many (arrays)."""
    quiet = np.asarray(f.days_since_event, dtype=np.float64)  # None and NaN: never
    return {
        "recency": np.fmin(quiet / 7, 9.0),  # fmin takes 9 over NaN
        "frequency": np.log1p(np.asarray(f.events_28, dtype=np.float64)),
        "trend": np.asarray(f.trend, dtype=np.float64),
        "regularity": np.asarray(f.active_week_share, dtype=np.float64),
        "not_accepted": 1.0 - np.asarray(f.accepted, dtype=np.float64),
        "not_verified": 1.0 - np.asarray(f.verified, dtype=np.float64),
    }


def _pushes(f: Features | FeatureColumns) -> dict[str, Any]:
    return {name: WEIGHTS[name][0] * (v - WEIGHTS[name][1]) for name, v in values(f).items()}


def contributions(f: Features) -> dict[str, float]:
    """Each term's push on the score, against a steady user's."""
    return {name: float(push) for name, push in _pushes(f).items()}


def score(f: Features) -> float:
    """The raw score: log-odds of churning, before calibration."""
    return STEADY_LOG_ODDS + sum(contributions(f).values())


def scores(columns: FeatureColumns) -> Floats:
    """The raw scores of many users."""
    total: Floats = STEADY_LOG_ODDS + sum(_pushes(columns).values())
    return total


def level(probability: float, cutoffs: tuple[float, float] = DEFAULT_CUTOFFS) -> str:
    medium, high = cutoffs
    return "high" if probability >= high else "medium" if probability >= medium else "low"


def levels(probabilities: Floats, cutoffs: tuple[float, float] = DEFAULT_CUTOFFS) -> list[str]:
    """The level of each probability, as `level` gives it."""
    medium, high = cutoffs
    rank = (probabilities >= medium).astype(np.int8) + (probabilities >= high)
    return [LEVELS[r] for r in rank.tolist()]


def reasons(f: Features, limit: int = 3) -> list[str]:
    """The terms that push the risk up most, in words."""
    return _reasons(contributions(f), f, limit)


def _reasons(pushes: dict[str, float], f: Features, limit: int = 3) -> list[str]:
    ranked = sorted(
        (name for name, c in pushes.items() if c > REASON_FROM),
        key=pushes.__getitem__,
        reverse=True,
    )
    return [_words(name, f) for name in ranked[:limit]]


def _words(name: str, f: Features) -> str:
    return _said(
        name, f.days_since_event, f.days_since_login, f.events_28, f.trend, f.active_week_share
    )


def _said(
    name: str,
    quiet_days: float | None,
    days_since_login: float | None,
    events_28: float,
    trend: float,
    active_week_share: float,
) -> str:
    """The reason NAME in words (no event ever: QUIET_DAYS None or NaN)."""
    if name == "recency":
        if quiet_days is None or quiet_days != quiet_days:
            return "No activity ever recorded"
        if days_since_login is not None and days_since_login >= quiet_days:  # NaN: False
            return f"No sign-in for {int(days_since_login)} days"
        return f"No activity for {int(quiet_days)} days"
    if name == "frequency":
        n = int(events_28)
        return f"Only {n} event{'s' if n != 1 else ''} in the last 28 days"
    if name == "trend":
        return f"Activity down {round(-trend * 100)}% vs the previous month"
    if name == "regularity":
        weeks = round(active_week_share * 12)
        return f"Active in {weeks} of the last 12 weeks"
    if name == "not_accepted":
        return "Never accepted the invitation"
    return "Email address not confirmed"


def predict(
    f: Features, calibration: Calibration, cutoffs: tuple[float, float] = DEFAULT_CUTOFFS
) -> Prediction:
    """The calibrated probability, its level, and (above low) the reasons in words."""
    pushes = contributions(f)
    probability = calibration.probability(STEADY_LOG_ODDS + sum(pushes.values()))
    found = level(probability, cutoffs)
    return Prediction(probability, found, _reasons(pushes, f) if found != "low" else [])


@dataclass(frozen=True)
class Predictions:
    """`Prediction`s of many users, a list per field."""

    probabilities: list[float]
    levels: list[str]
    reasons: list[list[str]]


def predict_all(
    columns: FeatureColumns,
    calibration: Calibration,
    cutoffs: tuple[float, float] = DEFAULT_CUTOFFS,
) -> Predictions:
    """`predict` for many users at once: the arithmetic on arrays, the words only for
    users above low."""
    pushes = _pushes(columns)
    names = list(pushes)
    table = np.column_stack([np.broadcast_to(pushes[n], (len(columns),)) for n in names])
    probabilities = calibration.probabilities(STEADY_LOG_ODDS + table.sum(axis=1))
    found = levels(probabilities, cutoffs)
    reasons: list[list[str]] = [[] for _ in found]
    above = np.flatnonzero(probabilities >= cutoffs[0])  # not low, as `levels` says
    pushed = table[above]
    ranked = np.argsort(-pushed, axis=1, kind="stable")[:, :3]
    strong = np.take_along_axis(pushed, ranked, axis=1) > REASON_FROM
    # The words term by term, into each user's slots (the strong first: ranked descending).
    slots = np.full(ranked.shape, None, dtype=object)
    for k in np.unique(ranked[strong]).tolist():
        users, slot = np.nonzero((ranked == k) & strong)
        facts = [getattr(columns, n)[above[users]].tolist() for n in FACTS]
        said = [_said(names[k], *fact) for fact in zip(*facts, strict=True)]
        slots[users, slot] = np.array(said, dtype=object)
    for i, said in zip(above.tolist(), slots.tolist(), strict=True):
        reasons[i] = [words for words in said if words is not None]
    return Predictions(probabilities.tolist(), found, reasons)


def fit_calibration(scores: list[float], churned: list[bool], rounds: int = 50) -> Calibration:
    """Platt scaling: a logistic regression of the outcome on the score, with Platt's
    smoothed targets and a weak pull towards no change (so that outcomes the score
    separates perfectly do not send it to infinity), by Newton's method with a line
    search on the standardized score. The identity if the pairs cannot support a fit
    (too few, or all one outcome)."""
    positives = sum(churned)
    negatives = len(churned) - positives
    if len(scores) < 50 or positives in (0, len(churned)):
        return Calibration()
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((x - mean) ** 2 for x in scores) / len(scores)) or 1.0
    z = [(x - mean) / spread for x in scores]
    high, low = (positives + 1) / (positives + 2), 1 / (negatives + 2)
    targets = [high if y else low for y in churned]
    ridge = len(scores) / 1000  # the pull, worth a thousandth of the data

    def loss(a: float, b: float) -> float:
        total = ridge * (a * a + b * b) / 2
        for x, t in zip(z, targets, strict=True):
            m = a * x + b
            total += math.log1p(math.exp(-abs(m))) + max(m, 0) - t * m
        return total

    a = b = 0.0
    current = loss(a, b)
    for _ in range(rounds):
        ga, gb, haa, hab, hbb = ridge * a, ridge * b, ridge, 0.0, ridge
        for x, t in zip(z, targets, strict=True):
            p = sigmoid(a * x + b)
            w = p * (1 - p)
            ga += (p - t) * x
            gb += p - t
            haa += w * x * x
            hab += w * x
            hbb += w
        det = haa * hbb - hab * hab
        step_a, step_b = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        scale = 1.0
        while scale > 1e-4 and loss(a - scale * step_a, b - scale * step_b) > current:
            scale /= 2
        a, b = a - scale * step_a, b - scale * step_b
        previous, current = current, loss(a, b)
        if previous - current < 1e-9 * len(z):
            break
    return Calibration(a / spread, b - a * mean / spread)
