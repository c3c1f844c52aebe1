#!/bin/sh
# Builder stage helper: install each hashed lock into its own virtualenv,
# /opt/venvs/<lock name>, then drop what no image should carry (test suites,
# uv's download cache). Usage: make-venvs.sh /locks/train.txt [...]
set -eu
for lock in "$@"; do
  venv="/opt/venvs/$(basename "$lock" .txt)"
  uv venv --quiet --python /usr/local/bin/python3.11 "$venv"
  uv pip install --quiet --python "$venv/bin/python" --require-hashes --requirements "$lock"
  # Evidently's tests/ packages are its code (its test presets), imported at import time.
  find "$venv" -depth -type d -name tests ! -path '*/site-packages/evidently/*' -exec rm -rf {} +
done
uv cache clean --quiet
