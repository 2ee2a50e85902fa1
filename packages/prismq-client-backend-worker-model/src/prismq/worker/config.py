"""Worker settings: from code, a TOML/JSON/YAML file and ``PRISMQ_WORKER_*`` variables.

Precedence in :meth:`WorkerConfig.load`: explicit overrides (code, command-line flags) over
environment variables over the config file over the defaults. Every invalid value raises
:class:`~prismq.worker.errors.WorkerConfigError` naming the setting and where it came from.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from prismq.queue import SchedulingStrategy
from prismq.worker.config_settings import (
    MAX_CONCURRENCY,
    MAX_LEASE_SECONDS,
    MAX_WORKER_ID_LENGTH,
    SETTINGS,
    default_worker_id,
)
from prismq.worker.config_sources import (
    CODE_SOURCE,
    DEFAULT_SOURCE,
    ENV_VARIABLES,
    FIELD_ALIASES,
    canonical_settings,
    settings_from_env,
    settings_from_file,
)
from prismq.worker.config_values import SettingValueError
from prismq.worker.errors import WorkerConfigError

# Re-exported: the CLI and the docs read them from here.
__all__ = [
    "CODE_SOURCE",
    "ENV_VARIABLES",
    "MAX_CONCURRENCY",
    "MAX_LEASE_SECONDS",
    "MAX_WORKER_ID_LENGTH",
    "WorkerConfig",
    "default_worker_id",
    "hide_password",
]


def hide_password(database_url: str) -> str:
    """The URL with its password masked, safe to log."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


#: Where each value being validated came from, and the source of values given by nobody.
#: Constructing in code leaves the default: everything came from code.
_VALUE_SOURCES: ContextVar[tuple[Mapping[str, str], str]] = ContextVar(
    "prismq_worker_config_sources", default=({}, CODE_SOURCE)
)


