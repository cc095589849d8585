"""Custom fields as columns of the Users list: chosen by an admin (kept as theirs), carried
by the URL, saved in segments, written by the fast rows as the reference template writes
them, and read only when shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.statements import statements_sent
from userdesk.access import service as access
from userdesk.access.rules import system_actor
from userdesk.organizations.models import Organization
from userdesk.segments import columns as list_columns
from userdesk.segments.models import Segment
from userdesk.users import attributes, fields
from userdesk.users.attributes import Party
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User
from userdesk.users.schemas import user_view
from userdesk.web.console import rows_html, views
from userdesk.web.templating import templates

ROWS_TEMPLATE = (Path(__file__).parent / "users_rows_reference.html").read_text()

SPECS: list[dict[str, Any]] = [
    {"key": "plan", "type": "choice", "options": ["Free", "Pro <b>"]},
    {"key": "seats", "type": "number"},
    {"key": "beta", "type": "boolean"},
    {"key": "since", "type": "date"},
    {"key": "company", "type": "text"},
    {"key": "langs", "type": "choices", "options": ["en", "fr"]},
]


def make_fields(db: Session, org: Organization) -> None:
    actor = system_actor(org.id, "tests")
    for spec in SPECS:
        fields.create_field(
            db, actor=actor, data=UserFieldCreate(label=spec["key"].title(), **spec)
        )
    fields.create_field(
        db,
        actor=actor,
        data=UserFieldCreate(key="secret", label="Secret", type="text", visibility="system"),
    )


def give(db: Session, user: User, **values: Any) -> None:
    checked = attributes.checked(
        db, organization_id=user.organization_id, values=values, party=Party.SYSTEM
    )
    attributes.write(db, user, checked)
    db.flush()


def test_custom_cells_are_written_as_the_reference_template_writes_them(
    db: Session, org: Organization
) -> None:
    """Each type as the list shows it (yes/no, choices joined, whole numbers without a
    point), every value escaped; users without a value get an empty cell."""
    make_fields(db, org)
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org, first_name="Ann")
    give(
        db,
        ann,
        plan="pro <b>",
        seats=12.0,
        beta=True,
        since="2024-02-29",
        company='O\'Brien & "Co" <x>',
        langs=["fr", "en"],
    )
    bo = factories.make_user(db, org, first_name="Bo")
    give(db, bo, beta=False, seats=2.5)
    factories.make_user(db, org, first_name="Cy")
    actor = access.actor_for_user(db, admin)
    shown = list_columns.chosen(db, actor=actor, keys=[s["key"] for s in SPECS])
    users = [admin, ann, bo, *db.query(User).filter(User.first_name == "Cy")]
    items = [user_view(u, team=None, groups=[], roles=[]) for u in users]
    attributes.attach(db, org.id, items, Party.ADMIN)
    now = datetime.now(UTC)
    rows, menus = views.rows(actor, items, {}, now, columns=shown)
    more = {"q": "", "sort": "name", "cursor": "abc", "columns": "plan,seats"}
    reference = templates.env.from_string(ROWS_TEMPLATE).render(
        auth=SimpleNamespace(csrf_token="t", signed_in=None),
        times={v["id"]: (v["last_seen_at"], v["created_at"]) for v in items},
        page=SimpleNamespace(next_cursor="abc"),
        rows=rows,
        row_menus=menus,
        q="",
        sort="name",
        columns_count=len(shown),
        columns_param="plan,seats",
    )
    fast = rows_html.write_rows(actor, items, {}, now, csrf_token="t", more=more, columns=shown)
    assert fast == reference
    assert (
        str(rows_html.render_rows(rows, menus, csrf_token="t", more=more, columns=6)) == reference
    )
    assert '<td data-column="plan">Pro &lt;b&gt;</td>' in fast
    assert '<td data-column="seats">12</td>' in fast
    assert '<td data-column="seats">2.5</td>' in fast
    assert '<td data-column="beta">Yes</td>' in fast
    assert '<td data-column="beta">No</td>' in fast
    assert '<td data-column="since">2024-02-29</td>' in fast
    assert '<td data-column="company">O&#39;Brien &amp; &#34;Co&#34; &lt;x&gt;</td>' in fast
    assert '<td data-column="langs">fr, en</td>' in fast
    assert fast.count('<td data-column="company"></td>') == 3
    assert 'colspan="17"' in fast
    assert "columns=plan%2Cseats" in fast
    none = rows_html.write_rows(actor, [], {}, now, csrf_token="t", more=None, columns=shown)
    assert 'colspan="17"' in none


def _signed_in(client: TestClient, db: Session, org: Organization) -> tuple[User, str]:
    make_fields(db, org)
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org, first_name="Ann", last_name="Zed")
    give(db, ann, plan="Pro <b>", seats=30, company="Acme & Co")
    bo = factories.make_user(db, org, first_name="Bo", last_name="Zed")
    give(db, bo, plan="Free", seats=3)
    token = factories.login(client, admin.email)
    return admin, token


def test_the_url_carries_the_columns_and_a_bad_one_is_named(
    client: TestClient, db: Session, org: Organization
) -> None:
    _signed_in(client, db, org)
    page = client.get("/console/users", params={"q": "seats:>10", "columns": "company,seats"})
    assert page.status_code == 200
    head = page.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert head.index('data-column="company">Company') < head.index('data-column="seats">Seats')
    assert '<td data-column="company">Acme &amp; Co</td>' in page.text
    assert '<td data-column="seats">30</td>' in page.text
    assert "Bo Zed" not in page.text
    assert "columns=company%2Cseats" in page.text  # the export keeps them
    bad = client.get("/console/users", params={"columns": "plan,colour"})
    assert bad.status_code == 400
    assert "&#39;colour&#39; is not a field to show as a column" in bad.text
    hidden = client.get("/console/users", params={"columns": "secret"})
    assert hidden.status_code == 400  # a field only the system sees is no column


def test_an_admins_choice_is_kept_for_them_alone(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin, token = _signed_in(client, db, org)
    page = client.get("/console/users").text
    assert 'data-testid="columns-chooser"' in page
    assert 'value="secret"' not in page
    assert 'data-column="' not in page
    chosen = client.post(
        "/console/users/columns",
        data={"csrf_token": token, "columns": ["seats", "plan"], "q": "zed", "sort": "-created"},
    )
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/console/users?q=zed&sort=-created&columns=seats%2Cplan"
    db.expire_all()
    assert db.get_one(User, admin.id).list_columns == ["seats", "plan"]
    again = client.get("/console/users").text
    assert '<th data-column="seats">Seats</th><th data-column="plan">Plan</th>' in again
    assert (
        '<input class="form-check-input" type="checkbox" name="columns" value="plan" checked>'
        in again
    )
    refused = client.post("/console/users/columns", data={"csrf_token": token, "columns": ["nope"]})
    assert refused.status_code == 400
    other = factories.make_admin(db, org)
    client.cookies.clear()
    factories.login(client, other.email)
    assert 'data-column="' not in client.get("/console/users").text
    # A field archived since is left out of a kept choice, not refused.
    system = system_actor(org.id, "t")
    plan = next(f for f in fields.list_fields(db, actor=system) if f.key == "plan")
    fields.archive_field(db, actor=system, field_id=plan.id)
    actor = access.actor_for_user(db, other)
    kept = list_columns.chosen(db, actor=actor, keys=["plan", "seats"], strict=False)
    assert [f.key for f in kept] == ["seats"]


def test_attributes_are_read_only_when_a_column_is_shown(
    client: TestClient, db: Session, org: Organization
) -> None:
    _signed_in(client, db, org)
    connection = db.connection()
    with statements_sent(connection) as plain:
        assert client.get("/console/users").status_code == 200
    with statements_sent(connection) as shown:
        assert client.get("/console/users", params={"columns": "plan"}).status_code == 200

    def reads(sent: list[str]) -> list[str]:
        return [s for s in sent if "attributes" in s and "user_fields" not in s]

    assert reads(plain) == []
    assert reads(shown)


def test_a_segment_saves_the_columns_and_shows_them(
    client: TestClient, db: Session, org: Organization
) -> None:
    _, token = _signed_in(client, db, org)
    page = client.get("/console/users", params={"columns": "plan"}).text
    assert '<input type="hidden" name="columns" value="plan">' in page
    saved = client.post(
        "/console/segments",
        data={"csrf_token": token, "name": "Plans", "q": "zed", "sort": "name", "columns": "plan"},
    )
    assert saved.status_code == 303
    segment = db.query(Segment).filter(Segment.name == "Plans").one()
    assert segment.columns == ["plan"]
    shown = client.get(saved.headers["location"]).text
    assert '<th data-column="plan">Plan</th>' in shown
    assert '<td data-column="plan">Pro &lt;b&gt;</td>' in shown
    refused = client.post(
        "/console/segments",
        data={"csrf_token": token, "name": "Bad", "q": "", "columns": "colour"},
    )
    assert refused.status_code == 400


def test_tab_sort_and_filter_links_keep_the_columns(
    client: TestClient, db: Session, org: Organization
) -> None:
    """A view with columns=... in its URL keeps them on every tab, sort header, filter
    menu item and chip: moving about the list does not lose them."""
    _signed_in(client, db, org)
    page = client.get("/console/users", params={"q": "zed", "columns": "seats,plan"}).text
    kept = "columns=seats%2Cplan"
    tabs = page.split('data-testid="status-tabs"', 1)[1].split("</ul>", 1)[0]
    links = [part.split('"', 1)[0] for part in tabs.split('href="')[1:]]
    assert len(links) == 8  # All, each status, Without Login
    assert all(kept in link for link in links)
    assert "/console/users?q=zed+status%3Aactive&amp;columns=seats%2Cplan" in tabs
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    sorts = [part.split('"', 1)[0] for part in head.split('href="')[1:]]
    assert len(sorts) == 5
    assert all(kept in link for link in sorts)
    assert "/console/users?q=zed&amp;sort=-created&amp;columns=seats%2Cplan" not in head
    assert "/console/users?q=zed&amp;sort=created&amp;columns=seats%2Cplan" in head
    assert 'href="/console/users?columns=seats%2Cplan"' in page  # the chip of "zed"
    assert "/console/users?q=zed+verified%3Ayes&amp;columns=seats%2Cplan" in page  # a menu
    # A tab followed shows the same columns.
    followed = client.get(
        "/console/users", params={"q": "zed status:active", "columns": "seats,plan"}
    )
    assert '<th data-column="seats">Seats</th><th data-column="plan">Plan</th>' in followed.text
    # Without columns shown, the links carry none.
    plain = client.get("/console/users", params={"q": "zed", "columns": ""}).text
    assert "columns=" not in plain.split('data-testid="status-tabs"', 1)[1].split("</ul>", 1)[0]


def test_the_segment_form_saves_the_columns(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The segment's edit form shows its columns ticked (its own first, in their order)
    and saves what is ticked; none ticked clears them; a post without them keeps them."""
    _, token = _signed_in(client, db, org)
    saved = client.post(
        "/console/segments",
        data={"csrf_token": token, "name": "Plans", "q": "zed", "columns": "seats,plan"},
    )
    assert saved.status_code == 303
    segment = db.query(Segment).filter(Segment.name == "Plans").one()
    form = client.get(f"/console/segments/{segment.id}").text
    boxes = form.split('data-testid="segment-columns"', 1)[1].split("</fieldset>", 1)[0]
    assert boxes.index('value="seats" checked') < boxes.index('value="plan" checked')
    assert 'value="company">' in boxes  # offered, not ticked
    assert 'value="secret"' not in boxes  # only the system sees it
    url = f"/console/segments/{segment.id}"
    base = {"csrf_token": token, "name": "Plans", "q": "zed", "sort": "name"}
    changed = client.post(url, data={**base, "columns": ["", "company", "seats"]})
    assert changed.status_code == 303
    db.expire_all()
    assert db.get_one(Segment, segment.id).columns == ["company", "seats"]
    shown = client.get(changed.headers["location"]).text
    assert '<th data-column="company">Company</th><th data-column="seats">Seats</th>' in shown
    kept = client.post(url, data={**base, "name": "Plans 2"})
    assert kept.status_code == 303
    db.expire_all()
    assert db.get_one(Segment, segment.id).columns == ["company", "seats"]
    refused = client.post(url, data={**base, "columns": ["", "secret"]})
    assert refused.status_code == 400
    assert "&#39;secret&#39; is not a field to show as a column" in refused.text
    db.expire_all()
    assert db.get_one(Segment, segment.id).columns == ["company", "seats"]
    cleared = client.post(url, data={**base, "columns": [""]})
    assert cleared.status_code == 303
    db.expire_all()
    assert db.get_one(Segment, segment.id).columns is None
