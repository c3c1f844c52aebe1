"""Airflow's own command line, the DAGs' libraries imported first: how the scheduler and the Celery
workers start, the two that fork a process for each task.

With LocalExecutor every task runs in a process forked from the scheduler's
workers (with CeleryExecutor, from a Celery worker's), and that process parses its
DAG file before it does anything. The
libraries the DAG folder imports (the docker and http providers, the docker SDK,
aiohttp under the http notifier) took 0.5 s of each task's parse, every task of
every run (`make bench-dag`). Imported here, before the workers are forked, they
are inherited and the parse is the DAG folder's own code.

Only what changes with the image (the libraries, and the declarations of the steps
and the settings the image carries): the DAG folder's own modules (``ct_tasks``)
can change while the scheduler runs, and each task reads them afresh.
A DAG test checks that this list covers what the DAG folder imports.

Usage, as the image's ``airflow``: ``python /opt/airflow/airflow_preloaded.py scheduler`` (or
``celery worker``).
"""

from __future__ import annotations

import importlib
import sys

PRELOADED = (
    "airflow.configuration",
    "airflow.providers.docker.exceptions",
    "airflow.providers.docker.hooks.docker",
    "airflow.providers.docker.operators.docker",
    "airflow.providers.http.notifications.http",
    "airflow.providers.standard.operators.hitl",
    "airflow.providers.standard.operators.python",
    "docker.errors",
    "yaml",
    # The steps' and settings' declarations the DAGs read: they change only with the image.
    "pipeline_steps",
    "pipeline_steps.cli",
    "pipeline_steps.pipeline",
    "pipeline_steps.results",
    "pipeline_steps.settings",
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
