"""The demo folder (``.demo/`` by default): the SQLite database, the logs, and a pid file
that keeps two demos from sharing it (the second would delete the first one's database)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from prismq_demo.errors import DemoError
from prismq_demo.options import Target

PID_FILE_NAME = "demo.pid"
#: What SQLite keeps beside a database file in WAL mode (and in rollback mode).
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def shown_path(path: Path | None) -> str:
    """``path`` relative to the current directory when it is below it, else absolute."""
    if path is None:
        return ""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path.resolve())


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True


class RunFolder:
    """The folder one demo run owns while it runs."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.claimed = False

    @property
    def pid_file(self) -> Path:
        """Holds the pid of the demo using the folder."""
        return self.path / PID_FILE_NAME

    def claim(self) -> None:
        """Create the folder and take it, unless a running demo holds it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DemoError(f"Could not create the demo folder {self.path}: {error}") from None
        try:
            holder = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            holder = None  # no demo ran here, or its file is unreadable: take over
        if holder is not None and holder != os.getpid() and _running(holder):
            raise DemoError(
                f"Another demo (process {holder}) is running with the folder"
                f" {shown_path(self.path)}: stop it first (Ctrl-C in its terminal), or give"
                f" this one a folder of its own with --demo-dir. If no demo runs, delete"
                f" {shown_path(self.pid_file)}."
            )
        self.pid_file.write_text(f"{os.getpid()}\n")
        self.claimed = True

    def release(self) -> None:
        """Give the folder up (the database and the logs stay, to be looked at)."""
        if self.claimed:
            with contextlib.suppress(OSError):
                self.pid_file.unlink()
            self.claimed = False

    def remove_sqlite_database(self, target: Target) -> None:
        """Delete the previous run's SQLite database, so this run starts from nothing."""
        if target.sqlite_path is None:
            return
        for suffix in SQLITE_COMPANIONS:
            leftover = target.sqlite_path.with_name(target.sqlite_path.name + suffix)
            try:
                leftover.unlink(missing_ok=True)
            except OSError as error:
                raise DemoError(
                    f"Could not delete the old database file {leftover}: {error}"
                ) from None
