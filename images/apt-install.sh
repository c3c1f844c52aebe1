#!/bin/sh
# apt-install PACKAGE...: install Debian packages into an image without what only the
# install needs (package lists, caches, logs, examples, manuals); for the services
# built from Debian packages alone (postgres, docker-proxy, redis).
set -eu
apt-get update
apt-get install -y --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/*.log /var/log/apt \
  /usr/share/doc/*/examples /usr/share/man/* /usr/share/info/*
