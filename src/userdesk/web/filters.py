"""Turning the audit log's filter parameters into an AuditFilter (API and console)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from userdesk.audit.service import AuditFilter


def audit_filter(
    actor: str | None,
    action: str | None,
    target: str | None,
    since: date | None,
    until: date | None,
) -> AuditFilter:
    def start(day: date | None) -> datetime | None:
        return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None

    end = start(until)
    return AuditFilter(
        actor=actor or None,
        action=action or None,
        target_id=target or None,
        since=start(since),
        until=end + timedelta(days=1) if end else None,
    )
