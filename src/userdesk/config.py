"""Settings, read from the environment. The only module that reads it."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DEFAULT_VAR_DIR = Path("var")


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str
    base_url: str
    smtp_url: str | None
    mail_from: str
    var_dir: Path
    base_url_given: bool = True  # False: the default, which `serve` adapts to its port
    cookie_secure: bool = False
    churn_every_hours: int = 24  # how often the worker scores churn; 0: never by itself
    server_timing: bool = False  # a Server-Timing header on every response (the bench's)
    # Webhooks may be delivered to loopback, private and link-local addresses (development
    # and tests only: otherwise an endpoint could reach what only this host may reach).
    webhooks_allow_private: bool = False
    # Read replicas of a PostgreSQL primary (see db/replicas.py): their URLs, how far
    # behind one may be before it is skipped, and how long a caller's reads stay on the
    # primary after that caller wrote.
    database_replica_urls: tuple[str, ...] = ()
    replica_max_lag_seconds: float = 10.0
    replica_read_your_writes_seconds: float = 5.0

    @property
    def https(self) -> bool:
        """Whether Userdesk is served over HTTPS (its base URL says so)."""
        return self.base_url.startswith("https://")


def _secret_key(var_dir: Path) -> str:
    """The key from USERDESK_SECRET_KEY, else the one generated once into var/secret_key."""
    given = os.environ.get("USERDESK_SECRET_KEY")
    if given:
        return given
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_settings() -> Settings:
    """Read the settings from the environment (USERDESK_*)."""
    var_dir = Path(os.environ.get("USERDESK_VAR_DIR", str(DEFAULT_VAR_DIR)))
    base_url = os.environ.get("USERDESK_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    return Settings(
        database_url=os.environ.get(
            "USERDESK_DATABASE_URL", f"sqlite:///{var_dir.as_posix()}/userdesk.db"
        ),
        secret_key=_secret_key(var_dir),
        base_url=base_url,
        smtp_url=os.environ.get("USERDESK_SMTP_URL") or None,
        mail_from=os.environ.get("USERDESK_MAIL_FROM", "Userdesk <no-reply@localhost>"),
        var_dir=var_dir,
        cookie_secure=base_url.startswith("https://"),
        base_url_given="USERDESK_BASE_URL" in os.environ,
        churn_every_hours=_hours("USERDESK_CHURN_EVERY_HOURS", 24),
        server_timing=_flag("USERDESK_SERVER_TIMING"),
        webhooks_allow_private=_flag("USERDESK_WEBHOOKS_ALLOW_PRIVATE"),
        database_replica_urls=_replica_urls("USERDESK_DATABASE_REPLICA_URLS"),
        replica_max_lag_seconds=_seconds("USERDESK_REPLICA_MAX_LAG_SECONDS", 10.0),
        replica_read_your_writes_seconds=_seconds("USERDESK_REPLICA_READ_YOUR_WRITES_SECONDS", 5.0),
    )


def _flag(name: str) -> bool:
    """A yes/no setting: 1, true, yes or on (any case) turn it on; unset or empty, off."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={value!r} is not one of 1, true, yes, on, 0, false, no, off")


def _hours(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        hours = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number of hours") from None
    if hours < 0:
        raise ValueError(f"{name}={value!r} is below 0")
    return hours


def _replica_urls(name: str) -> tuple[str, ...]:
    """Comma-separated PostgreSQL URLs; empty items (a trailing comma) are left out."""
    urls = tuple(url.strip() for url in os.environ.get(name, "").split(",") if url.strip())
    for url in urls:
        scheme = url.partition("://")[0]
        if not scheme.startswith(("postgresql", "postgres")) or "://" not in url:
            shown = url.split("@")[-1]  # never the password into a log
            raise ValueError(f"{name}: {shown!r} is not a postgresql:// URL")
    return urls


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip() or str(default)
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 86_400:
        raise ValueError(f"{name}={value!r} is not between 0 and 86400 seconds")
    return seconds


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
