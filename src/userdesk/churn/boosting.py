"""The models that learn on the organization's own past snapshots: gradient boosting,
and the logistic baseline it must beat.

Once there is enough history, one of them replaces the transparent score. They learn
from several past snapshots (the features, per event type too, as of AS_OF - horizon -
k * 14 days, from strictly earlier events, against who churned, as the organization
defines it, in the horizon after each), all of whose outcomes are known before AS_OF:
never the future. Each is trained on the older snapshots and calibrated (Platt scaling of
its log-odds) on the latest one; the lowest log loss there, the transparent model's
included, is used (`choose`). Per-prediction contributions: the features of each term (the
transparent model's, and each event type's) replaced by their medians among the training
users who stayed (as the transparent model compares with a steady user), the change in
log-odds; the largest give the reasons in words, an event type's by its name.

The model lives in memory for the run that trained it (jobs run in steps); a process that
did not train it trains it again, the same way, from the same data.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from userdesk.churn import definition as churn_definition
from userdesk.churn import metrics, model
from userdesk.churn import rules as churn_rules
from userdesk.churn.definition import ChurnDefinition
from userdesk.churn.features import DAY, PER_TYPE, FeatureColumns, Floats
from userdesk.churn.models import ChurnRun
from userdesk.users.models import User

if TYPE_CHECKING:  # scikit-learn is imported when a model is trained: a second and 100 MB
    from sklearn.ensemble import HistGradientBoostingClassifier

NAME = "boosting-v1"
BASELINE = "baseline-logistic-v1"  # logistic regression on log-counts per type + tenure
SNAPSHOTS = 4  # as_of - 30 days - k * SPACING, k = 0..SNAPSHOTS-1
SPACING = timedelta(days=14)
SAMPLE = 10_000  # users per snapshot, at most
MIN_USERS = 2_000  # labelled users (all snapshots) before boosting is tried
MIN_CLASS = 100  # of each outcome
SEED = 11
REASON_TYPES = 3  # event types weighed for reasons, at most (as many as reasons shown)

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


def matrix(columns: FeatureColumns, types: tuple[str, ...] = ()) -> Floats:
    """The features as a table, a row per user (NaN: never; the trees handle it): FEATURES,
    then PER_TYPE for each event type of TYPES (absent from COLUMNS: never seen)."""
    table: Floats = np.column_stack(
        [np.broadcast_to(getattr(columns, name), (len(columns),)) for name in FEATURES]
    ).astype(np.float64)
    if not types:
        return table
    per_type = (
        columns.types.table(types)
        if columns.types is not None
        else np.column_stack(
            [
                np.zeros(len(columns)) if f != "days_since" else np.full(len(columns), np.nan)
                for _ in types
                for f in PER_TYPE
            ]
        )
    )
    return np.hstack([table, per_type])


def type_term(name: str) -> str:
    return f"type:{name}"


def type_words(name: str, last_28: float, previous_28: float, days_since: float) -> str:
    """What a user's events of type NAME say about the risk, in words."""
    if last_28 == 0:
        if days_since != days_since:  # NaN: none in the weeks read
            return f"No {name} in 12 weeks"
        return f"No {name} for {int(days_since)} days"
    if previous_28 > last_28:
        fell = round(100 * (previous_28 - last_28) / previous_28)
        return f"{name} fell {fell}% in 4 weeks ({_n(previous_28)} to {_n(last_28)})"
    return f"Only {_n(last_28)} {name} in the last 28 days"


