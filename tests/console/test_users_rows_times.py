"""The Users list's rows write their times as `time_element` writes them, byte for byte,
however the words were found (worked out, or kept from an earlier row)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from userdesk.web.console import rows_html
from userdesk.web.templating import Zone, time_element


def test_a_rows_time_is_time_elements_at_every_boundary_of_its_words() -> None:
    """Either side of each unit, in the future too, for aware (UTC or not) and naive
    values, in UTC and in an admin's zone; the kept words never differ from new ones."""
    now = datetime.now(UTC).replace(microsecond=250_000)
    seconds = [0, 1, 59, 60, 61, 119, 120, 3599, 3600, 3601, 7199, 7200, 86399, 86400]
    seconds += [86401, 59 * 86400, 364 * 86400, 365 * 86400, 365 * 86400 + 1, 800 * 86400]
    ages = [timedelta(seconds=s, microseconds=m) for s in seconds for m in (0, 1, 999_999)]
    ages += [-age for age in ages if age]
    for name in (None, "Europe/Paris", "Asia/Kolkata"):
        zone = Zone.of(name)
        for _ in range(2):  # the second time, words kept from the first
            for age in ages:
                value = now - age
                for given in (
                    value,
                    value.astimezone(ZoneInfo("America/New_York")),
                    value.replace(tzinfo=None),
                ):
                    expected = time_element(given, zone, relative_first=True, now=now)
                    assert rows_html._relative_time(given, zone, now) == expected, (name, age)


def test_the_words_kept_are_bounded() -> None:
    """Words are kept per whole minute, and the lot is dropped when it grows too large."""
    now = datetime.now(UTC)
    kept = rows_html._WORDS_KEPT
    try:
        rows_html._WORDS_KEPT = 5
        rows_html._WORDS_BY_MINUTE.clear()
        for minutes in range(20):
            rows_html._relative_time(now - timedelta(minutes=minutes), None, now)
            assert len(rows_html._WORDS_BY_MINUTE) <= 5
    finally:
        rows_html._WORDS_KEPT = kept
