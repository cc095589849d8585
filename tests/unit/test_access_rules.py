from userdesk.access.rules import (
    ADMINISTRATOR,
    AGENT,
    ALL_PERMISSIONS,
    MEMBER,
    TEAM_ADMINISTRATOR,
    Actor,
    Permission,
    RoleGrant,
    RoleScope,
    grants_for,
    membership_change_problem,
    missing_to_define,
    missing_to_grant,
    reach_beyond,
    system_actor,
)


def actor(*roles: tuple[str, frozenset[Permission]], teams: tuple[int, ...] = ()) -> Actor:
    return Actor(1, 1, None, "someone", grants_for(roles, teams))


def test_the_builtin_roles_hold_what_the_design_says() -> None:
    assert ADMINISTRATOR.permissions == ALL_PERMISSIONS
    assert ADMINISTRATOR.scope == RoleScope.ORGANIZATION
    assert TEAM_ADMINISTRATOR.scope == RoleScope.TEAM
    assert Permission.USERS_CREATE in TEAM_ADMINISTRATOR.permissions
    assert Permission.SETTINGS_MANAGE not in TEAM_ADMINISTRATOR.permissions
    assert AGENT.permissions == {Permission.USERS_READ, Permission.USERS_ACTIVITY}
    assert MEMBER.permissions == frozenset()


def test_an_organization_role_covers_every_user() -> None:
    admin = actor(("organization", ADMINISTRATOR.permissions))
    assert admin.team_scope(Permission.USERS_READ) is None
    assert admin.covers(Permission.USERS_DELETE, None)
    assert admin.covers(Permission.USERS_DELETE, 42)


def test_a_team_role_covers_only_the_holders_teams() -> None:
    team_admin = actor(("team", TEAM_ADMINISTRATOR.permissions), teams=(7,))
    assert team_admin.team_scope(Permission.USERS_READ) == {7}
    assert team_admin.covers(Permission.USERS_READ, 7)
    assert not team_admin.covers(Permission.USERS_READ, 8)
    assert not team_admin.covers(Permission.USERS_READ, None)


def test_a_team_role_without_a_team_covers_nobody() -> None:
    team_admin = actor(("team", TEAM_ADMINISTRATOR.permissions))
    assert team_admin.team_scope(Permission.USERS_READ) == frozenset()
    assert not team_admin.covers(Permission.USERS_READ, 7)


def test_an_organization_grant_wins_over_a_team_grant_of_the_same_permission() -> None:
    both = actor(
        ("team", TEAM_ADMINISTRATOR.permissions), ("organization", AGENT.permissions), teams=(7,)
    )
    assert both.team_scope(Permission.USERS_READ) is None
    assert both.team_scope(Permission.USERS_DELETE) == {7}


def test_permissions_not_held_are_denied() -> None:
    agent = actor(("organization", AGENT.permissions))
    assert not agent.has(Permission.USERS_DELETE)
    assert agent.team_scope(Permission.USERS_DELETE) == frozenset()
    assert not agent.covers(Permission.USERS_DELETE, None)
    member = actor(("organization", MEMBER.permissions))
    assert member.grants == ()
    assert not member.has_console_access


def test_the_system_actor_holds_everything() -> None:
    assert system_actor(3).permissions == ALL_PERMISSIONS


TEAM = RoleScope.TEAM.value
ORG = RoleScope.ORGANIZATION.value
TA_PERMISSIONS = TEAM_ADMINISTRATOR.permissions


def team_admin(team: int = 7, user_id: int = 1) -> Actor:
    return Actor(1, user_id, None, "ta", grants_for([(TEAM, TA_PERMISSIONS)], [team]))


def test_an_organization_role_is_granted_only_by_who_holds_it_organization_wide() -> None:
    """A Team Administrator holds the Agent's permissions, but over its team alone."""
    assert missing_to_grant(team_admin(), AGENT.permissions, role_scope=ORG, team_id=7) == [
        "users.activity organization-wide",
        "users.read organization-wide",
    ]
    admin = actor((ORG, ADMINISTRATOR.permissions))
    assert missing_to_grant(admin, AGENT.permissions, role_scope=ORG, team_id=7) == []


def test_a_team_role_is_granted_only_over_a_team_the_granter_covers() -> None:
    assert missing_to_grant(team_admin(), TA_PERMISSIONS, role_scope=TEAM, team_id=7) == []
    outside = missing_to_grant(team_admin(), TA_PERMISSIONS, role_scope=TEAM, team_id=8)
    assert outside[0] == "roles.assign over that user's team"
    assert "users.read over that user's team" in outside
    assert missing_to_grant(team_admin(), TA_PERMISSIONS, role_scope=TEAM, team_id=None)


