"""A browser's User-Agent header in a few words ("Chrome on Linux"). Pure.

Good enough for a person to recognise their own devices in a list of sessions; it is not
a security decision and never used as one.
"""

from __future__ import annotations

import re

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:HeadlessChrome|Chrome|Chromium|CriOS)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
    ("curl", re.compile(r"^curl/")),
    ("Python", re.compile(r"^python-(?:httpx|requests)/|^Python-urllib/")),
)
_SYSTEMS = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
)


def describe_device(user_agent: str | None) -> str:
    """USER_AGENT in short words, like "Firefox on Windows"; "Unknown device" when empty."""
    agent = (user_agent or "").strip()
    if not agent:
        return "Unknown device"
    browser = next((name for name, pattern in _BROWSERS if pattern.search(agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return f"{browser or 'A browser'} on {system}" if system else str(browser)
    return agent.split("/", 1)[0][:40] or "Unknown device"
