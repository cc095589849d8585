"""Who a client is in the failure counts: signed device cookies, checked without state, or
its address (an IPv6 one by its network)."""

from __future__ import annotations

from datetime import timedelta

from userdesk.auth import device_cookies, throttle
from userdesk.db.base import utcnow

KEY = "the secret key"


def test_an_entry_names_its_account_and_only_it() -> None:
    now = utcnow()
    value = device_cookies.remember(KEY, None, 7, now=now)
    nonce = device_cookies.nonce_for(KEY, value, 7, now=now)
    assert nonce is not None
    assert len(nonce) >= 20
    assert device_cookies.nonce_for(KEY, value, 8, now=now) is None


def test_a_changed_signature_body_or_key_counts_as_none() -> None:
    now = utcnow()
    value = device_cookies.remember(KEY, None, 7, now=now)
    user, nonce, issued, signature = value.split(".")
    for forged in (
        f"8.{nonce}.{issued}.{signature}",
        f"{user}.{nonce}x.{issued}.{signature}",
        f"{user}.{nonce}.{int(issued) + 1}.{signature}",
        f"{user}.{nonce}.{issued}.{signature[:-1]}",
        f"{user}.{nonce}.{issued}",
        "",
        "~~~",
        "7.a.b.c.d",
    ):
        assert device_cookies.nonce_for(KEY, forged, 7, now=now) is None, forged
        assert device_cookies.nonce_for(KEY, forged, 8, now=now) is None, forged
    assert device_cookies.nonce_for("another key", value, 7, now=now) is None


def test_an_entry_lasts_a_year() -> None:
    now = utcnow()
    value = device_cookies.remember(KEY, None, 7, now=now)
    later = now + device_cookies.MAX_AGE - timedelta(minutes=1)
    assert device_cookies.nonce_for(KEY, value, 7, now=later) is not None
    too_late = now + device_cookies.MAX_AGE + timedelta(minutes=1)
    assert device_cookies.nonce_for(KEY, value, 7, now=too_late) is None


def test_a_browser_keeps_entries_for_a_few_accounts_newest_first() -> None:
    now = utcnow()
    value = None
    for user_id in range(1, 8):
        value = device_cookies.remember(KEY, value, user_id, now=now)
    assert value is not None
    kept = [u for u in range(1, 8) if device_cookies.nonce_for(KEY, value, u, now=now)]
    assert kept == [3, 4, 5, 6, 7]
    again = device_cookies.remember(KEY, value, 5, now=now)
    assert again.split(".", 1)[0] == "5"
    assert device_cookies.nonce_for(KEY, again, 5, now=now) != device_cookies.nonce_for(
        KEY, value, 5, now=now
    )
    assert len(again.split("~")) == device_cookies.MAX_ENTRIES


def test_a_huge_cookie_is_not_read() -> None:
    now = utcnow()
    value = device_cookies.remember(KEY, None, 7, now=now)
    assert device_cookies.nonce_for(KEY, value + "~" + "x" * 2000, 7, now=now) is None
    assert device_cookies.remember(KEY, "x" * 100_000, 7, now=now).count("~") == 0


def test_an_ipv6_client_is_counted_by_its_64_bit_network() -> None:
    """Addresses of one IPv6 subscriber share a key; IPv4 addresses and odd values do not."""
    assert throttle.ip_key("2001:db8:1:2::1") == throttle.ip_key("2001:db8:1:2:ffff::9")
    assert throttle.ip_key("2001:db8:1:2::1") != throttle.ip_key("2001:db8:1:3::1")
    assert throttle.ip_key("192.0.2.1") != throttle.ip_key("192.0.2.2")
    assert throttle.ip_key("not:an:address") == "ip:not:an:address"
    assert throttle.ip_key(None) == "ip:-"
    assert throttle.client_key(ip="192.0.2.1", device="abc") == "device:abc"
