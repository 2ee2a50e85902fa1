"""Shared fixtures: the same worker tests run against SQLite or PostgreSQL.

``PRISMQ_TEST_BACKEND`` selects the backend (``sqlite`` by default, or ``postgresql``);
PostgreSQL tests connect to ``PRISMQ_TEST_POSTGRES_URL``. The fixtures live in
:mod:`prismq.queue.testing`, shared with the other packages' suites.
"""

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
