"""The API's routes, one module per resource."""

from __future__ import annotations

from prismq.api.routers.health import router as health_router
from prismq.api.routers.metrics import router as metrics_router
from prismq.api.routers.stats import router as stats_router
from prismq.api.routers.tasks import build_tasks_router
from prismq.api.routers.workers import router as workers_router

__all__ = [
    "build_tasks_router",
    "health_router",
    "metrics_router",
    "stats_router",
    "workers_router",
]
