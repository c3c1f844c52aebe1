#!/usr/bin/env bash
# Build every image of the stack from images/Dockerfile: one per step that has an image
# (ct-<step name>, from pipeline_steps/pipeline.py) and the services (ct-airflow, ct-mlflow,
# ct-seaweedfs, ct-postgres, ct-docker-proxy), each tagged with the git commit and `latest`; print
# a table of image, tag and size.
#
#   images/build.sh [NAME...]    only the images named (e.g. `train postgres`)
#
# BUILD_FLAGS holds extra `docker build` flags for every build, split on spaces:
# CI passes a buildx builder's --load and its GitHub Actions layer cache there.
#
# The base is BASE_IMAGE (default python:3.11-slim-bookworm); where it cannot be
# pulled, a local one is bootstrapped from the host's Debian mirror. The two
# builder stages are tagged too (ct-builder, ct-services-builder) so that pruning
# dangling images never throws away the cached venvs.
set -euo pipefail
# shellcheck source=images/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

if command -v "${UV:-uv}" >/dev/null 2>&1; then
  images/lock.sh --check
else
  say "uv not found: not checking that images/locks/ matches uv.lock"
fi

wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=("${STEP_ORDER[@]}" "${SERVICE_ORDER[@]}")
steps=() services=() builders=()
for image in "${wanted[@]}"; do
  if [ -n "${STEPS[$image]:-}" ]; then
    steps+=("$image")
  elif [[ " ${SERVICE_ORDER[*]} ${OPTIONAL_SERVICES[*]} " == *" $image "* ]]; then
    services+=("$image")
  else
    say "error: no image '$image'; the images are: ${STEP_ORDER[*]} ${SERVICE_ORDER[*]} ${OPTIONAL_SERVICES[*]}"
    exit 2
  fi
done
# The builder stages the chosen images copy from (Debian-only services need none).
[ "${#steps[@]}" -eq 0 ] || builders+=(builder)
for image in "${services[@]}"; do
  [[ " ${DEBIAN_ONLY[*]} " == *" $image "* ]] || { builders+=(services-builder); break; }
done

base="$(resolve_base)"
tag="$(git_tag)"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
[[ "$tag" == *-dirty ]] && commit="$commit-dirty"
# shellcheck disable=SC2206  # BUILD_FLAGS is a list of flags
common=(--build-arg "BASE_IMAGE=$base" --build-arg "GIT_COMMIT=$commit" ${BUILD_FLAGS:-})
say "building on $base, tag $tag (logs in $LOG_DIR)"

start=$SECONDS
built=()
for builder in "${builders[@]}"; do
  seconds="$(build_target . "$builder" "ct-$builder" "${common[@]}")"
  say "ct-$builder ready in ${seconds}s"
done
for image in "${steps[@]}"; do
  # shellcheck disable=SC2046  # step_args is a list of arguments
  seconds="$(build_target . step "ct-$image" "${common[@]}" $(step_args "$image") --tag "ct-$image:$tag")"
  say "ct-$image:$tag built in ${seconds}s"
  built+=("ct-$image")
done
for image in "${services[@]}"; do
  seconds="$(build_target . "$image" "ct-$image" "${common[@]}" --tag "ct-$image:$tag")"
  say "ct-$image:$tag built in ${seconds}s"
  built+=("ct-$image")
done
prune_dangling
say "${#built[@]} images built in $((SECONDS - start))s"

printf '%-16s %-18s %10s\n' IMAGE TAG SIZE
for image in "${built[@]}"; do
  printf '%-16s %-18s %10s\n' "$image" "$tag" "$(human_size "$image:$tag")"
done
