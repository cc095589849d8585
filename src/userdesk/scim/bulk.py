"""SCIM Bulk (RFC 7644 §3.7): many POST, PUT, PATCH and DELETE operations on Users and
Groups in one request, through the very functions the single routes call.

Each operation runs in a savepoint of its own: one that fails is rolled back alone (its
audit rows with it) and reported with its status and a SCIM error; the others stay. An
operation refers to a resource another operation of the request creates by
`bulkId:<id>`, in its path (`/Groups/bulkId:g1`) or anywhere in its data (a group's
member `{"value": "bulkId:u1"}`); operations run in the order of the request, except that
one runs after those it refers to. Operations that refer to each other in a circle fail
with 409 invalidValue; one that refers to a failed operation, or to a bulkId no POST of
the request has, fails with 400 invalidValue. After `failOnErrors` errors the rest are
not run. The response lists the operations run, in the order they ran.

What this module does not do: read HTTP (the /scim/v2 app hands it the parsed body and
the base URL of its resources) or decide anything about users and groups (scim.users
and scim.groups do, through the console's services).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    BulkOperation,
    BulkResponse,
    Context,
    Error,
    SCIMException,
)
from scim2_models import Group as ScimGroup
from scim2_models.exceptions import (
    InvalidPathException,
    InvalidSyntaxException,
    InvalidValueException,
    PayloadTooLargeException,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from userdesk.access.rules import Actor
from userdesk.errors import DomainError
from userdesk.scim import users as scim_users
from userdesk.scim.errors import scim_exception_of
from userdesk.scim.resources import KINDS, USERS, Kind, Where
from userdesk.scim.users import Resource

MAX_OPERATIONS = 1000  # ServiceProviderConfig's bulk.maxOperations (of a Bulk request)
MAX_PAYLOAD = 1024 * 1024  # bytes; ServiceProviderConfig's bulk.maxPayloadSize
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
REFERENCE = "bulkId:"
MAX_DEPTH = 32  # levels of an operation's data (_resolved recurses through them)
METHODS = ("POST", "PUT", "PATCH", "DELETE")
SUCCESS = {"POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}
Either = Resource | ScimGroup


@dataclass
class _Operation:
    """One operation of the request as sent, and what became of it."""

    index: int
    method: str | None
    path: str | None
    bulk_id: str | None
    version: str | None
    data: Any
    refers_to: set[str] = field(default_factory=set)
    problem: Error | None = None  # found before it runs (malformed, circular)
    # after it ran
    status: int | None = None
    location: str | None = None
    new_version: str | None = None
    error: Error | None = None
    created_id: str | None = None


def _attribute(payload: dict[str, Any], name: str) -> Any:
    """PAYLOAD's attribute NAME (SCIM's names are case-insensitive)."""
    if name in payload:
        return payload[name]
    lowered = name.lower()
    return next((value for key, value in payload.items() if key.lower() == lowered), None)


def _error(exc: SCIMException) -> Error:
    return exc.to_error()


def _references(value: Any, found: set[str]) -> bool:
    """Add to FOUND the bulkIds VALUE refers to (strings "bulkId:<id>"); whether VALUE
    nests no deeper than MAX_DEPTH (a resource nests three or four levels)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, str):
            if item.startswith(REFERENCE):
                found.add(item[len(REFERENCE) :])
        elif isinstance(item, dict):
            stack += ((inner, depth + 1) for inner in item.values())
        elif isinstance(item, list):
            stack += ((inner, depth + 1) for inner in item)
    return True


