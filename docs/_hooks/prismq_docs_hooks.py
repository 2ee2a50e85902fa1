"""mkdocs hooks of the PrismQ site: reference sections generated from the code, and checks.

A page asks for generated content with a marker on a line of its own:

``<!-- prismq:cli PROGRAM -->``
    every command and option of ``prismq``, ``prismq-api`` or ``prismq-worker``,
    read from its argparse parser;
``<!-- prismq:env GROUP -->``
    a settings table: the environment variables of ``core``, ``api``, ``worker`` or
    ``testing``, or the Python-only options of ``queue-database``;
``<!-- prismq:rest -->``
    every REST operation and schema, from the application's OpenAPI document;
``<!-- prismq:metrics -->``
    the Prometheus metric families ``/metrics`` exports.

The hand-written text of every page is checked against the code (see
``prismq_docs_checks``); each problem is a warning, so ``mkdocs build --strict`` fails.
The OpenAPI document itself is published as ``openapi.json`` at the site's root.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prismq_docs_checks as checks
import prismq_docs_cli as cli
import prismq_docs_env as env
import prismq_docs_metrics as metrics
import prismq_docs_rest as rest
from fastapi import FastAPI
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped, unused-ignore]

log = get_plugin_logger(__name__)

MARKER = re.compile(r"^<!-- prismq:(?P<kind>[a-z-]+)(?: (?P<argument>[\w-]+))? -->$", re.M)
OPENAPI_FILE = "openapi.json"
PYGMENTS_CSS_FILE = "css/pygments.css"
#: Repository files whose PRISMQ_* variables pages may name besides the packages' own.
TOOLING_PLACES = ("noxfile.py", "tests-integration")


@dataclasses.dataclass
class _Build:
    """What one build reads from the code, once."""

    root: Path
    app: FastAPI
    openapi: dict[str, Any]
    parsers: dict[str, Any]
    documented_variables: set[str]
    known_variables: set[str]
    sections: dict[tuple[str, str | None], str] = dataclasses.field(default_factory=dict)


_build: _Build | None = None


def _current() -> _Build:
    if _build is None:
        raise PluginError("the PrismQ hooks ran before on_config")
    return _build


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Read the applications, parsers and settings the pages are generated from."""
    global _build  # noqa: PLW0603 - mkdocs hooks are module functions sharing one build
    root = Path(config.config_file_path).resolve().parent
    try:
        app = rest.default_app()
        parsers = {program: cli.build_parser(program) for program in cli.PARSER_BUILDERS}
        documented = env.variables()
    except (ImportError, LookupError, AttributeError) as error:
        raise PluginError(
            f"cannot read the reference from the PrismQ packages ({error}); install the three"
            " packages (nox -s docs does)"
        ) from error
    tooling = checks.repository_variables(root, TOOLING_PLACES)
    _build = _Build(
        root=root,
        app=app,
        openapi=rest.openapi_document(app),
        parsers=parsers,
        documented_variables=documented,
        known_variables=documented | tooling,
    )
    _check_coverage(_build)
    return config


def _check_coverage(build: _Build) -> None:
    """Warn about what the code has and the reference would silently leave out."""
    places = [str(path.relative_to(build.root)) for path in build.root.glob("packages/*/src")]
    for name in sorted(
        checks.repository_variables(build.root, places) - build.documented_variables
    ):
        log.warning("%s is read by the packages but missing from the reference", name)
    for operation in rest.unscoped_operations(build.app, build.openapi):
        log.warning("%s needs a token, but no scope was found on its route", operation)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated files: the OpenAPI document and the code highlighting styles."""
    build = _current()
    document = json.dumps(build.openapi, indent=2, ensure_ascii=False) + "\n"
    files.append(File.generated(config, OPENAPI_FILE, content=document))
    styles = HtmlFormatter(style="default").get_style_defs(".codehilite")
    files.append(File.generated(config, PYGMENTS_CSS_FILE, content=styles))
    return files


def _generate(kind: str, argument: str | None) -> str:
    build = _current()
    makers: dict[str, Callable[[], str]] = {
        "rest": lambda: rest.reference(build.app, build.openapi),
        "metrics": metrics.metrics_table,
    }
    if kind == "cli" and argument in cli.PARSER_BUILDERS:
        return cli.reference(argument)
    if kind == "env" and argument in env.TABLES:
        return env.TABLES[argument]()
    if kind in makers and argument is None:
        return makers[kind]()
    raise PluginError(f"unknown marker <!-- prismq:{kind} {argument or ''} -->")


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Check the page's own text against the code, then fill in its generated sections."""
    build = _current()
    where = page.file.src_uri
    problems = [
        *checks.check_commands(markdown, build.parsers),
        *checks.check_variables(markdown, build.known_variables),
        *checks.check_endpoints(markdown, build.openapi.get("paths", {})),
    ]
    for problem in problems:
        log.warning("%s: %s", where, problem)

    def replace(match: re.Match[str]) -> str:
        key = (match["kind"], match["argument"])
        if key not in build.sections:
            build.sections[key] = _generate(*key)
        return build.sections[key]

    return MARKER.sub(replace, markdown)
