#!/bin/sh
# The stack's MLflow tracking server: MLflow's basic-auth app, so nothing answers without a
# login (only /health). Its config names the user database, which holds a password, so it
# is written here at start, inside the container only, never into the image.
#
#   MLFLOW_BACKEND_STORE_URI        runs and models (required)
#   MLFLOW_AUTH_DATABASE_URI        users and permissions (default: the backend's database)
#   MLFLOW_AUTH_ADMIN_PASSWORD      the admin's password, set when the user store is created
#   MLFLOW_FLASK_SERVER_SECRET_KEY  signs the UI's CSRF tokens (the same for every worker)
#
# A checked login is trusted for 60 s (per worker): without that, every request of a step
# pays MLflow's slow password hash again. Arguments are passed on to `mlflow server`.
set -eu
: "${MLFLOW_BACKEND_STORE_URI:?mlflow: MLFLOW_BACKEND_STORE_URI must be set}"
: "${MLFLOW_AUTH_ADMIN_PASSWORD:?mlflow: MLFLOW_AUTH_ADMIN_PASSWORD must be set}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?mlflow: MLFLOW_FLASK_SERVER_SECRET_KEY must be set}"
MLFLOW_AUTH_CONFIG_PATH="${MLFLOW_AUTH_CONFIG_PATH:-${TMPDIR:-/tmp}/basic_auth.ini}"
export MLFLOW_AUTH_CONFIG_PATH
umask 077
printf '[mlflow]\ndefault_permission = READ\ndatabase_uri = %s\nadmin_username = admin\nauth_cache_ttl_seconds = 60\n' \
  "${MLFLOW_AUTH_DATABASE_URI:-$MLFLOW_BACKEND_STORE_URI}" >"$MLFLOW_AUTH_CONFIG_PATH"
exec mlflow server --app-name basic-auth "$@"
