"""How the runner learns it should stop: Ctrl-C (SIGINT), SIGTERM or SIGHUP.

The first signal only sets a flag that the runner's waiting loops check, so the children
are stopped in order from ordinary code, never from inside a signal handler. A second
signal means "now": the ``on_force`` callback kills the children and the process exits 130.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_FORCED = 130
#: Longest a waiting loop sleeps before looking at the flag again.
_SLICE_SECONDS = 0.1


class StopRequest:
    """Set by the first stop signal; ``sleep`` ends early once it is."""

    def __init__(self, on_force: Callable[[], None]) -> None:
        self.requested = False
        self.signal_name = ""
        self._on_force = on_force

    def install(self) -> None:
        """Handle the stop signals from now on (replacing Python's KeyboardInterrupt)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if a stop was requested (before or meanwhile)."""
        deadline = time.monotonic() + seconds
        while not self.requested:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, _SLICE_SECONDS))
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if not self.requested:
            self.requested = True
            self.signal_name = signal.Signals(signum).name
            return
        # os.write, not print: the handler may have interrupted a print to the same stream.
        message = f"\n{signal.Signals(signum).name} again: killing the API and the worker now.\n"
        os.write(sys.stderr.fileno(), message.encode())
        self._on_force()
        # At once, without unwinding: the code interrupted would start a graceful stop.
        os._exit(EXIT_FORCED)
