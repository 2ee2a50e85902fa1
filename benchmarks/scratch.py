"""Scratch databases: each run gets a fresh database, removed afterwards.

SQLite: a new file in the work directory. PostgreSQL: ``CREATE DATABASE`` with a unique
name on the server, ``DROP DATABASE ... WITH (FORCE)`` afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from benchmarks.errors import BenchmarkError
from prismq.queue import QueueDatabase
from prismq.queue.migrate import upgrade

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def shown(url: str) -> str:
    """``url`` with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def libpq_url(url: str) -> str:
    """A ``postgresql[+driver]://`` URL as the plain libpq URL psycopg takes."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BenchmarkError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() not in {"postgresql", "postgres"}:
        raise BenchmarkError(f"not a PostgreSQL URL: {shown(url)}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def connect_postgres(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit psycopg connection, or a :class:`BenchmarkError` saying why not."""
    try:
        return psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        raise BenchmarkError(f"cannot connect to PostgreSQL at {shown(url)}: {detail}") from None


@contextlib.contextmanager
def scratch_database(
    backend: str, *, postgres_url: str, workdir: Path, migrated: bool = True
) -> Iterator[str]:
    """A fresh database of ``backend`` (migrated to PrismQ's schema unless told not to)."""
    if backend == "sqlite":
        with _scratch_sqlite(workdir) as url:
            if migrated:
                _migrate(url)
            yield url
    else:
        with _scratch_postgres(postgres_url) as url:
            if migrated:
                _migrate(url)
            yield url


@contextlib.contextmanager
def _scratch_sqlite(workdir: Path) -> Iterator[str]:
    path = workdir / f"bench-{uuid.uuid4().hex[:12]}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextlib.contextmanager
def _scratch_postgres(server_url: str) -> Iterator[str]:
    name = f"prismq_bench_{uuid.uuid4().hex[:12]}"
    with connect_postgres(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with connect_postgres(server_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    with QueueDatabase(url) as db:
        upgrade(db)
