"""The PrismQ commands the demo runs: where they are, their environment, and the one-shot
ones (``prismq db upgrade``, ``prismq-api tokens ...``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from prismq_demo.errors import DemoError

#: The folder holding ``prismq_demo``; the worker imports the sample handlers from it.
DEMO_SOURCE_DIR = Path(__file__).resolve().parent.parent
#: Scopes of the demo's token: enqueue (write) and read the tasks, stats and workers back.
TOKEN_SCOPES = ("tasks:read", "tasks:write")
ONE_SHOT_TIMEOUT_SECONDS = 120


def find_command(name: str) -> str:
    """The path of an installed PrismQ command, preferring the one beside this Python."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise DemoError(
            f"The {name} command is not installed in this Python environment ({sys.executable})."
            " Run the demo with `python3 -m nox -s demo`, which installs the three packages, or"
            " install them first: pip install -e packages/prismq-queue-core"
            " -e packages/prismq-client-backend-api -e packages/prismq-client-backend-worker-model"
        )
    return found


def child_environment() -> dict[str, str]:
    """This process's environment without any ``PRISMQ_*`` setting, plus the handlers' path.

    The demo passes every setting on the command line; a ``PRISMQ_DATABASE_URL`` or a
    ``PRISMQ_WORKER_*`` left in the shell must not point it at another database or change
    how the worker runs.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRISMQ_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(DEMO_SOURCE_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["PYTHONUNBUFFERED"] = "1"  # each log line reaches its file at once
    return env


def run_one_shot(command: list[str], database_url: str, what: str) -> str:
    """Run a short PrismQ command on the database; its stdout, or a :class:`DemoError`
    quoting its stderr."""
    # Shown without the URL, which may hold a password (the command's own messages mask it).
    shown = " ".join([Path(command[0]).name, *command[1:]])
    try:
        done = subprocess.run(  # noqa: S603 - our own installed commands, arguments as a list
            [*command, "--database-url", database_url],
            capture_output=True,
            text=True,
            check=False,
            env=child_environment(),
            timeout=ONE_SHOT_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise DemoError(
            f"Could not {what}: `{shown}` did not finish within {ONE_SHOT_TIMEOUT_SECONDS} s."
            " Is the database reachable?"
        ) from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split()) or "nothing on stderr"
        said += "" if said.endswith((".", "?", "!")) else "."
        hint = " Is the database server running, and the URL right?" if "connect" in said else ""
        raise DemoError(
            f"Could not {what}: `{shown}` exited with status {done.returncode}. It said:"
            f" {said}{hint}"
        )
    return done.stdout


def migrate(database_url: str) -> None:
    """Create or upgrade the PrismQ tables with ``prismq db upgrade``."""
    run_one_shot([find_command("prismq"), "db", "upgrade"], database_url, "migrate the database")


def create_token(database_url: str, name: str) -> str:
    """Create an API token with ``prismq-api tokens create`` and return it (its stdout)."""
    command = [find_command("prismq-api"), "tokens", "create", name]
    for scope in TOKEN_SCOPES:
        command += ["--scope", scope]
    output = run_one_shot(command, database_url, "create an API token")
    lines = output.strip().splitlines()
    if len(lines) != 1 or not lines[0].strip():
        raise DemoError(
            "Could not read the token printed by `prismq-api tokens create`: expected one line"
            f" on stdout, got {len(lines)}."
        )
    return lines[0].strip()


def revoke_token(database_url: str, name: str) -> None:
    """Revoke the demo's token by name (``prismq-api tokens revoke``)."""
    command = [find_command("prismq-api"), "tokens", "revoke", name]
    run_one_shot(command, database_url, "revoke the demo's token")
