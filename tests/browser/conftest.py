"""A live server on a free local port and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import make_settings
from userdesk import demo
from userdesk.config import Settings
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.web.app import create_app

CHROMIUM = os.environ.get("USERDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class LiveServer:
    url: str
    admin_email: str
    admin_password: str
    database: Database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """A demo organization's app, served: where, by whom to sign in, with what settings."""

    live: LiveServer
    app: FastAPI
    settings: Settings


@contextmanager
def served_demo(tmp: Path, *, seed: int) -> Iterator[Served]:
    """The whole app on SQLite in TMP with a small demo organization, served by uvicorn
    until the block ends."""
    url = f"sqlite:///{tmp}/live.db"
    database = Database.from_url(url)
    upgrade(database.engine)
    port = _free_port()
    with database.unit_of_work() as db:
        made = demo.create_demo_organization(
            db, count=40, seed=seed, base_url=f"http://127.0.0.1:{port}"
        )
    settings = dataclasses.replace(make_settings(tmp, url), base_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, database)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    live = LiveServer(f"http://127.0.0.1:{port}", made.admin_email, made.admin_password, database)
    try:
        yield Served(live, app, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        database.dispose()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The whole app on SQLite with a small demo organization, served by uvicorn."""
    with served_demo(tmp_path_factory.mktemp("live"), seed=11) as served:
        yield served.live


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: run `scripts/ensure-chromium` "
            "(apt-get install -y chromium) or set USERDESK_CHROMIUM."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
