"""Promotion with a person in the loop: the approval request, and what a rejection leaves.

After `register_model`, `approve_promotion` asks a person (Airflow's
human-in-the-loop "Required actions", in the UI or through the REST API) whether
the new version should serve Production. The request shows the candidate's
metrics next to the Staging model's (on the same test rows) and the Production
model's, with a link to the MLflow run. Approve runs `promote_model`; Reject, or
no answer within CT_APPROVAL_TIMEOUT_HOURS, runs `keep_production`, which says
Production is unchanged and notifies. With the `auto_approve` Param (default
CT_AUTO_APPROVE) the request is never made and the branch goes straight on.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator

from ct_tasks import stack_config
from pipeline_steps.pipeline import APPROVAL_TASK, APPROVED_BY_KEY, GATE_TASK, KEEP_TASK, REASON_KEY, step
from pipeline_steps.results import RegisterResult

log = logging.getLogger(__name__)
PROMOTE_TASK, REGISTERED = step("promote").name, step("register").name
APPROVE, REJECT = "Approve", "Reject"
ANSWER_KEY = "answer"
AUTO_APPROVED_BY = "auto_approve"


def run_link(summary: dict[str, Any] | None) -> str:
    """The MLflow UI page of the model version's run."""
    if not summary or not summary.get("run_id"):
        return "(no run)"
    base = stack_config.SETTINGS.ct_mlflow_ui_url.rstrip("/")
    return f"{base}/#/experiments/{summary.get('experiment_id') or 0}/runs/{summary['run_id']}"


def _cell(metrics: dict[str, Any] | None, name: str) -> str:
    value = (metrics or {}).get(name)
    return "–" if value is None else f"{float(value):.4f}"


def request_body(registered: RegisterResult, reason: str) -> str:
    """The approval request in Markdown: candidate, Staging (same rows) and Production, side by side."""
    version = registered["version"]
    champion = registered.get("champion") or {}
    production = registered.get("production") or {}
    columns = [(f"candidate v{version}", registered.get("metrics"))]
    if champion.get("scored"):
        columns.append((f"Staging v{champion['version']} (same rows)", champion.get("metrics")))
    if production:
        title = f"Production v{production['version']} (its own test rows)"
        columns.append((title, production.get("metrics")))
    names = sorted((registered.get("metrics") or {}).keys())
    table = ["| metric | " + " | ".join(title for title, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    table += [f"| {name} | " + " | ".join(_cell(m, name) for _, m in columns) + " |" for name in names]
    serving = f"version {production['version']}" if production else "no model yet"
    return "\n".join([
        f"**{registered['model_name']} version {version}** passed the quality gate: {reason}",
        "",
        *table,
        "",
        f"Data version: `{registered.get('data_version')}`. "
        f"MLflow run: [{registered.get('run_id')}]({run_link(registered)})"
        + (f"; Production's run: [{production.get('run_id')}]({run_link(production)})" if production else ""),
        "",
        f"**Approve** serves version {version} as Production (batch scoring uses it from its next run). "
        f"**Reject** keeps Production as it is ({serving}). No answer within "
        f"{stack_config.SETTINGS.ct_approval_timeout_hours:g} h counts as Reject.",
    ])


class PromotionApproval(HITLBranchOperator):
    """Approve or Reject the registered version; auto-approved when the run's Param says so."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            subject="Serve the new model version as Production?",
            options=[APPROVE, REJECT],
            options_mapping={APPROVE: PROMOTE_TASK, REJECT: KEEP_TASK},
            defaults=[REJECT],
            response_timeout=timedelta(hours=stack_config.SETTINGS.ct_approval_timeout_hours),
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        ti = context["ti"]
        registered = ti.xcom_pull(task_ids=REGISTERED)
        if context["params"].get("auto_approve"):
            log.info("auto-approved by the run's auto_approve Param: promoting version %s",
                     registered["version"])
            ti.xcom_push(key=APPROVED_BY_KEY, value=AUTO_APPROVED_BY)
            return self.do_branch(context, [PROMOTE_TASK])
        reason = ti.xcom_pull(task_ids=GATE_TASK, key=REASON_KEY) or ""
        self.subject = f"Serve {registered['model_name']} version {registered['version']} as Production?"
        self.body = request_body(registered, reason)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        user = event.get("responded_by_user") or {}
        name = user.get("name") or user.get("id")
        chosen = ", ".join(event.get("chosen_options") or [])
        answer = (f"{chosen} by {name}" if name
                  else f"no answer within {stack_config.SETTINGS.ct_approval_timeout_hours:g} h, so {chosen}")
        context["ti"].xcom_push(key=APPROVED_BY_KEY, value=name or "nobody (timed out)")
        context["ti"].xcom_push(key=ANSWER_KEY, value=answer)
        log.info("answer: %s", answer)
        return super().execute_complete(context, event)


def report_kept(ti: Any) -> str:
    """keep_production's callable: the new version stays in Staging, Production is unchanged."""
    registered = ti.xcom_pull(task_ids=REGISTERED) or {}
    answer = ti.xcom_pull(task_ids=APPROVAL_TASK, key=ANSWER_KEY) or "no answer"
    production = registered.get("production")
    serving = f"version {production['version']}" if production else "no model yet"
    reason = (f"version {registered.get('version')} stays in Staging ({answer}): "
              f"Production is unchanged and serves {serving}")
    log.warning("%s", reason)
    ti.xcom_push(key=REASON_KEY, value=reason)
    return reason
