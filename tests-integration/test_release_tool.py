"""The release tool (``tools/release.py``, ``nox -s release``) on a copy of the repository.

Each test copies the files the tool reads (every package's ``pyproject.toml``,
``CHANGELOG.md`` and ``__about__.py``) to a temporary root and runs the tool there as a
user would, so the real tree is never touched.
"""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPOSITORY = Path(__file__).resolve().parents[1]
TOOL = REPOSITORY / "tools" / "release.py"
CORE = "prismq-queue-core"
API = "prismq-client-backend-api"
WORKER = "prismq-client-backend-worker-model"
MODULES = {CORE: "queue", API: "api", WORKER: "worker"}
RELEASE_DATE = datetime.date(2031, 2, 3)
ENTRY = "- A change worth releasing.\n"


def _about(root: Path, package: str) -> Path:
    return root / "packages" / package / "src" / "prismq" / MODULES[package] / "__about__.py"


def _changelog(root: Path, package: str) -> Path:
    return root / "packages" / package / "CHANGELOG.md"


def _version(root: Path, package: str) -> Version:
    match = re.search(r'__version__ = "([^"]+)"', _about(root, package).read_text())
    assert match is not None
    return Version(match.group(1))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the files the tool reads, each changelog with one unreleased entry."""
    root = tmp_path / "repo"
    for package in MODULES:
        for source in (
            REPOSITORY / "packages" / package / "pyproject.toml",
            _changelog(REPOSITORY, package),
            _about(REPOSITORY, package),
        ):
            target = root / source.relative_to(REPOSITORY)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        changelog = _changelog(root, package)
        text = changelog.read_text()
        assert text.count("\n## Unreleased\n") == 1, f"{package}'s changelog has no Unreleased"
        changelog.write_text(text.replace("\n## Unreleased\n", f"\n## Unreleased\n{ENTRY}"))
    return root


def _release(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--root", str(root), "--date", RELEASE_DATE.isoformat(), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _next_patch(version: Version) -> str:
    major, minor, patch = version.release
    return f"{major}.{minor}.{patch + 1}"


@pytest.mark.parametrize(
    ("name", "package"),
    [
        (CORE, CORE),
        ("core", CORE),
        (API, API),
        ("api", API),
        (WORKER, WORKER),
        ("worker", WORKER),
    ],
)
def test_bumps_only_the_chosen_package(repo: Path, name: str, package: str) -> None:
    current = _version(repo, package)
    new = _next_patch(current)
    about = _about(repo, package).relative_to(repo).as_posix()
    changelog = _changelog(repo, package).relative_to(repo).as_posix()
    before = _snapshot(repo)

    result = _release(repo, name, new)

    assert result.returncode == 0, result.stderr
    after = _snapshot(repo)
    changed = {path for path in before if before[path] != after[path]}
    assert changed == {about, changelog}
    assert set(after) == set(before)
    assert _version(repo, package) == Version(new)
    # The rest of __about__.py is untouched.
    assert after[about].decode() == before[about].decode().replace(f'"{current}"', f'"{new}"')


def test_changelog_section_is_dated_under_a_fresh_unreleased(repo: Path) -> None:
    old = _changelog(repo, CORE).read_text()
    new_version = _next_patch(_version(repo, CORE))

    assert _release(repo, "core", new_version).returncode == 0

    new = _changelog(repo, CORE).read_text()
    dated = f"## {new_version} — {RELEASE_DATE.isoformat()}"
    # The entry moved under the dated heading; a fresh, empty Unreleased sits above it.
    assert f"\n## Unreleased\n\n{dated}\n{ENTRY}" in new
    assert new.count("## Unreleased") == 1
    # Everything else is as it was.
    assert new == old.replace("## Unreleased\n", f"## Unreleased\n\n{dated}\n", 1)


def test_output_names_the_commit_tag_and_build_commands(repo: Path) -> None:
    new_version = _next_patch(_version(repo, WORKER))

    result = _release(repo, "worker", new_version)

    assert result.returncode == 0, result.stderr
    assert f"git tag -a {WORKER}-v{new_version}" in result.stdout
    assert "git commit" in result.stdout
    assert "nox -s build" in result.stdout


def test_dry_run_shows_the_diff_and_writes_nothing(repo: Path) -> None:
    new_version = _next_patch(_version(repo, API))
    before = _snapshot(repo)

    result = _release(repo, "api", new_version, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert _snapshot(repo) == before
    assert f'+__version__ = "{new_version}"' in result.stdout
    assert f"+## {new_version} — {RELEASE_DATE.isoformat()}" in result.stdout
    assert "git tag" not in result.stdout


def _assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("relation", ["lower", "equal"])
def test_refuses_a_version_not_greater_than_the_current(repo: Path, relation: str) -> None:
    current = _version(repo, CORE)
    major, minor, patch = current.release
    candidate = str(current) if relation == "equal" else f"{major}.{minor}.{patch}.dev0"
    assert Version(candidate) <= current
    before = _snapshot(repo)

    result = _release(repo, "core", candidate)

    _assert_refused(result, candidate, str(current), "not greater")
    assert _snapshot(repo) == before


@pytest.mark.parametrize("text", ["banana", "1.0.0+local", "v9.0", "9.0-rc.1", ""])
def test_refuses_an_invalid_version(repo: Path, text: str) -> None:
    before = _snapshot(repo)

    _assert_refused(_release(repo, "core", text))

    assert _snapshot(repo) == before


def test_refuses_an_unknown_package(repo: Path) -> None:
    before = _snapshot(repo)

    result = _release(repo, "scheduler", "9.9.9")

    _assert_refused(result, "'scheduler'", CORE, API, WORKER)
    assert _snapshot(repo) == before


def test_refuses_missing_arguments_on_one_line() -> None:
    result = subprocess.run(
        [sys.executable, str(TOOL)], capture_output=True, text=True, check=False, timeout=60
    )
    _assert_refused(result, "required")


def test_refuses_a_root_that_is_not_a_repository(tmp_path: Path) -> None:
    _assert_refused(_release(tmp_path, "core", "9.9.9"), "not found")


def test_refuses_an_empty_unreleased_section(repo: Path) -> None:
    changelog = _changelog(repo, API)
    changelog.write_text(changelog.read_text().replace(ENTRY, "\n", 1))
    before = _snapshot(repo)

    result = _release(repo, "api", _next_patch(_version(repo, API)))

    _assert_refused(result, "Unreleased", "empty")
    assert _snapshot(repo) == before


def test_refuses_a_changelog_without_an_unreleased_section(repo: Path) -> None:
    changelog = _changelog(repo, WORKER)
    changelog.write_text(changelog.read_text().replace("## Unreleased\n", ""))
    before = _snapshot(repo)

    result = _release(repo, "worker", _next_patch(_version(repo, WORKER)))

    _assert_refused(result, "Unreleased")
    assert _snapshot(repo) == before


def _declared_core_range(root: Path, package: str) -> Requirement:
    text = (root / "packages" / package / "pyproject.toml").read_text()
    match = re.search(r'"(prismq-queue-core[^"\[]*)"', text)
    assert match is not None
    return Requirement(match.group(1))


def _first_version_outside(requirement: Requirement, current: Version) -> str:
    """The first major version above ``current`` that the declared range no longer admits."""
    for major in range(current.major + 1, current.major + 100):
        if not requirement.specifier.contains(f"{major}.0.0"):
            return f"{major}.0.0"
    pytest.fail(f"{requirement} has no upper bound below {current.major + 100}")


def test_a_core_release_outside_the_siblings_ranges_is_refused(repo: Path) -> None:
    current = _version(repo, CORE)
    breaking = _first_version_outside(_declared_core_range(repo, API), current)
    assert not _declared_core_range(repo, WORKER).specifier.contains(breaking)
    before = _snapshot(repo)

    result = _release(repo, "core", breaking)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert API in result.stderr
    assert WORKER in result.stderr
    assert "--force" in result.stderr
    assert _snapshot(repo) == before


def test_force_releases_the_core_outside_the_ranges_with_a_warning(repo: Path) -> None:
    breaking = _first_version_outside(_declared_core_range(repo, API), _version(repo, CORE))

    result = _release(repo, "core", breaking, "--force")

    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr
    assert API in result.stderr
    assert _version(repo, CORE) == Version(breaking)
    assert _version(repo, API) == _version(REPOSITORY, API)


def test_only_the_sibling_whose_range_breaks_is_named(repo: Path) -> None:
    pyproject = repo / "packages" / WORKER / "pyproject.toml"
    # The worker now accepts any core version.
    widened = re.sub(
        r'"prismq-queue-core(\[[^\]]*\])?[^"]*"', r'"prismq-queue-core\1>=0"', pyproject.read_text()
    )
    pyproject.write_text(widened)
    breaking = _first_version_outside(_declared_core_range(repo, API), _version(repo, CORE))
    assert _declared_core_range(repo, WORKER).specifier.contains(breaking)

    result = _release(repo, "core", breaking)

    assert result.returncode == 1, result.stderr
    assert API in result.stderr
    assert WORKER not in result.stderr


def test_a_core_release_inside_the_siblings_ranges_passes(repo: Path) -> None:
    current = _version(repo, CORE)
    minor_bump = f"{current.major}.{current.minor + 1}.0"
    assert _declared_core_range(repo, API).specifier.contains(minor_bump)

    result = _release(repo, "core", minor_bump)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert _version(repo, CORE) == Version(minor_bump)
