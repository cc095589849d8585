"""What the Users list costs the database per request, once warm: the API's page and the
console's send a fixed set of statements, and what the request path keeps between
requests (the custom fields' schema, the admin's time zone) is never stale, not even
after a change made by another server process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import make_settings
from tests.statements import statements_sent
from userdesk.access.rules import system_actor
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.organizations.models import Organization
from userdesk.users import attributes, fields
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.web.app import create_app

# The statements of a warm GET /api/v1/users: the key with its role's permissions (and
# the organization's user_fields_version), the page (its custom field values read with
# its rows), the page's teams, groups and roles.
API_STATEMENTS = 3
# The console's list page: the session with its user (their time zone and list columns
# too) and organization, the admin's roles, the organization's team, group and role
# names (the filter menus', which name the rows' teams and roles too, from the role ids on
# each user's row), the page and the sidebar's segments.
CONSOLE_STATEMENTS = 5


def _page_settings(connection: Connection) -> int:
    """The statements before the page: on PostgreSQL, its SET LOCAL turning parallel
    workers off for a read in sort order (users.service._page)."""
    return 1 if connection.dialect.name == "postgresql" else 0


def _sent(connection: Connection, client: TestClient, path: str, **headers: str) -> list[str]:
    """The statements of one GET of PATH, savepoints left out."""
    with statements_sent(connection) as seen:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.text
    return [s for s in seen if not s.startswith(("SAVEPOINT", "RELEASE"))]


def _with_a_field(db: Session, org: Organization) -> None:
    actor = system_actor(org.id)
    fields.create_field(
        db, actor=actor, data=UserFieldCreate(key="plan", label="Plan", type="text")
    )
    user = factories.make_user(db, org)
    attributes.write(db, user, {"plan": "pro"})
    db.flush()


def test_a_warm_api_list_sends_its_fixed_statements_and_never_reads_the_schema(
    client: TestClient, db: Session, connection: Connection, org: Organization
) -> None:
    """The custom fields' schema is known from the version read with the key."""
    _with_a_field(db, org)
    for _ in range(30):
        factories.make_user(db, org)
    headers = {"Authorization": f"Bearer {factories.make_api_key(db, org)}"}
    client.get("/api/v1/users?limit=50", headers=headers)  # warm: the schema read once

    sent = _sent(connection, client, "/api/v1/users?limit=50", **headers)

    assert len(sent) == API_STATEMENTS + _page_settings(connection), sent
    assert not [s for s in sent if "FROM user_fields" in s or "FROM organizations" in s]


def test_a_warm_console_list_sends_its_fixed_statements(
    client: TestClient, db: Session, connection: Connection, org: Organization
) -> None:
    """Neither the schema nor the admin's own row (for their time zone) is read."""
    _with_a_field(db, org)
    admin = factories.make_admin(db, org)
    for _ in range(30):
        factories.make_user(db, org)
    factories.login(client, admin.email)
    client.get("/console/users")

    sent = _sent(connection, client, "/console/users")

    assert len(sent) == CONSOLE_STATEMENTS + _page_settings(connection), sent
    assert not [s for s in sent if "FROM user_fields" in s]
    assert not [s for s in sent if "FROM users WHERE users.id" in s]  # the admin's own row


def test_the_console_shows_times_in_the_admins_time_zone_as_it_is_now(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The time zone comes with the session at each request: a change shows at once."""
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    for zone in ("Europe/Paris", "America/Chicago"):
        admin.business_hours = {"time_zone": zone}
        db.flush()
        assert f'data-tz="{zone}"' in client.get("/console/users").text
    admin.business_hours = None
    db.flush()
    assert "data-tz=" not in client.get("/console/users").text


# Another server process: adds a field and gives the first user a value, and commits.
_OTHER_PROCESS = """
import sys
from sqlalchemy import select
from sqlalchemy.orm import Session
from userdesk.access.rules import system_actor
from userdesk.db.engine import make_engine
from userdesk.users import attributes, fields
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User

with Session(make_engine(sys.argv[1])) as db:
    user = db.scalars(select(User).where(User.email == sys.argv[3])).one()
    actor = system_actor(int(sys.argv[2]))
    data = UserFieldCreate(key="plan", label="Plan", type="text")
    fields.create_field(db, actor=actor, data=data)
    attributes.write(db, user, {"plan": "pro"})
    db.commit()
"""


def test_a_field_added_by_another_process_shows_at_the_next_request(tmp_path: Path) -> None:
    """This process holds the schema it read; another one adds a field and commits: this
    one's next page shows the field's values."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as db:
        org = factories.make_organization(db)
        user = factories.make_user(db, org)
        key = factories.make_api_key(db, org)
        org_id, email = org.id, user.email
        db.commit()
    engine.dispose()
    app = create_app(make_settings(tmp_path, url), Database.from_url(url))
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        before = client.get("/api/v1/users", headers=headers).json()["items"]
        assert before[0]["attributes"] == {}
        assert attributes._HELD[org_id][1].active == []  # held by this process

        subprocess.run(  # noqa: S603 (our own command, fixed arguments)
            [sys.executable, "-c", textwrap.dedent(_OTHER_PROCESS), url, str(org_id), email],
            check=True,
            timeout=120,
        )

        after = client.get("/api/v1/users", headers=headers).json()["items"]
        assert after[0]["attributes"] == {"plan": "pro"}
        assert client.get("/api/v1/users?q=plan:pro", headers=headers).json()["items"]
    app.state.database.engine.dispose()
