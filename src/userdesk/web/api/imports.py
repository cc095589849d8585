"""/api/v1/imports: users from a CSV file, run as a job."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from userdesk.errors import InvalidInput
from userdesk.imports import service as imports
from userdesk.jobs.schemas import JobRead
from userdesk.web.deps import CurrentActor, DbSession

router = APIRouter(prefix="/imports", tags=["imports"])


@router.post("", response_model=JobRead, status_code=202)
async def import_users(
    db: DbSession,
    actor: CurrentActor,
    file: Annotated[UploadFile, File(description="CSV with a header row, UTF-8.")],
    dry_run: Annotated[bool, Form()] = True,
    send_invitations: Annotated[bool, Form()] = False,
    mapping: Annotated[
        str | None,
        Form(
            description='JSON {"email": "E-mail", "first_name": ...}; '
            "guessed from the header if left out."
        ),
    ] = None,
) -> JobRead:
    """Start an import (a dry run unless `dry_run=false`); follow it at /api/v1/jobs/{id},
    whose `result` lists every row by number with its fate."""
    try:
        chosen = orjson.loads(mapping) if mapping else None
    except orjson.JSONDecodeError:
        raise InvalidInput(
            "The mapping is not JSON.", fields={"mapping": "is not a JSON object"}
        ) from None
    content = await file.read()

    def keep_and_queue() -> JobRead:  # seconds for a large file: off the event loop
        job = imports.draft(
            db, actor=actor, filename=file.filename or "upload.csv", content=content
        )
        job = imports.start(
            db,
            actor=actor,
            job_id=job.id,
            mapping=chosen,
            dry_run=dry_run,
            send_invitations=send_invitations,
        )
        return JobRead.of(job)

    return await run_in_threadpool(keep_and_queue)
