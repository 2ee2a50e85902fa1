"""``QueueDatabase``: the engine, transactions and error translation for one database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, exc, make_url, text
from sqlalchemy.engine import URL

from prismq.queue.config import resolve_database_url
from prismq.queue.dialects import SqlDialect, dialect_for
from prismq.queue.dialects.sqlite import BEGIN_MODE_OPTION
from prismq.queue.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    PrismQError,
    SchemaNotMigratedError,
)

if TYPE_CHECKING:
    # Only session() needs the ORM; a worker never loads it.
    from sqlalchemy.orm import Session

#: Where a pooled connection keeps its cursor for driver statements (see driver_cursor):
#: making a cursor per statement cost ~30 µs of a ~450 µs enqueue on PostgreSQL, where
#: psycopg sets up a new cursor's result loaders again.
_KEPT_CURSOR = "prismq_driver_cursor"


def _kept_cursor(info: dict[Any, Any], driver: Any) -> Any:
    """The cursor ``driver`` keeps in its pool record's ``info`` (which the pool empties
    when it replaces the connection), made on first use."""
    kept = info.get(_KEPT_CURSOR)
    if kept is not None and kept[0] is driver:
        return kept[1]
    cursor = driver.cursor()
    info[_KEPT_CURSOR] = (driver, cursor)
    return cursor


def _drop_kept_cursor(info: dict[Any, Any]) -> None:
    kept = info.pop(_KEPT_CURSOR, None)
    if kept is not None:
        with contextlib.suppress(Exception):  # a dead connection's cursor may not close
            kept[1].close()


_UNDEFINED_TABLE_SQLSTATE = "42P01"
_DRIVERS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


def normalise_url(database_url: str) -> URL:
    """Parse a URL, choosing psycopg 3 for ``postgresql://`` and rejecting other databases."""
    try:
        url = make_url(database_url)
    except (exc.ArgumentError, ValueError):
        raise DatabaseUnavailableError(f"not a valid database URL: {database_url!r}") from None
    backend = url.get_backend_name()
    if backend not in _DRIVERS:
        raise DatabaseUnavailableError(
            f"unsupported database {backend!r} in URL {url.render_as_string(hide_password=True)};"
            " PrismQ supports sqlite:/// and postgresql://"
        )
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername=_DRIVERS[backend])
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise DatabaseUnavailableError(
            "SQLite needs a file (sqlite:///path/to/prismq.db): several processes share it"
        )
    return url


