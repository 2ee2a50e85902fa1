"""The byte that ends a listener's sleep in ``select`` at once (see ``interrupt``)."""

from __future__ import annotations

import contextlib
import os


class WakePipe:
    """A pipe a waiter watches beside its real source. :meth:`wake` is safe from another
    thread and from a signal handler: it only writes one byte."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._open = True

    def fileno(self) -> int:
        """The end to wait on with ``select``."""
        return self._read

    def wake(self) -> None:
        """End the wait in progress, or the next one."""
        if self._open:
            with contextlib.suppress(OSError):  # full: already woken
                os.write(self._write, b"!")

    def drain(self) -> None:
        """Forget the wake-ups written so far."""
        with contextlib.suppress(OSError):  # BlockingIOError once empty
            while os.read(self._read, 64):
                pass

    def close(self) -> None:
        """Release both ends; once only, as a second os.close could close a descriptor
        reused by then."""
        if self._open:
            self._open = False
            os.close(self._read)
            os.close(self._write)
