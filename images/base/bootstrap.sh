#!/usr/bin/env bash
# Bootstrap a local Python 3.11 base image from the Debian mirror the host's apt
# sources name, for machines where python:3.11-slim-bookworm cannot be pulled.
#
# The root filesystem is a debootstrap minbase of bookworm plus Debian's
# python3.11; python is linked at /usr/local/bin like in the official image, so
# the builder and final stages (and the venvs uv makes, which symlink to the base
# interpreter) agree on one path whichever base they were built on. The host CA
# bundle is copied in because package downloads inside `docker build` may pass a
# TLS proxy whose CA only that bundle holds. Run as root.
#
# Usage: images/base/bootstrap.sh [TAG]   (default ct-base:python3.11-bookworm)
set -euo pipefail

tag="${1:-ct-base:python3.11-bookworm}"
suite=bookworm
ca_bundle=/etc/ssl/certs/ca-certificates.crt

die() { echo "bootstrap: $*" >&2; exit 1; }

# The mirror of the first apt source that serves $suite (deb822 .sources, then sources.list).
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri = ""; hit = 0; next }
      tolower($1) == "uris:"   { uri = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
      END { if (uri != "" && hit) print uri }
    ' "$f"
  done
  if [ -e /etc/apt/sources.list ]; then
    awk -v suite="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == suite) print $i; break } }' \
      /etc/apt/sources.list
  fi
}

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (infra/scripts/ensure-docker.sh installs it)"
[ -r "$ca_bundle" ] || die "no host CA bundle at $ca_bundle"
mirror="$(host_mirror | head -n 1)"
[ -n "$mirror" ] || die "no apt source for $suite in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"

rootfs="$(mktemp -d /var/tmp/ct-base.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

echo "bootstrap: debootstrap --variant=minbase $suite from the host's apt mirror into $rootfs" >&2
debootstrap --variant=minbase --include=python3.11,python3-venv,ca-certificates \
  "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
  || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed (full log: $rootfs.log)"; }
rm -f "$rootfs.log"

cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
for name in python3.11 python3 python; do
  ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/$name"
done
# Apt lists and caches, docs and man pages: nothing an image needs at run time.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/tmp/*
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete

tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV SSL_CERT_FILE=$ca_bundle" \
  --change 'CMD ["python3"]' \
  --message "debootstrap minbase $suite + python3.11" - "$tag" >/dev/null
echo "bootstrap: built $tag" >&2
