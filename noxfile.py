"""Every development task of the PrismQ monorepo.

``nox`` with no arguments runs what CI needs: lint, typecheck, layering, the tests of each
package on SQLite and PostgreSQL, the build of each package and the integration tests.
``nox -l`` lists the sessions; ``nox -s NAME`` runs one, e.g.
``nox -s "tests(package='prismq-queue-core', backend='sqlite')"``.

PostgreSQL sessions connect to ``PRISMQ_TEST_POSTGRES_URL`` (default: the local server).
When it does not answer, a developer's run warns loudly and skips those sessions; a CI
run (``CI`` set) fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True
nox.options.sessions = ["lint", "typecheck", "layering", "tests", "build", "integration"]

ROOT = Path(__file__).resolve().parent
PACKAGES_DIR = ROOT / "packages"
DIST_DIR = ROOT / "dist"

CORE = "prismq-queue-core"
API = "prismq-client-backend-api"
WORKER = "prismq-client-backend-worker-model"
PACKAGES = [CORE, API, WORKER]
IMPORT_NAMES = {CORE: "prismq.queue", API: "prismq.api", WORKER: "prismq.worker"}
BACKENDS = ["sqlite", "postgresql"]

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL = os.environ.get("PRISMQ_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL

TEST_TOOLS = [
    "pytest",
    "pytest-timeout",
    "hypothesis",
    "scipy",
    "packaging",
    "httpx",
    "schemathesis",
]
# Linters and type checkers are pinned to a minor series: a new release may add checks,
# which should land by a deliberate bump, not break an unrelated change's CI run.
LINT_TOOLS = ["ruff>=0.17.6,<0.18"]
TYPECHECK_TOOLS = ["mypy>=2.4.1,<2.5", "types-PyYAML"]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in {"", "0", "false", "no", "off"}


IN_CI = _truthy(os.environ.get("CI"))
nox.options.reuse_existing_virtualenvs = not IN_CI


def _install_packages(session: nox.Session, *extra: str) -> None:
    """Install the three packages editable, with their PostgreSQL extra, plus ``extra``."""
    editable: list[str] = []
    for package in PACKAGES:
        editable += ["-e", f"{PACKAGES_DIR / package}[postgresql]"]
    session.install(*editable, *extra)


def _test_env(backend: str | None = None) -> dict[str, str]:
    env = {
        "PRISMQ_TEST_POSTGRES_URL": POSTGRES_URL,
        # A safety net against a hung test; a test may ask for more with its own marker.
        "PYTEST_TIMEOUT": os.environ.get("PYTEST_TIMEOUT", "600"),
    }
    if backend is not None:
        env["PRISMQ_TEST_BACKEND"] = backend
    return env


_POSTGRES_PROBE = """
import sys
import psycopg
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1]).set(drivername="postgresql")
try:
    psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3).close()
except Exception as exc:
    print(f"unreachable: {type(exc).__name__}: {' '.join(str(exc).split())}")
else:
    print("reachable")
"""


def _shown(url: str) -> str:
    """``url`` with its password, if any, masked."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _require_postgres(session: nox.Session) -> None:
    """Fail (in CI) or loudly skip (elsewhere) when PostgreSQL does not answer.

    The probe runs inside the session's venv, with the psycopg the tests will use.
    """
    output = session.run("python", "-c", _POSTGRES_PROBE, POSTGRES_URL, silent=True, log=False)
    if not isinstance(output, str):  # --install-only: nothing was run
        return
    status = output.strip().splitlines()[-1] if output.strip() else "unreachable: no answer"
    if status == "reachable":
        return
    where = f"PostgreSQL is not reachable at {_shown(POSTGRES_URL)} ({status})"
    if IN_CI:
        session.error(f"{where}; CI must run the PostgreSQL tests")
    banner = "!" * 78
    session.warn(
        f"\n{banner}\n{where}.\n"
        "SKIPPING the PostgreSQL tests of this session: only SQLite was tested here.\n"
        "Start PostgreSQL or set PRISMQ_TEST_POSTGRES_URL to run them; in CI (CI=true)\n"
        f"this is an error.\n{banner}"
    )
    session.skip(f"PostgreSQL not reachable at {_shown(POSTGRES_URL)}")


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and check the formatting of the whole repository with ruff."""
    session.install(*LINT_TOOLS)
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the three packages with mypy --strict (config: root pyproject.toml)."""
    # pytest: prismq.queue.testing (fixtures for test suites) is type-checked too.
    _install_packages(session, *TYPECHECK_TOOLS, "pytest")
    packages = [arg for name in IMPORT_NAMES.values() for arg in ("-p", name)]
    session.run("mypy", "--strict", *packages, *session.posargs)


