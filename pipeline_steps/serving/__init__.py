"""The model server: answers prediction requests with the Production model, following its alias.

Its processes share a folder (STATE_VARIABLE names it) and count their Prometheus
metrics in one (METRICS_VARIABLE, prometheus_client's own name): both are named by
the command line (pipeline_steps/steps/model_server.py) before prometheus_client is imported.
"""

STATE_VARIABLE = "CT_SERVE_STATE_DIR"
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
