"""Request dependencies: the unit of work, who is asking, and the CSRF check.

They are `async def` on purpose, though they touch the database: each sync dependency
costs a trip through the thread pool, and at six of them per request those trips cost
more than the work (see bench/). What they run on the event loop is small and bounded:
opening a session, one or two indexed lookups for the caller, the commit. The endpoints
themselves stay sync, so the service work of a request runs in one worker thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor
from userdesk.auth import service as auth
from userdesk.auth.models import LoginSession
from userdesk.auth.secrets import tokens_equal
from userdesk.config import Settings
from userdesk.db.replicas import READS_KEY, reads_on_replica
from userdesk.db.session import Database
from userdesk.errors import NotAuthenticated, PermissionDenied
from userdesk.impersonation import service as impersonation
from userdesk.two_step import service as two_step
from userdesk.users.models import User

SESSION_COOKIE = "userdesk_session"
# Over HTTPS: a browser keeps a __Host- cookie only when it is Secure, for Path=/ and
# without a Domain, so that no sibling subdomain can set or shadow it.
HOST_SESSION_COOKIE = f"__Host-{SESSION_COOKIE}"
FORM_CSRF_COOKIE = "userdesk_form_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def session_cookie(settings: Settings) -> str:
    """The name of the session cookie: __Host- prefixed when served over HTTPS."""
    return HOST_SESSION_COOKIE if settings.https else SESSION_COOKIE


def form_csrf_cookie(settings: Settings) -> str:
    """The name of the sign-in forms' token cookie: __Host- prefixed over HTTPS too."""
    return f"__Host-{FORM_CSRF_COOKIE}" if settings.https else FORM_CSRF_COOKIE


def cookie_secure(settings: Settings) -> bool:
    """Whether cookies are sent over HTTPS only."""
    return settings.cookie_secure or settings.https


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def unit_of_work(request: Request) -> AsyncIterator[Session]:
    """One transaction per request, committed before the response is sent (`request_unit`)."""
    async with request_unit(request) as db:
        yield db


@asynccontextmanager
async def request_unit(request: Request) -> AsyncIterator[Session]:
    """REQUEST's unit of work: `unit_of_work` for a route that solves its own dependencies.

    A request that writes reads its form off the wire first, then awaits its turn for the
    write lock (SQLite): nothing waits on the network, and the event loop never waits on
    the database. What `after_unit` queued runs once the transaction has ended.
    """
    database: Database = request.app.state.database
    try:
        if request.method in SAFE_METHODS:
            with database.unit_of_work(write=False) as db:
                yield db
            return
        if request.headers.get("content-type", "").startswith(FORM_TYPES):
            await request.form()  # kept by the request for the CSRF check and the route
        async with database.writing() as db:
            yield db
    finally:
        for work in getattr(request.state, "after_unit", ()):
            async with database.writing() as own:
                work(own)


def after_unit(request: Request, work: Callable[[Session], None]) -> None:
    """Run WORK in a transaction of its own once the request's has ended (committed or
    rolled back): a record that must outlive a request about to fail. Not at once: the
    request's transaction may hold the only write lock."""
    if not hasattr(request.state, "after_unit"):
        request.state.after_unit = []
    request.state.after_unit.append(work)


