"""/scim/v2: the SCIM 2.0 service provider (RFC 7643, RFC 7644), for identity providers.

An adapter like the API: it parses SCIM with scim2-models, calls userdesk.scim (which
calls the users services), and renders SCIM. Its own app, mounted by create_app, so that
every error it answers is a SCIM error (`application/scim+json`, `scimType`), never a
problem detail or a page. Only a SCIM token (userdesk.scim.tokens) is accepted here.

Hostile input is a SCIM 4xx, never a 500: a body over MAX_BODY is a 413, a NUL or a lone
surrogate anywhere a 400 invalidValue (web.inputs refuses them before this app, as a SCIM
error), a PATCH of more than scim.resources.MAX_OPERATIONS operations a 400, an id that
is not a BIGINT a 404, a filter too long, deep or wide a 400 invalidFilter (scim.filters).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    ListResponse,
    Pagination,
    ResourceType,
    ResponseParameters,
    Schema,
    SchemaExtension,
    SCIMException,
    ScimFilter,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
)
from scim2_models import Error as ScimErrorMessage
from scim2_models import Group as ScimGroup
from scim2_models import Patch as PatchSupport
from scim2_models import User as ScimUser
from scim2_models.exceptions import (
    InvalidFilterException,
    InvalidSyntaxException,
    InvalidValueException,
    NotFoundException,
    UnauthorizedException,
)
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.exceptions import HTTPException

from userdesk.access.rules import Actor
from userdesk.config import Settings
from userdesk.db.session import Database
from userdesk.errors import (
    DomainError,
    NotAuthenticated,
)
from userdesk.scim import bulk as scim_bulk
from userdesk.scim import cursors as scim_cursors
from userdesk.scim import extension as custom_fields
from userdesk.scim import groups as scim_groups
from userdesk.scim import tokens
from userdesk.scim import users as scim_users
from userdesk.scim.errors import scim_exception_of
from userdesk.scim.models import ScimToken
from userdesk.scim.resources import GROUPS, USERS, Kind, Where
from userdesk.scim.users import Resource
from userdesk.web import scim_log
from userdesk.web.deps import DbSession, bearer_secret, client_ip

PREFIX = "/scim/v2"
MEDIA_TYPE = "application/scim+json"
ACCEPTED_TYPES = (MEDIA_TYPE, "application/json")
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
MAX_BODY = scim_bulk.MAX_PAYLOAD  # bytes; ServiceProviderConfig's bulk.maxPayloadSize
MAX_START_INDEX = 2**53  # a startIndex beyond it is taken as it (no list is that long)


def scim_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def error_response(exc: SCIMException, headers: dict[str, str] | None = None) -> Response:
    error = exc.to_error()
    return scim_response(
        error.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE),
        status=error.status or 400,
        headers=headers,
    )


async def _on_scim(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SCIMException)  # noqa: S101 - registered for it alone
    return error_response(exc, _challenge(exc))


async def _on_domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)  # noqa: S101
    scim = scim_exception_of(exc)
    return error_response(scim, _challenge(scim))


def _challenge(exc: SCIMException) -> dict[str, str] | None:
    if isinstance(exc, UnauthorizedException):
        return {"WWW-Authenticate": 'Bearer realm="scim"'}
    return None


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)  # noqa: S101
    error = ScimErrorMessage.from_validation_errors(exc)[0]
    return scim_response(
        error.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE), status=error.status or 400
    )


async def _on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return error_response(InvalidValueException(detail=f"{where}: {first.get('msg', 'invalid')}"))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101
    if exc.status_code == 404:
        return error_response(NotFoundException(detail=f"No such endpoint: {request.url.path}"))
    error = ScimErrorMessage(status=exc.status_code, detail=str(exc.detail))
    return scim_response(
        error.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE),
        status=exc.status_code,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def provisioning_actor(request: Request, db: DbSession) -> Actor:
    """The actor of the request's SCIM token.

    Raises:
        NotAuthenticated: no bearer token, or an unknown or revoked one (an API key too).
    """
    return _authenticated(db, request)


def _authenticated(
    db: Session, request: Request, known: dict[str, ScimToken] | None = None
) -> Actor:
    """`provisioning_actor`, in a transaction that may have read the token already: KNOWN,
    the tokens it read by secret (and where it notes the one it reads).

    Raises:
        NotAuthenticated: no bearer token, or an unknown or revoked one (an API key too).
    """
    secret = bearer_secret(request)
    if not secret:
        raise NotAuthenticated("Send a SCIM token as Authorization: Bearer.")
    ip, agent = client_ip(request), request.headers.get("user-agent")
    token = known.get(secret) if known is not None else None
    if token is None:
        token, actor = tokens.authenticate(db, secret=secret, ip=ip, user_agent=agent)
        if known is not None:
            known[secret] = token
    else:
        actor = tokens.provisioning_actor(token, ip=ip, user_agent=agent)
    setattr(request.state, scim_log.TOKEN_KEY, (token.id, token.organization_id))  # the log's
    return actor


ScimActor = Annotated[Actor, Depends(provisioning_actor)]


async def json_body(request: Request) -> Any:
    """The request's JSON body.

    Raises:
        InvalidSyntaxException: not JSON, or sent as another media type.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind not in ACCEPTED_TYPES:
        raise InvalidSyntaxException(detail=f"Send {MEDIA_TYPE}, not {kind}.")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise _too_large()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidSyntaxException(detail=f"The body is not JSON: {exc}") from None
    _check_strings(body)
    return body