def _n(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


@dataclass(frozen=True)
class Snapshot:
    """A past snapshot: the features of a sample of users and who then went quiet."""

    at: datetime
    columns: FeatureColumns
    churned: Floats  # 1.0: churned in the HORIZON after (by default, went quiet)
    types: tuple[str, ...] = ()  # the event types whose features COLUMNS hold


def snapshot(
    db: Session,
    organization_id: int,
    at: datetime,
    sample: int = SAMPLE,
    horizon: timedelta = churn_rules.HORIZON_DAYS * DAY,
    *,
    churn: ChurnDefinition = churn_definition.DEFAULT,
    types: list[dict[str, Any]] | None = None,
) -> Snapshot:
    """The features as of AT (from strictly earlier events, with scoring's statements)
    of a sample of users, and whether they churned (as CHURN says) in the HORIZON after.
    TYPES: the event types to read (None: those chosen as of AT)."""
    from userdesk.churn import scoring  # scoring uses this module

    chosen = scoring.event_types(db, organization_id, at) if types is None else types
    columns, churned = scoring.labelled(
        db, organization_id, at, sample=sample, horizon=horizon, churn=churn, types=chosen
    )
    return Snapshot(at, columns, churned, tuple(t["name"] for t in chosen))


def history(
    db: Session,
    organization_id: int,
    as_of: datetime,
    *,
    churn: ChurnDefinition = churn_definition.DEFAULT,
    horizon: timedelta = churn_rules.HORIZON_DAYS * DAY,
    types: list[dict[str, Any]] | None = None,
) -> list[Snapshot]:
    """The past snapshots, the latest first; every outcome ends by AS_OF. The event types
    are chosen once, as of the latest snapshot, unless TYPES are given."""
    from userdesk.churn import scoring

    latest = as_of - horizon
    chosen = scoring.event_types(db, organization_id, latest) if types is None else types
    return [
        snapshot(
            db, organization_id, latest - k * SPACING, horizon=horizon, churn=churn, types=chosen
        )
        for k in range(SNAPSHOTS)
    ]


class Forest:
    """The trees of a fitted binary HistGradientBoostingClassifier on numeric features, as
    plain lists evaluated with numpy: the same log-odds as its decision_function, and a
    tree's output again with some features set to constants (the contributions) without
    comparing the other features twice. (A few small trees: a comparison and a choice per
    split over whole columns beat a walk per user, and only the trees that split on a
    term's features are evaluated again for it.)"""

    def __init__(self, fitted: Any) -> None:
        self.base = float(np.ravel(fitted._baseline_prediction)[0])
        self.trees: list[dict[str, list[Any]]] = []
        for predictors in fitted._predictors:
            if len(predictors) != 1:
                raise ValueError("not a binary classifier")
            nodes = predictors[0].nodes
            if nodes["is_categorical"].any():
                raise ValueError("a categorical split")
            self.trees.append(
                {
                    name: nodes[name].tolist()
                    for name in (
                        "feature_idx",
                        "num_threshold",
                        "missing_go_to_left",
                        "left",
                        "right",
                        "is_leaf",
                        "value",
                    )
                }
            )
        self.uses = [
            {f for f, leaf in zip(t["feature_idx"], t["is_leaf"], strict=True) if not leaf}
            for t in self.trees
        ]

    @classmethod
    def of(cls, fitted: Any) -> Forest | None:
        """The trees of FITTED, or None when they are not what Forest reads."""
        try:
            return cls(fitted)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            return None

    def goes_left(self, table: Floats) -> list[dict[int, Any]]:
        """Per tree, per split: which users go left (an array of bools)."""
        found: list[dict[int, Any]] = []
        columns: dict[int, tuple[Floats, Any]] = {}
        for tree in self.trees:
            left: dict[int, Any] = {}
            for node, leaf in enumerate(tree["is_leaf"]):
                if leaf:
                    continue
                f = tree["feature_idx"][node]
                if f not in columns:
                    column = np.ascontiguousarray(table[:, f])
                    missing = np.isnan(column)
                    columns[f] = (column, missing if missing.any() else None)
                column, missing = columns[f]
                compared = column <= tree["num_threshold"][node]  # NaN: False, right
                if missing is not None and tree["missing_go_to_left"][node]:
                    compared |= missing
                left[node] = compared
            found.append(left)
        return found

    def tree_values(
        self, k: int, left: dict[int, Any], n: int, fixed: dict[int, float] | None = None
    ) -> Floats:
        """Tree K's output for each of N users (LEFT: goes_left's for the tree), with the
        features of FIXED set to its values."""
        tree = self.trees[k]

        def value(node: int) -> Any:
            if tree["is_leaf"][node]:
                return tree["value"][node]
            f = tree["feature_idx"][node]
            if fixed is not None and f in fixed:
                x = fixed[f]
                go = (
                    bool(tree["missing_go_to_left"][node])
                    if x != x
                    else x <= tree["num_threshold"][node]
                )
                return value(tree["left"][node] if go else tree["right"][node])
            return np.where(left[node], value(tree["left"][node]), value(tree["right"][node]))

        result: Floats = np.broadcast_to(np.asarray(value(0), dtype=np.float64), (n,))
        return result

    def per_tree(self, table: Floats) -> tuple[Floats, list[dict[int, Any]]]:
        """Each tree's output, a column per tree, and goes_left's."""
        left = self.goes_left(table)
        n = len(table)
        values = np.zeros((n, len(self.trees)))
        for k in range(len(self.trees)):
            values[:, k] = self.tree_values(k, left[k], n)
        return values, left

    def raw(self, table: Floats) -> Floats:
        """The log-odds before calibration (decision_function's)."""
        values, _ = self.per_tree(table)
        result: Floats = self.base + values.sum(axis=1)
        return result


@dataclass
class Booster:
    """A trained model: trees (or the logistic baseline), their Platt scaling, the event
    types whose features it reads, and the medians of the features of the training users
    who stayed."""

    trees: Any  # HistGradientBoostingClassifier, or the baseline's Pipeline
    calibration: model.Calibration
    medians: Floats
    summary: dict[str, Any] = field(default_factory=dict)
    types: tuple[str, ...] = ()
    name: str = NAME
    # How often the trees split on each feature (None: unknown, or not trees): terms the
    # trees never split on move nothing, and only the REASON_TYPES event types split on
    # most are weighed for reasons (each costs an evaluation of every user above low).
    splits: dict[int, int] | None = None
    _forest: Forest | bool | None = field(default=None, repr=False)  # False: unreadable

    @property
    def terms(self) -> tuple[str, ...]:
        """What a reason can be about: the transparent model's terms, then each type."""
        return (*SAID, *(type_term(t) for t in self.types))

    def weighed_terms(self) -> list[int]:
        """The terms whose contributions are computed: all when the splits are unknown;
        else those of the transparent model the trees split on, and the REASON_TYPES
        event types they split on most."""
        if self.splits is None:
            return list(range(len(self.terms)))
        splits = self.splits

        def count(k: int) -> int:
            return sum(splits.get(j, 0) for j in self.term_features(k))

        said = [k for k in range(len(SAID)) if count(k)]
        types = sorted(
            (k for k in range(len(SAID), len(self.terms)) if count(k)), key=lambda k: -count(k)
        )
        return said + sorted(types[:REASON_TYPES])

    def term_features(self, k: int) -> list[int]:
        if k < len(SAID):
            return TERM_FEATURES[SAID[k]]
        first = len(FEATURES) + (k - len(SAID)) * len(PER_TYPE)
        return list(range(first, first + len(PER_TYPE)))

    @property
    def forest(self) -> Forest | None:
        """The trees as Forest reads them (None: the baseline, or trees it cannot read)."""
        if self.name != NAME:
            return None
        if self._forest is None:
            self._forest = Forest.of(self.trees) or False
        return self._forest if isinstance(self._forest, Forest) else None

    def raw(self, table: Floats) -> Floats:
        """The model's log-odds, before calibration."""
        forest = self.forest
        if forest is not None:
            return forest.raw(table)
        with threadpool_limits(1, user_api="openmp"):
            result: Floats = self.trees.decision_function(table)
        return result

    def log_odds(self, table: Floats) -> Floats:
        return self.calibration.a * self.raw(table) + self.calibration.b

    def probabilities(self, columns: FeatureColumns) -> Floats:
        return self.calibration.probabilities(self.raw(matrix(columns, self.types)))

    def contributions(self, table: Floats) -> Floats:
        """Each user's change in calibrated log-odds when the features of each term
        (`terms`) are replaced by their medians among the users who stayed, a column per
        term (positive: towards churn). By term, not by feature: one evaluation of the
        model per reason there is words for."""
        n = len(table)
        terms = self.terms
        pushes: Floats = np.zeros((n, len(terms)))
        used = self.weighed_terms()
        if not used:
            return pushes
        forest = self.forest
        if forest is not None:  # only the trees that split on a term's features again
            values, left = forest.per_tree(table)
            for k in used:
                features = self.term_features(k)
                fixed = {f: float(self.medians[f]) for f in features}
                touched = [t for t, uses in enumerate(forest.uses) if uses & fixed.keys()]
                if touched:
                    moved = sum(forest.tree_values(t, left[t], n, fixed) for t in touched)
                    change = values[:, touched].sum(axis=1) - moved
                    pushes[:, k] = self.calibration.a * change
            return pushes
        base = self.log_odds(table)
        moved = table.copy()  # one copy, each term's features set to the medians in turn
        for k in used:
            features = self.term_features(k)
            moved[:, features] = self.medians[features]
            pushes[:, k] = base - self.log_odds(moved)
            moved[:, features] = table[:, features]
        return pushes

    def predict_all(
        self, columns: FeatureColumns, cutoffs: tuple[float, float] = churn_rules.DEFAULT_CUTOFFS
    ) -> model.Predictions:
        """Like model.predict_all: probabilities and levels for all, reasons in words
        (from the contributions, by term; an event type's in its own name) for those
        above low."""
        table = matrix(columns, self.types)
        probabilities = self.calibration.probabilities(self.raw(table))
        found = model.levels(probabilities, cutoffs)
        reasons: list[list[str]] = [[] for _ in found]
        above = np.flatnonzero(probabilities >= cutoffs[0])  # not low, as `levels` says
        if not len(above):
            return model.Predictions(probabilities.tolist(), found, reasons)
        by_term = self.contributions(table[above])
        ranked = np.argsort(-by_term, axis=1, kind="stable")[:, :3]
        strong = np.take_along_axis(by_term, ranked, axis=1) > model.REASON_FROM
        # The words term by term (the few terms there are, over the users whose reasons
        # name each), into each user's slots; the strong come first (ranked descending).
        slots = np.full(ranked.shape, None, dtype=object)
        for k in np.unique(ranked[strong]).tolist():
            users, slot = np.nonzero((ranked == k) & strong)
            slots[users, slot] = np.array(self._words(k, above[users], columns), dtype=object)
        for i, said in zip(above.tolist(), slots.tolist(), strict=True):
            reasons[i] = [words for words in said if words is not None]
        return model.Predictions(probabilities.tolist(), found, reasons)

    def _words(self, k: int, users: npt.NDArray[np.intp], columns: FeatureColumns) -> list[str]:
        """Term K's reason in words for each of USERS (their rows in COLUMNS)."""
        if k < len(SAID):
            name = SAID[k]
            facts = [getattr(columns, n)[users].tolist() for n in model.FACTS]
            return [model._said(name, *fact) for fact in zip(*facts, strict=True)]
        name = self.types[k - len(SAID)]
        per_type = columns.types
        if per_type is None or name not in per_type.names:
            return [f"No {name} in 12 weeks"] * len(users)
        j = per_type.names.index(name)
        return [
            type_words(name, last_28, previous_28, days_since)
            for last_28, previous_28, days_since in zip(
                per_type.last_28[users, j].tolist(),
                per_type.previous_28[users, j].tolist(),
                per_type.days_since[users, j].tolist(),
                strict=True,
            )
        ]


def trees() -> HistGradientBoostingClassifier:
    """Few small trees: each user is scored once, and once per reason term, and on the
    1 M-user demo 30 trees of 8 leaves lose 0.002 of log loss against 120 of 15 (0.4667
    vs 0.4652 on the latest snapshot) for a quarter of the time."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=0.25,
        max_iter=30,
        max_leaf_nodes=8,
        min_samples_leaf=40,
        l2_regularization=1.0,
        random_state=SEED,
    )


def baseline(types: tuple[str, ...]) -> Any:
    """The baseline a customer would fit in an afternoon: a logistic regression on the
    log-counts of each event type (7 and 28 days) and the log of the tenure."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    chosen = [FEATURES.index("tenure_days"), FEATURES.index("events_28")] + [
        len(FEATURES) + k * len(PER_TYPE) + PER_TYPE.index(f)
        for k in range(len(types))
        for f in ("last_7", "last_28")
    ]

    def log_counts(table: Floats) -> Floats:
        picked: Floats = np.log1p(np.fmax(np.nan_to_num(table[:, chosen]), 0.0))
        return picked

    return make_pipeline(
        FunctionTransformer(log_counts),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=1000),
    )


