"""Run the PrismQ demo: ``python3 -m nox -s demo`` (which installs the packages first), or,
with the three packages installed, ``python demo/run.py [--postgres URL] [--help]``.

It starts the REST API and one worker as two processes on a fresh SQLite database in
``.demo/`` (or on PostgreSQL), enqueues a sample workload over HTTP, shows its progress and
a summary, and keeps both processes running until Ctrl-C.
"""

from __future__ import annotations

import sys

from prismq_demo.runner import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