class PayloadTooLargeException(SCIMException):
    """413: a body larger than MAX_BODY (RFC 7644 §3.12 gives it no scimType)."""

    status = 413


def _too_large() -> SCIMException:
    return PayloadTooLargeException(detail=f"The body is larger than {MAX_BODY} bytes.")


def _check_strings(body: Any) -> None:
    """Raises InvalidValueException: a string (key or value) holds a NUL or a lone
    surrogate, which no database column keeps."""
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack += value.keys()
            stack += value.values()
        elif isinstance(value, list):
            stack += value
        elif isinstance(value, str):
            if "\x00" in value:
                raise InvalidValueException(detail="A value holds a NUL character.")
            try:
                value.encode()
            except UnicodeEncodeError:
                raise InvalidValueException(detail="A value holds a lone surrogate.") from None


Body = Annotated[Any, Depends(json_body)]


def _base_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.base_url


def _location(request: Request, user_id: int, kind: str = "Users") -> str:
    return f"{request.url.scheme}://{request.url.netloc}{PREFIX}/{kind}/{user_id}"


def _where(request: Request) -> Where:
    """Where this request's resources are (its scheme and host, as the client called)."""
    return Where(
        scim_base=f"{request.url.scheme}://{request.url.netloc}{PREFIX}",
        base_url=_base_url(request),
    )


def _response_parameters(
    model: Any, attributes: str | None, excluded: str | None
) -> ResponseParameters[Any] | None:
    """The attributes and excludedAttributes of a request for one MODEL resource.

    Raises:
        InvalidValueException: an attribute path that does not parse.
    """
    if not attributes and not excluded:
        return None
    try:
        return ResponseParameters[model].model_validate(
            {"attributes": attributes, "excludedAttributes": excluded}
        )
    except ValidationError as exc:
        error = ScimErrorMessage.from_validation_errors(exc)[0]
        raise InvalidValueException(detail=error.detail) from None


def _resource_response(
    request: Request,
    db: Session,
    kind: Kind,
    found: Any,
    *,
    status: int = 200,
    attributes: str | None = None,
    excluded: str | None = None,
) -> Response:
    """FOUND (a user or a group) as KIND's SCIM resource, its version as the ETag (and its
    location as Location on a 201)."""
    if kind is USERS and not attributes and not excluded:
        # Every attribute of a user: its JSON built directly (scim_users.resource_body,
        # what the model's dump writes; tests/scim/test_users.py holds the two equal).
        location = _location(request, found.id)
        body = custom_fields.add_to(db, scim_users.resource_body(found, location=location), found)
        headers = {"ETag": scim_users.version_tag(found)}
        if status == 201:
            headers["Location"] = location
        return scim_response(body, status=status, headers=headers)
    resource = kind.show(db, found, _where(request))
    body = resource.model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
        response_parameters=_response_parameters(kind.model, attributes, excluded),
    )
    if kind.custom_fields and custom_fields.shown(attributes, excluded):
        custom_fields.add_to(db, body, found)
    headers = {"ETag": resource.meta.version}
    if status == 201:
        headers["Location"] = resource.meta.location
    return scim_response(body, status=status, headers=headers)


