"""Prepare a release of one PrismQ package: bump its version and date its changelog.

Usage: ``python tools/release.py [--root DIR] [--dry-run] [--force] PACKAGE VERSION``
(``nox -s release -- PACKAGE VERSION`` runs it on this repository).

PACKAGE is a distribution name (``prismq-queue-core``, ``prismq-client-backend-api``,
``prismq-client-backend-worker-model``) or its alias (``core``, ``api``, ``worker``).
VERSION must be a PEP 440 version, written in its normalized form, and greater than the
package's current version. The tool rewrites exactly two files of that package: the
``__version__`` of ``src/prismq/<name>/__about__.py``, and ``CHANGELOG.md``, whose
``## Unreleased`` section becomes ``## VERSION — YYYY-MM-DD`` under a fresh, empty
``## Unreleased``. It commits nothing and tags nothing: it prints the commands to do so.

A core version outside the ``prismq-queue-core`` range that the API or the worker declares
would leave them uninstallable with it: the tool names them and stops, unless ``--force``.

Exit status: 0 done (or shown, with ``--dry-run``); 1 the new core version breaks a
sibling's declared range (without ``--force``); 2 bad input, reported on one line.
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

CORE = "prismq-queue-core"
API = "prismq-client-backend-api"
WORKER = "prismq-client-backend-worker-model"
# Distribution name -> the name of its module under the prismq namespace.
MODULES = {CORE: "queue", API: "api", WORKER: "worker"}
ALIASES = {"core": CORE, "api": API, "worker": WORKER}

UNRELEASED_HEADING = "## Unreleased"
VERSION_LINE = re.compile(r'^(__version__[ \t]*=[ \t]*)(["\'])([^"\'\n]*)\2[ \t]*$', re.MULTILINE)
SECTION_HEADING = re.compile(r"^## ", re.MULTILINE)

EXIT_RANGE_BROKEN = 1
EXIT_BAD_INPUT = 2


class ReleaseError(Exception):
    """A request the tool refuses; the message is one line for the user."""


@dataclass(frozen=True)
class FileChange:
    """New text for one file of the repository."""

    path: Path
    old: str
    new: str


@dataclass(frozen=True)
class ReleasePlan:
    """Everything a release changes, computed before anything is written."""

    package: str
    current: Version
    new: Version
    changes: tuple[FileChange, ...]
    broken_ranges: tuple[tuple[str, str], ...]


def resolve_package(name: str) -> str:
    """The distribution name for ``name``, which may be an alias such as ``core``."""
    if name in MODULES:
        return name
    if name.lower() in ALIASES:
        return ALIASES[name.lower()]
    choices = ", ".join(f"{dist} ({alias})" for alias, dist in ALIASES.items())
    raise ReleaseError(f"unknown package {name!r}; choose one of: {choices}")


def parse_new_version(text: str) -> Version:
    """``text`` as a release version: valid PEP 440, normalized, without a local label."""
    try:
        version = Version(text)
    except InvalidVersion:
        raise ReleaseError(f"{text!r} is not a valid version (PEP 440), e.g. 0.2.0") from None
    if version.local is not None:
        raise ReleaseError(f"{text!r} has a local version label, which PyPI does not accept")
    if str(version) != text:
        raise ReleaseError(f"write the version as {version}, the normalized form of {text!r}")
    return version


def package_dir(root: Path, package: str) -> Path:
    """The directory of ``package`` in the repository at ``root``."""
    return root / "packages" / package


def about_path(root: Path, package: str) -> Path:
    """The ``__about__.py`` that holds the version of ``package``."""
    return package_dir(root, package) / "src" / "prismq" / MODULES[package] / "__about__.py"


def _read(path: Path) -> str:
    try:
        # newline="": keep the file's line endings, so a rewrite changes only what it must.
        with path.open(encoding="utf-8", newline="") as file:
            return file.read()
    except OSError as error:
        raise ReleaseError(f"cannot read {path}: {error.strerror or error}") from None


def read_version(about_text: str, path: Path) -> Version:
    """The ``__version__`` assigned in the text of an ``__about__.py``."""
    matches = VERSION_LINE.findall(about_text)
    if len(matches) != 1:
        raise ReleaseError(f"{path} must assign __version__ exactly once")
    try:
        return Version(matches[0][2])
    except InvalidVersion:
        raise ReleaseError(f"{path} has an invalid version {matches[0][2]!r}") from None


def bump_about(about_text: str, version: Version) -> str:
    """``about_text`` with its ``__version__`` set to ``version``, quoting kept."""
    return VERSION_LINE.sub(lambda m: f"{m[1]}{m[2]}{version}{m[2]}", about_text, count=1)


def date_changelog(changelog: str, version: Version, date: datetime.date, path: Path) -> str:
    """``changelog`` with its Unreleased section released as ``version`` on ``date``."""
    lines = changelog.splitlines(keepends=True)
    headings = [i for i, line in enumerate(lines) if line.rstrip() == UNRELEASED_HEADING]
    if len(headings) != 1:
        found = "no" if not headings else "more than one"
        raise ReleaseError(f"{path} has {found} '{UNRELEASED_HEADING}' heading")
    start = headings[0]
    body_end = next(
        (i for i in range(start + 1, len(lines)) if SECTION_HEADING.match(lines[i])),
        len(lines),
    )
    if not "".join(lines[start + 1 : body_end]).strip():
        raise ReleaseError(
            f"the '{UNRELEASED_HEADING}' section of {path} is empty: "
            "list the changes of this release there first"
        )
    newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
    released = [
        f"{UNRELEASED_HEADING}{newline}",
        newline,
        f"## {version} — {date.isoformat()}{newline}",
    ]
    return "".join([*lines[:start], *released, *lines[start + 1 :]])


def declared_core_requirements(root: Path, package: str) -> list[tuple[str, SpecifierSet]]:
    """Each distinct ``prismq-queue-core`` range that ``package`` declares, extras included.

    Each comes as the requirement as written in its ``pyproject.toml``, and its range.
    """
    path = package_dir(root, package) / "pyproject.toml"
    try:
        project = tomllib.loads(_read(path)).get("project", {})
    except tomllib.TOMLDecodeError as error:
        raise ReleaseError(f"{path.relative_to(root)} is not valid TOML: {error}") from None
    texts: list[str] = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        texts += extra
    declared: list[tuple[str, SpecifierSet]] = []
    for text in texts:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            raise ReleaseError(
                f"{path.relative_to(root)} declares an invalid requirement {text!r}"
            ) from None
        is_core = canonicalize_name(requirement.name) == CORE
        if is_core and all(requirement.specifier != known for _, known in declared):
            declared.append((text.strip(), requirement.specifier))
    return declared


def broken_core_ranges(root: Path, version: Version) -> list[tuple[str, str]]:
    """``(sibling, requirement)`` for each declared core range that does not admit ``version``."""
    broken: list[tuple[str, str]] = []
    for sibling in (API, WORKER):
        if not package_dir(root, sibling).is_dir():
            continue
        for text, specifier in declared_core_requirements(root, sibling):
            # A pre-release inside the range is admitted to whoever asks for pre-releases.
            if not specifier.contains(version, prereleases=True):
                broken.append((sibling, text))
    return broken


def plan_release(root: Path, package: str, version: Version, date: datetime.date) -> ReleasePlan:
    """Check the request against the repository at ``root`` and compute its changes."""
    about = about_path(root, package)
    changelog = package_dir(root, package) / "CHANGELOG.md"
    for required in (about, changelog):
        if not required.is_file():
            raise ReleaseError(f"{required} not found: is {root} a PrismQ repository?")
    about_text = _read(about)
    current = read_version(about_text, about.relative_to(root))
    if version <= current:
        raise ReleaseError(
            f"{version} is not greater than the current version {current} of {package}"
        )
    changelog_text = _read(changelog)
    dated = date_changelog(changelog_text, version, date, changelog.relative_to(root))
    changes = (
        FileChange(about, about_text, bump_about(about_text, version)),
        FileChange(changelog, changelog_text, dated),
    )
    broken = broken_core_ranges(root, version) if package == CORE else []
    return ReleasePlan(package, current, version, changes, tuple(broken))


def render_diff(plan: ReleasePlan, root: Path) -> str:
    """A unified diff of the plan's changes, paths relative to ``root``."""
    chunks: list[str] = []
    for change in plan.changes:
        name = change.path.relative_to(root).as_posix()
        for line in difflib.unified_diff(
            change.old.splitlines(keepends=True),
            change.new.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        ):
            missing_newline = not line.endswith("\n")
            chunks.append(f"{line}\n\\ No newline at end of file\n" if missing_newline else line)
    return "".join(chunks)


