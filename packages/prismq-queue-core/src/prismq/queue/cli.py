"""The ``prismq`` command: ``prismq db upgrade | downgrade | current | check``.

Every subcommand is registered in a :class:`CommandRegistry`, grouped under a first word
(``db``, ...). To add commands from another module, give it a function
``register(cli: CommandRegistry) -> None`` and list the module in :data:`COMMAND_MODULES`::

    # prismq/queue/cli_maintenance.py
    from prismq.queue.cli import CommandRegistry, add_database_url_argument, open_database

    def register(cli: CommandRegistry) -> None:
        cli.add_group("maintenance", help="keep the database small and healthy")
        cli.add_command(
            "maintenance", "purge", help="delete old finished tasks",
            arguments=add_database_url_argument, handler=_purge,
        )

A handler takes the parsed arguments and returns the exit code. It raises
:class:`~prismq.queue.errors.PrismQError` for anything the user can fix: :func:`main`
prints it as ``prismq: error: <message>`` and exits 1, never with a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from prismq.queue import migrate
from prismq.queue.__about__ import __version__
from prismq.queue.config import DATABASE_URL_ENV, default_sqlite_path, resolve_database_url
from prismq.queue.database import QueueDatabase
from prismq.queue.errors import DatabaseUnavailableError, PrismQError

__all__ = [
    "COMMAND_MODULES",
    "Command",
    "CommandRegistry",
    "add_database_url_argument",
    "build_parser",
    "main",
    "open_database",
]

PROG = "prismq"

#: Modules that add commands: each has ``register(cli: CommandRegistry) -> None``. They are
#: imported only when the parser is built, so they may import this module.
COMMAND_MODULES: tuple[str, ...] = ("prismq.queue.cli_maintenance",)

#: Takes the parsed arguments, returns the process exit code.
Handler = Callable[[argparse.Namespace], int]
#: Adds a command's options and positional arguments to its parser.
ArgumentsBuilder = Callable[[argparse.ArgumentParser], None]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # what argparse uses for usage errors
EXIT_INTERRUPTED = 130


@dataclasses.dataclass(frozen=True)
class Command:
    """One ``prismq GROUP NAME`` subcommand."""

    group: str
    name: str
    help: str
    handler: Handler
    arguments: ArgumentsBuilder | None = None


class CommandRegistry:
    """The subcommands of ``prismq``, grouped by their first word."""

    def __init__(self) -> None:
        self._groups: dict[str, str] = {}
        self._commands: dict[str, dict[str, Command]] = {}

    def add_group(self, name: str, *, help: str) -> None:
        """Declare ``prismq NAME``; declaring an existing group again is a no-op."""
        self._groups.setdefault(name, help)
        self._commands.setdefault(name, {})

    def add_command(
        self,
        group: str,
        name: str,
        *,
        help: str,
        handler: Handler,
        arguments: ArgumentsBuilder | None = None,
    ) -> None:
        """Register ``prismq GROUP NAME``; the group must have been declared."""
        if group not in self._groups:
            raise ValueError(f"unknown command group {group!r}: call add_group first")
        if name in self._commands[group]:
            raise ValueError(f"command 'prismq {group} {name}' is registered twice")
        self._commands[group][name] = Command(group, name, help, handler, arguments)

    def build_parser(self) -> argparse.ArgumentParser:
        """The argparse parser of every registered command."""
        parser = argparse.ArgumentParser(
            prog=PROG, description="PrismQ: a SQL-backed task queue (SQLite or PostgreSQL)."
        )
        parser.add_argument(
            "--version", action="version", version=f"%(prog)s (prismq-queue-core {__version__})"
        )
        groups = parser.add_subparsers(title="commands", metavar="GROUP")
        for group_name, group_help in self._groups.items():
            group_parser = groups.add_parser(group_name, help=group_help, description=group_help)
            group_parser.set_defaults(_usage=group_parser)
            commands = group_parser.add_subparsers(title="commands", metavar="COMMAND")
            for command in self._commands[group_name].values():
                command_parser = commands.add_parser(
                    command.name, help=command.help, description=command.help
                )
                if command.arguments is not None:
                    command.arguments(command_parser)
                command_parser.set_defaults(_handler=command.handler)
        parser.set_defaults(_usage=parser)
        return parser


# -- database URL ------------------------------------------------------------------------


def add_database_url_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--database-url`` with PrismQ's defaults (``$PRISMQ_DATABASE_URL``, user file)."""
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=(
            "sqlite:///path/to/prismq.db or postgresql://user@host/dbname"
            f" (default: ${DATABASE_URL_ENV}, else {default_sqlite_path()})"
        ),
    )


