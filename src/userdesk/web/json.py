"""JSON responses serialized by orjson: timestamps in RFC 3339 with Z, dataclasses as objects."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, option=OPTIONS)


class JSON(Response):
    """application/json from plain data, without a second pass through a model."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
