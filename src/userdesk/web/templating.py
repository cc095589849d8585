"""The Jinja2 environment shared by the console and the portal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from userdesk.mail.rules import html_paragraphs

TEMPLATES = Path(__file__).parent / "templates"


def _ago(value: datetime | None, now: datetime | None = None) -> str:
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
                return value.strftime("%Y-%m-%d")
            plural = "s" if n != 1 and unit != "min" else ""
            return f"{n} {unit}{plural} ago"
    return "just now"


def _timestamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


templates = Jinja2Templates(directory=TEMPLATES)
templates.env.filters["ago"] = _ago
templates.env.filters["timestamp"] = _timestamp
# html_paragraphs escapes everything but the <p>, <br> and <a> it writes itself.
templates.env.filters["email_body"] = lambda text: Markup(html_paragraphs(text or ""))  # noqa: S704
