"""The server's Prometheus metrics: requests, errors, latency, rows, the version served, the log.

With several server processes (SERVE_PROCESSES) each counts its own, and ``/metrics``
adds them up: prometheus_client's multiprocess mode, in the folder named by
PROMETHEUS_MULTIPROC_DIR, which the server's command line sets before any process
starts (:func:`exposition` reads it). The version served is one gauge per process
(label ``pid``): each process follows the alias on its own.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, \
    generate_latest, multiprocess

from pipeline_steps.serving import METRICS_VARIABLE

REQUESTS = Counter("ct_predict_requests_total", "Prediction requests answered, by HTTP status",
                   ["status"])
ROWS = Counter("ct_predict_rows_total", "Rows answered with a prediction")
LATENCY = Histogram("ct_predict_latency_seconds", "Time to answer a prediction request (answered or not)",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
VERSION = Gauge("ct_model_version", "The model version this server process answers with (0: none yet)",
                ["model"], multiprocess_mode="liveall")
SWAPS = Counter("ct_model_swaps_total", "Versions loaded, checked and swapped in")
REFUSED = Counter("ct_model_refused_total", "Versions refused: they failed to load or failed their check")
LOGGED = Counter("ct_prediction_log_rows_total", "Rows written to the prediction log")
DROPPED = Counter("ct_prediction_log_dropped_rows_total",
                  "Rows dropped from the prediction log: S3 could not be written for too long")


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format (every process's, added up), and its content type."""
    if os.environ.get(METRICS_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def process_exited(pid: int) -> None:
    """Forget a process's live gauges (uvicorn restarted it, or it stopped)."""
    if os.environ.get(METRICS_VARIABLE):
        multiprocess.mark_process_dead(pid)