def test_granting_takes_roles_assign_and_every_permission_of_the_role() -> None:
    agent = actor((ORG, AGENT.permissions))
    assert missing_to_grant(agent, [], role_scope=ORG, team_id=None) == ["roles.assign"]
    assert missing_to_grant(
        team_admin(), ["users.delete", "audit.read"], role_scope=TEAM, team_id=7
    ) == ["audit.read"]


EVERYWHERE = RoleGrant(10, "Everywhere", ORG, TA_PERMISSIONS)
TA_ROLE = RoleGrant(2, "Team Administrator", TEAM, TA_PERMISSIONS)
HELPER = RoleGrant(11, "Helper", TEAM, frozenset({"users.read"}))


def test_nobody_changes_their_own_roles_or_team() -> None:
    ta = team_admin(user_id=5)
    mine = {"user_id": 5, "team_before": 7, "roles_before": [TA_ROLE]}
    assert membership_change_problem(
        ta, **mine, team_after=7, roles_after=[TA_ROLE, EVERYWHERE]
    ) == ("role_ids", "You cannot change your own roles: another admin must.")
    assert membership_change_problem(ta, **mine, team_after=7, roles_after=[TA_ROLE, HELPER])
    assert membership_change_problem(ta, **mine, team_after=8, roles_after=[TA_ROLE]) == (
        "team_id",
        "You cannot change your own team: another admin must.",
    )
    admin = Actor(1, 5, None, "admin", grants_for([(ORG, ADMINISTRATOR.permissions)], []))
    assert membership_change_problem(admin, **mine, team_after=7, roles_after=[])
    assert membership_change_problem(admin, **mine, team_after=7, roles_after=[TA_ROLE]) is None


def test_a_team_administrator_gives_and_takes_only_team_roles_within_its_team() -> None:
    ta = team_admin()
    member = {"user_id": 9, "team_before": 7, "roles_before": []}
    assert membership_change_problem(ta, **member, team_after=7, roles_after=[HELPER]) is None
    assert membership_change_problem(ta, **member, team_after=7, roles_after=[TA_ROLE]) is None
    field, message = membership_change_problem(  # type: ignore[misc]
        ta, **member, team_after=7, roles_after=[EVERYWHERE]
    )
    assert field == "role_ids"
    assert "'Everywhere'" in message
    assert "users.read organization-wide" in message
    agent_role = RoleGrant(3, "Agent", ORG, AGENT.permissions)
    holder = {"user_id": 9, "team_before": 7, "roles_before": [agent_role]}
    assert membership_change_problem(ta, **holder, team_after=7, roles_after=[]) == (
        "role_ids",
        "You cannot take away 'Agent': it takes users.activity organization-wide, "
        "users.read organization-wide, which you lack.",
    )


def test_a_team_role_moves_with_its_holder_only_into_a_team_the_actor_covers() -> None:
    two_teams = Actor(1, 1, None, "ta", grants_for([(TEAM, TA_PERMISSIONS)], [7, 8]))
    holder = {"user_id": 9, "team_before": 7, "roles_before": [HELPER]}
    assert (
        membership_change_problem(two_teams, **holder, team_after=8, roles_after=[HELPER]) is None
    )
    problem = membership_change_problem(team_admin(), **holder, team_after=8, roles_after=[HELPER])
    assert problem is not None
    assert problem[0] == "team_id"


def test_a_role_is_defined_only_by_who_holds_its_permissions_organization_wide() -> None:
    assert missing_to_define(team_admin(), ["users.read"]) == ["users.read organization-wide"]
    assert missing_to_define(team_admin(), ["audit.read"]) == ["audit.read"]
    assert missing_to_define(actor((ORG, ADMINISTRATOR.permissions)), ALL_PERMISSIONS) == []


def test_an_organization_wide_holder_is_beyond_a_team_scoped_actor() -> None:
    agent = actor((ORG, AGENT.permissions), teams=(7,))
    assert reach_beyond(agent, team_admin()) == ["users.activity", "users.read"]
    peer = team_admin(user_id=2)
    assert reach_beyond(peer, team_admin()) == []
    other_team = team_admin(team=8, user_id=2)
    assert "users.read" in reach_beyond(other_team, team_admin())
    assert reach_beyond(agent, actor((ORG, ADMINISTRATOR.permissions))) == []
