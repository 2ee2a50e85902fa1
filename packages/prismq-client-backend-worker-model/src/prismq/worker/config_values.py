"""What each kind of worker setting accepts, and the reason given when a value is refused.

Values come from code, from config files (TOML, JSON and YAML give numbers and lists) and
from environment variables (always text), so numbers are also read from their text. A
refused value raises :class:`SettingValueError`, whose message names the problem and
shows the value; :mod:`prismq.worker.config` adds the setting's name and source.

These checks are written out rather than left to a validation library: a worker's
start-up is part of every task it runs first, and importing one cost a fifth of it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

_SHOWN_CHARACTERS = 80
_Number = TypeVar("_Number", int, float)


def number_text(number: float) -> str:
    """A limit or a value as a reader writes it: ``86400``, not ``86400.0`` or ``8.64e+04``."""
    if float(number).is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


class SettingValueError(ValueError):
    """A value a setting cannot take; the message is the reason."""


def shown(value: object) -> str:
    """``value`` as the error message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARACTERS else f"{text[: _SHOWN_CHARACTERS - 3]}..."


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Inclusive (``ge``, ``le``) and exclusive (``gt``) limits of a number."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    def check(self, value: float) -> None:
        """Raise :class:`SettingValueError` unless ``value`` is within the limits."""
        if self.gt is not None and not value > self.gt:
            self._refuse("greater than", self.gt, value)
        if self.ge is not None and not value >= self.ge:
            self._refuse("greater than or equal to", self.ge, value)
        if self.le is not None and not value <= self.le:
            self._refuse("less than or equal to", self.le, value)

    @staticmethod
    def _refuse(relation: str, limit: float, value: float) -> None:
        raise SettingValueError(
            f"input should be {relation} {number_text(limit)}, got {number_text(value)}"
        )

    def describe(self) -> list[tuple[str, float]]:
        """The limits as (sign, number) pairs, for the settings reference."""
        pairs = [(">", self.gt), ("≥", self.ge), ("≤", self.le)]
        return [(sign, limit) for sign, limit in pairs if limit is not None]


def _refuse_boolean(value: object) -> None:
    # A boolean is an int in Python, and True would read as 1: it is always a mistake here.
    if isinstance(value, bool):
        raise SettingValueError(f"must be a number, not a boolean ({value!r})")


def _parsed(text: str, parse: Callable[[str], _Number], article: str, kind: str) -> _Number:
    """``text`` read by ``parse`` as ``article kind`` (``an integer``, ``a number``)."""
    try:
        return parse(text.strip())
    except ValueError:
        raise SettingValueError(
            f"input should be a valid {kind}, unable to parse string as {article} {kind},"
            f" got {shown(text)}"
        ) from None


def as_text(value: object) -> str:
    """A string, as given."""
    if not isinstance(value, str):
        raise SettingValueError(f"input should be a valid string, got {shown(value)}")
    return value


def as_integer(value: object, bounds: Bounds) -> int:
    """An integer: an int, a float without a fractional part, or the text of an integer."""
    _refuse_boolean(value)
    number: int
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise SettingValueError(
                f"input should be a valid integer, got {shown(value)}"
                " (a number with a fractional part)"
            )
        number = int(value)
    elif isinstance(value, str):
        number = _parsed(value, int, "an", "integer")
    else:
        raise SettingValueError(f"input should be a valid integer, got {shown(value)}")
    bounds.check(number)
    return number


def as_number(value: object, bounds: Bounds) -> float:
    """A finite number: an int, a float, or the text of a number."""
    _refuse_boolean(value)
    number: float
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        number = _parsed(value, float, "a", "number")
    else:
        raise SettingValueError(f"input should be a valid number, got {shown(value)}")
    if not math.isfinite(number):
        raise SettingValueError(f"input should be a finite number, got {shown(value)}")
    bounds.check(number)
    return number


def as_optional_number(value: object, bounds: Bounds) -> float | None:
    """None, or what :func:`as_number` accepts."""
    return None if value is None else as_number(value, bounds)


def as_names(value: object) -> tuple[str, ...]:
    """A list or tuple of strings, as a tuple (a lone string is refused, not split)."""
    if not isinstance(value, (list, tuple)):
        raise SettingValueError(f"input should be a valid tuple, got {shown(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise SettingValueError(
                f"item {index}: input should be a valid string, got {shown(item)}"
            )
    return tuple(value)


def as_object(value: object) -> dict[str, Any]:
    """A JSON object (a mapping), as a dict."""
    if not isinstance(value, Mapping):
        raise SettingValueError(f"input should be a valid dictionary, got {shown(value)}")
    return dict(value)
