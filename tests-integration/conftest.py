"""Fixtures shared by the cross-package integration tests.

``database_url`` is parametrised over SQLite and PostgreSQL (see :mod:`databases`): the
PostgreSQL case gets a database of its own, created on the server named by
``PRISMQ_TEST_POSTGRES_URL`` and dropped afterwards. If that server does not answer, the
case fails when ``PRISMQ_TEST_REQUIRE_POSTGRES`` or ``CI`` is set, and is skipped with the
reason otherwise.

``checked`` records what a test verified (its counts); the lines are printed in a summary
section at the end of the run, whether or not pytest captures output.

``installed`` finds the API and worker environments built from the wheels (``nox -s
integration`` builds them and names their ``bin/`` directories in ``PRISMQ_IT_API_BIN``
and ``PRISMQ_IT_WORKER_BIN``); ``previous_core`` builds the core as last released.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from databases import BACKENDS, fresh_database
from environments import InstalledCommands, PreviousCore, build_previous_core, find_installed


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of the ``backend``, thrown away after the test."""
    with fresh_database(backend, tmp_path) as url:
        yield url


def _console_script(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"the {name!r} command is not installed (is prismq-queue-core installed?)")
    return found


@pytest.fixture(scope="session")
def prismq_cli() -> str:
    """Path of the installed ``prismq`` command of prismq-queue-core."""
    return _console_script("prismq")


@pytest.fixture(scope="session")
def installed() -> InstalledCommands:
    """The ``bin/`` directories of the API and worker environments built from the wheels."""
    return find_installed()


@pytest.fixture(scope="session")
def previous_core(tmp_path_factory: pytest.TempPathFactory) -> PreviousCore:
    """An environment holding the core as last released, built from the git history."""
    return build_previous_core(tmp_path_factory.mktemp("previous-core"))


_CHECKED = "checked"


@pytest.fixture
def checked(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line saying what this test verified, for the end-of-run summary."""

    def record(line: str) -> None:
        request.node.user_properties.append((_CHECKED, line))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the lines the tests recorded with ``checked``, test by test."""
    lines = [
        f"{report.nodeid}: {value}"
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for name, value in report.user_properties
        if name == _CHECKED
    ]
    if lines:
        terminalreporter.write_sep("-", "what the integration tests checked")
        for line in lines:
            terminalreporter.write_line(line)
