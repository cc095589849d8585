"""The /scim/v2 operations in the one OpenAPI document: tagged SCIM, in
application/scim+json, with the SCIM token as their bearer scheme and SCIM errors."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.datastructures import State

from userdesk.web.scim import create_scim_app

SCIM = "application/scim+json"


def test_every_scim_route_is_documented_as_scim(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    scim = {
        (method, path): operation
        for path, item in paths.items()
        if path.startswith("/scim/v2/")
        for method, operation in item.items()
    }
    routes = {
        (method.lower(), "/scim/v2" + route.path)
        for route in create_scim_app(State()).routes
        if getattr(route, "include_in_schema", False)
        for method in route.methods
        if method != "HEAD"
    }
    assert set(scim) == routes
    assert ("get", "/scim/v2/Users") in scim
    assert ("post", "/scim/v2/Bulk") in scim
    assert document["components"]["securitySchemes"]["scimToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["scimToken"]["description"],
    }
    for (method, path), operation in scim.items():
        assert operation["tags"] == ["SCIM"], (method, path)
        assert operation["security"] == [{"scimToken": []}], (method, path)
        assert operation["operationId"].startswith("scim_")
        for status, answer in operation["responses"].items():
            if status != "204":
                assert list(answer["content"]) == [SCIM], (method, path, status)
            if status.startswith("4"):
                ref = answer["content"][SCIM]["schema"]["$ref"]
                assert ref == "#/components/schemas/ScimError"
        assert "401" in operation["responses"], (method, path)
        if method in ("post", "put", "patch"):
            assert list(operation["requestBody"]["content"]) == [SCIM], (method, path)
        for parameter in operation.get("parameters", []):
            # SCIM's If-Match is optional (RFC 7644 §3.14), unlike the API's
            assert not (parameter["name"].lower() == "if-match" and parameter["required"])
    listed = {p["name"] for p in scim[("get", "/scim/v2/Users")]["parameters"]}
    assert {"filter", "startIndex", "count", "cursor", "sortBy", "sortOrder"} <= listed
    assert scim[("post", "/scim/v2/Users")]["responses"].keys() >= {"201", "400", "409"}
    assert "204" in scim[("delete", "/scim/v2/Users/{resource_id}")]["responses"]
    # the API's operations keep their own scheme and problems
    users = paths["/api/v1/users"]["get"]
    assert "SCIM" not in users.get("tags", [])
    assert "application/problem+json" in users["responses"]["401"]["content"]
