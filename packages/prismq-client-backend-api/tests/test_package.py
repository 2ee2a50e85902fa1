"""Packaging checks for ``prismq-client-backend-api`` (import ``prismq.api``)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

import prismq
import prismq.api

DISTRIBUTION = "prismq-client-backend-api"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
PACKAGES_DIR = PACKAGE_DIR.parent
SIBLINGS = (
    "prismq-queue-core",
    "prismq-client-backend-api",
    "prismq-client-backend-worker-model",
)


def _requirements() -> list[Requirement]:
    return [Requirement(r) for r in importlib.metadata.requires(DISTRIBUTION) or []]


def test_version_matches_distribution_metadata() -> None:
    assert prismq.api.__version__ == importlib.metadata.version(DISTRIBUTION)
    assert "__version__" in prismq.api.__all__


def test_public_api_is_exported() -> None:
    assert {"ApiSettings", "create_app", "create_app_from_env"} <= set(prismq.api.__all__)
    for name in prismq.api.__all__:
        assert hasattr(prismq.api, name), name


def test_version_is_semantic() -> None:
    parts = prismq.api.__version__.split(".")
    assert len(parts) == 3
    assert all(part.isdigit() for part in parts)


def test_prismq_is_a_namespace_package() -> None:
    assert getattr(prismq, "__file__", None) is None
    assert getattr(prismq, "__spec__", None) is not None
    assert prismq.__spec__.origin in (None, "namespace")
    # The prismq directory this package was imported from is one part of the namespace.
    imported_from = Path(prismq.api.__file__).resolve().parent.parent
    assert imported_from in [Path(p).resolve() for p in prismq.__path__]
    assert not (imported_from / "__init__.py").exists()


def test_no_prismq_init_in_any_package() -> None:
    # This package, and its siblings when running from the repository.
    package_dirs = {PACKAGE_DIR} | {
        PACKAGES_DIR / sibling for sibling in SIBLINGS if (PACKAGES_DIR / sibling).is_dir()
    }
    for package_dir in package_dirs:
        namespace_dir = package_dir / "src" / "prismq"
        assert namespace_dir.is_dir(), namespace_dir
        assert not (namespace_dir / "__init__.py").exists(), namespace_dir


def test_typed_marker_is_shipped() -> None:
    assert (Path(prismq.api.__file__).parent / "py.typed").is_file()


def test_declared_dependencies() -> None:
    names = {req.name for req in _requirements() if req.marker is None}
    assert {"prismq-queue-core", "fastapi", "uvicorn", "pydantic-settings"} <= names
    assert "prismq-client-backend-worker-model" not in {req.name for req in _requirements()}
    core = next(req for req in _requirements() if req.name == "prismq-queue-core")
    assert core.specifier.contains("0.1.0")
    assert not core.specifier.contains("1.0.0")


def test_import_does_not_load_the_worker() -> None:
    code = "import sys, prismq.api; assert 'prismq.worker' not in sys.modules, sorted(sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
