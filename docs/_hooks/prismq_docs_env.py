"""The environment-variable and worker-settings reference, read from the packages' code.

Sources: ``prismq.queue.config`` (the database URL every command shares), the API's
``ApiSettings`` (pydantic-settings), the worker's ``SETTINGS`` table with its
``ENV_VARIABLES`` and the CLI's ``FLAG_OF_FIELD``, and the constants of
``prismq.queue.testing`` (read without importing it: it needs pytest).
"""

from __future__ import annotations

import ast
import enum
import importlib.util
import inspect
import json
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import annotated_types
import prismq_docs_markdown as md
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from prismq.api.settings import ApiSettings, environment_variables
from prismq.queue import QueueDatabase
from prismq.queue.config import DATABASE_URL_ENV, resolve_database_url
from prismq.worker.cli import FLAG_OF_FIELD
from prismq.worker.config import ENV_VARIABLES, WorkerConfig
from prismq.worker.config_settings import SETTINGS, Setting
from prismq.worker.config_sources import FIELD_ALIASES

_BOUNDS: tuple[tuple[type, str, str], ...] = (
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.Le, "le", "≤"),
)


def type_name(annotation: Any) -> str:
    """A reader's name for a settings field's type."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return type_name(args[0])
    if origin is tuple:
        return "list of names"
    if origin is dict or annotation is dict:
        return "JSON object"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(md.code(member.value) for member in annotation)
    names = {str: "text", int: "integer", float: "number", bool: "boolean"}
    return names.get(annotation, md.code(getattr(annotation, "__name__", annotation)))


def bounds(field: FieldInfo) -> str:
    """The numeric bounds pydantic enforces on ``field``, e.g. ``≥ 1, ≤ 1024``."""
    found = []
    for constraint in field.metadata:
        for kind, attribute, sign in _BOUNDS:
            if isinstance(constraint, kind):
                found.append(f"{sign} {md.number(getattr(constraint, attribute))}")
    return ", ".join(found)


def default_of(field: FieldInfo) -> str:
    """``field``'s default as the reader would write it."""
    if field.default is PydanticUndefined:
        factory: Callable[[], Any] | None = field.default_factory  # type: ignore[assignment]
        return _factory_default(factory)
    return _plain_default(field.default, field.description)


def worker_default_of(setting: Setting) -> str:
    """A worker setting's default as the reader would write it."""
    if setting.default_factory is not None:
        return _factory_default(setting.default_factory)
    return _plain_default(setting.default, setting.description)


def worker_bounds(setting: Setting) -> str:
    """The numeric limits of a worker setting, e.g. ``≥ 1, ≤ 1024``."""
    return ", ".join(f"{sign} {md.number(limit)}" for sign, limit in setting.bounds.describe())


def _factory_default(factory: Callable[[], Any] | None) -> str:
    if factory in (dict, list, tuple):
        return md.code(json.dumps(factory() if factory is not None else None))
    return "computed when the worker starts (see meaning)"


def _plain_default(value: Any, description: str | None) -> str:
    if value is None:
        # e.g. the heartbeat interval, which defaults to a third of the lease.
        derived = "; default " in (description or "")
        return "derived from other settings (see meaning)" if derived else "unset"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return md.code(str(value).lower())
    if value == "":
        return md.code('""')
    return md.code(md.number(value))


def core_table() -> str:
    """The variable every command and service of the three packages reads."""
    summary = (resolve_database_url.__doc__ or "").strip().splitlines()[0]
    return md.table(
        ["variable", "read by", "meaning"],
        [
            [
                md.code(DATABASE_URL_ENV),
                "`prismq`, `prismq-api`, `prismq-worker`, `QueueDatabase()`",
                "The database URL when none is given in code or by a flag. "
                f"Resolution order: {md.text(summary)}",
            ]
        ],
    )


def queue_database_table() -> str:
    """The keyword-only options of ``QueueDatabase``, with their defaults."""
    rows = [
        [md.code(name), md.code(repr(parameter.default))]
        for name, parameter in inspect.signature(QueueDatabase).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    return md.table(["keyword", "default"], rows)


def api_table() -> str:
    """Every ``PRISMQ_*`` variable ``ApiSettings`` reads."""
    rows = []
    for (variable, description), field in zip(
        environment_variables().items(), ApiSettings.model_fields.values(), strict=True
    ):
        rows.append(
            [
                md.code(variable),
                type_name(field.annotation),
                default_of(field),
                bounds(field),
                md.text(description),
            ]
        )
    return md.table(["variable", "type", "default", "allowed", "meaning"], rows)


def worker_table() -> str:
    """Every ``WorkerConfig`` setting with its flag, variable and config-file key."""
    variable_of = {field: variable for variable, field in ENV_VARIABLES.items()}
    aliases_of: dict[str, list[str]] = {}
    for alias, field_name in FIELD_ALIASES.items():
        aliases_of.setdefault(field_name, []).append(alias)
    rows = []
    annotations = typing.get_type_hints(WorkerConfig)
    for name, setting in SETTINGS.items():
        keys = [md.code(key) for key in (name, *aliases_of.get(name, []))]
        flag = FLAG_OF_FIELD.get(name)
        variable = variable_of.get(name)
        rows.append(
            [
                " or ".join(keys),
                md.code(flag) if flag else "—",
                md.code(variable) if variable else "—",
                type_name(annotations[name]),
                worker_default_of(setting),
                worker_bounds(setting),
                md.text(setting.description),
            ]
        )
    header = ["setting / file key", "flag", "variable", "type", "default", "allowed", "meaning"]
    return md.table(header, rows)


def _testing_constants() -> dict[str, Any]:
    spec = importlib.util.find_spec("prismq.queue.testing")
    if spec is None or spec.origin is None:
        raise LookupError("prismq.queue.testing is not installed")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.isupper():
                try:
                    constants[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return constants


def testing_table() -> str:
    """The variables of ``prismq.queue.testing``, the fixtures for test suites."""
    constants = _testing_constants()
    backends = ", ".join(md.code(name) for name in constants["BACKENDS"])
    return md.table(
        ["variable", "default", "meaning"],
        [
            [
                md.code(constants["BACKEND_ENV"]),
                md.code(constants["BACKENDS"][0]),
                f"The database the fixtures' tests run on: {backends}.",
            ],
            [
                md.code(constants["POSTGRES_URL_ENV"]),
                md.code(constants["DEFAULT_POSTGRES_URL"]),
                "The PostgreSQL server the fixtures connect to; each test session creates"
                " and drops a database of its own there.",
            ],
        ],
    )


def variables() -> set[str]:
    """Every variable name the tables above document."""
    constants = _testing_constants()
    return {
        DATABASE_URL_ENV,
        *environment_variables(),
        *ENV_VARIABLES,
        constants["BACKEND_ENV"],
        constants["POSTGRES_URL_ENV"],
    }


TABLES: dict[str, Callable[[], str]] = {
    "core": core_table,
    "queue-database": queue_database_table,
    "api": api_table,
    "worker": worker_table,
    "testing": testing_table,
}
