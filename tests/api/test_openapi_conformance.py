"""The API does what its OpenAPI document says: schemathesis, every check, on each backend.

Schemathesis runs as `st run --checks all` would, in the test's process against the app:
every operation generated from the document (its examples; the coverage of each
parameter's edges and of undeclared methods; random fuzzing, positive and negative; and
stateful sequences that follow the document's links), sent with an Administrator's API
key, and each answer checked: no server error, a documented status, content type, headers
and body, valid data accepted and invalid data refused, a 405's `Allow` right.

Its pytest plugin (`schemathesis.pytest.from_fixture`) does not run on pytest 9.2 (it sets
`Node._nodeid`, which is gone), so the test drives schemathesis's engine, the one its CLI
drives, and fails with every failure it reports. The seed is fixed and generation
derandomized, so a run repeats; `MAX_EXAMPLES` bounds it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import engine as st_engine
from schemathesis.engine import Status, events
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.web.deps import SESSION_COOKIE

MAX_EXAMPLES = 15
SEED = 16

# Where a rule the document cannot state refuses data the schema allows, with a 400 that
# names the field; everywhere else a schema-valid request must be accepted.
RULES_BEYOND_THE_SCHEMA: dict[str, str] = {
    "GET /api/v1/users": "q is the query language",
    "GET /api/v1/users/counts": "q is the query language",
    "GET /api/v1/users/export": "q is the query language",
    "POST /api/v1/users/bulk": "q is the query language",
    "POST /api/v1/users/bulk/preview": "q is the query language",
    "POST /api/v1/segments": "the query language; an API key saves shared segments only",
    "PATCH /api/v1/segments/{segment_id}": "the query language",
    "POST /api/v1/imports": "a CSV file's content",
    "DELETE /api/v1/users/{user_id}": "confirm_email must be the user's email",
    "POST /api/v1/users/{user_id}/{action}": "what each action needs (a ban's reason, ...)",
    "PUT /api/v1/business-hours": "opening hours that overlap or end before they start",
    "PUT /api/v1/users/{user_id}/business-hours": "the same, for an agent",
    "GET /api/v1/audit": "a cursor is opaque: only one the list gave out is taken",
    "GET /api/v1/users/{user_id}/activity": "a cursor is opaque, as above",
    "POST /api/v1/users/{user_id}/outreach": "agent_id must name an agent within reach",
    "POST /api/v1/users/{user_id}/outreach/{assignment_id}/reassign": "the same",
    "POST /api/v1/users/{user_id}/groups": "group_id must name a group",
    "POST /api/v1/users": "ids must name a team, groups, roles the caller may grant",
    "PATCH /api/v1/users/{user_id}": "the same",
    "POST /api/v1/invitations": "the same",
    "DELETE /api/v1/me/sessions/{session_id}": "the password typed again; not the one in use",
    "POST /api/v1/webhooks": "a URL: https unless private addresses are allowed, no user",
    "PATCH /api/v1/webhooks/{webhook_id}": "the same",
    "POST /api/v1/webhooks/{webhook_id}/test": "a paused endpoint is sent nothing (409)",
    "GET /api/v1/webhooks/{webhook_id}/messages": "a cursor is opaque, as above",
    "POST /api/v1/webhooks/{webhook_id}/replay": "since is not in the future",
    "PUT /api/v1/churn/definition": "an event churn names its event type",
    "GET /api/v1/churn/runs": "a cursor is opaque, as above",
    "GET /api/v1/churn/runs/{run_id}/scores": "a cursor is opaque, as above",
    "POST /api/v1/user-fields": "a key not reserved nor taken; options, limits by type",
    "PATCH /api/v1/user-fields/{field_id}": "options and limits by type; values convert",
}
# A generated If-Match is a stale version: 412 answers a valid request, and an invalid one
# too, as RFC 9110 (13.2.1) has it: preconditions are evaluated before the content is.
STALE_VERSION_ANSWERED = {"PATCH /api/v1/users/{user_id}"}


# What only a signed-in person does (an API key acts for no person, and gets a 403).
PERSONAL = {"tag": "me", "name": "POST /api/v1/users/{user_id}/impersonations"}


def config(
    auth: dict[str, Any], headers: dict[str, str] | None = None, *, only: Any = None
) -> schemathesis.Config:
    """All checks and phases, one worker, bounded and repeatable, authenticated by AUTH (a
    security scheme of the document and its credentials); only the operations ONLY names
    (an `[[operations]]` filter) if given."""
    # SCIM's operations (tagged SCIM) take a SCIM token, not these credentials: tests/scim
    # (scim2-tester's checks among them) holds them to what they answer.
    operations: list[dict[str, Any]] = [{"include-tag": "SCIM", "enabled": False}]
    if only is not None:  # an entry turned off deselects what it matches: all but those
        operations.append({**{f"exclude-{k}": v for k, v in only.items()}, "enabled": False})
    for label in RULES_BEYOND_THE_SCHEMA:
        accepted = ["2xx", "400", "401", "403", "404", "409", "429"]
        if label in STALE_VERSION_ANSWERED:
            accepted.append("412")
        checks: dict[str, Any] = {"positive_data_acceptance": {"expected-statuses": accepted}}
        if label in STALE_VERSION_ANSWERED:
            refused = ["400", "401", "403", "404", "409", "412", "428"]
            checks["negative_data_rejection"] = {"expected-statuses": refused}
        operations.append({"include-name": label, "checks": checks})
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "workers": 1,
            "auth": {"openapi": auth},
            "headers": headers or {},
            # The document refuses NUL in every string and key (`web.openapi`), but
            # schemathesis's extra properties ignore `propertyNames`: no NUL generated.
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "allow-x00": False,
            },
            "checks": {
                # RFC 6585: 428 is the answer to a write that came without If-Match.
                "missing_required_header": {"expected-statuses": ["400", "401", "403", "428"]}
            },
            "operations": operations,
        }
    )


@pytest.fixture
def people(db: Session, org: Organization) -> User:
    """Something to find behind ids: users, a team, a group; returns an Administrator."""
    team = factories.make_team(db, org)
    group = factories.make_group(db, org)
    admin = factories.make_admin(db, org)
    factories.make_user(db, org, team=team, groups=[group])
    factories.make_user(db, org, roles=("Agent",), team=team)
    factories.make_user(db, org, status="pending", password=None)
    db.flush()
    return admin


def _described(recorder: Any, case_id: str, check: Any) -> str:
    """A failure as a line to read: the check, the request as curl, and the answer."""
    failure = check.failure_info.failure
    interaction = recorder.interactions.get(case_id)
    answer = ""
    if interaction is not None and interaction.response is not None:
        response = interaction.response
        answer = f"\n    -> {response.status_code} {response.content[:300]!r}"
    return (
        f"{recorder.label}: {check.name}: {failure.title}: {failure.message.splitlines()[0]}"
        f"\n    {check.failure_info.code_sample[:600]}{answer}"
    )


def test_every_operation_answers_as_its_document_says(
    app: FastAPI, db: Session, org: Organization, people: User
) -> None:
    """No request generated for any operation, sent with an Administrator's API key, gets
    a 5xx or an answer its document does not describe."""
    key = factories.make_api_key(db, org)
    settings = config({"apiKey": {"bearer": key}})
    run(schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=settings), "API key")


def test_a_person_s_own_operations_answer_as_their_document_says(
    app: FastAPI, client: TestClient, people: User
) -> None:
    """/api/v1/me and impersonation are a person's (an API key gets a 403 there): the same
    checks with the Administrator signed in, sending the page's CSRF token."""
    csrf = factories.login(client, people.email)
    session = client.cookies[SESSION_COOKIE]
    settings = config({"session": {"api_key": session}}, {"X-CSRF-Token": csrf}, only=PERSONAL)
    run(schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=settings), "session")


def run(schema: schemathesis.BaseSchema, who: str) -> None:
    """Run every phase of schemathesis on SCHEMA; fail with each failure it finds."""
    started = time.monotonic()
    failures: list[str] = []
    errors: list[str] = []
    cases = 0
    operations: set[str] = set()
    for event in st_engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            if event.label:
                operations.add(event.label)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failures.append(_described(event.recorder, case_id, check))
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(str(getattr(event, "info", event)))
    elapsed = time.monotonic() - started
    print(f"schemathesis ({who}): {len(operations)} operations, {cases} cases, {elapsed:.0f} s")
    unique = sorted(set(failures))
    assert not errors, "\n".join(errors)
    assert not unique, f"{len(unique)} failures:\n" + "\n".join(unique)
