# Shared by the stack scripts (sourced): the compose command, its files and the
# variables the compose file reads that are not secrets (secrets live in .env, and
# reach the containers as files from .env.secrets/; settings as .env.settings).
# What needs parsing or waiting is stack.py's (STACK_PY).
# shellcheck shell=bash

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(dirname "$STACK_DIR")"
ENV_FILE="${ENV_FILE:-$REPO_DIR/.env}"
export ENV_FILE
PROJECT="${COMPOSE_PROJECT_NAME:-ct}"
STACK_PY=(python3 "$STACK_DIR/scripts/stack.py")
# shellcheck source=../../images/lib.sh
source "$REPO_DIR/images/lib.sh"

die() { echo "error: $*" >&2; exit 1; }

# A Docker daemon that answers: set up where this script can (root with apt-get,
# as `make test` does), otherwise one line saying what to run.
require_docker() {
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "stack: Docker is missing or not running; setting it up (infra/scripts/ensure-docker.sh)" >&2
    "$STACK_DIR/scripts/ensure-docker.sh" || die "Docker could not be set up; the reason is above"
    return 0
  fi
  command -v docker >/dev/null 2>&1 \
    || die "Docker is not installed: run 'sudo make docker-ready' (Debian/Ubuntu) or install Docker Engine"
  die "the Docker daemon is not answering: run 'sudo make docker-ready' or start it ('sudo systemctl start docker')"
}

compose_command() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
  else
    die "neither 'docker compose' nor 'docker-compose' is installed: install Docker Compose"
  fi
}

# setting NAME DEFAULT: the environment's value, else .env's, else DEFAULT.
setting() { "${STACK_PY[@]}" get "$1" "$2"; }
# The S3 service and the executor: the environment's, else what make up recorded in .env, else the default.
s3_backend() { setting S3_BACKEND minio; }
executor() { setting EXECUTOR local; }

export_runtime_variables() {
  CT_IMAGE_TAG="${CT_IMAGE_TAG:-$(git_tag)}"
  DOCKER_GID="$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)"
  CT_SECRETS_DIR="$ENV_FILE.secrets"  # one file per secret, written by stack.py env-file
  CT_SETTINGS_FILE="$ENV_FILE.settings"  # the settings set in .env, for the services (stack.py env-file)
  # The stack's own network: its containers and the step containers Airflow starts join it by name.
  CT_DOCKER_NETWORK="${PROJECT}_mlops"
  COMPOSE_PROJECT_NAME="$PROJECT"
  export CT_IMAGE_TAG DOCKER_GID CT_SECRETS_DIR CT_SETTINGS_FILE CT_DOCKER_NETWORK COMPOSE_PROJECT_NAME
  local others  # the caller's own COMPOSE_PROFILES, without ours
  others="$(echo ",${COMPOSE_PROFILES:-}," | sed 's/,celery,/,/g; s/^,//; s/,$//')"
  case "$(executor)" in
    local) CT_AIRFLOW_EXECUTOR=LocalExecutor COMPOSE_PROFILES="$others" ;;
    celery) CT_AIRFLOW_EXECUTOR=CeleryExecutor COMPOSE_PROFILES="celery${others:+,$others}" ;;
    *) die "EXECUTOR=$(executor): use local (the default) or celery" ;;
  esac
  export CT_AIRFLOW_EXECUTOR COMPOSE_PROFILES
}

# WORKER_ADDRESS: an address of this host that workers on other hosts reach. Not a loopback
# or wildcard one: the ports are published on 127.0.0.1 already, and 0.0.0.0 would clash.
require_worker_address() {
  case "$1" in
    0.0.0.0 | :: | 127.* | ::1 | localhost)
      die "WORKER_ADDRESS=$1: give this host's address on the network its workers are on, not a loopback or wildcard one" ;;
  esac
  "${STACK_PY[@]}" host-address "$1" || die "WORKER_ADDRESS=$1 is not an address of this host (see: ip -brief address)"
}

# Compose files over the stack's own (infra/compose.<name>.yml): remote-workers when make up
# publishes the stack for workers on other hosts, worker on such a host (make worker).
EXTRA_COMPOSE_FILES=()

# compose ARGS...: run compose on the stack with the chosen S3 service (and EXTRA_COMPOSE_FILES).
compose() {
  compose_command
  export_runtime_variables
  local backend
  backend="$(s3_backend)"
  [ -f "$STACK_DIR/compose.$backend.yml" ] || die "S3_BACKEND=$backend: no infra/compose.$backend.yml (use minio or seaweedfs)"
  # make up writes it (stack.py env-file); compose reads it to load the file at all, down and ps too.
  [ -f "$CT_SETTINGS_FILE" ] || : >"$CT_SETTINGS_FILE"
  "${COMPOSE[@]}" --project-name "$PROJECT" --project-directory "$STACK_DIR" --env-file "$ENV_FILE" \
    -f "$STACK_DIR/docker-compose.yml" -f "$STACK_DIR/compose.$backend.yml" \
    "${EXTRA_COMPOSE_FILES[@]/#/--file=$STACK_DIR/compose.}" "$@"
}

# wait_healthy SECONDS SERVICE... [--jobs JOB...]: until they are; the setup jobs' last lines when not.
# The services whose last lines say why a stack did not start.
SETUP_JOBS=(airflow-init s3-init mlflow model-server-init)

wait_healthy() {
  local code=0
  "${STACK_PY[@]}" wait "$PROJECT" "$@" || code=$?
  if [ "$code" -ne 0 ]; then
    compose ps >&2 || true
    for job in "${SETUP_JOBS[@]}"; do compose logs --tail=15 "$job" >&2 || true; done
    die "the stack did not become healthy; the last lines of its setup jobs are above (all logs: make logs)"
  fi
}

# remove_step_containers [exited]: step containers on the stack's network (only those that ended,
# with "exited"): the task that started one may have died with its scheduler or worker (Airflow
# removes them otherwise), and the network cannot go while they are on it.
remove_step_containers() {
  local left filters=(--filter label=ct.step --filter "network=${PROJECT}_mlops")
  [ "${1:-}" = exited ] && filters+=(--filter status=exited --filter status=created --filter status=dead)
  left="$(docker ps -aq "${filters[@]}" 2>/dev/null || true)"
  [ -z "$left" ] || echo "$left" | xargs docker rm -f >/dev/null
}
