"""The scheduler's entry point: Airflow's own command line, the DAGs' libraries imported first.

With LocalExecutor every task runs in a process forked from the scheduler's
workers, and that process parses its DAG file before it does anything. The
libraries the DAG folder imports (the docker and http providers, the docker SDK,
aiohttp under the http notifier) took 0.5 s of each task's parse, every task of
every run (`make bench-dag`). Imported here, before the workers are forked, they
are inherited and the parse is the DAG folder's own code.

Only libraries, which change with the image: the DAG folder's own modules
(``ct_tasks``) can change while the scheduler runs, and each task reads them afresh.
A DAG test checks that this list covers what the DAG folder imports.

Usage, as the image's ``airflow``: ``python /opt/airflow/ct_scheduler.py scheduler``.
"""

from __future__ import annotations

import importlib
import sys

PRELOADED = (
    "airflow.providers.docker.exceptions",
    "airflow.providers.docker.hooks.docker",
    "airflow.providers.docker.operators.docker",
    "airflow.providers.http.notifications.http",
    "airflow.providers.standard.operators.hitl",
    "airflow.providers.standard.operators.python",
    "docker.errors",
    "yaml",
)


def preload(modules: tuple[str, ...] = PRELOADED) -> None:
    """Import ``modules``, so processes forked from this one have them already."""
    for name in modules:
        importlib.import_module(name)


if __name__ == "__main__":
    preload()
    from airflow.__main__ import main  # pylint: disable=wrong-import-position

    sys.argv[0] = "airflow"
    sys.exit(main())