def create_scim_app(state: State) -> FastAPI:
    """The /scim/v2 app (create_app mounts it), sharing STATE (settings, database) with
    the app it is mounted in."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state = state
    app.add_exception_handler(SCIMException, _on_scim)
    app.add_exception_handler(DomainError, _on_domain)
    app.add_exception_handler(ValidationError, _on_validation)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_middleware(scim_log.RequestLogMiddleware, state=state)  # the request log
    _discovery(app)
    _users(app)
    _groups(app)
    _bulk(app)
    return app


def _service_provider_config() -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=PatchSupport(supported=True),
        bulk=Bulk(
            supported=True,
            max_operations=scim_bulk.MAX_OPERATIONS,
            max_payload_size=scim_bulk.MAX_PAYLOAD,
        ),
        filter=Filter(supported=True, max_results=scim_users.MAX_COUNT),
        pagination=Pagination(
            cursor=True,
            index=True,
            default_pagination_method=Pagination.DefaultPaginationMethod.index,
            default_page_size=scim_users.DEFAULT_COUNT,
            max_page_size=scim_users.MAX_COUNT,
            cursor_timeout=scim_cursors.CURSOR_TIMEOUT,
        ),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="SCIM token",
                description="A token from `userdesk scim-token create`, as a bearer token.",
                primary=True,
            )
        ],
    )


def _resource_types(db: Session, actor: Actor) -> list[ResourceType]:
    """User (with the custom fields' extension when the organization has fields) and Group."""
    user = ResourceType.from_resource(ScimUser)
    if custom_fields.schema(db, actor.organization_id) is not None:
        user.schema_extensions = [
            SchemaExtension.model_validate({"schema": custom_fields.SCHEMA_URN, "required": False})
        ]
    return [user, ResourceType.from_resource(ScimGroup)]


def _schemas(db: Session, actor: Actor) -> list[Schema]:
    """User's, Group's, and the custom fields' extension when the organization has fields."""
    custom = custom_fields.schema(db, actor.organization_id)
    return [
        scim_users.user_schema(),
        scim_groups.group_schema(),
        *([custom] if custom is not None else []),
    ]


def _discovery(app: FastAPI) -> None:
    dump = Context.RESOURCE_QUERY_RESPONSE

    @app.get("/ServiceProviderConfig")
    def service_provider_config(request: Request, actor: ScimActor) -> Response:
        config = _service_provider_config()
        config.meta = None
        return scim_response(config.model_dump(scim_ctx=dump))

    @app.get("/ResourceTypes")
    def resource_types(db: DbSession, actor: ScimActor) -> Response:
        found = _resource_types(db, actor)
        listed = ListResponse[ResourceType](
            total_results=len(found), start_index=1, items_per_page=len(found), resources=found
        )
        return scim_response(listed.model_dump(scim_ctx=Context.SEARCH_RESPONSE))

    @app.get("/ResourceTypes/{name}")
    def resource_type(name: str, db: DbSession, actor: ScimActor) -> Response:
        for found in _resource_types(db, actor):
            if found.id == name:
                return scim_response(found.model_dump(scim_ctx=dump))
        raise NotFoundException(detail=f"No resource type {name}.")

    @app.get("/Schemas")
    def schemas(db: DbSession, actor: ScimActor) -> Response:
        found = _schemas(db, actor)
        listed = ListResponse[Schema](
            total_results=len(found), start_index=1, items_per_page=len(found), resources=found
        )
        return scim_response(listed.model_dump(scim_ctx=Context.SEARCH_RESPONSE))

    @app.get("/Schemas/{schema_id}")
    def schema(schema_id: str, db: DbSession, actor: ScimActor) -> Response:
        for found in _schemas(db, actor):
            if found.id == schema_id:
                return scim_response(found.model_dump(scim_ctx=dump))
        raise NotFoundException(detail=f"No schema {schema_id}.")


# Made once: scim2-models builds a parametrized class on each subscript.
_USER_LIST = ListResponse[Resource]
_GROUP_LIST = ListResponse[ScimGroup]


def list_body(
    total: int,
    start: int | None,
    resources: list[dict[str, Any]],
    *,
    next_cursor: str | None,
    previous: str | None,
) -> dict[str, Any]:
    """A ListResponse as ListResponse.model_dump writes it, of resources already dumped."""
    body: dict[str, Any] = {"schemas": [LIST_SCHEMA], "totalResults": total}
    if start is not None:
        body["startIndex"] = start
    body["itemsPerPage"] = len(resources)
    if next_cursor is not None:
        body["nextCursor"] = next_cursor
    if previous is not None:
        body["previousCursor"] = previous
    body["Resources"] = resources
    return body


def _cursoring(request: Request) -> scim_users.Cursoring:
    settings: Settings = request.app.state.settings
    return scim_users.Cursoring(secret_key=settings.secret_key, now=time.time())


@dataclass(frozen=True)
class Listed:
    """One page of a list: its users or groups, the total, and where it is (startIndex
    when paged by index; the cursors when by cursor)."""

    found: list[Any]
    total: int
    start: int | None
    next_cursor: str | None
    previous_cursor: str | None


def _page_of(request: Request, db: Session, actor: Actor, search: Any, kind: Kind) -> Listed:
    """The page of KIND's resources SEARCH asks for: by cursor (RFC 9865) when it holds
    one, else by index. The one branch of GET /Users, /Users/.search and GET /Groups."""
    filter_ = str(search.filter) if search.filter else None
    descending = search.sort_order == SearchRequest.SortOrder.descending
    users = kind is USERS
    # Groups sort by id only (scim.groups).
    sorting = {"sort_by": str(search.sort_by) if search.sort_by else None} if users else {}
    if search.cursor is not None:  # RFC 9865
        by_cursor = scim_users.cursor_search if users else scim_groups.cursor_search
        found = by_cursor(
            db,
            actor=actor,
            filter_=filter_,
            cursor=search.cursor,
            count=search.count,
            descending=descending,
            cursoring=_cursoring(request),
            **sorting,
        )
        items = found.users if isinstance(found, scim_users.CursorPage) else found.groups
        return Listed(items, found.total, None, found.next_cursor, found.previous_cursor)
    by_index = scim_users.search if users else scim_groups.search
    page = by_index(
        db,
        actor=actor,
        filter_=filter_,
        start_index=search.start_index or 1,
        count=scim_users.DEFAULT_COUNT if search.count is None else search.count,
        descending=descending,
        **sorting,
    )
    items = page.users if isinstance(page, scim_users.Page) else page.groups
    return Listed(items, page.total, page.start_index, None, None)


def _search(
    request: Request, db: Session, actor: Actor, search: SearchRequest[Resource]
) -> Response:
    listed = _page_of(request, db, actor, search, USERS)
    users = listed.found
    with_fields = bool(users) and bool(custom_fields.fields(db, actor.organization_id))
    if not search.attributes and not search.excluded_attributes:
        # Every attribute: the page's JSON built directly (scim_users.resource_body).
        bodies = [
            scim_users.resource_body(user, location=_location(request, user.id)) for user in users
        ]
        if with_fields:
            for body, user in zip(bodies, users, strict=True):
                custom_fields.add_to(db, body, user)
        return scim_response(
            list_body(
                listed.total,
                listed.start,
                bodies,
                next_cursor=listed.next_cursor,
                previous=listed.previous_cursor,
            )
        )
    resources = [
        scim_users.to_resource(user, location=_location(request, user.id)) for user in users
    ]
    page = _USER_LIST(
        total_results=listed.total,
        start_index=listed.start,
        items_per_page=len(resources),
        resources=resources,
        next_cursor=listed.next_cursor,
        previous_cursor=listed.previous_cursor,
    )
    parameters = ResponseParameters[Resource](
        attributes=search.attributes, excluded_attributes=search.excluded_attributes
    )
    body = page.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters)
    if with_fields and custom_fields.shown(search.attributes, search.excluded_attributes):
        for shown, user in zip(body.get("Resources", []), users, strict=True):
            custom_fields.add_to(db, shown, user)
    return scim_response(body)


