"""Packaging checks for ``prismq-client-backend-worker-model`` (import ``prismq.worker``)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

import prismq
import prismq.worker

DISTRIBUTION = "prismq-client-backend-worker-model"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
PACKAGES_DIR = PACKAGE_DIR.parent
SIBLINGS = (
    "prismq-queue-core",
    "prismq-client-backend-api",
    "prismq-client-backend-worker-model",
)
FORBIDDEN_DEPENDENCIES = {"fastapi", "starlette", "uvicorn", "prismq-client-backend-api"}


def _requirements() -> list[Requirement]:
    return [Requirement(r) for r in importlib.metadata.requires(DISTRIBUTION) or []]


def test_version_matches_distribution_metadata() -> None:
    assert prismq.worker.__version__ == importlib.metadata.version(DISTRIBUTION)
    assert "__version__" in prismq.worker.__all__


def test_public_api_is_exported() -> None:
    expected = {
        "WorkerDatabase",
        "WorkerEngine",
        "TaskHandlerRegistry",
        "HandlerInfo",
        "TaskHandlerConfigLoader",
        "WorkerConfig",
        "TaskContext",
        "TaskExecutor",
        "SchedulingStrategy",
        "create_worker_from_config",
        "load_registry",
        "WorkerError",
        "TaskHandlerNotRegisteredError",
        "HandlerAlreadyRegisteredError",
        "HandlerLoadError",
        "WorkerConfigError",
        "PermanentTaskError",
    }
    assert expected <= set(prismq.worker.__all__)
    for name in prismq.worker.__all__:
        assert hasattr(prismq.worker, name), name


def test_version_is_semantic() -> None:
    parts = prismq.worker.__version__.split(".")
    assert len(parts) == 3
    assert all(part.isdigit() for part in parts)


def test_prismq_is_a_namespace_package() -> None:
    assert getattr(prismq, "__file__", None) is None
    assert getattr(prismq, "__spec__", None) is not None
    assert prismq.__spec__.origin in (None, "namespace")
    # The prismq directory this package was imported from is one part of the namespace.
    imported_from = Path(prismq.worker.__file__).resolve().parent.parent
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
    assert (Path(prismq.worker.__file__).parent / "py.typed").is_file()


def test_declared_dependencies_are_core_and_config_libraries_only() -> None:
    requirements = _requirements()
    assert {req.name for req in requirements if req.marker is None} == {
        "prismq-queue-core",
        "pyyaml",
    }
    assert not FORBIDDEN_DEPENDENCIES & {req.name for req in requirements}
    core = next(req for req in requirements if req.name == "prismq-queue-core")
    assert core.specifier.contains("0.1.0")
    assert not core.specifier.contains("1.0.0")


def test_import_does_not_load_fastapi() -> None:
    code = (
        "import sys, prismq.worker\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'fastapi', 'starlette',"
        " 'uvicorn'} or m.startswith('prismq.api'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
