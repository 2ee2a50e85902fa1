"""The runner's command line, and the database and port it chooses from it."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path

from prismq_demo.errors import DemoError
from prismq_demo.workload import DEFAULT_ORDINARY_TASKS, MAX_ORDINARY_TASKS

POSTGRES_URL_ENV = "PRISMQ_DEMO_POSTGRES_URL"
DEFAULT_DEMO_DIR = Path(__file__).resolve().parent.parent.parent / ".demo"
SQLITE_FILE_NAME = "prismq-demo.db"
DEFAULT_PORT = 8000
HOST = "127.0.0.1"
#: What the core accepts for PostgreSQL (plain ones get psycopg 3).
POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")


@dataclasses.dataclass(frozen=True)
class Target:
    """The database the demo runs on."""

    url: str
    shown_url: str  # with any password masked
    is_postgres: bool
    sqlite_path: Path | None


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
    return value


def _task_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_ORDINARY_TASKS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_ORDINARY_TASKS}, not {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, not {text!r}")
    return int(text)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The runner's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python demo/run.py",
        description="Run the PrismQ REST API and one worker as separate processes on a fresh"
        " SQLite database (or PostgreSQL), enqueue a sample workload over HTTP, show its"
        " progress and a summary, then keep both running until Ctrl-C.",
        epilog="Through nox: python3 -m nox -s demo -- [options]. The demo ignores"
        " PRISMQ_DATABASE_URL and every other PRISMQ_* setting of the shell: it passes its own"
        " settings on the command lines of the API and the worker.",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get(POSTGRES_URL_ENV) or None,
        help="run on this PostgreSQL database (postgresql://user@host/db); PrismQ creates its"
        f" tables there and the demo's tasks stay in it (default: ${POSTGRES_URL_ENV}, else a"
        " fresh SQLite file in the demo folder)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=None,
        help=f"port of the API on {HOST} (default: {DEFAULT_PORT} if free, else any free"
        " port; 0: any free port)",
    )
    parser.add_argument(
        "--demo-dir",
        type=Path,
        default=DEFAULT_DEMO_DIR,
        metavar="PATH",
        help="folder of the SQLite database and the log files (default: .demo/ at the"
        " repository's root)",
    )
    parser.add_argument(
        "--tasks",
        type=_task_count,
        default=DEFAULT_ORDINARY_TASKS,
        metavar="N",
        help=f"ordinary tasks to enqueue in the batch (default: {DEFAULT_ORDINARY_TASKS})",
    )
    parser.add_argument(
        "--seed", type=_seed, default=None, help="seed of the workload's random durations"
    )
    parser.add_argument(
        "--exit-when-done",
        action="store_true",
        help="stop the API and the worker once the summary is printed, instead of serving"
        " until Ctrl-C",
    )
    parser.add_argument(
        "--ready-timeout",
        type=_positive_number,
        default=60.0,
        metavar="SECONDS",
        help="how long the API and the worker may take to start (default: 60)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_number,
        default=180.0,
        metavar="SECONDS",
        help="how long the workload may take to finish (default: 180)",
    )
    return parser


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; argparse itself reports bad flags (exit status 2)."""
    args = build_parser().parse_args(argv)
    if args.postgres is not None and not args.postgres.strip():
        build_parser().error(f"--postgres (or ${POSTGRES_URL_ENV}) must not be empty")
    return args


def masked(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def choose_target(postgres_url: str | None, demo_dir: Path) -> Target:
    """PostgreSQL at ``postgres_url`` if given, else the demo folder's SQLite file."""
    if postgres_url is not None:
        url = postgres_url.strip()
        if not url.startswith(POSTGRES_SCHEMES):
            raise DemoError(
                f"--postgres (or ${POSTGRES_URL_ENV}) expects a PostgreSQL URL such as"
                f" postgresql://postgres@127.0.0.1:5432/postgres, not {masked(url)!r}."
            )
        return Target(url=url, shown_url=masked(url), is_postgres=True, sqlite_path=None)
    path = demo_dir.resolve() / SQLITE_FILE_NAME
    return Target(url=f"sqlite:///{path}", shown_url=str(path), is_postgres=False, sqlite_path=path)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by an earlier run is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _any_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def choose_port(requested: int | None) -> int:
    """The port asked for (it must be free), else 8000 when free, else any free port."""
    if requested is None:
        return DEFAULT_PORT if _port_is_free(DEFAULT_PORT) else _any_free_port()
    if requested == 0:
        return _any_free_port()
    if not _port_is_free(requested):
        raise DemoError(
            f"Port {requested} on {HOST} is in use (or not allowed): choose another with --port,"
            " or leave --port out to let the demo pick a free one."
        )
    return requested
