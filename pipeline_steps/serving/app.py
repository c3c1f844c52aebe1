"""The model server's HTTP API (FastAPI): predictions, health, the version served, metrics, MLflow's webhook.

- ``POST /predict``: a JSON list of records (or a CSV table) -> for each record the
  label and the class probabilities, and the model name and version that answered
  (one version per request: the request takes the version serving when it starts).
- ``GET /health``: 200 once a version is loaded, 503 before (the line says why);
  ``GET /health/live``: 200 while the process answers (the container's health check:
  a stack with no Production model yet is still a healthy stack).
- ``GET /version``: the version served, its run, its data version, when it was loaded.
- ``GET /metrics``: Prometheus' text format (pipeline_steps/serving/metrics.py).
- ``POST /feedback``: the true labels of answered rows, by request id and row, stored
  beside the prediction log for monitoring (pipeline_steps/serving/feedback.py).
- ``POST /webhooks/mlflow``: MLflow's registry webhook; a signed alias move makes the
  server look at MLflow now (pipeline_steps/serving/webhook.py).

``/predict``, ``/feedback``, ``/version`` and ``/metrics`` need the key (SERVE_API_KEY) as a bearer
token; the webhook is signed instead; the health checks and the API page (``/docs``)
are open. Every answered row goes to the prediction log (pipeline_steps/serving/prediction_log.py).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from pipeline_steps.serving import answering, feedback, metrics, webhook
from pipeline_steps.serving.answering import RequestProblem
from pipeline_steps.serving.follower import Follower, Served
from pipeline_steps.serving.prediction_log import REQUEST_ID, SERVER, Answered, BufferedLog, labels_as_json

log = logging.getLogger(__name__)
FIRST_CHECK_SECONDS = 60
# A body over SERVE_MAX_REQUEST_BYTES is read this far past it before the 413 (see _body).
DRAIN_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """What the API needs to know besides the model: its names, the key, the limits."""

    model_name: str
    api_key: str
    webhook_secret: str | None
    max_request_bytes: int
    csv_delimiter: str = ","


class Prediction(BaseModel):
    """One record's answer."""

    label: str | int | float | bool
    probabilities: dict[str, float]


class Predictions(BaseModel):
    """The answer to a request: which version answered, and one prediction per record, in order."""

    model_name: str
    model_version: str
    request_id: str
    predictions: list[Prediction]


class Stored(BaseModel):
    """Labels stored: how many, for which model, in which file."""

    model_name: str
    stored: int
    uri: str


class Problem(BaseModel):
    """Why a request got no answer, in one line."""

    detail: str


_RECORDS_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": True,
            "description": "one record: the training columns, in the user's types"}}},
        "text/csv": {"schema": {"type": "string", "description": "a table with a header row"}},
    },
}
_LABELS_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["request_id", "label"], "properties": {
            "request_id": {"type": "string", "description": "the request id an answer carried"},
            "label": {"description": "the true label, one of the model's classes"},
            "row": {"type": "integer", "minimum": 0, "default": 0,
                    "description": "the record's place in its request (0 for the first)"}}}}}},
}
_bearer = HTTPBearer(auto_error=False, description="SERVE_API_KEY (in .env)")


