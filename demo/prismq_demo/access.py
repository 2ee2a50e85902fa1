"""What the user needs to reach the running API: its URLs, the token, curl examples."""

from __future__ import annotations

import json


def access_lines(base_url: str, token: str) -> list[str]:
    """The URLs, the token and copy-pasteable curl commands that use them."""
    auth = f'-H "Authorization: Bearer {token}"'
    body = json.dumps({"type": "send_email", "payload": {"to": "you@example.com", "duration_s": 3}})
    return [
        f"  API      {base_url}",
        f"  docs     {base_url}/docs   (press Authorize and paste the token to try the routes)",
        f"  token    {token}   (scopes tasks:read and tasks:write)",
        "",
        "  Try it from another terminal:",
        "",
        "    # the queue at a glance",
        f"    curl -s {base_url}/api/queue/stats {auth}",
        "    # enqueue a task (its handler reports progress for 3 s); the answer holds its task_id",
        f"    curl -sX POST {base_url}/api/queue/enqueue {auth} \\",
        f"         -H 'Content-Type: application/json' -d '{body}'",
        "    # wait until task 1 is finished (put your task_id in place of 1)",
        f"    curl -s '{base_url}/api/queue/tasks/1/wait?timeout=30' {auth}",
        "    # the five newest tasks, and the worker",
        f"    curl -s '{base_url}/api/queue/tasks?limit=5' {auth}",
        f"    curl -s {base_url}/api/queue/workers {auth}",
    ]