def enough(snapshots: list[Snapshot]) -> bool:
    """Whether the snapshots hold enough labelled users, of each outcome, to learn from."""
    churned = np.concatenate([s.churned for s in snapshots]) if snapshots else np.zeros(0)
    quiet = int(churned.sum())
    return len(churned) >= MIN_USERS and min(quiet, len(churned) - quiet) >= MIN_CLASS


def too_little(snapshots: list[Snapshot]) -> str | None:
    """Why the snapshots cannot train and calibrate a model, in words (None: they can)."""
    if len(snapshots) < 2:
        return "fewer than two past snapshots"
    older, latest = snapshots[1:], snapshots[0]
    churned = np.concatenate([s.churned for s in older])
    quiet = int(churned.sum())
    if len(churned) < MIN_USERS or min(quiet, len(churned) - quiet) < MIN_CLASS:
        return (
            f"the snapshots before {latest.at:%Y-%m-%d} hold {len(churned):,} labelled users "
            f"({quiet:,} who churned): a model needs {MIN_USERS:,}, with {MIN_CLASS} of each "
            "outcome"
        )
    late = int(latest.churned.sum())
    if min(late, len(latest.churned) - late) < MIN_CLASS // 4:
        return (
            f"the snapshot of {latest.at:%Y-%m-%d} that calibrates holds {late:,} who churned "
            f"and {len(latest.churned) - late:,} who did not: it needs {MIN_CLASS // 4} of each"
        )
    return None