def _search_request(values: dict[str, Any], model: Any = Resource) -> Any:
    """A SearchRequest for MODEL's resources from query parameters or a /.search body.

    Raises:
        InvalidFilterException, InvalidValueException: a bad filter or parameter.
    """
    expression = values.get("filter")
    # scim2-models resolves a filter's attributes against MODEL, which does not know the
    # organization's custom fields: such a filter is checked for its syntax here, and for
    # its attributes by scim.filters as it becomes SQL.
    custom = isinstance(expression, str) and custom_fields.SCHEMA_URN.lower() in expression.lower()
    if custom:
        values = {key: value for key, value in values.items() if key != "filter"}
    try:
        search = SearchRequest[model].model_validate(values, scim_ctx=Context.SEARCH_REQUEST)
        if custom:
            search = search.model_copy(update={"filter": ScimFilter(expression)})
    except ValidationError as exc:
        error = ScimErrorMessage.from_validation_errors(exc)[0]
        raise SCIMException.from_error(error) from None
    _cap(search)
    return search


def _cap(search: Any) -> None:
    """SEARCH with a startIndex no list reaches (past it, every page is empty) cut to one
    that a database OFFSET and a JSON number hold.

    Raises:
        InvalidValueException: both startIndex and cursor (RFC 9865 lets a client ask for
            one way of paging or the other; both at once is a mistake, not a choice).
    """
    if search.start_index is not None and search.cursor is not None:
        raise InvalidValueException(
            detail="startIndex and cursor: send one of them (startIndex pages by index, "
            "cursor by cursor, RFC 9865)."
        )
    if search.start_index is not None and search.start_index > MAX_START_INDEX:
        search.start_index = MAX_START_INDEX


