"""The Mailbox shows that an email exists, to whom, when and in which state, but never a
link that opens an account; an invitation's link only to who may resend it; and it takes
mail.read. Nobody sends a link that sets the password or address of someone who holds as
much as they do (issue 16, break 3)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.access.models import Role, RolePermission, Team
from userdesk.access.rules import system_actor
from userdesk.db.base import utcnow
from userdesk.errors import InvalidInput
from userdesk.mail import mailbox
from userdesk.mail import service as mail
from userdesk.mail.models import OutboxMessage
from userdesk.mail.rules import EmailKind
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users.models import User

NEW_PASSWORD = "the attacker's own passphrase"
TOKEN_PATHS = r"/(?:invite|verify|password/reset|signup/confirm|email/confirm|impersonate)/"


def custom_role(
    db: Session,
    org: Organization,
    name: str,
    permissions: Iterable[str],
    scope: str = "organization",
) -> Role:
    role = Role(organization_id=org.id, name=name, scope=scope, builtin=False)
    role.permission_rows = [
        RolePermission(organization_id=org.id, permission=p) for p in sorted(set(permissions))
    ]
    db.add(role)
    db.flush()
    return role


def form_token(page_text: str) -> str:
    return page_text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def ask_reset(client: TestClient, email: str) -> None:
    page = client.get("/password/forgot")
    answer = client.post(
        "/password/forgot", data={"email": email, "csrf_token": form_token(page.text)}
    )
    assert answer.status_code == 200


def tokens_in_outbox(db: Session, to: str | None = None) -> list[str]:
    """Every link token of the emails queued (to TO), read from the table itself."""
    db.expire_all()
    query = select(OutboxMessage).where(OutboxMessage.kind == "email")
    if to is not None:
        query = query.where(OutboxMessage.recipient == to)
    found = []
    for message in db.scalars(query):
        found += re.findall(TOKEN_PATHS + r"([A-Za-z0-9_-]{20,})", message.payload["text"])
    return found


def links_in(page: str) -> list[str]:
    return re.findall(TOKEN_PATHS + r"[A-Za-z0-9_-]{20,}", page)


def sign_in_as(client: TestClient, user: User) -> str:
    client.cookies.clear()
    return factories.login(client, user.email)


def test_a_settings_manager_cannot_take_over_an_administrator_through_the_mailbox(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The takeover of the issue: a custom role with settings.manage and users.read asks a
    reset for an Administrator and looks for the link in the Mailbox; it is refused the
    Mailbox, and even with mail.read the link is nowhere in it."""
    admin = factories.make_admin(db, org, email="boss@example.com")
    custom_role(db, org, "Settings helper", ["settings.manage", "users.read"])
    custom_role(db, org, "Mail reader", ["settings.manage", "users.read", "mail.read"])
    helper = factories.make_user(db, org, roles=("Settings helper",))
    reader = factories.make_user(db, org, roles=("Mail reader",))

    client.cookies.clear()
    ask_reset(client, admin.email)
    [token] = tokens_in_outbox(db, admin.email)  # the live link exists, in the email only

    csrf = sign_in_as(client, helper)
    assert client.get("/console/mailbox").status_code == 403
    assert 'href="/console/mailbox"' not in client.get("/console/users").text
    made = client.post(  # nor can it make itself a role that opens the Mailbox
        "/api/v1/roles",
        json={"name": "Mail for me", "permissions": ["users.read", "mail.read"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert made.status_code == 403

    sign_in_as(client, reader)
    box = client.get("/console/mailbox")
    assert box.status_code == 200
    assert "boss@example.com" in box.text  # that the email exists, and to whom
    assert "Reset your password" in box.text
    assert "link hidden" in box.text
    assert token not in box.text
    assert links_in(box.text) == []

    client.cookies.clear()
    form = client.get(f"/password/reset/{token}")  # the owner's link still works
    assert form.status_code == 200


def test_no_reader_sees_a_link_that_opens_an_account_not_even_an_administrator(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Welcome, verification, reset, email change and signup links are hidden from an
    Administrator too; the rows still say to whom, what, and that they are queued."""
    admin = factories.make_admin(db, org)
    unverified = factories.make_user(db, org, email="unverified@example.com")
    unverified.email_verified_at = None
    changing = factories.make_user(db, org, email="old@example.com")
    db.flush()
    csrf = sign_in_as(client, admin)
    headers = {"X-CSRF-Token": csrf}
    added = client.post(
        "/api/v1/users",
        json={"email": "welcome@example.com", "send_welcome_email": True},
        headers=headers,
    )
    assert added.status_code == 201, added.text
    assert (
        client.post(
            f"/api/v1/users/{unverified.id}/verification-email", headers=headers
        ).status_code
        == 202
    )
    etag = client.get(f"/api/v1/users/{changing.id}").headers["etag"]
    patched = client.patch(
        f"/api/v1/users/{changing.id}",
        json={"email": "new@example.com"},
        headers={**headers, "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    organizations.update_settings(db, actor=system_actor(org.id), registration="open")
    other = TestClient(client.app, follow_redirects=False)
    page = other.get(f"/signup?org={org.slug}")
    other.post(
        "/signup",
        data={"org": org.slug, "email": "signup@example.com", "csrf_token": form_token(page.text)},
    )
    ask_reset(other, admin.email)
    tokens = tokens_in_outbox(db)
    assert len(tokens) == 5

    box = client.get("/console/mailbox").text
    for recipient in (
        "welcome@example.com",
        "unverified@example.com",
        "new@example.com",
        "old@example.com",
        "signup@example.com",
        admin.email,
    ):
        assert recipient in box
    assert box.count('data-testid="link-hidden"') == 6  # the email change notice too
    assert box.count('data-testid="mail-state">queued<') == 6
    assert links_in(box) == []
    for token in tokens:
        assert token not in box
    people = [unverified, changing, admin]
    for path in (
        "/api/v1/invitations",
        "/api/v1/audit",
        "/api/v1/users",
        *(f"/api/v1/users/{user.id}/activity" for user in people),
        *(f"/api/v1/users/{user.id}" for user in people),
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert not any(token in answer.text for token in tokens), path


def test_a_wording_that_disguises_the_link_still_shows_no_token(
    client: TestClient, db: Session, org: Organization
) -> None:
    """An admin who rewrites the reset email to carry the link reversed or cut up reads
    none of it back: the shown copy is rendered without the token."""
    admin = factories.make_admin(db, org)
    target = factories.make_user(db, org, email="target@example.com")
    mail.update_template(
        db,
        actor=system_actor(org.id),
        kind=EmailKind.PASSWORD_RESET,
        subject="Reset {{ link[-43:] }}",
        body="{{ link | reverse }} {{ link | upper }} {{ link[-43:-20] }} {{ link[-20:] }}\n"
        "{{ link }}",
    )
    ask_reset(client, target.email)
    [token] = tokens_in_outbox(db, target.email)
    sign_in_as(client, admin)
    box = client.get("/console/mailbox").text
    for piece in (token, token[::-1], token.upper(), token[:23], token[23:]):
        assert piece not in box


def test_one_administrator_cannot_send_another_a_link_that_sets_their_password(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Activate, reactivate, a verification email and an email change are refused on an
    Administrator by another Administrator, and allowed on a user who holds less."""
    acting = factories.make_admin(db, org)
    pending_admin = factories.make_admin(db, org, status="pending", password=None)
    deleted_admin = factories.make_admin(db, org, status="deleted")
    unverified_admin = factories.make_admin(db, org)
    unverified_admin.email_verified_at = None
    member_pending = factories.make_user(db, org, status="pending", password=None)
    member_unverified = factories.make_user(db, org)
    member_unverified.email_verified_at = None
    db.flush()
    headers = {"X-CSRF-Token": sign_in_as(client, acting)}

    def act(user: User, action: str) -> int:
        return client.post(f"/api/v1/users/{user.id}/{action}", headers=headers).status_code

    def change_email(user: User) -> int:
        etag = client.get(f"/api/v1/users/{user.id}").headers["etag"]
        return client.patch(
            f"/api/v1/users/{user.id}",
            json={"email": f"taken-over-{user.id}@example.com"},
            headers={**headers, "If-Match": etag},
        ).status_code

    before = tokens_in_outbox(db)
    assert act(pending_admin, "activate") == 403
    assert act(deleted_admin, "reactivate") == 403
    assert act(unverified_admin, "verification-email") == 403
    assert change_email(unverified_admin) == 403
    assert tokens_in_outbox(db) == before  # nothing was queued
    refused = client.post(f"/api/v1/users/{pending_admin.id}/activate", headers=headers).json()
    assert "holds every permission you hold" in refused["detail"]

    assert act(member_pending, "activate") == 200
    assert act(member_unverified, "verification-email") == 202
    assert change_email(member_unverified) == 200


def test_the_console_refuses_an_administrators_verification_email_from_another(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The console's button goes through the same check as the API."""
    acting = factories.make_admin(db, org)
    other = factories.make_admin(db, org)
    other.email_verified_at = None
    db.flush()
    csrf = sign_in_as(client, acting)
    answer = client.post(f"/console/users/{other.id}/verification-email", data={"csrf_token": csrf})
    assert answer.status_code == 403
    assert tokens_in_outbox(db, other.email) == []


def _invite(client: TestClient, key: str, email: str, team: Team) -> None:
    made = client.post(
        "/api/v1/invitations",
        json={"people": [{"email": email}], "team_id": str(team.id)},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert made.status_code == 201, made.text


def test_an_invitation_link_is_shown_only_to_who_may_resend_it(
    client: TestClient, db: Session, org: Organization
) -> None:
    """The Administrator and a team reader who may invite in the invitee's team see the
    link; a mail reader who may not invite sees the row with the link hidden; a team reader
    of another team does not see the row at all."""
    team, other_team = factories.make_team(db, org), factories.make_team(db, org)
    admin = factories.make_admin(db, org)
    key = factories.make_api_key(db, org)
    custom_role(db, org, "Team inviter", ["users.read", "users.create", "mail.read"], "team")
    custom_role(db, org, "Mail only", ["users.read", "mail.read"])
    inviter = factories.make_user(db, org, roles=("Team inviter",), team=team)
    stranger = factories.make_user(db, org, roles=("Team inviter",), team=other_team)
    reader = factories.make_user(db, org, roles=("Mail only",))
    _invite(client, key, "guest@example.com", team)
    [token] = tokens_in_outbox(db, "guest@example.com")

    for who in (admin, inviter):
        sign_in_as(client, who)
        box = client.get("/console/mailbox").text
        assert f'href="http://testserver/invite/{token}"' in box, who.email

    sign_in_as(client, reader)
    box = client.get("/console/mailbox").text
    assert "guest@example.com" in box
    assert "link hidden" in box
    assert token not in box
    assert links_in(box) == []

    sign_in_as(client, stranger)
    box = client.get("/console/mailbox")
    assert box.status_code == 200
    assert "guest@example.com" not in box.text
    assert token not in box.text


def test_an_invitation_of_someone_holding_more_is_hidden_and_not_resent(
    client: TestClient, db: Session, org: Organization
) -> None:
    """A team reader who may invite in the team neither sees nor resends the invitation
    of someone an Administrator invited there as an Administrator."""
    team = factories.make_team(db, org)
    key = factories.make_api_key(db, org)
    administrator = factories.role(db, org, "Administrator")
    custom_role(db, org, "Team inviter", ["users.read", "users.create", "mail.read"], "team")
    inviter = factories.make_user(db, org, roles=("Team inviter",), team=team)
    made = client.post(
        "/api/v1/invitations",
        json={
            "people": [{"email": "future-admin@example.com"}],
            "team_id": str(team.id),
            "role_ids": [str(administrator.id)],
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert made.status_code == 201, made.text
    [token] = tokens_in_outbox(db, "future-admin@example.com")
    csrf = sign_in_as(client, inviter)
    box = client.get("/console/mailbox").text
    assert "future-admin@example.com" in box
    assert token not in box
    invitation_id = made.json()["created"][0]["id"]
    resent = client.post(
        f"/api/v1/invitations/{invitation_id}/resend", headers={"X-CSRF-Token": csrf}
    )
    assert resent.status_code == 403


def test_the_mailbox_takes_mail_read(client: TestClient, db: Session, org: Organization) -> None:
    """Settings alone, an Agent and a Team Administrator are refused; mail.read opens it."""
    team = factories.make_team(db, org)
    custom_role(db, org, "Settings only", ["users.read", "settings.manage"])
    custom_role(db, org, "Mail only", ["users.read", "mail.read"])
    for roles, status in (
        (("Settings only",), 403),
        (("Agent",), 403),
        (("Team Administrator",), 403),
        (("Mail only",), 200),
        (("Administrator",), 200),
    ):
        user = factories.make_user(db, org, roles=roles, team=team)
        sign_in_as(client, user)
        assert client.get("/console/mailbox").status_code == status, roles
        shown = 'href="/console/mailbox"' in client.get("/console/users").text
        assert shown is (status == 200), roles


def test_a_team_scoped_reader_sees_only_the_emails_about_its_teams(
    db: Session, org: Organization
) -> None:
    """Rows about users of other teams, or about no user, stay out of a team reader's page."""
    team, other_team = factories.make_team(db, org), factories.make_team(db, org)
    custom_role(db, org, "Team mail", ["users.read", "mail.read"], "team")
    reader = factories.make_user(db, org, roles=("Team mail",), team=team)
    mine = factories.make_user(db, org, team=team, email="mine@example.com")
    theirs = factories.make_user(db, org, team=other_team, email="theirs@example.com")
    for user in (mine, theirs):
        mail.enqueue(
            db,
            organization_id=org.id,
            to=user.email,
            kind=EmailKind.RE_ENGAGEMENT,
            context=mail.email_context(org, user, link="http://x/login", expires=utcnow()),
            user_id=user.id,
        )
    mail.enqueue(
        db,
        organization_id=org.id,
        to="outsider@example.com",
        kind=EmailKind.RE_ENGAGEMENT,
        context=mail.email_context(org, mine, link="http://x/login", expires=utcnow()),
    )
    seen = mailbox.entries(db, actor=access.actor_for_user(db, reader))
    assert [entry.recipient for entry in seen] == ["mine@example.com"]
    everyone = mailbox.entries(db, actor=system_actor(org.id))
    assert {e.recipient for e in everyone} == {
        "mine@example.com",
        "theirs@example.com",
        "outsider@example.com",
    }


def test_an_email_queued_before_the_hidden_copy_has_its_token_hidden(
    db: Session, org: Organization
) -> None:
    """Rows written before emails kept a copy without their link are hidden by pattern."""
    token = "A" * 10 + "b_c-d" * 6 + "Z" * 3
    db.add(
        OutboxMessage(
            organization_id=org.id,
            kind="email",
            status="failed",
            recipient="old@example.com",
            subject="Reset your password",
            payload={
                "kind": "password_reset",
                "text": f"Go to https://x/password/reset/{token} now",
            },
            attempts=8,
            last_error=f"550 rejected https://x/password/reset/{token}",
            next_attempt_at=utcnow(),
        )
    )
    db.flush()
    [entry] = mailbox.entries(db, actor=system_actor(org.id))
    assert (entry.state, entry.attempts, entry.link_hidden is not None) == ("failed", 8, True)
    assert token not in entry.text
    assert entry.last_error is not None
    assert token not in entry.last_error
    assert "https://x/password/reset/…" in entry.text


def test_a_wording_cannot_send_an_account_link_to_another_address(
    db: Session, org: Organization
) -> None:
    """A settings manager who wraps the reset link in their own address is refused, naming
    the body; a link anyone may open may be wrapped."""
    wrapped = "Hello,\n\nhttps://evil.example/?next={{ link }}"
    with pytest.raises(InvalidInput) as refused:
        mail.update_template(
            db,
            actor=system_actor(org.id),
            kind=EmailKind.PASSWORD_RESET,
            subject="Reset",
            body=wrapped,
        )
    assert "{{ link }}" in refused.value.fields["body"]
    mail.update_template(
        db, actor=system_actor(org.id), kind=EmailKind.RE_ENGAGEMENT, subject="Back", body=wrapped
    )
