"""The ``prismq-api`` command: ``serve`` and ``tokens create | list | revoke``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from prismq.api import __version__, cli
from prismq.api.auth import AuthenticationError, Scope, authenticate, hash_token
from prismq.api.tokens import list_tokens
from prismq.queue import QueueDatabase
from prismq.queue.config import DATABASE_URL_ENV

STARTUP_DEADLINE_SECONDS = 60.0
SHUTDOWN_DEADLINE_SECONDS = 30.0


def run(capsys: pytest.CaptureFixture[str], command: str, *args: str) -> tuple[int, str, str]:
    """``prismq-api COMMAND ARGS`` in-process (COMMAND split on spaces): (code, stdout, stderr)."""
    code = cli.main(command.split() + list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _no_ambient_database(monkeypatch: pytest.MonkeyPatch) -> None:
    # `serve` exports the URL for uvicorn's workers; keep each test's environment its own.
    # Empty counts as unset, and setenv (unlike delenv of an absent name) is undone after.
    monkeypatch.setenv(DATABASE_URL_ENV, "")


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Replaces ``uvicorn.run`` by a recorder, for the tests that must not serve."""
    import uvicorn  # noqa: PLC0415

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


# -- general -------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.startswith(f"prismq-api {__version__} (prismq-queue-core ")


def test_no_command_shows_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "")
    assert code == 2
    assert "serve" in err
    assert "tokens" in err


def test_tokens_alone_shows_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tokens")
    assert code == 2
    assert "create" in err
    assert "revoke" in err


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prismq.api", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("prismq-api ")


# -- tokens --------------------------------------------------------------------------------


def test_tokens_round_trip(capsys: pytest.CaptureFixture[str], database_url: str) -> None:
    code, out, err = run(
        capsys,
        "tokens create ci --scope tasks:write --scope tasks:read --database-url",
        database_url,
    )
    assert code == 0, err
    (token,) = out.splitlines()
    assert token.startswith("pq_")
    assert "shown only this once" in err
    assert token not in err

    with QueueDatabase(database_url) as db:
        principal = authenticate(db, f"Bearer {token}")
        assert principal.name == "ci"
        assert principal.scopes == frozenset({Scope.TASKS_READ, Scope.TASKS_WRITE})

    code, out, err = run(capsys, "tokens list --database-url", database_url)
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "SCOPES"]
    assert row.split()[:3] == [str(principal.token_id), "ci", "tasks:read,tasks:write"]
    assert row.rstrip().endswith("-")
    assert token not in out
    assert hash_token(token) not in out

    code, out, err = run(capsys, "tokens revoke ci --database-url", database_url)
    assert code == 0, err
    assert out == f"revoked token {principal.token_id} 'ci' (tasks:read,tasks:write)\n"

    with QueueDatabase(database_url) as db, pytest.raises(AuthenticationError, match="revoked"):
        authenticate(db, f"Bearer {token}")


def test_tokens_list_json(capsys: pytest.CaptureFixture[str], database_url: str) -> None:
    for name, scope in [("reader", "tasks:read"), ("ops", "admin")]:
        assert (
            run(capsys, "tokens create", name, "--scope", scope, "--database-url", database_url)[0]
            == 0
        )
    assert run(capsys, "tokens revoke reader --database-url", database_url)[0] == 0

    code, out, _ = run(capsys, "tokens list --json --database-url", database_url)
    assert code == 0
    listed = json.loads(out)
    assert [(t["name"], t["scopes"], t["revoked_at_utc"] is None) for t in listed] == [
        ("reader", ["tasks:read"], False),
        ("ops", ["admin"], True),
    ]
    assert set(listed[0]) == {"id", "name", "scopes", "created_at_utc", "revoked_at_utc"}

    code, out, _ = run(
        capsys, "tokens", "list", "--json", "--active", "--database-url", database_url
    )
    assert [t["name"] for t in json.loads(out)] == ["ops"]


def test_tokens_list_empty(capsys: pytest.CaptureFixture[str], database_url: str) -> None:
    assert run(capsys, "tokens list --database-url", database_url) == (0, "no tokens\n", "")


