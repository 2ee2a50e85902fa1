"""Layering contracts between the three PrismQ packages (design.md §1).

Two checks, both of which must hold:

* statically, every ``.py`` file under a package's ``src/`` is parsed with :mod:`ast` and
  each ``import x``, ``from x import y`` (relative imports resolved) and
  ``importlib.import_module("x")`` / ``__import__("x")`` with a string literal is checked
  against that package's forbidden prefixes;
* at run time, a fresh interpreter imports a package (the core with every submodule) and
  the forbidden modules must not be in ``sys.modules``.

The checker is itself tested on a file with a forbidden import, so it cannot pass by
finding nothing.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"

WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")

# package directory -> (import name, module prefixes it must never import)
CONTRACTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "prismq-queue-core": ("prismq.queue", ("prismq.api", "prismq.worker", *WEB_FRAMEWORKS)),
    "prismq-client-backend-api": ("prismq.api", ("prismq.worker",)),
    "prismq-client-backend-worker-model": (
        "prismq.worker",
        ("prismq.api", *WEB_FRAMEWORKS),
    ),
}

DYNAMIC_IMPORTERS = {"import_module", "__import__"}


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    module: str
    forbidden: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.module!r} (forbidden: {self.forbidden})"


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(module: str | None, level: int, current: str, is_package: bool) -> str:
    """Turn ``from ..x import y`` inside module ``current`` into an absolute name."""
    base = current.split(".") if is_package else current.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _dynamic_import_target(node: ast.Call) -> str | None:
    func = node.func
    name = (
        func.attr
        if isinstance(func, ast.Attribute)
        else func.id
        if isinstance(func, ast.Name)
        else None
    )
    if name not in DYNAMIC_IMPORTERS or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def imported_modules(path: Path, module: str = "") -> list[tuple[int, str]]:
    """Every module that ``path`` imports, as ``(line, absolute dotted name)``.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(node.module, node.level, module, is_package)
                if node.level
                else node.module or ""
            )
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call):
            target = _dynamic_import_target(node)
            if target is not None:
                found.append((node.lineno, target))
    return found


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def find_violations(src: Path, forbidden: tuple[str, ...]) -> list[Violation]:
    """All forbidden imports in the ``.py`` files under ``src``."""
    violations: list[Violation] = []
    for path in sorted(src.rglob("*.py")):
        module = _module_name(path, src)
        for line, imported in imported_modules(path, module):
            violations.extend(
                Violation(path, line, imported, prefix)
                for prefix in forbidden
                if _matches(imported, prefix)
            )
    return violations


# --------------------------------------------------------------------------- static checks


@pytest.mark.parametrize("package", sorted(CONTRACTS))
def test_package_respects_its_layer(package: str) -> None:
    import_name, forbidden = CONTRACTS[package]
    src = PACKAGES / package / "src"
    package_dir = src.joinpath(*import_name.split("."))
    assert package_dir.is_dir(), f"{package_dir} is missing"
    files = list(src.rglob("*.py"))
    assert files, f"no Python files under {src}: the check would prove nothing"
    violations = find_violations(src, forbidden)
    assert not violations, "forbidden imports:\n" + "\n".join(map(str, violations))


@pytest.mark.parametrize("package", sorted(CONTRACTS))
def test_prismq_stays_a_namespace_package(package: str) -> None:
    assert not (PACKAGES / package / "src" / "prismq" / "__init__.py").exists()


