"""Backtests of the churn models on the organization's own data.

As of AS_OF - HORIZON (the snapshot), the features from strictly earlier events; the
outcome: no sign-in and no event in the HORIZON after it. Users active in the 30 days
before the snapshot are the ones scored (at risk or not); those already dormant are
reported apart. The transparent model is calibrated, and the boosting model trained, on
earlier snapshots whose outcomes were known by the snapshot: neither sees the outcome
it is judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from userdesk.churn import boosting, metrics, model
from userdesk.churn.features import DAY
from userdesk.errors import InvalidInput

SAMPLE = 50_000  # users, at most, in the evaluated snapshot


def parse_horizon(text: str) -> timedelta:
    """'30d' (or '30') as 30 days.

    Raises:
        InvalidInput: not a whole number of days from 1 to 365.
    """
    digits = text.strip().lower().removesuffix("d")
    if not digits.isdigit() or not 1 <= int(digits) <= 365:
        raise InvalidInput(
            "The horizon is a number of days, like 30d.",
            fields={"horizon": f"{text!r} is not a number of days from 1 to 365"},
        )
    return int(digits) * DAY


@dataclass(frozen=True)
class Backtest:
    snapshot: datetime
    horizon_days: int
    scored: int  # users active in the 30 days before the snapshot
    dormant: int
    dormant_stayed_quiet: float | None
    transparent: dict[str, float] | None  # metrics.summary (None: one outcome only)
    boosting: dict[str, float] | None  # None: not enough history to train it
    boosting_note: str
    # per model, per level: the users at that level and the share who then went quiet
    reliability: dict[str, dict[str, tuple[int, float | None]]]


def reliability(
    outcomes: Any, probabilities: Any, cutoffs: tuple[float, float] = model.DEFAULT_CUTOFFS
) -> dict[str, tuple[int, float | None]]:
    """For each level, how many users the probabilities put there and the share of them
    who went quiet (what the level promises)."""
    levels = np.array(model.levels(np.asarray(probabilities, dtype=np.float64), cutoffs))
    went = np.asarray(outcomes, dtype=np.float64)
    found = {}
    for name in model.LEVELS:
        at = went[levels == name]
        found[name] = (len(at), float(at.mean()) if len(at) else None)
    return found


def organization(
    db: Session,
    organization_id: int,
    as_of: datetime,
    horizon: timedelta,
    cutoffs: tuple[float, float] = model.DEFAULT_CUTOFFS,
) -> Backtest:
    """The backtest as of AS_OF with HORIZON, the levels cut at CUTOFFS."""
    at = as_of - horizon
    judged = boosting.snapshot(db, organization_id, at, SAMPLE, horizon)
    active = np.nan_to_num(judged.columns.days_since_event, nan=np.inf) <= model.HORIZON_DAYS
    y = judged.churned[active]
    # The transparent model, calibrated on the snapshot one horizon earlier.
    before = boosting.snapshot(db, organization_id, at - horizon, boosting.SAMPLE, horizon)
    calibration = model.fit_calibration(
        model.scores(before.columns).tolist(), [bool(v) for v in before.churned]
    )
    transparent_p = calibration.probabilities(model.scores(judged.columns))[active]
    trained = boosting.train(boosting.history(db, organization_id, at), require_better=False)
    both = len(y) and 0 < y.sum() < len(y)
    if trained is None:
        note = (
            f"not trained: fewer than {boosting.MIN_USERS:,} labelled users or "
            f"{boosting.MIN_CLASS} of each outcome before {at:%Y-%m-%d}"
        )
        boosted = None
    else:
        trained_on = trained.summary["trained_on"]
        note = (
            f"trained on {trained.summary['users']:,} users of the snapshots "
            f"{trained_on[-1][:10]}..{trained_on[0][:10]}, calibrated on "
            f"{trained.summary['calibrated_on'][:10]}"
        )
        boosted = trained.probabilities(judged.columns)[active]
    dormant = judged.churned[~active]
    return Backtest(
        snapshot=at,
        horizon_days=horizon // DAY,
        scored=int(active.sum()),
        dormant=int((~active).sum()),
        dormant_stayed_quiet=float(dormant.mean()) if len(dormant) else None,
        transparent=metrics.summary(y, transparent_p) if both else None,
        boosting=metrics.summary(y, boosted) if both and boosted is not None else None,
        boosting_note=note,
        reliability={
            name: reliability(y, p, cutoffs)
            for name, p in (("transparent", transparent_p), ("boosting", boosted))
            if p is not None and len(y)
        },
    )


def rows(found: dict[str, dict[str, float] | None]) -> list[list[Any]]:
    """The table's rows: a model, then its figures (blank when none)."""
    names = ("auc", "log_loss", "brier", "lift", "base_rate")
    return [
        [label, *(f"{figures[n]:.4f}" if figures else "-" for n in names)]
        for label, figures in found.items()
    ]
