"""Small Markdown writers shared by the generated reference sections."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_CODE_SPAN = re.compile(r"(`[^`]*`)")
#: Words of help texts that are code: ``$VARIABLES``, ``PRISMQ_*`` prefixes and ``--flags``.
_CODE_WORD = re.compile(r"(?<![\w`-])(\$?[A-Z][A-Z0-9]*_[A-Z0-9_]*\*?|--[a-z][a-z0-9-]*)")
_ESCAPES = str.maketrans(
    {"<": "&lt;", ">": "&gt;", "|": "\\|", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]"}
)


def text(value: str) -> str:
    """``value`` as Markdown prose: code spans kept, everything else literal, on one line.

    reStructuredText's double backticks become code spans, and so do environment
    variables and ``--flags`` named in passing.
    """
    one_line = " ".join(value.replace("``", "`").split())
    pieces: list[str] = []
    for part in _CODE_SPAN.split(one_line):
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            pieces.append(part)
            continue
        for index, chunk in enumerate(_CODE_WORD.split(part)):
            # split() with one group alternates: text, code word, text, ...
            pieces.append(f"`{chunk}`" if index % 2 else chunk.translate(_ESCAPES))
    return "".join(pieces)


def code(value: object) -> str:
    """``value`` as an inline code span, whatever backticks it holds.

    Pipes need no escape: the tables extension does not split cells inside code spans.
    """
    shown = str(value)
    fence = "``" if "`" in shown else "`"
    padding = " " if "`" in shown else ""
    return f"{fence}{padding}{shown}{padding}{fence}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; cells must already be Markdown (see :func:`text`, :func:`code`)."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def slug(value: str) -> str:
    """An HTML id made of ``value``'s letters, digits, dashes and underscores."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-").lower()


def number(value: object) -> str:
    """A number as people write it: ``31622400``, not ``3.16224e+07``; ``0.05`` stays."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