def _fit(kind: str, snapshots: list[Snapshot]) -> Booster:
    """KIND (NAME: the trees, BASELINE: the logistic regression) trained on the older
    snapshots and calibrated (Platt) on the latest, snapshots[0]."""
    latest, older = snapshots[0], snapshots[1:]
    types = latest.types
    table = np.vstack([matrix(s.columns, types) for s in older])
    outcomes = np.concatenate([s.churned for s in older])
    # A feature nobody has (the days since an event type no one in scope did yet): a
    # constant to learn from, which the trees never split on (their binning needs a value).
    table[:, np.isnan(table).all(axis=0)] = 0.0
    with threadpool_limits(1, user_api="openmp"):  # shared cores: threads only contend
        estimator = trees() if kind == NAME else baseline(types)
        fitted = estimator.fit(table, outcomes)
    kept = table[outcomes == 0]  # the reference: a user who stayed
    medians = np.nanmedian(kept, axis=0) if len(kept) else np.zeros(table.shape[1])
    medians = np.where(np.isnan(medians), 0.0, medians)  # a feature nobody has: never
    booster = Booster(
        fitted,
        model.Calibration(),
        medians,
        types=types,
        name=kind,
        splits=_splits(fitted) if kind == NAME else None,
    )
    raw = booster.raw(matrix(latest.columns, types))
    booster.calibration = model.fit_calibration(raw.tolist(), [bool(v) for v in latest.churned])
    booster.summary = {
        "model": kind,
        "trained_on": [s.at.isoformat() for s in older],
        "calibrated_on": latest.at.isoformat(),
        "users": len(outcomes),
        "log_loss": metrics.log_loss(latest.churned, booster.probabilities(latest.columns)),
        "a": booster.calibration.a,
        "b": booster.calibration.b,
        "event_types": list(types),
    }
    return booster


