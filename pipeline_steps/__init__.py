"""The steps of the continuous-training pipeline, each a plain function with a thin CLI.

Run one with ``python -m pipeline_steps.<step> --help``. Airflow starts each in
its own image; ``dvc repro`` runs them all on local files.
"""
