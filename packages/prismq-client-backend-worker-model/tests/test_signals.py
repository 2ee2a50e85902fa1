"""Stop signals: the first asks for a graceful stop, the second exits at once."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from worker_support import poll_until

from prismq.worker.signals import FORCED_EXIT_STATUS, stop_on_signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_stops_gracefully_second_exits_at_once(signum: signal.Signals) -> None:
    requests: list[bool] = []
    exits: list[int] = []

    def request_stop() -> bool:
        first = not requests
        requests.append(first)
        return first

    previous = signal.getsignal(signum)
    with stop_on_signals(request_stop, exit_now=exits.append):
        os.kill(os.getpid(), signum)
        poll_until(lambda: len(requests) == 1, what="the first signal")
        assert exits == []
        os.kill(os.getpid(), signum)
        poll_until(lambda: exits, what="the second signal")
    assert requests == [True, False]
    assert exits == [FORCED_EXIT_STATUS]
    assert signal.getsignal(signum) is previous


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen: list[object] = []

    def in_thread() -> None:
        with stop_on_signals(lambda: True):
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(30)
    assert seen == [before]
