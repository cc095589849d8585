import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.access.rules import system_actor
from userdesk.db import bulk
from userdesk.jobs import service as jobs
from userdesk.jobs.models import JobItem
from userdesk.organizations.models import Organization


@pytest.mark.parametrize("rows_per_statement", [2, 1000])
def test_rows_with_columns_alike_are_inserted_as_rows_that_carry_them(
    db: Session, org: Organization, monkeypatch: pytest.MonkeyPatch, rows_per_statement: int
) -> None:
    """SAME's values (a NULL among them, which PostgreSQL would take for text in a VALUES
    list) land in every row, each row's own values in their columns, however many
    statements it takes."""
    monkeypatch.setattr(bulk, "ROWS_PER_STATEMENT", rows_per_statement)
    job = jobs.create(db, actor=system_actor(org.id), kind="test", params={}, total=5)
    db.flush()
    rows = [(n, f"p{n}@example.com", "created" if n % 2 else "invalid") for n in range(5)]
    bulk.insert_rows(
        db.connection(),
        "job_items",
        ("number", "email", "fate"),
        rows,
        same={"organization_id": org.id, "job_id": job.id, "ok": True, "detail": None},
    )
    found = db.execute(
        select(
            JobItem.number,
            JobItem.email,
            JobItem.fate,
            JobItem.organization_id,
            JobItem.ok,
            JobItem.detail,
        )
        .where(JobItem.job_id == job.id)
        .order_by(JobItem.number)
    ).all()
    assert [tuple(row) for row in found] == [(*row, org.id, True, None) for row in rows]
