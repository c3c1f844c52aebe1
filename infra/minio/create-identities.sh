#!/bin/sh
# MinIO: create the stack's scoped S3 users from S3_IDENTITY_<NAME> variables, the same
# "<action>,<action>..." that SeaweedFS reads (images/seaweedfs/entrypoint.sh), with the
# keys S3_<NAME>_ACCESS_KEY and S3_<NAME>_SECRET_KEY. Each becomes a MinIO user with a policy ct-<name>
# allowing exactly those actions; Read/List/Write/Tagging:<bucket> map onto the S3
# actions below. Run inside the MinIO container (infra/minio/start.sh) with the root
# credentials. No service accounts or STS users are made (CVE-2025-62506, README
# "Security"). Safe to run again.
set -eu

mc alias set ct http://localhost:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

statement() {  # statement ACTION BUCKET: one policy statement, JSON
  case "$1" in
    Read) echo "{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\"],\"Resource\":[\"arn:aws:s3:::$2/*\"]}" ;;
    List) echo "{\"Effect\":\"Allow\",\"Action\":[\"s3:ListBucket\",\"s3:GetBucketLocation\"],\"Resource\":[\"arn:aws:s3:::$2\"]}" ;;
    Write) echo "{\"Effect\":\"Allow\",\"Action\":[\"s3:PutObject\",\"s3:DeleteObject\",\"s3:AbortMultipartUpload\",\"s3:ListMultipartUploadParts\"],\"Resource\":[\"arn:aws:s3:::$2/*\"]}" ;;
    Tagging) echo "{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObjectTagging\",\"s3:PutObjectTagging\"],\"Resource\":[\"arn:aws:s3:::$2/*\"]}" ;;
    *) echo "s3-identities: unknown action $1 (Read, List, Write or Tagging:<bucket>)" >&2; exit 2 ;;
  esac
}

env | grep '^S3_IDENTITY_' | while IFS='=' read -r variable value; do
  upper="${variable#S3_IDENTITY_}"
  name="$(echo "$upper" | tr 'A-Z' 'a-z')"
  key="$(printenv "S3_${upper}_ACCESS_KEY")" || { echo "s3-identities: S3_${upper}_ACCESS_KEY is not set" >&2; exit 2; }
  secret="$(printenv "S3_${upper}_SECRET_KEY")" || { echo "s3-identities: S3_${upper}_SECRET_KEY is not set" >&2; exit 2; }
  actions="$value"
  statements=""
  for action in $(echo "$actions" | tr ',' ' '); do
    statements="${statements:+$statements,}$(statement "${action%%:*}" "${action#*:}")"
  done
  policy="/tmp/ct-$name.json"
  echo "{\"Version\":\"2012-10-17\",\"Statement\":[$statements]}" >"$policy"
  mc admin policy create ct "ct-$name" "$policy" >/dev/null
  mc admin user add ct "$key" "$secret" >/dev/null
  mc admin policy attach ct "ct-$name" --user "$key" >/dev/null 2>&1 || true  # attached before
  echo "s3-identities: $name can $actions"
done
