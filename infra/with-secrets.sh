#!/bin/sh
# Entrypoint shim: each file in /run/secrets becomes an environment variable of the
# program it starts, named after the file (compose `secrets:`, `target: NAME`).
#
# Why: a value given as `environment:` is part of the container's configuration, and
# anyone who may run `docker inspect` reads it. A secret file is a bind mount: inspect
# shows its path, not its content, and only this process tree gets the value.
# Usage: with-secrets PROGRAM [ARG...]
set -eu
for file in /run/secrets/*; do
  [ -f "$file" ] || continue
  name="${file##*/}"
  case "$name" in
    "" | [0-9]* | *[!A-Za-z0-9_]*) continue ;;  # not a variable name
  esac
  value="$(cat "$file")"
  export "$name=$value"
done
exec "$@"
