#!/bin/sh
# S3 service for the stack: `weed mini` (master, volume, filer, S3 in one process)
# with its S3 API on :9000 and data under /data.
#
# The identities file is written at start from S3_ACCESS_KEY and S3_SECRET_KEY
# (the admin), so no key is ever baked into the image; without it SeaweedFS would
# accept any key. Each S3_IDENTITY_<NAME> variable adds a scoped identity whose keys
# are S3_<NAME>_ACCESS_KEY and S3_<NAME>_SECRET_KEY; its value is the identity's
# actions, "<action>,<action>...", each SeaweedFS's, e.g. Read:dvc-data or
# Write:pipeline-runs. (The stack gives the keys as files: infra/with-secrets.sh.)
# Every port is pinned: when a default port is taken, `weed mini` silently moves
# to the next one. Extra arguments (e.g. -bucket=a,b) are passed on to `weed mini`.
set -eu

: "${S3_ACCESS_KEY:?seaweedfs: S3_ACCESS_KEY must be set (the S3 admin key)}"
: "${S3_SECRET_KEY:?seaweedfs: S3_SECRET_KEY must be set (the S3 admin secret)}"

config="${TMPDIR:-/tmp}/s3.json"
umask 077
python3 -c '
import json, os, sys
identities = [{
    "name": "admin",
    "credentials": [{"accessKey": os.environ["S3_ACCESS_KEY"],
                     "secretKey": os.environ["S3_SECRET_KEY"]}],
    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
}]
for variable, value in sorted(os.environ.items()):
    if not variable.startswith("S3_IDENTITY_"):
        continue
    name = variable[len("S3_IDENTITY_"):]
    key = os.environ.get(f"S3_{name}_ACCESS_KEY", "")
    secret = os.environ.get(f"S3_{name}_SECRET_KEY", "")
    if not (key and secret):
        sys.exit(f"seaweedfs: {variable} needs its keys S3_{name}_ACCESS_KEY and S3_{name}_SECRET_KEY")
    if not value or ":" not in value:
        sys.exit(f"seaweedfs: {variable} must be <action>,<action>..., e.g. Read:dvc-data,List:dvc-data")
    identities.append({
        "name": name.lower(),
        "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": value.split(","),
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
