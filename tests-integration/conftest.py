"""Fixtures shared by the cross-package integration tests.

``database_url`` is parametrised over SQLite and PostgreSQL. The PostgreSQL case gets a
database of its own, created on the server named by ``PRISMQ_TEST_POSTGRES_URL`` and
dropped afterwards. If that server does not answer, the case fails when
``PRISMQ_TEST_REQUIRE_POSTGRES`` or ``CI`` is set, and is skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


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


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of the ``backend``, thrown away after the test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'prismq.db'}"
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


def _console_script(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"the {name!r} command is not installed (is prismq-queue-core installed?)")
    return found


@pytest.fixture(scope="session")
def prismq_cli() -> str:
    """Path of the installed ``prismq`` command of prismq-queue-core."""
    return _console_script("prismq")
