"""The API and the worker run from environments of their own, installed from the wheels.

The other integration tests start the services from these environments; here we check
that they hold what was built (not the editable sources) and stay apart: the worker's
has no web framework and no API, the API's has no worker.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
from environments import REPOSITORY_ROOT, InstalledCommands

pytestmark = pytest.mark.timeout(120)

_WHERE_MODULES_COME_FROM = """
import importlib.util, json, sys

found = {}
for name in sys.argv[1:]:
    spec = importlib.util.find_spec(name)
    found[name] = None if spec is None else spec.origin or list(spec.submodule_search_locations)
print(json.dumps(found))
"""


def _modules_of(python: str, names: list[str]) -> dict[str, object]:
    """Where ``python`` imports each of ``names`` from (None: not installed)."""
    result = subprocess.run(
        [python, "-c", _WHERE_MODULES_COME_FROM, *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize(
    ("side", "present", "absent"),
    [
        ("api", ["prismq.queue", "prismq.api", "fastapi", "uvicorn"], ["prismq.worker"]),
        (
            "worker",
            ["prismq.queue", "prismq.worker"],
            ["prismq.api", "fastapi", "starlette", "uvicorn"],
        ),
    ],
    ids=["api", "worker"],
)
def test_each_service_has_its_own_environment_built_from_the_wheels(
    installed: InstalledCommands,
    side: str,
    present: list[str],
    absent: list[str],
    checked: Callable[[str], None],
) -> None:
    bin_dir = installed.api_bin if side == "api" else installed.worker_bin
    venv = bin_dir.parent.resolve()
    found = _modules_of(str(bin_dir / "python"), present + absent)

    for name in present:
        origin = found[name]
        assert origin is not None, f"the {side} environment lacks {name}: {found}"
        assert str(venv) in str(origin), f"{name} does not come from {venv}: {origin}"
        assert str(REPOSITORY_ROOT / "packages") not in str(origin), (
            f"{name} is imported from the source tree, not from the wheel: {origin}"
        )
    unwanted = {name: found[name] for name in absent if found[name] is not None}
    assert not unwanted, f"the {side} environment must not have: {unwanted}"
    checked(f"{side} venv: {', '.join(present)} installed in it; {', '.join(absent)} absent")
