"""The command-line reference, read from the argparse parsers of the three commands."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator

import prismq_docs_markdown as md

from prismq.queue.config import default_sqlite_path

#: Each command and the function of its package that builds its parser.
PARSER_BUILDERS: dict[str, str] = {
    "prismq": "prismq.queue.cli:build_parser",
    "prismq-api": "prismq.api.cli:build_parser",
    "prismq-worker": "prismq.worker.cli:build_parser",
}

#: Help texts name the builder's own per-user database file; the site names it in words.
_MACHINE_PATH = str(default_sqlite_path())
_PORTABLE_PATH = "the per-user SQLite file"
_USAGE_WIDTH = 90


def build_parser(program: str) -> argparse.ArgumentParser:
    """The parser of ``program`` (one of :data:`PARSER_BUILDERS`), built by its package."""
    module_name, function_name = PARSER_BUILDERS[program].split(":")
    builder: Callable[[], argparse.ArgumentParser] = getattr(
        importlib.import_module(module_name), function_name
    )
    return builder()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands ``parser`` dispatches to, by name (empty for a leaf command)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """``parser`` and every parser below it, depth first, with the words that reach each."""
    yield path, parser
    for name, child in subcommands(parser).items():
        yield from walk(child, (*path, name))


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option string ``parser`` accepts (``--help`` included), mapped to its action."""
    return {flag: action for action in parser._actions for flag in action.option_strings}


def expanded_help(action: argparse.Action, prog: str) -> str:
    """The action's help with its ``%(...)s`` fields filled in, as ``--help`` prints it."""
    if not action.help or action.help is argparse.SUPPRESS:
        return ""
    params: dict[str, object] = {**vars(action), "prog": prog}
    params = {key: value for key, value in params.items() if value is not argparse.SUPPRESS}
    for key, value in list(params.items()):
        if callable(value) and hasattr(value, "__name__"):
            params[key] = value.__name__
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(choice) for choice in action.choices or ())
    return portable(action.help % params)


def portable(help_text: str) -> str:
    """``help_text`` without the path of the machine that builds the site."""
    return help_text.replace(_MACHINE_PATH, _PORTABLE_PATH)


def usage(parser: argparse.ArgumentParser) -> str:
    """The ``usage:`` line(s) argparse prints, wrapped at a fixed width."""
    formatter = argparse.HelpFormatter(prog=parser.prog, width=_USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "—"
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return " \\| ".join(md.code(choice) for choice in action.choices)
    metavar = action.metavar or action.dest.upper()
    return md.code(metavar)


def _default(action: argparse.Action) -> str | None:
    """The default worth stating, or None (no default, or one the help already states)."""
    default = action.default
    if action.required or default is None or default is argparse.SUPPRESS:
        return None
    if action.nargs == 0 and isinstance(default, bool):
        if not isinstance(action, argparse.BooleanOptionalAction):
            return None  # a plain switch: off unless given
        default = "on" if default else "off"
    if default in ([], ()):
        return None
    return str(default)


def _notes(action: argparse.Action, help_text: str) -> str:
    notes: list[str] = []
    if action.required and action.option_strings:
        notes.append("Required.")
    if isinstance(action, argparse._AppendAction) and "repeat" not in help_text.lower():
        notes.append("Repeatable.")
    default = _default(action)
    if default is not None and "default" not in help_text.lower():
        notes.append(f"Default: {md.code(default)}.")
    return " ".join(notes)


def _describe(action: argparse.Action, prog: str) -> str:
    help_text = expanded_help(action, prog)
    described = md.text(help_text)
    notes = _notes(action, help_text)
    if not notes:
        return described
    if not described:
        return notes
    return f"{described.rstrip('.')}. {notes}"


def command_section(words: tuple[str, ...], parser: argparse.ArgumentParser, level: int) -> str:
    """One command: its description, usage, subcommands, positional arguments and options."""
    command = " ".join(words)
    parts = [f"{'#' * level} `{command}` {{#cli-{md.slug(command)}}}"]
    if parser.description:
        parts.append(md.text(portable(parser.description)))
    parts.append(f"```text\n{usage(parser)}\n```")
    children = subcommands(parser)
    if children:
        rows = [
            [
                f"[`{command} {name}`](#cli-{md.slug(f'{command} {name}')})",
                md.text(child.description or ""),
            ]
            for name, child in children.items()
        ]
        parts.append(md.table(["command", "what it does"], rows))
    positionals = [
        action
        for action in parser._actions
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction)
    ]
    if positionals:
        rows = [[_value(action), _describe(action, parser.prog)] for action in positionals]
        parts.append(md.table(["argument", "meaning"], rows))
    flags = [
        action
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    ]
    if flags:
        rows = [
            [
                ", ".join(md.code(flag) for flag in action.option_strings),
                _value(action),
                _describe(action, parser.prog),
            ]
            for action in flags
        ]
        parts.append(md.table(["option", "value", "meaning"], rows))
    if parser.epilog:
        parts.append(md.text(parser.epilog))
    return "\n\n".join(parts)


def reference(program: str, level: int = 3) -> str:
    """Every command of ``program``, from its own parser, as Markdown sections."""
    root = build_parser(program)
    sections = []
    for words, parser in walk(root, (program,)):
        depth = level + min(len(words) - 1, 1)
        sections.append(command_section(words, parser, depth))
    return "\n\n".join(sections)
