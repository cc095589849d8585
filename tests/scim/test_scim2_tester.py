"""scim2-tester's checks, every one of them, against the app."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from scim2_client.client import BaseSyncSCIMClient
from scim2_tester import Status, check_server, filling

from tests.scim.conftest import MEDIA, Scim


class TestClientScim(BaseSyncSCIMClient):
    """scim2-client over Starlette's TestClient: the app in process, as the suite runs it."""

    __test__ = False

    def __init__(self, client: TestClient, token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client
        self.token = token

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": MEDIA,
            **kwargs.pop("headers", {}),
        }
        target = url if url.startswith("http") else f"/scim/v2{url}"
        return self.client.request(method, target, headers=headers, **kwargs)


def _emails_as_user_names(original: Any) -> Any:
    """scim2-tester's value maker, with a new email for userName.

    Userdesk's userName is the user's email (the README's mapping), as identity providers
    are set to send it; a schema cannot say so, so the tester would send a UUID."""

    def example(path: Any) -> Any:
        if str(path).lower().endswith("username"):
            return f"{uuid.uuid4().hex}@example.com"
        return original(path)

    return example


# What scim2-tester expects and Userdesk does otherwise on purpose, each asserted so that a
# change shows: a new email waits for its owner's confirmation (users.service.update_user),
# so userName reads the old one until then; and `active` always has a value (a user is
# active or not), so removing it leaves it as it was.
BY_DESIGN = {
    ("check_replace_attribute", "userName"),
    ("check_remove_attribute", "active"),
}


def test_scim2_tester_passes_every_check(scim: Scim, monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery, then create, read, query, replace, patch and delete of Users: every check
    passes but the two that Userdesk answers otherwise by design (BY_DESIGN)."""
    monkeypatch.setattr(
        filling, "get_random_example_value", _emails_as_user_names(filling.get_random_example_value)
    )
    results = check_server(TestClientScim(scim.client, scim.token))
    failed = {
        (
            result.title,
            result.data.get("urn") if isinstance(result.data, dict) else None,
        ): f"{result.reason} {result.data!r}"
        for result in results
        if result.status not in (Status.SUCCESS, Status.SKIPPED)
    }
    assert set(failed) == BY_DESIGN, "\n".join(f"{k}: {v[:600]}" for k, v in failed.items())
    passed = [result.title for result in results if result.status is Status.SUCCESS]
    assert len(passed) >= 20, passed
