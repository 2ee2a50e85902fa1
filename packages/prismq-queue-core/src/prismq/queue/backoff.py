"""Retry delays: capped exponential backoff with jitter."""

from __future__ import annotations

import dataclasses
import random

from prismq.queue.errors import InvalidTaskError


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Delay before retry ``n`` (n = attempts made so far, from 1).

    ``base_seconds * factor ** (n - 1)``, spread by ±``jitter`` (a fraction) so that tasks
    that failed together do not retry together, then capped at ``max_seconds``.
    """

    base_seconds: float = 1.0
    factor: float = 2.0
    max_seconds: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.max_seconds < 0:
            raise InvalidTaskError("retry_policy", "delays must not be negative")
        if self.factor < 1:
            raise InvalidTaskError("retry_policy", "factor must be at least 1")
        if not 0 <= self.jitter < 1:
            raise InvalidTaskError("retry_policy", "jitter must be in [0, 1)")

    def delay_seconds(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt, after ``attempts`` attempts."""
        exponent = max(attempts - 1, 0)
        # Cap before the power can overflow a float on absurd attempt counts.
        raw = self.base_seconds * self.factor ** min(exponent, 64)
        spread = 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        return min(raw * spread, self.max_seconds)


DEFAULT_RETRY_POLICY = RetryPolicy()
