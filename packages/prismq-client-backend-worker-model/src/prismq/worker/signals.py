"""SIGTERM and SIGINT while a worker runs: the first stops it gracefully, the second at once.

The handlers only set a flag on the engine (a signal handler runs between two bytecodes of
the main thread, which may hold the very lock a ``threading`` call would take); the
engine's loop notices the flag within a fraction of a second. The second signal logs one
line and ends the process with ``os._exit(1)``: its leased tasks come back to the queue
when their leases expire.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from prismq.worker.events import log_event

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Exit status after a second stop signal.
FORCED_EXIT_STATUS = 1


@contextlib.contextmanager
def stop_on_signals(
    request_stop: Callable[[], bool], *, exit_now: Callable[[int], Any] = os._exit
) -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT call ``request_stop()``; a second one exits at once.

    ``request_stop`` returns False when a stop was already under way. Handlers are
    installed only in the main thread (Python allows no other); elsewhere this does
    nothing. The previous handlers are restored on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if request_stop():
            log_event(logging.INFO, "stop_requested", signal=name, detail="stopping gracefully")
            return
        log_event(
            logging.WARNING,
            "forced_exit",
            signal=name,
            detail="second stop signal: exiting now; leased tasks return when their leases expire",
        )
        for handler in logging.getLogger().handlers + logging.getLogger("prismq").handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        exit_now(FORCED_EXIT_STATUS)

    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class PendingStop:
    """Catches SIGTERM/SIGINT from the start of ``main`` until the engine takes over.

    Without it, a stop signal that arrives while handlers are imported or the database is
    opened meets Python's default handling: the process dies without a word and without
    marking its worker row. Here the signal is remembered and handed to the engine, which
    then never starts (or stops gracefully if it already has).
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._forward: Callable[[], bool] | None = None
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        if self._forward is not None:
            self._forward()

    def forward_to(self, request_stop: Callable[[], bool]) -> None:
        """From now on signals go to ``request_stop``; one received already is passed on."""
        self._forward = request_stop
        if self.received is not None:
            request_stop()
