"""Handlers whose import takes a while: a stop signal can land while the worker starts up.

The module writes ``$PRISMQ_TEST_IMPORT_MARKER`` as soon as its import begins, then waits up
to 30 s for ``$PRISMQ_TEST_IMPORT_GATE`` to exist, so a test can signal the worker while it
is provably still loading its handlers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from prismq.worker import TaskHandlerRegistry

Path(os.environ["PRISMQ_TEST_IMPORT_MARKER"]).touch()
_gate = Path(os.environ["PRISMQ_TEST_IMPORT_GATE"])
_deadline = time.monotonic() + 30
while not _gate.exists() and time.monotonic() < _deadline:
    time.sleep(0.01)

registry = TaskHandlerRegistry()


@registry.handler("noop")
def noop(payload: dict[str, Any]) -> None:
    del payload
