"""The words for audit actions, targets and product events (audit.wording)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from userdesk import demo
from userdesk.access.models import Group, Role, Team
from userdesk.activity.models import SIGN_IN_LOCKED
from userdesk.audit import wording
from userdesk.users.lifecycle import _past
from userdesk.users.rules import Action
from userdesk.web.console.routes import DONE_ACTIONS

SRC = Path(wording.__file__).parents[1]
AT = datetime(2026, 1, 31, 9, 5, tzinfo=UTC)


def _expand_fstring(node: ast.JoinedStr, where: str) -> set[str]:
    """The actions an f-string action can be; each one the code writes is known here, and
    a new one fails until it is added (with its words)."""
    source = ast.unparse(node)
    if source == "f'user.{_past(action)}'":
        return {f"user.{_past(action)}" for action in Action}
    kinds = {model.__tablename__[:-1] for model in (Team, Group, Role)}
    for verb in ("created", "renamed", "deleted"):
        if source == f"f'{{kind}}.{verb}'":
            return {f"{kind}.{verb}" for kind in kinds}
    raise AssertionError(f"{where}: an audit action built as {source}: teach this test it")


def _actions_in(node: ast.expr, where: str) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _actions_in(node.body, where) | _actions_in(node.orelse, where)
    if isinstance(node, ast.JoinedStr):
        return _expand_fstring(node, where)
    raise AssertionError(f"{where}: an audit action this test cannot read: {ast.unparse(node)}")


def _audit_calls() -> list[tuple[str, ast.Call]]:
    """Every call of audit.record or audit.record_many under src/, with where it is."""
    calls = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("record", "record_many")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
            ):
                continue
            calls.append((f"{path.relative_to(SRC)}:{node.lineno}", node))
    return calls


def written_actions() -> set[str]:
    """Every action passed to audit.record or audit.record_many anywhere under src/."""
    found: set[str] = set()
    for where, call in _audit_calls():
        (action,) = [k.value for k in call.keywords if k.arg == "action"] or [None]
        assert action is not None, f"{where}: audit.record without action="
        found |= _actions_in(action, where)
    return found


def written_target_types() -> set[str]:
    """The target types written as plain strings (the others are checked by name below)."""
    return {
        k.value.value
        for _, call in _audit_calls()
        for k in call.keywords
        if k.arg == "target_type" and isinstance(k.value, ast.Constant)
    }


def test_the_source_scan_finds_the_actions_it_should() -> None:
    """The scan itself works: it finds actions of plain strings, of f-strings and of ifs."""
    actions = written_actions()
    assert {"user.disabled", "user.banned", "team.renamed", "role.deleted"} <= actions
    assert {"user.created", "user.password_reset", "webhook.secret_rotated"} <= actions
    assert len(actions) > 50


def test_every_action_the_code_writes_has_words() -> None:
    missing = sorted(written_actions() - wording.AUDIT_ACTIONS.keys())
    assert missing == [], f"audit actions without words in audit/wording.py: {missing}"


def history_actions() -> set[str]:
    """The actions of past events written as history (audit.record_history's PastEvent,
    the demo's months of admin work): constants in the calls, and the values of module
    dicts named *_ACTIONS beside them."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "PastEvent"
        ]
        if not calls:
            continue
        for call in calls:
            given = [k.value for k in call.keywords if k.arg == "action"] + call.args[3:4]
            for value in given:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.add(value.value)
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id.endswith("_ACTIONS") for t in node.targets)
            ):
                found |= {
                    v.value
                    for v in node.value.values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                }
    return found


def test_every_action_written_as_history_has_words() -> None:
    missing = sorted(history_actions() - wording.AUDIT_ACTIONS.keys())
    assert missing == [], f"history actions without words in audit/wording.py: {missing}"


def test_every_target_type_the_code_writes_has_a_noun() -> None:
    types = {"user", "api_key", "churn_run", "email_template", "job", "organization", "segment"}
    types |= {"role", "team", "group", "webhook_endpoint"} | written_target_types()
    assert types <= wording.TARGET_NOUNS.keys()
    assert wording.noun("churn_run") == "churn run"
    assert wording.noun("webhook_endpoint") == "webhook endpoint"


