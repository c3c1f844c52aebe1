"""Notifications to a person: a failed task, a run the quality gate stopped, a rejected promotion.

Airflow's own notifier mechanism does the sending: the http provider's
`HttpNotifier`, attached as `on_failure_callback` to every task and as
`on_success_callback` to the gate's stop. It POSTs JSON to the Airflow
connection `ct_notify`, which the compose file builds from CT_NOTIFY_WEBHOOK in
.env; `text` reads well in Slack-, Mattermost- or Rocket.Chat-style webhooks,
the other fields are for machines. With no webhook set, nothing is attached.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.configuration import conf
from airflow.providers.http.notifications.http import HttpNotifier
from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

from ct_tasks import stack_config
from pipeline_steps.pipeline import GATE_TASK, KEEP_TASK, REASON_KEY

GATE_REASON = f"{{{{ ti.xcom_pull(task_ids='{GATE_TASK}', key='{REASON_KEY}') }}}}"
THE_RUN = "{{ dag.dag_id }} run {{ run_id }}"
TASK_PAGE = "{{ ti.log_url }}"


def payload(outcome: str, headline: str, reason: str) -> dict[str, str]:
    """The JSON body: DAG, run, task, outcome, reason and the task's page in the UI (templated)."""
    return {
        "text": f"{THE_RUN}: {headline}: {reason} ({TASK_PAGE})",
        "dag_id": "{{ dag.dag_id }}",
        "run_id": "{{ run_id }}",
        "task_id": "{{ ti.task_id }}",
        "try_number": "{{ ti.try_number }}",
        "outcome": outcome,
        "reason": reason,
        "url": TASK_PAGE,
    }


def _notifiers(outcome: str, headline: str, reason: str) -> list[Any]:
    if not stack_config.SETTINGS.ct_notify_webhook:
        return []
    return [
        HttpNotifier(
            http_conn_id=stack_config.NOTIFY_CONN_ID,
            json=payload(outcome, headline, reason),
            extra_options={"timeout": 10},
        )
    ]


def on_task_failure() -> list[Any]:
    """Callbacks for a task that failed for good (after its retries): its exception is the reason."""
    return _notifiers("failed", "{{ ti.task_id }} failed", "{{ exception }}")


def on_gate_stop() -> list[Any]:
    """Callbacks for the gate's stop: the gate's reason, with both numbers."""
    return _notifiers("stopped", "stopped by the quality gate, nothing registered", GATE_REASON)


def on_promotion_kept() -> list[Any]:
    """Callbacks for a version a person rejected (or nobody approved in time): Production unchanged."""
    return _notifiers("rejected", "not promoted, Production unchanged",
                      f"{{{{ ti.xcom_pull(task_ids='{KEEP_TASK}', key='{REASON_KEY}') }}}}")


def run_deadline(minutes: int, setting: str) -> DeadlineAlert | None:
    """Airflow's Deadline Alert for a run not finished ``minutes`` after it was queued: the notifier
    is told, with the run's page, while the run still goes (none without a webhook).

    It runs in the triggerer, with the run (``dag_run``) as its context: no task has failed yet.
    """
    if not stack_config.SETTINGS.ct_notify_webhook:
        return None
    run = "{{ dag_run.dag_id }} run {{ dag_run.dag_run_id }}"
    page = (f"{conf.get('api', 'base_url', fallback='http://localhost:8080').rstrip('/')}"
            "/dags/{{ dag_run.dag_id }}/runs/{{ dag_run.dag_run_id | urlencode }}")
    reason = f"not finished {minutes} min after it was queued ({setting}); it is {{{{ dag_run.state }}}}"
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(HttpNotifier, kwargs={
            "http_conn_id": stack_config.NOTIFY_CONN_ID,
            "json": {"text": f"{run}: {reason} ({page})", "dag_id": "{{ dag_run.dag_id }}",
                     "run_id": "{{ dag_run.dag_run_id }}", "outcome": "late", "reason": reason, "url": page},
        }),
    )
