"""pytest fixtures for testing code built on PrismQ against SQLite and PostgreSQL alike.

Import the fixtures into a ``conftest.py`` (``from prismq.queue.testing import backend, db,
...``) and register the ``backend`` marker hooks (``pytest_configure`` and
``pytest_collection_modifyitems`` here). ``PRISMQ_TEST_BACKEND`` selects the backend
(``sqlite`` by default, or ``postgresql``); PostgreSQL tests connect to
``PRISMQ_TEST_POSTGRES_URL`` and each session works in a database of its own, created and
dropped on that server. A PostgreSQL run whose server does not answer fails: it never skips.

This module needs pytest, which the package does not install: it is for test suites only.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from prismq.queue import QueueDatabase
from prismq.queue.migrate import upgrade

BACKEND_ENV = "PRISMQ_TEST_BACKEND"
POSTGRES_URL_ENV = "PRISMQ_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def selected_backend() -> str:
    backend = os.environ.get(BACKEND_ENV, "sqlite").strip().lower()
    if backend not in BACKENDS:
        raise pytest.UsageError(f"{BACKEND_ENV} must be one of {BACKENDS}, not {backend!r}")
    return backend


def postgres_server_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def create_postgres_database() -> str:
    """CREATE a uniquely named database on the test server; returns its URL."""
    server = make_url(postgres_server_url()).set(drivername="postgresql+psycopg")
    name = f"prismq_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as error:
        pytest.fail(
            f"PostgreSQL tests need a server at {server.render_as_string(hide_password=True)}"
            f" ({POSTGRES_URL_ENV}); it failed: {error}",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    server = make_url(postgres_server_url()).set(drivername="postgresql+psycopg")
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def backend() -> str:
    """The backend under test: ``sqlite`` or ``postgresql``."""
    return selected_backend()


@pytest.fixture(scope="session")
def _migrated_template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Migrate once per session; each test then starts from a copy (SQLite) or from
    # truncated tables (PostgreSQL) instead of running the migrations again.
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
    else:
        url = create_postgres_database()
    db = QueueDatabase(url)
    try:
        upgrade(db)
    finally:
        db.close()
    yield url
    if backend == "postgresql":
        drop_postgres_database(url)


@pytest.fixture
def new_empty_database(backend: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty (un-migrated) databases of the selected backend.

    Each call returns a new URL; PostgreSQL databases are dropped at teardown.
    """
    created: list[str] = []

    def new() -> str:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'empty-{len(created)}.db'}"
        else:
            url = create_postgres_database()
        created.append(url)
        return url

    yield new
    if backend == "postgresql":
        for url in created:
            drop_postgres_database(url)


@pytest.fixture
def empty_url(new_empty_database: Callable[[], str]) -> str:
    """URL of a fresh, empty (un-migrated) database of the selected backend."""
    return new_empty_database()


_TABLES = ("task_logs", "task_queue", "workers", "api_tokens")


@pytest.fixture
def database_url(backend: str, _migrated_template: str, tmp_path: Path) -> str:
    """URL of a migrated, empty database for this test (other processes may open it)."""
    if backend == "sqlite":
        template = Path(make_url(_migrated_template).database or "")
        target = tmp_path / "prismq.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    engine = create_engine(_migrated_template, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
    return _migrated_template


@pytest.fixture
def db(database_url: str) -> Iterator[QueueDatabase]:
    """A :class:`QueueDatabase` on this test's empty, migrated database."""
    database = QueueDatabase(database_url)
    try:
        yield database
    finally:
        database.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backend(name): a feature of that database alone (e.g. SQLite's file backup); runs"
        " in that backend's session and is deselected, visibly, in the other",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = selected_backend()
    other_backend = [
        item
        for item in items
        if (marker := item.get_closest_marker("backend")) is not None and marker.args[0] != backend
    ]
    if other_backend:
        config.hook.pytest_deselected(items=other_backend)
        items[:] = [item for item in items if item not in other_backend]
