#!/bin/sh
# MinIO with the stack's scoped users: start the server, create the users once it answers
# (create-identities.sh), then keep serving. The health check waits for the marker, so
# nothing uses S3 before its user exists.
set -eu
: "${S3_ACCESS_KEY:?minio: S3_ACCESS_KEY must be set (the S3 admin key)}"
: "${S3_SECRET_KEY:?minio: S3_SECRET_KEY must be set (the S3 admin secret)}"
export MINIO_ROOT_USER="$S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$S3_SECRET_KEY"
rm -f /tmp/identities-ready
minio "$@" &
server=$!
trap 'kill -TERM "$server"' TERM INT
until mc ready local >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || exit 1
  sleep 1
done
sh /ct/create-identities.sh
touch /tmp/identities-ready
wait "$server"
