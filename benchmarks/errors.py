"""The one error the harness raises: a run that cannot be trusted, reported without a traceback."""

from __future__ import annotations


class BenchmarkError(Exception):
    """A workload went wrong (a task not completed, a worker that did not exit 0, ...)."""
