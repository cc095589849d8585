"""The pure rules of self-registration and of created_via slugs."""

from __future__ import annotations

import pytest

from userdesk.signup.rules import (
    domain_allowed,
    domains_problem,
    email_domain,
    honeypot_filled,
    parse_domains,
    policy_problem,
)
from userdesk.users.rules import created_via_problem


def test_domains_are_parsed_lower_cased_without_at_signs_each_once() -> None:
    assert parse_domains(" Example.com,@example.org\nexample.COM; a.io ") == [
        "example.com",
        "example.org",
        "a.io",
    ]
    assert parse_domains("") == []


@pytest.mark.parametrize("bad", ["localhost", "exa_mple.com", "-x.com", "x..com", "x.c"])
def test_a_bad_domain_is_named(bad: str) -> None:
    assert domains_problem(["ok.com", bad]) == f"'{bad}' is not a domain name (like example.com)"


def test_good_domains_pass_and_a_subdomain_is_not_its_parent() -> None:
    assert domains_problem(["example.com", "mail.example.co.uk"]) is None
    assert domain_allowed("Ann@Example.com", ["example.com"])
    assert not domain_allowed("ann@eu.example.com", ["example.com"])
    assert email_domain("no-at-sign") == ""


def test_an_unknown_policy_is_named_with_the_allowed_ones() -> None:
    assert policy_problem("open") is None
    assert policy_problem("public") == "'public' is not one of: closed, open, domains"


def test_the_honeypot_counts_only_when_filled() -> None:
    assert not honeypot_filled("  ")
    assert honeypot_filled("http://spam.example")


@pytest.mark.parametrize("good", ["ticket", "chat", "community", "help_centre", "web-form", "x"])
def test_the_host_names_its_own_ways_in(good: str) -> None:
    assert created_via_problem(good) is None


@pytest.mark.parametrize("bad", ["", "Ticket", "help desk", "-chat", "x" * 33, "chat!"])
def test_a_created_via_that_is_not_a_short_slug_is_named(bad: str) -> None:
    problem = created_via_problem(bad)
    assert problem is not None
    assert f"'{bad}'" in problem
