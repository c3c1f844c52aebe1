"""What every DAG of the stack shares: no backfill, one run at a time (a setting), notified failures
(and, for the DAGs that have one, a notified deadline)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ct_tasks import notify, stack_config


def dag_arguments(*deadlines: Any) -> dict[str, Any]:
    """Keyword arguments every DAG of the stack passes to DAG(); ``deadlines``: its Deadline Alerts
    (notify.run_deadline...; a None, as without a webhook, is left out)."""
    deadline = [alert for alert in deadlines if alert is not None]
    return {
        "start_date": datetime(2026, 1, 1),
        "catchup": False,
        "max_active_runs": stack_config.SETTINGS.ct_max_active_runs,
        "tags": ["ct", "xgboost"],
        "default_args": {"on_failure_callback": notify.on_task_failure()},
        **({"deadline": deadline} if deadline else {}),
    }
