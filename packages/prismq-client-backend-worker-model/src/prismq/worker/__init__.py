"""PrismQ worker (``prismq.worker``): claims tasks from the PrismQ database and runs them.

Register handlers on a :class:`TaskHandlerRegistry`, describe the worker with a
:class:`WorkerConfig`, and run a :class:`WorkerEngine` made by
:meth:`WorkerDatabase.create_worker` (or the ``prismq-worker`` command). It builds on
:mod:`prismq.queue` only and never imports FastAPI or :mod:`prismq.api`.
"""

from prismq.queue import SchedulingStrategy
from prismq.worker.__about__ import __version__
from prismq.worker.config import WorkerConfig
from prismq.worker.context import TaskContext
from prismq.worker.database import WorkerDatabase, WorkerNotFoundError, create_worker_from_config
from prismq.worker.engine import WorkerEngine
from prismq.worker.errors import (
    HandlerAlreadyRegisteredError,
    HandlerLoadError,
    PermanentTaskError,
    TaskHandlerNotRegisteredError,
    WorkerConfigError,
    WorkerError,
)
from prismq.worker.execution import TaskExecutor
from prismq.worker.handler_loader import TaskHandlerConfigLoader
from prismq.worker.outcomes import TaskOutcome
from prismq.worker.registry import (
    HandlerInfo,
    TaskHandlerRegistry,
    load_registry,
    merge_registries,
)
from prismq.worker.stats import WorkerStats

__all__ = [
    "HandlerAlreadyRegisteredError",
    "HandlerInfo",
    "HandlerLoadError",
    "PermanentTaskError",
    "SchedulingStrategy",
    "TaskContext",
    "TaskExecutor",
    "TaskHandlerConfigLoader",
    "TaskHandlerNotRegisteredError",
    "TaskHandlerRegistry",
    "TaskOutcome",
    "WorkerConfig",
    "WorkerConfigError",
    "WorkerDatabase",
    "WorkerEngine",
    "WorkerError",
    "WorkerNotFoundError",
    "WorkerStats",
    "__version__",
    "create_worker_from_config",
    "load_registry",
    "merge_registries",
]
