"""``python -m prismq.api``: the same as the ``prismq-api`` command."""

from prismq.api.cli import main

raise SystemExit(main())
