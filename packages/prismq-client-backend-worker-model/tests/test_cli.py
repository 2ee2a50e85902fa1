"""The ``prismq-worker`` command: help, version, every bad input, and real runs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_support import DEADLINE_SECONDS, wait_for_status

from prismq.queue import QueueDatabase, TaskStatus, enqueue, get_task, list_workers
from prismq.worker import __version__
from prismq.worker.cli import load_handlers, main

HANDLERS_MODULE = """
from prismq.worker import TaskHandlerRegistry

registry = TaskHandlerRegistry()


@registry.handler("square")
def square(payload, ctx):
    return {"square": payload["n"] ** 2, "worker": ctx.worker_id}


not_a_registry = 42
"""

HANDLERS_FILE = """
[[handlers]]
task_type = "square"
module = "cli_handlers"
function = "square"
"""


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # main() configures the root logger for a process of its own; undo it between tests.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    alembic_level = logging.getLogger("alembic").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(alembic_level)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PRISMQ_WORKER_") or name == "PRISMQ_DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def handlers_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "cli_handlers.py").write_text(HANDLERS_MODULE)
    (folder / "handlers.toml").write_text(HANDLERS_FILE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("prismq-worker: error: ")
    return lines[0]


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in (
        "--worker-id",
        "--queues",
        "--strategy",
        "--concurrency",
        "--lease-seconds",
        "--poll-interval",
        "--heartbeat-interval",
        "--shutdown-grace",
        "--capabilities",
        "--handlers",
        "--handlers-file",
        "--database-url",
        "--config",
        "--log-level",
        "--version",
    ):
        assert flag in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip().startswith(f"prismq-worker {__version__}")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--concurrency", "many"], "argument --concurrency: invalid int value: 'many'"),
        (["--lease-seconds", "soon"], "argument --lease-seconds: invalid float value"),
        (["--strategy", "random"], "argument --strategy: invalid choice: 'random'"),
        (["--capabilities", "{gpu"], "argument --capabilities: not valid JSON"),
        (["--capabilities", "[1, 2]"], "argument --capabilities: expected a JSON object"),
        (["--queues", "a,,b"], "argument --queues: expected comma-separated names"),
        (["--log-level", "loud"], "argument --log-level: invalid choice"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert expected in _error_line(capsys)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--concurrency", "0"], "'concurrency' (from --concurrency)"),
        (["--shutdown-grace", "-1"], "'shutdown_grace_seconds' (from --shutdown-grace)"),
        (
            ["--lease-seconds", "1", "--heartbeat-interval", "2"],
            "'heartbeat_interval_seconds' (from --heartbeat-interval)",
        ),
        (["--worker-id", " padded "], "'worker_id' (from --worker-id)"),
        (["--config", "does-not-exist.toml"], "does-not-exist.toml"),
        (["--database-url", "mysql://db/x"], "unsupported database 'mysql'"),
    ],
)
def test_invalid_settings_exit_2_naming_the_setting(
    argv: list[str], expected: str, handlers_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--handlers", "cli_handlers:registry"]) == 2
    assert expected in _error_line(capsys)


def test_an_invalid_environment_variable_is_named(
    handlers_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRISMQ_WORKER_CONCURRENCY", "lots")
    assert main(["--handlers", "cli_handlers:registry"]) == 2
    assert "PRISMQ_WORKER_CONCURRENCY" in _error_line(capsys)


def test_an_invalid_config_file_is_named(
    tmp_path: Path, handlers_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "worker.toml"
    config.write_text("[worker]\nconcurrency = 'x'\n")
    assert main(["--config", str(config), "--handlers", "cli_handlers:registry"]) == 2
    line = _error_line(capsys)
    assert "concurrency" in line
    assert str(config) in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "no task handlers: pass --handlers"),
        (["--handlers", "no_such_module:registry"], "cannot import module 'no_such_module'"),
        (["--handlers", "cli_handlers:missing"], "has no attribute 'missing'"),
        (["--handlers", "cli_handlers:not_a_registry"], "expected a TaskHandlerRegistry"),
        (["--handlers", "cli_handlers"], "expected 'package.module:attribute'"),
        (["--handlers-file", "nowhere.toml"], "nowhere.toml"),
        (
            ["--handlers", "cli_handlers:registry", "--handlers", "cli_handlers:registry"],
            "'square'",
        ),
    ],
)
def test_handler_problems_exit_2(
    argv: list[str], expected: str, handlers_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert expected in _error_line(capsys)


def test_an_unmigrated_database_names_the_command_to_run(
    empty_url: str, handlers_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--handlers", "cli_handlers:registry", "--database-url", empty_url]
    assert main(argv) == 2
    assert "prismq db upgrade --database-url" in _error_line(capsys)


def test_an_unreachable_database_exits_1_without_the_password(
    handlers_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://prismq:s3cret-pw@127.0.0.1:1/prismq"
    assert main(["--handlers", "cli_handlers:registry", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "prismq-worker: error: cannot connect" in err
    assert "s3cret-pw" not in err


def test_handlers_from_a_file_run_until_sigterm(
    database_url: str, handlers_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with QueueDatabase(database_url) as db:
        ids = [enqueue(db, "square", {"n": n}).task_id for n in range(3)]

        def stop_when_done() -> None:
            for task_id in ids:
                wait_for_status(db, task_id, TaskStatus.COMPLETED)
            os.kill(os.getpid(), signal.SIGTERM)

        stopper = threading.Thread(target=stop_when_done, daemon=True)
        stopper.start()
        argv = [
            "--handlers-file",
            str(handlers_dir / "handlers.toml"),
            "--database-url",
            database_url,
            "--worker-id",
            "cli-file",
            "--poll-interval",
            "0.05",
        ]
        assert main(argv) == 0
        stopper.join(DEADLINE_SECONDS)
        results = [get_task(db, task_id).result for task_id in ids]
        [row] = [w for w in list_workers(db) if w.worker_id == "cli-file"]
    assert results == [{"square": n * n, "worker": "cli-file"} for n in range(3)]
    assert row.stopped_at_utc is not None
    err = capsys.readouterr().err
    assert "event=stop_requested signal=SIGTERM" in err
    assert "event=stopped worker_id=cli-file" in err


def test_a_real_worker_process_runs_tasks_and_stops_on_sigterm(
    database_url: str, handlers_dir: Path, tmp_path: Path
) -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PRISMQ_WORKER_") and name != "PRISMQ_DATABASE_URL"
    }
    env["PRISMQ_WORKER_CONCURRENCY"] = "2"  # the environment is read too
    log_path = tmp_path / "worker.log"
    with QueueDatabase(database_url) as db:
        ids = [enqueue(db, "square", {"n": n}).task_id for n in range(4)]
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prismq.worker",
                    "--handlers",
                    "cli_handlers:registry",  # importable from the working directory
                    "--database-url",
                    database_url,
                    "--worker-id",
                    "cli-process",
                    "--poll-interval",
                    "0.1",
                ],
                cwd=handlers_dir,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
            try:
                for task_id in ids:
                    wait_for_status(db, task_id, TaskStatus.COMPLETED, timeout=60)
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(DEADLINE_SECONDS) == 0
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        [row] = [w for w in list_workers(db) if w.worker_id == "cli-process"]
        assert row.stopped_at_utc is not None
        assert row.concurrency == 2
    output = log_path.read_text()
    for event in ("event=started", "event=claimed", "event=done", "event=stopping"):
        assert event in output, output
    assert "event=stopped worker_id=cli-process claimed=4 completed=4" in output


def test_a_config_file_may_list_the_handlers_too(tmp_path: Path, handlers_dir: Path) -> None:
    config = tmp_path / "worker.toml"
    config.write_text("[worker]\nconcurrency = 3\n\n" + HANDLERS_FILE)
    registry = load_handlers([], [], str(config))
    assert registry.get_registered_types() == ["square"]
    assert load_handlers(["cli_handlers:registry"], [], None).get_registered_types() == ["square"]
