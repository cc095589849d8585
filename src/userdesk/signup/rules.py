"""Pure rules of self-registration: the policy, email domains, the honeypot."""

from __future__ import annotations

import re
from enum import StrEnum


class RegistrationPolicy(StrEnum):
    """Who may register themselves in the portal."""

    CLOSED = "closed"  # by invitation only (the default)
    OPEN = "open"  # anyone
    DOMAINS = "domains"  # anyone whose email is at one of the listed domains

    @property
    def label(self) -> str:
        return POLICY_LABELS[self]


POLICY_LABELS = {
    RegistrationPolicy.CLOSED: "Closed: by invitation only",
    RegistrationPolicy.OPEN: "Open to anyone",
    RegistrationPolicy.DOMAINS: "Open to the email domains listed",
}

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
DOMAINS_MAX = 100


def policy_problem(value: str) -> str | None:
    """What is wrong with VALUE as a registration policy, or None."""
    allowed = [p.value for p in RegistrationPolicy]
    if value not in allowed:
        return f"'{value}' is not one of: {', '.join(allowed)}"
    return None


def parse_domains(text: str) -> list[str]:
    """The domains in TEXT (separated by commas, spaces or lines), lower-cased, each once."""
    seen: list[str] = []
    for part in re.split(r"[\s,;]+", text):
        domain = part.strip().lower().removeprefix("@")
        if domain and domain not in seen:
            seen.append(domain)
    return seen


def domains_problem(domains: list[str]) -> str | None:
    """What is wrong with DOMAINS as a list of email domains (naming the first bad one)."""
    if len(domains) > DOMAINS_MAX:
        return f"lists {len(domains)} domains, more than {DOMAINS_MAX}"
    for domain in domains:
        if not _DOMAIN.match(domain):
            return f"'{domain}' is not a domain name (like example.com)"
    return None


def email_domain(email: str) -> str:
    """The domain of EMAIL, lower-cased ('' when there is no @)."""
    return email.strip().rpartition("@")[2].lower() if "@" in email else ""


def domain_allowed(email: str, domains: list[str]) -> bool:
    """Whether EMAIL is at one of DOMAINS (exactly: a subdomain is a different domain)."""
    return email_domain(email) in domains


def honeypot_filled(value: str) -> bool:
    """Whether the field a person leaves empty (hidden from them) came back filled."""
    return bool(value.strip())