# ------------------------------------------------------------------ the checker catches things


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import fastapi\n", "fastapi"),
        ("import os, starlette.responses as r\n", "starlette.responses"),
        ("from fastapi import FastAPI\n", "fastapi"),
        ("from uvicorn.config import Config\n", "uvicorn.config"),
        ("from prismq import api\n", "prismq.api"),
        ("from prismq.worker.engine import WorkerEngine\n", "prismq.worker.engine"),
        ("import importlib\nimportlib.import_module('prismq.api.app')\n", "prismq.api.app"),
        ("from importlib import import_module\nimport_module('fastapi')\n", "fastapi"),
        ("__import__('uvicorn')\n", "uvicorn"),
        ("def f() -> None:\n    import prismq.worker\n", "prismq.worker"),
        ("if True:\n    from ... import api\n", "prismq.api"),
    ],
)
def test_checker_catches_forbidden_imports(tmp_path: Path, source: str, expected: str) -> None:
    pkg = tmp_path / "prismq" / "queue" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text(source)
    _, forbidden = CONTRACTS["prismq-queue-core"]
    violations = find_violations(tmp_path, forbidden)
    assert expected in {v.module for v in violations}, violations
    assert all(v.path == pkg / "bad.py" for v in violations)


@pytest.mark.parametrize(
    "source",
    [
        "import prismq.queue\nfrom prismq.queue import models\n",
        "import fastapi_like\nimport uvicornish\n",  # prefixes match whole names only
        "from . import models\nfrom .. import queue\n",
        "import importlib\nimportlib.import_module(name)\n",  # not a literal: unknowable
        "x = 'import fastapi'\n",
    ],
)
def test_checker_allows_permitted_imports(tmp_path: Path, source: str) -> None:
    pkg = tmp_path / "prismq" / "queue" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "ok.py").write_text(source)
    _, forbidden = CONTRACTS["prismq-queue-core"]
    assert find_violations(tmp_path, forbidden) == []


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    path = tmp_path / "prismq" / "worker" / "engine.py"
    path.parent.mkdir(parents=True)
    path.write_text("from ..api import app\nfrom . import config\n")
    modules = {m for _, m in imported_modules(path, "prismq.worker.engine")}
    assert {"prismq.api", "prismq.api.app", "prismq.worker", "prismq.worker.config"} <= modules


# ----------------------------------------------------------------------------- run time


def _run_fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT.parent,  # not the repository root: only installed packages are importable
    )


LOADED_FORBIDDEN = """
    import json, sys
    def loaded(prefixes):
        return sorted(
            m for m in sys.modules
            if any(m == p or m.startswith(p + ".") for p in prefixes)
        )
"""


def test_importing_the_worker_loads_no_web_framework() -> None:
    result = _run_fresh(
        LOADED_FORBIDDEN
        + """
    import prismq.worker
    print(json.dumps(loaded(["fastapi", "starlette", "uvicorn", "prismq.api"])))
    """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_starting_a_worker_loads_neither_the_orm_nor_pydantic() -> None:
    # Every drain pays for the worker's imports: SQLAlchemy's ORM cost ~90 ms of them and
    # pydantic with the settings model ~80 ms. The queries use Core tables (only
    # prismq.queue.models, for applications that want the ORM classes, loads the ORM), and
    # the worker checks its settings itself.
    result = _run_fresh(
        LOADED_FORBIDDEN
        + """
    import prismq.worker.cli
    print(json.dumps(loaded(["sqlalchemy.orm", "prismq.queue.models", "pydantic"])))
    """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_importing_the_api_does_not_load_the_worker() -> None:
    result = _run_fresh(
        LOADED_FORBIDDEN
        + """
    import prismq.api
    print(json.dumps(loaded(["prismq.worker"])))
    """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_importing_all_of_the_core_loads_no_upper_layer() -> None:
    result = _run_fresh(
        LOADED_FORBIDDEN
        + r"""
    import importlib, pkgutil, re
    import prismq.queue
    # Alembic's env.py and revision scripts run inside Alembic, not on import; the
    # static check above still reads them.
    alembic_script = re.compile(r"\.(migrations|alembic)\.(env$|versions\.)")
    names = ["prismq.queue"]
    for info in pkgutil.walk_packages(prismq.queue.__path__, "prismq.queue."):
        if alembic_script.search(info.name):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
    print(json.dumps({
        "imported": names,
        "forbidden": loaded(["fastapi", "starlette", "uvicorn", "prismq.api", "prismq.worker"]),
    }))
    """
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert len(report["imported"]) > 1, "pkgutil found no submodules of prismq.queue"
    assert report["forbidden"] == []