def create_app(config: ServerConfig, follower: Follower, prediction_log: BufferedLog,
               labels: feedback.LabelStore) -> FastAPI:
    """The API, serving what ``follower`` loads and logging to ``prediction_log`` (both run by its
    lifespan); labels sent back are written to ``labels``."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        prediction_log.start()
        # The first look before the first request: uvicorn takes none until this returns, so
        # a process of several never answers 503 while the others already serve. An MLflow that
        # does not answer holds it no longer than this: the process then says 503 until it loads.
        with anyio.move_on_after(FIRST_CHECK_SECONDS):
            await anyio.to_thread.run_sync(follower.check, abandon_on_cancel=True)
        follower.start()
        try:
            yield
        finally:
            follower.stop()
            prediction_log.close()

    # The API page's Swagger UI from the image, not a CDN: a stack without internet shows it too.
    app = FastAPIOffline(title="ct model server", version="1",
                         description=f"Answers with the Production version of {config.model_name}, "
                                     "following its alias: a new version serves within seconds of its "
                                     "approval or rollback.",
                         lifespan=lifespan)

    def require_key(request: Request,
                    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(),
                                                          config.api_key.encode()):
            if request.url.path == "/predict":  # refused before the handler counts it
                metrics.REQUESTS.labels("401").inc()
            raise HTTPException(401, "send the key (SERVE_API_KEY in .env) as 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})

    def waiting() -> str:
        problem = follower.last_problem
        line = (f"no Production model of {config.model_name} is loaded yet: approve a registered version "
                "(make approve, or Required actions in the Airflow UI)")
        return f"{line} ({problem})" if problem else line

    @app.exception_handler(RequestProblem)
    async def _problem(_: Request, exc: RequestProblem) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.post("/predict", response_model=Predictions, dependencies=[Depends(require_key)],
              openapi_extra={"requestBody": _RECORDS_BODY},
              responses={401: {"model": Problem}, 413: {"model": Problem}, 422: {"model": Problem},
                         503: {"model": Problem}})
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        status = 200
        try:
            return await _answer(request, config, follower, prediction_log, waiting)
        except (RequestProblem, HTTPException) as exc:
            status = exc.status if isinstance(exc, RequestProblem) else exc.status_code
            raise
        except Exception:
            status = 500
            raise
        finally:
            metrics.REQUESTS.labels(str(status)).inc()
            metrics.LATENCY.observe(time.perf_counter() - started)

    @app.post("/feedback", response_model=Stored, dependencies=[Depends(require_key)],
              openapi_extra={"requestBody": _LABELS_BODY},
              responses={401: {"model": Problem}, 413: {"model": Problem}, 422: {"model": Problem},
                         503: {"model": Problem}})
    async def take_feedback(request: Request) -> Stored:
        served = follower.current  # the classes a label must be one of
        if served is None:
            raise RequestProblem(503, waiting())
        return await _store_labels(request, config, served, labels)

    @app.get("/health", responses={503: {"model": Problem}})
    def health() -> JSONResponse:
        served = follower.current
        if served is None:
            return JSONResponse({"status": "waiting", "detail": waiting()}, status_code=503)
        return JSONResponse({"status": "ready", "model_name": served.name, "model_version": served.version})

    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/version", dependencies=[Depends(require_key)], responses={503: {"model": Problem}})
    def version() -> JSONResponse:
        served = follower.current
        if served is None:
            return JSONResponse({"detail": waiting()}, status_code=503)
        return JSONResponse({**served.describe(), "alias": "production",
                             "refused_versions": dict(follower.refused)})

    @app.get("/metrics", dependencies=[Depends(require_key)], response_class=Response)
    def prometheus() -> Response:
        content, media_type = metrics.exposition()
        return Response(content, media_type=media_type)

    @app.post("/webhooks/mlflow", include_in_schema=False)
    async def mlflow_webhook(request: Request) -> dict[str, Any]:
        if not config.webhook_secret:
            raise HTTPException(404, "this server takes no webhook (SERVE_WEBHOOK_SECRET is not set)")
        body = await _body(request, 64 * 1024)
        try:
            payload = webhook.verified(config.webhook_secret, request.headers, body)
        except webhook.WebhookRefused as exc:
            log.warning("refused a webhook delivery: %s", exc)
            raise HTTPException(401, str(exc)) from None
        moved = webhook.moves_alias(payload, config.model_name, "production")
        if moved:
            follower.nudge()
        return {"checking": moved}

    return app


async def _answer(request: Request, config: ServerConfig, follower: Follower, prediction_log: BufferedLog,
                  waiting: Callable[[], str]) -> Response:
    """Answer a prediction request with the version serving as it starts; log the rows answered."""
    served = follower.current  # this request's version, to its end
    if served is None:
        raise RequestProblem(503, waiting())
    body = await _body(request, config.max_request_bytes)
    asked = answering.parse(body, request.headers.get("content-type", ""), served.model.schema,
                            config.csv_delimiter)
    probabilities = answering.score(served.model, asked)
    labels, per_class = answering.answers(served.model.schema, probabilities)
    given = request.headers.get("x-request-id", "")
    request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    content = json.dumps({
        "model_name": served.name, "model_version": served.version, "request_id": request_id,
        "predictions": [{"label": label, "probabilities": probs}
                        for label, probs in zip(labels, per_class)],
    }, separators=(",", ":"))
    prediction_log.append(Answered(
        request_id=request_id, predicted_at=datetime.now(timezone.utc), source=SERVER,
        model_name=served.name, model_version=served.version, inputs=asked.records,
        predictions=labels_as_json(labels),
        probabilities=[json.dumps(probs, separators=(",", ":")) for probs in per_class]))
    metrics.ROWS.inc(len(labels))
    return Response(content, media_type="application/json",
                    headers={"X-Model-Version": served.version, "X-Request-Id": request_id})


async def _store_labels(request: Request, config: ServerConfig, served: Served,
                        labels: feedback.LabelStore) -> Stored:
    """Check the labels of a feedback request against the served model's classes; store them at once."""
    body = await _body(request, config.max_request_bytes)
    try:
        records = json.loads(body)
    except ValueError as exc:
        raise RequestProblem(422, f"the body is not JSON ({exc})") from None
    table = feedback.labelled(records, served.model.schema.classes, feedback.SERVER_SOURCE)
    uri = await anyio.to_thread.run_sync(labels.write, served.name, table)
    log.info("stored %d label(s) in %s", table.num_rows, uri)
    return Stored(model_name=served.name, stored=table.num_rows, uri=uri)


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) when it is larger than ``limit`` bytes.

    A client sending a body over the limit is still writing when the answer is ready; answered
    then, the connection closes under it and it sees a broken pipe, not the 413. So up to
    :data:`DRAIN_BYTES` past the limit are read (and dropped) first; a larger body is cut off.
    """
    too_large = RequestProblem(413, f"the body is larger than {limit} bytes (SERVE_MAX_REQUEST_BYTES): "
                                    "send fewer records per request, or score a whole table with make score")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + DRAIN_BYTES:
        raise too_large
    body, size = bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + DRAIN_BYTES:
            raise too_large
        if size <= limit:
            body += chunk
    if size > limit:
        raise too_large
    return bytes(body)
