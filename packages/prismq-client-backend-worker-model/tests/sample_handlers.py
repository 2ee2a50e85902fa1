"""Handlers and registries that the registry and handler-file tests import by name."""

from __future__ import annotations

from typing import Any

from prismq.worker.registry import TaskHandlerRegistry

registry = TaskHandlerRegistry()


@registry.handler("sample.echo", description="returns its payload")
def echo(payload: dict[str, Any]) -> dict[str, Any]:
    """Return the payload unchanged."""
    return payload


def add(payload: dict[str, Any], ctx: object) -> int:
    """Add the payload's ``a`` and ``b``; takes the context too."""
    return int(payload["a"]) + int(payload["b"])


async def fetch(payload: dict[str, Any]) -> str:
    """An async handler."""
    return str(payload.get("url", ""))


def needs_three(payload: dict[str, Any], ctx: object, extra: object) -> None:
    """Cannot be a handler: it needs three positional arguments."""


NOT_CALLABLE = 42


class Tools:
    """Handlers reached through a dotted ``function`` path."""

    @staticmethod
    def shout(payload: dict[str, Any]) -> str:
        """Upper-case the payload's ``text``."""
        return str(payload.get("text", "")).upper()


class Namespace:
    """An attribute path to a registry: ``sample_handlers:Namespace.registry``."""

    registry = TaskHandlerRegistry()


def make_registry() -> TaskHandlerRegistry:
    """A registry factory, as ``--handlers sample_handlers:make_registry`` would name it."""
    made = TaskHandlerRegistry()
    made.register_handler("sample.add", add)
    return made


def make_nothing() -> None:
    """A factory that forgets to return its registry."""


def make_broken() -> TaskHandlerRegistry:
    """A factory that fails."""
    raise RuntimeError("database of handlers is down")
