"""The one-command PrismQ demo: an API and a worker process on a sample workload.

``python demo/run.py`` (or ``nox -s demo``) runs it; :mod:`prismq_demo.runner` is the
sequence of steps, :mod:`prismq_demo.handlers` the sample handlers the worker imports.
"""
