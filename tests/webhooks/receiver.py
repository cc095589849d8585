"""A webhook receiver for the tests and the bench: a real HTTP server on 127.0.0.1 (uvicorn,
in a thread) that verifies every request with `standardwebhooks` and keeps what it got.

It can be told to answer with another status (and headers), to hold requests until
released, or be stopped and started again on the same port (the receiver is down); its
path /hang answers only after `hang_seconds` (an endpoint slower than the sender's
timeout), /drip answers 200 at once and then its body a byte every `hang_seconds` / 4, for
`hang_seconds` (each read is quick, the whole is not); given a certificate and its key
(PEM files), it speaks HTTPS.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Received:
    """One request, verified."""

    webhook_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.time() when it arrived
    verified_with: tuple[int, ...]  # which of the receiver's secrets verified it


@dataclass
class Receiver:
    """Verifies with every secret in SECRETS; a request none verifies is answered 401 and
    kept in `rejected`."""

    secrets: list[str]
    port: int = 0
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    requests: list[tuple[str, int]] = field(default_factory=list)  # (webhook-id, answer)
    # What to answer next: popped per request; empty: 204.
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)  # set: requests wait
    incoming: int = 0  # requests that arrived, held ones included
    # Set: held requests, once let go, are dropped unanswered and unrecorded (as when the
    # sender died meanwhile: it never learnt they arrived).
    drop_held: bool = False
    arrived: threading.Condition = field(default_factory=threading.Condition)
    hang_seconds: float = 0.0  # how long requests to /hang wait before being answered
    # HTTPS: the certificate chain and its private key, PEM files.
    certificate_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.verifiers = [Webhook(secret) for secret in self.secrets]

    @property
    def url(self) -> str:
        return self.url_for("127.0.0.1")

    def url_for(self, host: str, path: str = "/hooks") -> str:
        """The receiver's URL addressed by HOST (a name that resolves to 127.0.0.1)."""
        scheme = "https" if self.certificate_file else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
            ssl_certfile=self.certificate_file,
            ssl_keyfile=self.key_file,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop answering: connections are refused until `start` again."""
        if self.server and self.thread:
            self.hold.clear()
            self.server.should_exit = True
            self.thread.join(timeout=10)
        self.server = self.thread = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """What was received once it holds COUNT requests (fails after TIMEOUT)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} webhooks received, not {count}")
            return list(self.received)

    def ids(self) -> list[str]:
        return [item.webhook_id for item in self.received]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        self.incoming += 1
        if scope["path"] == "/hang":
            await asyncio.sleep(self.hang_seconds)
        if scope["path"] == "/drip":
            await _drip(send, self.hang_seconds)
            return
        held = False
        while self.hold.is_set():
            held = True
            await asyncio.sleep(0.02)
        if held and self.drop_held:
            return
        verified_with = []
        for index, verifier in enumerate(self.verifiers):
            try:
                verifier.verify(body, headers)
            except WebhookVerificationError:
                continue
            verified_with.append(index)
        if not verified_with:
            self.rejected.append(headers.get("webhook-id", ""))
            await _answer(send, 401, {}, b"not verified")
            return
        status, extra = self.answers.pop(0) if self.answers else (204, {})
        self.requests.append((headers["webhook-id"], status))
        if 200 <= status < 300:
            with self.arrived:
                self.received.append(
                    Received(
                        webhook_id=headers["webhook-id"],
                        body=json.loads(body),
                        headers=headers,
                        at=time.time(),
                        verified_with=tuple(verified_with),
                    )
                )
                self.arrived.notify_all()
        answer = b"" if status == 204 else f"answer {status}".encode()
        await _answer(send, status, extra, answer)


async def _answer(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
            + [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _drip(send: Send, seconds: float) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(4):
        await asyncio.sleep(seconds / 4)
        await send({"type": "http.response.body", "body": b".", "more_body": True})
    await send({"type": "http.response.body", "body": b""})