class QueueDatabase:
    """One PrismQ database: SQLite (default) or PostgreSQL.

    ``QueueDatabase()`` uses ``$PRISMQ_DATABASE_URL`` or a per-user SQLite file. Use it as a
    context manager, or call :meth:`close`, to release its connections.

    ``prepared_statements=False`` turns off psycopg's server-side prepared statements, for
    PostgreSQL behind a transaction-mode pooler that does not track them (PgBouncer before
    1.21, or without ``max_prepared_statements``).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        pool_size: int = 5,
        sqlite_synchronous: str = "NORMAL",
        sqlite_busy_timeout_ms: int = 30_000,
        connect_timeout: int = 10,
        prepared_statements: bool = True,
    ) -> None:
        self.url = normalise_url(resolve_database_url(database_url))
        self.dialect: SqlDialect = dialect_for(self.url.get_backend_name())
        self.dialect.prepare_location(self.url)
        options: dict[str, Any] = {
            "sqlite_synchronous": sqlite_synchronous,
            "sqlite_busy_timeout_ms": sqlite_busy_timeout_ms,
            "connect_timeout": connect_timeout,
            "prepared_statements": prepared_statements,
        }
        try:
            self.engine: Engine = self.dialect.create_engine(
                self.url, pool_size=pool_size, options=options
            )
        except ModuleNotFoundError as error:
            raise DatabaseUnavailableError(
                f"the driver for {self.display_url} is not installed ({error.name});"
                " install it with: pip install 'prismq-queue-core[postgresql]'"
            ) from None

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.dialect.name

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error.

        On SQLite it begins with ``BEGIN IMMEDIATE``, taking the write lock up front.
        """
        with self.translating_errors(), self._connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write_statement(self) -> Iterator[Connection]:
        """A connection for ONE writing statement, which is its own transaction.

        Where the dialect allows (PostgreSQL) the statement runs in autocommit mode,
        saving the BEGIN and COMMIT round trips; elsewhere this is :meth:`write`. Never
        run two statements in it: they would not be one transaction.
        """
        if not self.dialect.autocommit_single_statements:
            with self.write() as conn:
                yield conn
            return
        with self.translating_errors(), self._connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextlib.contextmanager
    def driver_cursor(self) -> Iterator[Any]:
        """A driver cursor on a pooled connection in autocommit mode, for ONE statement.

        Below SQLAlchemy's ``execute``, for the one call where its per-call work costs
        nearly as much as the database's: a single enqueue (see ``driver_statements``).
        Driver errors come out as PrismQ errors, as everywhere, and a connection the driver
        reports dead leaves the pool.

        The cursor is the connection's own, kept for the next such statement: fetch the
        statement's whole result (``fetchall``), so that it ends, and with it, on SQLite,
        its autocommitted transaction.
        """
        sa_dialect = self.engine.dialect
        try:
            pooled = self.engine.raw_connection()
        except (exc.OperationalError, exc.InterfaceError, sa_dialect.loaded_dbapi.Error) as error:
            # Unlike connect(), raw_connection() lets the driver's own error through.
            raise self._unavailable(error) from error
        driver: Any = pooled.driver_connection  # the driver's own: its API varies by driver
        try:
            with self.dialect.driver_autocommit(driver):
                try:
                    yield _kept_cursor(pooled.info, driver)
                except BaseException:
                    _drop_kept_cursor(pooled.info)  # whatever state it is in: a new one next
                    raise
        except sa_dialect.loaded_dbapi.Error as error:
            dead = self.dialect.driver_connection_broken(driver) or sa_dialect.is_disconnect(
                error, pooled.dbapi_connection, None
            )
            if dead:
                pooled.invalidate(error)
            # SQLAlchemy's wrapper for this driver error, as its execute would have raised.
            wrapped = exc.DBAPIError.instance(
                None,
                None,
                error,
                sa_dialect.loaded_dbapi.Error,
                connection_invalidated=dead,
                dialect=sa_dialect,
            )
            assert isinstance(wrapped, exc.DBAPIError)  # a driver error always wraps as one
            raise translate_error(wrapped, self.display_url) from error
        finally:
            pooled.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite a deferred one, which does not block writers)."""
        with self.translating_errors(), self._connect() as conn:
            reader = conn.execution_options(**{BEGIN_MODE_OPTION: "DEFERRED"})
            with reader.begin():
                yield reader

    def session(self) -> Session:
        """A new ORM session on this database, for callers that enqueue transactionally."""
        from sqlalchemy.orm import Session  # noqa: PLC0415 - the ORM is loaded on first use

        return Session(self.engine, expire_on_commit=False)

    def ping(self) -> None:
        """Raise :class:`DatabaseUnavailableError` unless the database answers."""
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> QueueDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"QueueDatabase({self.display_url!r})"

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except (exc.OperationalError, exc.InterfaceError) as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: Exception) -> DatabaseUnavailableError:
        """The error for a connection attempt that failed (SQLAlchemy's or the driver's)."""
        cause = error.orig if isinstance(error, exc.DBAPIError) else error
        return DatabaseUnavailableError(
            f"cannot connect to {self.display_url}: {_first_line(cause)}"
        )

    @contextlib.contextmanager
    def translating_errors(self) -> Iterator[None]:
        """Re-raise driver errors in the block as PrismQ errors."""
        try:
            yield
        except PrismQError:
            raise
        except exc.DBAPIError as error:
            raise translate_error(error, self.display_url) from error


def translate_error(error: exc.DBAPIError, display_url: str) -> PrismQError:
    """Turn a driver error into the PrismQ error a caller can act on."""
    detail = _first_line(error.orig)
    if getattr(error.orig, "sqlstate", None) == _UNDEFINED_TABLE_SQLSTATE or (
        "no such table" in detail
    ):
        return SchemaNotMigratedError(
            f"{display_url} has no PrismQ schema ({detail}); run: prismq db upgrade"
            f" --database-url '{display_url}'"
        )
    if error.connection_invalidated or isinstance(error, exc.InterfaceError):
        return DatabaseUnavailableError(f"lost the connection to {display_url}: {detail}")
    return DatabaseError(f"database error on {display_url}: {detail}")


def _first_line(error: BaseException | None) -> str:
    text_ = str(error or "").strip()
    return text_.splitlines()[0] if text_ else type(error).__name__
