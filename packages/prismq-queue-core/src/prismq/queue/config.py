"""Where the database is when nobody says: ``PRISMQ_DATABASE_URL`` or a per-user SQLite file."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

#: Environment variable that names the database URL for every PrismQ command.
DATABASE_URL_ENV = "PRISMQ_DATABASE_URL"


def default_sqlite_path() -> Path:
    """The per-user SQLite file used when no URL is given."""
    return Path(platformdirs.user_data_dir("prismq", appauthor=False)) / "prismq.db"


def resolve_database_url(database_url: str | None = None) -> str:
    """The URL given, else ``$PRISMQ_DATABASE_URL``, else the per-user SQLite file."""
    if database_url:
        return database_url
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{default_sqlite_path()}"
