"""The stack's configuration as the DAGs see it: the declared settings (pipeline_steps/settings.py).

The compose file gives every Airflow service the stack's settings (the ones set in
``.env``) and mounts the working copy's params.yaml, which the steps read too; a
variable that is set wins over the file, as in every step. What a step container
is passed comes from the same declaration (:func:`step_environment`), with the
whole params.yaml as CT_PARAMS, because a container started through the Docker API
proxy can mount nothing; its secrets only when it runs (:func:`secret_environment`),
so they never enter the serialized DAG or the UI.
"""

from __future__ import annotations

import json
import os

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from pipeline_steps.pipeline import Step
from pipeline_steps.settings import PARAMS_VARIABLE, Settings, load_params, load_settings, step_environment

SETTINGS: Settings = load_settings()
PARAMS_JSON = json.dumps(load_params())  # what every step container gets as CT_PARAMS
# The run's id as an S3 path segment (templated): outputs live under runs/<this>/ or predictions/<this>/.
RUN_ID_PATH = "{{ dag_run.run_id | replace(':', '-') | replace('+', '-') }}"
# The webhook itself is the Airflow connection NOTIFY_CONN_ID (AIRFLOW_CONN_CT_NOTIFY).
NOTIFY_CONN_ID = "ct_notify"
# The training data's pointer as an Asset: an event on it (make publish posts one; so does the monitor's
# publish task by succeeding) starts the training DAG.
DATA_ASSET = Asset(name=f"{SETTINGS.dataset_name}_data", uri=SETTINGS.published_pointer_uri)
# The S3 identity every step signs with unless its declaration names another (Step.s3_identity).
PIPELINE_IDENTITY = "PIPELINE"


def is_true(value: object) -> bool:
    """A yes/no setting or rendered template: true, 1 or yes (any case) mean yes."""
    return str(value).strip().lower() in ("1", "true", "yes")


def host_entries(raw: str) -> dict[str, str] | None:
    """``name:address,...`` as Docker's extra hosts; None when blank.

    A worker on another host (make worker) has no stack network to find s3 and mlflow
    on: its step containers get them as /etc/hosts entries (CT_STEP_EXTRA_HOSTS), so
    they use the same names and the same settings as on the stack's own host.
    """
    entries: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        name, _, address = entry.partition(":")  # an IPv6 address has colons; a name has none
        if not name.strip() or not address.strip():
            raise ValueError(f"CT_STEP_EXTRA_HOSTS: {entry!r} is not name:address")
        entries[name.strip()] = address.strip()
    return entries or None


STEP_EXTRA_HOSTS = host_entries(SETTINGS.ct_step_extra_hosts)


def image(step: Step) -> str:
    """The image of a step, at the tag this stack was deployed with."""
    return f"{SETTINGS.ct_image_prefix}{step.image}:{SETTINGS.ct_image_tag}"


def run_location(step: Step) -> str:
    """Where a step writes in a run (templated): its declared place in the runs bucket."""
    return f"s3://{SETTINGS.s3_runs_bucket}/" + str(step.output).format(run=RUN_ID_PATH, step=step.name)


def container_environment() -> dict[str, str]:
    """The non-secret settings every step container gets (shown in the UI), params.yaml among them."""
    return {**step_environment(SETTINGS), PARAMS_VARIABLE: PARAMS_JSON, "PYTHONUNBUFFERED": "1"}


def secret_environment(step: Step) -> dict[str, str]:
    """S3 keys and the MLflow login, read when the task runs, so they never enter the serialized DAG.

    A step whose declaration names another S3 identity than the steps' gets that identity's keys,
    which the Airflow services hold as the secrets S3_<identity>_ACCESS_KEY and _SECRET_KEY; no
    other step container sees them.
    """
    found = step_environment(load_settings(), secret=True)
    if step.s3_identity == PIPELINE_IDENTITY:
        return found
    names = {"AWS_ACCESS_KEY_ID": f"S3_{step.s3_identity}_ACCESS_KEY",
             "AWS_SECRET_ACCESS_KEY": f"S3_{step.s3_identity}_SECRET_KEY"}
    missing = [name for name in names.values() if not os.environ.get(name)]
    if missing:
        raise AirflowFailException(f"{step.name} signs with the S3 identity {step.s3_identity}, but this "
                                   f"Airflow service has no {' or '.join(missing)} (its secrets: "
                                   "infra/docker-compose.yml, x-airflow)")
    return {**found, **{variable: os.environ[name] for variable, name in names.items()}}
