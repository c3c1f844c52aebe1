#!/usr/bin/env python3
"""`make bench-runs` and `make bench-dag` on one stack, as `make bench` runs them.

Each bench alone starts a stack of its own and removes it; together they share one,
which saves `make bench` a `make up` and a `make down` (about 100 s of its 30-minute
budget on 2 cores). bench-runs measures first, on the stack as `make up` left it
(its no-op runs need a Staging model trained on the newest data, which the first
run makes); bench-dag's forced runs follow. Exit code 1 when either misses its target.
"""

from __future__ import annotations

import sys

import dag
import runs


def main() -> int:
    """Up, bench-runs, bench-dag, down; write both results."""
    with runs.STACK.running() as up_seconds:
        run_results = runs.collect(runs.STACK, up_seconds)
        dag_results = dag.collect(runs.STACK, up_seconds)
    return max(runs.finish(run_results), dag.finish(dag_results))


if __name__ == "__main__":
    sys.exit(main())
