"""RateLimit-Policy and RateLimit headers (draft-ietf-httpapi-ratelimit-headers-11) on the
answers of rate-limited requests: sign-in, signup, password reset, verification emails.

The throttle notes the quotas a request met (`auth.throttle.collecting()`); web.edge
writes them out, on a success as on a 429:

    RateLimit-Policy: "signin.ip";q=50;w=600, "signin.email";q=10;w=600
    RateLimit: "signin.ip";r=49;t=600, "signin.email";r=9;t=600

`q` is the quota and `w` its window in seconds; `r` what is left of it and `t` in how many
seconds a unit comes back. Counts that other clients' attempts add to are told only when
they refuse (auth.throttle.Policy.announce).
"""

from __future__ import annotations

from userdesk.auth import throttle


def policy_header(quotas: list[throttle.Quota]) -> str:
    return ", ".join(f'"{q.name}";q={q.quota};w={q.window}' for q in quotas)


def limit_header(quotas: list[throttle.Quota]) -> str:
    return ", ".join(f'"{q.name}";r={q.remaining};t={q.reset}' for q in quotas)


def limit_headers(met: list[throttle.Quota]) -> list[tuple[bytes, bytes]]:
    """The headers of an answer to a request that met the quotas MET (none if it met none)."""
    if not met:
        return []
    return [
        (b"ratelimit-policy", policy_header(met).encode()),
        (b"ratelimit", limit_header(met).encode()),
    ]
