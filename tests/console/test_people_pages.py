from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.invitations.models import Invitation
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def test_adding_a_user_in_the_console_shows_field_errors_then_the_new_user(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    bad = client.post(
        "/console/users/new", data={"email": "nope", "first_name": "Pia", "csrf_token": csrf}
    )
    assert bad.status_code == 400
    assert "&#39;nope&#39; is not an email address" in bad.text
    assert 'value="Pia"' in bad.text  # nothing typed is lost
    good = client.post(
        "/console/users/new",
        data={
            "email": "pia@example.com",
            "first_name": "Pia",
            "send_welcome_email": "true",
            "csrf_token": csrf,
        },
    )
    assert good.status_code == 303
    assert "Pia" in client.get(good.headers["location"]).text
    assert db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "pia@example.com")
    ).one()


def test_the_wizard_reads_a_pasted_list_with_each_rows_problem(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    rows = client.post(
        "/console/invite/people",
        data={"paste": "Ann Lee <ann@example.com>\nbroken", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    ).text
    assert 'value="Ann"' in rows
    assert 'value="ann@example.com"' in rows
    assert "&#39;broken&#39; is not an email address" in rows


def test_the_wizard_invites_and_reports_who_was_there_already(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_user(db, org, email="old@example.com")
    team = factories.make_team(db, org, "Sales")
    csrf = factories.login(client, admin.email)
    done = client.post(
        "/console/invite",
        data={
            "email": ["new@example.com", "old@example.com", ""],
            "first_name": ["Nia", "", ""],
            "last_name": ["New", "", ""],
            "team_id": str(team.id),
            "send_email": "true",
            "subject": "Come to {{ organization.name }}",
            "body": "{{ link }}",
            "csrf_token": csrf,
        },
    )
    assert done.status_code == 303  # a reload of the page shown does not invite again
    shown = client.get(done.headers["location"])
    assert "new@example.com" in shown.text
    assert 'data-testid="already-there"' in shown.text
    invited = db.scalars(select(User).where(User.email == "new@example.com")).one()
    assert invited.team_id == team.id
    assert invited.status == "pending"
    message = db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "new@example.com")
    ).one()
    assert message.subject == f"Come to {org.name}"


def test_invitations_are_listed_resent_and_revoked_from_the_console(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    client.post(
        "/console/invite",
        data={
            "email": ["q@example.com"],
            "first_name": [""],
            "last_name": [""],
            "send_email": "true",
            "csrf_token": csrf,
        },
    )
    invitation = db.scalars(select(Invitation).where(Invitation.email == "q@example.com")).one()
    page = client.get("/console/invitations?status=pending").text
    assert "q@example.com" in page
    assert (
        client.post(
            f"/console/invitations/{invitation.id}/resend", data={"csrf_token": csrf}
        ).status_code
        == 303
    )
    assert (
        client.post(
            f"/console/invitations/{invitation.id}/revoke", data={"csrf_token": csrf}
        ).status_code
        == 303
    )
    assert "q@example.com" in client.get("/console/invitations?status=revoked").text
    assert "q@example.com" not in client.get("/console/invitations?status=pending").text


def test_the_mailbox_shows_links_to_admins_only(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    agent = factories.make_user(db, org, roles=("Agent",))
    csrf = factories.login(client, admin.email)
    client.post(
        "/console/invite",
        data={
            "email": ["r@example.com"],
            "first_name": [""],
            "last_name": [""],
            "send_email": "true",
            "csrf_token": csrf,
        },
    )
    box = client.get("/console/mailbox").text
    assert "r@example.com" in box
    assert '<a href="http://testserver/invite/' in box
    client.cookies.clear()
    factories.login(client, agent.email)
    assert client.get("/console/mailbox").status_code == 403


def test_an_email_template_is_edited_with_its_problems_named(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    bad = client.post(
        "/console/settings/emails/welcome",
        data={"subject": "Hi", "body": "{% for %}", "csrf_token": csrf},
    )
    assert bad.status_code == 400
    assert "body:" in bad.text
    good = client.post(
        "/console/settings/emails/welcome",
        data={"subject": "Hi {{ user.first_name }}", "body": "Go: {{ link }}", "csrf_token": csrf},
    )
    assert good.status_code == 303
    assert "Hi {{ user.first_name }}" in client.get("/console/settings/emails/welcome").text
    preview = client.post(
        "/console/email-preview",
        data={"subject": "Hi {{ user.first_name }}", "body": "{{ link }}", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    ).text
    assert "Hi Ann" in preview


def test_the_envelope_sends_a_verification_email_and_answers_with_a_toast(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org, email="s@example.com")
    user.email_verified_at = None
    db.flush()
    csrf = factories.login(client, admin.email)
    assert "Send a new verification email to s@example.com" in client.get("/console/users").text
    toast = client.post(
        f"/console/users/{user.id}/verification-email",
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert toast.status_code == 200
    assert "Verification email sent to s@example.com" in toast.text


def test_an_import_is_uploaded_mapped_dry_run_then_run_from_the_console(
    client: TestClient, db: Session, org: Organization, database, settings
) -> None:
    import dataclasses

    from userdesk.worker import Worker

    admin = factories.make_admin(db, org)
    csrf = factories.login(client, admin.email)
    uploaded = client.post(
        "/console/imports",
        files={"file": ("team.csv", b"Mail,Given\nkim@example.com,Kim\nnope,No\n", "text/csv")},
        data={"csrf_token": csrf},
    )
    assert uploaded.status_code == 303
    mapping_page = client.get(uploaded.headers["location"]).text
    assert "which column holds what" in mapping_page
    missing = client.post(
        uploaded.headers["location"], data={"dry_run": "true", "csrf_token": csrf}
    )
    assert missing.status_code == 400  # "Mail" is not a name the guess knows
    started = client.post(
        uploaded.headers["location"],
        data={
            "map_email": "Mail",
            "map_first_name": "Given",
            "dry_run": "true",
            "csrf_token": csrf,
        },
    )
    assert started.status_code == 303
    worker = Worker(database, dataclasses.replace(settings, smtp_url=None))
    while worker.run_jobs():
        pass
    report = client.get(started.headers["location"], headers={"HX-Request": "true"}).text
    assert 'data-testid="row-report"' in report
    assert "nope" in report
    assert "Dry run: 1 user would be imported; 1 row has an error." in report
    assert db.scalars(select(User).where(User.email == "kim@example.com")).first() is None
    client.post(
        uploaded.headers["location"],
        data={
            "map_email": "Mail",
            "map_first_name": "Given",
            "dry_run": "false",
            "csrf_token": csrf,
        },
    )
    while worker.run_jobs():
        pass
    kim = db.scalars(select(User).where(User.email == "kim@example.com")).one()
    assert (kim.first_name, kim.status) == ("Kim", "pending")
    page = client.get(started.headers["location"]).text
    assert "Import of team.csv: 2 rows" in page
    assert "Imported 1 user; 1 row had an error." in page
    report = client.get(f"{uploaded.headers['location']}/report.csv")
    assert report.headers["content-type"].startswith("text/csv")
    assert report.text.splitlines() == [
        "row,email,fate,detail",
        '2,"kim@example.com","created",""',
        '3,"nope","invalid","email \'nope\' is not an email address: an email address must '
        'have an @-sign."',
    ]
