"""The device cookie of a browser that signed in (auth.device_cookies), read and set."""

from __future__ import annotations

from fastapi import Request, Response

from userdesk.auth import device_cookies
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.web.deps import cookie_secure


def cookie_name(settings: Settings) -> str:
    """`__Host-` prefixed when served over HTTPS, like the session cookie."""
    return device_cookies.HOST_COOKIE if settings.https else device_cookies.COOKIE


def carried(request: Request, settings: Settings) -> str | None:
    """The device cookie the browser sent, if any (checked by auth.signin)."""
    return request.cookies.get(cookie_name(settings))


def remember(request: Request, response: Response, settings: Settings, user_id: int) -> None:
    """USER_ID signed in from this browser: RESPONSE gives it a fresh device cookie entry for
    the account (HttpOnly, SameSite=Strict, Secure over HTTPS, kept a year)."""
    value = device_cookies.remember(
        settings.secret_key, carried(request, settings), user_id, now=utcnow()
    )
    response.set_cookie(
        cookie_name(settings),
        value,
        max_age=int(device_cookies.MAX_AGE.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=cookie_secure(settings),
        path="/",
    )