def test_the_database_url_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, database_url)
    code, _, err = run(capsys, "tokens create env --scope admin")
    assert code == 0
    assert err.startswith(f"prismq-api: using {make_url(database_url).render_as_string()}")
    assert f"(from ${DATABASE_URL_ENV})" in err.splitlines()[0]
    with QueueDatabase(database_url) as db:
        assert [info.name for info in list_tokens(db)] == ["env"]


def test_an_unknown_scope_is_named(capsys: pytest.CaptureFixture[str], database_url: str) -> None:
    code, out, err = run(
        capsys,
        "tokens create x --scope tasks:read --scope tasks:delete --database-url",
        database_url,
    )
    assert code == 2
    assert out == ""
    assert err.startswith("prismq-api: error: scopes: unknown scope 'tasks:delete'")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "name: must not be empty"), ("123", "name: '123' is a number")],
)
def test_a_bad_name_is_named(
    capsys: pytest.CaptureFixture[str], database_url: str, name: str, message: str
) -> None:
    code, _, err = run(
        capsys, "tokens", "create", name, "--scope", "admin", "--database-url", database_url
    )
    assert code == 2
    assert err.startswith(f"prismq-api: error: {message}")


def test_a_scope_is_required(capsys: pytest.CaptureFixture[str], database_url: str) -> None:
    code, _, err = run(capsys, "tokens create x --database-url", database_url)
    assert code == 2
    assert "prismq-api tokens create: error: the following arguments are required: --scope" in err


@pytest.mark.parametrize("key", ["ghost", "77"])
def test_revoking_an_unknown_token(
    capsys: pytest.CaptureFixture[str], database_url: str, key: str
) -> None:
    code, _, err = run(capsys, "tokens revoke", key, "--database-url", database_url)
    assert code == 2
    assert err.startswith("prismq-api: error: no API token ")
    assert key in err


@pytest.mark.parametrize(
    "command",
    [
        "tokens create x --scope admin",
        "tokens list",
        "tokens revoke x",
    ],
)
def test_tokens_refuse_an_unmigrated_database(
    capsys: pytest.CaptureFixture[str], empty_url: str, command: str
) -> None:
    code, out, err = run(capsys, command, "--database-url", empty_url)
    assert code == 2
    assert out == ""
    assert err.startswith("prismq-api: error: ")
    assert "prismq db upgrade --database-url" in err


def test_an_unmigrated_sqlite_path_is_not_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "typo.db"
    code, _, err = run(capsys, "tokens list --database-url", f"sqlite:///{missing}")
    assert code == 2
    assert "prismq db upgrade" in err
    assert not missing.exists()


