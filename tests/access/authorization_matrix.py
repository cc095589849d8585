"""The authorization matrix, as data: what each role may do, to users of which scope.

Written from DESIGN.md, independently of the code it checks.
"""

from __future__ import annotations

R, C, U, D = "users.read", "users.create", "users.update", "users.delete"
MOD, ACT, ASSIGN, SET = "users.moderate", "users.activate", "roles.assign", "settings.manage"
EVERYTHING = {
    R,
    C,
    U,
    D,
    "users.export",
    "users.import",
    "users.activity",
    "users.impersonate",
    MOD,
    ACT,
    ASSIGN,
    SET,
    "audit.read",
    "mail.read",
    "webhooks.manage",
}

# role -> (permissions, scope): "org" covers every user, "team" only the holder's team.
ROLES = {
    "Administrator": (EVERYTHING, "org"),
    "Team Administrator": (
        {R, C, U, D, "users.export", "users.import", "users.activity", MOD, ACT, ASSIGN},
        "team",
    ),
    "Agent": ({R, "users.activity"}, "org"),
    "Member": (set(), "org"),
    "Moderator (custom)": ({R, MOD}, "org"),
}
CUSTOM_ROLE = ("Moderator (custom)", [R, MOD])

# Where the target user is, seen from the actor.
OWN_TEAM, OTHER_TEAM = "own team", "other team"


def allowed(role: str, permission: str, target_scope: str | None) -> bool:
    """Whether ROLE may take an operation needing PERMISSION on a target in TARGET_SCOPE
    (None: the operation has no target user)."""
    permissions, scope = ROLES[role]
    if permission not in permissions:
        return False
    return target_scope is None or scope == "org" or target_scope == OWN_TEAM


# The reach matrix: objects that carry users' data, read by these people (role, team).
TEAM_A, TEAM_B = "Alpha", "Beta"
READERS = {
    "Administrator": ("Administrator", None),
    "Team Administrator of A": ("Team Administrator", TEAM_A),
    "Team Administrator of B": ("Team Administrator", TEAM_B),
    "Agent": ("Agent", TEAM_A),
    "Moderator (custom)": ("Moderator (custom)", TEAM_A),
}


def reaches(reader: str, permission: str, team: str | None) -> bool:
    """Whether READER holds PERMISSION over a user of TEAM."""
    role, own = READERS[reader]
    permissions, scope = ROLES[role]
    return permission in permissions and (scope == "org" or team == own)


def holds_everywhere(reader: str, permission: str) -> bool:
    permissions, scope = ROLES[READERS[reader][0]]
    return permission in permissions and scope == "org"


# Jobs name users (rows, emails): (kind, the permission it takes, who started it).
JOBS = [
    ("import", "users.import", "Administrator"),
    ("import", "users.import", "Team Administrator of A"),
    ("bulk disable", MOD, "Administrator"),
    ("bulk disable", MOD, "Team Administrator of A"),
    ("churn run", SET, "Administrator"),
]


def sees_job(reader: str, starter: str, permission: str) -> bool:
    """A job is its starter's; others see it only holding users.read and its permission
    over the whole organization (a team's admin never sees an Administrator's rows)."""
    return reader == starter or (
        holds_everywhere(reader, R) and holds_everywhere(reader, permission)
    )


# Changes of roles and team, by whom, on whom: refused with the field named, 404 (the
# user is out of reach), or allowed. Roles: the built-ins, "Everywhere" (the Team
# Administrator's permissions, organization-wide) and "Helper" (users.read, team-scoped).
SELF, MEMBER_A, MEMBER_B = "self", "member of A", "member of B"
GRANTS = [
    # (actor, target, change, expected)
    ("Team Administrator of A", SELF, {"add_role": "Everywhere"}, "role_ids"),
    ("Team Administrator of A", SELF, {"add_role": "Helper"}, "role_ids"),
    ("Team Administrator of A", SELF, {"drop_role": "Team Administrator"}, "role_ids"),
    ("Team Administrator of A", SELF, {"team": TEAM_B}, "team_id"),
    ("Team Administrator of A", MEMBER_A, {"add_role": "Everywhere"}, "role_ids"),
    ("Team Administrator of A", MEMBER_A, {"add_role": "Agent"}, "role_ids"),
    ("Team Administrator of A", MEMBER_A, {"add_role": "Administrator"}, "role_ids"),
    ("Team Administrator of A", MEMBER_A, {"add_role": "Helper"}, "allowed"),
    ("Team Administrator of A", MEMBER_A, {"add_role": "Team Administrator"}, "allowed"),
    ("Team Administrator of A", MEMBER_A, {"team": TEAM_B}, "team_id"),
    ("Team Administrator of A", MEMBER_B, {"add_role": "Helper"}, "not found"),
    ("Administrator", SELF, {"add_role": "Agent"}, "role_ids"),
    ("Administrator", SELF, {"drop_role": "Administrator"}, "role_ids"),
    ("Administrator", SELF, {"team": TEAM_A}, "team_id"),
    ("Administrator", MEMBER_A, {"add_role": "Everywhere"}, "allowed"),
    ("Administrator", MEMBER_B, {"team": TEAM_A}, "allowed"),
    ("Moderator (custom)", MEMBER_A, {"add_role": "Helper"}, "refused"),
]
