#!/usr/bin/env bash
# make worker MAIN_HOST=<the stack's host> [WORKERS=N] [QUEUES=default,heavy]: Celery workers on
# this host for a stack that runs on another one, started there with
#   make up EXECUTOR=celery WORKER_ADDRESS=<its address>
# Only the Docker API proxy and the workers run here (infra/compose.worker.yml); they reach the
# stack's broker, Postgres, execution API, S3 and MLflow at MAIN_HOST, and nothing else.
# This host needs: a checkout at the stack's commit, the stack's .env copied beside it, and the
# images at that commit (make save-images on the stack's host, then docker load -i here; or
# CT_IMAGE_PREFIX and CT_IMAGE_TAG naming the registry CI pushes them to).
# make worker-down (ACTION=down) stops and removes them; their task logs stay in the volume
# <project>_airflow-logs (arguments after ACTION=down go to compose down: --volumes removes it).
set -euo pipefail
# shellcheck source=stack.sh
source "$(dirname "$0")/stack.sh"
PROJECT="${COMPOSE_PROJECT_NAME:-ct-worker}"
EXTRA_COMPOSE_FILES=(worker.yml)
EXECUTOR=celery
WAIT_SECONDS="${WAIT_SECONDS:-300}"

require_docker
if [ "${ACTION:-up}" = down ]; then
  remove_step_containers  # a step a lost task left; the network cannot go while it stays
  CT_MAIN_ADDRESS=0.0.0.0 compose down --remove-orphans "$@"
  exit 0
fi

[ -n "${MAIN_HOST:-}" ] || die "MAIN_HOST is not set: give the address of the stack's host (make worker MAIN_HOST=10.0.0.5)"
[ -f "$ENV_FILE" ] || die "no $ENV_FILE here: copy the stack's .env from its host (its secrets open the database, the broker and S3)"
grep -q '^REDIS_PASSWORD=' "$ENV_FILE" \
  || die "$ENV_FILE has no REDIS_PASSWORD: start the stack with make up EXECUTOR=celery first, then copy its .env here"
CT_MAIN_ADDRESS="$("${STACK_PY[@]}" resolve "$MAIN_HOST" 2>/dev/null)" || die "MAIN_HOST=$MAIN_HOST: no such host"
export CT_MAIN_ADDRESS
WORKERS="${WORKERS:-1}"
case "$WORKERS" in '' | *[!0-9]* | 0) die "WORKERS=$WORKERS: give a number of Celery workers, 1 or more" ;; esac
heavy="$(setting CT_HEAVY_QUEUE "")"
export CT_WORKER_QUEUES="${QUEUES:-${CT_WORKER_QUEUES:-default${heavy:+,$heavy}}}"

# What the stack's host publishes for workers, at each service's own port.
unreachable="$("${STACK_PY[@]}" reachable "$CT_MAIN_ADDRESS" postgres:5432 redis:6379 airflow-api:8080 s3:9000 \
  mlflow:5000)" || die "cannot reach the stack at $CT_MAIN_ADDRESS: $unreachable (is it up with WORKER_ADDRESS=$CT_MAIN_ADDRESS, and are those ports open to this host?)"

compose_command
"${STACK_PY[@]}" env-file "$ENV_FILE"  # the secret files, from the copied .env
export_runtime_variables
missing=()
for name in "${WORKER_IMAGES[@]}"; do
  image="${CT_IMAGE_PREFIX:-ct-}$name:$CT_IMAGE_TAG"  # loaded, or pulled from CT_IMAGE_PREFIX's registry
  docker image inspect "$image" >/dev/null 2>&1 || docker pull -q "$image" >/dev/null 2>&1 || missing+=("$name")
done
[ "${#missing[@]}" -eq 0 ] || die "images missing for $CT_IMAGE_TAG: ${missing[*]} (on the stack's host: make save-images; here: docker load -i dist/ct-images-$CT_IMAGE_TAG.tar)"

compose up -d --no-deps --remove-orphans --scale "airflow-worker=$WORKERS" docker-proxy airflow-worker

wait_healthy "$WAIT_SECONDS" airflow-worker docker-proxy
names="$(for id in $(compose ps -q airflow-worker); do docker inspect -f 'celery@{{.Config.Hostname}}' "$id"; done | paste -sd ' ')"
echo "worker: $WORKERS Celery worker(s) here serve queue(s) $CT_WORKER_QUEUES for the stack at $CT_MAIN_ADDRESS; its Flower lists them as $names"
