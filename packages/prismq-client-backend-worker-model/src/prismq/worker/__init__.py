"""PrismQ worker (``prismq.worker``).

Claims tasks from the PrismQ database and runs their handlers. It builds on
:mod:`prismq.queue` only and never imports FastAPI or :mod:`prismq.api`. The worker engine
is in progress; for now this package provides its version.
"""

from prismq.worker.__about__ import __version__

__all__ = ["__version__"]