DbSession = Annotated[Session, Depends(unit_of_work, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@dataclass(frozen=True)
class Auth:
    """Who sent the request and how: a browser session, or an API key."""

    actor: Actor
    signed_in: auth.LiveSession | None = None  # the browser session, read as columns
    impersonation: impersonation.Live | None = None  # an admin acting as the user
    # The organization requires a second step of back-office users and this one has none
    # yet: until they set it up, they act with no permission at all.
    two_step_due: bool = False
    db: Session | None = field(default=None, repr=False, compare=False)  # the request's

    @cached_property
    def user(self) -> User | None:
        """The signed-in person's entity, loaded when a route first asks for it (most
        pages need its name and email only: `signed_in.user`)."""
        if self.signed_in is None or self.db is None:
            return None
        return self.db.get_one(User, self.signed_in.user.id)

    @cached_property
    def session(self) -> LoginSession | None:
        """The browser session's entity, loaded when a route first asks for it."""
        if self.signed_in is None or self.db is None:
            return None
        return self.db.get_one(LoginSession, self.signed_in.id)

    @property
    def csrf_token(self) -> str | None:
        return self.signed_in.csrf_token if self.signed_in else None


async def optional_auth(request: Request, db: DbSession) -> Auth | None:
    """The caller, from the bearer API key or the session cookie, or None when anonymous.

    Raises:
        NotAuthenticated: a bearer key was sent and is not valid.
    """
    settings: Settings = request.app.state.settings  # not a dependency: one level less
    ip, agent = client_ip(request), request.headers.get("user-agent")
    secret = bearer_secret(request)
    if secret is not None:
        return Auth(actor=api_key_actor(request, db, secret))
    token = request.cookies.get(session_cookie(settings))
    if not token:
        return None
    found = auth.authenticate_session(db, settings=settings, token=token)
    if found is None:
        return None
    user = found.user
    request.state.actor_user_id = user.id  # for the security log
    request.state.color_scheme = user.color_scheme  # for the base template
    actor = access.actor_for_user(db, user, ip=ip, user_agent=agent)
    live = None
    if found.impersonation_id is not None:
        live = _impersonation(request, db, found, ip)
        if live is None:
            return None
        actor = impersonation.as_impersonated(actor, live.admin_actor)
    due = live is None and two_step.is_due(
        db, user, has_console_access=actor.has_console_access, organization=found.organization
    )
    if due:
        actor = dataclasses.replace(actor, grants=())
    request.state.csrf_token = found.csrf_token
    if READS_KEY in request.scope:  # a GET whose reads a replica may serve (db.replicas)
        reads_on_replica(request.scope, db, request.cookies)
    return Auth(actor=actor, signed_in=found, impersonation=live, two_step_due=due, db=db)


def _impersonation(
    request: Request, db: Session, found: auth.LiveSession, ip: str | None
) -> impersonation.Live | None:
    """The impersonation behind an admin's session FOUND as its user, if it may go on; the
    request goes in the user's timeline and the banner on the page."""
    session = db.get_one(LoginSession, found.id)
    user = db.get_one(User, found.user.id)
    live = impersonation.live(db, session=session, user=user)
    if isinstance(live, str):
        why, session_id = live, session.id
        after_unit(
            request, lambda own: impersonation.cut_short(own, session_id=session_id, why=why)
        )
    if not isinstance(live, impersonation.Live):
        return None
    impersonation.note_request(db, live, user, method=request.method, path=request.url.path, ip=ip)
    request.state.impersonation = {
        "user": user.name,
        "admin": live.admin.name,
        "reason": live.impersonation.reason,
        "ends_at": live.impersonation.session_ends_at,
    }
    return live


def bearer_secret(request: Request) -> str | None:
    """The API key sent as `Authorization: Bearer <key>`, or None when there is none."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def api_key_actor(request: Request, db: Session, secret: str) -> Actor:
    """The actor of the API key SECRET (`optional_auth`'s for a bearer key).

    Raises:
        NotAuthenticated: the key is unknown or revoked.
    """
    actor = auth.authenticate_api_key(
        db, secret=secret, ip=client_ip(request), user_agent=request.headers.get("user-agent")
    )
    request.state.actor_api_key_id = actor.api_key_id  # for the security log
    if READS_KEY in request.scope:  # a GET whose reads a replica may serve (db.replicas)
        reads_on_replica(request.scope, db, request.cookies)
    return actor


OptionalAuth = Annotated[Auth | None, Depends(optional_auth)]


async def required_auth(request: Request, found: OptionalAuth) -> Auth:
    """The caller; a write made with the session cookie must carry the session's CSRF token.

    Raises:
        NotAuthenticated: nobody is signed in.
        PermissionDenied: the CSRF token is missing or wrong.
    """
    return await _required(request, found)


async def _required(request: Request, found: Auth | None) -> Auth:
    if found is None:
        raise NotAuthenticated("Sign in first.", code="not_authenticated")
    if found.signed_in is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not tokens_equal(sent, found.signed_in.csrf_token):
            raise PermissionDenied(
                "The form is stale or did not come from this site: reload and try again.",
                code="csrf_failed",
            )
    return found


CurrentAuth = Annotated[Auth, Depends(required_auth)]


async def current_actor(request: Request, db: DbSession) -> Actor:
    """`required_auth`'s actor. Each level of dependencies costs FastAPI a solving pass on
    the API's every request, so this one checks for itself rather than through it, and
    calls `optional_auth` itself too (a route takes CurrentActor or an Auth, not both:
    the caller would be looked up twice)."""
    return (await _required(request, await optional_auth(request, db))).actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def console_auth(request: Request, db: DbSession) -> Auth:
    """A signed-in person with back-office access (API keys do not open the console).
    `required_auth`'s checks made here, and `optional_auth` called here, as `current_actor`
    does: two levels less to solve (a console route takes ConsoleAuth, not OptionalAuth).

    Raises:
        NotAuthenticated: nobody is signed in with a browser session.
        PermissionDenied: the person has no back-office role, or the CSRF token of a
            write is missing or wrong.
    """
    found = await _required(request, await optional_auth(request, db))
    if found.signed_in is None:
        raise NotAuthenticated("Sign in first.", code="not_authenticated")
    if found.two_step_due:
        raise PermissionDenied(
            "Your organization requires two-step verification: set it up on your account page.",
            code=two_step.REQUIRED_CODE,
        )
    if not found.actor.has_console_access:
        raise PermissionDenied(
            "Your account has no access to the console.", code="console_forbidden"
        )
    return found


ConsoleAuth = Annotated[Auth, Depends(console_auth)]
