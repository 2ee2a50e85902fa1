"""Online backup and restore of a SQLite queue database.

A backup uses SQLite's online backup API: it copies the whole database in one step, from
one read transaction, so the copy is a consistent snapshot even while workers and the API
keep writing (in WAL mode the copy does not block them, nor they it). The copy is checked
with ``PRAGMA integrity_check`` and only then moved into place, so the target path never
holds a partial backup.

PostgreSQL databases are backed up with the server's own tools (``pg_dump`` /
``pg_restore``); both functions here raise :class:`~prismq.queue.errors.BackupError` for
them, saying so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import URL

from prismq.queue.database import QueueDatabase, normalise_url
from prismq.queue.errors import BackupError
from prismq.queue.tables import task_table

__all__ = ["backup_sqlite", "restore_sqlite"]

#: How long a restore waits for other connections to release the target database.
RESTORE_BUSY_TIMEOUT_SECONDS = 5.0
_POSTGRES_HINT = (
    "back up PostgreSQL with its own tools, e.g. `pg_dump --format=custom --file=prismq.dump"
    " DBNAME`, and restore with `pg_restore --clean --if-exists --dbname=DBNAME prismq.dump`"
)


def backup_sqlite(
    db: QueueDatabase, target_path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Copy the SQLite database of ``db`` to ``target_path``; returns the absolute path.

    Safe while workers and the API run: the copy is one consistent snapshot. An existing
    file at ``target_path`` is only replaced when ``overwrite`` is True (atomically: a
    failed backup leaves the old file in place). The target's directory must exist.
    Raises :class:`BackupError` (PostgreSQL, missing database file, target exists, ...).
    """
    source = _sqlite_path(db.url, "back up")
    target = Path(os.path.abspath(target_path))
    if not source.is_file():
        raise BackupError(f"cannot back up {db.display_url}: the file {source} does not exist")
    if target.exists():
        if not overwrite:
            raise BackupError(
                f"{target} already exists; pass overwrite=True (--overwrite) to replace it"
            )
        if target.is_dir() or _same_file(source, target):
            raise BackupError(f"cannot back up {source} onto {target}")
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: the directory {target.parent} does not exist")
    # Write next to the target, then rename: the rename is atomic on the same file system.
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with db.translating_errors():
            pooled = db.engine.raw_connection()
        try:
            source_connection = pooled.driver_connection
            assert isinstance(source_connection, sqlite3.Connection)  # pysqlite's connection
            with _closing(partial) as copy:
                # pages=-1: everything in one step, i.e. one read transaction, one snapshot.
                # (Step-wise copies restart whenever another connection writes, and may
                # never finish on a busy queue.)
                source_connection.backup(copy, pages=-1)
                _require_intact(copy, f"the backup written to {partial}")
                # A rollback-journal file is self-contained: readable without -wal/-shm
                # files, e.g. from read-only media. Restoring switches back to WAL.
                copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            pooled.close()
        os.replace(partial, target)
    except sqlite3.Error as error:
        raise BackupError(f"backup of {source} to {target} failed: {error}") from error
    finally:
        partial.unlink(missing_ok=True)
    return target


def restore_sqlite(database: QueueDatabase | str, source_path: str | os.PathLike[str]) -> Path:
    """Replace the content of a SQLite queue database with a backup; returns the db's path.

    ``database`` is a :class:`QueueDatabase` or a ``sqlite:///`` URL; its file is created if
    missing. The backup must be a PrismQ database that passes ``PRAGMA integrity_check``;
    otherwise nothing is changed and :class:`BackupError` is raised.

    **Stop every worker and the API before restoring** and start them again after: a
    process still connected would go on from a queue state that no longer exists (leases
    it holds, tasks it completed after the backup). If a backup is from an older PrismQ
    release, run ``prismq db upgrade`` afterwards.
    """
    if isinstance(database, QueueDatabase):
        url = database.url
        # Our own idle pooled connections must not hold the file open during the copy.
        database.engine.dispose()
    else:
        url = normalise_url(database)
    target = _sqlite_path(url, "restore")
    source = Path(os.path.abspath(source_path))
    if not source.is_file():
        raise BackupError(f"cannot restore: the backup file {source} does not exist")
    if target.exists() and _same_file(source, target):
        raise BackupError(f"cannot restore {source} onto itself")
    try:
        with _closing(source.as_uri() + "?mode=ro", uri=True) as backup:
            _require_prismq_database(backup, source)
            target.parent.mkdir(parents=True, exist_ok=True)
            with _closing(target, timeout=RESTORE_BUSY_TIMEOUT_SECONDS) as restored:
                # One step, in one write transaction on the target: all or nothing.
                backup.backup(restored, pages=-1)
                restored.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            raise BackupError(
                f"cannot restore into {target}: it is in use ({error});"
                " stop the workers and the API first"
            ) from error
        raise BackupError(f"restore of {source} into {target} failed: {error}") from error
    except sqlite3.Error as error:
        raise BackupError(f"restore of {source} into {target} failed: {error}") from error
    return target


def _sqlite_path(url: URL, action: str) -> Path:
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"cannot {action} {url.render_as_string(hide_password=True)} with PrismQ:"
            f" {_POSTGRES_HINT}"
        )
    # The path exactly as the pysqlite dialect opens it (relative to the working directory).
    return Path(os.path.abspath(url.database or ""))


@contextlib.contextmanager
def _closing(
    path: Path | str, *, uri: bool = False, timeout: float = 30.0
) -> Iterator[sqlite3.Connection]:
    # sqlite3.Connection's own context manager commits; it does not close.
    connection = sqlite3.connect(path, uri=uri, timeout=timeout, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def _require_intact(connection: sqlite3.Connection, what: str) -> None:
    rows = connection.execute("PRAGMA integrity_check").fetchall()
    problems = [str(row[0]) for row in rows if row != ("ok",)]
    if problems:
        shown = "; ".join(problems[:5])
        raise BackupError(f"{what} fails the integrity check ({len(problems)} problems): {shown}")


def _require_prismq_database(connection: sqlite3.Connection, path: Path) -> None:
    try:
        _require_intact(connection, f"the backup {path}")
    except sqlite3.DatabaseError as error:
        # "file is not a database", "database disk image is malformed", ...
        raise BackupError(f"{path} is not a usable SQLite database: {error}") from error
    # Imported here: prismq.queue.migrate pulls in Alembic, which `import prismq.queue`
    # (every worker) should not pay for.
    from prismq.queue.migrate import VERSION_TABLE  # noqa: PLC0415

    tables = {
        name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    missing = [name for name in (VERSION_TABLE, task_table.name) if name not in tables]
    if missing:
        raise BackupError(
            f"{path} is not a PrismQ database: it has no {' or '.join(missing)} table"
        )


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False
