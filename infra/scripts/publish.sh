#!/usr/bin/env bash
# make publish FILE=path: publish a CSV or Parquet file as the dataset's newest
# data version (validated, dvc push to S3, pointer moved) and post the Asset
# event that starts ml_training_pipeline. Runs the ct-publish image on the
# stack's network; the file goes in on stdin, so no bind mount or file mode matters.
set -euo pipefail
# shellcheck source=stack.sh
source "$(dirname "$0")/stack.sh"

file="${1:-}"
[ -n "$file" ] || die "publish: name the file: make publish FILE=path/to/table.csv"
[ -f "$file" ] || die "publish: $file does not exist"
[ -f "$ENV_FILE" ] || die "publish: $ENV_FILE not found: start the stack first (make up)"

result="$(compose run --rm -T -e LOG_LEVEL="${LOG_LEVEL:-WARNING}" publish \
  --file - --name "$(basename "$file")" <"$file")" || exit $?
python3 - "$result" "${AIRFLOW_PORT:-8080}" <<'PY'
import json, sys
result, port = json.loads(sys.argv[1].strip().splitlines()[-1]), sys.argv[2]
line = f"published {result['dataset']} version {result['md5']} ({result['rows']} rows)"
if result.get("announced"):
    line += f"; Airflow has the event, ml_training_pipeline starts now: http://localhost:{port}/dags/ml_training_pipeline"
else:
    line += "; Airflow was not told: the daily run will pick it up (or: make run)"
print(line)
PY
