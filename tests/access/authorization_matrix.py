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
