"""Shared fixtures: the same API tests run against SQLite or PostgreSQL.

``PRISMQ_TEST_BACKEND`` selects the backend (``sqlite`` by default, or ``postgresql``); the
database fixtures come from :mod:`prismq.queue.testing`. ``api`` is an application on this
test's migrated database with a started client; it mints tokens of any scope.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import Api, api_settings
from fastapi.testclient import TestClient

from prismq.api import create_app
from prismq.queue import QueueDatabase
from prismq.queue.testing import (  # noqa: F401  (pytest finds fixtures and hooks by name)
    _migrated_template,
    backend,
    database_url,
    db,
    empty_url,
    new_empty_database,
    pytest_collection_modifyitems,
    pytest_configure,
)


@pytest.fixture
def api(db: QueueDatabase, database_url: str) -> Iterator[Api]:  # noqa: F811
    """An application on this test's migrated database, started, with a client."""
    app = create_app(api_settings(database_url), database=db)
    with TestClient(app) as client:
        yield Api(app=app, client=client, db=db)
