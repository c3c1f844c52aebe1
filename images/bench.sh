#!/usr/bin/env bash
# Benchmark the step images against a naive single-stage image, side by side:
# sizes, cold build time (on a fresh copy of the base, so no earlier layer is
# reused) and warm rebuild time after a one-line change to one step's code.
# The change is made in a scratch copy of the build context, never in the repo.
# Writes bench/results/images.json and bench/results/images.md.
set -euo pipefail
# shellcheck source=images/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
LOG_DIR="${TMPDIR:-/tmp}/ct-bench"
CHANGED_FILE=pipeline_steps/steps/register.py
results=bench/results

# Build context: a scratch copy of the working tree (tracked and untracked, not ignored).
scratch="$(mktemp -d "${TMPDIR:-/tmp}/ct-bench-context.XXXXXX")"
cleanup() {
  rm -rf "$scratch"
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep '^ct-bench-' | xargs -r docker image rm -f >/dev/null
  prune_dangling
}
trap cleanup EXIT
git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -I{} sh -c 'test -f "{}" && printf "%s\0" "{}"' \
  | tar -c --null -T - | tar -x -C "$scratch"
# The naive image installs every step's pins in one env (but APART_LOCKS'), with xgboost in place of
# xgboost-cpu.
extras=() apart=()
for image in "${STEP_ORDER[@]}"; do
  read -r lock _ <<<"${STEPS[$image]}"
  if [[ " ${APART_LOCKS[*]} " == *" $lock "* ]]; then apart+=("$image"); continue; fi
  [[ " ${extras[*]} " == *" --extra $lock "* ]] || extras+=(--extra "$lock")
done
"${UV:-uv}" export --quiet --frozen --no-dev --no-emit-project --no-hashes "${extras[@]}" \
  | sed 's/^xgboost-cpu==/xgboost==/' >"$scratch/images/locks/naive.txt"

# A fresh image id for the base: same content, but no layer built on it exists yet.
base="$(resolve_base)"
echo "FROM $base" | docker build -q --label "ct.bench.run=$(date +%s)" --label ct.project=ct-pipeline \
  -t ct-bench-base - >/dev/null
common=(--build-arg BASE_IMAGE=ct-bench-base --build-arg GIT_COMMIT=bench)

build_target_naive() {
  local start=$SECONDS
  docker build -f "$scratch/images/bench/naive.Dockerfile" -t ct-bench-naive:latest --label ct.project=ct-pipeline \
    --build-arg BASE_IMAGE=ct-bench-base "$scratch" >"$LOG_DIR/ct-bench-naive.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/ct-bench-naive.log" >&2; say "naive build failed"; return 1; }
  echo $((SECONDS - start))
}
# Every step image; prints "<total seconds> <image>=<seconds>...".
build_steps() {
  local total=0 seconds image per=()
  seconds="$(build_target "$scratch" builder ct-bench-builder "${common[@]}")"
  total=$((total + seconds)); per+=("builder=$seconds")
  for image in "${STEP_ORDER[@]}"; do
    # shellcheck disable=SC2046  # step_args is a list of arguments
    seconds="$(build_target "$scratch" step "ct-bench-$image" "${common[@]}" $(step_args "$image"))"
    total=$((total + seconds)); per+=("$image=$seconds")
  done
  echo "$total ${per[*]}"
}
image_ids() { for image in "${STEP_ORDER[@]}"; do docker image inspect -f '{{.Id}}' "ct-bench-$image"; done; }

mkdir -p "$LOG_DIR" "$results"
say "cold builds on a fresh base (logs in $LOG_DIR)"
naive_cold="$(build_target_naive)"
say "naive image: ${naive_cold}s"
read -r steps_cold steps_cold_per <<<"$(build_steps)"
say "step images: ${steps_cold}s ($steps_cold_per)"
ids_before="$(image_ids)"

echo "# bench: a one-line change" >>"$scratch/$CHANGED_FILE"
say "warm rebuilds after appending a comment to $CHANGED_FILE"
naive_warm="$(build_target_naive)"
read -r steps_warm steps_warm_per <<<"$(build_steps)"
say "naive image: ${naive_warm}s; step images: ${steps_warm}s ($steps_warm_per)"
ids_after="$(image_ids)"
rebuilt=()
i=0
while read -r before <&3 && read -r after <&4; do
  [ "$before" != "$after" ] && rebuilt+=("${STEP_ORDER[$i]}")
  i=$((i + 1))
done 3<<<"$ids_before" 4<<<"$ids_after"

bytes() { docker image inspect -f '{{.Size}}' "$1"; }
{
  echo "naive $(bytes ct-bench-naive)"
  for image in "${STEP_ORDER[@]}"; do echo "$image $(bytes "ct-bench-$image")"; done
} >"$LOG_DIR/sizes.txt"

# Every layer of every step image, once per image: "<image> <layer key> <bytes>". A layer is
# keyed by the intermediate image that added it (the same one when two images share it).
for image in "${STEP_ORDER[@]}"; do
  docker history --no-trunc --human=false --format '{{.ID}}|{{.Size}}|{{.CreatedBy}}' "ct-bench-$image" \
    | awk -F'|' -v image="$image" '{ key = ($1 == "<missing>") ? $3 "|" $2 : $1; gsub(/ /, "_", key);
                                    print image, key, $2 }'
done >"$LOG_DIR/layers.txt"
# The MLflow server image as `make build-images` built it (the bench builds only the steps).
mlflow_size="$(docker image inspect -f '{{.Size}}' ct-mlflow:latest 2>/dev/null || echo 0)"

python3 "$IMAGES_DIR/bench/report.py" \
  --sizes "$LOG_DIR/sizes.txt" --layers "$LOG_DIR/layers.txt" --mlflow-size "$mlflow_size" \
  --base "$base" --changed "$CHANGED_FILE" \
  --naive-cold "$naive_cold" --naive-warm "$naive_warm" \
  --steps-cold "$steps_cold" --steps-cold-per "$steps_cold_per" \
  --steps-warm "$steps_warm" --steps-warm-per "$steps_warm_per" \
  --rebuilt "${rebuilt[*]}" --apart "${apart[*]}" --json "$results/images.json" --markdown "$results/images.md"
cat "$results/images.md"
