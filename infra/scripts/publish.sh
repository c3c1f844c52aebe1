#!/usr/bin/env bash
# make publish FILE=path: publish a CSV or Parquet file as the dataset's newest
# data version (validated, dvc push to S3, pointer moved) and post the Asset
# event that starts ml_training_pipeline. With --to-score (make score) the file
# is a table to score instead, and the event starts batch_scoring. Runs the publish_data
# step's image on the stack's network; the file goes in on stdin, so no bind mount or
# file mode matters. What the user reads: the step's warnings and error, or one last line.
set -euo pipefail
# shellcheck source=stack.sh
source "$(dirname "$0")/stack.sh"

# --to-score: publish it as a table for batch scoring (starts batch_scoring; make score).
flags=() dag=ml_training_pipeline target=publish
if [ "${1:-}" = "--to-score" ]; then flags=(--to-score) dag=batch_scoring target=score; shift; fi
file="${1:-}"
[ -n "$file" ] || die "$target: name the file: make $target FILE=path/to/table.csv"
[ -f "$file" ] || die "$target: $file does not exist"
[ -f "$ENV_FILE" ] || die "$target: $ENV_FILE not found: start the stack first (make up)"
export_runtime_variables
image="${CT_IMAGE_PREFIX:-ct-}publish-data:$CT_IMAGE_TAG"
docker image inspect "$image" >/dev/null 2>&1 \
  || die "$target: the image $image (this commit's) is not built: run make up, which builds it and restarts the stack on it"

# compose's own lines (creating the container, a bare exit code) are not the user's: only the step's.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
code=0
result="$(compose run --rm -T -e LOG_LEVEL="${LOG_LEVEL:-WARNING}" publish \
  --file - --name "$(basename "$file")" "${flags[@]}" <"$file" 2>"$log")" || code=$?
if [ "$code" -ne 0 ]; then
  "${STACK_PY[@]}" step-lines "$log" --failed
  exit "$code"
fi
"${STACK_PY[@]}" step-lines "$log"
"${STACK_PY[@]}" published "$result" "$dag" "$(setting AIRFLOW_PORT 8080)"
