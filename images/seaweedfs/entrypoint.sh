#!/bin/sh
# S3 service for the stack: `weed mini` (master, volume, filer, S3 in one process)
# with its S3 API on :9000 and data under /data.
#
# The identities file is written at start from AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY (the admin), so no key is ever baked into the image;
# without it SeaweedFS would accept any key. Each S3_IDENTITY_<NAME> variable adds
# a scoped identity: "<access key>:<secret key>:<action>,<action>...", where an
# action is SeaweedFS's, e.g. Read:dvc-data or Write:pipeline-runs. Every port is pinned: when a default port is
# taken, `weed mini` silently moves to the next one. Extra arguments (e.g.
# -bucket=a,b) are passed on to `weed mini`.
set -eu

: "${AWS_ACCESS_KEY_ID:?seaweedfs: AWS_ACCESS_KEY_ID must be set (the S3 admin key)}"
: "${AWS_SECRET_ACCESS_KEY:?seaweedfs: AWS_SECRET_ACCESS_KEY must be set (the S3 admin secret)}"

config="${TMPDIR:-/tmp}/s3.json"
umask 077
python3 -c '
import json, os, sys
identities = [{
    "name": "admin",
    "credentials": [{"accessKey": os.environ["AWS_ACCESS_KEY_ID"],
                     "secretKey": os.environ["AWS_SECRET_ACCESS_KEY"]}],
    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
}]
for variable, value in sorted(os.environ.items()):
    if not variable.startswith("S3_IDENTITY_"):
        continue
    key, secret, actions = (value.split(":", 2) + ["", ""])[:3]
    if not (key and secret and actions):
        sys.exit(f"seaweedfs: {variable} must be <access key>:<secret key>:<action>,<action>...")
    identities.append({
        "name": variable[len("S3_IDENTITY_"):].lower(),
        "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": actions.split(","),
    })
with open(sys.argv[1], "w") as out:
    json.dump({"identities": identities}, out)
print("seaweedfs: S3 identities:", ", ".join(i["name"] for i in identities), file=sys.stderr)
' "$config"

exec weed mini \
  -dir=/data \
  -ip=127.0.0.1 -ip.bind=0.0.0.0 \
  -s3.port=9000 -s3.port.grpc=19000 -s3.port.https=0 -s3.config="$config" \
  -s3.port.iceberg=0 -s3.port.lance=0 \
  -master.port=9333 -master.port.grpc=19333 \
  -volume.port=9340 -volume.port.grpc=19340 \
  -filer.port=8888 -filer.port.grpc=18888 \
  -admin.ui=false -admin.port=23646 -admin.port.grpc=33646 \
  -webdav=false -debug.port=6060 \
  "$@"