def open_database(args: argparse.Namespace) -> QueueDatabase:
    """The database named by ``--database-url``, or the default one, announced on stderr."""
    given: str | None = getattr(args, "database_url", None)
    if given:
        return _open(given)
    from_env = bool(os.environ.get(DATABASE_URL_ENV, "").strip())
    db = _open(resolve_database_url(None))
    source = f"${DATABASE_URL_ENV}" if from_env else "the per-user default"
    # stderr, so that stdout stays the command's answer alone.
    print(f"{PROG}: using {db.display_url} (from {source})", file=sys.stderr)
    return db


def _open(url: str) -> QueueDatabase:
    try:
        return QueueDatabase(url)
    except ValueError as error:
        # SQLAlchemy's URL parser raises a bare ValueError for e.g. a non-numeric port. The
        # URL itself is not echoed: it may hold a password.
        raise DatabaseUnavailableError(f"not a valid database URL: {error}") from error
    except ImportError as error:
        # The PostgreSQL driver is an optional extra of prismq-queue-core.
        raise DatabaseUnavailableError(
            f"the database driver {error.name or ''!s} is not installed:"
            " pip install 'prismq-queue-core[postgresql]'"
        ) from error


# -- prismq db ... -----------------------------------------------------------------------


def _describe(revision: str | None) -> str:
    return "none (no PrismQ schema)" if revision is None else revision


def _migrate(
    args: argparse.Namespace,
    run: Callable[[QueueDatabase, str], None],
    done: str,
) -> int:
    with open_database(args) as db:
        before = migrate.current_revision(db)
        run(db, args.revision)
        after = migrate.current_revision(db)
        if before == after:
            print(f"{db.display_url} is already at revision {_describe(after)}")
        else:
            print(f"{done} {db.display_url} from {_describe(before)} to {_describe(after)}")
    return EXIT_OK


def _db_upgrade(args: argparse.Namespace) -> int:
    return _migrate(args, migrate.upgrade, "upgraded")


def _db_downgrade(args: argparse.Namespace) -> int:
    return _migrate(args, migrate.downgrade, "downgraded")


def _db_current(args: argparse.Namespace) -> int:
    with open_database(args) as db:
        current = migrate.current_revision(db)
    head = migrate.head_revision()
    if current is None:
        print(_describe(current))
    elif current == head:
        print(f"{current} (head)")
    else:
        print(f"{current} (this code expects {head}: run `prismq db check` for details)")
    return EXIT_OK


def _db_check(args: argparse.Namespace) -> int:
    with open_database(args) as db:
        migrate.check(db)
    print(f"up to date at {migrate.head_revision()}")
    return EXIT_OK


def _upgrade_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_url_argument(parser)
    parser.add_argument(
        "--revision", default="head", help="revision to migrate to (default: head, the newest)"
    )


def _downgrade_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_url_argument(parser)
    parser.add_argument(
        "revision",
        metavar="REVISION",
        help="revision to migrate down to, e.g. -1 or base (base drops every PrismQ table)",
    )


def register_db_commands(cli: CommandRegistry) -> None:
    """``prismq db upgrade | downgrade | current | check``."""
    cli.add_group("db", help="create, migrate and inspect the PrismQ database schema")
    cli.add_command(
        "db",
        "upgrade",
        help="migrate the schema to the newest revision (creates it in an empty database)",
        handler=_db_upgrade,
        arguments=_upgrade_arguments,
    )
    cli.add_command(
        "db",
        "downgrade",
        help="migrate the schema down to REVISION (deletes the data of what is undone)",
        handler=_db_downgrade,
        arguments=_downgrade_arguments,
    )
    cli.add_command(
        "db",
        "current",
        help="print the schema revision of the database",
        handler=_db_current,
        arguments=add_database_url_argument,
    )
    cli.add_command(
        "db",
        "check",
        help="exit 0 if the schema is at the revision this code expects, else 1",
        handler=_db_check,
        arguments=add_database_url_argument,
    )


# -- entry point -------------------------------------------------------------------------


def build_registry() -> CommandRegistry:
    """A registry holding the built-in commands and those of :data:`COMMAND_MODULES`."""
    registry = CommandRegistry()
    register_db_commands(registry)
    for module_name in COMMAND_MODULES:
        register: Callable[[CommandRegistry], None] = importlib.import_module(module_name).register
        register(registry)
    return registry


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``prismq`` command, e.g. for documentation generators."""
    return build_registry().build_parser()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prismq`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # argparse exits for --help/--version (0) and usage errors (2); callers of main()
        # get that as a return value like every other outcome.
        if stop.code is None:
            return EXIT_OK
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    handler: Handler | None = getattr(args, "_handler", None)
    if handler is None:
        # `prismq` or `prismq db` alone: show what the user can run next.
        usage: argparse.ArgumentParser = args._usage
        usage.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except PrismQError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
