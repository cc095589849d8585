from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def test_the_users_page_and_row_menu_offer_what_applies(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    disabled = factories.make_user(db, org, status="disabled", email="dis@example.com")
    factories.login(client, admin.email)
    page = client.get(f"/console/users/{disabled.id}").text
    actions = page.split('data-testid="user-actions"', 1)[1].split("</div>", 1)[0]
    assert "Enable user" in actions
    assert "Disable user" not in actions
    assert "Ban user" in actions
    own = client.get(f"/console/users/{admin.id}").text.split('data-testid="user-actions"', 1)[1]
    assert "Disable user" not in own.split("</div>", 1)[0]  # not on oneself
    listing = client.get("/console/users").text
    assert "Actions for dis@example.com" in listing


def test_the_disable_dialog_needs_a_reason_then_disables(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    dialog = client.get(f"/console/users/{user.id}?action=disable").text
    assert "Please provide a reason" in dialog
    missing = client.post(f"/console/users/{user.id}/actions/disable", data={"csrf_token": csrf})
    assert missing.status_code == 400
    assert "The reason is required" in missing.text
    done = client.post(
        f"/console/users/{user.id}/actions/disable",
        data={"reason_choice": "Contract ended", "csrf_token": csrf},
    )
    assert done.status_code == 303
    db.expire_all()
    stored = db.get(User, user.id)
    assert stored is not None
    assert stored.status == "disabled"
    assert stored.status_reason == "Contract ended"


def test_a_wrong_email_in_the_delete_dialog_changes_nothing(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org, email="keep@example.com")
    csrf = factories.login(client, admin.email)
    refused = client.post(
        f"/console/users/{user.id}/actions/delete",
        data={"confirm_email": "kept@example.com", "csrf_token": csrf},
    )
    assert refused.status_code == 400
    assert "type the user&#39;s email to confirm" in refused.text
    db.expire_all()
    assert db.get(User, user.id).status == "active"  # type: ignore[union-attr]


def test_an_illegal_move_from_the_console_says_why(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    response = client.post(f"/console/users/{user.id}/actions/restore", data={"csrf_token": csrf})
    assert response.status_code == 409
    assert "A user who is Active cannot be given &#39;restore&#39;" in response.text


def test_editing_after_someone_else_saved_shows_what_they_changed(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org, first_name="Ann", last_name="Lee")
    csrf = factories.login(client, admin.email)
    form = client.get(f"/console/users/{user.id}?action=edit").text
    version = form.split('name="version" value="', 1)[1].split('"', 1)[0]
    user.last_name = "Someone-Else"
    user.version += 1
    db.flush()
    stale = client.post(
        f"/console/users/{user.id}/edit",
        data={
            "version": version,
            "first_name": "Anna",
            "last_name": "Lee",
            "email": user.email,
            "csrf_token": csrf,
        },
    )
    assert stale.status_code == 412
    assert 'data-testid="stale"' in stale.text
    assert "Someone-Else" in stale.text
    assert 'value="Anna"' in stale.text  # what was typed is kept
    fresh = stale.text.split('name="version" value="', 1)[1].split('"', 1)[0]
    saved = client.post(
        f"/console/users/{user.id}/edit",
        data={
            "version": fresh,
            "first_name": "Anna",
            "last_name": "Lee",
            "email": user.email,
            "csrf_token": csrf,
        },
    )
    assert saved.status_code == 303
    db.expire_all()
    assert db.get(User, user.id).first_name == "Anna"  # type: ignore[union-attr]


def test_a_bulk_action_from_the_list_previews_then_runs_as_a_job(
    client: TestClient, db: Session, org: Organization, database, settings
) -> None:
    import dataclasses

    from userdesk.worker import Worker

    admin = factories.make_admin(db, org)
    picked = [factories.make_user(db, org) for _ in range(3)]
    csrf = factories.login(client, admin.email)
    listing = client.get("/console/users").text
    assert 'data-testid="bulk-bar"' in listing
    ids = [str(u.id) for u in picked[:2]]
    preview = client.get("/console/bulk", params={"action": "trash", "ids": ids})
    assert preview.status_code == 200
    assert "Trash 2 users" in preview.text
    started = client.post("/console/bulk", data={"action": "trash", "ids": ids, "csrf_token": csrf})
    assert started.status_code == 303
    job_url = started.headers["location"]
    assert 'data-status="queued"' in client.get(job_url, headers={"HX-Request": "true"}).text
    worker = Worker(database, dataclasses.replace(settings, smtp_url=None))
    while worker.run_jobs():
        pass
    progress = client.get(job_url, headers={"HX-Request": "true"}).text
    assert 'data-status="done"' in progress
    assert "Moved 2 of 2 users to the trash." in progress
    # The poll that sees the job through brings the toast along, out of band.
    assert 'hx-swap-oob="beforeend:#toasts"' in progress
    assert ">Moved 2 users to the trash.</div>" in progress
    # The whole page, opened later, says what happened without a toast.
    whole = client.get(job_url).text
    assert "Moved 2 of 2 users to the trash." in whole
    assert "hx-swap-oob" not in whole
    db.expire_all()
    assert [db.get(User, u.id).status for u in picked] == ["trashed", "trashed", "active"]  # type: ignore[union-attr]


def test_a_bulk_ban_without_a_reason_asks_again(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    response = client.post(
        "/console/bulk",
        data={"action": "ban", "q": "status:active role:Member", "days": "3", "csrf_token": csrf},
    )
    assert response.status_code == 400
    assert "The reason is required" in response.text


def test_an_organization_may_tell_disabled_users_the_reason(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org, status="disabled")
    user.status_reason = "Contract ended"
    db.flush()
    csrf = factories.login(client, admin.email)
    saved = client.post(
        "/console/settings",
        data={"invitation_ttl_days": "7", "show_disable_reason": "true", "csrf_token": csrf},
    )
    assert saved.status_code == 303
    client.cookies.clear()
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = client.post(
        "/login", data={"email": user.email, "password": factories.PASSWORD, "csrf_token": token}
    )
    assert "Your account is disabled: Contract ended." in refused.text


def test_apply_to_selected_with_nothing_selected_is_refused(
    client: TestClient, db: Session, org: Organization
) -> None:
    """ "Apply to selected" with no row ticked acts on nobody, not on everyone."""
    admin = factories.make_admin(db, org)
    bystander = factories.make_user(db, org)
    csrf = factories.login(client, admin.email)
    listing = client.get("/console/users").text
    selected_form = listing.split('id="bulk-selected"', 1)[1].split("</form>", 1)[0]
    assert 'name="selected" value="true"' in selected_form
    assert "data-needs-selection" in selected_form
    preview = client.get("/console/bulk", params={"action": "disable", "selected": "true"})
    assert preview.status_code == 400
    assert "Select at least one user" in preview.text
    started = client.post(
        "/console/bulk",
        data={"action": "disable", "selected": "true", "reason": "x", "csrf_token": csrf},
    )
    assert started.status_code == 400
    db.expire_all()
    assert db.get(User, bystander.id).status == "active"  # type: ignore[union-attr]


def test_a_bulk_preview_leaves_the_acting_admin_out_and_says_why(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    others = [factories.make_user(db, org) for _ in range(2)]
    factories.login(client, admin.email)
    ids = [str(admin.id)] + [str(u.id) for u in others]
    preview = client.get("/console/bulk", params={"action": "disable", "ids": ids})
    assert preview.status_code == 200
    assert "Disable 2 users" in preview.text
    left_out = preview.text.split('data-testid="bulk-left-out"', 1)[1].split("</ul>", 1)[0]
    assert admin.email in left_out
    assert "yourself" in left_out
