"""The secret key: from the environment, or generated once into a file only its owner reads."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from userdesk.config import load_settings


def test_a_generated_secret_key_is_kept_readable_by_its_owner_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USERDESK_SECRET_KEY", raising=False)
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    first = load_settings().secret_key
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 48  # 288 random bits, base64
    assert load_settings().secret_key == first  # generated once
    monkeypatch.setenv("USERDESK_SECRET_KEY", "from the environment")
    assert load_settings().secret_key == "from the environment"
