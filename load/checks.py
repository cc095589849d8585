"""What `make load` counts in the database after the run: that no write was lost or doubled.

The locustfile keeps a tally of what the server said it did (`Tally`): the users it
created, the events it accepted, each disable and enable it got a 200 for, the import's
job. Every write of a run carries the run's id (created users' and imported users' emails,
events' ids), so the database is counted for that run alone, whatever ran before.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import Connection, bindparam, text

CREATED_DOMAIN = "load.example"  # users created through the API: load-<run>-<n>@load.example
IMPORTED_DOMAIN = "import.example"  # users of the run's import: <run>-<n>@import.example
EVENT_TYPE = "load.event"  # the events the host product posts, each `id` <run>-<n>


def created_email(run: str, number: str) -> str:
    return f"load-{run}-{number}@{CREATED_DOMAIN}"


def imported_email(run: str, number: int | str) -> str:
    return f"{run}-{number}@{IMPORTED_DOMAIN}"


def event_id(run: str, number: str) -> str:
    return f"{run}-{number}"


@dataclass
class Tally:
    """What the server answered during the run (written by the locustfile when it stops)."""

    run: str
    created: list[str] = field(default_factory=list)  # emails answered 201
    events_accepted: int = 0
    events_duplicates: int = 0
    statuses: dict[str, str] = field(default_factory=dict)  # user id -> status after the last 200
    disables: int = 0
    enables: int = 0
    import_job: int | None = None
    import_rows: int = 0

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Tally:
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class Finding:
    """One count: what the tally says, what the database holds, whether they agree."""

    what: str
    expected: int
    found: int

    @property
    def ok(self) -> bool:
        return self.expected == self.found


def count(
    conn: Connection,
    tally: Tally,
    *,
    organization_id: int,
    endpoint_id: int | None = None,
    received: Counter[str] | None = None,
    imported: int | None = None,
) -> list[Finding]:
    """Compare TALLY with the database through CONN: users created (each once, none missing),
    events stored, the final status of every user disabled or enabled, the import's users
    (IMPORTED: how many its job says it created), and, with ENDPOINT_ID and RECEIVED (the
    webhook-ids the receiver got, with how often), webhook messages delivered once each."""
    run = tally.run
    org = {"org": organization_id}
    findings = []
    created = conn.execute(
        text("SELECT email FROM users WHERE organization_id = :org AND email LIKE :pattern"),
        {**org, "pattern": created_email(run, "%")},
    ).scalars()
    stored = Counter(created)
    findings.append(Finding("users created by the API", len(tally.created), sum(stored.values())))
    findings.append(
        Finding(
            "created users the API answered 201 for, in the database once",
            len(tally.created),
            sum(1 for email in set(tally.created) if stored[email] == 1),
        )
    )
    events = conn.execute(
        text(
            "SELECT count(*) FROM activity_events WHERE organization_id = :org "
            "AND type = :type AND external_id LIKE :pattern"
        ),
        {**org, "type": EVENT_TYPE, "pattern": event_id(run, "%")},
    ).scalar_one()
    findings.append(Finding("events stored = events accepted", tally.events_accepted, events))
    findings.append(Finding("events refused as duplicates", 0, tally.events_duplicates))
    if tally.statuses:
        ids = [int(i) for i in tally.statuses]
        statuses = text("SELECT id, status FROM users WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        now = dict(conn.execute(statuses, {"ids": ids}).all())
        same = sum(1 for i, status in tally.statuses.items() if now.get(int(i)) == status)
        findings.append(Finding("disabled/enabled users in their last state", len(ids), same))
    if tally.import_job is not None:
        rows = conn.execute(
            text("SELECT count(*) FROM users WHERE organization_id = :org AND email LIKE :pattern"),
            {**org, "pattern": imported_email(run, "%")},
        ).scalar_one()
        findings.append(Finding("users of the import, each once", tally.import_rows, rows))
        if imported is not None:
            findings.append(Finding("users the import job says it created", rows, imported))
    if endpoint_id is not None and received is not None:
        messages = conn.execute(
            text("SELECT uid, event_type, status FROM webhook_messages WHERE endpoint_id = :e"),
            {"e": endpoint_id},
        ).all()
        kinds = Counter(m.event_type for m in messages)
        findings.append(
            Finding("webhook user.disabled messages", tally.disables, kinds["user.disabled"])
        )
        findings.append(
            Finding("webhook user.enabled messages", tally.enables, kinds["user.enabled"])
        )
        created_messages = conn.execute(
            text(
                "SELECT count(*) FROM webhook_messages m JOIN users u ON u.id = m.user_id "
                "WHERE m.endpoint_id = :e AND m.event_type = 'user.created' "
                "AND u.email LIKE :pattern"
            ),
            {"e": endpoint_id, "pattern": created_email(run, "%")},
        ).scalar_one()
        findings.append(
            Finding(
                "webhook user.created messages of API-created users",
                len(tally.created),
                created_messages,
            )
        )
        findings.append(
            Finding(
                "webhook messages delivered",
                len(messages),
                sum(1 for m in messages if m.status == "delivered"),
            )
        )
        findings.append(
            Finding(
                "webhook messages received exactly once",
                len(messages),
                sum(1 for m in messages if received[m.uid] == 1),
            )
        )
        unknown = set(received) - {m.uid for m in messages}
        findings.append(Finding("webhook messages received that were never sent", 0, len(unknown)))
    return findings


def summary(findings: list[Finding]) -> tuple[str, bool]:
    """The findings as lines of text, and whether every one holds."""
    lines = [
        f"{'ok ' if f.ok else 'BAD'} {f.what}: expected {f.expected:,}, found {f.found:,}"
        for f in findings
    ]
    return "\n".join(lines), all(f.ok for f in findings)
