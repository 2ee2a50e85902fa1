"""``prismq-worker``: run one worker process until SIGTERM or SIGINT.

Settings come from flags, else ``PRISMQ_WORKER_*`` variables, else ``--config FILE``, else
the defaults. Handlers come from ``--handlers module:registry`` and ``--handlers-file``
(and a ``handlers`` list in the config file). Exit status: 0 after a graceful stop; 2 for
bad input (a flag, a setting, a handler that cannot be imported, a database not migrated);
1 when the database cannot be reached at start-up (a service manager restarts it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from prismq.queue import (
    DatabaseError,
    DatabaseUnavailableError,
    PrismQError,
    QueueDatabase,
    SchedulingStrategy,
    SchemaNotMigratedError,
)
from prismq.queue import __version__ as core_version
from prismq.worker.__about__ import __version__
from prismq.worker.config import CODE_SOURCE, WorkerConfig
from prismq.worker.engine import WorkerEngine
from prismq.worker.errors import HandlerLoadError, WorkerConfigError
from prismq.worker.handler_loader import read_document
from prismq.worker.registry import TaskHandlerRegistry, load_registry, merge_registries
from prismq.worker.signals import PendingStop

PROG = "prismq-worker"
EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2
LOG_LEVELS = ("debug", "info", "warning", "error")


class _UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage and exits; one line naming the problem is clearer.
        raise _UsageError(message)


def _comma_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``prismq-worker``."""
    parser = _Parser(
        prog=PROG,
        description="Run a PrismQ worker: claim tasks from the database and run their handlers."
        " SIGTERM/SIGINT stop it gracefully; a second signal exits at once.",
        epilog="Each setting may also come from a PRISMQ_WORKER_* variable or --config FILE;"
        " flags win over variables, variables over the file.",
    )
    add = parser.add_argument
    add("--worker-id", help="unique id of this worker (default: <hostname>-<pid>)")
    add("--queues", type=_comma_list, help="comma-separated queues to serve (default: all)")
    add(
        "--strategy",
        choices=[strategy.value for strategy in SchedulingStrategy],
        help="order in which tasks are claimed (default: priority)",
    )
    add("--concurrency", type=int, help="handlers run at the same time (default: 4)")
    add("--lease-seconds", type=float, help="lease of a claimed task (default: 30)")
    add("--poll-interval", type=float, help="longest idle wait between claims (default: 5)")
    add("--heartbeat-interval", type=float, help="lease renewal period (default: lease/3)")
    add("--reclaim-interval", type=float, help="expired-lease reclaim period (default: heartbeat)")
    add("--shutdown-grace", type=float, help="seconds handlers may finish after SIGTERM (30)")
    add("--capabilities", type=_json_object, help="JSON object, e.g. '{\"gpu\": true}'")
    add(
        "--handlers",
        action="append",
        default=[],
        metavar="MODULE:REGISTRY",
        help="a TaskHandlerRegistry to serve (repeatable); the current directory is importable",
    )
    add(
        "--handlers-file",
        action="append",
        default=[],
        metavar="PATH",
        help="a TOML/JSON/YAML file listing handlers (repeatable)",
    )
    add("--database-url", help="database URL (default: $PRISMQ_DATABASE_URL or a local file)")
    add("--config", metavar="PATH", help="worker settings file (TOML, JSON or YAML)")
    add("--log-level", choices=LOG_LEVELS, default="info", help="default: info")
    add(
        "--version",
        action="version",
        version=f"{PROG} {__version__} (prismq-queue-core {core_version})",
    )
    return parser


def configure_logging(level: str) -> None:
    """One ``key=value`` line per event on stderr, timestamps in UTC."""
    formatter = logging.Formatter(
        "ts=%(asctime)s.%(msecs)03dZ level=%(levelname)s logger=%(name)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic announces its dialect at INFO each time the schema is checked at start-up.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


#: WorkerConfig field → the flag that sets it.
FLAG_OF_FIELD = {
    "worker_id": "--worker-id",
    "queues": "--queues",
    "scheduling_strategy": "--strategy",
    "concurrency": "--concurrency",
    "lease_seconds": "--lease-seconds",
    "poll_interval_seconds": "--poll-interval",
    "heartbeat_interval_seconds": "--heartbeat-interval",
    "reclaim_interval_seconds": "--reclaim-interval",
    "shutdown_grace_seconds": "--shutdown-grace",
    "capabilities": "--capabilities",
    "database_url": "--database-url",
}


def _load_config(args: argparse.Namespace) -> WorkerConfig:
    """Flags over ``PRISMQ_WORKER_*`` over ``--config`` over defaults; errors name the flag."""
    flags = {field: getattr(args, _dest(flag)) for field, flag in FLAG_OF_FIELD.items()}
    try:
        return WorkerConfig.load(args.config, **flags)
    except WorkerConfigError as error:
        if error.source != CODE_SOURCE or error.field not in FLAG_OF_FIELD:
            raise
        raise WorkerConfigError(error.field, FLAG_OF_FIELD[error.field], error.reason) from None


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def load_handlers(
    specs: Sequence[str], files: Sequence[str], config_path: str | None
) -> TaskHandlerRegistry:
    """Every handler named on the command line (and in the config file), in one registry."""
    # Like `python -m`, let `--handlers myapp.tasks:registry` find the project's modules.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    registries = [load_registry(spec) for spec in specs]
    handler_files = list(files)
    if config_path is not None and _lists_handlers(config_path):
        handler_files.append(config_path)
    for path in handler_files:
        registry = TaskHandlerRegistry()
        registry.load_file(path)
        registries.append(registry)
    merged = merge_registries(registries)
    if not len(merged):
        raise _UsageError(
            "no task handlers: pass --handlers MODULE:REGISTRY or --handlers-file PATH"
        )
    return merged


def _lists_handlers(config_path: str) -> bool:
    try:
        document = read_document(config_path)
    except HandlerLoadError:
        return False  # WorkerConfig.load has reported the file's problem already
    return isinstance(document, dict) and "handlers" in document


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _startup_failure(error: PrismQError) -> tuple[str, int]:
    """The message and exit status for an error that kept the worker from running."""
    if isinstance(error, SchemaNotMigratedError):
        return str(error), EXIT_USAGE  # the message names the command to run
    if isinstance(error, DatabaseUnavailableError):
        return f"{error} (is the database running and the URL right?)", EXIT_UNAVAILABLE
    if isinstance(error, DatabaseError):
        return str(error), EXIT_UNAVAILABLE
    return str(error), EXIT_USAGE  # a worker that cannot start as configured


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker; returns the process exit status."""
    pending_stop = PendingStop()
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as error:
        return _fail(str(error), EXIT_USAGE)
    except SystemExit as exit_:  # --help and --version
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK
    configure_logging(args.log_level)
    try:
        config = _load_config(args)
        registry = load_handlers(args.handlers, args.handlers_file, args.config)
        db = QueueDatabase(config.database_url)
    except (_UsageError, PrismQError) as error:
        return _fail(str(error), EXIT_USAGE)
    try:
        engine = WorkerEngine(db, config, registry, owns_database=True)
        pending_stop.forward_to(engine.request_stop_from_signal)
        engine.run_loop()
    except PrismQError as error:
        return _fail(*_startup_failure(error))
    finally:
        db.close()
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
