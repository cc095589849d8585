"""What a declared route reads from a request, for the tests of the routes that answer its
common request ahead of FastAPI (web.common_route)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute


def declared_inputs(router: APIRouter, endpoint: Callable[..., Any]) -> dict[str, set[str]]:
    """The query parameters, the other inputs (headers, cookies, body) and the dependencies
    called of the route of ROUTER whose endpoint is ENDPOINT, its dependencies' included."""
    route = next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)
    found: dict[str, set[str]] = {"query": set(), "other": set(), "calls": set()}

    def walk(dependant: Dependant) -> None:
        found["query"].update(p.alias for p in dependant.query_params)
        for fields in (dependant.header_params, dependant.cookie_params, dependant.body_params):
            found["other"].update(p.alias for p in fields)
        for sub in dependant.dependencies:
            if sub.call is not None:
                found["calls"].add(sub.call.__name__)
            walk(sub)

    walk(route.dependant)
    return found
