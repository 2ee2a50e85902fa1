"""The interface each dialect module implements."""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
from collections.abc import Collection, Iterator
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    FromClause,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL

T = TypeVar("T")

#: The INSERT constructs with ON CONFLICT support; both spell the clauses alike.
UpsertInsert = postgresql.Insert | sqlite.Insert


class SqlDialect(abc.ABC):
    """SQL that differs between the supported databases."""

    name: str

    #: Whether a claim first checks, read-only, that something is claimable. Worth it
    #: where a claim's write transaction locks out every other writer (SQLite): idle
    #: workers then never queue for the write lock, nor make producers wait for it.
    probe_before_claim: bool = False

    #: Whether a write made of one statement runs in autocommit mode instead of inside
    #: BEGIN ... COMMIT. A single statement is atomic either way; over a network it saves
    #: the two round trips of BEGIN and COMMIT. (SQLite keeps BEGIN IMMEDIATE: its
    #: transactions cost no round trip, and the write lock must be taken up front.)
    autocommit_single_statements: bool = False

    @abc.abstractmethod
    @contextlib.contextmanager
    def driver_autocommit(self, driver_connection: Any) -> Iterator[None]:
        """Hold a pooled driver connection (in no transaction) in autocommit mode for the
        block, so that each statement run on it is its own transaction."""

    def driver_connection_broken(self, driver_connection: Any) -> bool:
        """Whether the driver itself knows ``driver_connection`` to be unusable."""
        return False

    @abc.abstractmethod
    def create_engine(self, url: URL, *, pool_size: int, options: dict[str, Any]) -> Engine:
        """An engine configured for a job queue on this database."""

    @abc.abstractmethod
    def now(self) -> ColumnElement[dt.datetime]:
        """The database's current UTC time, the clock every lease decision uses."""

    def now_plus(self, seconds: float) -> ColumnElement[dt.datetime]:
        """The database's current time plus ``seconds`` (may be negative)."""
        return self.now_plus_param(bindparam(None, self.offset(seconds)))

    @abc.abstractmethod
    def now_plus_param(self, offset: BindParameter[Any]) -> ColumnElement[dt.datetime]:
        """The database's current time plus a bound offset (bind ``offset(seconds)``).

        Prepared once, a statement with a named offset runs with any number of seconds.
        """

    @abc.abstractmethod
    def offset(self, seconds: float) -> Any:
        """The value to bind to :meth:`now_plus_param`'s parameter for ``seconds``."""

    @abc.abstractmethod
    def new_lease_token(self) -> ColumnElement[str]:
        """A fresh random token, evaluated per row."""

    @abc.abstractmethod
    def weighted_random_key(self, priority: ColumnElement[int]) -> ColumnElement[float]:
        """``-ln(U) * priority`` with U uniform in (0, 1]: the smallest key wins, so a task
        is picked with probability proportional to ``1 / priority``."""

    @abc.abstractmethod
    def capability_match(self) -> ColumnElement[bool]:
        """True for tasks whose every ``compatibility`` key equals the worker's value.

        Binds ``capabilities``: the worker's capabilities as a JSON text.
        """

    @abc.abstractmethod
    def not_an_index_path(self, column: ColumnElement[T]) -> ColumnElement[T]:
        """``column``, spelled so that the planner will not read the table by an index on it.

        For a filter that keeps most rows, where reading by an index on it would cost a
        sort of every queued task. Planners choose by statistics, and a queue's table has
        none worth trusting: SQLite has none until ``ANALYZE``, and PostgreSQL's describe
        the table as it was at the last auto-analyze (often empty, before a burst).
        """

    @abc.abstractmethod
    def completion_rows(self) -> FromClause:
        """The rows of a completion batch bound as one JSON text parameter ``batch``.

        ``batch`` is a JSON array of ``{"id": int, "token": str, "result": str}`` objects,
        ``result`` being the task's result already encoded as JSON text; the selectable has
        the columns ``id``, ``token`` and ``result`` (the result as stored in the column).
        One parameter for the whole batch keeps the statement's text, and so its prepared
        plan, the same whatever the batch size.
        """

    @abc.abstractmethod
    def new_task_rows(self) -> FromClause:
        """The tasks of a bulk enqueue bound as one JSON text parameter ``rows``.

        ``rows`` is a JSON array of objects with ``type``, ``queue``, ``priority``,
        ``payload`` and ``compatibility`` (JSON objects), ``max_attempts``, ``run_after``
        (:meth:`run_after_text`) and ``delay`` (seconds); all but ``type`` may be left out,
        and read as NULL. The selectable has those columns, JSON ones as their columns
        store them, and ``n``, each object's place in the array (ascending).
        """

    @abc.abstractmethod
    def run_after_text(self, moment: dt.datetime) -> str:
        """A UTC time as :meth:`new_task_rows` reads it."""

    @abc.abstractmethod
    def now_plus_seconds(self, seconds: ColumnElement[float]) -> ColumnElement[dt.datetime]:
        """The database's clock plus a number of seconds computed in SQL."""

    def completion_targets(self, rows: FromClause) -> ColumnElement[bool]:
        """An extra condition on the tasks a completion batch (``rows``) updates, if needed."""
        return true()

    @abc.abstractmethod
    def lock_for_claim(self, eligible: Select[Any]) -> Select[Any]:
        """Make the eligible-rows select safe against concurrent claimers."""

    @abc.abstractmethod
    def claim_statement(self, eligible: Select[Any], values: dict[str, Any]) -> Update:
        """One UPDATE that leases exactly the rows ``eligible`` selects."""

    @abc.abstractmethod
    def upsert_insert(self, table: Table) -> UpsertInsert:
        """This dialect's INSERT construct, which has ``ON CONFLICT`` clauses."""

    def insert_ignoring_conflict(
        self,
        table: Table,
        values: dict[str, Any],
        conflict_columns: list[str],
        *,
        index_where: ColumnElement[bool] | None = None,
    ) -> Insert:
        """INSERT that does nothing when a unique index on ``conflict_columns`` matches.

        ``index_where`` is the predicate of a partial unique index, which the database
        infers as the conflict's target only when the statement repeats it.
        """
        statement = self.upsert_insert(table).values(values)
        return statement.on_conflict_do_nothing(
            index_elements=conflict_columns, index_where=index_where
        )

    def insert_or_update(
        self,
        table: Table,
        values: dict[str, Any],
        conflict_columns: list[str],
        update_values: dict[str, Any],
    ) -> Insert:
        """INSERT, or UPDATE with ``update_values`` the row whose unique key matches."""
        statement = self.upsert_insert(table).values(values)
        return statement.on_conflict_do_update(index_elements=conflict_columns, set_=update_values)

    @abc.abstractmethod
    def optimize(self, engine: Engine) -> list[str]:
        """Run the database's own housekeeping (outside any transaction); say what was done.

        Used by :func:`prismq.queue.maintenance.optimize`. Returns one line per operation.
        """

    @abc.abstractmethod
    def integrity_problems(self, engine: Engine) -> list[str]:
        """What the database's own consistency check reports; empty when it finds nothing.

        Used by :func:`prismq.queue.maintenance.integrity_check`.
        """

    def refresh_stale_statistics(self, engine: Engine) -> bool:
        """Re-analyze the task table if the planner's statistics no longer describe it.

        True if it did. The default: nothing to do (SQLite's claims do not depend on
        statistics; see :meth:`not_an_index_path`).
        """
        return False

    @abc.abstractmethod
    def lock_migrations(self, conn: Connection) -> None:
        """Hold the database-wide migration lock until ``conn``'s transaction ends."""

    def prepare_location(self, url: URL) -> None:
        """Make sure the database can be created where ``url`` says (a file's folder)."""
        return

    @abc.abstractmethod
    def lock_idempotency_keys(self, conn: Connection, keys: Collection[str]) -> None:
        """Serialise transactions that insert the same idempotency keys.

        Without it, two batches holding the same keys in different orders can each wait
        on the other's uncommitted index entry.
        """
