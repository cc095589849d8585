"""The cyclic garbage collector during an import's parsing and batches."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from userdesk.imports import service as imports


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:  # as it was, whatever the test left: one that turned it off must not leave it so
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_inside_and_enabled_again_after(collector_enabled: None) -> None:
    """Inside, no full pass can start; after, the collector runs again."""
    with imports._collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_enabled_again_after_an_error(collector_enabled: None) -> None:
    """A batch that fails leaves the collector running."""
    with pytest.raises(RuntimeError), imports._collector_paused():
        raise RuntimeError("the batch failed")
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled(collector_enabled: None) -> None:
    """The pause does not turn on what someone else turned off."""
    gc.disable()
    with imports._collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_parsing_a_file_runs_with_the_collector_paused(
    collector_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows of a file are read with the collector paused, and it runs again after."""
    seen: list[bool] = []
    rows = imports.rules.rows

    def watched(text: str, mapping: dict[str, str]) -> list[imports.rules.Row]:
        seen.append(gc.isenabled())
        return rows(text, mapping)

    monkeypatch.setattr(imports.rules, "rows", watched)
    parsed = imports._parse(
        "digest", "email\na@example.com\nb@example.com\n", (("email", "email"),)
    )
    assert seen == [False]
    assert [row.values["email"] for row in parsed.rows] == ["a@example.com", "b@example.com"]
    assert gc.isenabled()