def _resolved(value: Any, ids: dict[str, str]) -> Any:
    """VALUE with every "bulkId:<id>" string replaced by the id IDS gives it."""
    if isinstance(value, str):
        if value.startswith(REFERENCE):
            return ids[value[len(REFERENCE) :]]
        return value
    if isinstance(value, dict):
        return {key: _resolved(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, ids) for item in value]
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse(body: Any) -> tuple[list[_Operation], int | None]:
    """The operations of a BulkRequest BODY, and its failOnErrors.

    An operation that is malformed (no method, no path, a POST without bulkId ...) is
    kept with its problem, to fail alone.

    Raises:
        InvalidSyntaxException: BODY is not a BulkRequest object, Operations not a list.
        InvalidValueException: failOnErrors is not a positive integer; two operations
            share a bulkId.
        PayloadTooLargeException: more than MAX_OPERATIONS operations.
    """
    if not isinstance(body, dict):
        raise InvalidSyntaxException(detail="A BulkRequest is a JSON object.")
    schemas = _attribute(body, "schemas")
    if not isinstance(schemas, list) or BULK_REQUEST not in schemas:
        raise InvalidSyntaxException(detail=f"schemas must list {BULK_REQUEST}.")
    fail_on_errors = _attribute(body, "failOnErrors")
    if fail_on_errors is not None and (
        isinstance(fail_on_errors, bool)
        or not isinstance(fail_on_errors, int)
        or fail_on_errors < 1
    ):
        raise InvalidValueException(
            detail=f"failOnErrors: {str(fail_on_errors)[:40]} is not a positive integer."
        )
    raw = _attribute(body, "Operations")
    if not isinstance(raw, list):
        raise InvalidSyntaxException(detail="Operations: a BulkRequest lists its operations.")
    if len(raw) > MAX_OPERATIONS:
        raise PayloadTooLargeException(
            detail=f"Operations: {len(raw)} is more than maxOperations ({MAX_OPERATIONS})."
        )
    operations = [_operation(index, item) for index, item in enumerate(raw)]
    seen: set[str] = set()
    for operation in operations:
        if operation.bulk_id is None:
            continue
        if operation.bulk_id in seen:
            raise InvalidValueException(
                detail=f"bulkId: '{operation.bulk_id[:40]}' is used by two operations."
            )
        seen.add(operation.bulk_id)
    return operations, fail_on_errors


def _operation(index: int, item: Any) -> _Operation:
    if not isinstance(item, dict):
        return _Operation(
            index, None, None, None, None, None,
            problem=_error(InvalidSyntaxException(detail="An operation is a JSON object.")),
        )  # fmt: skip
    method = _text(_attribute(item, "method"))
    operation = _Operation(
        index,
        method.upper() if method else None,
        _text(_attribute(item, "path")),
        _text(_attribute(item, "bulkId")),
        _text(_attribute(item, "version")),
        _attribute(item, "data"),
    )
    problem = None
    if operation.method not in METHODS:
        problem = f"method: {str(method)[:20]!r} is not one of {', '.join(METHODS)}"
        operation.method = None
    elif operation.path is None:
        problem = "path is required"
    elif operation.method == "POST" and not operation.bulk_id:
        problem = "bulkId is required for a POST"
    elif operation.method != "DELETE" and not isinstance(operation.data, dict):
        problem = f"data (an object) is required for a {operation.method}"
    if problem:
        operation.problem = _error(InvalidValueException(detail=problem))
        return operation
    _references((operation.path or "").split("/"), operation.refers_to)
    if not _references(operation.data, operation.refers_to):
        detail = f"data nests deeper than {MAX_DEPTH} levels"
        operation.problem = _error(InvalidValueException(detail=detail))
        operation.refers_to.clear()
    return operation


def order(operations: list[_Operation]) -> list[_Operation]:
    """OPERATIONS in the order they run: the request's, but each after the POSTs whose
    bulkIds it refers to. Those in a circle of references get their problem (409
    invalidValue) and run (fail) where the circle was found."""
    creator = {op.bulk_id: op.index for op in operations if op.method == "POST" and op.bulk_id}
    waits_for: dict[int, set[int]] = {}
    needed_by: dict[int, list[int]] = {op.index: [] for op in operations}
    for op in operations:
        waits = {creator[ref] for ref in op.refers_to if ref in creator} - {op.index}
        if op.bulk_id in op.refers_to and op.method == "POST":
            op.problem = _circular(op, [op])
        waits_for[op.index] = waits
        for other in waits:
            needed_by[other].append(op.index)
    ready = [index for index, waits in waits_for.items() if not waits]
    heapq.heapify(ready)
    ran: list[_Operation] = []
    left = {op.index for op in operations}

    def done(index: int) -> None:
        left.discard(index)
        for later in needed_by[index]:
            waits_for[later].discard(index)
            if not waits_for[later] and later in left:
                heapq.heappush(ready, later)

    while left:
        if not ready:  # what is left waits on a circle: fail the circle's operations
            for index in sorted(_in_circles(left, waits_for) or left):
                circle = operations[index]
                circle.problem = _circular(
                    circle, [operations[other] for other in sorted(waits_for[index])]
                )
                waits_for[index] = set()
                heapq.heappush(ready, index)
            continue
        index = heapq.heappop(ready)
        if index not in left:
            continue
        ran.append(operations[index])
        done(index)
    return ran


