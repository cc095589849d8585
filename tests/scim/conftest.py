"""SCIM fixtures: a provisioning token and a client that sends it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from userdesk.access.rules import system_actor
from userdesk.organizations.models import Organization
from userdesk.scim import tokens

MEDIA = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def make_token(db: Session, org: Organization, name: str = "Okta") -> str:
    created = tokens.create_token(db, actor=system_actor(org.id, "tests"), name=name)
    db.flush()
    return created.secret


@dataclass
class Scim:
    """A client of /scim/v2 with a token."""

    client: TestClient
    token: str

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": MEDIA, **(extra or {})}

    def get(self, path: str, **params: Any) -> Response:
        return self.client.get(f"/scim/v2{path}", params=params, headers=self.headers())

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        return self.client.request(
            method, f"/scim/v2{path}", json=body, headers=self.headers(headers)
        )

    def create(self, email: str, given: str = "Ann", family: str = "Lee", **more: Any) -> Any:
        body = {
            "schemas": [USER_SCHEMA],
            "userName": email,
            "name": {"givenName": given, "familyName": family},
            **more,
        }
        response = self.send("POST", "/Users", body)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def scim(client: TestClient, db: Session, org: Organization) -> Scim:
    return Scim(client, make_token(db, org))


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}