def test_every_event_the_demo_sends_has_words() -> None:
    for event in (*demo.PRODUCT_EVENTS, "login", SIGN_IN_LOCKED, "impersonated.request"):
        assert event in wording.EVENT_PHRASES, event
    assert wording.event_phrase("ticket.replied") == "Replied to a ticket"


def test_an_unknown_event_becomes_words_from_its_code() -> None:
    assert wording.event_phrase("invoice.paid") == "Invoice paid"
    assert wording.event_phrase("plan.trial_ended") == "Plan trial ended"
    assert wording.phrase("gadget.polished") == "Gadget polished"


@pytest.mark.parametrize(
    ("action", "target", "expected"),
    [
        ("user.disabled", "Ann Lee", "Disabled Ann Lee"),
        ("invitation.resent", "ann@x.example", "Sent a new invitation to ann@x.example"),
        ("user.trashed", "Ann Lee", "Moved Ann Lee to the trash"),
        ("user.sessions_revoked", "Ann Lee", "Signed out Ann Lee everywhere"),
        ("churn.scored", "churn run #1", "Scored churn risk"),
    ],
)
def test_a_sentence_says_what_was_done_to_whom(action: str, target: str, expected: str) -> None:
    assert wording.sentence(action, target) == expected


def test_a_ban_says_how_long_where_the_changes_say_so() -> None:
    week = {"status": {"from": "active", "to": "banned"}, "until": (AT + timedelta(days=7))}
    week["until"] = week["until"].isoformat()
    assert wording.sentence("user.banned", "Ann Lee", week, AT) == "Banned Ann Lee for 7 days"
    assert wording.phrase("user.banned", week, AT) == "Banned for 7 days"
    one = {"status": {}, "until": (AT + timedelta(days=1, seconds=3)).isoformat()}
    assert wording.phrase("user.banned", one, AT) == "Banned for 1 day"
    forever = {"status": {"from": "active", "to": "banned"}}
    assert wording.phrase("user.banned", forever, AT) == "Banned for good"
    assert wording.phrase("user.banned") == "Banned"


def test_the_group_added_to_is_named_where_the_changes_say_which() -> None:
    changes = {"groups": {"from": ["Beta"], "to": ["Beta", "Pilots"]}}
    assert wording.sentence("user.added_to_group", "Ann", changes) == "Added Ann to Pilots"
    assert wording.sentence("user.added_to_group", "Ann") == "Added Ann to a group"


def test_a_target_reads_as_its_name_else_its_noun_and_number() -> None:
    assert wording.target_label("churn_run", "1") == "churn run #1"
    assert wording.target_label("job", 4) == "job #4"
    assert wording.target_label("user", "770", "Ann Lee") == "Ann Lee"
    assert wording.target_label("segment", "3", changes={"name": "At risk"}) == "At risk"
    renamed = {"name": {"from": "Old", "to": "New"}}
    assert wording.target_label("team", "2", changes=renamed) == "New"
    assert wording.target_label("email_template", "invitation") == "Invitation email"
    assert wording.target_label(None, None) == ""


def test_an_action_alone_names_the_kind_of_target() -> None:
    assert wording.action_label("user.disabled") == "Disabled a user"
    assert wording.action_label("segment.created") == "Created a segment"
    assert wording.action_label("invitation.resent") == "Sent a new invitation to a user"
    assert wording.action_label("webhook.created") == "Created a webhook endpoint"
    assert wording.action_label("api_key.created") == "Created an API key"
    assert wording.action_label("scim_token.revoked") == "Revoked a SCIM token"
    assert wording.action_label("organization.settings_changed") == "Changed the settings"


def test_every_user_page_done_code_names_an_action_with_words() -> None:
    for action in Action:
        assert DONE_ACTIONS[action.value] == f"user.{_past(action)}"
    assert set(DONE_ACTIONS.values()) <= wording.AUDIT_ACTIONS.keys()
