"""What each figure's durability was, read from the database itself rather than assumed."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import make_url

from prismq.queue import QueueDatabase

_SQLITE_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
_POSTGRES_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")


def sqlite_durability(pragma: Callable[[str], object], database_path: str) -> str:
    """E.g. ``"sqlite WAL synchronous=NORMAL on ext4"``; ``pragma(name)`` reads one PRAGMA."""
    journal = str(pragma("journal_mode")).upper()
    level = str(pragma("synchronous"))
    synchronous = _SQLITE_SYNCHRONOUS.get(int(level), level) if level.isdigit() else level
    return f"sqlite {journal} synchronous={synchronous} on {filesystem_of(database_path)}"


def postgres_durability(show: Callable[[str], object]) -> str:
    """E.g. ``"postgresql fsync=on synchronous_commit=on ..."``; ``show(name)`` runs SHOW."""
    return "postgresql " + " ".join(f"{name}={show(name)}" for name in _POSTGRES_SETTINGS)


def prismq_durability(url: str, *, sqlite_synchronous: str = "NORMAL") -> str:
    """The durability of a PrismQ connection, read from one that PrismQ itself opened."""
    with (
        QueueDatabase(url, sqlite_synchronous=sqlite_synchronous) as db,
        db.read() as conn,
    ):
        if db.dialect_name == "sqlite":
            return sqlite_durability(
                lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar(),
                make_url(url).database or "",
            )
        return postgres_durability(lambda name: conn.exec_driver_sql(f"SHOW {name}").scalar())


def server_version(url: str) -> str:
    """``"SQLite 3.40.1"`` or ``"PostgreSQL 15.4"``."""
    with QueueDatabase(url) as db, db.read() as conn:
        if db.dialect_name == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        return f"PostgreSQL {conn.exec_driver_sql('SHOW server_version').scalar()}"


def filesystem_of(path: str) -> str:
    """The type of the file system holding ``path`` (on ``tmpfs`` fsync would cost nothing)."""
    target = os.path.realpath(Path(path).parent)
    best, fstype = "", "an unknown file system"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount_point = fields[1]
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, fstype = mount_point, fields[2]
    except OSError:
        pass
    return fstype
