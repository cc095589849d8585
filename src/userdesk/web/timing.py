"""A Server-Timing header on every response (web.edge adds it): how long the app took to
start answering.

Only when `USERDESK_SERVER_TIMING` turns it on (the bench does): the time a request took
tells, for one, whether an address has an account, more precisely than a stopwatch can.
"""

from __future__ import annotations

import time


def server_timing(started: float) -> tuple[bytes, bytes]:
    """`Server-Timing: app;dur=<ms>`: the time since STARTED (`time.perf_counter()`)."""
    elapsed = (time.perf_counter() - started) * 1000
    return (b"server-timing", f"app;dur={elapsed:.3f}".encode())
