from userdesk.access.rules import (
    ADMINISTRATOR,
    AGENT,
    ALL_PERMISSIONS,
    MEMBER,
    TEAM_ADMINISTRATOR,
    Actor,
    Permission,
    RoleScope,
    grants_for,
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
