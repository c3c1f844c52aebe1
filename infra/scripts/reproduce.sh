#!/usr/bin/env bash
# make reproduce VERSION=N [LOCAL=yes]: re-run a registered model version from what the
# registry recorded (data version, seed, parameters, image of each step) and compare its
# metrics with the recorded ones (pipeline_steps/reproduce.py). It runs on the host with
# the steps' own S3 keys and the MLflow login; each step runs in its recorded image (the
# compose service `reproduce`) when Docker still has it, else here, in the project's venv.
# Exit 0: identical; 1: a number differs; 2: it could not run.
set -euo pipefail
# shellcheck source=stack.sh
source "$(dirname "$0")/stack.sh"

version="${1:-}"
[ -n "$version" ] || die "reproduce: name the model version: make reproduce VERSION=N"
[ -f "$ENV_FILE" ] || die "reproduce: $ENV_FILE not found: start the stack first (make up)"
export_runtime_variables
secret() { cat "$CT_SECRETS_DIR/$1" 2>/dev/null || die "reproduce: $CT_SECRETS_DIR/$1 not found: run make up"; }
# A setting as the stack has it: the shell's, else .env's, else the default.
setting() {
  local name="$1" default="$2" value="${!1:-}"
  [ -n "$value" ] || value="$(sed -n "s/^$name=//p" "$ENV_FILE" | tail -1)"
  echo "${value:-$default}"
}

export S3_ENDPOINT_URL="http://localhost:$(setting S3_PORT 9000)"
export MLFLOW_TRACKING_URI="http://localhost:$(setting MLFLOW_PORT 5000)"
# MLflow's presigned S3 URLs name the S3 service as containers see it: stream through MLflow.
export MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD=false MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
export MLFLOW_TRACKING_USERNAME=admin
MLFLOW_TRACKING_PASSWORD="$(secret MLFLOW_ADMIN_PASSWORD)"
AWS_ACCESS_KEY_ID="$(secret S3_PIPELINE_ACCESS_KEY)"
AWS_SECRET_ACCESS_KEY="$(secret S3_PIPELINE_SECRET_KEY)"
export MLFLOW_TRACKING_PASSWORD AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
for name in MODEL_NAME S3_DATA_BUCKET S3_RUNS_BUCKET S3_ARTIFACT_BUCKET QUALITY_METRIC QUALITY_THRESHOLD \
            QUALITY_TOLERANCE; do
  value="$(setting "$name" "")"
  if [ -n "$value" ]; then export "$name=$value"; fi
done
export LOG_LEVEL="${LOG_LEVEL:-WARNING}"

flags=()
case "${LOCAL:-}" in
  "" | no | false | 0) ;;
  *) flags=(--local) ;;
esac
cd "$REPO_DIR"
exec "${UV:-uv}" run --frozen python -m pipeline_steps.reproduce --version "$version" "${flags[@]}"
