"""The gradient boosting model, trained on the organization's own past snapshots.

Once there is enough history, it replaces the transparent score. It learns from several
past snapshots (the features as of AS_OF - 30 days - k * 14 days, from strictly earlier
events, against who went quiet in the 30 days after each), all of whose outcomes are
known before AS_OF: it never trains on the future. It is trained on the older snapshots
and calibrated (Platt scaling of its log-odds) on the latest one, where it must also beat
the transparent model's log loss to be used. Per-prediction contributions: the features
of each of the transparent model's terms replaced by their medians among the training
users who stayed (as the transparent model compares with a steady user), the change in
log-odds; the largest give the reasons, in the transparent model's words.

The model lives in memory for the run that trained it (jobs run in steps); a process that
did not train it trains it again, the same way, from the same data.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from userdesk.churn import metrics, model
from userdesk.churn.features import DAY, FeatureColumns, Floats
from userdesk.churn.models import ChurnRun
from userdesk.users.models import User

if TYPE_CHECKING:  # scikit-learn is imported when a model is trained: a second and 100 MB
    from sklearn.ensemble import HistGradientBoostingClassifier

NAME = "boosting-v1"
SNAPSHOTS = 4  # as_of - 30 days - k * SPACING, k = 0..SNAPSHOTS-1
SPACING = timedelta(days=14)
SAMPLE = 10_000  # users per snapshot, at most
MIN_USERS = 2_000  # labelled users (all snapshots) before boosting is tried
MIN_CLASS = 100  # of each outcome
SEED = 11

FEATURES = (
    "days_since_event",
    "days_since_login",
    "events_7",
    "events_28",
    "events_90",
    "trend",
    "active_week_share",
    "tenure_days",
    "verified",
    "validated",
    "accepted",
)
# a feature -> the transparent model's term whose words say it (none: not said)
TERMS = {
    "days_since_event": "recency",
    "days_since_login": "recency",
    "events_7": "frequency",
    "events_28": "frequency",
    "events_90": "frequency",
    "trend": "trend",
    "active_week_share": "regularity",
    "accepted": "not_accepted",
    "verified": "not_verified",
}
SAID = tuple(dict.fromkeys(TERMS.values()))
TERM_FEATURES = {
    term: [FEATURES.index(f) for f, said in TERMS.items() if said == term] for term in SAID
}


def matrix(columns: FeatureColumns) -> Floats:
    """The features as a table, a row per user (NaN: never; the trees handle it)."""
    table: Floats = np.column_stack(
        [np.broadcast_to(getattr(columns, name), (len(columns),)) for name in FEATURES]
    ).astype(np.float64)
    return table


@dataclass(frozen=True)
class Snapshot:
    """A past snapshot: the features of a sample of users and who then went quiet."""

    at: datetime
    columns: FeatureColumns
    churned: Floats  # 1.0: no sign-in and no event in the HORIZON after


def snapshot(
    db: Session,
    organization_id: int,
    at: datetime,
    sample: int = SAMPLE,
    horizon: timedelta = model.HORIZON_DAYS * DAY,
) -> Snapshot:
    """The features as of AT (from strictly earlier events, with scoring's statement)
    of a sample of users, and whether they went quiet in the HORIZON after."""
    from userdesk.churn import scoring  # scoring uses this module

    columns, churned = scoring.labelled(db, organization_id, at, sample=sample, horizon=horizon)
    return Snapshot(at, columns, churned)


def history(db: Session, organization_id: int, as_of: datetime) -> list[Snapshot]:
    """The past snapshots, the latest first; every outcome ends by AS_OF."""
    latest = as_of - model.HORIZON_DAYS * DAY
    return [snapshot(db, organization_id, latest - k * SPACING) for k in range(SNAPSHOTS)]


@dataclass
class Booster:
    """A trained model: trees, their Platt scaling, and the medians of the features of
    the training users who stayed."""

    trees: HistGradientBoostingClassifier
    calibration: model.Calibration
    medians: Floats
    summary: dict[str, Any] = field(default_factory=dict)

    def raw(self, table: Floats) -> Floats:
        """The trees' log-odds, before calibration."""
        with threadpool_limits(1, user_api="openmp"):
            result: Floats = self.trees.decision_function(table)
        return result

    def log_odds(self, table: Floats) -> Floats:
        return self.calibration.a * self.raw(table) + self.calibration.b

    def probabilities(self, columns: FeatureColumns) -> Floats:
        return self.calibration.probabilities(self.raw(matrix(columns)))

    def contributions(self, table: Floats) -> Floats:
        """Each user's change in calibrated log-odds when the features of each term (SAID)
        are replaced by their medians among the users who stayed, a column per term
        (positive: towards churn). By term, not by feature: one evaluation of the trees
        per reason there is words for."""
        base = self.log_odds(table)
        n, width = table.shape
        stacked = np.repeat(table[np.newaxis], len(SAID), axis=0)  # a copy per term
        for k, term in enumerate(SAID):
            for j in TERM_FEATURES[term]:
                stacked[k, :, j] = self.medians[j]
        moved = self.log_odds(stacked.reshape(n * len(SAID), width)).reshape(len(SAID), n)
        pushes: Floats = (base[np.newaxis] - moved).T
        return pushes

    def predict_all(
        self, columns: FeatureColumns, cutoffs: tuple[float, float] = model.DEFAULT_CUTOFFS
    ) -> model.Predictions:
        """Like model.predict_all: probabilities and levels for all, reasons in words
        (from the contributions, by term) for those above low."""
        table = matrix(columns)
        probabilities = self.calibration.probabilities(self.raw(table))
        found = model.levels(probabilities, cutoffs)
        reasons: list[list[str]] = [[] for _ in found]
        above = np.flatnonzero(np.array([name != "low" for name in found], dtype=bool))
        if not len(above):
            return model.Predictions(probabilities.tolist(), found, reasons)
        by_term = self.contributions(table[above])
        ranked = np.argsort(-by_term, axis=1, kind="stable")[:, :3]
        strong = np.take_along_axis(by_term, ranked, axis=1) > model.REASON_FROM
        facts = (
            getattr(columns, n)[above].tolist()
            for n in (
                "days_since_event",
                "days_since_login",
                "events_28",
                "trend",
                "active_week_share",
            )
        )
        for i, top, ok, *fact in zip(
            above.tolist(), ranked.tolist(), strong.tolist(), *facts, strict=True
        ):
            reasons[i] = [
                model._said(SAID[k], *fact) for k, yes in zip(top, ok, strict=True) if yes
            ]
        return model.Predictions(probabilities.tolist(), found, reasons)


def trees() -> HistGradientBoostingClassifier:
    """Few small trees: each user is scored seven times (once, and once per reason term),
    and on the 1 M-user demo 30 trees of 8 leaves lose 0.002 of log loss against 120 of
    15 (0.4667 vs 0.4652 on the latest snapshot) for a quarter of the time."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=0.25,
        max_iter=30,
        max_leaf_nodes=8,
        min_samples_leaf=40,
        l2_regularization=1.0,
        random_state=SEED,
    )


def enough(snapshots: list[Snapshot]) -> bool:
    """Whether the snapshots hold enough labelled users, of each outcome, to learn from."""
    churned = np.concatenate([s.churned for s in snapshots]) if snapshots else np.zeros(0)
    quiet = int(churned.sum())
    return len(churned) >= MIN_USERS and min(quiet, len(churned) - quiet) >= MIN_CLASS


def train(snapshots: list[Snapshot], *, require_better: bool = True) -> Booster | None:
    """Trees on the older snapshots, calibrated on the latest (SNAPSHOTS[0]); None when
    there is not enough history, or (REQUIRE_BETTER) the trees do not beat the
    transparent model's log loss there."""
    if len(snapshots) < 2 or not enough(snapshots):
        return None
    latest, older = snapshots[0], snapshots[1:]
    tables = [matrix(s.columns) for s in older]
    outcomes = np.concatenate([s.churned for s in older])
    quiet = int(latest.churned.sum())
    if not enough(older) or min(quiet, len(latest.churned) - quiet) < MIN_CLASS // 4:
        return None  # the latest snapshot calibrates: it needs some of each outcome
    with threadpool_limits(1, user_api="openmp"):  # shared cores: threads only contend
        fitted = trees().fit(np.vstack(tables), outcomes)
    kept = np.vstack(tables)[outcomes == 0]  # the reference: a user who stayed
    medians = np.nanmedian(kept, axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)  # a feature nobody has: never
    booster = Booster(fitted, model.Calibration(), medians)
    raw = booster.raw(matrix(latest.columns))
    calibration = model.fit_calibration(raw.tolist(), [bool(v) for v in latest.churned])
    booster.calibration = calibration
    ours = metrics.log_loss(latest.churned, booster.probabilities(latest.columns))
    plain = model.scores(latest.columns)
    theirs = metrics.log_loss(
        latest.churned,
        model.fit_calibration(plain.tolist(), [bool(v) for v in latest.churned]).probabilities(
            plain
        ),
    )
    booster.summary = {
        "model": NAME,
        "trained_on": [s.at.isoformat() for s in older],
        "calibrated_on": latest.at.isoformat(),
        "users": len(outcomes),
        "log_loss": ours,
        "transparent_log_loss": theirs,
        "a": calibration.a,
        "b": calibration.b,
    }
    return booster if ours < theirs or not require_better else None


_trained: dict[tuple[int, str], Booster | None] = {}  # a run -> its model (None: transparent)
_lock = threading.Lock()


def for_run(db: Session, run: ChurnRun) -> Booster | None:
    """The model of RUN: trained once per process, None if the transparent model scores
    it (too little history, or the trees do no better)."""
    key = (run.id, f"{run.organization_id}/{run.as_of.timestamp()}")
    with _lock:
        if key in _trained:
            return _trained[key]
    org = run.organization_id
    users = db.scalar(select(func.count()).where(User.organization_id == org))
    few = (users or 0) * (SNAPSHOTS - 1) < MIN_USERS  # not worth reading the history
    booster = None if few else train(history(db, org, run.as_of))
    with _lock:
        if len(_trained) > 16:
            _trained.clear()
        _trained[key] = booster
    return booster
