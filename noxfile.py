"""Every development task of the PrismQ monorepo.

``nox`` with no arguments runs what CI needs: lint, typecheck, layering, the tests of each
package on SQLite and PostgreSQL, the build of each package, the integration tests, the
lowest-dependency tests (compat), the documentation build and the benchmark smoke test.
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
nox.options.sessions = [
    "lint",
    "typecheck",
    "layering",
    "tests",
    "build",
    "integration",
    "compat",
    "docs",
    "bench_quick",
]

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
# The peers the benchmarks measure beside PrismQ, at the releases the benchmark page quotes
# (the REQUIREMENTS of benchmarks/peer_pgqueuer.py and peer_huey.py; the harness checks
# the installed versions against them).
BENCH_PEERS = ["pgqueuer[asyncpg]==1.6.0", "huey==3.5.4"]


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


def _build_wheels(session: nox.Session, outdir_root: Path, *targets: str) -> dict[str, Path]:
    """Build each package with hatch into ``outdir_root/<package>``: its wheel, and ``targets``.

    Returns each package's wheel, checked for the namespace layout; an empty dict under
    ``--install-only``, when nothing is built.
    """
    session.install("hatch")
    # Hatch's own build environments live in the session, built afresh each run.
    hatch_data = Path(session.create_tmp()).resolve() / "hatch"
    shutil.rmtree(hatch_data, ignore_errors=True)
    target_args = [arg for target in ("wheel", *targets) for arg in ("-t", target)]
    wheels: dict[str, Path] = {}
    for package in PACKAGES:
        outdir = outdir_root / package
        shutil.rmtree(outdir, ignore_errors=True)
        with session.chdir(PACKAGES_DIR / package):
            ran = session.run(
                "hatch",
                "build",
                *target_args,
                str(outdir),
                # nox points uv at the session's venv with UV_PYTHON; hatch's own uv must
                # install hatchling into hatch's build environment instead.
                env={"HATCH_DATA_DIR": str(hatch_data), "UV_PYTHON": None},
            )
        if ran is None:  # --install-only: nothing was built
            return {}
        built = sorted(outdir.glob("*.whl"))
        if len(built) != 1:
            session.error(f"expected one wheel in {outdir}, found {[w.name for w in built]}")
        _check_wheel_contents(session, built[0], IMPORT_NAMES[package])
        wheels[package] = built[0]
    return wheels


@nox.session
def build(session: nox.Session) -> None:
    """Build each package's wheel and sdist with hatch; each wheel installs alone and imports."""
    session.install("twine")
    wheels = _build_wheels(session, DIST_DIR, "sdist")
    for package in wheels:
        outdir = DIST_DIR / package
        artifacts = sorted(outdir.glob("*.whl")) + sorted(outdir.glob("*.tar.gz"))
        session.run("twine", "check", "--strict", *map(str, artifacts))

    tmp = Path(session.create_tmp()).resolve()
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


def _integration_venv(
    session: nox.Session, venv: Path, package: str, wheels: dict[str, Path]
) -> Path:
    """A fresh venv of ``package``'s wheel and the core's, both ``[postgresql]``; its bin/.

    Checked as ``build`` checks a wheel: the worker's venv has no web framework nor the API,
    the API's has no worker.
    """
    shutil.rmtree(venv, ignore_errors=True)
    session.run("uv", "venv", "--quiet", "--python", sys.executable, str(venv))
    python = str(venv / "bin" / "python")
    requirements = [f"{wheels[package]}[postgresql]", f"{wheels[CORE]}[postgresql]"]
    session.run("uv", "pip", "install", "--quiet", "--python", python, *requirements)
    core_version = wheels[CORE].name.split("-")[1]
    check = [_WHEEL_IMPORT_CHECK, package, IMPORT_NAMES[package], core_version]
    session.run(python, "-c", *check, external=True)
    return venv / "bin"


