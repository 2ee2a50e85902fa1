"""The ``prismq-api`` command: ``serve`` the REST API, and manage its ``tokens``.

::

    prismq-api serve --database-url postgresql://user@host/prismq --port 8000
    prismq-api tokens create ci-producer --scope tasks:write
    prismq-api tokens list [--json]
    prismq-api tokens revoke ci-producer

Exit codes: 0 done; 1 the database failed or cannot be reached; 2 bad input, or a database
that is not migrated (the message gives the ``prismq db upgrade`` command to run); 130
interrupted. Errors are one ``prismq-api: error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

import pydantic
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from prismq.api.__about__ import __version__
from prismq.api.auth import Scope
from prismq.api.settings import ENV_PREFIX, ApiSettings
from prismq.api.tokens import ApiTokenInfo, create_token, list_tokens, revoke_token
from prismq.queue import __version__ as core_version
from prismq.queue import migrate
from prismq.queue.config import DATABASE_URL_ENV, default_sqlite_path, resolve_database_url
from prismq.queue.database import QueueDatabase
from prismq.queue.errors import DatabaseUnavailableError, PrismQError, SchemaNotMigratedError

__all__ = ["APP_FACTORY", "build_parser", "main"]

PROG = "prismq-api"
#: What uvicorn imports in each worker process; it reads its settings from the environment.
APP_FACTORY = "prismq.api.app:create_app_from_env"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Seconds requests in flight get to finish after SIGTERM; long-polls are cut after it.
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 10


class UsageError(Exception):
    """Input the user can correct: printed as ``prismq-api: error: ...``, exit 2."""


# -- arguments ---------------------------------------------------------------------------


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {value!r}")
    return int(value)


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {value!r}")
    return int(value)


def _add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=(
            "sqlite:///path/to/prismq.db or postgresql://user@host/dbname"
            f" (default: ${DATABASE_URL_ENV}, else {default_sqlite_path()})"
        ),
    )


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the REST API with uvicorn",
        description="Run the REST API with uvicorn, after checking the database is migrated.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default: %(default)s)")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="number of worker processes (default: %(default)s)",
    )
    _add_database_url(serve)
    serve.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="(default: %(default)s)"
    )
    serve.add_argument(
        "--root-path",
        default="",
        help="path prefix under which a reverse proxy serves the API (default: none)",
    )
    serve.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="trust X-Forwarded-Proto/For from --forwarded-allow-ips (default: on)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        default=None,
        help="comma-separated proxy addresses to trust, or '*'"
        " (default: $FORWARDED_ALLOW_IPS, else 127.0.0.1)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=_positive_int,
        default=DEFAULT_SHUTDOWN_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="on SIGTERM, how long to let requests in flight finish (long-polls included)"
        f" before closing them (default: {DEFAULT_SHUTDOWN_TIMEOUT_SECONDS})",
    )
    serve.set_defaults(_handler=_serve)


def _add_tokens(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens = commands.add_parser(
        "tokens", help="create, list and revoke API tokens", description="Manage API tokens."
    )
    tokens.set_defaults(_usage=tokens)
    actions = tokens.add_subparsers(title="commands", metavar="COMMAND")
    scopes = ", ".join(scope.value for scope in Scope)

    create = actions.add_parser(
        "create",
        help="create a token and print it (shown only once)",
        description=f"Create a token and print it on stdout, only this once. Scopes: {scopes}.",
    )
    create.add_argument("name", metavar="NAME", help="a name for the token, e.g. its user")
    create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        required=True,
        metavar="SCOPE",
        help=f"a scope to grant (repeat for several): {scopes}",
    )
    _add_database_url(create)
    create.set_defaults(_handler=_tokens_create)

    listing = actions.add_parser(
        "list", help="list tokens (never the tokens themselves)", description="List tokens."
    )
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.add_argument("--active", action="store_true", help="leave out revoked tokens")
    _add_database_url(listing)
    listing.set_defaults(_handler=_tokens_list)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a token by id or name",
        description="Revoke a token by id or name; it stops working at once.",
    )
    revoke.add_argument("token", metavar="ID_OR_NAME", help="the token's id or name")
    _add_database_url(revoke)
    revoke.set_defaults(_handler=_tokens_revoke)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``prismq-api`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="PrismQ REST API: serve it, and manage its tokens."
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__} (prismq-queue-core {core_version})",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_serve(commands)
    _add_tokens(commands)
    parser.set_defaults(_usage=parser)
    return parser


# -- database ----------------------------------------------------------------------------


def _database_url(args: argparse.Namespace) -> str:
    """The ``--database-url`` given, else the default one, announced on stderr."""
    given: str | None = args.database_url
    if given is not None:
        if not given.strip():
            raise UsageError("--database-url: must not be empty")
        return given
    from_env = bool(os.environ.get(DATABASE_URL_ENV, "").strip())
    url = resolve_database_url(None)
    source = f"${DATABASE_URL_ENV}" if from_env else "the per-user default"
    # stderr, so that stdout stays the command's answer alone (e.g. the new token).
    print(f"{PROG}: using {_masked(url)} (from {source})", file=sys.stderr)
    return url


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "an invalid URL"


def _open_migrated(url: str) -> QueueDatabase:
    """The database at ``url``; SchemaNotMigratedError unless it is at the expected schema."""
    try:
        # Opening connects to nothing yet: what fails here is the URL itself (or its driver).
        db = QueueDatabase(url)
    except DatabaseUnavailableError as error:
        raise UsageError(f"--database-url: {error}") from None
    except ValueError as error:
        # SQLAlchemy raises a bare ValueError for e.g. a non-numeric port. The URL is not
        # echoed: it may hold a password.
        raise UsageError(f"--database-url: not a valid database URL: {error}") from None
    try:
        migrate.check(db)
    except BaseException:
        db.close()
        raise
    return db


# -- commands ----------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - only `serve` needs the server

    url = _database_url(args)
    _check_settings()
    _open_migrated(url).close()
    # uvicorn builds the app in each worker process from the environment.
    os.environ[DATABASE_URL_ENV] = url
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler
    # it found installed; with Python's default one the process would end "killed by
    # SIGTERM" (status -15) after a clean shutdown. Service managers expect 0.
    previous = signal.signal(signal.SIGTERM, _exit_ok_on_sigterm)
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            root_path=args.root_path,
            proxy_headers=args.proxy_headers,
            forwarded_allow_ips=args.forwarded_allow_ips,
            timeout_graceful_shutdown=args.shutdown_timeout,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def _check_settings() -> None:
    """Refuse to start on a bad ``PRISMQ_API_*`` value, naming the variable.

    uvicorn reads the settings again in each of its worker processes; a bad value found
    there would end every worker with a traceback instead of one line here.
    """
    try:
        ApiSettings()
    except pydantic.ValidationError as error:
        problems = [
            f"{ENV_PREFIX}{'_'.join(map(str, detail['loc'])).upper()}: {detail['msg']}"
            for detail in error.errors()
        ]
        raise UsageError("; ".join(problems)) from None


def _exit_ok_on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise SystemExit(EXIT_OK)


def _token_row(info: ApiTokenInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "name": info.name,
        "scopes": [scope.value for scope in info.scopes],
        "created_at_utc": info.created_at_utc.isoformat(),
        "revoked_at_utc": info.revoked_at_utc.isoformat() if info.revoked_at_utc else None,
    }


def _describe(info: ApiTokenInfo) -> str:
    scopes = ",".join(scope.value for scope in info.scopes)
    return f"token {info.id} {info.name!r} ({scopes})"


def _tokens_create(args: argparse.Namespace) -> int:
    with _open_migrated(_database_url(args)) as db:
        try:
            info, token = create_token(db, args.name, args.scopes)
        except (ValueError, TypeError) as error:
            raise UsageError(str(error)) from None
    print(token)
    print(
        f"{PROG}: created {_describe(info)}. The token above is shown only this once:"
        " store it now; it cannot be recovered, only revoked and replaced.",
        file=sys.stderr,
    )
    return EXIT_OK


def _tokens_list(args: argparse.Namespace) -> int:
    with _open_migrated(_database_url(args)) as db:
        tokens = list_tokens(db, include_revoked=not args.active)
    if args.json:
        print(json.dumps([_token_row(info) for info in tokens], indent=2))
        return EXIT_OK
    if not tokens:
        print("no tokens")
        return EXIT_OK
    print(f"{'ID':>6}  {'NAME':<24}  {'SCOPES':<32}  {'CREATED (UTC)':<19}  REVOKED (UTC)")
    for info in tokens:
        scopes = ",".join(scope.value for scope in info.scopes)
        revoked = info.revoked_at_utc.strftime("%Y-%m-%d %H:%M:%S") if info.revoked_at_utc else "-"
        created = info.created_at_utc.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{info.id:>6}  {info.name:<24}  {scopes:<32}  {created:<19}  {revoked}")
    return EXIT_OK


def _tokens_revoke(args: argparse.Namespace) -> int:
    with _open_migrated(_database_url(args)) as db:
        try:
            info = revoke_token(db, args.token)
        except LookupError as error:
            raise UsageError(str(error.args[0] if error.args else error)) from None
    print(f"revoked {_describe(info)}")
    return EXIT_OK


# -- entry point -------------------------------------------------------------------------


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command, turning what the user can act on into one error line."""
    try:
        return handler(args)
    except (UsageError, SchemaNotMigratedError) as error:
        # An un-migrated database is fixed by the user, with the command in the message.
        _error(str(error))
        return EXIT_USAGE
    except PrismQError as error:
        # DatabaseUnavailableError and every other database failure.
        _error(str(error))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prismq-api`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # argparse exits for --help/--version (0) and usage errors (2, message printed).
        if stop.code is None:
            return EXIT_OK
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    handler = getattr(args, "_handler", None)
    if handler is None:
        # `prismq-api` or `prismq-api tokens` alone: show what can be run.
        args._usage.print_help(sys.stderr)
        return EXIT_USAGE
    return _run(handler, args)
