#!/usr/bin/env bash
# make save-images: what a Celery worker on another host runs (Airflow, the Docker API proxy and
# every step image, at this commit) in one archive, for `docker load -i` on that host where it
# cannot pull them from the registry CI publishes to. Layers the images share are stored once.
# ARCHIVE=path: where to write it (default dist/ct-images-<tag>.tar).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

tag="${CT_IMAGE_TAG:-$(git_tag)}"
archive="${ARCHIVE:-$REPO_DIR/dist/ct-images-$tag.tar}"
images=()
for name in "${WORKER_IMAGES[@]}"; do
  image="${CT_IMAGE_PREFIX:-ct-}$name:$tag"
  docker image inspect "$image" >/dev/null 2>&1 || { say "$image is missing: run make build-images"; exit 1; }
  images+=("$image")
done
mkdir -p "$(dirname "$archive")"
docker save --output "$archive.tmp" "${images[@]}"
mv "$archive.tmp" "$archive"
say "wrote $archive ($(du -h "$archive" | cut -f1), ${#images[@]} images at $tag); on the worker's host: docker load -i $(basename "$archive")"