@nox.session
def integration(session: nox.Session) -> None:
    """Run tests-integration/: the API and the workers from their own wheels, on both backends.

    The API's wheel and the worker's, each with the core's, are installed in two venvs of
    their own, whose bin/ the tests find in PRISMQ_IT_API_BIN and PRISMQ_IT_WORKER_BIN; the
    test code runs here, with the three packages installed editable.
    """
    _install_packages(session, "pytest", "pytest-timeout", "httpx", "uv")
    tmp = Path(session.create_tmp()).resolve()
    wheels = _build_wheels(session, tmp / "dist")
    if not wheels:  # --install-only
        return
    env = {**_test_env(), "PRISMQ_TEST_REQUIRE_POSTGRES": "1" if IN_CI else "0"}
    for package, variable in ((API, "PRISMQ_IT_API_BIN"), (WORKER, "PRISMQ_IT_WORKER_BIN")):
        env[variable] = str(_integration_venv(session, tmp / f"venv-{package}", package, wheels))
    session.run("pytest", "tests-integration", *session.posargs, env=env)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with mkdocs; any warning fails the build.

    The reference pages are generated from the installed packages by the hooks in
    docs/_hooks/, which also check the pages' commands, variables and endpoints against
    the code. The site lands in site/; ``nox -s docs -- serve`` previews it instead.
    """
    # The built-in theme and Pygments: nothing is fetched from the network at build time.
    _install_packages(session, "mkdocs>=1.6,<2", "pygments>=2.17,<3")
    config = str(ROOT / "mkdocs.yml")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", "--strict", "--config-file", config, *session.posargs[1:])
        return
    site = str(ROOT / "site")
    session.run("mkdocs", "build", "--strict", "--config-file", config, "--site-dir", site)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the API and a worker as separate processes on a sample workload (SQLite by default).

    ``nox -s demo -- --postgres URL`` runs the same against PostgreSQL; ``nox -s demo --
    --help`` lists the options. Ctrl-C stops the worker, then the API.
    """
    _install_packages(session)
    session.run(
        "python",
        "demo/run.py",
        *session.posargs,
        # Ctrl-C reaches the demo as well as nox; nox's own timeouts (under a second) would
        # kill the demo before it has stopped the worker and the API, orphaning them.
        interrupt_timeout=90,
        terminate_timeout=30,
    )


