"""The webhook HTTP client (`delivery.Sender`) against a raw HTTP/1.1 server on 127.0.0.1
that answers exactly the bytes each test gives: how answers are framed and kept, which
connections are kept alive, and that nothing is followed or read beyond what is kept."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from standardwebhooks.webhooks import Webhook

from userdesk.webhooks import delivery, signing
from userdesk.webhooks.delivery import Outcome, Sender, Target

SECRET = signing.new_secret()
BODY = '{"type":"user.updated","data":{"id":"7","name":"Zoë"}}'

Ran = TypeVar("Ran")


def run(coroutine: Coroutine[Any, Any, Ran]) -> Ran:
    """COROUTINE run to its end on a loop of its own, in a thread of its own: the browser
    tests' Playwright keeps an event loop running in the main thread for the session."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


@dataclass
class RawServer:
    """Answers the Nth request with ANSWERS[N] (bytes as they are sent); an answer of None
    closes the connection unanswered, and so does the answer to a request whose number is
    in CLOSE_AFTER. Keeps each request (connection number, head, body)."""

    answers: list[bytes | None]
    close_after: frozenset[int] = frozenset()
    requests: list[tuple[int, str, bytes]] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = next(
                    int(line.split(":", 1)[1])
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length:")
                )
                body = await reader.readexactly(length)
                self.requests.append((number, head, body))
                answer = self.answers[len(self.requests) - 1]
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if len(self.requests) - 1 in self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks?tenant=a%20b"


def target(url: str, n: int = 0) -> Target:
    return Target(n, 1, 1, f"msg_{n}", url, BODY, (SECRET,))


def exchange(
    answers: list[bytes | None],
    attempts: Callable[[Sender, RawServer], Awaitable[list[Outcome]]],
    close_after: frozenset[int] = frozenset(),
) -> tuple[list[Outcome], RawServer]:
    """Run ATTEMPTS with a Sender against a RawServer answering ANSWERS."""
    server = RawServer(answers, close_after)

    async def main() -> list[Outcome]:
        listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        server.port = listening.sockets[0].getsockname()[1]
        sender = Sender(allow_private=True)
        try:
            return await attempts(sender, server)
        finally:
            sender.close()
            listening.close()

    return run(main()), server


async def one_after_another(sender: Sender, server: RawServer) -> list[Outcome]:
    return [await sender.post(target(server.url, n), timeout=5) for n in range(len(server.answers))]


def test_the_request_is_signed_framed_and_addressed_as_the_url_says() -> None:
    outcomes, server = exchange([b"HTTP/1.1 204 No Content\r\n\r\n"], one_after_another)
    [(_, head, body)] = server.requests
    lines = head.split("\r\n")
    assert lines[0] == "POST /hooks?tenant=a%20b HTTP/1.1"
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
    }
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    assert headers["user-agent"] == delivery.USER_AGENT
    assert "transfer-encoding" not in headers
    assert body == BODY.encode()
    Webhook(SECRET).verify(body, headers)  # raises if the signature does not verify
    assert (outcomes[0].status_code, outcomes[0].error, outcomes[0].response) == (204, None, "")


def test_answers_framed_by_length_or_chunks_are_read_and_the_connection_kept() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nok \r\n4;ext=1\r\nthen\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    latin = b"HTTP/1.1 202 Accepted\r\nContent-Type: text/plain; charset=latin-1\r\n"
    latin += b"Content-Length: 4\r\n\r\ncaf\xe9"
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    outcomes, server = exchange([chunked, latin, interim], one_after_another)
    assert [(o.status_code, o.response, o.error) for o in outcomes] == [
        (200, "ok then", None),
        (202, "café", None),
        (201, "", None),
    ]
    assert all(o.delivered for o in outcomes)
    assert server.connections == 1  # each answer read to its end: the connection reused


def test_a_long_answer_is_cut_at_a_kilobyte_and_its_connection_closed() -> None:
    long = b"x" * (delivery.RESPONSE_READ * 10)
    by_length = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s" % (len(long), long)
    chunk = b"%x\r\n%s\r\n" % (len(long), long)
    chunked = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + b"0\r\n\r\n"
    ok = b"HTTP/1.1 204 No Content\r\n\r\n"
    outcomes, server = exchange([by_length, chunked, ok], one_after_another)
    assert [(o.status_code, o.response) for o in outcomes] == [
        (500, "x" * delivery.RESPONSE_KEPT),
        (503, "x" * delivery.RESPONSE_KEPT),
        (204, ""),
    ]
    assert [number for number, _, _ in server.requests] == [1, 2, 3]  # none reused


