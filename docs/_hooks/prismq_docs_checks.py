"""Checks that the hand-written pages name only commands, flags, variables and endpoints
that exist.

* Every ``prismq`` / ``prismq-api`` / ``prismq-worker`` command line, in a code block or
  an inline code span, is walked through the real argparse parser: each subcommand and
  each ``--option`` must exist where it is used.
* Every ``PRISMQ_*`` name must be one the reference documents, or one the repository's
  own tooling reads (``noxfile.py``, ``tests-integration/``).
* Every ``/api/queue/...``, ``/healthz``, ``/readyz`` and ``/metrics`` path must match a
  path of the OpenAPI document.

Each function returns problems as sentences; the hook reports them as build warnings.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path

import prismq_docs_cli as cli

#: Words after which a shell, Dockerfile, compose file or unit file starts a command.
_COMMAND_STARTERS = {
    "&&",
    "||",
    ";",
    "|",
    "(",
    "exec",
    "sudo",
    "nohup",
    "CMD",
    "RUN",
    "ENTRYPOINT",
    "command:",
    "entrypoint:",
    "$",
}
_COMMAND_ENDERS = {"&&", "||", ";", "|", ">", ">>", "<", "&", ")", "2>", "2>&1"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`([^`]+)`")
_VARIABLE = re.compile(r"\bPRISMQ_[A-Z0-9_]+")
_ENDPOINT = re.compile(r"(/api/queue(?:/[A-Za-z0-9_{}.-]+)*|/healthz|/readyz|/metrics)")


def code_lines(markdown: str) -> Iterator[str]:
    """Each logical line of the fenced code blocks (``\\`` continuations joined), and each
    inline code span outside them (a span may run over a line break)."""
    in_block = False
    pending = ""
    paragraph: list[str] = []
    for line in [*markdown.splitlines(), ""]:
        fence = _FENCE.match(line)
        if in_block and not fence:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            yield pending + line
            pending = ""
            continue
        if fence or not line.strip():
            yield from _INLINE_CODE.findall(" ".join(paragraph))
            paragraph = []
        else:
            paragraph.append(line.strip())
        if fence:
            in_block = not in_block
            pending = ""


def _tokens(line: str) -> list[str]:
    """Shell-like words of ``line``; a JSON array (exec form) is read as its items."""
    array = re.search(r"\[\s*\".*\]", line)
    if array:
        try:
            items = json.loads(array.group(0))
        except json.JSONDecodeError:
            items = None
        if isinstance(items, list) and all(isinstance(item, str) for item in items):
            return [str(item) for item in items]
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote: fall back to plain words
        return line.split()


def _program(token: str) -> str | None:
    assigned = _ASSIGNMENT.match(token)
    word = assigned.group(1) if assigned else token
    name = word.rsplit("/", 1)[-1]
    return name if name in cli.PARSER_BUILDERS else None


def commands(line: str) -> Iterator[list[str]]:
    """Every PrismQ command line in ``line``: the program's name and its arguments."""
    tokens = _tokens(line)
    starts = True
    for index, token in enumerate(tokens):
        program = _program(token) if starts else None
        if program is not None:
            arguments = []
            for argument in tokens[index + 1 :]:
                if argument in _COMMAND_ENDERS:
                    break
                arguments.append(argument)
            yield [program, *arguments]
        # Environment assignments in front of a command keep the next word in command position.
        starts = token in _COMMAND_STARTERS or (starts and bool(_ASSIGNMENT.match(token)))


def check_command(words: list[str], parsers: dict[str, argparse.ArgumentParser]) -> Iterator[str]:
    """Problems with one command line: unknown subcommands and options."""
    parser = parsers[words[0]]
    used = [words[0]]
    skip_value = False
    for raw in words[1:]:
        word = raw.strip("[]")
        if skip_value or not word or word == "...":
            skip_value = False
            continue
        if word.startswith("--"):
            flag = word.split("=", 1)[0]
            action = cli.options(parser).get(flag)
            if action is None:
                yield f"`{' '.join(used)}` has no option `{flag}`"
            elif action.nargs != 0 and "=" not in word:
                skip_value = True
            continue
        children = cli.subcommands(parser)
        if not children:
            continue  # a positional argument or a placeholder
        if word in children:
            parser = children[word]
            used.append(word)
        elif re.fullmatch(r"[a-z][a-z-]*", word):
            yield f"`{' '.join(used)}` has no command `{word}`"
            return


def check_commands(markdown: str, parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    """Problems with every PrismQ command line of a page."""
    problems: list[str] = []
    for line in code_lines(markdown):
        for words in commands(line):
            problems += [
                f"{problem} (in: {line.strip()})" for problem in check_command(words, parsers)
            ]
    return problems


def check_variables(markdown: str, known: set[str]) -> list[str]:
    """``PRISMQ_*`` names of a page that nothing reads."""
    named = {name for name in _VARIABLE.findall(markdown) if not name.endswith("_")}
    return [f"unknown environment variable {name}" for name in sorted(named - known)]


def repository_variables(root: Path, places: Iterable[str]) -> set[str]:
    """``PRISMQ_*`` names the repository's code in ``places`` mentions."""
    found: set[str] = set()
    for place in places:
        path = root / place
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                found |= set(_VARIABLE.findall(file.read_text(encoding="utf-8")))
    return {name for name in found if not name.endswith("_")}


def check_endpoints(markdown: str, paths: Iterable[str]) -> list[str]:
    """Endpoint paths of a page that the OpenAPI document does not have."""
    templates = [
        re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p)) + "/?$") for p in paths
    ]
    problems = []
    for path in sorted(set(_ENDPOINT.findall(markdown))):
        if path == "/api/queue":
            continue  # the prefix itself, named in prose
        if not any(template.match(path) for template in templates):
            problems.append(f"no endpoint {path} in the OpenAPI document")
    return problems
