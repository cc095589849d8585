"""Human words for audit actions, their targets and product events: one table, used by the
console (Audit, a user's Activity, toasts), and by anything else that names an action.

Pure: no database, no web. An audit action reads as a past-tense phrase put around its
target ("Disabled" Ann Lee, "Moved" Ann Lee "to the trash"); a code without words (a new
product event) becomes words made from the code ("report.exported": "Report exported").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Wording:
    """VERB comes before the target, AFTER after it: "Added" Ann Lee "to a group"."""

    verb: str
    after: str = ""
    # False: the phrase says it all ("Recorded product events"), the target is not named.
    names_target: bool = True


# Every audit action the code writes (tests/unit/test_wording.py holds the code to it).
AUDIT_ACTIONS: dict[str, Wording] = {
    # A user's account, by an admin or by themselves
    "user.created": Wording("Created"),
    "user.imported": Wording("Imported"),
    "user.invited": Wording("Invited"),
    "user.registered": Wording("Registered"),
    "user.registration_confirmed": Wording("Confirmed the registration of"),
    "user.updated": Wording("Updated"),
    "user.scim_department_unmatched": Wording(
        "Found no team for the identity provider's department of"
    ),
    "user.password_reset": Wording("Reset the password of"),
    "user.password_changed": Wording("Changed the password of"),
    "user.password_rehashed": Wording("Upgraded the imported password hash of"),
    "user.email_change_requested": Wording("Asked to change the email address of"),
    "user.verification_email_sent": Wording("Sent a verification email to"),
    "user.session_ended": Wording("Ended a session of"),
    "user.sessions_ended": Wording("Ended every session of"),
    "user.added_to_group": Wording("Added", " to a group"),
    "user.business_hours_changed": Wording("Changed the business hours of"),
    "user.two_step_enabled": Wording("Turned on two-step verification for"),
    "user.two_step_disabled": Wording("Turned off two-step verification for"),
    "user.two_step_reset": Wording("Reset two-step verification for"),
    "user.recovery_codes_renewed": Wording("Renewed the recovery codes of"),
    # A user's standing (users.lifecycle)
    "user.validated": Wording("Validated"),
    "user.invalidated": Wording("Withdrew the validation of"),
    "user.disabled": Wording("Disabled"),
    "user.enabled": Wording("Enabled"),
    "user.banned": Wording("Banned"),
    "user.unbanned": Wording("Lifted the ban on"),
    "user.trashed": Wording("Moved", " to the trash"),
    "user.restored": Wording("Restored", " from the trash"),
    "user.deleted": Wording("Deleted"),
    "user.reactivated": Wording("Reactivated"),
    "user.activated": Wording("Activated"),
    "user.sessions_revoked": Wording("Signed out", " everywhere"),
    # Impersonation
    "user.impersonation_started": Wording("Started impersonating"),
    "user.impersonation_url_used": Wording("Opened the impersonation link for"),
    "user.impersonation_ended": Wording("Stopped impersonating"),
    # Invitations
    "invitation.resent": Wording("Sent a new invitation to"),
    "invitation.revoked": Wording("Revoked the invitation of"),
    # Retention
    "user.re_engagement_sent": Wording("Sent a re-engagement email to"),
    "user.outreach_assigned": Wording("Assigned an agent to reach out to"),
    "user.outreach_reassigned": Wording("Gave another agent the outreach to"),
    "user.outreach_done": Wording("Marked done the outreach to"),
    "churn.scoring_started": Wording("Started churn scoring", names_target=False),
    "churn.scored": Wording("Scored churn risk", names_target=False),
    # Access: roles, teams, groups, API keys
    "role.created": Wording("Created"),
    "role.renamed": Wording("Renamed"),
    "role.updated": Wording("Changed the permissions of"),
    "role.deleted": Wording("Deleted"),
    "team.created": Wording("Created"),
    "team.renamed": Wording("Renamed"),
    "team.deleted": Wording("Deleted"),
    "group.created": Wording("Created"),
    "group.renamed": Wording("Renamed"),
    "group.updated": Wording("Updated"),
    "group.deleted": Wording("Deleted"),
    "api_key.created": Wording("Created"),
    "scim_token.created": Wording("Created"),
    "scim_token.revoked": Wording("Revoked"),
    # Segments, emails, settings
    "segment.created": Wording("Created"),
    "segment.updated": Wording("Updated"),
    "segment.deleted": Wording("Deleted"),
    "email_template.updated": Wording("Edited"),
    "user_field.created": Wording("Created"),
    "user_field.updated": Wording("Changed"),
    "user_field.archived": Wording("Archived"),
    "user_field.restored": Wording("Restored"),
    "user_field.purged": Wording("Deleted", " and its values for good"),
    "organization.settings_changed": Wording("Changed the settings", names_target=False),
    "organization.business_hours_changed": Wording(
        "Changed the business hours", names_target=False
    ),
    "activity.events_recorded": Wording("Recorded product events", names_target=False),
    # Webhooks
    "webhook.created": Wording("Created"),
    "webhook.updated": Wording("Updated"),
    "webhook.deleted": Wording("Deleted"),
    "webhook.secret_rotated": Wording("Rotated the secret of"),
    "webhook.test_sent": Wording("Sent a test message to"),
    "webhook.resent": Wording("Sent a message again to"),
    "webhook.replayed": Wording("Replayed messages to"),
}

# What each target type is called (with "a" or "an" before it where the phrase needs one).
TARGET_NOUNS: dict[str, str] = {
    "user": "user",
    "role": "role",
    "team": "team",
    "group": "group",
    "segment": "segment",
    "user_field": "user field",
    "api_key": "API key",
    "scim_token": "SCIM token",
    "email_template": "email template",
    "organization": "organization",
    "job": "job",
    "import": "import",
    "churn_run": "churn run",
    "webhook_endpoint": "webhook endpoint",
}

# What the users did in the product (activity events), as the demo and the API send them.
EVENT_PHRASES: dict[str, str] = {
    "dashboard.viewed": "Viewed the dashboard",
    "ticket.created": "Opened a ticket",
    "ticket.replied": "Replied to a ticket",
    "report.exported": "Exported a report",
    "file.uploaded": "Uploaded a file",
    "message.sent": "Sent a message",
    "login": "Signed in",
    # Written by Userdesk itself (activity.models, impersonation.service)
    "sign_in_locked": "Locked out after too many wrong passwords",
    "impersonated.request": "Request made by an admin impersonating them",
}


def from_code(code: str) -> str:
    """Words made from a code without a wording: 'report.exported' -> 'Report exported',
    'api_key.created' -> 'Api key created'."""
    words = " ".join(code.replace(".", " ").replace("_", " ").replace("-", " ").split())
    return words[:1].upper() + words[1:]


def noun(target_type: str | None) -> str:
    """What a target type is called: 'churn_run' -> 'churn run'; '' for none."""
    if not target_type:
        return ""
    return TARGET_NOUNS.get(target_type, from_code(target_type).lower())


def with_article(word: str) -> str:
    """'a user', 'an API key', 'an import' (by the first sound, near enough)."""
    return f"{'an' if word[:1].lower() in 'aeio' else 'a'} {word}"


def _name_in(target_type: str, target_id: str | int | None, changes: Mapping[str, Any]) -> str:
    """The target's name as the event's CHANGES keep it ('' when they do not)."""
    name = changes.get("name")
    if isinstance(name, Mapping):
        name = name.get("to")
    if isinstance(name, str) and name:
        return name
    if target_type == "webhook_endpoint" and isinstance(changes.get("url"), str):
        return str(changes["url"])
    if target_type == "email_template" and target_id is not None:
        return f"{from_code(str(target_id))} email"
    return ""


def target_label(
    target_type: str | None,
    target_id: str | int | None,
    name: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> str:
    """A target as a person reads it: its NAME where known (or as CHANGES keep it: a
    segment's, a webhook endpoint's URL), else 'churn run #1'."""
    if name:
        return name
    if not target_type:
        return ""
    if found := _name_in(target_type, target_id, changes or {}):
        return found
    return f"{noun(target_type)} #{target_id}" if target_id is not None else noun(target_type)


def _ban_length(changes: Mapping[str, Any] | None, at: datetime | None) -> str:
    """' for 7 days' when CHANGES hold the ban's end and AT its start, ' for good' when the
    ban has no end; '' when the changes do not say."""
    if changes is None:
        return ""
    until = changes.get("until")
    if until is None:
        return " for good" if "status" in changes else ""
    if at is None:
        return ""
    try:
        end = datetime.fromisoformat(str(until))
    except ValueError:
        return ""
    days = round((end - at).total_seconds() / 86400)
    return f" for {days} {'day' if days == 1 else 'days'}"


def _added_group(changes: Mapping[str, Any] | None) -> str | None:
    groups = (changes or {}).get("groups")
    if not isinstance(groups, Mapping):
        return None
    added = [g for g in groups.get("to") or () if g not in (groups.get("from") or ())]
    return added[0] if len(added) == 1 else None


def _after(
    action: str, wording: Wording, changes: Mapping[str, Any] | None, at: datetime | None
) -> str:
    if action == "user.banned":
        return _ban_length(changes, at)
    if action == "user.added_to_group" and (group := _added_group(changes)):
        return f" to {group}"
    return wording.after


def phrase(
    action: str, changes: Mapping[str, Any] | None = None, at: datetime | None = None
) -> str:
    """ACTION in words, its target left out (it has a column of its own): 'Disabled',
    'Banned for 7 days', 'Sent a new invitation to', 'Moved to the trash'. CHANGES and AT
    (when it happened) add what they tell: a ban's length, the group added to."""
    wording = AUDIT_ACTIONS.get(action)
    if wording is None:
        return from_code(action)
    return wording.verb + _after(action, wording, changes, at)


