"""Pipeline steps as Airflow tasks: one container per step, its result read from stdout alone.

The step CLI's contract (pipeline_steps/cli.py): stdout carries one line, the
step's JSON result; logs and the one-line error go to stderr; exit code 0 is
success, 3 a failure no retry can fix, anything else a failure worth retrying.

DockerOperator's own XCom is the last line of the container's attach stream,
stdout and stderr together, and the Docker daemon does not keep line order
across the two streams: a log line written around the result can arrive after
it, and the result is lost. So these tasks read the result from the container's
**stdout stream alone** (the daemon stores each line with its stream), after the
container has exited and before it is removed. That holds by construction,
whatever the timing.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.hooks.docker import DockerHook
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import BaseOperator, BaseSensorOperator, PokeReturnValue, TriggerRule
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from ct_tasks import stack_config
from pipeline_steps import pipeline
from pipeline_steps.cli import EXIT_PERMANENT
from pipeline_steps.pipeline import Input, Step
from pipeline_steps.settings import STACK, JsonObject, declared

# Every step container carries these labels: `docker ps --filter label=ct.step` finds them.
LABEL_STEP = "ct.step"
LABEL_RUN = "ct.dag_run"
CHECK_CONTAINER_TIMEOUT_SECONDS = 300
# A step result carrying this key did nothing, for the reason given: the task is skipped.
SKIP_REASON = "skip_reason"


def _param_template(param: str, kind: object) -> str:
    """A run's Param as its setting's variable: blank (unset) in a DAG without that Param."""
    if isinstance(kind, JsonObject):
        return f"{{{{ (params.get('{param}') or {{}}) | tojson }}}}"
    return f"{{{{ '' if params.get('{param}') is none else params.get('{param}') }}}}"


def run_settings(params: Any) -> dict[str, str]:
    """The settings a run of this DAG may set as Params (of those its DAG has), as the variables every
    step container gets: evaluate decides the gate with them, tune runs its study, the drift check
    stops the run above its maximum."""
    return {item.name: _param_template(str(item.spec.param), item.spec.kind) for item in declared()
            if item.spec.param and item.spec.param in params and item.spec.scope != STACK}


def _quoted(template: str) -> str:
    """A templated value as one argument of the command line, whatever it renders to."""
    return f"'{{{{ {template} | string | replace(\"'\", '') }}}}'"


def input_value(item: Input) -> str | None:
    """An input's value in a DAG run (templated); None: not given there."""
    if item.step:
        return stack_config.run_location(pipeline.step(item.step))
    if item.result:
        task, field = item.result
        if task in pipeline.BY_NAME:
            return _quoted(f"ti.xcom_pull(task_ids='{task}')['{field}']")
        return _quoted(f"ti.xcom_pull(task_ids='{task}', key='{field}')")
    if item.param:
        return _quoted(f"params.{item.param} or ''")
    return None


def command_of(step: Step) -> str:
    """The step's command line in a DAG run: its inputs and its output, from its declaration.

    An input from an optional step (one a setting turns on) is given only when that step runs.
    """
    parts = []
    for item in step.inputs:
        value = input_value(item)
        if value is None:
            continue
        producer = pipeline.BY_NAME.get(item.step or "")
        when = _run_param(producer) if producer and producer.when else None
        given = f"{item.flag} {value}"
        parts.append(f"{{% if params.{when} %}} {given}{{% endif %}}" if when else f" {given}")
    if step.output:
        parts.append(f" --output {stack_config.run_location(step)}")
    return "".join(parts).strip()


def _run_param(step: Step) -> str:
    """The DAG Param that turns an optional step on (its setting's)."""
    [param] = [item.spec.param for item in declared() if item.name == step.when]
    return str(param)


class StepResultError(AirflowFailException):
    """The step exited 0 but broke its contract (no JSON result on stdout): a bug, not bad luck."""


