"""The Python environments the integration tests run PrismQ's commands from.

The API and the worker each run from an environment of their own, built from the wheels:
``nox -s integration`` builds the wheels with hatch, installs the API's (with the core) in
one venv and the worker's (with the core) in another, and names their ``bin/`` directories
in ``PRISMQ_IT_API_BIN`` and ``PRISMQ_IT_WORKER_BIN``. The test code itself runs in the
session's environment, where the packages are installed editable.

The upgrade test also needs the core as last released (:mod:`previous_release`): it is
built here from the git history into a venv of its own.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from previous_release import CORE_PATH_IN_REPOSITORY, PREVIOUS_CORE_RELEASE_REF

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
API_BIN_ENV = "PRISMQ_IT_API_BIN"
WORKER_BIN_ENV = "PRISMQ_IT_WORKER_BIN"
#: Commands each environment must provide.
API_COMMANDS = ("python", "prismq", "prismq-api")
WORKER_COMMANDS = ("python", "prismq", "prismq-worker")
#: Bounds a build or an install, so a stuck download fails the test instead of hanging it.
INSTALL_TIMEOUT_SECONDS = 300


@dataclasses.dataclass(frozen=True)
class InstalledCommands:
    """The ``bin/`` directories of the API's and the worker's environments."""

    api_bin: Path
    worker_bin: Path

    def api(self, command: str) -> str:
        """The path of ``command`` in the API's environment."""
        return str(self.api_bin / command)

    def worker(self, command: str) -> str:
        """The path of ``command`` in the worker's environment."""
        return str(self.worker_bin / command)


@dataclasses.dataclass(frozen=True)
class PreviousCore:
    """An environment holding prismq-queue-core as built from ``ref``."""

    ref: str
    bin_dir: Path

    def command(self, name: str) -> str:
        """The path of ``name`` (``python``, ``prismq``) in this environment."""
        return str(self.bin_dir / name)


def _missing_environment(problem: str) -> str:
    return (
        f"{problem}. The integration tests run the API and the workers from venvs built from "
        f"the wheels: run them with `nox -s integration`, which builds those venvs and sets "
        f"{API_BIN_ENV} and {WORKER_BIN_ENV}, or set both to the bin/ directories of two "
        "venvs of your own: one with the API's wheel and the core's installed, the other with "
        "the worker's wheel and the core's (each with the [postgresql] extra)."
    )


def _bin_dir(variable: str, commands: Sequence[str]) -> Path:
    value = os.environ.get(variable, "").strip()
    if not value:
        pytest.fail(_missing_environment(f"{variable} is not set"), pytrace=False)
    bin_dir = Path(value)
    missing = [command for command in commands if not (bin_dir / command).is_file()]
    if missing:
        problem = f"{variable}={value} has no {', '.join(missing)}"
        pytest.fail(_missing_environment(problem), pytrace=False)
    return bin_dir


def find_installed() -> InstalledCommands:
    """The environments named by ``PRISMQ_IT_API_BIN`` and ``PRISMQ_IT_WORKER_BIN``.

    Fails the test, saying to run ``nox -s integration``, when either is unset or lacks
    its commands.
    """
    return InstalledCommands(
        api_bin=_bin_dir(API_BIN_ENV, API_COMMANDS),
        worker_bin=_bin_dir(WORKER_BIN_ENV, WORKER_COMMANDS),
    )


def run_checked(
    args: Sequence[str], *, what: str, cwd: Path | None = None, stdin: bytes | None = None
) -> bytes:
    """Run a build step to completion; its stdout, or a test failure showing its output."""
    env = {name: value for name, value in os.environ.items() if name != "UV_PYTHON"}
    try:
        result = subprocess.run(
            list(args),
            input=stdin,
            capture_output=True,
            cwd=cwd,
            env=env,
            timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"{what}: {' '.join(args)} could not run: {error}", pytrace=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        pytest.fail(
            f"{what} failed (exit {result.returncode}): {' '.join(args)}\n{output}", pytrace=False
        )
    return result.stdout


def _git_history_available(ref: str) -> str | None:
    """None if ``ref`` names a commit of this repository; else why it cannot be read."""
    if not (REPOSITORY_ROOT / ".git").exists():
        return f"{REPOSITORY_ROOT} has no .git: the repository's history is not available"
    git = shutil.which("git")
    if git is None:
        return "the git command is not installed"
    probe = subprocess.run(
        [git, "-C", str(REPOSITORY_ROOT), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if probe.returncode != 0:
        return f"git does not know the commit {ref!r} (a shallow clone?)"
    return None


def _export_core_source(ref: str, destination: Path) -> Path:
    """Write the core's files as they were at ``ref`` under ``destination``; their folder."""
    git_archive = ["git", "-C", str(REPOSITORY_ROOT), "archive", "--format=tar"]
    archive = run_checked(
        [*git_archive, ref, CORE_PATH_IN_REPOSITORY],
        what=f"exporting {CORE_PATH_IN_REPOSITORY} at {ref} with git archive",
    )
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+: refuse links out of the tree
            tar.extractall(destination, filter="data")
        else:
            tar.extractall(destination)
    return destination / CORE_PATH_IN_REPOSITORY


def _uv() -> str | None:
    """uv beside this interpreter (the nox session installs it), else on PATH."""
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.is_file() else shutil.which("uv")


def _install_with_uv(uv: str, source: Path, workdir: Path) -> Path:
    wheels, venv = workdir / "wheel", workdir / "venv"
    run_checked(
        [uv, "build", "--wheel", "--out-dir", str(wheels), "--python", sys.executable, str(source)],
        what="building the previous core's wheel",
    )
    run_checked(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        what="creating the previous core's venv",
    )
    (wheel,) = wheels.glob("*.whl")
    python = str(venv / "bin" / "python")
    run_checked(
        [uv, "pip", "install", "--quiet", "--python", python, f"{wheel}[postgresql]"],
        what="installing the previous core's wheel",
    )
    return venv / "bin"


def _install_with_pip(source: Path, workdir: Path) -> Path:
    wheels, venv = workdir / "wheel", workdir / "venv"
    run_checked([sys.executable, "-m", "venv", str(venv)], what="creating the previous core's venv")
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run_checked(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)],
        what="building the previous core's wheel",
    )
    (wheel,) = wheels.glob("*.whl")
    run_checked([*pip, "install", f"{wheel}[postgresql]"], what="installing the previous core")
    return venv / "bin"


def build_previous_core(workdir: Path) -> PreviousCore:
    """Build prismq-queue-core at :data:`PREVIOUS_CORE_RELEASE_REF` into a venv of its own.

    The source comes from ``git archive``; the wheel is built and installed with uv when it
    is there, else with pip. Fails the test with the reason when the git history is not
    available.
    """
    ref = PREVIOUS_CORE_RELEASE_REF
    if (problem := _git_history_available(ref)) is not None:
        pytest.fail(
            f"the upgrade test builds prismq-queue-core as released at {ref} from the git "
            f"history, but {problem}. Run it in a git clone with its full history "
            "(`git fetch --unshallow` completes a shallow one).",
            pytrace=False,
        )
    source = _export_core_source(ref, workdir / "source")
    uv = _uv()
    bin_dir = _install_with_uv(uv, source, workdir) if uv else _install_with_pip(source, workdir)
    return PreviousCore(ref=ref, bin_dir=bin_dir)