def test_connection_close_and_http_1_0_answers_are_not_reused() -> None:
    close = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    unframed = b"HTTP/1.1 200 OK\r\n\r\n"  # its body ends when the connection does

    async def attempts(sender: Sender, server: RawServer) -> list[Outcome]:
        first = await sender.post(target(server.url, 0), timeout=5)
        second = await sender.post(target(server.url, 1), timeout=5)
        # The server keeps the third connection open: its body has no end but the timeout.
        third = await sender.post(target(server.url, 2), timeout=0.5)
        return [first, second, third]

    outcomes, server = exchange([close, old, unframed], attempts)
    assert [number for number, _, _ in server.requests] == [1, 2, 3]
    assert [o.status_code for o in outcomes] == [204, 200, 200]
    assert outcomes[2].error
    assert "timed out after 0.5 s (reading the answer (200))" in outcomes[2].error


def test_a_redirect_is_an_answer_not_followed() -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
    outcomes, server = exchange([moved], one_after_another)
    assert (outcomes[0].status_code, outcomes[0].delivered) == (302, False)
    assert len(server.requests) == 1


def test_a_connection_closed_while_idle_is_not_used_again() -> None:
    """The server closes its side after the first answer (as an idle timeout would): the
    next attempt opens a new connection rather than failing on the old one."""

    async def attempts(sender: Sender, server: RawServer) -> list[Outcome]:
        first = await sender.post(target(server.url, 0), timeout=5)
        await asyncio.sleep(0.2)  # the server's close arrives
        return [first, await sender.post(target(server.url, 1), timeout=5)]

    ok = b"HTTP/1.1 204 No Content\r\n\r\n"
    outcomes, server = exchange([ok, ok], attempts, close_after=frozenset({0}))
    assert [(o.status_code, o.error) for o in outcomes] == [(204, None), (204, None)]
    assert [number for number, _, _ in server.requests] == [1, 2]


def test_broken_answers_are_failed_attempts() -> None:
    too_long = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * delivery.HEAD_LIMIT + b"\r\n\r\n"
    garbage = b"SSH-2.0-OpenSSH_9.6\r\n\r\n"
    bad_length = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok"
    outcomes, _ = exchange([too_long, garbage, bad_length, None], one_after_another)
    errors = [o.error or "" for o in outcomes]
    assert "longer than 65,536 bytes" in errors[0]
    assert "not an HTTP/1.1 answer" in errors[1]
    assert "Content-Length is not a length" in errors[2]
    assert "waiting for the answer: the connection was closed" in errors[3]
    assert [o.delivered for o in outcomes] == [False] * 4
    assert outcomes[0].status_code is None


def test_an_answer_nobody_asked_for_is_never_taken_for_the_next_one() -> None:
    """A server that answers twice to one request: the connection is not used again, so
    the stray answer cannot pass for the next message's."""

    async def attempts(sender: Sender, server: RawServer) -> list[Outcome]:
        first = await sender.post(target(server.url, 0), timeout=5)
        await asyncio.sleep(0.2)  # the stray answer is in
        return [first, await sender.post(target(server.url, 1), timeout=5)]

    twice = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    accepted = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
    outcomes, server = exchange([twice, accepted], attempts)
    assert [o.status_code for o in outcomes] == [204, 202]
    assert [number for number, _, _ in server.requests] == [1, 2]


# An attacker's review: the addresses connected to, the request's framing, answers framed
# to confuse, servers that dribble or never read, and what is kept open.

OK = b"HTTP/1.1 204 No Content\r\n\r\n"


