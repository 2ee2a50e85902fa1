"""``python -m prismq.worker``: the same as the ``prismq-worker`` command."""

import sys

from prismq.worker.cli import main

if __name__ == "__main__":
    sys.exit(main())
