"""Reading JSON columns on the hot path: fetched as text, decoded here.

The claim returns each task's ``payload`` and ``compatibility``. Through the columns' JSON
type every value takes the driver's and SQLAlchemy's processing layers to reach
``json.loads``; read as text it takes one decode, and none at all for ``{}``, which most
tasks' requirements (and many payloads) are.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Text, cast

_decode = json.JSONDecoder().decode


def as_text(column: ColumnElement[Any]) -> ColumnElement[str]:
    """``column`` (a JSON column) as its JSON text, the same on every backend."""
    return cast(column, Text)


def decode_object(text: str) -> dict[str, Any]:
    """A JSON object read by :func:`as_text` (PrismQ stores objects only in these columns)."""
    if text == "{}":
        return {}
    value: dict[str, Any] = _decode(text)
    return value
