#!/usr/bin/env bash
# phase.sh NAME COMMAND...: run COMMAND, then print how long it took and how it ended,
# so a slow or failing phase of `make test` (and of CI) is named in its output.
name="$1"
shift
start=$SECONDS
"$@"
status=$?
echo "phase $name: $((SECONDS - start))s (exit $status)" >&2
exit "$status"