def run_against(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    attempts: Callable[[Sender, int], Awaitable[list[Outcome]]],
    *,
    allow_private: bool = True,
    host: str = "127.0.0.1",
) -> list[Outcome]:
    """Run ATTEMPTS (given a Sender and the port) against a server on HOST run by HANDLER."""

    async def main() -> list[Outcome]:
        listening = await asyncio.start_server(handler, host, 0)
        sender = Sender(allow_private=allow_private)
        try:
            return await attempts(sender, listening.sockets[0].getsockname()[1])
        finally:
            sender.close()
            listening.close()
            await listening.wait_closed()

    return run(main())


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        (["93.184.216.34", "127.0.0.1"], "127.0.0.1 is a loopback address"),  # mixed: all refused
        (["::ffff:127.0.0.1"], "127.0.0.1 is a loopback address"),
        (["2002:7f00:1::1"], "127.0.0.1 is a loopback address"),  # 6to4 carrying loopback
        (["0.0.0.0"], "is an unspecified address"),  # noqa: S104 - refused, not bound
        (["169.254.169.254"], "is a cloud metadata address"),
        (["fd12:3456::1"], "is a unique-local address"),
        (["ff02::1"], "is a multicast address"),
        (["10.1.2.3", "2606:2800:220:1:248:1893:25c8:1946"], "10.1.2.3 is a private address"),
    ],
)
def test_every_address_a_name_resolves_to_is_checked_before_connecting(
    monkeypatch: pytest.MonkeyPatch, answer: list[str], refused: str
) -> None:
    """The lookup answers an address that is not public among others: nothing is
    connected to, not even the public one (the name is an attacker's)."""
    connections: list[int] = []

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1" if a == "self" else a for a in answer]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    async def attempts(sender: Sender, port: int) -> list[Outcome]:
        return [await sender.post(target(f"http://hooks.attacker.test:{port}/"), timeout=2)]

    monkeypatch.setattr(delivery, "resolve", resolve)
    [outcome] = run_against(handler, attempts, allow_private=False)
    assert outcome.error
    assert refused in outcome.error
    assert outcome.status_code is None
    assert connections == []


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0.0.0.0"],  # noqa: S104
)
def test_a_url_naming_a_private_address_is_refused_however_written(host: str) -> None:
    """URLs saved before the rules, or spelling loopback so that a check on the text would
    miss it: the address is judged after it is read and resolved."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    async def attempts(sender: Sender, port: int) -> list[Outcome]:
        return [await sender.post(target(f"http://{host}:{port}/"), timeout=2)]

    [outcome] = run_against(handler, attempts, allow_private=False)
    assert outcome.error
    assert outcome.error.startswith("refused: ")
    assert connections == []


def test_the_connection_goes_to_the_address_checked_not_to_a_later_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name is looked up once per connection, and that answer is the
    address connected to (a second lookup would answer an address nobody listens on)."""
    answers = [["127.0.0.1"], ["192.0.2.1"], ["192.0.2.1"]]
    looked_up: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return answers[len(looked_up) - 1]

    monkeypatch.setattr(delivery, "resolve", resolve)

    async def attempts(sender: Sender, server: RawServer) -> list[Outcome]:
        url = f"http://rebinding.test:{server.port}/hooks"
        return [await sender.post(target(url, n), timeout=2) for n in range(2)]

    outcomes, server = exchange([OK, OK], attempts)
    assert [(o.status_code, o.error) for o in outcomes] == [(204, None), (204, None)]
    assert looked_up == ["rebinding.test"]  # the second went on the checked connection
    assert server.connections == 1


def test_a_stored_url_that_would_break_the_request_line_is_not_sent() -> None:
    async def attempts(sender: Sender, server: RawServer) -> list[Outcome]:
        bad = [
            f"http://127.0.0.1:{server.port}/a\r\nX-Injected: 1\r\n\r\n",
            f"http://127.0.0.1:{server.port}/a\tb",
            f"http://127.0.0.1:{server.port}\r\nX-Injected: 1/",
            "gopher://127.0.0.1/",
        ]
        return [await sender.post(target(url), timeout=2) for url in bad]

    outcomes, server = exchange([OK], attempts)
    assert all((o.error or "").startswith("not a URL webhooks can be sent to") for o in outcomes)
    assert server.connections == 0


