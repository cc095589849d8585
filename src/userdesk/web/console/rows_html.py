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

from functools import lru_cache
from urllib.parse import urlencode

from markupsafe import Markup, escape

from userdesk.web.console.views import Row, RowMenus
from userdesk.web.templating import templates

NO_USERS = (
    '\n<tr><td colspan="11" class="text-center text-secondary py-4">No users to display</td></tr>\n'
)


def _escaped(text: str) -> str:
    """TEXT escaped as markupsafe's `escape` writes it (the same five characters, the same
    entities), as a plain str: a Markup made per value was a third of the rows' cost."""
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


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
        f"<td>{u.email_verified}{resend}</td>\n"
        f"<td>{_label(u.team)}</td>\n"
        f"<td>{_label(u.roles)}</td>\n"
        f"<td>{churn}</td>\n"
        f'<td title="{u.seen_exact}">{u.seen}</td>\n'
        f'<td title="{u.created_exact}">{u.created}</td>\n'
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


def render_rows(
    rows: list[Row], menus: RowMenus, *, csrf_token: str | None, more: dict[str, str] | None
) -> Markup:
    """The list's rows, each distinct action menu once, and the "Load more" row when MORE
    (the query, sort and cursor of the next page) is given."""
    parts = [_row(u) for u in rows] if rows else [NO_USERS]
    parts.extend(_menu_template(key, csrf_token) for key in menus.actions)
    parts.append("\n")
    if more:
        url = escape(f"/console/users?{urlencode(more)}")
        parts.append(
            '\n\n<tr id="load-more">\n  <td colspan="11" class="text-center">\n'
            f'    <a class="btn btn-ghost-primary" href="{url}" hx-get="{url}"\n'
            '       hx-target="#load-more" hx-swap="outerHTML">Load more</a>\n  </td>\n</tr>\n'
        )
    return Markup("".join(parts))  # noqa: S704 - user values escaped above
