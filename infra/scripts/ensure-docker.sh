#!/usr/bin/env bash
# Make sure a Docker daemon answers: install docker.io, docker-compose and
# debootstrap with apt-get where missing, start dockerd in the background where
# no daemon answers, and wait for its socket. Idempotent, and quick when all is
# there. Installing and starting need root.
set -euo pipefail

socket=/var/run/docker.sock
fail() { echo "ensure-docker: $*" >&2; exit 1; }

missing=()
# The daemon, not just a client: some machines ship a docker CLI and no engine.
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" = 1 ] && [ "${missing[0]}" = debootstrap ] && [ "$(id -u)" -ne 0 ]; then
  # Only needed where no registry serves the base image (e.g. not on GitHub's runners).
  echo "ensure-docker: debootstrap is missing (needed only where python:3.11-slim cannot be pulled)" >&2
  missing=()
fi
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || fail "missing ${missing[*]}; run this script as root to install them"
  echo "ensure-docker: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || fail "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi
[ "$(id -u)" -eq 0 ] || fail "the Docker daemon does not answer and only root can start it"
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd (log: /var/log/dockerd.log)" >&2
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if [ -S "$socket" ] && docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
fail "the Docker daemon did not answer on $socket within 60s; see /var/log/dockerd.log"
