"""Access-log lines that hold no secret: a token in a link's path or query becomes `…`.

A link that opens an account (`/invite/{token}`, `/password/reset/{token}`,
`/impersonate/{token}` …) works for whoever reads it; an access log is read by more people
than the mailbox it was sent to, and kept longer. uvicorn logs `client - "METHOD path
HTTP/v" status` on the `uvicorn.access` logger with the path as an argument: the filter
rewrites the arguments, so any formatter prints the redacted path.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from userdesk.web.security import TOKEN_PAGES

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "…"

_SLASH = r"(?:/|%2[fF])"  # a path inside a query (`/login?next=%2Finvite%2F…`) counts too
_PAGES = "|".join(
    re.escape(page.strip("/")).replace("/", _SLASH) for page in sorted(TOKEN_PAGES, key=len)
)
# The segment after a token page's prefix: the characters a URL's path segment may hold
# (RFC 3986 pchar but `&`, which ends a query's value) and %-escapes but `%2F`, so that
# the segment ends where the path, the query's value or a quoted string (JSON) ends.
# `/impersonate/end` is a route of its own, not a token.
_SEGMENT = r"(?:[A-Za-z0-9._~!$'()*+,;=:@-]|%(?!2[fF])[0-9A-Fa-f]{2})+"
_TOKEN_IN_PATH = re.compile(rf"({_SLASH}(?:{_PAGES}){_SLASH})(?!end(?:[/?#&\s\"]|$)){_SEGMENT}")
# Query parameters whose value is a secret (their names; S105 takes them for a password).
_SECRET_PARAMETERS = "token|access_token|refresh_token|api_key|key|secret|password|code|signature"  # noqa: S105
_TOKEN_IN_QUERY = re.compile(rf"([?&](?:{_SECRET_PARAMETERS})=)[^&#\s\"]+", re.IGNORECASE)


def redact(target: str) -> str:
    """TARGET (a path with its query) with every token replaced by `…`."""
    target = _TOKEN_IN_PATH.sub(rf"\g<1>{REDACTED}", target)
    if "=" in target:
        target = _TOKEN_IN_QUERY.sub(rf"\g<1>{REDACTED}", target)
    return target


class RedactTokens(logging.Filter):
    """Rewrites a record's string arguments (uvicorn's path among them) through `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        elif isinstance(record.msg, str) and not args:
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    """Put the filter on the access logger once (`create_app()` does, for every server)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())


SECURITY_LOGGER = "userdesk.security"


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with the security log on standard error.

    The access log's filter is not declared here: `create_app()` installs it, and
    dictConfig would add a second one beside it."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    # The security log (userdesk.security_log): its JSON lines, as they are, on stderr.
    config["formatters"]["security"] = {"format": "%(message)s"}
    config["handlers"]["security"] = {
        "formatter": "security",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"][SECURITY_LOGGER] = {
        "handlers": ["security"],
        "level": "INFO",
        "propagate": False,
    }
    return config
