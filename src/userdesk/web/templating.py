"""The Jinja2 environment shared by the console and the portal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
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


def relative(value: datetime, now: datetime | None = None) -> str:
    """How far VALUE is from NOW, either way: '3 hours ago', 'in 5 days', 'just now'."""
    value = _aware(value)
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    for unit, size in (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            words = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {words}" if future else f"{words} ago"
    return "just now"  # pragma: no cover - every span of a minute or more has a unit


def timestamp_text(value: datetime | None, zone: str | None = None) -> str:
    """'2026-01-31 09:05 UTC' (or in ZONE: '2026-01-31 10:05 CET'); '' for None. Plain text,
    for an attribute."""
    if value is None:
        return ""
    value = _aware(value)
    if zone:
        local = value.astimezone(ZoneInfo(zone))
        return f"{local.isoformat(' ', 'minutes')[:16]} {local.tzname()}"
    # isoformat: a third faster than strftime, and a list shows two per row.
    return f"{value.astimezone(UTC).isoformat(' ', 'minutes')[:16]} UTC"


def admin_zone(context: Mapping[str, Any]) -> str | None:
    """The signed-in admin's time zone where one is known (their business hours'), else
    None: the browser's is used (static/js/userdesk.js), UTC without JavaScript."""
    auth = context.get("auth")
    if getattr(auth, "signed_in", None) is None:
        return None
    # Auth.user: the entity, loaded once per request at the first time shown.
    hours = getattr(getattr(auth, "user", None), "business_hours", None)
    zone = hours.get("time_zone") if isinstance(hours, dict) else None
    if not isinstance(zone, str) or not zone:
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
    value = _aware(value)
    zone = admin_zone(context)
    absolute = timestamp_text(value, zone)
    ago_words = relative(value)
    shown, title = (ago_words, absolute) if relative_first else (absolute, ago_words)
    return Markup(  # noqa: S704 - every value is escaped
        '<time datetime="{}"{}{} title="{}">{}</time>'.format(
            escape(value.astimezone(UTC).isoformat().replace("+00:00", "Z")),
            f' data-tz="{escape(zone)}"' if zone else "",
            " data-relative" if relative_first else "",
            escape(title),
            escape(shown),
        )
    )


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
