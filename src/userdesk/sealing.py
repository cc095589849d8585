"""Sealing secrets that must be read back (an authenticator's seed, a webhook's signing
secret): AES-GCM under a key derived from the instance's secret key.

Each kind of secret has a key of its own (the PURPOSE the key is derived for), and each
sealed value is bound to its owner (ASSOCIATED, e.g. a user's or an organization's id,
authenticated but not encrypted), so that a value copied onto another row does not open.
Stored as "<scheme>:<base64 of nonce and ciphertext>", so that a later scheme (another
cipher, a new key) can be told apart and the values re-sealed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from userdesk.config import Settings

SCHEME = "v1"
_NONCE = 12  # bytes, as AES-GCM wants


def _cipher(settings: Settings, purpose: bytes) -> AESGCM:
    key = hmac.new(settings.secret_key.encode(), purpose, hashlib.sha256).digest()
    return AESGCM(key)


def seal(settings: Settings, *, purpose: bytes, secret: str, associated: str) -> str:
    """SECRET sealed under the key for PURPOSE, bound to ASSOCIATED."""
    nonce = secrets.token_bytes(_NONCE)
    sealed = _cipher(settings, purpose).encrypt(nonce, secret.encode(), associated.encode())
    return f"{SCHEME}:{base64.b64encode(nonce + sealed).decode()}"


def unseal(settings: Settings, *, purpose: bytes, stored: str, associated: str) -> str:
    """The secret `seal` turned into STORED.

    Raises:
        ValueError: an unknown scheme.
        cryptography.exceptions.InvalidTag: another key, purpose or owner, or a changed value.
    """
    scheme, _, sealed = stored.partition(":")
    if scheme != SCHEME:
        raise ValueError(f"unknown sealed secret scheme {scheme!r}")
    raw = base64.b64decode(sealed)
    opened = _cipher(settings, purpose).decrypt(raw[:_NONCE], raw[_NONCE:], associated.encode())
    return opened.decode()