def test_request_targets_and_hosts_are_encoded_for_the_request_line() -> None:
    """Spaces, quotes and non-ASCII are percent-encoded; IDNA hosts encoded; IPv6 hosts
    bracketed with their port; a scheme's default port left out of Host."""
    url = delivery.parse_url('https://Bücher.example/ä b?q="<x>"#frag')
    assert url.head.startswith(
        b"POST /%C3%A4%20b?q=%22%3Cx%3E%22 HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n"
    )
    assert (url.tls, url.host, url.port) == (True, "xn--bcher-kva.example", 443)
    v6 = delivery.parse_url("http://[::1]:8443/p")
    assert (v6.host, v6.port) == ("::1", 8443)
    assert v6.head.startswith(b"POST /p HTTP/1.1\r\nHost: [::1]:8443\r\n")
    default = delivery.parse_url("http://example.com:80")
    assert default.head.startswith(b"POST / HTTP/1.1\r\nHost: example.com\r\n")
    assert default.port == 80


def test_an_ipv6_literal_host_is_connected_to_and_named_in_host() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        writer.write(OK)
        await writer.drain()
        writer.close()

    async def attempts(sender: Sender, port: int) -> list[Outcome]:
        return [await sender.post(target(f"http://[::1]:{port}/v6"), timeout=2)]

    [outcome] = run_against(handler, attempts, host="::1")
    assert (outcome.status_code, outcome.error) == (204, None)
    assert b"\r\nHost: [::1]:" in seen[0]


def test_status_lines_that_are_not_http_1_are_failed_attempts() -> None:
    answers: list[bytes | None] = [
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/2 200\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.10 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",  # no reason phrase: allowed
    ]
    outcomes, _ = exchange(answers, one_after_another)
    assert [o.status_code for o in outcomes] == [None, None, None, None, 200]
    assert all("not an HTTP/1.1 answer" in (o.error or "") for o in outcomes[:4])


def test_heads_are_capped_at_64_kb_interim_answers_included() -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </" + b"a" * 1000 + b">\r\n\r\n"
    flood = early * 70 + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    many = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % n for n in range(2000))
    many += b"Content-Length: 2\r\n\r\nok"
    hint = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    hint += b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    outcomes, _ = exchange([flood, many, hint], one_after_another)
    assert outcomes[0].status_code is None
    assert "head is longer than 65,536 bytes" in (outcomes[0].error or "")
    assert [(o.status_code, o.response, o.error) for o in outcomes[1:]] == [
        (200, "ok", None),
        (200, "", None),
    ]


def test_a_folded_header_is_read_as_one() -> None:
    folded = b"HTTP/1.1 400 Bad\r\nContent-Type: text/plain;\r\n charset=latin-1\r\n"
    folded += b"Content-Length: 4\r\n\r\ncaf\xe9"
    spaced = b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"  # whitespace before the colon
    outcomes, _ = exchange([folded, spaced], one_after_another)
    assert (outcomes[0].status_code, outcomes[0].response) == (400, "café")
    assert "a malformed header" in (outcomes[1].error or "")


def test_an_answer_framed_by_both_length_and_chunks_closes_its_connection() -> None:
    both = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
    both += b"2\r\nok\r\n0\r\n\r\n"
    outcomes, server = exchange([both, OK], one_after_another)
    assert [(o.status_code, o.response) for o in outcomes] == [(200, "ok"), (204, "")]
    assert [number for number, _, _ in server.requests] == [1, 2]  # not reused