def sentence(
    action: str,
    target: str | None,
    changes: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> str:
    """What was done to whom: 'Disabled Ann Lee', 'Banned Ann Lee for 7 days', 'Sent a new
    invitation to ann@x.example'. TARGET: the target's name (or email, or label)."""
    wording = AUDIT_ACTIONS.get(action)
    if wording is None:
        return f"{from_code(action)}: {target}" if target else from_code(action)
    if not wording.names_target or not target:
        return phrase(action, changes, at)
    return f"{wording.verb} {target}{_after(action, wording, changes, at)}"


def action_label(action: str) -> str:
    """ACTION on its own, for a list of actions to choose from: 'Disabled a user',
    'Created a segment', 'Changed the settings'."""
    wording = AUDIT_ACTIONS.get(action)
    if wording is None:
        return from_code(action)
    kind = action.split(".", 1)[0]
    kind = {"webhook": "webhook_endpoint", "invitation": "user"}.get(kind, kind)
    return sentence(action, with_article(noun(kind)))


def event_phrase(event_type: str) -> str:
    """A product event in words: 'Replied to a ticket'; an unknown type from its code."""
    return EVENT_PHRASES.get(event_type) or from_code(event_type)


# What each bulk action does to a user, as the audit log words it (users.bulk.ACTIONS).
BULK_ACTIONS: dict[str, str] = {
    "disable": "user.disabled",
    "enable": "user.enabled",
    "ban": "user.banned",
    "trash": "user.trashed",
    "restore": "user.restored",
    "validate": "user.validated",
    "revoke-sessions": "user.sessions_revoked",
    "resend-invitation": "invitation.resent",
}
IMPORT_JOB = "users.import"
CHURN_JOB = "churn.score"


def counted(n: int, word: str, plural: str | None = None) -> str:
    """'1 user', '1,980 users', 'no users'."""
    if n == 0:
        return f"no {plural or word + 's'}"
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def _bulk_changes(params: Mapping[str, Any], at: datetime | None) -> dict[str, Any]:
    """A bulk ban's length as `phrase` reads it from an event's changes."""
    if params.get("permanent"):
        return {"status": {"to": "banned"}}
    days = params.get("days")
    if isinstance(days, int) and at is not None:
        return {"until": (at + timedelta(days=days)).isoformat()}
    return {}


def _failed(n: int, of: str) -> str:
    return f"; {counted(n, of)} {'was' if n == 1 else 'were'} left out" if n else ""


def job_summary(
    kind: str,
    params: Mapping[str, Any],
    *,
    status: str,
    done: int,
    failed: int,
    total: int,
    at: datetime | None = None,
) -> str:
    """What a job did so far, as a person says it: 'Disabled 2 of 2 users.', 'Imported
    1,980 users; 20 rows had errors.', 'Banned 10 of 12 users for 7 days so far.'.
    KIND and PARAMS: the job's; AT: when it was started (a ban's length counts from it)."""
    if status == "queued":
        return f"Waiting to start: {counted(total, 'row' if kind == IMPORT_JOB else 'user')}."
    so_far = {"running": " so far", "failed": " before the job stopped"}.get(status, "")
    if kind == IMPORT_JOB:
        dry = bool(params.get("dry_run"))
        if status != "done":
            return f"Read {done + failed:,} of {counted(total, 'row')}{so_far}."
        if dry:
            would = f"Dry run: {counted(done, 'user')} would be imported"
            errors = "has an error" if failed == 1 else "have errors"
            return f"{would}; {counted(failed, 'row')} {errors}." if failed else f"{would}."
        made = f"{AUDIT_ACTIONS['user.imported'].verb} {counted(done, 'user')}"
        errors = "had an error" if failed == 1 else "had errors"
        return f"{made}; {counted(failed, 'row')} {errors}." if failed else f"{made}."
    if kind == CHURN_JOB:
        return f"Scored the churn risk of {done:,} of {counted(total, 'user')}{so_far}."
    action = BULK_ACTIONS.get(str(params.get("action", "")))
    if action is None:
        items = f"{done:,} of {counted(total, 'item')}"
        return f"{from_code(kind)}: {items} done{so_far}{_failed(failed, 'item')}."
    whom = f"{done:,} of {counted(total, 'user')}"
    did = sentence(action, whom, _bulk_changes(params, at), at)
    return f"{did}{so_far}{_failed(failed, 'user')}."


def bulk_toast(
    action: str, params: Mapping[str, Any], *, done: int, failed: int, at: datetime | None = None
) -> str:
    """The toast when a bulk ACTION is through: 'Disabled 12 users.', 'Moved 3 users to the
    trash; 1 user was left out.'."""
    audit_action = BULK_ACTIONS.get(action)
    if audit_action is None:
        return f"{from_code(action)}: {counted(done, 'user')}{_failed(failed, 'user')}."
    did = sentence(audit_action, counted(done, "user"), _bulk_changes(params, at), at)
    return f"{did}{_failed(failed, 'user')}."