@nox.session
def release(session: nox.Session) -> None:
    """Bump one package's version and changelog: ``nox -s release -- PACKAGE VERSION``.

    PACKAGE is a distribution name or ``core`` / ``api`` / ``worker``. ``--dry-run`` shows
    the diff and writes nothing; ``--force`` releases a core that the API's or the
    worker's declared range does not admit. Nothing is committed or tagged: the tool
    prints the commands to do so (see tools/release.py).
    """
    session.install("packaging", "tomli; python_version < '3.11'")
    session.run("python", str(ROOT / "tools" / "release.py"), "--root", str(ROOT), *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmark workloads of benchmarks/ on SQLite and PostgreSQL (not in ``nox``).

    ``nox -s bench -- --quick`` runs each workload once with few tasks, checking only that
    every task completed. Other arguments go to ``python -m benchmarks`` (``--runs 1``,
    ``--workload drain``, ``--scale``, ``--profile``, ...); the JSON lines are also written to
    ``benchmarks/results/<bench|scale|profile>[-quick].jsonl``.
    """
    _install_packages(session, "matplotlib", "py-spy", "pyinstrument", *BENCH_PEERS)
    # Compiled bytecode, as a pip install leaves it: otherwise every worker process the
    # harness starts compiles its imports from source (twice the start-up), a cost no
    # deployment pays. uv installs without it; the packages are editable sources.
    session.run("python", "-c", _COMPILE_BYTECODE, str(PACKAGES_DIR), silent=True)
    if _bench_uses_postgres(session.posargs):
        _require_postgres(session)
    mode = next((arg[2:] for arg in session.posargs if arg in {"--scale", "--profile"}), "bench")
    if "--quick" in session.posargs:
        mode += "-quick"
    session.run(
        "python",
        "-m",
        "benchmarks",
        "--postgres-url",
        POSTGRES_URL,
        "--output",
        f"benchmarks/results/{mode}.jsonl",
        *session.posargs,
    )


_COMPILE_BYTECODE = """
import compileall, sys, sysconfig
for folder in (sysconfig.get_paths()["purelib"], sys.argv[1]):
    compileall.compile_dir(folder, quiet=1, workers=0)
"""


def _bench_uses_postgres(args: list[str]) -> bool:
    """False only when the arguments pick the SQLite backend alone."""
    joined = " ".join(args)
    return not re.search(r"--backend[= ]sqlite\b", joined)


@nox.session
def bench_quick(session: nox.Session) -> None:
    """Smoke-test the benchmarks: each workload once with a few tasks, on both backends.

    Fails when a task is not completed or a worker does not exit 0 after SIGTERM. The
    peers run too, so that their adapters do not rot either. First, the harness's own
    tests (``benchmarks/tests``: how figures are read against peers and targets, which a
    quick run does not print).
    """
    _install_packages(session, "pytest", *BENCH_PEERS)
    session.run("python", "-m", "pytest", "benchmarks/tests")
    _require_postgres(session)
    session.run(
        "python", "-m", "benchmarks", "--quick", "--postgres-url", POSTGRES_URL, *session.posargs
    )


# Tests that prove something other than dependency compatibility and cost a minute or more:
# the SIGKILL crash test checks delivery guarantees, which no library version changes. Its
# marker, ``multiprocess``, also marks the worker's process lifecycle tests, which do
# exercise the libraries (signals, CLI, settings), so it is deselected by path instead.
COMPAT_DESELECT = {
    WORKER: [f"packages/{WORKER}/tests/test_process_crash.py"],
}


def _compat_core_range(package: str) -> str:
    """The ``prismq-queue-core`` versions ``package`` declares it works with (all extras)."""
    from packaging.requirements import Requirement  # noqa: PLC0415 - nox's own dependency
    from packaging.specifiers import SpecifierSet  # noqa: PLC0415

    project = nox.project.load_toml(PACKAGES_DIR / package / "pyproject.toml")["project"]
    declared = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        declared += extra
    allowed = SpecifierSet()
    for text in declared:
        requirement = Requirement(text)
        if requirement.name == CORE:
            allowed &= requirement.specifier
    return str(allowed)


def _compat_core_source(session: nox.Session, package: str, tmp: Path) -> Path:
    """The source of the lowest prismq-queue-core that ``package``'s declared range admits.

    Candidates are the core's release tags (``prismq-queue-core-vX.Y.Z``, as
    ``nox -s release`` names them) and the working tree's core; a tag's tree is exported
    with ``git archive``, leaving the checkout alone.
    """
    from packaging.specifiers import SpecifierSet  # noqa: PLC0415 - nox's own dependency
    from packaging.version import InvalidVersion, Version  # noqa: PLC0415

    allowed = SpecifierSet(_compat_core_range(package))
    about = (PACKAGES_DIR / CORE / "src" / "prismq" / "queue" / "__about__.py").read_text()
    version_match = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", about)
    if version_match is None:
        session.error(f"no __version__ in {CORE}'s __about__.py")
    candidates: dict[Version, str | None] = {Version(version_match.group(1)): None}
    tag_prefix = f"{CORE}-v"
    tags = ""
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = session.run(
            "git", "tag", "--list", f"{tag_prefix}*", silent=True, log=False, external=True
        )
        tags = listed if isinstance(listed, str) else ""
    for tag in tags.split():
        try:
            # A tag wins over the working tree of the same version: it is what was released.
            candidates[Version(tag.removeprefix(tag_prefix))] = tag
        except InvalidVersion:
            session.warn(f"ignoring tag {tag}: not a version")
    admitted = sorted(v for v in candidates if allowed.contains(v, prereleases=True))
    if not admitted:
        session.error(
            f"{package} declares {CORE}{allowed}, which admits neither the working tree's "
            f"core nor any tagged release: {sorted(map(str, candidates))}"
        )
    lowest = admitted[0]
    lowest_tag = candidates[lowest]
    session.log(f"{package} declares {CORE}{allowed}: testing it against {CORE} {lowest}")
    if lowest_tag is None:
        return PACKAGES_DIR / CORE
    exported = tmp / f"core-{lowest}"
    shutil.rmtree(exported, ignore_errors=True)
    exported.mkdir(parents=True)
    archive = tmp / f"core-{lowest}.tar"
    session.run(
        "git", "archive", f"--output={archive}", lowest_tag, f"packages/{CORE}", external=True
    )
    shutil.unpack_archive(archive, exported)
    return exported / "packages" / CORE


@nox.session
@nox.parametrize("package", PACKAGES)
def compat(session: nox.Session, package: str) -> None:
    """Run a package's tests on SQLite with the lowest versions its dependency ranges allow.

    uv's lowest-direct resolution picks the lowest version of every dependency that the
    package, and the core it runs on, declare; the test tools then come at versions that
    leave those in place. The API and the worker run on the lowest prismq-queue-core
    release their declared range admits (a release tag, else the working tree's core),
    installed from its source, not editable.
    """
    if session.venv_backend != "uv":
        session.error("compat needs uv for its lowest-direct resolution: pip install uv")
    tmp = Path(session.create_tmp()).resolve()
    requirements = [f"-e {PACKAGES_DIR / package}[postgresql]"]
    if package != CORE:
        core_source = _compat_core_source(session, package, tmp)
        requirements.append(f"{CORE}[postgresql] @ {core_source.as_uri()}")
    wanted = tmp / "compat.in"
    wanted.write_text("\n".join(requirements) + "\n")
    lowest = tmp / "lowest.txt"
    session.run(
        "uv", "pip", "compile", "--quiet", "--resolution", "lowest-direct", "--no-annotate",
        "--output-file", str(lowest), str(wanted),
    )  # fmt: skip
    if not lowest.exists():  # --install-only with nothing compiled
        return
    # sync: the venv holds exactly the lowest set, whatever an earlier run left in it. The
    # local packages are rebuilt: uv's cache of a source tree's build does not notice edits.
    session.run(
        "uv", "pip", "sync", "--quiet", "--reinstall-package", CORE,
        "--reinstall-package", package, str(lowest),
    )  # fmt: skip
    pins = [line for line in lowest.read_text().splitlines() if re.match(r"[\w.-]+==", line)]
    session.log("lowest versions: " + " ".join(pins))
    constraints = tmp / "lowest-constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    session.install("--constraint", str(constraints), *TEST_TOOLS)
    deselect = [arg for path in COMPAT_DESELECT.get(package, []) for arg in ("--deselect", path)]
    session.run(
        "pytest",
        f"packages/{package}/tests",
        "-x",
        "-q",
        *deselect,
        *session.posargs,
        env=_test_env("sqlite"),
    )
