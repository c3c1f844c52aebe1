#!/usr/bin/env bash
# make up: start the whole stack and wait until every service is healthy, the
# buckets exist and the first dataset is published; then print where things are.
# EXECUTOR=celery WORKERS=N: CeleryExecutor, with Redis, N workers and Flower.
# WORKER_ADDRESS=<this host's address>: also for workers on other hosts (make worker there);
# WORKERS may then be 0. The executor and the S3 service chosen are recorded in .env
# (EXECUTOR=, S3_BACKEND=), where make down, make ps and make logs read them; a plain make up
# goes back to LocalExecutor.
set -euo pipefail
# shellcheck source=stack.sh
source "$(dirname "$0")/stack.sh"
WAIT_SECONDS="${WAIT_SECONDS:-600}"

# What was asked for is checked before anything changes.
executor="${EXECUTOR:-local}"
WORKERS="${WORKERS:-2}"
case "$executor" in local | celery) ;; *) die "EXECUTOR=$executor: use local (the default) or celery" ;; esac
case "$WORKERS" in '' | *[!0-9]*) die "WORKERS=$WORKERS: give a number of Celery workers" ;; esac
if [ -n "${WORKER_ADDRESS:-}" ]; then
  [ "$executor" = celery ] || die "WORKER_ADDRESS is for Celery workers on other hosts: add EXECUTOR=celery"
  require_worker_address "$WORKER_ADDRESS"
  export CT_WORKER_ADDRESS="$WORKER_ADDRESS"
  EXTRA_COMPOSE_FILES=(remote-workers.yml)
elif [ "$executor" = celery ] && [ "$WORKERS" = 0 ]; then
  die "WORKERS=0: with no worker here, nothing would run a task (give WORKER_ADDRESS for workers elsewhere)"
fi

require_docker
compose_command
"${STACK_PY[@]}" env-file "$ENV_FILE"
export_runtime_variables

airflow_port="$(setting AIRFLOW_PORT 8080)" mlflow_port="$(setting MLFLOW_PORT 5000)" s3_port="$(setting S3_PORT 9000)"
serve_port="$(setting SERVE_PORT 8000)"
# Ports: taken by something else than this stack is an error worth one line.
if [ -z "$(compose ps -q 2>/dev/null || true)" ]; then
  taken="$("${STACK_PY[@]}" port-in-use "$airflow_port" "$mlflow_port" "$s3_port" "$serve_port")" \
    || die "port $taken is already in use: stop what listens there, or set its *_PORT variable in .env (see .env.example)"
fi

image_available() { docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null 2>&1; }
# service_image VARIABLE IMAGE NAME WHAT: VARIABLE's image (IMAGE unless set) where it can be had,
# else our ct-NAME, built from WHAT; exported as VARIABLE for the compose file.
service_image() {
  local image
  image="$(setting "$1" "$2")"
  if ! image_available "$image"; then
    echo "stack: cannot pull $image; using ${CT_IMAGE_PREFIX:-ct-}$3 ($4)" >&2
    image="${CT_IMAGE_PREFIX:-ct-}$3:$CT_IMAGE_TAG"
  fi
  export "$1=$image"
}

# The images the stack would pull, or the locally built fallbacks.
service_image POSTGRES_IMAGE postgres:16-bookworm postgres "Debian's PostgreSQL"
backend="$(s3_backend)"
# MinIO's image, as compose.minio.yml pins it: compose uses it where Docker has it, else pulls it.
if [ "$backend" = minio ] && ! compose up --no-start --no-deps s3 >/dev/null 2>&1; then
  echo "stack: cannot pull MinIO's image; the S3 service runs SeaweedFS instead (S3_BACKEND=seaweedfs in .env)" >&2
  backend=seaweedfs
  "${STACK_PY[@]}" remember S3_BACKEND seaweedfs
fi
# Leaving celery stops its broker, workers and Flower.
if [ "$(EXECUTOR='' executor)" = celery ] && [ "$executor" != celery ]; then  # what make up chose last
  EXECUTOR=celery compose rm --force --stop -v redis airflow-worker airflow-flower >&2 || true
fi
[ "$(EXECUTOR='' executor)" = "$executor" ] || "${STACK_PY[@]}" remember EXECUTOR "$executor"
EXECUTOR="$executor"
export_runtime_variables  # again: the executor decides the compose profile
if [ "$executor" = celery ]; then
  service_image REDIS_IMAGE redis:7-bookworm redis "Debian's redis-server"
  # Built only for this profile (images/lib.sh OPTIONAL_SERVICES); Postgres's with the others below.
  docker image inspect "$REDIS_IMAGE" >/dev/null 2>&1 || "$REPO_DIR/images/build.sh" redis >&2
fi

# Our own images at this commit; built if missing.
missing=0
for name in "${STEP_ORDER[@]}" "${SERVICE_ORDER[@]}"; do
  docker image inspect "${CT_IMAGE_PREFIX:-ct-}$name:$CT_IMAGE_TAG" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 1 ]; then
  echo "stack: images for $CT_IMAGE_TAG are missing; building them (make build-images)" >&2
  "$REPO_DIR/images/build.sh" >&2
fi

# Step containers whose try is over (their task's scheduler or worker died before removing them).
remove_step_containers exited
scale=()
[ "$executor" = celery ] && scale=(--scale "airflow-worker=$WORKERS")
if ! compose up -d --remove-orphans "${scale[@]}"; then
  for job in "${SETUP_JOBS[@]}"; do compose logs --tail=15 "$job" >&2 || true; done
  die "the stack did not start; the last lines of its setup jobs are above (all logs: make logs)"
fi

# Wait: long-running services healthy, one-shot jobs exited 0.
services=(postgres s3 docker-proxy mlflow airflow-apiserver airflow-scheduler airflow-dag-processor airflow-triggerer
  model-server)
[ "$executor" = celery ] && services+=(redis airflow-flower)
[ "$executor" = celery ] && [ "$WORKERS" != 0 ] && services+=(airflow-worker)
wait_healthy "$WAIT_SECONDS" "${services[@]}" --jobs s3-init airflow-init model-server-init

cat <<MSG
stack: healthy (S3: $backend, images: $CT_IMAGE_TAG)
  Airflow UI   http://localhost:$airflow_port   user admin, password AIRFLOW_ADMIN_PASSWORD in .env
  MLflow UI    http://localhost:$mlflow_port   user admin, password MLFLOW_ADMIN_PASSWORD in .env
  S3 API       http://localhost:$s3_port   keys S3_ACCESS_KEY / S3_SECRET_KEY in .env
  Model server http://localhost:$serve_port/docs   key SERVE_API_KEY in .env; make predict FILE=rows.csv
  Trigger a training run: make run
MSG
if [ "$executor" = celery ]; then
  cat <<MSG
  Executor     CeleryExecutor, $WORKERS worker(s); Flower http://localhost:$(setting FLOWER_PORT 5555)   user admin, password AIRFLOW_ADMIN_PASSWORD in .env
MSG
fi
if [ -n "${WORKER_ADDRESS:-}" ]; then
  cat <<MSG
  Workers elsewhere  published on $WORKER_ADDRESS; on a worker's host: copy .env, load the images (make save-images), make worker MAIN_HOST=$WORKER_ADDRESS
MSG
fi
