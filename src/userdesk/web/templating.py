"""The Jinja2 environment shared by the console and the portal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from userdesk.audit import wording
from userdesk.mail.rules import html_paragraphs

TEMPLATES = Path(__file__).parent / "templates"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """A short, human "how long ago": 'just now', '5 min ago', '3 days ago', 'Never'."""
    if value is None:
        return "Never"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("min", 60)):
        if seconds >= size:
            n = int(seconds // size)
            if unit == "day" and n >= 60:
                return value.date().isoformat()  # "%Y-%m-%d", cheaper than strftime
            plural = "s" if n != 1 and unit != "min" else ""
            return f"{n} {unit}{plural} ago"
    return "just now"


def _aware(value: datetime) -> datetime:
    """VALUE with its time zone; a naive one is taken as UTC (as the database keeps it)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _span_words(seconds: float) -> str:
    """SECONDS from then to now in words: '3 hours ago', 'in 5 days' (negative), 'just now'."""
    future = seconds < 0
    if future:
        seconds = -seconds
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        n, unit = int(seconds // 60), "minute"
    elif seconds < 86400:
        n, unit = int(seconds // 3600), "hour"
    elif seconds < 365 * 86400:
        n, unit = int(seconds // 86400), "day"
    else:
        n, unit = int(seconds // (365 * 86400)), "year"
    words = f"1 {unit}" if n == 1 else f"{n} {unit}s"
    return f"in {words}" if future else f"{words} ago"


def relative(value: datetime, now: datetime | None = None) -> str:
    """How far VALUE is from NOW, either way: '3 hours ago', 'in 5 days', 'just now'."""
    return _span_words(((now or datetime.now(UTC)) - _aware(value)).total_seconds())


def _text_in(value: datetime, local: tzinfo | None) -> str:
    """Aware VALUE as '2026-01-31 10:05 CET' in LOCAL, else as '2026-01-31 09:05 UTC'."""
    if local is not None:
        there = value.astimezone(local)
        return f"{there.isoformat(' ', 'minutes')[:16]} {there.tzname()}"
    # isoformat: a third faster than strftime, and a list shows two per row.
    return f"{value.astimezone(UTC).isoformat(' ', 'minutes')[:16]} UTC"


def timestamp_text(value: datetime | None, zone: str | None = None) -> str:
    """'2026-01-31 09:05 UTC' (or in ZONE: '2026-01-31 10:05 CET'); '' for None. Plain text,
    for an attribute."""
    if value is None:
        return ""
    return _text_in(_aware(value), ZoneInfo(zone) if zone else None)


class Zone(NamedTuple):
    """A time zone looked up once (for a page), as `time_element` writes times in it."""

    name: str
    info: tzinfo
    attribute: str  # ' data-tz="Europe/Paris"', escaped

    @classmethod
    def of(cls, name: str | None) -> Zone | None:
        """NAME looked up (None for none); a name ZoneInfo does not know raises."""
        return cls(name, ZoneInfo(name), f' data-tz="{escape(name)}"') if name else None


@lru_cache(maxsize=8192)
def _stamps(u: datetime, zone: Zone | None) -> tuple[str, str, str]:
    """UTC time U's datetime attribute, its absolute time in ZONE (else UTC) and ZONE's
    attribute: kept for the times a list shows again ("%" formatting writes isoformat's
    digits in half its time)."""
    at = "%04d-%02d-%02dT%02d:%02d:%02dZ" % (u.year, u.month, u.day, u.hour, u.minute, u.second)  # noqa: UP031
    if zone is None:
        return at, f"{at[:10]} {at[11:16]} UTC", ""
    v = u.astimezone(zone.info)
    digits = (v.year, v.month, v.day, v.hour, v.minute, v.tzname())
    return at, "%04d-%02d-%02d %02d:%02d %s" % digits, zone.attribute  # noqa: UP031


def time_element(
    value: datetime, zone: Zone | None, *, relative_first: bool = False, now: datetime | None = None
) -> str:
    """VALUE as the <time> element `timestamp` writes (see there), in ZONE (else UTC),
    "ago" counted to NOW: a str, for a page built in Python (the Users list's rows: two a
    row, so written for speed). Nothing in it needs escaping: digits, a zone's
    abbreviation, our own words, and ZONE's attribute escaped once."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    u = value if value.tzinfo is UTC else value.astimezone(UTC)
    words = _span_words(((now or datetime.now(UTC)) - u).total_seconds())
    at, absolute, tz = _stamps(u, zone)
    if relative_first:
        return f'<time datetime="{at}"{tz} data-relative title="{absolute}">{words}</time>'
    return f'<time datetime="{at}"{tz} title="{words}">{absolute}</time>'


def admin_zone(context: Mapping[str, Any]) -> str | None:
    """The signed-in admin's time zone where one is known (their business hours'), else
    None: the browser's is used (static/js/userdesk.js), UTC without JavaScript."""
    signed_in = getattr(context.get("auth"), "signed_in", None)
    if signed_in is None:
        return None
    # Read with the session (auth.SessionUser), at each request: no statement more.
    zone: str | None = signed_in.user.time_zone
    if not zone:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return zone


@jinja2.pass_context
def timestamp(
    context: Mapping[str, Any], value: datetime | None, relative_first: bool = False
) -> Markup:
    """A time as a <time> element: the absolute time (in the admin's time zone, else UTC
    with "UTC" written) and how long ago it is in its title; RELATIVE_FIRST: the other way
    round, "3 hours ago" shown. The browser rewrites both in its own time zone (unless the
    admin's is known) and keeps "ago" current. Empty for None (so `or "Never"` works)."""
    if value is None:
        return Markup("")
    zone = Zone.of(admin_zone(context))
    return Markup(time_element(value, zone, relative_first=relative_first))  # noqa: S704 - escaped


# The console page of each kind of audit target that has one.
TARGET_PAGES = {
    "user": "/console/users/{}",
    "job": "/console/jobs/{}",
    "segment": "/console/segments/{}",
    "webhook_endpoint": "/console/settings/webhooks/{}",
    "email_template": "/console/settings/emails/{}",
}


def target_href(target_type: str | None, target_id: str | int | None, action: str = "") -> str:
    """The console page of an audit event's target; '' where there is none (or no longer:
    a deleted segment or endpoint; a deleted user keeps a page)."""
    page = TARGET_PAGES.get(target_type or "")
    if page is None or target_id is None:
        return ""
    if action.endswith(".deleted") and target_type != "user":
        return ""
    return page.format(target_id)


# The badge color of each user status (Tabler's color names).
STATUS_COLORS = {
    "active": "green",
    "pending": "yellow",
    "disabled": "secondary",
    "banned": "red",
    "trashed": "dark",
    "deleted": "muted",
}


# What `obj.name` finds as an attribute of a plain dict (its methods): anything else is
# one of its items.
_DICT_ATTRIBUTES = frozenset(dir(dict))


class Environment(jinja2.Environment):
    """Jinja's environment, reading `view.name` off a plain dict at once.

    Jinja tries `getattr` first and the item after it, so each `u.email` of a list's rows
    (whose users are dicts) raised and caught an AttributeError: a fifth of the Users
    page's rendering. For a plain dict the attribute can only be one of dict's own, so
    anything else goes straight to the item: the same answer, without the exception.
    Anything else is asked for the attribute here, Jinja's own lookup left to the misses:
    a call less for each of the thousand `row.name` of a page.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except LookupError:
                return self.undefined(obj=obj, name=attribute)
        try:
            return getattr(obj, attribute)
        except AttributeError:
            return super().getattr(obj, attribute)


templates = Jinja2Templates(
    env=Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(),
        # Templates are read once per process, not looked up on disk at every render: a
        # changed template shows once the server is restarted.
        auto_reload=False,
    )
)
templates.env.filters["ago"] = ago
templates.env.filters["timestamp"] = timestamp
templates.env.filters["timestamp_text"] = timestamp_text
templates.env.globals["wording"] = wording
templates.env.globals["target_href"] = target_href
templates.env.globals["status_colors"] = STATUS_COLORS
# html_paragraphs escapes everything but the <p>, <br> and <a> it writes itself.
templates.env.filters["email_body"] = lambda text: Markup(html_paragraphs(text or ""))  # noqa: S704


def fragment(template: str, **context: object) -> Markup:
    """TEMPLATE rendered on its own, to be placed into a page: each piece of a template's
    output passes up through every template around it, so a big part is cheaper rendered
    apart and included whole."""
    return Markup(templates.get_template(template).render(**context))  # noqa: S704 - autoescaped
