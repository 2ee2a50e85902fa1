"""Statements compiled once and run by the driver itself, below SQLAlchemy's ``execute``.

For the few calls where SQLAlchemy's work per call (about 100 µs) costs as much as the
database's: a single enqueue. The statement is compiled once per dialect, and values go
through the bind and result processing SQLAlchemy would apply to them, so the driver is sent
the same parameters and the caller gets back the same Python values as through ``execute``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Insert

Processor = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class DriverStatement:
    """One statement as the driver's SQL, with what it takes to bind and read it."""

    sql: str
    #: Parameter names in the order of the driver's placeholders; None where the driver
    #: takes parameters by name.
    positions: tuple[str, ...] | None
    #: The values the statement sets itself, already processed.
    fixed: Mapping[str, Any]
    #: Each parameter the caller must give, with its bind processor (None: sent as is).
    bound: Mapping[str, Processor | None]
    #: The result processor of each returned column (None: read as the driver gives it).
    returned: tuple[Processor | None, ...]

    @classmethod
    def compile(cls, statement: Insert, dialect: Dialect) -> DriverStatement:
        """Compile ``statement`` (with RETURNING) for ``dialect``; its parameters without a
        value are the ones :meth:`parameters` takes."""
        compiled = statement.compile(dialect=dialect)
        fixed: dict[str, Any] = {}
        bound: dict[str, Processor | None] = {}
        for name, value in compiled.params.items():
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                bound[name] = process
            else:
                fixed[name] = value if process is None else process(value)
        returned = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.exported_columns
        )
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(str(compiled), positions, fixed, bound, returned)

    def parameters(self, values: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        """The driver's parameters for ``values``, one per name in :attr:`bound`."""
        merged = dict(self.fixed)
        for name, process in self.bound.items():
            value = values[name]
            merged[name] = value if process is None else process(value)
        if self.positions is None:
            return merged
        return tuple(merged[name] for name in self.positions)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """A returned row as ``execute`` would have read it."""
        return tuple(
            value if process is None else process(value)
            for value, process in zip(raw, self.returned, strict=True)
        )
