"""The task handler registry: which function runs which task type.

Handlers are plain callables, sync or ``async``, taking either ``(payload)`` or
``(payload, ctx)``; which of the two is decided once, at registration, from the signature.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prismq.queue.tables import MAX_TYPE_LENGTH
from prismq.queue.validation import check_name
from prismq.worker.errors import (
    HandlerAlreadyRegisteredError,
    HandlerLoadError,
    TaskHandlerNotRegisteredError,
)

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])

DEFAULT_HANDLER_VERSION = "1.0.0"


@dataclass(frozen=True, kw_only=True)
class HandlerInfo:
    """A registered handler and how the worker must call it."""

    task_type: str
    handler: Callable[..., Any]
    description: str
    version: str
    #: True when calling the handler returns an awaitable (``async def``, also wrapped).
    is_async: bool
    #: True when the handler is called as ``handler(payload, ctx)``, else ``handler(payload)``.
    takes_context: bool

    @classmethod
    def describe(
        cls,
        task_type: str,
        handler: Callable[..., Any],
        *,
        description: str = "",
        version: str = DEFAULT_HANDLER_VERSION,
    ) -> HandlerInfo:
        """Validate a handler for ``task_type`` and work out how to call it.

        Raises :class:`~prismq.queue.errors.InvalidTaskError` for a bad task type and
        :class:`TypeError` for a handler that is not callable with one or two positional
        arguments.
        """
        task_type = check_task_type(task_type)
        if not callable(handler):
            raise TypeError(
                f"handler for task type {task_type!r} must be callable,"
                f" not {type(handler).__name__}"
            )
        if not isinstance(description, str):
            raise TypeError(f"description of task type {task_type!r} must be a string")
        if not isinstance(version, str) or not version.strip():
            raise TypeError(f"version of task type {task_type!r} must be a non-empty string")
        return cls(
            task_type=task_type,
            handler=handler,
            description=description,
            version=version,
            is_async=is_async_callable(handler),
            takes_context=_takes_context(task_type, handler),
        )


def check_task_type(task_type: object) -> str:
    """A task type under the core's rule: a non-empty string of at most 200 characters."""
    return check_name("task_type", task_type, MAX_TYPE_LENGTH)


def is_async_callable(handler: object) -> bool:
    """Whether calling ``handler`` returns a coroutine.

    Sees through :func:`functools.partial` and recognises objects whose ``__call__`` is
    ``async def``, which :func:`inspect.iscoroutinefunction` alone does not.
    """
    while isinstance(handler, functools.partial):
        handler = handler.func
    if inspect.iscoroutinefunction(handler):
        return True
    if inspect.isroutine(handler) or inspect.isclass(handler):
        return False
    call = getattr(handler, "__call__", None)  # noqa: B004 - we inspect the method itself
    return call is not None and inspect.iscoroutinefunction(call)


def _accepts_positional(signature: inspect.Signature, count: int) -> bool:
    """Whether a call with exactly ``count`` positional arguments binds to ``signature``."""
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _accepts_positional_call(function: Callable[..., Any], count: int) -> bool:
    """Whether ``function`` can be called with ``count`` positional arguments, if known."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return True  # unknown: let the call itself tell
    return _accepts_positional(signature, count)


def _takes_context(task_type: str, handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` is to be called with ``(payload, ctx)`` rather than ``(payload)``."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        # Some builtins expose no signature; calling them with the payload alone is the
        # only call that makes sense without one.
        return False
    if _accepts_positional(signature, 2):
        return True
    if _accepts_positional(signature, 1):
        return False
    raise TypeError(
        f"handler for task type {task_type!r} must accept (payload) or (payload, ctx)"
        f" as positional arguments; its signature is {signature}"
    )


class TaskHandlerRegistry:
    """Thread-safe mapping of task types to their handlers."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._handlers: dict[str, HandlerInfo] = {}

    def register_handler(
        self,
        task_type: str,
        handler: Callable[..., Any],
        *,
        description: str = "",
        version: str = DEFAULT_HANDLER_VERSION,
        allow_override: bool = False,
    ) -> HandlerInfo:
        """Register ``handler`` for ``task_type``; an existing one is replaced only on request.

        Raises :class:`HandlerAlreadyRegisteredError` when the type has a handler and
        ``allow_override`` is False.
        """
        info = HandlerInfo.describe(task_type, handler, description=description, version=version)
        self.register_infos([info], allow_override=allow_override)
        return info

    def register_infos(
        self, infos: Sequence[HandlerInfo], *, allow_override: bool = False
    ) -> list[str]:
        """Register several described handlers at once: all of them or, on error, none.

        Build each with :meth:`HandlerInfo.describe`. Returns the task types registered.
        """
        task_types = [info.task_type for info in infos]
        seen: set[str] = set()
        for task_type in task_types:
            if task_type in seen:
                raise ValueError(f"task type {task_type!r} is given twice in one batch")
            seen.add(task_type)
        with self._lock:
            if not allow_override:
                for task_type in task_types:
                    if task_type in self._handlers:
                        raise HandlerAlreadyRegisteredError(task_type)
            for info in infos:
                self._handlers[info.task_type] = info
        return task_types

    def unregister_handler(self, task_type: str) -> bool:
        """Remove the handler of ``task_type``; False when there was none."""
        with self._lock:
            return self._handlers.pop(task_type, None) is not None

    def get_handler(self, task_type: str) -> Callable[..., Any]:
        """The handler of ``task_type``; raises :class:`TaskHandlerNotRegisteredError`."""
        return self.get_handler_info(task_type).handler

    def get_handler_info(self, task_type: str) -> HandlerInfo:
        """Everything known about the handler of ``task_type``.

        Raises :class:`TaskHandlerNotRegisteredError` when there is none.
        """
        # No lock: one dict read is atomic, and this runs once per task in every handler
        # thread, where a contended lock would make them queue behind each other.
        info = self._handlers.get(task_type)
        if info is None:
            with self._lock:
                raise TaskHandlerNotRegisteredError(task_type, list(self._handlers))
        return info

    def is_registered(self, task_type: str) -> bool:
        """Whether ``task_type`` has a handler."""
        with self._lock:
            return task_type in self._handlers

    def get_registered_types(self) -> list[str]:
        """The task types with a handler, sorted."""
        with self._lock:
            return sorted(self._handlers)

    def __len__(self) -> int:
        with self._lock:
            return len(self._handlers)

    def __contains__(self, task_type: object) -> bool:
        with self._lock:
            return task_type in self._handlers

    def __iter__(self) -> Iterator[HandlerInfo]:
        """The registered handlers sorted by task type (a snapshot: safe while others register)."""
        with self._lock:
            snapshot = [self._handlers[name] for name in sorted(self._handlers)]
        return iter(snapshot)

    def __repr__(self) -> str:
        return f"TaskHandlerRegistry({self.get_registered_types()!r})"

    def handler(
        self,
        task_type: str,
        *,
        description: str = "",
        version: str = DEFAULT_HANDLER_VERSION,
        allow_override: bool = False,
    ) -> Callable[[HandlerT], HandlerT]:
        """Decorator form of :meth:`register_handler`; returns the function unchanged."""

        def register(function: HandlerT) -> HandlerT:
            self.register_handler(
                task_type,
                function,
                description=description,
                version=version,
                allow_override=allow_override,
            )
            return function

        return register

    def load_file(self, path: str | Path, *, allow_override: bool = False) -> list[str]:
        """Register every handler listed in a TOML/JSON/YAML handler file (all or nothing).

        Raises :class:`HandlerLoadError` naming the file and the faulty entry.
        """
        # Imported here because the loader builds on this module, not the other way round.
        from prismq.worker.handler_loader import TaskHandlerConfigLoader  # noqa: PLC0415

        return TaskHandlerConfigLoader().register_all(path, self, allow_override=allow_override)


