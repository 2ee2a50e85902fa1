"""SQLite: watch ``PRAGMA data_version`` on a connection of our own.

``data_version`` changes whenever another connection commits to the file, so checking it
is a cheap read of the shared WAL index, not of the tables. Any commit wakes the waiter
(heartbeats too): a hint, after which the caller claims.

When it can (Linux), the listener sleeps until the file or its WAL is written to
(:mod:`~prismq.queue.notifications.file_changes`), then looks closely for the commit that
write belongs to; otherwise it checks on a timer, often between tasks and less often once
the database has been quiet for a while.
"""

from __future__ import annotations

import select
import sqlite3
import time

from sqlalchemy.engine import URL

from prismq.queue.notifications.base import TaskListener
from prismq.queue.notifications.file_changes import WriteWatch, watch_writes
from prismq.queue.notifications.wake_pipe import WakePipe

#: First pause between two checks of a wait: work often follows work closely.
MIN_POLL_INTERVAL_SECONDS = 0.0005
#: Longest pause, reached after a few quiet checks: bounds the extra pickup latency of
#: a worker between tasks (about half of it on average). 2.5 ms rather than 5 ms took the
#: median pickup from about 4.5 to 3.3 ms, at no CPU cost that showed beside a task's.
MAX_POLL_INTERVAL_SECONDS = 0.0025
#: After this long without a commit the worker is idle rather than between tasks...
QUIET_AFTER_SECONDS = 1.0
#: ... and checks this often: every check wakes the process, and an idle worker checking
#: every 5 ms used 3 % of a core; the first task after a quiet spell waits a little longer.
QUIET_POLL_INTERVAL_SECONDS = 0.02
#: With a write watch: after a write, how long to keep checking (every 0.5 ms backing off to
#: every 20 ms). A commit is published in the WAL index, which no file event reports, just
#: after its last write (at synchronous=FULL, after that write's fsync too); a commit's
#: later writes, seen after it was, start such a window too, so it stays cheap.
PUBLISH_WINDOW_SECONDS = 0.25
#: With a write watch: the longest sleep without a write. Only a lost event, or a commit
#: published later than the window above, waits this long; every wake-up of an idle worker
#: costs CPU, so it is long.
WATCHED_POLL_INTERVAL_SECONDS = 1.0
_BACKOFF = 1.5


class SQLiteTaskListener(TaskListener):
    """Checks for commits by other connections: after each write to the file when it can
    watch for writes, otherwise every 0.5 ms backing off to every 2.5 ms, and to every 20
    ms once nothing was committed for a second."""

    def __init__(
        self,
        url: URL,
        *,
        min_poll_seconds: float = MIN_POLL_INTERVAL_SECONDS,
        max_poll_seconds: float = MAX_POLL_INTERVAL_SECONDS,
        use_write_watch: bool = True,
    ) -> None:
        self._path = url.database or ""
        self._min_interval = max(min_poll_seconds, 0.0001)
        self._max_interval = max(max_poll_seconds, self._min_interval)
        self._use_watch = use_write_watch
        self._connection: sqlite3.Connection | None = None
        self._seen_version: int | None = None
        self._interrupted = False
        self._changed_at = time.monotonic()
        self._watch: WriteWatch | None = None
        self._watch_tried = False  # once per opening: a failed attempt is not repeated
        # With a watch the wait sleeps in select; a byte written here ends it (interrupt).
        self._wake: WakePipe | None = None
        self._closing_look_until = 0.0

    @property
    def watching_writes(self) -> bool:
        """Whether waits sleep until a write (True) or check on a timer (False)."""
        return self._watch is not None

    def start(self) -> None:
        self._open_watch()
        try:
            self._seen_version = self._data_version()
        except sqlite3.Error:
            self._drop_connection()  # the first wait tries again

    def interrupt(self) -> None:
        self._interrupted = True
        wake = self._wake
        if wake is not None:
            wake.wake()

    def wait(self, timeout_seconds: float) -> bool:
        deadline = time.monotonic() + max(timeout_seconds, 0.0)
        self._open_watch()
        if self._seen_version is None:
            self._seen_version = self._data_version()
        interval = self._min_interval
        while True:
            if self._interrupted:
                self._interrupted = False
                if self._wake is not None:
                    self._wake.drain()
                return False
            version = self._data_version()
            now = time.monotonic()
            if version != self._seen_version:
                self._seen_version = version
                self._changed_at = now
                return True
            remaining = deadline - now
            if remaining <= 0:
                return False
            if self._watch is not None:
                # Sleep until a write; after one, look again soon, then less often (each
                # new write ends the pause and starts again from the shortest), until the
                # window closes.
                looking = now < self._closing_look_until
                pause = interval if looking else WATCHED_POLL_INTERVAL_SECONDS
                if self._sleep_until_write(min(pause, remaining)):
                    self._closing_look_until = time.monotonic() + PUBLISH_WINDOW_SECONDS
                    interval = self._min_interval
                elif looking:
                    interval = min(interval * _BACKOFF, QUIET_POLL_INTERVAL_SECONDS)
                continue
            time.sleep(min(interval, remaining))
            quiet = now - self._changed_at >= QUIET_AFTER_SECONDS
            ceiling = max(self._max_interval, QUIET_POLL_INTERVAL_SECONDS) if quiet else None
            interval = min(interval * _BACKOFF, ceiling or self._max_interval)

    def close(self) -> None:
        self._drop_connection()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        self._watch_tried = False
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.close()
        self._seen_version = None

    def _open_watch(self) -> None:
        """Watch for writes, if asked to and possible (tried again after a close)."""
        if not self._use_watch or self._watch_tried:
            return
        self._watch_tried = True
        self._watch = watch_writes(self._path)
        if self._watch is not None and self._wake is None:
            self._wake = WakePipe()

    def _sleep_until_write(self, timeout: float) -> bool:
        """Sleep until the file is written to (True), or a timeout or an interrupt (False)."""
        assert self._watch is not None  # only called with a watch, which opens the pipe
        assert self._wake is not None
        watched = self._watch.fileno()
        readable, _, _ = select.select([watched, self._wake.fileno()], [], [], timeout)
        if watched in readable:
            return self._watch.drain()
        return False  # an interrupt is seen (and the pipe drained) by the wait's loop

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _data_version(self) -> int:
        if self._connection is None:
            # Autocommit, so each PRAGMA sees the latest commit rather than a snapshot.
            self._connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False
            )
        row = self._connection.execute("PRAGMA data_version").fetchone()
        return int(row[0])
