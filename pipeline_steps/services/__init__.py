"""The backing services the steps speak to: S3 (or local files), MLflow, and Airflow's REST API."""
