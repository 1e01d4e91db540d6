# The start every benchmark script shares (sourced, not run): the
# repository root as working directory, seconds per test from the first
# argument (default 8), JSON lines with JSON=1, the release binaries
# built, and a scratch directory removed at exit with the servers whose
# pids the script adds to `pids`. OBJD=PATH measures another objd binary
# (an earlier build, for a before/after in one session).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-8}
json=${JSON:+--json}
cargo build --release --quiet -p objd -p strata-tests --bins
bench=target/release/strata-bench
objd=${OBJD:-target/release/objd}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/strata-bench.XXXXXX")
pids=()
# Stops server `$1`: asked to end, then killed if it has not after 10 s
# (a server in trouble may not answer SIGTERM, and waiting on it would
# hang the script).
stop() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# A server already gone must not end the cleanup before the others are
# stopped and the scratch directory removed.
cleanup() {
  for p in "${pids[@]}"; do stop "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT
