"""The steps' entry points: one module a step, each a plain function and a thin CLI.

Each is declared in pipeline_steps/pipeline.py, whose name is its module here, its
image (``ct-<name>``), its Airflow task and its DVC stage; run one with
``python -m pipeline_steps <name> --help``.
"""
