"""Notifications to a person: a failed task, a run the quality gate stopped, a rejected promotion, a
monitor run that set off a trigger, and a run (or an approval) about to miss its deadline.

Airflow's own notifier mechanism does the sending: the http provider's
`HttpNotifier`, attached as `on_failure_callback` to every task, as
`on_success_callback` to the gate's stop and to the monitor (when it set off a
trigger), and as the callback of the DAGs' Deadline Alerts. It POSTs JSON to the Airflow
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


class _WhenTriggered:  # pylint: disable=too-few-public-methods  # a callback: one call
    """The monitor's success callback: send the notification only when the run set off a trigger."""

    def __init__(self, task_id: str, notifier: Any) -> None:
        self.task_id, self.notifier = task_id, notifier

    def __call__(self, context: Any) -> None:
        if (context["ti"].xcom_pull(task_ids=self.task_id) or {}).get("triggers"):
            self.notifier(context)


def on_monitor_triggers(monitor: str) -> list[Any]:
    """Callbacks for the monitor task (``monitor``) when its run set off a trigger (drift, decay): each
    trigger's one-line reason; a quiet window sends none."""
    reasons = (f"{{{{ (ti.xcom_pull(task_ids='{monitor}') or {{}}).get('triggers', []) "
               "| map(attribute='reason') | join('; ') }}")
    return [_WhenTriggered(monitor, notifier)
            for notifier in _notifiers("triggered", "the Production model's monitoring set off", reasons)]


def _run_page() -> str:
    """The run's page in the UI, from a deadline callback's context (the run, no task)."""
    return (f"{conf.get('api', 'base_url', fallback='http://localhost:8080').rstrip('/')}"
            "/dags/{{ dag_run.dag_id }}/runs/{{ dag_run.dag_run_id | urlencode }}")


def _deadline(minutes: float, outcome: str, reason: str) -> DeadlineAlert | None:
    """A Deadline Alert ``minutes`` after the run was queued: the notifier is told ``reason``, with the
    run's page, while the run still goes (none without a webhook; Airflow drops it once the run ends).

    It runs in the triggerer, with the run (``dag_run``) as its context: no task has failed yet.
    """
    if not stack_config.SETTINGS.ct_notify_webhook:
        return None
    run = "{{ dag_run.dag_id }} run {{ dag_run.dag_run_id }}"
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(HttpNotifier, kwargs={
            "http_conn_id": stack_config.NOTIFY_CONN_ID,
            "json": {"text": f"{run}: {reason} ({_run_page()})", "dag_id": "{{ dag_run.dag_id }}",
                     "run_id": "{{ dag_run.dag_run_id }}", "outcome": outcome, "reason": reason,
                     "url": _run_page()},
        }),
    )


def run_deadline(minutes: int, setting: str) -> DeadlineAlert | None:
    """Airflow's Deadline Alert for a run not finished ``minutes`` after it was queued (none without a
    webhook)."""
    return _deadline(minutes, "late",
                     f"not finished {minutes} min after it was queued ({setting}); "
                     "it is {{ dag_run.state }}")


def approval_reminder() -> DeadlineAlert | None:
    """A Deadline Alert CT_APPROVAL_REMIND_MINUTES before an approval request would time out, counted
    from the run's queueing (none without a webhook, or when requests never time out).

    Airflow's deadlines count from the run, not from a task, and the request is asked only after
    training: so the reminder comes at least that long before the request's own timeout, and a run
    still going then is, in all but a stuck one (which its own deadline has told of long before),
    waiting for a person.
    """
    settings = stack_config.SETTINGS
    if settings.ct_auto_approve or not settings.ct_approval_timeout_hours:
        return None
    minutes = max(settings.ct_approval_timeout_hours * 60 - settings.ct_approval_remind_minutes, 1)
    return _deadline(minutes, "approval_due",
                     f"still going {minutes:g} min after it was queued: a promotion waiting for approval "
                     f"counts as Reject {settings.ct_approval_timeout_hours:g} h after it was asked "
                     "(CT_APPROVAL_TIMEOUT_HOURS); approve or reject it on the run's page")
