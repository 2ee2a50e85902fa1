"""Where worker settings come from: a TOML/JSON/YAML file and ``PRISMQ_WORKER_*`` variables.

Each reader returns the settings it found (field names, aliases resolved) and, for each,
its source (the file's path or the variable's name), which ``WorkerConfig`` names in its
errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prismq.worker.errors import HandlerLoadError, WorkerConfigError
from prismq.worker.handler_loader import read_document

#: Environment variable → the :class:`WorkerConfig` field it sets.
ENV_VARIABLES: dict[str, str] = {
    "PRISMQ_WORKER_ID": "worker_id",
    "PRISMQ_WORKER_QUEUES": "queues",
    "PRISMQ_WORKER_STRATEGY": "scheduling_strategy",
    "PRISMQ_WORKER_CONCURRENCY": "concurrency",
    "PRISMQ_WORKER_LEASE_SECONDS": "lease_seconds",
    "PRISMQ_WORKER_POLL_INTERVAL": "poll_interval_seconds",
    "PRISMQ_WORKER_HEARTBEAT_INTERVAL": "heartbeat_interval_seconds",
    "PRISMQ_WORKER_RECLAIM_INTERVAL": "reclaim_interval_seconds",
    "PRISMQ_WORKER_SHUTDOWN_GRACE": "shutdown_grace_seconds",
    "PRISMQ_WORKER_CAPABILITIES": "capabilities",
    "PRISMQ_WORKER_DATABASE_URL": "database_url",
}

#: Alternative spellings accepted for a field (in code, files and overrides).
FIELD_ALIASES: dict[str, str] = {"strategy": "scheduling_strategy"}

#: Source name of values given in code (constructor arguments, ``load`` overrides).
CODE_SOURCE = "code"
#: Source name of values nobody gave.
DEFAULT_SOURCE = "default"

_CONFIG_FILE_FIELD = "config_file"


def canonical_settings(raw: Mapping[Any, Any], source: str) -> dict[str, Any]:
    """``raw`` with aliases replaced by field names; an alias and its field together fail."""
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        name = FIELD_ALIASES.get(str(key), str(key))
        if name in settings:
            raise WorkerConfigError(
                name, source, f"given twice (as {name!r} and as its alias {key!r})"
            )
        settings[name] = value
    return settings


def settings_from_file(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings of a config file and, for each, the file as its source."""
    source = str(path)
    try:
        document = read_document(path)
    except HandlerLoadError as error:
        raise WorkerConfigError(_CONFIG_FILE_FIELD, source, error.reason) from None
    if document is None:  # an empty YAML file
        document = {}
    if not isinstance(document, Mapping):
        raise WorkerConfigError(
            _CONFIG_FILE_FIELD,
            source,
            f"expected a table/object of settings, not {type(document).__name__}",
        )
    # The handler list may share the file; it belongs to the handler loader.
    section = {key: value for key, value in document.items() if key != "handlers"}
    if "worker" in section:
        stray = sorted(str(key) for key in section if key != "worker")
        if stray:
            raise WorkerConfigError(
                stray[0],
                source,
                "settings belong under the 'worker' table when the file has one",
            )
        section = section["worker"]
        if not isinstance(section, Mapping):
            raise WorkerConfigError(
                "worker", source, f"must be a table/object, not {type(section).__name__}"
            )
    values = canonical_settings(section, source)
    return values, dict.fromkeys(values, source)


def settings_from_env(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings given by ``PRISMQ_WORKER_*`` variables and, for each, its variable."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for variable, field in ENV_VARIABLES.items():
        raw = environ.get(variable)
        if raw is None or not raw.strip():
            continue
        values[field] = _parse_env_value(variable, field, raw)
        sources[field] = variable
    return values, sources


def _parse_env_value(variable: str, field: str, raw: str) -> Any:
    """Turn one variable's text into what the field expects (numbers parse in validation)."""
    if field == "queues":
        return tuple(name.strip() for name in raw.split(",") if name.strip())
    if field == "capabilities":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise WorkerConfigError(field, variable, f"is not valid JSON: {error}") from None
    return raw.strip()
