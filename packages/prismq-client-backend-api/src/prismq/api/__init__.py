"""PrismQ REST API (``prismq.api``).

The FastAPI service that enqueues, inspects and manages PrismQ tasks over HTTP::

    from prismq.api import ApiSettings, create_app

    app = create_app(ApiSettings(database_url="postgresql://user@host/prismq"))

``prismq-api serve`` runs it under uvicorn, configured by ``PRISMQ_*`` environment
variables (:class:`ApiSettings`). It builds on :mod:`prismq.queue` only and never imports
:mod:`prismq.worker`.
"""

from prismq.api.__about__ import __version__
from prismq.api.app import create_app, create_app_from_env
from prismq.api.settings import ApiSettings

__all__ = ["ApiSettings", "__version__", "create_app", "create_app_from_env"]
