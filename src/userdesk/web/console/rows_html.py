"""The HTML of the Users list's rows, written in Python.

A page shows fifty rows of a dozen values each: through a template, each value is a
lookup, an escape and a piece passed up the output, and that was most of the page's
cost. Here each row is one f-string; the values read from the database (names, emails,
team and role names, the churn level) are escaped, and the rest are the views' own words,
digits and dates (`views.Row`), which escaping leaves as they are. The markup is the one the
list has always sent (tests/console/test_users_rows_html.py holds the template it is
checked against).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape

from userdesk.access.rules import Actor, Permission
from userdesk.segments.columns import cell_text
from userdesk.users.field_rules import FieldSpec
from userdesk.users.schemas import UserView
from userdesk.web.console.views import (
    VERIFIABLE_STATUSES,
    Row,
    RowMenus,
    _by_team,
    _churn,
    _offered,
    _status_badge,
)
from userdesk.web.templating import Zone, _span_words, _stamps, templates

# Yes/no values keep the seeds' words, as badges (_macros.html's yes_no writes the same).
YES_NO = {
    "True": '<span class="badge bg-green-lt" data-yes-no="true">True</span>',
    "False": '<span class="badge bg-secondary-lt" data-yes-no="false">False</span>',
}

BUILT_IN_COLUMNS = 11  # the cells of a row without custom columns


def _no_users(width: int) -> str:
    return (
        f'\n<tr><td colspan="{width}" class="text-center text-secondary py-4">'
        "No users to display</td></tr>\n"
    )


NO_USERS = _no_users(BUILT_IN_COLUMNS)


def _replaced(text: str) -> str:
    """TEXT escaped as markupsafe's `escape` writes it (the same five characters, the same
    entities), as a plain str: a Markup made per value was a third of the rows' cost."""
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


try:  # markupsafe's own escaping, in C, to a plain str: a sixth of the time of _replaced
    from markupsafe._speedups import _escape_inner as _escaped
except ImportError:  # pragma: no cover - markupsafe built without its speedups
    _escaped = _replaced


@lru_cache(maxsize=4096)
def _label(text: str) -> str:
    """TEXT escaped, for what many rows share (a team's name, a set of roles, a level)."""
    return str(escape(text))


def _row(u: Row) -> str:
    user_id = u.id
    email = _escaped(u.email)
    presence = (
        f' <span class="badge {"bg-green-lt" if u.presence == "Online" else "bg-secondary-lt"}'
        f' ms-1" data-testid="presence">{u.presence}</span>'
        if u.presence
        else ""
    )
    resend = (
        ' <button type="button" class="btn btn-sm btn-ghost-secondary ms-1 px-1"'
        ' title="Send a new verification email"'
        f' aria-label="Send a new verification email to {email}"'
        f' hx-post="/console/users/{user_id}/verification-email" hx-target="#toasts"'
        ' hx-swap="beforeend">&#9993;</button>'
        if u.may_resend_verification
        else ""
    )
    churn = (
        f'<a href="/console/users/{user_id}#churn" class="text-reset" data-testid="churn-level"'
        f' title="Churn risk: {_label(u.churn)}"><span class="status-dot status-{u.churn_color}'
        f' me-1"></span>{_label(u.churn_label)}</a>'
        if u.churn
        else ""
    )
    menu = (
        '<div class="dropdown"><button class="btn btn-sm btn-ghost-secondary" type="button"'
        f' data-bs-toggle="dropdown" aria-expanded="false" aria-label="Actions for {email}">'
        "&#8943;</button>\n"
        f'<div class="dropdown-menu dropdown-menu-end" data-row-menu="{u.menu}"></div></div>'
        if u.menu
        else ""
    )
    return (
        f'\n<tr data-user-id="{user_id}">\n'
        '<td><input class="form-check-input m-0" type="checkbox" name="ids"'
        f' value="{user_id}" form="bulk-selected" aria-label="Select {email}"></td>\n'
        f'<td><a class="user-name" href="/console/users/{user_id}">{_escaped(u.name)}</a>'
        f"{presence}</td>\n"
        f'<td class="text-secondary">{email}</td>\n'
        f"<td>{u.status_badge}</td>\n"
        f"<td>{YES_NO[u.email_verified]}{resend}</td>\n"
        f"<td>{_label(u.team)}</td>\n"
        f"<td>{_label(u.roles)}</td>\n"
        f"<td>{churn}</td>\n"
        f"<td>{u.seen}</td>\n"
        f"<td>{u.created}</td>\n"
        f"{''.join(_cell(key, text) for key, text in u.columns)}"
        f'<td class="text-end">{menu}</td>\n'
        "</tr>\n"
    )