def _in_circles(left: set[int], waits_for: dict[int, set[int]]) -> set[int]:
    """The indexes of LEFT that wait, through others, on themselves: the members of a
    strongly connected component of more than one (Tarjan's, without recursion: linear in
    the references, which a hostile request makes many)."""
    number: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    circled: set[int] = set()
    for root in sorted(left):
        if root in number:
            continue
        work = [(root, iter(sorted(waits_for[root] & left)))]
        number[root] = low[root] = len(number)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in number:
                    number[step] = low[step] = len(number)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(waits_for[step] & left))))
                elif step in on_stack:
                    low[node] = min(low[node], number[step])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == number[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circled.update(component)
    return circled


def _circular(op: _Operation, others: list[_Operation]) -> Error:
    named = ", ".join(REFERENCE + (other.bulk_id or "?") for other in others[:5])
    return Error(
        status=409,
        scim_type="invalidValue",
        detail=f"bulkId {op.bulk_id}: a circular reference ({named} refer back to it).",
    )


def run(db: Session, *, actor: Actor, body: Any, where: Where) -> BulkResponse[Any]:
    """Run the BulkRequest BODY as ACTOR, each operation in its own savepoint, except that
    POSTs of plain users that follow each other are created together (_run_batch).

    Raises:
        InvalidSyntaxException, InvalidValueException, PayloadTooLargeException: as parse.
    """
    operations, fail_on_errors = parse(body)
    ids: dict[str, str] = {}  # bulkId -> the id of what its POST created
    failed: set[str] = set()
    errors = 0
    ran: list[_Operation] = []
    queue = order(operations)
    at = 0
    while at < len(queue) and (fail_on_errors is None or errors < fail_on_errors):
        batch: list[_Operation] = []
        while at + len(batch) < len(queue) and _batchable(queue[at + len(batch)]):
            batch.append(queue[at + len(batch)])
        if len(batch) > 1:
            budget = None if fail_on_errors is None else fail_on_errors - errors
            done = _run_batch(db, actor, batch, where, budget)
            at += len(done)
        else:
            done = [queue[at]]
            _run_one(db, actor, queue[at], ids, failed, where)
            at += 1
        for op in done:
            ran.append(op)
            if op.error is not None:
                errors += 1
                if op.bulk_id:
                    failed.add(op.bulk_id)
            elif op.bulk_id and op.created_id:
                ids[op.bulk_id] = op.created_id
    return _response(ran)


def _batchable(op: _Operation) -> bool:
    """Whether OP is a POST of a plain user (the core schema alone, no reference, not
    inactive: see scim.users.batchable), which _run_batch creates with its neighbours."""
    if op.problem is not None or op.method != "POST" or op.refers_to:
        return False
    if (op.path or "").strip("/") != USERS.endpoint or not isinstance(op.data, dict):
        return False
    schemas = _attribute(op.data, "schemas")
    if not isinstance(schemas, list) or any(schema != USER_SCHEMA for schema in schemas):
        return False
    return not any(key.lower().startswith("urn:") for key in op.data)


def _run_batch(
    db: Session,
    actor: Actor,
    batch: list[_Operation],
    where: Where,
    max_errors: int | None,
) -> list[_Operation]:
    """Create the users of BATCH (each `_batchable`) together, in a savepoint of their own,
    each operation answered as _run_one would answer it alone; after MAX_ERRORS errors the
    rest are not run. The operations run, in order.

    A resource that turns out not batchable (scim.users.batchable), an insert that meets
    an email another transaction took meanwhile, or an actor who may not create users runs
    the batch one by one instead (each operation then fails alone as it would)."""
    resources: list[Resource | Exception] = []
    for op in batch:
        try:
            resource = USERS.model.model_validate(
                op.data, scim_ctx=Context.RESOURCE_CREATION_REQUEST
            )
        except (SCIMException, ValidationError) as exc:
            resources.append(exc)
            continue
        if not scim_users.batchable(resource):
            return _one_by_one(db, actor, batch, where, max_errors)
        resources.append(resource)
    try:
        with db.begin_nested():
            outcomes = scim_users.create_users(
                db, actor=actor, resources=resources, max_errors=max_errors
            )
    except (IntegrityError, DomainError):  # taken meanwhile; or a token that may not create
        return _one_by_one(db, actor, batch, where, max_errors)
    for op, outcome in zip(batch, outcomes, strict=False):
        if isinstance(outcome, Exception):
            op.error = _error_of(outcome)
            op.status = op.error.status
        else:
            op.created_id = str(outcome)
            op.location = where.location(USERS.endpoint, outcome)
            op.new_version = scim_users.NEW_VERSION
            op.status = SUCCESS["POST"]
    return batch[: len(outcomes)]


def _error_of(exc: Exception) -> Error:
    """The SCIM error an operation failing with EXC answers."""
    if isinstance(exc, DomainError):
        return _error(scim_exception_of(exc))
    if isinstance(exc, ValidationError):
        return Error.from_validation_errors(exc)[0]
    if isinstance(exc, SCIMException):
        return _error(exc)
    raise exc


def _one_by_one(
    db: Session, actor: Actor, batch: list[_Operation], where: Where, max_errors: int | None
) -> list[_Operation]:
    """BATCH's operations each run alone (_run_one), up to MAX_ERRORS errors."""
    ran, errors = [], 0
    for op in batch:
        op.error = op.status = op.created_id = op.location = op.new_version = None
        ran.append(op)
        _run_one(db, actor, op, {}, set(), where)
        if op.error is not None:
            errors += 1
            if max_errors is not None and errors >= max_errors:
                break
    return ran


def _run_one(
    db: Session,
    actor: Actor,
    op: _Operation,
    ids: dict[str, str],
    failed: set[str],
    where: Where,
) -> None:
    if op.problem is not None:
        op.error, op.status = op.problem, op.problem.status
        return
    for ref in sorted(op.refers_to):
        if ref not in ids:
            why = "failed" if ref in failed else "is not the bulkId of a POST of this request"
            op.error = _error(InvalidValueException(detail=f"{REFERENCE}{ref[:40]} {why}."))
            op.status = op.error.status
            return
    try:
        path = "/".join(_resolved((op.path or "").split("/"), ids))
        data = _resolved(op.data, ids) if op.refers_to else op.data
        kind, resource_id = _target(op.method or "", path or "")
        if resource_id is not None:
            op.location = where.location(kind.endpoint, resource_id)
        with db.begin_nested():
            _run_in_savepoint(db, actor, op, kind, data, resource_id or "", where)
    except DomainError as exc:
        op.error = _error(scim_exception_of(exc))
    except SCIMException as exc:
        op.error = _error(exc)
    except ValidationError as exc:
        op.error = Error.from_validation_errors(exc)[0]
    else:
        op.status = SUCCESS[op.method or "POST"]
        return
    op.status = op.error.status


def _run_in_savepoint(
    db: Session, actor: Actor, op: _Operation, kind: Kind, data: Any, resource_id: str, where: Where
) -> None:
    if op.method == "POST":
        found = kind.create(db, actor, data, where)
        op.created_id = str(found.id)
        op.location = where.location(kind.endpoint, found.id)
    elif op.method in ("PUT", "PATCH"):
        patch = op.method == "PATCH"
        found = kind.change(db, actor, resource_id, data, op.version, where, patch=patch)
    else:
        kind.delete(db, actor, resource_id, op.version, where)
        return
    op.new_version = kind.version(db, found)


def _target(method: str, path: str) -> tuple[Kind, str | None]:
    """The resource type PATH names and the resource id in it (None for a POST).

    Raises:
        InvalidPathException: not /Users or /Groups, an id with a POST, none otherwise.
    """
    endpoint, _, resource_id = path.strip("/").partition("/")
    kind = KINDS.get(endpoint)
    if kind is None or "/" in resource_id:
        raise InvalidPathException(detail=f"path: {path[:80]!r} is not /Users or /Groups.")
    if method == "POST" and resource_id:
        raise InvalidPathException(detail=f"path: a POST goes to /{endpoint}, not {path[:80]!r}.")
    if method != "POST" and not resource_id:
        raise InvalidPathException(detail=f"path: a {method} names a resource, /{endpoint}/<id>.")
    return kind, resource_id or None


def _response(ran: list[_Operation]) -> BulkResponse[Any]:
    model: Callable[..., Any] = BulkOperation[Resource]
    response: Callable[..., BulkResponse[Any]] = BulkResponse[Either]
    return response(
        operations=[
            model(
                method=op.method,
                bulk_id=op.bulk_id,
                version=op.new_version,
                location=op.location,
                status=op.status,
                response=op.error,
            )
            for op in ran
        ]
    )
