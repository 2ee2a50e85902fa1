"""Worker settings: from code, a TOML/JSON/YAML file and ``PRISMQ_WORKER_*`` variables.

Precedence in :meth:`WorkerConfig.load`: explicit overrides (code, command-line flags) over
environment variables over the config file over the defaults. Every invalid value raises
:class:`~prismq.worker.errors.WorkerConfigError` naming the setting and where it came from.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from prismq.queue import SchedulingStrategy
from prismq.queue.errors import InvalidTaskError, UnknownStrategyError
from prismq.queue.validation import check_json_value, check_name, check_queue
from prismq.worker.config_sources import (
    CODE_SOURCE,
    DEFAULT_SOURCE,
    ENV_VARIABLES,
    FIELD_ALIASES,
    canonical_settings,
    settings_from_env,
    settings_from_file,
)
from prismq.worker.errors import WorkerConfigError

# CODE_SOURCE and ENV_VARIABLES are re-exported: the CLI and the docs read them from here.
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

MAX_WORKER_ID_LENGTH = 200
MAX_CONCURRENCY = 1024
MAX_LEASE_SECONDS = 86_400.0

_NUMERIC_FIELDS = (
    "concurrency",
    "lease_seconds",
    "poll_interval_seconds",
    "heartbeat_interval_seconds",
    "reclaim_interval_seconds",
    "shutdown_grace_seconds",
)


def default_worker_id() -> str:
    """``<hostname>-<pid>``: unique per process on a host, recognisable in the workers list."""
    return f"{socket.gethostname()}-{os.getpid()}"[:MAX_WORKER_ID_LENGTH]


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


class _CrossFieldError(ValueError):
    """A check across fields failed; names the field to blame in the error report."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class WorkerConfig(BaseModel):
    """How one worker process runs: identity, queues, strategy, concurrency and timings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str = Field(
        default_factory=default_worker_id,
        description="Unique id of this worker; default <hostname>-<pid>.",
    )
    queues: tuple[str, ...] | None = Field(
        default=None, description="Queues to claim from; None for every queue."
    )
    scheduling_strategy: SchedulingStrategy = Field(
        default=SchedulingStrategy.PRIORITY,
        validation_alias=AliasChoices("scheduling_strategy", "strategy"),
        description="Order in which eligible tasks are claimed (alias: strategy).",
    )
    concurrency: int = Field(
        default=4, ge=1, le=MAX_CONCURRENCY, description="Handlers run at the same time."
    )
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=MAX_LEASE_SECONDS,
        allow_inf_nan=False,
        description="How long a claimed task stays leased without a renewal.",
    )
    poll_interval_seconds: float = Field(
        # A safety net: the database's wake-up hint and the next delayed task's due time
        # end an idle wait sooner. Each look costs a cold start of the worker's whole
        # working set, so an idle worker looks rarely (a look each second was 3 % of a core).
        default=5.0,
        gt=0,
        allow_inf_nan=False,
        description="The longest an idle worker waits before looking for tasks again.",
    )
    heartbeat_interval_seconds: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="How often leases and the heartbeat are renewed; default lease_seconds/3.",
    )
    reclaim_interval_seconds: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="How often expired leases are reclaimed; default the heartbeat interval.",
    )
    shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        allow_inf_nan=False,
        description="How long running handlers may finish after a stop signal.",
    )
    capabilities: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON object matched against the tasks' compatibility requirements.",
    )
    database_url: str | None = Field(
        default=None,
        description="Database URL; None for $PRISMQ_DATABASE_URL or the per-user SQLite file.",
    )

    def __init__(self, **data: Any) -> None:
        """Settings given in code; invalid ones raise :class:`WorkerConfigError`."""
        sources, fallback = _VALUE_SOURCES.get()
        strategy_source = sources.get("scheduling_strategy", fallback)
        data = canonical_settings(data, strategy_source)
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise _translate(error, sources, fallback=fallback) from None

    # -- field checks --------------------------------------------------------------------

    @field_validator("worker_id")
    @classmethod
    def _check_worker_id(cls, value: str) -> str:
        return _core_check(check_name, "worker_id", value, MAX_WORKER_ID_LENGTH)

    @field_validator("queues")
    @classmethod
    def _check_queues(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must name at least one queue, or be omitted for every queue")
        for name in value:
            _core_check(check_queue, name)
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"lists {', '.join(map(repr, duplicates))} more than once")
        return value

    @field_validator("scheduling_strategy", mode="before")
    @classmethod
    def _parse_strategy(cls, value: object) -> SchedulingStrategy:
        if isinstance(value, (str, SchedulingStrategy)):
            try:
                return SchedulingStrategy.parse(value)
            except UnknownStrategyError as error:
                raise ValueError(str(error)) from None
        names = ", ".join(strategy.value for strategy in SchedulingStrategy)
        raise ValueError(f"must be one of {names}, not {type(value).__name__}")

    @field_validator(*_NUMERIC_FIELDS, mode="before")
    @classmethod
    def _refuse_booleans(cls, value: object) -> object:
        # pydantic reads True as 1; a boolean here is always a mistake.
        if isinstance(value, bool):
            raise ValueError(f"must be a number, not a boolean ({value!r})")
        return value

    @field_validator("capabilities")
    @classmethod
    def _check_capabilities(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            check_json_value("capabilities", value)
        except InvalidTaskError as error:
            raise ValueError(error.message) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must not be empty (omit it to use the default database)")
        try:
            make_url(value)
        except ArgumentError as error:
            raise ValueError(f"is not a database URL: {error}") from None
        return value

    @model_validator(mode="after")
    def _resolve_intervals(self) -> WorkerConfig:
        heartbeat = self.heartbeat_interval_seconds
        if heartbeat is None:
            heartbeat = self.lease_seconds / 3
        elif heartbeat >= self.lease_seconds:
            raise _CrossFieldError(
                "heartbeat_interval_seconds",
                f"must be shorter than lease_seconds ({self.lease_seconds:g}),"
                f" got {heartbeat:g}: a lease would expire before it is renewed",
            )
        reclaim = self.reclaim_interval_seconds
        if reclaim is None:
            reclaim = heartbeat
        # The model is frozen; filling in derived defaults during validation is the one
        # place where setting a field is legitimate.
        object.__setattr__(self, "heartbeat_interval_seconds", heartbeat)
        object.__setattr__(self, "reclaim_interval_seconds", reclaim)
        return self

    # -- derived values ------------------------------------------------------------------

    @property
    def heartbeat_interval(self) -> float:
        """The resolved heartbeat interval in seconds (never None after validation)."""
        assert self.heartbeat_interval_seconds is not None  # resolved by the validator
        return self.heartbeat_interval_seconds

    @property
    def reclaim_interval(self) -> float:
        """The resolved reclaim interval in seconds (never None after validation)."""
        assert self.reclaim_interval_seconds is not None  # resolved by the validator
        return self.reclaim_interval_seconds

    def model_dump_public(self) -> dict[str, Any]:
        """The settings as JSON-ready values, the database password masked: safe to log."""
        data = self.model_dump(mode="json")
        if self.database_url is not None:
            data["database_url"] = hide_password(self.database_url)
        return data

    def __repr_args__(self) -> Any:
        # repr() ends up in logs and tracebacks: never show the database password there.
        for name, value in super().__repr_args__():
            if name == "database_url" and isinstance(value, str):
                yield name, hide_password(value)
            else:
                yield name, value

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


def _core_check(check: Callable[..., str], *args: Any) -> str:
    """Run a core validation helper, re-raised as the plain ValueError pydantic reports."""
    try:
        return check(*args)
    except InvalidTaskError as error:
        raise ValueError(error.message) from None


def _translate(
    error: ValidationError, sources: Mapping[str, str], *, fallback: str
) -> WorkerConfigError:
    """One :class:`WorkerConfigError` for all of pydantic's errors, first error in front."""
    problems = [_problem(details, sources, fallback) for details in error.errors()]
    first, *more = problems
    return WorkerConfigError(first.field, first.source, first.reason, more=more)


def _problem(details: ErrorDetails, sources: Mapping[str, str], fallback: str) -> WorkerConfigError:
    """One pydantic error as a :class:`WorkerConfigError` naming its field and source."""
    location = details["loc"]
    field = str(location[0]) if location else ""
    context = details.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, _CrossFieldError):
        field = cause.field
    canonical = FIELD_ALIASES.get(field, field)
    source = sources.get(canonical, fallback)
    return WorkerConfigError(field or "worker", source, _reason(details, cause))


def _reason(details: ErrorDetails, cause: object) -> str:
    """A readable reason: the validator's own message, or pydantic's plus the input."""
    if details["type"] == "extra_forbidden":
        known = ", ".join(sorted([*WorkerConfig.model_fields, *FIELD_ALIASES]))
        return f"unknown setting; the settings are {known}"
    if isinstance(cause, ValueError):
        reason = str(cause)
    else:
        reason = f"{details['msg'][:1].lower()}{details['msg'][1:]}, got {_show(details)}"
    item = [str(part) for part in details["loc"][1:]]
    return f"item {'.'.join(item)}: {reason}" if item else reason


def _show(details: ErrorDetails) -> str:
    text = repr(details.get("input"))
    return text if len(text) <= 80 else f"{text[:77]}..."