def _users(app: FastAPI) -> None:
    @app.get("/Users")
    def list_users(request: Request, db: DbSession, actor: ScimActor) -> Response:
        values: dict[str, Any] = dict(request.query_params)
        return _search(request, db, actor, _search_request(values))

    @app.post("/Users/.search")
    def search_users(request: Request, db: DbSession, actor: ScimActor, body: Body) -> Response:
        if not isinstance(body, dict):
            raise InvalidSyntaxException(detail="A SearchRequest is a JSON object.")
        return _search(request, db, actor, _search_request(body))

    _resource_routes(app, USERS)


def _resource_routes(app: FastAPI, kind: Kind) -> None:
    """GET, POST, PUT, PATCH and DELETE of KIND's resources (/Users or /Groups): the same
    shape for both, through scim.resources."""
    collection, one = f"/{kind.endpoint}", f"/{kind.endpoint}/{{resource_id}}"

    @app.get(one, name=f"get_{kind.endpoint}")
    def get_resource(
        request: Request,
        resource_id: str,
        db: DbSession,
        actor: ScimActor,
        attributes: str | None = None,
        excludedAttributes: str | None = None,  # noqa: N803 - SCIM's name
    ) -> Response:
        found = kind.get(db, actor, resource_id)
        return _resource_response(
            request, db, kind, found, attributes=attributes, excluded=excludedAttributes
        )

    if kind is USERS:
        posts = UserPosts()

        @app.post(collection, name=f"create_{kind.endpoint}")
        async def create_user(request: Request) -> Response:
            return await posts.answer(request)
    else:

        @app.post(collection, name=f"create_{kind.endpoint}")
        def create_resource(
            request: Request, db: DbSession, actor: ScimActor, body: Body
        ) -> Response:
            found = kind.create(db, actor, body, _where(request))
            return _resource_response(request, db, kind, found, status=201)

    def change(patch: bool) -> Any:
        def change_resource(
            request: Request, resource_id: str, db: DbSession, actor: ScimActor, body: Body,
            if_match: Annotated[str | None, Header()] = None,
        ) -> Response:  # fmt: skip
            where = _where(request)
            found = kind.change(db, actor, resource_id, body, if_match, where, patch=patch)
            return _resource_response(request, db, kind, found)

        return change_resource

    app.put(one, name=f"replace_{kind.endpoint}")(change(patch=False))
    app.patch(one, name=f"patch_{kind.endpoint}")(change(patch=True))

    @app.delete(one, name=f"delete_{kind.endpoint}")
    def delete_resource(
        request: Request, resource_id: str, db: DbSession, actor: ScimActor,
        if_match: Annotated[str | None, Header()] = None,
    ) -> Response:  # fmt: skip
        kind.delete(db, actor, resource_id, if_match, _where(request))
        return Response(status_code=204)


