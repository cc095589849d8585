"""Webhook secrets are Standard Webhooks secrets, kept sealed per organization; a message's
headers verify with the `standardwebhooks` library under every secret they were signed
with, and under no other, for no other body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import make_settings
from userdesk import sealing
from userdesk.config import Settings
from userdesk.two_step import service as two_step
from userdesk.webhooks import signing


@pytest.fixture
def settings_here(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "sqlite://")


def test_a_new_secret_is_whsec_and_the_base64_of_32_random_bytes() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_a_sealed_secret_opens_for_its_organization_only(settings_here: Settings) -> None:
    secret = signing.new_secret()
    stored = signing.seal_secret(settings_here, secret, 4)
    assert secret not in stored
    assert stored.startswith("v1:")
    assert signing.unseal_secret(settings_here, stored, 4) == secret
    with pytest.raises(InvalidTag):
        signing.unseal_secret(settings_here, stored, 5)
    # nor under two-step's key, though the scheme is the same
    with pytest.raises(InvalidTag):
        two_step._decrypt(settings_here, stored, 4)
    with pytest.raises(ValueError, match="scheme"):
        signing.unseal_secret(settings_here, "v0:" + stored[3:], 4)


def test_two_step_secrets_sealed_before_the_refactoring_still_open(settings_here: Settings) -> None:
    """The stored format of two-step seeds is the one two_step wrote itself."""
    key = hmac.new(
        settings_here.secret_key.encode(), b"userdesk two-step secrets v1", hashlib.sha256
    ).digest()
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, b"JBSWY3DPEHPK3PXP", b"17")
    stored = f"v1:{base64.b64encode(nonce + sealed).decode()}"
    assert two_step._decrypt(settings_here, stored, 17) == "JBSWY3DPEHPK3PXP"
    again = two_step._encrypt(settings_here, "JBSWY3DPEHPK3PXP", 17)
    raw = base64.b64decode(again.removeprefix("v1:"))
    assert AESGCM(key).decrypt(raw[:12], raw[12:], b"17") == b"JBSWY3DPEHPK3PXP"
    assert (
        sealing.unseal(
            settings_here, purpose=b"userdesk two-step secrets v1", stored=stored, associated="17"
        )
        == "JBSWY3DPEHPK3PXP"
    )


def test_headers_signed_with_two_secrets_verify_with_either() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    uid = signing.new_message_uid()
    now = datetime.now(UTC)
    body = '{"type":"user.disabled","timestamp":"2026-12-06T19:00:00Z","data":{"id":"1"}}'
    headers = signing.signature_headers([new, old], uid, now, body)
    assert headers["webhook-id"] == uid
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(s.startswith("v1,") for s in headers["webhook-signature"].split(" "))
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["data"] == {"id": "1"}
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body.replace('"1"', '"2"'), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    other_id = {**headers, "webhook-id": signing.new_message_uid()}
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body, other_id)


def test_a_body_of_any_unicode_is_signed_as_its_utf8_bytes() -> None:
    secret = signing.new_secret()
    body = '{"data":{"reason":"é \\u0000 \u2028 ☃"}}'
    headers = signing.signature_headers([secret], "msg_x", datetime.now(UTC), body)
    assert Webhook(secret).verify(body.encode(), headers)


def test_message_uids_are_unique_short_and_sort_by_time() -> None:
    uids = [signing.new_message_uid() for _ in range(1000)]
    assert len(set(uids)) == 1000
    assert all(u.startswith("msg_") and len(u) <= 40 for u in uids)
    time.sleep(0.002)
    later = signing.new_message_uid()
    assert later > max(uids)
