"""The ``prismq`` command: ``prismq db upgrade | downgrade | current | check``.

Runs ``main()`` in-process for the exit codes and messages, and ``python -m prismq.queue``
as a real subprocess where a traceback could only show up there. ``PRISMQ_TEST_BACKEND``
(``sqlite`` or ``postgresql``) selects the database each test starts from, fresh and EMPTY.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import sqlalchemy as sa

from prismq.queue import cli, config, migrate
from prismq.queue.config import DATABASE_URL_ENV
from prismq.queue.database import QueueDatabase

BACKEND = os.environ.get("PRISMQ_TEST_BACKEND", "sqlite").strip().lower()
# Nothing listens on port 1; the password must never be printed.
UNREACHABLE_URL = "postgresql://prismq:s3cret-password@127.0.0.1:1/prismq"
SUBPROCESS_TIMEOUT = 120

if BACKEND not in {"sqlite", "postgresql"}:
    raise pytest.UsageError(f"PRISMQ_TEST_BACKEND must be sqlite or postgresql, not {BACKEND!r}")


@pytest.fixture(autouse=True)
def _no_database_url_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own PRISMQ_DATABASE_URL must not leak into the tests.
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)


def display_url(url: str) -> str:
    with QueueDatabase(url) as db:
        return db.display_url


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``prismq ARGV...`` in-process: exit code, stdout, stderr."""
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_module(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m prismq.queue ARGV...`` as a real process."""
    environment = {key: value for key, value in os.environ.items() if key != DATABASE_URL_ENV}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "prismq.queue", *argv],
        capture_output=True,
        text=True,
        env=environment,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def assert_clean_error(code: int, err: str) -> None:
    assert code == 1, err
    assert err.startswith("prismq: error: "), err
    assert "Traceback" not in err


# -- the db commands ---------------------------------------------------------------------


def test_upgrade_current_check_downgrade_round_trip(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    head = migrate.head_revision()
    shown = display_url(empty_url)

    assert run_cli(capsys, "db", "current", "--database-url", empty_url) == (
        0,
        "none (no PrismQ schema)\n",
        "",
    )

    code, out, err = run_cli(capsys, "db", "upgrade", "--database-url", empty_url)
    assert (code, err) == (0, "")
    assert out == f"upgraded {shown} from none (no PrismQ schema) to {head}\n"

    code, out, _ = run_cli(capsys, "db", "upgrade", "--database-url", empty_url)
    assert (code, out) == (0, f"{shown} is already at revision {head}\n")

    assert run_cli(capsys, "db", "current", "--database-url", empty_url) == (
        0,
        f"{head} (head)\n",
        "",
    )
    assert run_cli(capsys, "db", "check", "--database-url", empty_url) == (
        0,
        f"up to date at {head}\n",
        "",
    )

    code, out, err = run_cli(capsys, "db", "downgrade", "base", "--database-url", empty_url)
    assert (code, err) == (0, "")
    assert out == f"downgraded {shown} from {head} to none (no PrismQ schema)\n"
    with QueueDatabase(empty_url) as db:
        assert migrate.current_revision(db) is None


def test_upgrade_to_an_explicit_revision(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    head = migrate.head_revision()

    code, _, err = run_cli(capsys, "db", "upgrade", "--revision", head, "--database-url", empty_url)

    assert code == 0, err
    with QueueDatabase(empty_url) as db:
        assert migrate.current_revision(db) == head


def test_check_on_an_empty_database_fails_with_the_command_to_run(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "db", "check", "--database-url", empty_url)

    assert_clean_error(code, err)
    assert out == ""
    assert "no PrismQ schema" in err
    assert f"run: prismq db upgrade --database-url '{display_url(empty_url)}'" in err


def test_check_on_a_database_ahead_of_the_code_says_so(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with QueueDatabase(empty_url) as db:
        migrate.upgrade(db)
        with db.write() as conn:
            conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999'"))

    code, _, err = run_cli(capsys, "db", "check", "--database-url", empty_url)
    assert_clean_error(code, err)
    assert "'9999'" in err
    assert "the code is older than the database" in err

    code, out, _ = run_cli(capsys, "db", "current", "--database-url", empty_url)
    assert code == 0
    assert out.startswith("9999 (this code expects")

    code, _, err = run_cli(capsys, "db", "upgrade", "--database-url", empty_url)
    assert_clean_error(code, err)
    assert "the code is older than the database" in err


def test_downgrade_to_an_unknown_revision_is_an_error(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "db", "upgrade", "--database-url", empty_url)[0] == 0

    code, _, err = run_cli(capsys, "db", "downgrade", "nope", "--database-url", empty_url)

    assert_clean_error(code, err)
    assert "'nope'" in err
    with QueueDatabase(empty_url) as db:
        assert migrate.current_revision(db) == migrate.head_revision()


# -- where the database URL comes from ---------------------------------------------------


def test_database_url_from_the_environment(
    empty_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, empty_url)

    code, _, err = run_cli(capsys, "db", "upgrade")

    assert code == 0, err
    assert err == f"prismq: using {display_url(empty_url)} (from ${DATABASE_URL_ENV})\n"
    with QueueDatabase(empty_url) as db:
        assert migrate.current_revision(db) == migrate.head_revision()


def test_explicit_database_url_beats_the_environment(
    empty_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, f"sqlite:///{tmp_path / 'not-this-one.db'}")

    code, _, err = run_cli(capsys, "db", "upgrade", "--database-url", empty_url)

    assert (code, err) == (0, "")
    assert not (tmp_path / "not-this-one.db").exists()


def test_default_database_is_the_per_user_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not the real per-user file: this test must not touch the developer's data.
    user_file = tmp_path / "user-data" / "prismq.db"
    monkeypatch.setattr(config, "default_sqlite_path", lambda: user_file)

    code, out, err = run_cli(capsys, "db", "upgrade")

    assert code == 0, err
    assert err == f"prismq: using sqlite:///{user_file} (from the per-user default)\n"
    assert out.endswith(f"to {migrate.head_revision()}\n")
    assert user_file.is_file()


# -- errors the user can act on, never a traceback ---------------------------------------


@pytest.mark.parametrize("command", [["upgrade"], ["downgrade", "base"], ["current"], ["check"]])
def test_unreachable_database_is_a_clean_error(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "db", *command, "--database-url", UNREACHABLE_URL)

    assert_clean_error(code, err)
    assert out == ""
    assert "127.0.0.1:1" in err
    assert "s3cret-password" not in err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "not a valid database URL"),
        ("postgresql://host:notaport/db", "not a valid database URL"),
        ("mysql://user@localhost/db", "unsupported database 'mysql'"),
        ("sqlite://", "SQLite needs a file"),
    ],
)
def test_bad_database_url_is_a_clean_error(
    url: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "db", "check", "--database-url", url)

    assert_clean_error(code, err)
    assert expected in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["db"],
        ["db", "downgrade"],
        ["db", "no-such-command"],
        ["no-such-group"],
        ["db", "upgrade", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, *argv)

    assert code == 2
    assert out == ""
    assert "usage: prismq" in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "db", "upgrade", "--help")
    assert code == 0
    assert "--database-url" in out
    assert DATABASE_URL_ENV in out

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert "prismq-queue-core" in out


# -- the real command --------------------------------------------------------------------


def test_python_m_prismq_queue_runs_the_cli(empty_url: str) -> None:
    upgraded = run_module("db", "upgrade", "--database-url", empty_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.endswith(f"to {migrate.head_revision()}\n")

    checked = run_module("db", "check", env={DATABASE_URL_ENV: empty_url})
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"up to date at {migrate.head_revision()}\n"
    assert f"(from ${DATABASE_URL_ENV})" in checked.stderr


def test_python_m_prismq_queue_unreachable_database_has_no_traceback() -> None:
    result = run_module("db", "upgrade", "--database-url", UNREACHABLE_URL)

    assert_clean_error(result.returncode, result.stderr)
    assert "s3cret-password" not in result.stderr


# -- adding commands from another module -------------------------------------------------


def test_command_modules_can_add_groups_and_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def hello(args: object) -> int:
        print(f"hello {getattr(args, 'name', '?')}")
        return 0

    def add_name(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")

    def register(registry: cli.CommandRegistry) -> None:
        registry.add_group("demo", help="a demo group")
        registry.add_command(
            "demo",
            "hello",
            help="say hello",
            handler=hello,
            arguments=add_name,
        )
        # Another module may add to an existing group, e.g. `prismq db backup`.
        registry.add_group("db", help="ignored: the group exists")
        registry.add_command("db", "hello", help="say hello from db", handler=hello)

    module = types.ModuleType("prismq_test_cli_extension")
    module.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(cli, "COMMAND_MODULES", (module.__name__,))

    assert run_cli(capsys, "demo", "hello", "world") == (0, "hello world\n", "")
    assert run_cli(capsys, "db", "hello") == (0, "hello ?\n", "")
    # The built-in commands are still there.
    assert run_cli(capsys, "db", "check", "--help")[0] == 0


def test_registry_rejects_unknown_groups_and_duplicates() -> None:
    registry = cli.CommandRegistry()
    with pytest.raises(ValueError, match="unknown command group"):
        registry.add_command("db", "upgrade", help="", handler=lambda _: 0)
    cli.register_db_commands(registry)
    with pytest.raises(ValueError, match="registered twice"):
        registry.add_command("db", "upgrade", help="", handler=lambda _: 0)
