"""PrismQ REST API (``prismq.api``).

The FastAPI service that enqueues, inspects and manages PrismQ tasks over HTTP. It builds
on :mod:`prismq.queue` only and never imports :mod:`prismq.worker`. The service itself is in
progress; for now this package provides its version.
"""

from prismq.api.__about__ import __version__

__all__ = ["__version__"]
