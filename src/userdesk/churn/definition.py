"""What churn means for an organization: a setting, and the sentence that says it.

Two kinds. "inactivity" (the default, and the meaning before the setting existed): no
event (of the chosen types, or of any) in the DAYS after the moment. "event": an event of
type EVENT_TYPE (`subscription.cancelled`, `account.closed` ...) happens in the DAYS
after, among the users in scope: those who did SCOPE_TYPE (any event when None) in the
SCOPE_DAYS before and had no EVENT_TYPE yet. Labelling (training snapshots, backtests)
reads it; pure: no database here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from userdesk.errors import InvalidInput

INACTIVITY = "inactivity"
EVENT = "event"
SETTING = "churn_definition"  # the organization setting that holds it
TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-/]{1,64}$")  # an event type, as events take it


@dataclass(frozen=True)
class ChurnDefinition:
    kind: str = INACTIVITY
    days: int = 30
    event_type: str | None = None  # "event": the type whose occurrence is churn
    activity_types: tuple[str, ...] = ()  # "inactivity": the types that count (): any
    scope_type: str | None = None  # who is in scope: did this (None: any event) ...
    scope_days: int = 30  # ... in this many days before

    @property
    def scoped(self) -> bool:
        """Whether labelling keeps only the users in scope (the default inactivity labels
        everyone, as it always did; its backtest reports the dormant apart)."""
        return self.kind == EVENT or self.scope_type is not None

    @property
    def outcome(self) -> str:
        """What a churned user did, in words ("went quiet", "had account.closed")."""
        return f"had {self.event_type}" if self.kind == EVENT else "went quiet"

    def sentence(self, horizon_days: int | None = None) -> str:
        """What is predicted, in words."""
        days = horizon_days or self.days
        who = (
            f"users who did {self.scope_type} in the last {self.scope_days} days"
            if self.scope_type
            else f"users active in the last {self.scope_days} days"
        )
        if self.kind == EVENT:
            return (
                f"The chance that {self.event_type} happens in the next {days} days, among "
                f"{who} who have no {self.event_type} yet."
            )
        what = (
            "no event of type " + " or ".join(self.activity_types)
            if self.activity_types
            else "no sign-in and no event"
        )
        among = f", among {who}" if self.scope_type else ""
        return f"The chance of {what} in the next {days} days{among}."

    def as_setting(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "days": self.days,
            "event_type": self.event_type,
            "activity_types": list(self.activity_types),
            "scope_type": self.scope_type,
            "scope_days": self.scope_days,
        }


DEFAULT = ChurnDefinition()


def of_setting(value: dict[str, Any] | None) -> ChurnDefinition:
    """The definition an organization's setting holds (the default when none)."""
    if not value:
        return DEFAULT
    return ChurnDefinition(
        kind=value.get("kind", INACTIVITY),
        days=int(value.get("days", 30)),
        event_type=value.get("event_type"),
        activity_types=tuple(value.get("activity_types") or ()),
        scope_type=value.get("scope_type"),
        scope_days=int(value.get("scope_days", 30)),
    )


def checked(
    *,
    kind: str,
    days: int = 30,
    event_type: str | None = None,
    activity_types: tuple[str, ...] = (),
    scope_type: str | None = None,
    scope_days: int = 30,
) -> ChurnDefinition:
    """A definition from what an administrator gave.

    Raises:
        InvalidInput: an unknown kind, days out of 1-365, an event kind without its type,
            or a type that events could not carry; naming the field.
    """
    if kind not in (INACTIVITY, EVENT):
        raise InvalidInput(
            "Churn is inactivity or an event.",
            fields={"churn_definition.kind": f"{kind!r} is neither inactivity nor event"},
        )
    for name, number in (("days", days), ("scope_days", scope_days)):
        if not 1 <= number <= 365:
            raise InvalidInput(
                "Days run from 1 to 365.",
                fields={f"churn_definition.{name}": f"{number} is not from 1 to 365"},
            )
    if kind == EVENT and not event_type:
        raise InvalidInput(
            "Name the event type that is churn, like subscription.cancelled.",
            fields={"churn_definition.event_type": "missing for an event churn"},
        )
    for name, value in (
        ("event_type", event_type),
        ("scope_type", scope_type),
        *(("activity_types", t) for t in activity_types),
    ):
        if value is not None and not TYPE_PATTERN.match(value):
            raise InvalidInput(
                "An event type is up to 64 letters, digits and . _ : - /.",
                fields={f"churn_definition.{name}": f"{value!r} is not an event type"},
            )
    return ChurnDefinition(
        kind=kind,
        days=days,
        event_type=event_type if kind == EVENT else None,
        activity_types=activity_types if kind == INACTIVITY else (),
        scope_type=scope_type,
        scope_days=scope_days,
    )


def parse_target(text: str) -> ChurnDefinition:
    """The CLI's --target: 'inactivity', 'inactivity:login,post.created' or
    'event:subscription.cancelled', with an optional '@TYPE/DAYS' scope
    ('event:subscription.cancelled@login/30').

    Raises:
        InvalidInput: as `checked`, or a target of another shape.
    """
    target, _, scope = text.strip().partition("@")
    kind, _, what = target.partition(":")
    scope_type: str | None = None
    scope_days = 30
    if scope:
        scope_type, _, days = scope.partition("/")
        if days and not days.isdigit():
            raise InvalidInput(
                "A scope is @TYPE/DAYS, like @login/30.",
                fields={"target": f"{text!r}: {days!r} is not a number of days"},
            )
        scope_days = int(days or 30)
    if kind == EVENT:
        return checked(
            kind=EVENT, event_type=what or None, scope_type=scope_type, scope_days=scope_days
        )
    if kind == INACTIVITY:
        types = tuple(t for t in what.split(",") if t)
        return checked(
            kind=INACTIVITY, activity_types=types, scope_type=scope_type, scope_days=scope_days
        )
    raise InvalidInput(
        "The target is inactivity[:TYPES] or event:TYPE, with an optional @TYPE/DAYS scope.",
        fields={"target": f"{text!r} is neither"},
    )
