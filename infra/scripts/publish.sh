#!/usr/bin/env bash
# make publish FILE=path: publish a CSV or Parquet file as the dataset's newest
# data version (validated, dvc push to S3, pointer moved) and post the Asset
# event that starts ml_training_pipeline. With --to-score (make score) the file
# is a table to score instead, and the event starts batch_scoring. Runs the ct-publish image on the
# stack's network; the file goes in on stdin, so no bind mount or file mode matters.
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
image="${CT_IMAGE_PREFIX:-ct-}publish:$CT_IMAGE_TAG"
docker image inspect "$image" >/dev/null 2>&1 \
  || die "$target: the image $image (this commit's) is not built: run make up, which builds it and restarts the stack on it"

result="$(compose run --rm -T -e LOG_LEVEL="${LOG_LEVEL:-WARNING}" publish \
  --file - --name "$(basename "$file")" "${flags[@]}" <"$file")" || exit $?
python3 - "$result" "${AIRFLOW_PORT:-8080}" "$dag" <<'PY'
import json, sys
result, port, dag = json.loads(sys.argv[1].strip().splitlines()[-1]), sys.argv[2], sys.argv[3]
line = f"published {result['dataset']} version {result['md5']} ({result.get('accounting') or str(result['rows']) + ' rows'})"
if result.get("announced"):
    line += f"; Airflow has the event, {dag} starts now: http://localhost:{port}/dags/{dag}"
else:
    line += "; Airflow was not told: the daily run will pick it up (or: make run)"
print(line)
PY
