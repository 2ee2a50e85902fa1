"""PrismQ's benchmark harness: the workloads of the project's benchmark page, on both backends.

Run ``python -m benchmarks --help`` from the repository root; see ``benchmarks/README.md``.
"""