def _splits(fitted: Any) -> dict[int, int] | None:
    """How often the trees split on each feature (None: unknown); read from
    scikit-learn's predictors, whose layout is not public: on any surprise, None."""
    try:
        found: dict[int, int] = {}
        for predictors in fitted._predictors:
            for predictor in predictors:
                nodes = predictor.nodes
                for f in nodes["feature_idx"][nodes["is_leaf"] == 0].tolist():
                    found[int(f)] = found.get(int(f), 0) + 1
        return found
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _transparent_log_loss(latest: Snapshot) -> float:
    plain = model.scores(latest.columns)
    fitted = model.fit_calibration(plain.tolist(), [bool(v) for v in latest.churned])
    return metrics.log_loss(latest.churned, fitted.probabilities(plain))


def train(snapshots: list[Snapshot], *, require_better: bool = True) -> Booster | None:
    """Trees on the older snapshots, calibrated on the latest (SNAPSHOTS[0]); None when
    there is not enough history, or (REQUIRE_BETTER) the trees do not beat the
    transparent model's log loss there."""
    if too_little(snapshots) is not None:
        return None
    booster = _fit(NAME, snapshots)
    theirs = _transparent_log_loss(snapshots[0])
    booster.summary["transparent_log_loss"] = theirs
    return booster if booster.summary["log_loss"] < theirs or not require_better else None


