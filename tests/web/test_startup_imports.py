"""What a server process loads only when a request needs it, not when it starts: scim2-models
(8 MB) with the first request under /scim/v2, which most processes never see; numpy and
the churn models' libraries (12 MB and more) with a scoring, which the worker runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys

from fastapi.testclient import TestClient

from userdesk.web.app import create_app

client = TestClient(create_app())
print("scim2_models" in sys.modules)
print(client.get("/readyz").status_code, "scim2_models" in sys.modules)
answer = client.get("/scim/v2/Users")
print(answer.status_code, answer.headers["content-type"], "scim2_models" in sys.modules)
print("numpy" in sys.modules)
"""


def test_the_scim_app_is_made_by_its_first_request(tmp_path: Path) -> None:
    environ = {
        **os.environ,
        "USERDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "USERDESK_VAR_DIR": str(tmp_path),
    }
    out = subprocess.run(  # noqa: S603 (our own command, fixed arguments)
        [sys.executable, "-c", SCRIPT],
        env=environ,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    assert out[0] == "False"  # the app made: no SCIM yet
    assert out[1].endswith(" False")  # another face's request: still none
    # No token: SCIM's own 401, in SCIM's media type, from the SCIM app made just now.
    assert out[2] == "401 application/scim+json True"
    assert out[3] == "False"  # the console, the API and SCIM up: no churn model's numpy