def test_content_lengths_that_are_not_one_length_are_failed_attempts() -> None:
    def length(value: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\n" + value + b"\r\n\r\nok"

    answers: list[bytes | None] = [
        length(b"Content-Length: -2"),
        length(b"Content-Length: 2a"),
        length(b"Content-Length: +2"),
        length(b"Content-Length: 2\r\nContent-Length: 3"),
        length(b"Content-Length: 2\r\nContent-Length: 2"),  # the same twice: one length
    ]
    outcomes, _ = exchange(answers, one_after_another)
    assert all("Content-Length is not a length" in (o.error or "") for o in outcomes[:4])
    assert (outcomes[4].status_code, outcomes[4].response, outcomes[4].error) == (200, "ok", None)


def test_chunk_sizes_are_hex_digits_and_chunks_their_size() -> None:
    def chunked(chunks: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks

    huge = b"f" * 17
    long = b"y" * (delivery.RESPONSE_READ * 2)
    answers: list[bytes | None] = [
        chunked(b"0x2\r\nok\r\n0\r\n\r\n"),
        chunked(b"-2\r\nok\r\n0\r\n\r\n"),
        chunked(huge + b"\r\nok\r\n0\r\n\r\n"),
        chunked(b"2\r\nokAND MORE\r\n0\r\n\r\n"),
        chunked(b"7fffffffffffffff\r\n" + long),  # a huge size: cut, never waited for
        OK,
    ]
    outcomes, server = exchange(answers, one_after_another)
    assert all("a malformed chunk" in (o.error or "") for o in outcomes[:4])
    assert (outcomes[4].response, outcomes[4].error) == ("y" * delivery.RESPONSE_KEPT, None)
    assert outcomes[5].status_code == 204
    assert len({number for number, _, _ in server.requests}) == 6  # none reused


def test_an_answer_without_length_is_read_up_to_the_cap_only() -> None:
    """The server sends more than is kept and keeps its side open: the attempt ends once
    the cap is read, and the connection is not used again."""
    unframed = b"HTTP/1.1 500 Oops\r\n\r\n" + b"z" * (delivery.RESPONSE_READ * 10)
    outcomes, server = exchange([unframed, OK], one_after_another)
    assert (outcomes[0].status_code, outcomes[0].error) == (500, None)
    assert outcomes[0].response == "z" * delivery.RESPONSE_KEPT
    assert [number for number, _, _ in server.requests] == [1, 2]


def test_switching_protocols_and_bodies_after_204_or_304_are_not_taken_for_answers() -> None:
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"
    no_content = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/"
    not_modified = b"HTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
    answers: list[bytes | None] = [switching, no_content, not_modified, OK]
    outcomes, server = exchange(answers, one_after_another)
    assert [(o.status_code, o.response, o.delivered) for o in outcomes] == [
        (101, "", False),
        (204, "", True),
        (304, "", False),
        (204, "", True),
    ]
    assert [number for number, _, _ in server.requests] == [1, 2, 3, 4]  # none reused


def test_a_server_dribbling_its_answer_is_cut_at_the_deadline() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            pass
        writer.close()

    async def attempts(sender: Sender, port: int) -> list[Outcome]:
        started = time.monotonic()
        outcome = await sender.post(target(f"http://127.0.0.1:{port}/"), timeout=1)
        assert time.monotonic() - started < 3  # 1 s, and a loaded machine's slack
        return [outcome]

    [outcome] = run_against(handler, attempts)
    assert outcome.error == "timed out after 1 s (waiting for the answer)"


def test_a_server_that_never_reads_is_given_up_at_the_deadline_and_its_socket_closed() -> None:
    """Sending a large body to a server that reads nothing blocks once the buffers are
    full: the deadline ends it, and the socket is closed then, not once the unsent bytes
    have gone (they never would)."""
    big = json.dumps({"type": "user.updated", "data": {"pad": "p" * 16_000_000}})
    peers: list[asyncio.StreamWriter] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer)
        await asyncio.sleep(30)

    async def attempts(sender: Sender, port: int) -> list[Outcome]:
        before = open_fds()
        started = time.monotonic()
        url = f"http://127.0.0.1:{port}/"
        outcome = await sender.post(Target(1, 1, 1, "msg_big", url, big, (SECRET,)), timeout=1)
        assert time.monotonic() - started < 3  # 1 s, and a loaded machine's slack
        await asyncio.sleep(0.1)
        assert open_fds() == before + 1  # the server's side only: ours is closed
        for peer in peers:
            peer.transport.abort()
        return [outcome]

    [outcome] = run_against(handler, attempts)
    assert outcome.error == "timed out after 1 s (sending the request)"


def test_a_server_closing_mid_answer_fails_the_attempt_with_what_was_read() -> None:
    cut = b"HTTP/1.1 503 Busy\r\nContent-Length: 10\r\n\r\nabc"
    mid_chunks = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"
    outcomes, _ = exchange([cut, mid_chunks], one_after_another, frozenset({0, 1}))
    assert [o.status_code for o in outcomes] == [503, 500]
    assert all("reading the answer" in (o.error or "") for o in outcomes)
    assert all("the connection was closed" in (o.error or "") for o in outcomes)


def test_a_kept_connection_serves_one_organization_and_only_while_fresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two organizations' endpoints on one origin never share a connection (an answer a
    server sent late could otherwise reach the other's attempt log); a connection idle
    longer than KEEP_ALIVE is not used again."""
    monkeypatch.setattr(delivery, "KEEP_ALIVE", 0.3)

    async def attempts(sender: Sender, server: RawServer) -> list[Outcome]:
        def of(organization: int, n: int) -> Target:
            return Target(n, organization, organization, f"msg_{n}", server.url, BODY, (SECRET,))

        outcomes = [await sender.post(of(1, 0), 5), await sender.post(of(2, 1), 5)]
        outcomes.append(await sender.post(of(1, 2), 5))  # organization 1's connection again
        await asyncio.sleep(0.4)
        outcomes.append(await sender.post(of(1, 3), 5))  # idle too long: a new one
        return outcomes

    outcomes, server = exchange([OK] * 4, attempts)
    assert [o.status_code for o in outcomes] == [204] * 4
    assert [number for number, _, _ in server.requests] == [1, 2, 1, 3]


def test_many_deliveries_keep_few_connections_and_leave_no_socket_open() -> None:
    """400 attempts, 32 at a time, some answered and closed, some cut, some not HTTP:
    at most `keep` connections stay idle, and once stopped no socket is left open."""
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    kinds = [OK, close, b"garbage\r\n\r\n", None]
    count = 400
    answers: list[bytes | None] = [kinds[n % len(kinds)] for n in range(count)]
    server = RawServer(answers)
    before = open_fds()

    async def main() -> tuple[list[Outcome], int]:
        listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        server.port = listening.sockets[0].getsockname()[1]
        sender = Sender(allow_private=True, keep=4)
        slots = asyncio.Semaphore(32)

        async def one(n: int) -> Outcome:
            async with slots:
                return await sender.post(target(server.url, n), timeout=5)

        outcomes = await asyncio.gather(*(one(n) for n in range(count)))
        idle = sender.idle_count
        sender.close()
        listening.close()
        await listening.wait_closed()
        await asyncio.sleep(0.2)  # the server's handlers see their connections end
        return outcomes, idle

    outcomes, idle = run(main())
    assert len(outcomes) == count
    assert sum(o.delivered for o in outcomes) == count // 2
    assert idle <= 4
    assert open_fds() == before


def open_fds() -> int:
    """The process's open file descriptors (those of earlier tests' garbage closed first)."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def test_charsets_and_retry_afters_no_codec_or_clock_can_read_still_end_in_outcomes() -> None:
    """An answer naming a codec that is no text encoding, or a Retry-After int() or the
    calendar cannot take, once made `post` raise: its slot in the worker stayed taken for
    good (a few such endpoints stopped every organization's deliveries)."""
    names = [b"rot13", b"base64", b"undefined", b"idna", b"punycode", b"no-such-codec"]
    answers: list[bytes | None] = [
        b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain; charset=%s\r\n" % name
        + b"Content-Length: 4\r\n\r\nab\xff!"
        for name in names
    ]
    retry_afters = [b"\xb2", b"9" * 30, b"9" * 5000]
    answers += [
        b"HTTP/1.1 503 Busy\r\nRetry-After: %s\r\nContent-Length: 0\r\n\r\n" % value
        for value in retry_afters
    ]
    outcomes, _ = exchange(answers, one_after_another)
    assert [(o.status_code, o.response) for o in outcomes[: len(names)]] == [
        (500, "ab\ufffd!")
    ] * len(names)
    assert [(o.status_code, o.retry_after) for o in outcomes[len(names) :]] == [
        (503, None),
        (503, delivery.RETRY_AFTER_MAX),
        (503, delivery.RETRY_AFTER_MAX),
    ]


def test_a_kept_connection_the_server_closed_as_it_was_taken_is_replaced_once() -> None:
    """The server closes a kept connection on the next request without answering (its
    idle timeout struck as the request went out): the request goes again on a new
    connection; a new connection closed so is a failed attempt, not tried again."""

    async def attempts(sender: Sender, server: RawServer) -> list[Outcome]:
        return [await sender.post(target(server.url, n), timeout=5) for n in range(3)]

    outcomes, server = exchange([OK, None, OK, None, None], attempts)
    assert [(o.status_code, o.error) for o in outcomes[:2]] == [(204, None)] * 2
    assert outcomes[2].error == "waiting for the answer: the connection was closed"
    # 1: answered; 1 again: closed, so 2: answered, and kept; 2 again: closed, so 3: closed.
    assert [number for number, _, _ in server.requests] == [1, 1, 2, 2, 3]
