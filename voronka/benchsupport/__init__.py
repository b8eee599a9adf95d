"""The bare baseline for ``make bench``: one table and one view that inserts one row per request.

The view is mounted at ``/bench/baseline/`` only when the environment has ``VORONKA_BENCH=1``.
"""
