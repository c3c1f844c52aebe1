#!/bin/sh
# Builder stage helper: install hashed locks into virtualenvs, then drop what no
# image should carry (test suites, uv's download cache).
#
#   make-venvs.sh /locks/mlflow.txt [...]
#       one venv per lock: /opt/venvs/<lock name> (the services)
#   make-venvs.sh --layers LOCK_DIR OUT_DIR
#       the step locks split into shared layers (layers.py); each layer is
#       installed alone at /opt/venv, the one path every step image uses, and
#       moved to OUT_DIR/<layer>/opt/venv, ready to COPY onto /. Only the first
#       layer (core) keeps the venv's own files (bin/python, pyvenv.cfg).
set -eu

# install VENV [REQUIREMENTS]: a fresh venv at VENV with exactly those pins (--no-deps: the locks are complete).
install() {
  uv venv --quiet --python /usr/local/bin/python3.11 "$1"
  if [ -n "${2:-}" ] && grep -q '==' "$2"; then
    uv pip install --quiet --no-deps --python "$1/bin/python" --require-hashes --requirements "$2"
  fi
  prune "$1/lib/python3.11/site-packages"
}

# prune SITE_PACKAGES: what no step or service loads at run time.
prune() {
  # Test suites; Evidently's tests/ packages are its code (its test presets), imported at import time.
  find "$1" -depth -type d -name tests ! -path '*/site-packages/evidently/*' -exec rm -rf {} +
  # What only compiling against a package needs: type stubs, Cython sources, C and C++ headers.
  find "$1" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.pxi' -o -name '*.h' \
    -o -name '*.hpp' \) -delete
  # pyarrow's Flight RPC (nothing here uses it; no other library links it), its C++ test module,
  # and the linker-name copies of libarrow_python*: the loader wants only the .so.<major> named.
  if [ -d "$1/pyarrow" ]; then
    rm -f "$1"/pyarrow/*flight* "$1"/pyarrow/__pycache__/*flight* "$1"/pyarrow/_pyarrow_cpp_tests.* \
      "$1"/pyarrow/libarrow_python*.so "$1"/pyarrow/libarrow_python*.so.*.*.*
    rm -rf "$1/pyarrow/include" "$1/pyarrow/src"
  fi
  # Symbols only a debugger reads, from the extension modules and libraries the wheels built;
  # not from auditwheel's vendored copies (*.libs/), which patchelf rewrote and strip can break.
  # A file strip cannot read is left as it is.
  find "$1" -type f -name '*.so*' ! -path '*.libs/*' -exec strip --strip-unneeded {} + 2>/dev/null || true
  # botocore's models of AWS services: S3 is the only one spoken, STS and SSO the credential chain's.
  if [ -d "$1/botocore/data" ]; then
    find "$1/botocore/data" -mindepth 1 -maxdepth 1 -type d ! -name s3 ! -name sts ! -name sso \
      ! -name sso-oidc -exec rm -rf {} +
    find "$1/botocore/data" -name 'examples-*.json' -delete
  fi
}

if [ "${1:-}" = "--layers" ]; then
  locks="$2" out="$3" venv=/opt/venv
  python3 "$(dirname "$0")/layers.py" "$locks" "$out/requirements"
  install "$venv"
  skeleton="$(cd "$venv" && find . ! -type d)"
  rm -rf "$venv"
  for requirements in "$out"/requirements/*.txt; do
    layer="$(basename "$requirements" .txt)"
    install "$venv" "$requirements"
    if [ "$layer" != core ]; then
      (cd "$venv" && echo "$skeleton" | xargs rm -f)
    fi
    mkdir -p "$out/$layer/opt"
    mv "$venv" "$out/$layer/opt/venv"
  done
else
  for lock in "$@"; do
    install "/opt/venvs/$(basename "$lock" .txt)" "$lock"
  done
fi
uv cache clean --quiet
