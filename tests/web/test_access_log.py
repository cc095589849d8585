"""The access log holds no token: a link that opens an account is written with `…` instead."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from userdesk.web.access_log import RedactTokens, redact
from userdesk.web.security import TOKEN_PAGES

TOKEN = "tK9_x-Q2" + "a" * 35  # as secrets.token_urlsafe(32) makes them


@pytest.mark.parametrize("page", TOKEN_PAGES)
def test_every_token_page_loses_its_token_and_keeps_the_rest_of_the_line(page: str) -> None:
    """The page's name, the query after the token and what follows it stay readable."""
    assert redact(f"{page}{TOKEN}") == f"{page}…"
    assert redact(f"{page}{TOKEN}?lang=fr") == f"{page}…?lang=fr"
    assert redact(f"{page}{TOKEN}/extra") == f"{page}…/extra"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (f"/login?next=/invite/{TOKEN}", "/login?next=/invite/…"),
        (f"/login?next=%2Fpassword%2Freset%2F{TOKEN}", "/login?next=%2Fpassword%2Freset%2F…"),
        (f"/login?next=%2fimpersonate%2f{TOKEN}%2Fx", "/login?next=%2fimpersonate%2f…%2Fx"),
        (f"/anything?token={TOKEN}&page=2", "/anything?token=…&page=2"),
        (f"/anything?a=1&API_KEY={TOKEN}", "/anything?a=1&API_KEY=…"),
        (f"/invite/{TOKEN[:10]}%00{TOKEN[10:]}", "/invite/…"),
        (f'{{"path": "/verify/{TOKEN}", "ok": 1}}', '{"path": "/verify/…", "ok": 1}'),
    ],
)
def test_tokens_in_a_query_or_an_encoded_next_are_redacted_too(target: str, expected: str) -> None:
    """A sign-in redirect names the page it came from; a token may also ride in a query."""
    assert redact(target) == expected


@pytest.mark.parametrize(
    "target",
    [
        "/impersonate/end",
        "/console/users?q=status:active&sort=-email",
        "/api/v1/invitations/12/resend",
        "/static/js/invite.js",
        "/password/forgot",
        "/signup",
    ],
)
def test_paths_without_a_token_are_logged_as_they_are(target: str) -> None:
    assert redact(target) == target


def test_uvicorns_access_formatter_prints_the_redacted_path() -> None:
    """The filter rewrites the record's arguments, so uvicorn's own formatter prints `…`."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/password/reset/{TOKEN}", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert TOKEN not in line
    assert line == '127.0.0.1:5000 - "GET /password/reset/… HTTP/1.1" 200 OK'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_userdesk_serve_writes_no_token_in_its_access_log(tmp_path: Path) -> None:
    """`userdesk serve`, run as an operator runs it, logs every token page with `…`."""
    port = _free_port()
    env = {
        **os.environ,
        "USERDESK_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
        "USERDESK_VAR_DIR": str(tmp_path),
        "USERDESK_SECRET_KEY": "access-log-test",
    }
    env.pop("USERDESK_BASE_URL", None)
    userdesk = Path(sys.executable).with_name("userdesk")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603 (our own command, fixed arguments)
            [str(userdesk), "serve", "--port", str(port), "--no-worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    tokens = {page: secrets.token_urlsafe(32) for page in TOKEN_PAGES}
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as client:
            for page, token in tokens.items():
                answer = client.get(f"{page}{token}")
                assert answer.status_code < 500
                assert answer.headers["cache-control"] == "no-store"
                assert "server" not in answer.headers  # nor which server it is
                client.post(f"{page}{token}", data={"password": "x"})
            next_token = secrets.token_urlsafe(32)
            client.get("/login", params={"next": f"/invite/{next_token}"})
    finally:
        server.terminate()
        server.wait(timeout=20)
    written = log.read_text()
    for page, token in tokens.items():
        assert token not in written, page
        assert f'"GET {page}… HTTP/1.1"' in written, written
        assert f'"POST {page}… HTTP/1.1"' in written, written
    assert next_token not in written
    assert "next=%2Finvite%2F…" in written, written
    # The security log goes to standard error too, one JSON line per refused request.
    refusals = [line for line in written.splitlines() if '"event": "request_refused"' in line]
    assert refusals, written
    assert all("…" in json.loads(line)["path"] for line in refusals)
