"""The invite wizard: its preview says what the sent email will say, it offers only
back-office roles, and it ends on a page a reload does not post again."""

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.db.base import utcnow
from userdesk.invitations.models import Invitation
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization

HTMX = {"HX-Request": "true"}


def test_the_preview_names_the_inviting_admin_the_organization_and_the_real_expiry(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The preview is the email invite() sends, but for its hidden link."""
    org.settings = {**org.settings, "invitation_ttl_days": 5}
    admin = factories.make_admin(db, org, first_name="Greta", last_name="Gruber")
    csrf = factories.login(client, admin.email)
    subject = "{{ inviter }} invited you to {{ organization.name }}"
    body = "Hello {{ user.first_name }}, until {{ expires }}: {{ link }}"
    before = utcnow()
    shown = client.post(
        "/console/invite/email-preview",
        data={
            "subject": subject,
            "body": body,
            "email": ["nia@example.com"],
            "first_name": ["Nia"],
            "last_name": ["New"],
            "csrf_token": csrf,
        },
        headers=HTMX,
    )
    assert shown.status_code == 200
    assert f"Greta Gruber invited you to {org.name}" in shown.text
    assert "Hello Nia," in shown.text
    assert "The link works for 5 days" in shown.text
    expected = {
        (when + timedelta(days=5)).strftime("%Y-%m-%d %H:%M UTC") for when in (before, utcnow())
    }
    assert any(f"until {when}" in shown.text for when in expected), shown.text
    assert "Bob Admin" not in shown.text
    assert "Acme" not in shown.text or org.name == "Acme"

    sent = client.post(
        "/console/invite",
        data={
            "email": ["nia@example.com"],
            "first_name": ["Nia"],
            "last_name": ["New"],
            "send_email": "true",
            "subject": subject,
            "body": body,
            "csrf_token": csrf,
        },
    )
    assert sent.status_code == 303
    message = db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "nia@example.com")
    ).one()
    assert message.subject == f"Greta Gruber invited you to {org.name}"
    preview_text = shown.text.split("Hello Nia,", 1)[1].split(":", 1)[0]
    assert preview_text.strip().startswith("until ")
    assert message.payload["text"].startswith("Hello Nia, until ")


def test_a_template_that_does_not_render_is_named_in_the_preview(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    shown = client.post(
        "/console/invite/email-preview",
        data={"subject": "Hi", "body": "{{ nobody.knows }}", "csrf_token": csrf},
        headers=HTMX,
    )
    assert 'data-testid="preview-error"' in shown.text
    assert "nobody" in shown.text


def test_the_wizard_offers_back_office_roles_once_and_never_member(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    page = client.get("/console/invite").text
    assert page.count("Back-office roles") == 1
    offered = {chunk.split('"', 1)[0] for chunk in page.split('data-label="')[1:]}
    assert "Agent" in offered
    assert "Administrator" in offered
    assert "Member" not in offered
    member = factories.role(db, org, "Member")
    refused = client.post(
        "/console/invite",
        data={
            "email": ["m@example.com"],
            "first_name": [""],
            "last_name": [""],
            "role_ids": [str(member.id)],
            "csrf_token": csrf,
        },
    )
    assert 400 <= refused.status_code < 500
    assert "&#39;Member&#39; gives no back-office access" in refused.text
    count = select(func.count()).select_from(Invitation).where(Invitation.email == "m@example.com")
    assert db.scalar(count) == 0


def test_the_api_refuses_a_role_without_back_office_access_naming_the_field(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    member = factories.role(db, org, "Member")
    refused = client.post(
        "/api/v1/invitations",
        json={"people": [{"email": "m@example.com"}], "role_ids": [str(member.id)]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code in (400, 422), refused.text
    errors = refused.json()["errors"]
    assert errors[0]["field"] == "role_ids"
    assert "'Member'" in errors[0]["detail"]


def test_creating_users_lands_on_a_page_that_a_reload_does_not_post_again(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_user(db, org, email="old@example.com")
    csrf = factories.login(client, admin.email)
    posted = client.post(
        "/console/invite",
        data={
            "email": ["one@example.com", "two@example.com", "old@example.com"],
            "first_name": ["One", "Two", ""],
            "last_name": ["", "", ""],
            "csrf_token": csrf,
        },
    )
    assert posted.status_code == 303
    location = posted.headers["location"]
    assert location.startswith("/console/invite/done?")
    for _ in range(2):  # a reload shows the same, and invites nobody again
        done = client.get(location)
        assert done.status_code == 200
        assert "Invited 2 people" in done.text
        assert "one@example.com" in done.text
        assert "two@example.com" in done.text
        assert 'data-testid="already-there"' in done.text
    count = select(func.count()).select_from(Invitation)
    assert db.scalar(count.where(Invitation.organization_id == org.id)) == 2
    bad = client.get("/console/invite/done?invited=abc")
    assert bad.status_code == 400
    assert "&#39;abc&#39; is not an id" in bad.text


def test_the_done_page_shows_nothing_beyond_the_readers_reach(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Ids of another organization's invitations show nothing."""
    other = factories.make_organization(db, slug="other-org")
    stranger = factories.make_admin(db, other)
    theirs = factories.make_user(db, other, email="theirs@example.com", status="pending")
    invitation = Invitation(
        organization_id=other.id,
        user_id=theirs.id,
        email=theirs.email,
        token_hash="x" * 64,
        status="pending",
        expires_at=utcnow() + timedelta(days=7),
        invited_by_id=stranger.id,
        invited_by_name=stranger.name,
    )
    db.add(invitation)
    db.flush()
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    page = client.get(f"/console/invite/done?invited={invitation.id}&existing={theirs.id}")
    assert page.status_code == 200
    assert "theirs@example.com" not in page.text


def test_the_done_page_refuses_bad_ids_and_more_than_one_invite_makes(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.login(client, admin.email)
    bad = client.get("/console/invite/done?invited=1,x9")
    assert bad.status_code == 400
    assert "x9" in bad.text
    many = ",".join(str(i) for i in range(1, 1_002))
    too_many = client.get(f"/console/invite/done?existing={many}")
    assert too_many.status_code == 400
    assert "existing" in too_many.text
    assert "1000" in too_many.text.replace(",", "")


def test_the_invite_pages_are_for_who_may_invite_and_read(
    client: TestClient, db: Session, org: Organization
) -> None:
    assert client.get("/console/invite/done").status_code == 303  # to sign in
    member = factories.make_user(db, org, email="member@example.com", roles=("Member",))
    token = factories.login(client, member.email)
    assert client.get("/console/invite/done").status_code == 403
    preview = client.post("/console/invite/email-preview", data={"csrf_token": token})
    assert preview.status_code == 403