@pytest.mark.parametrize("command", ["tokens list", "tokens create x --scope admin", "serve"])
def test_an_unreachable_database_is_exit_1(
    capsys: pytest.CaptureFixture[str], uvicorn_calls: list[Any], command: str
) -> None:
    with socket.socket() as closed:  # a port on which nothing listens
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://prismq:secret@127.0.0.1:{port}/prismq"
    code, out, err = run(capsys, command, "--database-url", url)
    assert code == 1
    assert uvicorn_calls == []
    assert out == ""
    assert err.startswith("prismq-api: error: cannot connect to postgresql+psycopg://prismq:***@")
    assert "secret" not in err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "--database-url: unsupported database 'mysql'"),
        ("postgresql://u@h:notaport/db", "--database-url: not a valid database URL"),
        ("", "--database-url: must not be empty"),
    ],
)
def test_a_bad_database_url_is_bad_input(
    capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    code, _, err = run(capsys, "tokens list --database-url", url)
    assert code == 2
    assert err.startswith(f"prismq-api: error: {message}"), err


# -- serve ---------------------------------------------------------------------------------


def test_serve_refuses_an_unmigrated_database(
    capsys: pytest.CaptureFixture[str], empty_url: str, uvicorn_calls: list[Any]
) -> None:
    code, _, err = run(capsys, "serve --database-url", empty_url)
    assert code == 2
    assert "has no PrismQ schema" in err
    assert "run: prismq db upgrade --database-url '" in err
    assert uvicorn_calls == []


def test_serve_names_a_bad_setting_instead_of_a_traceback(
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    uvicorn_calls: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRISMQ_API_MAX_BODY_BYTES", "abc")
    code, _, err = run(capsys, "serve --database-url", database_url)
    assert code == 2
    assert "PRISMQ_API_MAX_BODY_BYTES" in err
    assert "Traceback" not in err
    assert uvicorn_calls == []


def test_serve_hands_the_options_to_uvicorn(
    capsys: pytest.CaptureFixture[str], database_url: str, uvicorn_calls: list[Any]
) -> None:
    code, _, err = run(
        capsys,
        "serve --database-url",
        database_url,
        "--host",
        "0.0.0.0",
        "--port",
        "9001",
        "--workers",
        "3",
        "--log-level",
        "warning",
        "--root-path",
        "/queue",
        "--no-proxy-headers",
        "--forwarded-allow-ips",
        "10.0.0.1",
        "--shutdown-timeout",
        "25",
    )
    assert code == 0, err
    assert uvicorn_calls == [
        (
            ("prismq.api.app:create_app_from_env",),
            {
                "factory": True,
                "host": "0.0.0.0",
                "port": 9001,
                "workers": 3,
                "log_level": "warning",
                "root_path": "/queue",
                "proxy_headers": False,
                "forwarded_allow_ips": "10.0.0.1",
                "timeout_graceful_shutdown": 25,
            },
        )
    ]
    # uvicorn's worker processes find the database through the environment.
    assert os.environ[DATABASE_URL_ENV] == database_url


def test_serve_defaults(
    capsys: pytest.CaptureFixture[str], database_url: str, uvicorn_calls: list[Any]
) -> None:
    assert run(capsys, "serve --database-url", database_url)[0] == 0
    ((_, options),) = uvicorn_calls
    assert options["host"] == "127.0.0.1"
    assert options["port"] == 8000
    assert options["workers"] == 1
    assert options["log_level"] == "info"
    assert options["root_path"] == ""
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "argument --port: must be a port number from 0 to 65535"),
        (["--port", "http"], "argument --port: must be a port number"),
        (["--workers", "0"], "argument --workers: must be a whole number >= 1"),
        (["--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    ],
)
def test_serve_rejects_bad_options(
    capsys: pytest.CaptureFixture[str], uvicorn_calls: list[Any], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, "serve", *argv)
    assert code == 2
    assert f"prismq-api serve: error: {message}" in err
    assert uvicorn_calls == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    """A ``prismq-api serve`` subprocess."""

    process: subprocess.Popen[str]
    base_url: str
    log_path: Path


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """``prismq-api serve`` on a free port of this machine, on this test's database."""
    port = _free_port()
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
    command = [*f"serve --port {port} --log-level info --database-url".split(), database_url]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prismq.api", *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        yield Served(process, f"http://127.0.0.1:{port}", log_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=SHUTDOWN_DEADLINE_SECONDS)


def _wait_until_healthy(process: subprocess.Popen[str], base_url: str) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"prismq-api serve exited with {process.returncode}"
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)  # not listening yet: poll again until the deadline
    pytest.fail(f"prismq-api serve did not answer within {STARTUP_DEADLINE_SECONDS} s")


@pytest.mark.slow
def test_serve_serves_and_stops_on_sigterm(
    served: Served, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _wait_until_healthy(served.process, served.base_url).status_code == 200

    code, out, _ = run(
        capsys, "tokens create served --scope tasks:read --database-url", database_url
    )
    assert code == 0
    stats_url = f"{served.base_url}/api/queue/stats"
    authorized = {"Authorization": f"Bearer {out.strip()}"}
    assert httpx.get(stats_url, headers=authorized, timeout=10).status_code == 200
    assert httpx.get(stats_url, timeout=10).status_code == 401

    served.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then raises the signal again; the command turns that
    # into exit status 0, which is what service managers expect of a requested stop.
    assert served.process.wait(timeout=SHUTDOWN_DEADLINE_SECONDS) == 0
    log = served.log_path.read_text()
    assert "Shutting down" in log
    assert "Finished server process" in log
    assert out.strip() not in log  # tokens are never logged
