"""Loading task handlers from a TOML, JSON or YAML file.

A handler file lists ``{task_type, module, function}`` entries (plus optional
``description`` and ``version``)::

    [[handlers]]
    task_type = "resize_image"
    module = "app.imaging"
    function = "resize"

JSON and YAML files hold the same ``handlers`` list, or the bare list itself. Every problem
is reported as a :class:`~prismq.worker.errors.HandlerLoadError` naming the file and the
entry (its task type, or its 0-based index when it has no usable task type).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from prismq.queue.errors import InvalidTaskError
from prismq.worker.errors import HandlerLoadError
from prismq.worker.registry import (
    DEFAULT_HANDLER_VERSION,
    HandlerInfo,
    TaskHandlerRegistry,
    check_task_type,
    import_object,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

#: File suffixes understood by :func:`read_document`, and the format each one means.
DOCUMENT_FORMATS: dict[str, str] = {
    ".toml": "TOML",
    ".json": "JSON",
    ".yaml": "YAML",
    ".yml": "YAML",
}

_REQUIRED_KEYS = ("task_type", "module", "function")
_OPTIONAL_KEYS = ("description", "version")


def read_document(path: str | Path) -> Any:
    """Parse a TOML, JSON or YAML file, chosen by its suffix.

    Raises :class:`HandlerLoadError` (source: the path) for an unsupported suffix, a file
    that cannot be read, or invalid syntax, with the parser's own message.
    """
    source = str(path)
    suffix = Path(path).suffix.lower()
    document_format = DOCUMENT_FORMATS.get(suffix)
    if document_format is None:
        supported = ", ".join(DOCUMENT_FORMATS)
        raise HandlerLoadError(
            source, f"unsupported file type {suffix or '(none)'!r}; expected one of {supported}"
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HandlerLoadError(source, f"cannot read file: {_describe_read_error(error)}") from None
    try:
        if document_format == "TOML":
            return tomllib.loads(text)
        if document_format == "JSON":
            return json.loads(text)
        return _parse_yaml(source, text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        message = _describe_syntax_error(error)
        raise HandlerLoadError(source, f"invalid {document_format}: {message}") from None


def _parse_yaml(source: str, text: str) -> Any:
    # Imported here: most workers read no YAML, and the import is a noticeable part of
    # every worker's start-up.
    import yaml  # noqa: PLC0415

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        message = _describe_syntax_error(error)
        raise HandlerLoadError(source, f"invalid YAML: {message}") from None


def _describe_syntax_error(error: Exception) -> str:
    """The parser's message on one line; YAML's own is multi-line with a source excerpt."""
    import yaml  # noqa: PLC0415 - already imported when a YAML error is described

    if isinstance(error, yaml.MarkedYAMLError) and error.problem and error.problem_mark:
        mark = error.problem_mark
        context = f"{error.context}: " if error.context else ""
        return f"{context}{error.problem} (at line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(error).split())


def _describe_read_error(error: OSError | UnicodeDecodeError) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


@dataclass(frozen=True, kw_only=True)
class HandlerSpec:
    """One entry of a handler file: which function handles which task type."""

    task_type: str
    module: str
    function: str
    description: str = ""
    version: str = DEFAULT_HANDLER_VERSION

    @property
    def import_path(self) -> str:
        """The handler as ``"module:function"``."""
        return f"{self.module}:{self.function}"


class TaskHandlerConfigLoader:
    """Reads handler files and registers the handlers they name."""

    def load(self, path: str | Path) -> list[HandlerSpec]:
        """The validated entries of the handler file at ``path``, in file order."""
        source = str(path)
        entries = _handler_entries(source, read_document(path))
        specs: list[HandlerSpec] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            spec = _parse_entry(source, index, entry)
            if spec.task_type in seen:
                raise HandlerLoadError(
                    source, "task type is listed more than once", entry=spec.task_type
                )
            seen.add(spec.task_type)
            specs.append(spec)
        return specs

    def resolve(self, spec: HandlerSpec, *, source: str | None = None) -> Callable[..., Any]:
        """Import the handler function that ``spec`` names.

        ``function`` may be dotted (``"Class.method"`` resolves the attribute of the class,
        which suits static and class methods). Raises :class:`HandlerLoadError` naming
        ``source`` (default: ``"module:function"``) and the entry's task type.
        """
        where = source if source is not None else spec.import_path
        try:
            handler = import_object(spec.import_path)
        except HandlerLoadError as error:
            raise HandlerLoadError(where, error.reason, entry=spec.task_type) from error
        if not callable(handler):
            raise HandlerLoadError(
                where,
                f"{spec.import_path} is a {type(handler).__name__}, not a callable",
                entry=spec.task_type,
            )
        return cast("Callable[..., Any]", handler)

    def register_all(
        self,
        path: str | Path,
        registry: TaskHandlerRegistry,
        *,
        allow_override: bool = False,
    ) -> list[str]:
        """Register every handler of the file into ``registry``; returns their task types.

        All or nothing: every entry is validated and imported, and every task type checked
        against the registry, before any handler is registered.
        """
        source = str(path)
        infos: list[HandlerInfo] = []
        for spec in self.load(path):
            handler = self.resolve(spec, source=source)
            try:
                info = HandlerInfo.describe(
                    spec.task_type, handler, description=spec.description, version=spec.version
                )
            except TypeError as error:
                raise HandlerLoadError(source, str(error), entry=spec.task_type) from error
            infos.append(info)
        if not allow_override:
            for info in infos:
                if registry.is_registered(info.task_type):
                    raise HandlerLoadError(
                        source,
                        "a handler is already registered for this task type;"
                        " pass allow_override=True to replace it",
                        entry=info.task_type,
                    )
        # register_infos re-checks under the registry's lock, so a handler registered
        # concurrently since the check above still cannot be overwritten silently.
        return registry.register_infos(infos, allow_override=allow_override)


def _handler_entries(source: str, document: Any) -> list[Any]:
    """The list of entries: ``document["handlers"]`` or, for JSON/YAML, a bare list."""
    if isinstance(document, list):
        return document
    if isinstance(document, Mapping):
        if "handlers" not in document:
            raise HandlerLoadError(source, "no 'handlers' list found at the top level")
        entries = document["handlers"]
        if not isinstance(entries, list):
            raise HandlerLoadError(
                source, f"'handlers' must be a list of tables, not {type(entries).__name__}"
            )
        return entries
    raise HandlerLoadError(
        source,
        f"expected a 'handlers' list (or a bare list of handlers), not {type(document).__name__}",
    )


def _parse_entry(source: str, index: int, entry: Any) -> HandlerSpec:
    """Validate one raw entry into a :class:`HandlerSpec`."""
    if not isinstance(entry, Mapping):
        raise HandlerLoadError(
            source,
            f"must be a table/object with task_type, module and function,"
            f" not {type(entry).__name__}",
            entry=index,
        )
    raw_type = entry.get("task_type")
    # Name the entry by its task type when it has a usable one, else by its position.
    entry_name: str | int = raw_type if isinstance(raw_type, str) and raw_type else index
    unknown = sorted(str(key) for key in entry if key not in _REQUIRED_KEYS + _OPTIONAL_KEYS)
    if unknown:
        allowed = ", ".join(_REQUIRED_KEYS + _OPTIONAL_KEYS)
        raise HandlerLoadError(
            source,
            f"unknown key(s) {', '.join(map(repr, unknown))}; allowed keys are {allowed}",
            entry=entry_name,
        )
    for key in _REQUIRED_KEYS:
        if key not in entry:
            raise HandlerLoadError(source, f"missing required key {key!r}", entry=entry_name)
    values: dict[str, str] = {}
    for key in _REQUIRED_KEYS + _OPTIONAL_KEYS:
        if key not in entry:
            continue
        value = entry[key]
        if not isinstance(value, str):
            raise HandlerLoadError(
                source, f"{key!r} must be a string, not {type(value).__name__}", entry=entry_name
            )
        if key in _REQUIRED_KEYS and not value.strip():
            raise HandlerLoadError(source, f"{key!r} must not be empty", entry=entry_name)
        values[key] = value
    try:
        check_task_type(values["task_type"])
    except InvalidTaskError as error:
        raise HandlerLoadError(source, str(error), entry=entry_name) from error
    return HandlerSpec(**values)