@lru_cache(maxsize=1024)
def _menu_template(key: str, csrf_token: str | None) -> str:
    """The <template> userdesk.js fills a row's menu from; {id} stands for the row's user.

    A session (its CSRF token) sees a few distinct menus: each is rendered once."""
    macros = templates.env.get_template("console/_macros.html").module
    items = "".join(
        str(macros.action_item("{id}", action, csrf_token))  # type: ignore[attr-defined]
        for action in key.split()
    )
    return f'\n<template data-row-menu-of="{key}">{items}</template>\n'


def _cell(key: str, text: str) -> str:
    """A custom column's cell: its field's key (a lowercase word) and the value, escaped."""
    return f'<td data-column="{key}">{_escaped(text)}</td>\n'


def _ending(
    parts: list[str],
    keys: Any,
    csrf_token: str | None,
    more: dict[str, str] | None,
    width: int = BUILT_IN_COLUMNS,
) -> str:
    """PARTS (the rows), then each distinct action menu (KEYS) once, and the "Load more"
    row when MORE (the query, sort and cursor of the next page) is given."""
    parts.extend(_menu_template(key, csrf_token) for key in keys)
    parts.append("\n")
    if more:
        url = escape(f"/console/users?{urlencode(more)}")
        parts.append(
            f'\n\n<tr id="load-more">\n  <td colspan="{width}" class="text-center">\n'
            f'    <a class="btn btn-ghost-primary" href="{url}" hx-get="{url}"\n'
            '       hx-target="#load-more" hx-swap="outerHTML">Load more</a>\n  </td>\n</tr>\n'
        )
    return "".join(parts)


def render_rows(
    rows: list[Row],
    menus: RowMenus,
    *,
    csrf_token: str | None,
    more: dict[str, str] | None,
    columns: int = 0,
) -> Markup:
    """The list's rows, each distinct action menu once, and the "Load more" row when MORE
    (the query, sort and cursor of the next page) is given. COLUMNS: how many custom
    columns the rows have (`Row.columns`)."""
    width = BUILT_IN_COLUMNS + columns
    parts = [_row(u) for u in rows] if rows else [_no_users(width)]
    return Markup(_ending(parts, menus.actions, csrf_token, more, width))  # noqa: S704 - escaped above


_ONLINE = ' <span class="badge bg-green-lt ms-1" data-testid="presence">Online</span>'
_AWAY = ' <span class="badge bg-secondary-lt ms-1" data-testid="presence">Away</span>'


@lru_cache(maxsize=64)
def _churn_html(level: str | None) -> tuple[str, str] | None:
    """The churn cell's link for LEVEL, before and after the row's user id (None when
    not scored)."""
    churn, label, color = _churn(level)
    if not churn:
        return None
    return (
        '<a href="/console/users/',
        '#churn" class="text-reset" data-testid="churn-level"'
        f' title="Churn risk: {_label(churn)}"><span class="status-dot status-{color}'
        f' me-1"></span>{_label(label)}</a>',
    )


@lru_cache(maxsize=8192)
def _time_opening(u: datetime, zone: Zone | None) -> str:
    """The opening tag of UTC time U's <time> element in ZONE, words first (see
    `templating.time_element`): kept for the times a list shows again."""
    at, absolute, tz = _stamps(u, zone)
    return f'<time datetime="{at}"{tz} data-relative title="{absolute}">'


# "ago" words by whole minutes past (words change at whole minutes only): a page writes
# a hundred, and working them out was half of writing a time.
_WORDS_BY_MINUTE: dict[int, str] = {}
_WORDS_KEPT = 100_000