def _import_module(source: str, module_name: str) -> Any:
    """Import ``module_name``, turning every failure into a :class:`HandlerLoadError`."""
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise HandlerLoadError(source, f"cannot import module {module_name!r}: {error}") from error
    except Exception as error:
        raise HandlerLoadError(
            source,
            f"importing module {module_name!r} raised {type(error).__name__}: {error}",
        ) from error


def _get_attribute(source: str, module: Any, module_name: str, attribute_path: str) -> Any:
    """Follow a dotted ``attribute_path`` from ``module``."""
    value = module
    for part in attribute_path.split("."):
        try:
            value = getattr(value, part)
        except AttributeError as error:
            raise HandlerLoadError(
                source, f"module {module_name!r} has no attribute {attribute_path!r}"
            ) from error
    return value


def import_object(spec: str) -> Any:
    """The object named by ``"package.module:attribute"`` (the attribute may be dotted).

    Raises :class:`HandlerLoadError` naming the spec and why it could not be resolved.
    """
    module_name, separator, attribute_path = spec.partition(":")
    module_name, attribute_path = module_name.strip(), attribute_path.strip()
    if not separator or not module_name or not attribute_path:
        raise HandlerLoadError(spec, "expected 'package.module:attribute'")
    module = _import_module(spec, module_name)
    return _get_attribute(spec, module, module_name, attribute_path)


def load_registry(spec: str) -> TaskHandlerRegistry:
    """Resolve ``"package.module:attribute"`` to a :class:`TaskHandlerRegistry`.

    The attribute is a registry or a zero-argument callable returning one. Raises
    :class:`HandlerLoadError` naming the spec when the module or attribute is missing or
    the object is not a registry.
    """
    target = import_object(spec)
    if isinstance(target, TaskHandlerRegistry):
        return target
    if not callable(target):
        raise HandlerLoadError(
            spec,
            f"expected a TaskHandlerRegistry or a function returning one,"
            f" got {type(target).__name__}",
        )
    if not _accepts_positional_call(target, 0):
        raise HandlerLoadError(
            spec,
            "expected a TaskHandlerRegistry or a zero-argument function returning one;"
            f" {getattr(target, '__name__', type(target).__name__)} takes arguments",
        )
    try:
        registry = target()
    except Exception as error:
        raise HandlerLoadError(
            spec, f"calling it raised {type(error).__name__}: {error}"
        ) from error
    if not isinstance(registry, TaskHandlerRegistry):
        raise HandlerLoadError(
            spec, f"expected it to return a TaskHandlerRegistry, got {type(registry).__name__}"
        )
    return registry


def merge_registries(registries: Iterable[TaskHandlerRegistry]) -> TaskHandlerRegistry:
    """A new registry holding the handlers of all ``registries``.

    Raises :class:`HandlerAlreadyRegisteredError` when two of them handle the same type.
    """
    merged = TaskHandlerRegistry()
    origin: dict[str, int] = {}
    for index, registry in enumerate(registries):
        for info in registry:
            if info.task_type in origin:
                raise HandlerAlreadyRegisteredError(
                    info.task_type,
                    reason=f"registries #{origin[info.task_type]} and #{index} both handle it",
                )
            origin[info.task_type] = index
            merged.register_infos([info])
    return merged
