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
from userdesk.churn import definition as churn_definition
from userdesk.churn import rules as churn_rules
from userdesk.churn.definition import ChurnDefinition
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
    scored: int  # users judged: in scope (by default, active in the 30 days before)
    dormant: int
    dormant_stayed_quiet: float | None
    transparent: dict[str, float] | None  # metrics.summary (None: one outcome only)
    boosting: dict[str, float] | None  # None: not enough history to train it
    boosting_note: str
    # per model, per level: the users at that level and the share who then churned
    reliability: dict[str, dict[str, tuple[int, float | None]]]
    baseline: dict[str, float] | None = None  # the logistic regression on log-counts
    in_use: str = "transparent"  # the model the product would use: see `verdict`
    verdict: str = ""
    predicts: str = ""  # what is predicted, in words
    outcome: str = "went quiet"  # what a churned user did, in words
    problems: tuple[str, ...] = ()  # why there is nothing to judge, in words


def reliability(
    outcomes: Any, probabilities: Any, cutoffs: tuple[float, float] = churn_rules.DEFAULT_CUTOFFS
) -> dict[str, tuple[int, float | None]]:
    """For each level, how many users the probabilities put there and the share of them
    who went quiet (what the level promises)."""
    levels = np.array(model.levels(np.asarray(probabilities, dtype=np.float64), cutoffs))
    went = np.asarray(outcomes, dtype=np.float64)
    found = {}
    for name in churn_rules.LEVELS:
        at = went[levels == name]
        found[name] = (len(at), float(at.mean()) if len(at) else None)
    return found


def organization(
    db: Session,
    organization_id: int,
    as_of: datetime,
    horizon: timedelta,
    cutoffs: tuple[float, float] = churn_rules.DEFAULT_CUTOFFS,
    churn: ChurnDefinition = churn_definition.DEFAULT,
) -> Backtest:
    """The backtest as of AS_OF with HORIZON, churn as CHURN defines it, the levels cut at
    CUTOFFS: every model trained and calibrated only on outcomes known by the snapshot
    (AS_OF - HORIZON), and judged on the users in scope then."""
    from userdesk.churn import scoring

    at = as_of - horizon
    problems = scoring.readiness(db, organization_id, at)
    types = scoring.event_types(db, organization_id, at)
    judged = boosting.snapshot(db, organization_id, at, SAMPLE, horizon, churn=churn, types=types)
    if churn.scoped:
        active = np.ones(len(judged.churned), dtype=bool)
    else:
        active = (
            np.nan_to_num(judged.columns.days_since_event, nan=np.inf) <= churn_rules.HORIZON_DAYS
        )
    y = judged.churned[active]
    # The transparent model, calibrated on the snapshot one horizon earlier.
    before = boosting.snapshot(
        db, organization_id, at - horizon, boosting.SAMPLE, horizon, churn=churn, types=[]
    )
    calibration = model.fit_calibration(
        model.scores(before.columns).tolist(), [bool(v) for v in before.churned]
    )
    transparent_p = calibration.probabilities(model.scores(judged.columns))[active]
    snapshots = boosting.history(db, organization_id, at, churn=churn, horizon=horizon, types=types)
    trained = boosting.train(snapshots, require_better=False)
    plain = boosting.train_baseline(snapshots)
    chosen, choice = boosting.choose(snapshots)
    both = bool(len(y)) and 0 < y.sum() < len(y)
    if trained is None:
        why = boosting.too_little(snapshots) or "too little history"
        note = f"not trained: {why}"
        boosted = None
    else:
        trained_on = trained.summary["trained_on"]
        note = (
            f"trained on {trained.summary['users']:,} users of the snapshots "
            f"{trained_on[-1][:10]}..{trained_on[0][:10]}, calibrated on "
            f"{trained.summary['calibrated_on'][:10]}"
        )
        boosted = trained.probabilities(judged.columns)[active]
    baseline_p = plain.probabilities(judged.columns)[active] if plain is not None else None
    if not len(y):
        problems = [
            *problems,
            f"Nobody to judge on {at:%Y-%m-%d}: no user in scope then. "
            + churn.sentence(horizon // DAY),
        ]
    elif not both:
        problems = [
            *problems,
            f"All {len(y):,} users in scope on {at:%Y-%m-%d} had the same outcome: "
            "nothing to rank. Send more history, or choose another date or target.",
        ]
    figures = {
        "transparent": metrics.summary(y, transparent_p) if both else None,
        boosting.NAME: metrics.summary(y, boosted) if both and boosted is not None else None,
        boosting.BASELINE: (
            metrics.summary(y, baseline_p) if both and baseline_p is not None else None
        ),
    }
    in_use, verdict = _verdict(chosen, choice, figures)
    dormant = judged.churned[~active]
    return Backtest(
        snapshot=at,
        horizon_days=horizon // DAY,
        scored=int(active.sum()),
        dormant=int((~active).sum()),
        dormant_stayed_quiet=float(dormant.mean()) if len(dormant) else None,
        transparent=figures["transparent"],
        boosting=figures[boosting.NAME],
        boosting_note=note,
        reliability={
            name: reliability(y, p, cutoffs)
            for name, p in (
                ("transparent", transparent_p),
                ("boosting", boosted),
                ("baseline", baseline_p),
            )
            if p is not None and len(y)
        },
        baseline=figures[boosting.BASELINE],
        in_use=in_use,
        verdict=verdict,
        predicts=churn.sentence(horizon // DAY),
        outcome=churn.outcome,
        problems=tuple(problems),
    )


def _verdict(
    chosen: boosting.Booster | None,
    choice: dict[str, Any],
    figures: dict[str, dict[str, float] | None],
) -> tuple[str, str]:
    """The model the product uses and why, in words: the one chosen on the latest
    snapshot before the backtest, unless it does not beat the baseline on the backtest
    itself, which the product then says and uses the baseline."""
    name = chosen.name if chosen is not None else "transparent"
    ours, theirs = figures.get(name), figures.get(boosting.BASELINE)
    if ours is None or theirs is None:
        return name, f"In use: {name} ({choice.get('why', 'chosen before the backtest')})."
    if name != boosting.BASELINE and ours["log_loss"] >= theirs["log_loss"]:
        return boosting.BASELINE, (
            f"The model chosen ({name}, log loss {ours['log_loss']:.4f}) does not beat the "
            f"logistic baseline on this backtest ({theirs['log_loss']:.4f}): the baseline "
            "is used."
        )
    if name == boosting.BASELINE:
        return (
            name,
            "In use: the logistic baseline, the best before the backtest "
            f"({choice.get('why', '')}).",
        )
    return name, (
        f"In use: {name}, which beats the logistic baseline on this backtest (log loss "
        f"{ours['log_loss']:.4f} vs {theirs['log_loss']:.4f}, AUC {ours['auc']:.4f} vs "
        f"{theirs['auc']:.4f})."
    )


def rows(found: dict[str, dict[str, float] | None]) -> list[list[Any]]:
    """The table's rows: a model, then its figures (blank when none)."""
    names = ("auc", "log_loss", "brier", "lift", "base_rate")
    return [
        [label, *(f"{figures[n]:.4f}" if figures else "-" for n in names)]
        for label, figures in found.items()
    ]
