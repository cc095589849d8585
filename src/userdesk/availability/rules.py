"""Business hours as data, and whether they are open at a moment: pure functions.

Stored as JSON: {"time_zone": "Europe/Paris", "weekly": {"mon": [["09:00", "17:30"]], ...},
"holidays": ["2026-12-25"]}. A day left out of "weekly" is closed; an interval may not
cross midnight (split it in two days; "24:00" ends a day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessHours:
    time_zone: str
    weekly: dict[int, tuple[tuple[time, time], ...]]  # 0 = Monday
    holidays: frozenset[date]

    def is_open(self, at: datetime) -> bool:
        """Whether AT (timezone-aware) falls in an opening interval, on no holiday."""
        local = at.astimezone(ZoneInfo(self.time_zone))
        if local.date() in self.holidays:
            return False
        now = local.time().replace(tzinfo=None)
        return any(start <= now < end for start, end in self.weekly.get(local.weekday(), ()))

    def to_json(self) -> dict[str, Any]:
        return {
            "time_zone": self.time_zone,
            "weekly": {
                DAYS[day]: [[_text(start), _text(end)] for start, end in spans]
                for day, spans in sorted(self.weekly.items())
            },
            "holidays": sorted(d.isoformat() for d in self.holidays),
        }


DEFAULT = {"time_zone": "UTC", "weekly": {d: [["09:00", "17:00"]] for d in DAYS[:5]}}


def hours_problems(data: Any) -> dict[str, str]:
    """What is wrong with DATA as business hours, by field; empty when nothing is."""
    if not isinstance(data, dict):
        return {"business_hours": "is not an object"}
    problems: dict[str, str] = {}
    zone = data.get("time_zone")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        problems["time_zone"] = f"'{zone}' is not a time zone (e.g. 'Europe/Paris')"
    weekly = data.get("weekly", {})
    if not isinstance(weekly, dict):
        return {**problems, "weekly": "is not an object of days"}
    for day, spans in weekly.items():
        field = f"weekly.{day}"
        if day not in DAYS:
            problems[field] = f"'{day}' is not one of {', '.join(DAYS)}"
            continue
        if not isinstance(spans, list):
            problems[field] = "is not a list of [start, end] pairs"
            continue
        for span in spans:
            start, end = (_time(v) for v in span) if _is_pair(span) else (None, None)
            if start is None or end is None:
                problems[field] = f"{span!r} is not a pair of times like ['09:00', '17:00']"
            elif start >= end:
                problems[field] = f"{span[0]}-{span[1]} ends before it starts"
    for holiday in data.get("holidays", []):
        try:
            date.fromisoformat(str(holiday))
        except ValueError:
            problems["holidays"] = f"'{holiday}' is not a date like 2026-12-25"
    return problems


def parse_hours(data: dict[str, Any]) -> BusinessHours:
    """Business hours from checked JSON (see hours_problems)."""
    weekly: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, spans in data.get("weekly", {}).items():
        weekly[DAYS.index(day)] = tuple(
            (_time(start) or time(0), _time(end) or time(0)) for start, end in spans
        )
    return BusinessHours(
        time_zone=str(data["time_zone"]),
        weekly=weekly,
        holidays=frozenset(date.fromisoformat(str(d)) for d in data.get("holidays", [])),
    )


def _text(moment: time) -> str:
    return "24:00" if moment == time.max else f"{moment:%H:%M}"


def _is_pair(span: Any) -> bool:
    return isinstance(span, list) and len(span) == 2


def _time(value: Any) -> time | None:
    if value == "24:00":  # the end of the day
        return time.max
    try:
        parsed = time.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if len(str(value)) == 5 else None