def next_steps(plan: ReleasePlan, root: Path) -> str:
    """The commands that commit, tag and build the release."""
    paths = " ".join(change.path.relative_to(root).as_posix() for change in plan.changes)
    title = f"{plan.package} {plan.new}"
    tag = f"{plan.package}-v{plan.new}"
    return (
        "Next steps:\n"
        f"  git add {paths}\n"
        f'  git commit -m "Release {title}"\n'
        f'  git tag -a {tag} -m "{title}"\n'
        "  nox -s build\n"
    )


class _ArgumentParser(argparse.ArgumentParser):
    """Reports a usage error on one line with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of the release tool."""
    parser = _ArgumentParser(
        prog="release",
        description="Bump one PrismQ package's version and date its changelog.",
    )
    parser.add_argument("package", help="distribution name, or core / api / worker")
    parser.add_argument("version", help="the new version (PEP 440), greater than the current")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the repository to change (default: the one holding this tool)",
    )
    parser.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")
    parser.add_argument(
        "--force",
        action="store_true",
        help="release a core version outside the API's or the worker's declared range",
    )
    parser.add_argument(
        "--date", type=_date, default=None, help="release date (default: today), YYYY-MM-DD"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the release tool; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    date: datetime.date = args.date or datetime.date.today()
    try:
        package = resolve_package(args.package)
        plan = plan_release(root, package, parse_new_version(args.version), date)
    except ReleaseError as error:
        print(f"release: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if plan.broken_ranges:
        ranges = " and ".join(f"{sibling} ({text})" for sibling, text in plan.broken_ranges)
        verb = "declares" if len(plan.broken_ranges) == 1 else "declare"
        outside = f"{CORE} {plan.new} is outside the range that {ranges} {verb}"
        if not args.force:
            print(
                f"release: error: {outside}; widen their range and release them first, "
                "or pass --force",
                file=sys.stderr,
            )
            return EXIT_RANGE_BROKEN
        print(f"release: warning: {outside} (--force)", file=sys.stderr)

    print(f"{plan.package}: {plan.current} -> {plan.new}")
    print(render_diff(plan, root), end="")
    if args.dry_run:
        print("Dry run: nothing was written.")
        return 0
    for change in plan.changes:
        try:
            change.path.write_text(change.new, encoding="utf-8", newline="")
        except OSError as error:
            print(f"release: error: cannot write {change.path}: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    print(f"Wrote {', '.join(c.path.relative_to(root).as_posix() for c in plan.changes)}.")
    print(next_steps(plan, root), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