def read_result(cli: Any, container_id: str) -> dict[str, Any]:
    """The step's JSON result: the last line of the container's stdout stream, stderr ignored."""
    raw = cli.logs(container_id, stdout=True, stderr=False)
    lines = [line for line in raw.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        raise StepResultError("the step exited 0 but printed no result on stdout")
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise StepResultError(
            f"the step's stdout does not end with its JSON result ({exc.msg}): {lines[-1][:200]!r}"
        ) from None
    if not isinstance(result, dict):
        raise StepResultError(f"the step's result is not a JSON object: {lines[-1][:200]!r}")
    return result


def step_failure(cli: Any, container_id: str) -> AirflowException:
    """The exception for a failed step: its own error line, retried only when a retry can help."""
    state = cli.inspect_container(container_id)["State"]
    code = state.get("ExitCode")
    stderr = cli.logs(container_id, stdout=False, stderr=True).decode("utf-8", errors="replace")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    reason = errors[-1] if errors else (lines[-1] if lines else "the step failed with no output")
    if state.get("OOMKilled"):
        reason = "the step ran out of memory"
    if code == EXIT_PERMANENT:
        return AirflowFailException(f"{reason} (exit code {code}: no retry can fix this)")
    return AirflowException(f"{reason} (exit code {code})")


def stopped_from_outside() -> AirflowFailException:
    """Why a step ended when Airflow stopped it (marked failed or its run stopped): no retry."""
    return AirflowFailException(
        "the task was stopped from outside while its container ran (marked failed in the UI "
        "or API, or the scheduler shut down); the container was removed"
    )


def remove_container(cli: Any, container_id: str) -> None:
    """Remove a step container, running or not; one already gone is fine."""
    from docker.errors import NotFound  # pylint: disable=import-outside-toplevel

    try:
        cli.remove_container(container_id, force=True)
    except NotFound:
        pass


def image_with_digest(cli: Any, image_ref: str) -> str:
    """The exact image a step runs (``ct-train:<tag>@sha256:...``), for its provenance tags."""
    return f"{image_ref}@{cli.inspect_image(image_ref)['Id']}"


def container_environment(cli: Any, step: Step) -> dict[str, str]:
    """What a step container gets at run time: the settings, its S3 keys and its exact image."""
    return {
        **stack_config.container_environment(),
        **stack_config.secret_environment(step),
        "STEP_IMAGE": image_with_digest(cli, stack_config.image(step)),
    }


def step_defaults() -> dict[str, Any]:
    """Retries, backoff and timeout of every step task: transient failures retry, with backoff."""
    settings = stack_config.SETTINGS
    return {
        "retries": settings.ct_step_retries,
        "retry_delay": timedelta(seconds=settings.ct_step_retry_delay_seconds),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(minutes=settings.ct_step_timeout_minutes),
    }


def queue_of(step: Step) -> dict[str, str]:
    """The Celery queue of a step's task: CT_HEAVY_QUEUE for the memory-hungry steps, when set.

    Only CeleryExecutor reads it; without the setting, every task has Airflow's default queue.
    """
    if stack_config.SETTINGS.ct_heavy_queue and step.heavy:
        return {"queue": stack_config.SETTINGS.ct_heavy_queue}
    return {}


class StepOperator(DockerOperator):
    """A pipeline step in its own container, on the stack's network; its XCom is the step's result.

    Built from the step's declaration (pipeline_steps/pipeline.py): its image, its command
    line, its queue, and, for an optional step, the run's Param that turns it on. A
    result with ``skip_reason`` (the step found nothing to do) skips the task, the reason
    in its log and in the XCom ``reason``.

    The container's log lines stream into the task log as DockerOperator does;
    the result is then read from stdout alone, and the container is removed
    whatever happened (also when the task is killed).
    """

    template_fields = (*DockerOperator.template_fields, "run_when")

    def __init__(self, *, step: Step, run_when: str | None = None, skip_reason: str | None = None,
                 **kwargs: Any) -> None:
        options: dict[str, Any] = {
            **step_defaults(),
            "task_id": step.name,
            "command": command_of(step),
            "image": stack_config.image(step),
            "docker_url": stack_config.SETTINGS.ct_docker_url,
            "network_mode": stack_config.SETTINGS.ct_docker_network,
            "extra_hosts": stack_config.STEP_EXTRA_HOSTS,
            "environment": stack_config.container_environment(),
            # Its success is the data Asset's event: the training DAG starts on it.
            **({"outlets": [stack_config.DATA_ASSET]} if step.announces else {}),
            **queue_of(step),
            **kwargs,
        }
        super().__init__(
            mount_tmp_dir=False,
            auto_remove="never",  # removed by execute/on_kill, once its stdout has been read
            do_xcom_push=True,
            **options,
        )
        # The run's Params, as the settings they override.
        self.environment = {**self.environment, **run_settings(self.dag.params if self.has_dag() else {})}
        self.step = step.name
        param = _run_param(step) if step.when else None
        self.run_when = run_when if run_when is not None else (f"{{{{ params.{param} }}}}" if param else None)
        self.skip_reason = skip_reason or (f"{step.when} is off (the run's {param} Param)" if param else "")
        self._stopped = False

    def execute(self, context: Any) -> dict[str, Any]:
        if self.run_when is not None and not stack_config.is_true(self.run_when):
            context["ti"].xcom_push(key=pipeline.REASON_KEY, value=self.skip_reason)
            raise AirflowSkipException(f"skipped: {self.skip_reason}")
        self._private_environment = stack_config.secret_environment(pipeline.step(self.step))
        self.environment = {**self.environment, "STEP_IMAGE": image_with_digest(self.cli, self.image)}
        self.labels = {LABEL_STEP: self.step, LABEL_RUN: str(context.get("run_id", ""))}
        try:
            super().execute(context)  # streams the log; raises when the container exits non-zero
            result = read_result(self.cli, self.container["Id"])
        except Exception as exc:
            if self._stopped:
                raise stopped_from_outside() from None
            if isinstance(exc, DockerContainerFailedException):
                raise step_failure(self.cli, self.container["Id"]) from None
            raise
        finally:
            if self.container:
                remove_container(self.cli, self.container["Id"])
        if result.get(SKIP_REASON):
            # The step found nothing to do (e.g. no Production model to score with): a skip, not a failure.
            context["ti"].xcom_push(key=pipeline.REASON_KEY, value=result[SKIP_REASON])
            raise AirflowSkipException(f"skipped: {result[SKIP_REASON]}")
        return result

    def on_kill(self) -> None:
        # Removed at once: `docker stop` would wait 10 s for a step that ignores SIGTERM as
        # PID 1, longer than Airflow waits for this task before killing it.
        self._stopped = True
        if self.container and self.hook.client_created:
            remove_container(self.cli, self.container["Id"])


def wait_seconds(params: dict[str, Any], run_type: str | None) -> int:
    """How long a run waits for new data: the Param if given, else scheduled runs' setting, else 0."""
    minutes = params.get("wait_for_data_minutes")
    if minutes is None:
        minutes = stack_config.SETTINGS.ct_scheduled_wait_minutes if run_type == "scheduled" else 0
    return max(int(minutes), 0) * 60


def no_new_data_message(result: dict[str, Any], waited: float) -> str:
    """Why a run is skipped, in the words `make run` prints."""
    if not result.get("latest_version"):
        return (f"no data version of {result.get('dataset')!r} is published yet "
                "(make publish FILE=path/to/table.csv)")
    staging = result.get("staging_model_version")
    held = f"Staging model version {staging} was trained on it" if staging else "no Staging model"
    waited_text = f" after waiting {waited:.0f}s" if waited else ""
    return (
        f"no data version is newer than the Staging model's{waited_text} "
        f"(latest {str(result.get('latest_version'))[:12]}; {held})"
    )


class NewDataSensor(BaseSensorOperator):
    """Is a data version newer than the Staging model's published? Each poke runs the check's step once.

    By default a run answers at once: one check, then the run goes on or is
    skipped. Only when the run asks to wait (`wait_for_data_minutes`, or scheduled
    runs with CT_SCHEDULED_WAIT_MINUTES) does it poke again until the wait is over.
    It pokes in `poke` mode, never `reschedule`: a reschedule-mode sensor can be
    failed by the scheduler itself when a finished poke is reported after the
    sensor was re-queued (apache/airflow#71172).
    """

    def __init__(self, *, step: Step, **kwargs: Any) -> None:
        for key, value in step_defaults().items():
            kwargs.setdefault(key, value)
        kwargs.setdefault("poke_interval", stack_config.SETTINGS.ct_wait_poke_seconds)
        super().__init__(task_id=step.name, mode="poke", timeout=timedelta(hours=24), **kwargs)
        self.step = step
        self._container_id: str | None = None
        self._started = 0.0
        self._wait = 0
        self._stopped = False

    @property
    def cli(self) -> Any:
        """The Docker API client the step tasks use, at the stack's Docker URL."""
        return DockerHook(docker_conn_id=None, base_url=stack_config.SETTINGS.ct_docker_url).api_client

    def execute(self, context: Any) -> Any:
        self._wait = wait_seconds(context["params"], getattr(context.get("dag_run"), "run_type", None))
        self.timeout = self._wait + 2 * self.poke_interval + CHECK_CONTAINER_TIMEOUT_SECONDS
        self._started = time.monotonic()
        return super().execute(context)

    def check(self, context: Any) -> dict[str, Any]:
        """Run the check's container once and return its result."""
        cli = self.cli
        container = cli.create_container(
            image=stack_config.image(self.step),
            environment=container_environment(cli, self.step),
            host_config=cli.create_host_config(network_mode=stack_config.SETTINGS.ct_docker_network,
                                               extra_hosts=stack_config.STEP_EXTRA_HOSTS),
            labels={LABEL_STEP: self.step.name, LABEL_RUN: str(context.get("run_id", ""))},
        )
        self._container_id = container["Id"]
        try:
            cli.start(self._container_id)
            status = cli.wait(self._container_id, timeout=CHECK_CONTAINER_TIMEOUT_SECONDS)
            for line in cli.logs(self._container_id, stdout=True, stderr=True).decode(
                "utf-8", errors="replace"
            ).splitlines():
                self.log.info("%s", line)
            if status.get("StatusCode") != 0:
                raise step_failure(cli, self._container_id)
            return read_result(cli, self._container_id)
        except Exception:
            if self._stopped:
                raise stopped_from_outside() from None
            raise
        finally:
            remove_container(cli, self._container_id)
            self._container_id = None

    def poke(self, context: Any) -> PokeReturnValue | bool:
        result = self.check(context)
        force = bool(context["params"].get("force"))
        if result.get("latest_version") and (result.get("new_data") or force):
            self.log.info("new data: %s (force=%s)", result.get("new_data"), force)
            return PokeReturnValue(is_done=True, xcom_value={**result, "forced": force})
        waited = time.monotonic() - self._started
        if waited + self.poke_interval > self._wait:
            reason = no_new_data_message(result, waited if self._wait else 0)
            context["ti"].xcom_push(key="return_value", value={**result, "forced": False})
            context["ti"].xcom_push(key=pipeline.REASON_KEY, value=reason)
            raise AirflowSkipException(f"skipped: {reason}")
        self.log.info("no new data yet; next check in %ss (waiting up to %ss)",
                      self.poke_interval, self._wait)
        return False

    def on_kill(self) -> None:
        self._stopped = True
        if self._container_id:
            remove_container(self.cli, self._container_id)


def for_dag(dag_id: str) -> dict[str, BaseOperator]:
    """A task for each step of the DAG (pipeline_steps/pipeline.py), by its name: a sensor for a check
    the run waits on, a container for the others."""
    tasks: dict[str, BaseOperator] = {}
    for step in pipeline.of_dag(dag_id):
        if step.sensor:
            tasks[step.name] = NewDataSensor(step=step)
            continue
        optional = [name for name in step.waits_for if name in pipeline.BY_NAME and pipeline.step(name).when]
        # After an optional step: runs when that one was skipped because it is off, never when a step
        # before it stopped the run (then the optional one is skipped too and nothing succeeded).
        rule = {"trigger_rule": TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS} if optional else {}
        # A rollback retried after it half moved the alias could go back one version too far.
        retries = {"retries": 0} if dag_id == pipeline.ROLLBACK_DAG else {}
        tasks[step.name] = StepOperator(step=step, **rule, **retries)
    return tasks


def wire(dag_id: str, tasks: dict[str, BaseOperator]) -> None:
    """Each task after the ones it starts after, as the pipeline's graph declares them."""
    for name, upstream in pipeline.graph(dag_id).items():
        for before in upstream:
            tasks[before].set_downstream(tasks[name])
