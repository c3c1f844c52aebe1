# Shared by images/build.sh and images/bench.sh (sourced, not run).
# shellcheck shell=bash

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$IMAGES_DIR")"
DEFAULT_BASE_IMAGE=python:3.11-slim-bookworm
LOCAL_BASE_IMAGE=ct-base:python3.11-bookworm
LOG_DIR="${LOG_DIR:-${TMPDIR:-/tmp}/ct-images}"
# The step images, from the pipeline's declaration (pipeline_steps/pipeline.py, standard library
# only): image name -> "<lock name> <step name>", and their order; TASK_IMAGES: those a worker
# runs (the model server's is the stack's, not a task's).
declare -A STEPS=()
STEP_ORDER=()
TASK_IMAGES=()
while read -r image lock step role; do
  STEPS[$image]="$lock $step"
  STEP_ORDER+=("$image")
  [ "$role" = service ] || TASK_IMAGES+=("$image")
done < <(cd "$REPO_DIR" && python3 -m pipeline_steps.pipeline images)
[ "${#STEP_ORDER[@]}" -gt 0 ] || { echo "images: pipeline_steps/pipeline.py declares no step image" >&2; exit 1; }
# Locks that resolve apart ([tool.uv] conflicts: the drift check needs pandas<3): their images
# cannot share one environment with the others, so the naive benchmark image leaves them out.
APART_LOCKS=(drift)
SERVICE_ORDER=(airflow mlflow seaweedfs postgres docker-proxy)
# What a Celery worker on another host runs (make save-images writes them, make worker checks them).
WORKER_IMAGES=(airflow docker-proxy "${TASK_IMAGES[@]}")
# Built only when asked for (`images/build.sh redis`), as make up EXECUTOR=celery does where
# the official image cannot be pulled: the default stack does not use them.
OPTIONAL_SERVICES=(redis)
# Services built from Debian packages alone: they need no builder stage.
DEBIAN_ONLY=(postgres docker-proxy redis)

say() { echo "images: $*" >&2; }

# The base image to build on: BASE_IMAGE if present or pullable, else the local
# bootstrap from the host's Debian mirror (built once, reused after).
resolve_base() {
  local wanted="${BASE_IMAGE:-$DEFAULT_BASE_IMAGE}"
  if docker image inspect "$wanted" >/dev/null 2>&1 || docker pull -q "$wanted" >/dev/null 2>&1; then
    echo "$wanted"
    return
  fi
  if docker image inspect "$LOCAL_BASE_IMAGE" >/dev/null 2>&1; then
    say "cannot pull $wanted; using $LOCAL_BASE_IMAGE, bootstrapped earlier from the host's Debian mirror"
  else
    say "cannot pull $wanted; bootstrapping $LOCAL_BASE_IMAGE from the host's Debian mirror (debootstrap)"
    "$IMAGES_DIR/base/bootstrap.sh" "$LOCAL_BASE_IMAGE" >&2
  fi
  echo "$LOCAL_BASE_IMAGE"
}

# git short sha, "-dirty" when the tree has changes.
git_tag() {
  local sha
  sha="$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo nogit)"
  if [ -n "$(git -C "$REPO_DIR" status --porcelain 2>/dev/null)" ]; then sha="$sha-dirty"; fi
  echo "$sha"
}

# build_target CONTEXT TARGET IMAGE [docker build args...]: build and tag
# IMAGE:latest (plus any -t given), log to $LOG_DIR/IMAGE.log, print seconds taken.
build_target() {
  local context="$1" target="$2" image="$3"
  shift 3
  mkdir -p "$LOG_DIR"
  local log="$LOG_DIR/$image.log" start=$SECONDS
  if ! docker build --file "$IMAGES_DIR/Dockerfile" --target "$target" --tag "$image:latest" \
      "$@" "$context" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    say "building $image (target $target) failed; full log: $log"
    return 1
  fi
  echo $((SECONDS - start))
}

# Build args that select one step's shared layers, its own layer and its name.
step_args() {
  local lock step
  read -r lock step <<<"${STEPS[$1]}"
  echo "--build-arg STEP_LAYER=$(python3 "$IMAGES_DIR/layers.py" --deepest "$lock") --build-arg VENV=$lock" \
    "--build-arg STEP=$step"
}

human_size() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

prune_dangling() { docker image prune -f --filter label=ct.project=ct-pipeline >/dev/null; }