def train_baseline(snapshots: list[Snapshot]) -> Booster | None:
    """The logistic baseline, trained and calibrated as `train` does the trees (None:
    too little history)."""
    return None if too_little(snapshots) is not None else _fit(BASELINE, snapshots)


def choose(snapshots: list[Snapshot]) -> tuple[Booster | None, dict[str, Any]]:
    """The model with the best out-of-time log loss on the latest snapshot among the
    trees, the logistic baseline and the transparent model (None), and why, with each
    one's figure."""
    why = too_little(snapshots)
    if why is not None:
        return None, {"model": "transparent-v1", "why": f"Too little history: {why}."}
    trained = [_fit(NAME, snapshots), _fit(BASELINE, snapshots)]
    losses = {b.name: float(b.summary["log_loss"]) for b in trained}
    losses["transparent-v1"] = _transparent_log_loss(snapshots[0])
    best = min(losses, key=losses.__getitem__)
    chosen = next((b for b in trained if b.name == best), None)
    summary = {
        **(chosen.summary if chosen is not None else {}),
        "model": best,
        "log_losses": losses,
        "transparent_log_loss": losses["transparent-v1"],
        "why": f"Lowest log loss on the snapshot of {snapshots[0].at:%Y-%m-%d}, which it "
        f"did not train on: "
        + ", ".join(
            f"{name} {loss:.4f}" for name, loss in sorted(losses.items(), key=lambda x: x[1])
        ),
    }
    if chosen is not None:
        chosen.summary = summary
    return chosen, summary


# a run -> its model (None: transparent) and why
_trained: dict[tuple[int, str], tuple[Booster | None, dict[str, Any]]] = {}
_lock = threading.Lock()


def for_run(db: Session, run: ChurnRun) -> tuple[Booster | None, dict[str, Any]]:
    """The model of RUN: trained once per process (on the event types and the churn the
    run recorded), None if the transparent model scores it (too little history, or it
    does best); and why, in a summary."""
    key = (run.id, f"{run.organization_id}/{run.as_of.timestamp()}")
    with _lock:
        if key in _trained:
            return _trained[key]
    org = run.organization_id
    users = db.scalar(select(func.count()).where(User.organization_id == org))
    few = (users or 0) * (SNAPSHOTS - 1) < MIN_USERS  # not worth reading the history
    churn = churn_definition.of_setting(run.calibration.get("churn"))
    found: tuple[Booster | None, dict[str, Any]] = (
        None,
        {
            "model": "transparent-v1",
            "why": f"Too little history: {users or 0:,} users, and a model needs "
            f"{MIN_USERS:,} labelled users over {SNAPSHOTS - 1} past snapshots.",
        },
    )
    if not few:
        found = choose(
            history(
                db,
                org,
                run.as_of,
                churn=churn,
                horizon=churn.days * DAY,
                types=run.calibration.get("event_types", []),
            )
        )
    with _lock:
        if len(_trained) > 16:
            _trained.clear()
        _trained[key] = found
    return found
