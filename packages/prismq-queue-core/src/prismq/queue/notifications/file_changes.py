"""Being told when a database file is written to, instead of looking every few milliseconds.

On Linux, inotify reports each ``write`` to the SQLite file or its WAL as it happens, so a
waiter can sleep in ``select`` until a writer writes. Elsewhere (or when inotify cannot
be had: no watch left, an unusual file system) :func:`watch_writes` gives None, and the
SQLite listener polls as it always could. A write is a hint only: the waiter still reads
``PRAGMA data_version`` to learn whether a commit was published.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
import sys
from pathlib import Path

# From <sys/inotify.h>.
_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_READ_SIZE = 64 * 1024


class WriteWatch:
    """Readable (see :meth:`fileno`) after a write to one of the watched files."""

    def __init__(self, descriptor: int, names: frozenset[bytes]) -> None:
        self._descriptor = descriptor
        self._names = names

    def fileno(self) -> int:
        """The descriptor to wait on with ``select``."""
        return self._descriptor

    def drain(self) -> bool:
        """Consume the pending events; True if one was about a watched file (or was lost)."""
        seen = False
        while True:
            try:
                data = os.read(self._descriptor, _READ_SIZE)
            except BlockingIOError:
                return seen
            if not data:
                return seen
            offset = 0
            while offset + _EVENT_HEADER.size <= len(data):
                _, mask, _, length = _EVENT_HEADER.unpack_from(data, offset)
                offset += _EVENT_HEADER.size
                name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                # An overflow means events were dropped: one of them may have been ours.
                if mask & _IN_Q_OVERFLOW or name in self._names:
                    seen = True

    def close(self) -> None:
        """Stop watching."""
        with contextlib.suppress(OSError):
            os.close(self._descriptor)


def watch_writes(database_path: str) -> WriteWatch | None:
    """A watch on writes to the SQLite file at ``database_path`` and its WAL, or None.

    The directory is watched, not the files: SQLite deletes and re-creates the WAL, and a
    watch on a deleted file would go silent.
    """
    if not sys.platform.startswith("linux") or not database_path:
        return None
    path = Path(database_path).resolve()
    names = frozenset({path.name.encode(), f"{path.name}-wal".encode()})
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init = libc.inotify_init1
        add_watch = libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    init.argtypes = [ctypes.c_int]
    init.restype = ctypes.c_int
    add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    add_watch.restype = ctypes.c_int
    descriptor = init(os.O_NONBLOCK | os.O_CLOEXEC)
    if descriptor < 0:  # e.g. the user's inotify instances are used up
        return None
    mask = _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO
    if add_watch(descriptor, os.fsencode(path.parent), mask) < 0:
        os.close(descriptor)
        return None
    return WriteWatch(descriptor, names)