def _relative_time(value: datetime, zone: Zone | None, now: datetime) -> str:
    """`time_element(VALUE, ZONE, relative_first=True, now=NOW)`, byte for byte, in half
    its time: the rows write two a row."""
    if value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    seconds = (now - value).total_seconds()
    if seconds < 0:
        words = _span_words(seconds)
    else:
        minute = int(seconds // 60)
        found = _WORDS_BY_MINUTE.get(minute)
        if found is None:
            if len(_WORDS_BY_MINUTE) >= _WORDS_KEPT:
                _WORDS_BY_MINUTE.clear()
            found = _WORDS_BY_MINUTE[minute] = _span_words(seconds)
        words = found
    return f"{_time_opening(value, zone)}{words}</time>"


def write_rows(
    actor: Actor,
    items: list[UserView],
    presence: Mapping[str, str],
    now: datetime,
    *,
    csrf_token: str | None,
    more: dict[str, str] | None,
    zone: str | None = None,
    columns: Sequence[FieldSpec] = (),
) -> str:
    """What `render_rows(*views.rows(ACTOR, ITEMS, PRESENCE, NOW, ZONE), ...)` writes, in
    one pass over ITEMS: no `Row` is built between a user and its row (that was most of the
    rows' cost). Written as `_row` writes it, byte for byte (tests hold the two together).
    Times are the `timestamp` filter's <time> elements, in the admin's time ZONE (looked
    up once here) where known. COLUMNS: the custom fields shown after the built-in cells
    (each item then carries its `attributes`)."""
    width = BUILT_IN_COLUMNS + len(columns)
    if not items:
        return _ending([_no_users(width)], (), csrf_token, more, width)
    menus: dict[tuple[Any, ...], str] = {}
    keys: dict[str, None] = {}
    resend = actor.has(Permission.USERS_UPDATE)
    grants = actor.grants
    by_team = _by_team(grants)
    me = str(actor.user_id)
    local = Zone.of(zone)
    # The roles' cell by list: users with the same roles may share one (list_users' names).
    role_cells: dict[int, str] = {}
    parts = []
    for u in items:
        status, team, user_id = u["status"], u["team"], u["id"]
        facts = (
            status,
            u["validated"],
            int(team["id"]) if by_team and team else None,
            user_id == me,
        )
        key = menus.get(facts)
        if key is None:
            key = menus[facts] = " ".join(_offered(grants, *facts))
            if key:
                keys[key] = None
        email = _escaped(u["email"])
        verified = u["email_verified"]
        online = presence.get(user_id)
        seen = u["last_seen_at"]
        churn = _churn_html(u["churn"])
        held = u["roles"]
        roles = role_cells.get(id(held))
        if roles is None:
            roles = role_cells[id(held)] = _label(", ".join([r["name"] for r in held]))
        badge = (_ONLINE if online == "online" else _AWAY) if online else ""
        resent = (
            ' <button type="button" class="btn btn-sm btn-ghost-secondary ms-1 px-1"'
            ' title="Send a new verification email"'
            f' aria-label="Send a new verification email to {email}"'
            f' hx-post="/console/users/{user_id}/verification-email" hx-target="#toasts"'
            ' hx-swap="beforeend">&#9993;</button>'
            if resend and not verified and status in VERIFIABLE_STATUSES
            else ""
        )
        menu = (
            '<div class="dropdown"><button class="btn btn-sm btn-ghost-secondary"'
            ' type="button" data-bs-toggle="dropdown" aria-expanded="false"'
            f' aria-label="Actions for {email}">&#8943;</button>\n'
            f'<div class="dropdown-menu dropdown-menu-end" data-row-menu="{key}"></div></div>'
            if key
            else ""
        )
        parts.append(
            f'\n<tr data-user-id="{user_id}">\n'
            '<td><input class="form-check-input m-0" type="checkbox" name="ids"'
            f' value="{user_id}" form="bulk-selected" aria-label="Select {email}"></td>\n'
            f'<td><a class="user-name" href="/console/users/{user_id}">{_escaped(u["name"])}</a>'
            f"{badge}</td>\n"
            f'<td class="text-secondary">{email}</td>\n'
            f"<td>{_status_badge(status, u['status_label'])}</td>\n"
            f"<td>{YES_NO['True' if verified else 'False']}{resent}</td>\n"
            f"<td>{_label(team['name']) if team else ''}</td>\n"
            f"<td>{roles}</td>\n"
            f"<td>{f'{churn[0]}{user_id}{churn[1]}' if churn else ''}</td>\n"
            f"<td>{_relative_time(seen, local, now) if seen else 'Never'}</td>\n"
            f"<td>{_relative_time(u['created_at'], local, now)}</td>\n"
            f"{_cells(columns, u) if columns else ''}"
            f'<td class="text-end">{menu}</td>\n</tr>\n'
        )
    return _ending(parts, keys, csrf_token, more, width)


def _cells(columns: Sequence[FieldSpec], item: UserView) -> str:
    values = item.get("attributes") or {}
    return "".join(_cell(spec.key, cell_text(spec, values.get(spec.key))) for spec in columns)
