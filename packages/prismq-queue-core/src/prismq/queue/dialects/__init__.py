"""What differs between SQLite and PostgreSQL, one module per dialect.

The lifecycle modules never test the dialect name; they ask the :class:`SqlDialect` of
their :class:`~prismq.queue.database.QueueDatabase` for the few SQL pieces that differ.
"""

from __future__ import annotations

from prismq.queue.dialects.base import SqlDialect
from prismq.queue.dialects.postgresql import PostgreSQLDialect
from prismq.queue.dialects.sqlite import SQLiteDialect

__all__ = ["SqlDialect", "dialect_for"]


# Dialects are stateless: one instance each, so statements prepared per dialect are shared.
_DIALECTS: dict[str, SqlDialect] = {"sqlite": SQLiteDialect(), "postgresql": PostgreSQLDialect()}


def dialect_for(name: str) -> SqlDialect:
    """The :class:`SqlDialect` for a SQLAlchemy dialect name."""
    if name in _DIALECTS:
        return _DIALECTS[name]
    raise ValueError(
        f"unsupported database dialect {name!r}: PrismQ supports sqlite and postgresql"
    )