@dataclass
class _Post:
    """A POST /Users request waiting for its turn among writers (UserPosts)."""

    request: Request
    body: Any
    problem: Exception | None  # why its body was refused: answered once it authenticated
    answered: asyncio.Future[Response]


class UserPosts:
    """POST /Users, the requests that arrive together created in one transaction (a group
    commit): the first awaits its turn among writers, those that arrive meanwhile join it,
    and its transaction authenticates each, creates their users (scim.users.create_each:
    together where it can, each as it would be alone, a failure rolled back alone) and logs
    each one created (web.scim_log.log_in). Provisioning thousands of users over a few
    connections then takes one transaction, and a few statements, for several requests.
    Alone, a request is a transaction of one. Each answers as it would alone: its token
    first (401), then its body, then its user or the error for it.
    """

    def __init__(self) -> None:
        self._waiting: list[_Post] = []  # the requests of the transaction awaiting its turn
        self._gathering = False  # whether one awaits its turn

    async def answer(self, request: Request) -> Response:
        """REQUEST's answer, once the transaction that created its user has committed.

        Raises:
            What the request raises alone (the app's error handlers answer it).
        """
        body, problem = None, None
        try:
            body = await json_body(request)
        except SCIMException as exc:  # answered after authentication, as a dependency's
            problem = exc
        post = _Post(request, body, problem, asyncio.get_running_loop().create_future())
        self._waiting.append(post)
        if self._gathering:
            return await asyncio.shield(post.answered)
        self._gathering = True
        taken: list[_Post] = []
        try:
            database: Database = request.app.state.database
            async with database.writing() as db:
                taken, self._waiting, self._gathering = self._waiting, [], False
                answers = await run_in_threadpool(_create_posted, db, taken)
        except BaseException as exc:
            if not taken:  # failed before its turn: those waiting with it fail too
                taken, self._waiting, self._gathering = self._waiting, [], False
            for each in taken:
                each.answered.set_exception(exc)
        else:
            for each, answer in zip(taken, answers, strict=True):
                if isinstance(answer, Exception):
                    each.answered.set_exception(answer)
                else:
                    each.answered.set_result(answer)
        return await asyncio.shield(post.answered)


def _create_posted(db: Session, posts: list[_Post]) -> list[Response | Exception]:
    """The answers of POSTS, in order, each user created in DB's transaction: a Response,
    or the exception the request raises."""
    known: dict[str, ScimToken] = {}  # by secret: each token read once
    answers: list[Response | Exception | None] = []  # None: its user is wanted
    wanted: list[scim_users.Wanted] = []
    for post in posts:
        try:
            actor = _authenticated(db, post.request, known)
            if post.problem is not None:
                raise post.problem
            body, custom = custom_fields.split_resource(post.body)
            resource = USERS.model.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        except (DomainError, SCIMException, ValidationError) as exc:
            answers.append(exc)
            continue
        answers.append(None)
        wanted.append((actor, resource, custom))
    created = iter(scim_users.create_each(db, wanted=wanted, base_url=_base_url(posts[0].request)))
    logged: list[Any] = []  # the scopes of the requests answered 201
    for at, post in enumerate(posts):
        if answers[at] is not None:
            continue
        found = next(created)
        if isinstance(found, DomainError):
            answers[at] = found
            continue
        answers[at] = _resource_response(post.request, db, USERS, found, status=201)
        logged.append(post.request.scope)
    scim_log.log_in(db, logged, 201)
    return [answer for answer in answers if answer is not None]


_EITHER: Any = Resource | ScimGroup  # what /.search lists


