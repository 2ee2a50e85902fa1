"""Throw-away databases for the integration tests, on SQLite or PostgreSQL.

A PostgreSQL database is created on the server named by ``PRISMQ_TEST_POSTGRES_URL`` and
dropped afterwards. If that server does not answer, the test fails when
``PRISMQ_TEST_REQUIRE_POSTGRES`` or ``CI`` is set, and is skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", "postgresql"]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in {"", "0", "false", "no", "off"}


def postgres_required() -> bool:
    return _truthy(os.environ.get("PRISMQ_TEST_REQUIRE_POSTGRES")) or _truthy(os.environ.get("CI"))


def postgres_base_url() -> str:
    return os.environ.get("PRISMQ_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def _libpq_url(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


@contextlib.contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty database of ``backend``, thrown away on exit.

    A SQLite database is a file in ``directory``; a PostgreSQL one is created on the test
    server and dropped afterwards (skipped or failed, see the module's docstring, when the
    server does not answer).
    """
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'prismq.db'}"
        return

    base = postgres_base_url()
    try:
        admin = psycopg.connect(_libpq_url(base), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {make_url(base)!s}: {exc}"
        if postgres_required():
            pytest.fail(f"{message}; CI must run the PostgreSQL tests")
        pytest.skip(message)
    name = f"prismq_it_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(base).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
