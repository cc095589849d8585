"""The console names actions in words (audit.wording): the Audit log, a user's Activity,
the toasts after an action; and shows times as <time> elements, relative and absolute."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.api.test_impersonation import csrf_of, link_for, use_link
from userdesk.access.rules import system_actor
from userdesk.activity.models import ActivityEvent
from userdesk.audit import service as audit
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization


def test_the_toast_says_what_was_done_to_whom(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org, first_name="Ann", last_name="Lee")
    csrf = factories.login(client, admin.email)
    done = client.post(
        f"/console/users/{ann.id}/actions/disable",
        data={"reason": "Left the company", "csrf_token": csrf},
    )
    assert done.headers["location"].endswith("?done=disable")
    page = client.get(done.headers["location"]).text
    assert re.search(r'data-testid="done">Disabled Ann Lee\.</div>', page)
    assert "Done:" not in page


def test_a_ban_toast_says_for_how_long(client: TestClient, db: Session, org: Organization) -> None:
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org, first_name="Ann", last_name="Lee")
    csrf = factories.login(client, admin.email)
    done = client.post(
        f"/console/users/{ann.id}/actions/ban",
        data={"reason": "Spam", "days": "7", "csrf_token": csrf},
    )
    assert done.status_code == 303
    assert "Banned Ann Lee for 7 days." in client.get(done.headers["location"]).text


def test_a_done_code_that_names_nothing_shows_no_toast(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org)
    factories.login(client, admin.email)
    page = client.get(f"/console/users/{ann.id}", params={"done": "<b>hacked</b>"}).text
    assert 'data-testid="done"' not in page
    assert "hacked" not in page


def test_the_audit_log_names_actions_and_targets_in_words(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org, first_name="Bob", last_name="Admin")
    ann = factories.make_user(db, org, first_name="Ann", last_name="Lee")
    csrf = factories.login(client, admin.email)
    client.post(
        f"/console/users/{ann.id}/actions/disable",
        data={"reason": "Left the company", "csrf_token": csrf},
    )
    system = system_actor(org.id, "Churn scoring")
    audit.record(db, actor=system, action="churn.scoring_started", target_type="job", target_id=41)
    # A churn run whose id is a user's: named as a churn run, not as that user.
    audit.record(db, actor=system, action="churn.scored", target_type="churn_run", target_id=ann.id)
    page = client.get("/console/audit").text
    row = page.split('data-action="user.disabled"', 1)[1].split("</tr>", 1)[0]
    assert 'title="user.disabled">Disabled</span>' in row
    assert f'<a href="/console/users/{ann.id}">Ann Lee</a>' in row
    assert "<code>" not in page
    assert '<a href="/console/jobs/41">job #41</a>' in page
    scored = page.split('data-action="churn.scored"', 1)[1].split("</tr>", 1)[0]
    assert "Scored churn risk" in scored
    assert f"churn run #{ann.id}" in scored
    assert "Ann Lee" not in scored
    assert '<option value="user.disabled">Disabled a user</option>' in page
    # The filter still takes the code.
    only = client.get("/console/audit", params={"action": "churn.scored"}).text
    assert f"churn run #{ann.id}" in only
    assert "Ann Lee" not in only.split('data-testid="audit-table"', 1)[1]


def test_the_activity_timeline_reads_as_words(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org, first_name="Ann", last_name="Lee")
    for kind in ("ticket.replied", "invoice.paid"):
        db.add(
            ActivityEvent(
                organization_id=org.id,
                user_id=ann.id,
                type=kind,
                occurred_at=utcnow() - timedelta(hours=3),
                properties={},
            )
        )
    db.flush()
    csrf = factories.login(client, admin.email)
    client.post(f"/console/users/{ann.id}/actions/revoke-sessions", data={"csrf_token": csrf})
    page = client.get(f"/console/users/{ann.id}").text
    timeline = page.split('data-testid="timeline"', 1)[1]
    assert 'title="ticket.replied">Replied to a ticket</span>' in timeline
    assert 'title="invoice.paid">Invoice paid</span>' in timeline
    assert "Signed out this user everywhere" in timeline
    assert f"user {ann.id}" not in timeline
    assert "3 hours ago</time>" in timeline


def test_times_are_time_elements_in_utc_without_a_known_zone(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org)
    factories.login(client, admin.email)
    page = client.get(f"/console/users/{ann.id}").text
    created = ann.created_at.strftime("%Y-%m-%d %H:%M")
    when = re.search(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time> \(via', page)
    assert when is not None, "the Created time is a <time> element"
    assert when.group(1).endswith("Z")
    assert when.group(3) == f"{created} UTC"
    assert when.group(2) in ("just now", "1 minute ago")


def test_times_are_in_the_admins_time_zone_where_it_is_known(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    admin.business_hours = {"time_zone": "Asia/Kolkata", "weekly": {}}
    ann = factories.make_user(db, org)
    db.flush()
    factories.login(client, admin.email)
    page = client.get(f"/console/users/{ann.id}").text
    local = (ann.created_at + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M")
    assert f'data-tz="Asia/Kolkata" title="just now">{local} IST</time>' in page


def test_after_ending_an_impersonation_no_banner_is_left(
    client: TestClient, app: FastAPI, db: Session, org: Organization
) -> None:
    factories.make_admin(db, org)  # never the last Administrator
    admin = factories.make_admin(db, org)
    ann = factories.make_user(db, org, first_name="Ann", last_name="Lee")
    url = link_for(client, factories.login(client, admin.email), ann)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as other:
        use_link(other, url)
        assert 'data-testid="impersonation-banner"' in other.get("/me").text
        ended = other.post("/impersonate/end", data={"csrf_token": csrf_of(other)})
    assert "You are no longer signed in as Ann" in ended.text
    assert 'data-testid="impersonation-banner"' not in ended.text
    assert "End impersonation" not in ended.text
