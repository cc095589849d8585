"""A worker process for the kill -9 test: `python -m tests.webhooks.worker_process URL
SEARCH_PATH VAR_DIR` runs `Worker.run` (webhooks allowed to 127.0.0.1) until killed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from userdesk.config import Settings
from userdesk.db.engine import make_engine
from userdesk.db.session import Database
from userdesk.worker import Worker


def main(url: str, search_path: str, var_dir: str) -> None:
    options: dict[str, Any] = {}
    if search_path:
        options["connect_args"] = {"options": f"-csearch_path={search_path}"}
    settings = Settings(
        database_url=url,
        secret_key="test-secret",  # the tests' (tests.conftest): the secrets unseal
        base_url="http://testserver",
        smtp_url=None,
        mail_from="Userdesk <no-reply@test.example>",
        var_dir=Path(var_dir),
        churn_every_hours=0,
        webhooks_allow_private=True,
    )
    worker = Worker(Database(make_engine(url, **options)), settings)
    print(worker.name, flush=True)
    worker.run()


if __name__ == "__main__":
    main(*sys.argv[1:4])
