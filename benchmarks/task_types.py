"""The task types of the benchmark tasks, shared by the producers and the workers' handlers.

Kept apart from :mod:`benchmarks.handlers` so that the producing side imports only the core.
"""

from __future__ import annotations

#: A handler that returns at once: the throughput workloads.
NOOP = "noop"
#: A handler that returns the time it started: the pickup-latency workload.
STAMP = "stamp"