@dataclasses.dataclass(frozen=True, init=False, repr=False)
class WorkerConfig:
    """How one worker process runs: identity, queues, strategy, concurrency and timings.

    Construct it with settings as keyword arguments (any left out take their defaults, see
    :data:`~prismq.worker.config_settings.SETTINGS`), or read them with :meth:`load`,
    :meth:`from_file` or :meth:`from_env`. It cannot be changed once made; use
    :func:`dataclasses.replace` for a changed copy.
    """

    worker_id: str
    queues: tuple[str, ...] | None
    scheduling_strategy: SchedulingStrategy
    concurrency: int
    lease_seconds: float
    poll_interval_seconds: float
    #: None only while unresolved: a made config holds the derived interval.
    heartbeat_interval_seconds: float | None
    reclaim_interval_seconds: float | None
    shutdown_grace_seconds: float
    capabilities: dict[str, Any]
    database_url: str | None

    def __init__(self, **settings: Any) -> None:
        """Settings given in code; invalid ones raise :class:`WorkerConfigError`."""
        sources, fallback = _VALUE_SOURCES.get()
        strategy_source = sources.get("scheduling_strategy", fallback)
        given = canonical_settings(settings, strategy_source)
        values = _validated(given, sources, fallback)
        for name, value in values.items():
            # The dataclass is frozen; its own __init__ sets its fields the same way.
            object.__setattr__(self, name, value)

    # -- derived values ------------------------------------------------------------------

    @property
    def heartbeat_interval(self) -> float:
        """The resolved heartbeat interval in seconds (never None after validation)."""
        assert self.heartbeat_interval_seconds is not None  # resolved by _validated
        return self.heartbeat_interval_seconds

    @property
    def reclaim_interval(self) -> float:
        """The resolved reclaim interval in seconds (never None after validation)."""
        assert self.reclaim_interval_seconds is not None  # resolved by _validated
        return self.reclaim_interval_seconds

    def as_dict(self) -> dict[str, Any]:
        """Every setting and its value."""
        return {name: getattr(self, name) for name in SETTINGS}

    def as_public_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values, the database password masked: safe to log."""
        data = self.as_dict()
        data["queues"] = None if self.queues is None else list(self.queues)
        data["scheduling_strategy"] = self.scheduling_strategy.value
        data["capabilities"] = dict(self.capabilities)
        if self.database_url is not None:
            data["database_url"] = hide_password(self.database_url)
        return data

    def __repr__(self) -> str:
        # repr() ends up in logs and tracebacks: never show the database password there.
        shown = self.as_dict()
        if self.database_url is not None:
            shown["database_url"] = hide_password(self.database_url)
        fields = ", ".join(f"{name}={value!r}" for name, value in shown.items())
        return f"{type(self).__name__}({fields})"

    # -- constructors --------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> WorkerConfig:
        """Settings from a TOML, JSON or YAML file (top level, or under ``worker``)."""
        values, sources = settings_from_file(path)
        return cls._build(values, sources)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        """Settings from the ``PRISMQ_WORKER_*`` variables (see :data:`ENV_VARIABLES`).

        Reads ``os.environ`` unless ``environ`` is given; empty variables count as unset.
        """
        values, sources = settings_from_env(os.environ if environ is None else environ)
        return cls._build(values, sources)

    @classmethod
    def load(
        cls,
        config_path: str | Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> WorkerConfig:
        """Settings merged from every source: overrides > environment > file > defaults.

        Overrides whose value is None are ignored, so command-line flags that were not
        given can be passed through as they are.
        """
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        if config_path is not None:
            file_values, file_sources = settings_from_file(config_path)
            values.update(file_values)
            sources.update(file_sources)
        env_values, env_sources = settings_from_env(os.environ if environ is None else environ)
        values.update(env_values)
        sources.update(env_sources)
        given = {name: value for name, value in overrides.items() if value is not None}
        code_values = canonical_settings(given, CODE_SOURCE)
        values.update(code_values)
        sources.update(dict.fromkeys(code_values, CODE_SOURCE))
        return cls._build(values, sources)

    @classmethod
    def _build(cls, values: Mapping[str, Any], sources: Mapping[str, str]) -> WorkerConfig:
        # Validation runs in __init__, which reads where each value came from here.
        token = _VALUE_SOURCES.set((sources, DEFAULT_SOURCE))
        try:
            return cls(**{str(name): value for name, value in values.items()})
        finally:
            _VALUE_SOURCES.reset(token)


def _validated(
    given: Mapping[str, Any], sources: Mapping[str, str], fallback: str
) -> dict[str, Any]:
    """Every setting's value, or one :class:`WorkerConfigError` listing every problem."""
    values: dict[str, Any] = {}
    problems: list[WorkerConfigError] = []

    def refuse(field: str, reason: str) -> None:
        problems.append(WorkerConfigError(field, sources.get(field, fallback), reason))

    for name, setting in SETTINGS.items():
        if name not in given:
            values[name] = setting.default_value()
            continue
        try:
            values[name] = setting.parse(given[name])
        except SettingValueError as error:
            refuse(name, str(error))
    for name in given:
        if name not in SETTINGS:
            known = ", ".join(sorted([*SETTINGS, *FIELD_ALIASES]))
            refuse(name, f"unknown setting; the settings are {known}")
    if not problems:
        _resolve_intervals(values, refuse)
    if problems:
        first, *more = problems
        raise WorkerConfigError(first.field, first.source, first.reason, more=more) from None
    return values


def _resolve_intervals(values: dict[str, Any], refuse: Callable[[str, str], None]) -> None:
    """Fill in the intervals derived from the lease, and check the heartbeat against it."""
    lease = values["lease_seconds"]
    heartbeat = values["heartbeat_interval_seconds"]
    if heartbeat is None:
        heartbeat = lease / 3
    elif heartbeat >= lease:
        refuse(
            "heartbeat_interval_seconds",
            f"must be shorter than lease_seconds ({lease:g}), got {heartbeat:g}:"
            " a lease would expire before it is renewed",
        )
        return
    values["heartbeat_interval_seconds"] = heartbeat
    if values["reclaim_interval_seconds"] is None:
        values["reclaim_interval_seconds"] = heartbeat
