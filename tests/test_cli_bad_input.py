"""Bad input through the CLI is printed naming the field, with a non-zero exit (issue 16,
break 5): never a traceback from the driver or the csv module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from userdesk.cli import app
from userdesk.config import get_settings
from userdesk.imports.rules import MAX_CELL

runner = CliRunner()


@pytest.fixture
def migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("USERDESK_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    made = ["create-admin", "--email", "ops@example.com", "--password", "long enough pw"]
    assert runner.invoke(app, made).exit_code == 0
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "email", ["a@b.\x00c", "x@acme.test,X", "<script>@x.test", "x@-acme.test", "x@acme..test"]
)
def test_create_admin_refuses_an_invalid_email_naming_it(migrated: None, email: str) -> None:
    """The operator's command checks addresses as the API does."""
    result = runner.invoke(app, ["create-admin", "--email", email, "--password", "long enough pw"])
    assert result.exit_code in (1, 2), result.output  # 2: refused before the command ran
    assert isinstance(result.exception, SystemExit)
    assert "email" in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (
            [
                "create-admin",
                "--email",
                "ops@example.com",
                "--password",
                "pw pw pw pw",
                "--first-name",
                "\udcff",
            ],
            "--first-name",
        ),
        (
            ["create-admin", "--email=ops\udcc3@example.com", "--password", "long enough pw"],
            "--email",
        ),
        (["export", "--q", "ann\x00"], "--q"),
        (["api-key", "create", "--name", "k\x00", "--role", "Agent"], "--name"),
    ],
)
def test_an_argument_that_is_not_text_is_refused_naming_its_option(
    migrated: None, args: list[str], option: str
) -> None:
    """Bytes of argv that are not UTF-8 (read as lone surrogates) never reach the database."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "surrogate" in result.output or "NUL" in result.output


def test_import_refuses_a_file_with_a_nul_naming_the_row_and_column(
    migrated: None, tmp_path: Path
) -> None:
    """The file is refused whole, before anything is kept."""
    path = tmp_path / "people.csv"
    path.write_bytes(b"email,first_name\nok@example.com,Ann\nnul@example.com,B\x00\n")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "Row 3, column 2 ('first_name')" in result.output
    assert "NUL" in result.output


def test_import_refuses_a_cell_over_128_kib_naming_the_row_and_column(
    migrated: None, tmp_path: Path
) -> None:
    """A cell beyond the csv module's own limit is named, not a traceback."""
    path = tmp_path / "people.csv"
    path.write_bytes(b"notes,email\n" + b"x" * (128 * 1024 + 1) + b",big@example.com\n")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "Row 2, column 1 ('notes')" in result.output
    assert f"{MAX_CELL:,}" in result.output
