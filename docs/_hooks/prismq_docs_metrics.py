"""The ``/metrics`` reference, read from what a real application exports.

An application is built on a throw-away SQLite database holding one task, answers one
request (so the per-request histogram has a sample and shows its labels), and its
Prometheus registry is collected: the table lists exactly the families a scrape returns.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import prismq_docs_markdown as md

from prismq.api.app import create_app
from prismq.api.settings import ApiSettings
from prismq.queue import QueueDatabase, enqueue
from prismq.queue.migrate import upgrade

#: Labels Prometheus adds to every histogram; not ours to document.
_HISTOGRAM_LABELS = {"le"}


async def _get(app: Any, path: str) -> int:
    """Send one GET through the ASGI application; returns the status code."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("docs", 80),
        "client": ("127.0.0.1", 1),
    }
    await app(scope, receive, send)
    return status


def metric_families() -> list[tuple[str, str, list[str], str]]:
    """``(name, type, labels, help)`` of every family the API exports."""
    with tempfile.TemporaryDirectory(prefix="prismq-docs-") as directory:
        url = f"sqlite:///{Path(directory) / 'metrics.db'}"
        with QueueDatabase(url) as db:
            upgrade(db)
            enqueue(db, "example", {})
            app = create_app(ApiSettings(database_url=url), database=db)
            status = asyncio.run(_get(app, "/healthz"))
            if status != 200:
                raise RuntimeError(f"GET /healthz answered {status} while reading the metrics")
            families = []
            for family in app.state.metrics_registry.collect():
                labels: dict[str, None] = {}
                for sample in family.samples:
                    labels.update(dict.fromkeys(sample.labels))
                names = [name for name in labels if name not in _HISTOGRAM_LABELS]
                families.append((family.name, family.type, names, family.documentation))
    return families


def metrics_table() -> str:
    """The metric families as a Markdown table."""
    rows = [
        [
            md.code(name + ("{" + ",".join(labels) + "}" if labels else "")),
            kind,
            md.text(documentation),
        ]
        for name, kind, labels, documentation in metric_families()
    ]
    return md.table(["metric", "type", "meaning"], rows)
