#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time with libFuzzer.
# The targets use cargo fuzz's layout (`cargo fuzz run <target>` works where
# cargo-fuzz is installed); this script needs only the stable toolchain: it
# passes the same coverage instrumentation flags to cargo itself.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
export CARGO_TARGET_DIR="$PWD/target/fuzz"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With an explicit --target, RUSTFLAGS reach only the fuzzed code, not the
# build scripts and proc-macros (which would fail to link).
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --quiet -p strata-fuzz --bins --target "$host"
targets=(metadata_records bucket_policy bucket_settings request_headers node_messages sign_in_requests sealed_packages)
for t in "${targets[@]}"; do
  corpus="target/fuzz/corpus/$t"
  mkdir -p "$corpus"
  # Seeds kept in the repository, copied so that new finds stay out of it.
  if [ -d "fuzz/seeds/$t" ]; then cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true; fi
  echo "fuzz: $t for ${secs}s"
  "target/fuzz/$host/release/$t" "$corpus" -max_total_time="$secs" -rss_limit_mb=2048 \
    -artifact_prefix="target/fuzz/artifacts-$t-" -print_final_stats=1 2>&1 |
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|thread .* panicked)" || true
  # libFuzzer exits non-zero on a crash; pipefail is off for the grep above,
  # so check for artifacts instead.
  if ls target/fuzz/artifacts-"$t"-* >/dev/null 2>&1; then
    echo "fuzz: $t found a crash:" target/fuzz/artifacts-"$t"-*
    exit 1
  fi
done
