"""The uploaded file of an import, in a row of its own beside its job."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from userdesk.db.base import Base, Id, OrgScoped


class ImportFile(OrgScoped, Base):
    """The CSV an import job reads. Apart from the job, whose row is rewritten at every
    batch: a file of many megabytes in it would be written again each time."""

    __tablename__ = "import_files"
    organization_indexed = False

    job_id: Mapped[int] = mapped_column(
        Id, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    # The SHA-256 of the text: parsed rows are kept per process under it.
    digest: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
