"""The worker's settings: for each, what it means, its default and the values it accepts.

:class:`~prismq.worker.config.WorkerConfig` validates against this table, and the
settings reference in the docs is generated from it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from prismq.queue import SchedulingStrategy
from prismq.queue.errors import InvalidTaskError, UnknownStrategyError
from prismq.queue.validation import check_json_value, check_name, check_queue
from prismq.worker.config_values import (
    Bounds,
    SettingValueError,
    as_integer,
    as_names,
    as_number,
    as_object,
    as_optional_number,
    as_text,
)

MAX_WORKER_ID_LENGTH = 200
MAX_CONCURRENCY = 1024
MAX_LEASE_SECONDS = 86_400.0


def default_worker_id() -> str:
    """``<hostname>-<pid>``: unique per process on a host, recognisable in the workers list."""
    return f"{socket.gethostname()}-{os.getpid()}"[:MAX_WORKER_ID_LENGTH]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its meaning, default and accepted values."""

    #: What the setting does, as the settings reference shows it.
    description: str
    #: Turns an accepted value into the setting's value; raises SettingValueError.
    parse: Callable[[object], Any]
    #: The value when nobody gives one (None: unset, or derived from other settings).
    default: Any = None
    #: Makes the default when the worker starts, instead of ``default``.
    default_factory: Callable[[], Any] | None = None
    #: The numeric limits, for the settings reference (``parse`` enforces them).
    bounds: Bounds = dataclasses.field(default_factory=Bounds)

    def default_value(self) -> Any:
        """The value of this setting when nobody gave one."""
        return self.default if self.default_factory is None else self.default_factory()


def _core_check(check: Callable[..., str], *args: Any) -> str:
    """Run one of the core's name checks, its reason re-raised as a SettingValueError."""
    try:
        return check(*args)
    except InvalidTaskError as error:
        raise SettingValueError(error.message) from None


def _worker_id(value: object) -> str:
    return _core_check(check_name, "worker_id", as_text(value), MAX_WORKER_ID_LENGTH)


def _queues(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = as_names(value)
    if not names:
        raise SettingValueError("must name at least one queue, or be omitted for every queue")
    for name in names:
        _core_check(check_queue, name)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SettingValueError(f"lists {', '.join(map(repr, duplicates))} more than once")
    return names


def _strategy(value: object) -> SchedulingStrategy:
    if isinstance(value, (str, SchedulingStrategy)):
        try:
            return SchedulingStrategy.parse(value)
        except UnknownStrategyError as error:
            raise SettingValueError(str(error)) from None
    names = ", ".join(strategy.value for strategy in SchedulingStrategy)
    raise SettingValueError(f"must be one of {names}, not {type(value).__name__}")


def _capabilities(value: object) -> dict[str, Any]:
    capabilities = as_object(value)
    try:
        check_json_value("capabilities", capabilities)
    except InvalidTaskError as error:
        raise SettingValueError(error.message) from None
    return capabilities


def _database_url(value: object) -> str | None:
    if value is None:
        return None
    url = as_text(value)
    if not url.strip():
        raise SettingValueError("must not be empty (omit it to use the default database)")
    try:
        make_url(url)
    except ArgumentError as error:
        raise SettingValueError(f"is not a database URL: {error}") from None
    return url


def _integer(description: str, default: int, bounds: Bounds) -> Setting:
    parse = functools.partial(as_integer, bounds=bounds)
    return Setting(description, parse, default, bounds=bounds)


def _number(description: str, default: float | None, bounds: Bounds) -> Setting:
    """A number setting; with no default, it may be None (derived from other settings)."""
    parse = as_number if default is not None else as_optional_number
    return Setting(description, functools.partial(parse, bounds=bounds), default, bounds=bounds)


_CONCURRENCY = Bounds(ge=1, le=MAX_CONCURRENCY)
_LEASE = Bounds(gt=0, le=MAX_LEASE_SECONDS)
_POSITIVE = Bounds(gt=0)
_NOT_NEGATIVE = Bounds(ge=0)

#: Every setting, in the order the reference lists them.
SETTINGS: dict[str, Setting] = {
    "worker_id": Setting(
        "Unique id of this worker; default <hostname>-<pid>.",
        _worker_id,
        default_factory=default_worker_id,
    ),
    "queues": Setting("Queues to claim from; None for every queue.", _queues),
    "scheduling_strategy": Setting(
        "Order in which eligible tasks are claimed (alias: strategy).",
        _strategy,
        default=SchedulingStrategy.PRIORITY,
    ),
    "concurrency": _integer("Handlers run at the same time.", 4, _CONCURRENCY),
    "lease_seconds": _number(
        "How long a claimed task stays leased without a renewal.", 30.0, _LEASE
    ),
    # A safety net: the database's wake-up hint and the next delayed task's due time end an
    # idle wait sooner. Each look costs a cold start of the worker's whole working set, so
    # an idle worker looks rarely (a look each second was 3 % of a core).
    "poll_interval_seconds": _number(
        "The longest an idle worker waits before looking for tasks again.", 5.0, _POSITIVE
    ),
    "heartbeat_interval_seconds": _number(
        "How often leases and the heartbeat are renewed; default lease_seconds/3.",
        None,
        _POSITIVE,
    ),
    "reclaim_interval_seconds": _number(
        "How often expired leases are reclaimed; default the heartbeat interval.",
        None,
        _POSITIVE,
    ),
    "shutdown_grace_seconds": _number(
        "How long running handlers may finish after a stop signal.", 30.0, _NOT_NEGATIVE
    ),
    "capabilities": Setting(
        "JSON object matched against the tasks' compatibility requirements.",
        _capabilities,
        default_factory=dict,
    ),
    "database_url": Setting(
        "Database URL; None for $PRISMQ_DATABASE_URL or the per-user SQLite file.",
        _database_url,
    ),
}