def _search_everything(
    request: Request, db: Session, actor: Actor, body: dict[str, Any]
) -> Response:
    """POST /.search: users, then groups, as one list paged by index. A filter on an
    attribute one of the two does not have finds none of that one (RFC 7644 §3.4.2.1)."""
    search = _search_request(body)
    if search.cursor is not None:
        raise InvalidValueException(
            detail="cursor: /.search over every resource type pages by startIndex; page "
            "/Users/.search or /Groups by cursor."
        )
    expression = str(search.filter) if search.filter else None
    start = search.start_index or 1
    count = scim_users.MAX_COUNT if search.count is None else search.count
    problems: list[InvalidFilterException] = []

    def matching(find: Any) -> Any:
        try:
            return find()
        except InvalidFilterException as exc:
            problems.append(exc)
            return None

    users_page = matching(
        lambda: scim_users.search(
            db, actor=actor, filter_=expression, start_index=start, count=count
        )
    )
    users_total = users_page.total if users_page else 0
    found: list[Any] = []
    if users_page:
        found += [
            scim_users.to_resource(user, location=_location(request, user.id))
            for user in users_page.users
        ]
    groups_page = matching(
        lambda: scim_groups.search(
            db,
            actor=actor,
            filter_=expression,
            start_index=max(1, start - users_total),
            count=count - len(found) if start + len(found) > users_total else 0,
        )
    )
    if users_page is None and groups_page is None:
        raise problems[0]
    users_base = _location(request, 0).rsplit("/", 1)[0]
    if groups_page:
        found += [
            scim_groups.to_resource(
                db, group, location=_location(request, group.id, "Groups"), users_base=users_base
            )
            for group in groups_page.groups
        ]
    listed = ListResponse[_EITHER](
        total_results=users_total + (groups_page.total if groups_page else 0),
        start_index=start,
        items_per_page=len(found),
        resources=found,
    )
    parameters = None
    if search.attributes or search.excluded_attributes:
        parameters = ResponseParameters[_EITHER].model_validate(
            {
                "attributes": [str(path) for path in search.attributes or []] or None,
                "excludedAttributes": [str(p) for p in search.excluded_attributes or []] or None,
            }
        )
    body = listed.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters)
    users = users_page.users if users_page else []
    if (
        users
        and custom_fields.fields(db, actor.organization_id)
        and custom_fields.shown(search.attributes, search.excluded_attributes)
    ):  # the users come first, then the groups
        for shown, user in zip(body.get("Resources", []), users, strict=False):
            custom_fields.add_to(db, shown, user)
    return scim_response(body)


def _groups(app: FastAPI) -> None:
    @app.post("/.search")
    def search_everything(
        request: Request, db: DbSession, actor: ScimActor, body: Body
    ) -> Response:
        if not isinstance(body, dict):
            raise InvalidSyntaxException(detail="A SearchRequest is a JSON object.")
        return _search_everything(request, db, actor, body)

    @app.get("/Groups")
    def list_groups(request: Request, db: DbSession, actor: ScimActor) -> Response:
        search = _search_request(dict(request.query_params), ScimGroup)
        page = _page_of(request, db, actor, search, GROUPS)
        users_base = _location(request, 0).rsplit("/", 1)[0]
        resources = [
            scim_groups.to_resource(
                db, group, location=_location(request, group.id, "Groups"), users_base=users_base
            )
            for group in page.found
        ]
        listed = _GROUP_LIST(
            total_results=page.total,
            start_index=page.start,
            items_per_page=len(resources),
            resources=resources,
            next_cursor=page.next_cursor,
            previous_cursor=page.previous_cursor,
        )
        parameters = None
        if search.attributes or search.excluded_attributes:
            parameters = ResponseParameters[ScimGroup](
                attributes=search.attributes, excluded_attributes=search.excluded_attributes
            )
        return scim_response(
            listed.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters)
        )

    _resource_routes(app, GROUPS)


def _bulk(app: FastAPI) -> None:
    @app.post("/Bulk")
    def bulk(request: Request, db: DbSession, actor: ScimActor, body: Body) -> Response:
        done = scim_bulk.run(db, actor=actor, body=body, where=_where(request))
        return scim_response(done.model_dump(scim_ctx=Context.BULK_RESPONSE))