@nox.session
def layering(session: nox.Session) -> None:
    """Check the import layering: core < api, core < worker; api and worker never meet."""
    _install_packages(session, "pytest", "pytest-timeout")
    session.run("pytest", "tests-layering", *session.posargs, env=_test_env())


@nox.session
@nox.parametrize("backend", BACKENDS)
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str, backend: str) -> None:
    """Run one package's tests against one database backend (sqlite or postgresql)."""
    _install_packages(session, *TEST_TOOLS)
    if backend == "postgresql":
        _require_postgres(session)
    session.run("pytest", f"packages/{package}/tests", *session.posargs, env=_test_env(backend))


_WHEEL_IMPORT_CHECK = """
import importlib, importlib.metadata, importlib.util, sys

dist, module = sys.argv[1], sys.argv[2]
imported = importlib.import_module(module)
version = importlib.metadata.version(dist)
assert imported.__version__ == version, (imported.__version__, version)
import prismq
assert getattr(prismq, "__file__", None) is None, "prismq must be a namespace package"
if module == "prismq.worker":
    for web in ("fastapi", "starlette", "uvicorn"):
        assert importlib.util.find_spec(web) is None, f"the worker venv has {web}"
    assert importlib.util.find_spec("prismq.api") is None, "the worker venv has prismq.api"
if module == "prismq.api":
    assert importlib.util.find_spec("prismq.worker") is None, "the api venv has the worker"
if module != "prismq.queue":
    assert importlib.metadata.version("prismq-queue-core") == sys.argv[3]
print(f"{dist} {version}: import {module} OK from {imported.__file__}")
"""


def _check_wheel_contents(session: nox.Session, wheel: Path, module: str) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    package_dir = module.replace(".", "/")
    problems = []
    if "prismq/__init__.py" in names:
        problems.append("ships prismq/__init__.py (prismq must stay a namespace package)")
    for required in ("__init__.py", "__about__.py", "py.typed"):
        if f"{package_dir}/{required}" not in names:
            problems.append(f"lacks {package_dir}/{required}")
    if problems:
        session.error(f"{wheel.name}: " + "; ".join(problems))


@nox.session
def build(session: nox.Session) -> None:
    """Build each package's wheel and sdist with hatch; each wheel installs alone and imports."""
    session.install("hatch", "twine")
    tmp = Path(session.create_tmp()).resolve()
    # Hatch's own build environments live in the session, built afresh each run.
    hatch_data = tmp / "hatch"
    shutil.rmtree(hatch_data, ignore_errors=True)
    wheels: dict[str, Path] = {}
    for package in PACKAGES:
        outdir = DIST_DIR / package
        shutil.rmtree(outdir, ignore_errors=True)
        with session.chdir(PACKAGES_DIR / package):
            ran = session.run(
                "hatch",
                "build",
                "-t",
                "wheel",
                "-t",
                "sdist",
                str(outdir),
                # nox points uv at the session's venv with UV_PYTHON; hatch's own uv must
                # install hatchling into hatch's build environment instead.
                env={"HATCH_DATA_DIR": str(hatch_data), "UV_PYTHON": None},
            )
        if ran is None:  # --install-only: nothing was built
            return
        artifacts = sorted(outdir.glob("*.whl")) + sorted(outdir.glob("*.tar.gz"))
        session.run("twine", "check", "--strict", *map(str, artifacts))
        built = sorted(outdir.glob("*.whl"))
        if len(built) != 1:
            session.error(f"expected one wheel in {outdir}, found {[w.name for w in built]}")
        _check_wheel_contents(session, built[0], IMPORT_NAMES[package])
        wheels[package] = built[0]

    core_version = wheels[CORE].name.split("-")[1] if CORE in wheels else ""
    for package, wheel in wheels.items():
        venv = tmp / f"venv-{package}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run(sys.executable, "-m", "venv", str(venv), external=True)
        python = str(venv / ("Scripts" if sys.platform == "win32" else "bin") / "python")
        session.run(
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--find-links",
            str(DIST_DIR / CORE),
            str(wheel),
            external=True,
        )
        session.run(
            python,
            "-c",
            _WHEEL_IMPORT_CHECK,
            package,
            IMPORT_NAMES[package],
            core_version,
            external=True,
        )


@nox.session
def integration(session: nox.Session) -> None:
    """Run the cross-package tests in tests-integration/ on SQLite and PostgreSQL."""
    _install_packages(session, "pytest", "pytest-timeout")
    session.run(
        "pytest",
        "tests-integration",
        *session.posargs,
        env={**_test_env(), "PRISMQ_TEST_REQUIRE_POSTGRES": "1" if IN_CI else "0"},
    )
