"""The one error the demo reports to its user: a paragraph, never a traceback."""

from __future__ import annotations

from pathlib import Path


class DemoError(Exception):
    """Something stopped the demo; ``log`` names the file that tells why, if there is one."""

    def __init__(self, message: str, *, log: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log = log
