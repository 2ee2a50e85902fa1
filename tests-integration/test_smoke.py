"""Smoke tests of the installed ``prismq`` command (prismq-queue-core) on a real database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path


def run_command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, without the caller's PRISMQ_DATABASE_URL."""
    env = {k: v for k, v in os.environ.items() if k != "PRISMQ_DATABASE_URL"}
    return subprocess.run(
        list(args), capture_output=True, text=True, check=False, timeout=timeout, env=env
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def test_help_lists_the_db_commands(prismq_cli: str) -> None:
    result = run_command(prismq_cli, "--help")
    assert result.returncode == 0, _output(result)
    assert "db" in result.stdout


def test_db_help_lists_its_subcommands(prismq_cli: str) -> None:
    result = run_command(prismq_cli, "db", "--help")
    assert result.returncode == 0, _output(result)
    for subcommand in ("upgrade", "current", "check"):
        assert subcommand in result.stdout, _output(result)


def test_upgrade_then_check(prismq_cli: str, database_url: str) -> None:
    upgrade = run_command(prismq_cli, "db", "upgrade", "--database-url", database_url)
    assert upgrade.returncode == 0, _output(upgrade)

    check = run_command(prismq_cli, "db", "check", "--database-url", database_url)
    assert check.returncode == 0, _output(check)

    current = run_command(prismq_cli, "db", "current", "--database-url", database_url)
    assert current.returncode == 0, _output(current)

    again = run_command(prismq_cli, "db", "upgrade", "--database-url", database_url)
    assert again.returncode == 0, f"upgrading twice must be a no-op\n{_output(again)}"
    assert run_command(prismq_cli, "db", "check", "--database-url", database_url).returncode == 0


def test_check_rejects_an_unmigrated_database(prismq_cli: str, database_url: str) -> None:
    if database_url.startswith("sqlite:///"):
        # An existing, valid but empty SQLite database (not a missing file).
        path = Path(database_url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE unrelated (x INTEGER)")
            conn.execute("DROP TABLE unrelated")
        conn.close()
        assert path.stat().st_size > 0
    check = run_command(prismq_cli, "db", "check", "--database-url", database_url)
    assert check.returncode != 0, _output(check)
    assert "prismq db upgrade" in check.stdout + check.stderr, _output(check)
