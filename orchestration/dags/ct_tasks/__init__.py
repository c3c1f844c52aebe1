"""Building blocks of the ct-pipeline DAGs: deployment settings, step containers, the gate, notifications.

The DAG files wire these together; keeping them here keeps each DAG file short
and lets the tests exercise each piece alone. `.airflowignore` tells the
dag-processor that no DAG lives in this package.
"""
