"""Scheduling strategies: the order in which eligible tasks are claimed."""

from __future__ import annotations

import enum

from prismq.queue.errors import UnknownStrategyError

#: WEIGHTED_RANDOM draws among at most this many of the oldest eligible tasks, so one
#: claim reads a bounded number of rows however deep the queue is.
WEIGHTED_RANDOM_WINDOW = 1000


class SchedulingStrategy(str, enum.Enum):
    """How a claim orders the eligible tasks.

    - ``FIFO``: oldest first (``id ASC``).
    - ``LIFO``: newest first (``id DESC``).
    - ``PRIORITY``: lowest priority number first, then oldest (``priority ASC, id ASC``).
    - ``WEIGHTED_RANDOM``: each eligible task is picked with probability proportional to
      ``1 / priority``, among the :data:`WEIGHTED_RANDOM_WINDOW` oldest eligible tasks.
    """

    FIFO = "fifo"
    LIFO = "lifo"
    PRIORITY = "priority"
    WEIGHTED_RANDOM = "weighted_random"

    @classmethod
    def parse(cls, value: SchedulingStrategy | str) -> SchedulingStrategy:
        """Accept a strategy or its name in any case (``"fifo"``, ``"FIFO"``)."""
        if isinstance(value, SchedulingStrategy):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        names = ", ".join(s.value for s in cls)
        raise UnknownStrategyError(
            f"unknown scheduling strategy {value!r}; expected one of {names}"
        )
