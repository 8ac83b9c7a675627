#!/usr/bin/env bash
# Runs the whole sudohub test suite: unit tests, lints, and the end-to-end tests that create
# real users, groups, sudoers rules and servers. Must run as root: `sudo ./test.sh`.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" != 0 ]; then
  echo "test.sh creates users and sudoers rules and must run as root: sudo ./test.sh" >&2
  exit 1
fi

bash scripts/deps.sh
bash scripts/test-deps.sh

# sudo resets PATH; find the Rust toolchain of root or of the invoking user (deps.sh
# installs one with rustup when there is none).
for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
  [ -d "$d" ] && PATH="$PATH:$d"
done
export PATH

export CARGO_TERM_COLOR=never
# A CI build is built once: incremental caches would double the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Every build of this run, helpers included, reads the helpers' config from the test path
# (compiled in; see helpers-config/src/lib.rs). One value for all builds keeps one cache.
export SUDOHUB_HELPERS_CONFIG=/etc/sudohub-test/helpers.toml

echo "== format and lints (warnings are errors)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== fuzz the frame decoder both helpers use (libFuzzer, 20 s)"
# cargo fuzz's flags on the stable toolchain: coverage instrumentation for the target only
# (hence --target), so build scripts and proc macros build normally.
host=$(rustc -vV | sed -n 's/^host: //p')
(
  cd fuzz
  RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares" \
    cargo build --release --quiet --target "$host" --bin frame_decoder
  mkdir -p target/corpus
  if ! "target/$host/release/frame_decoder" -max_total_time=20 -rss_limit_mb=2048 \
       target/corpus >target/fuzz.log 2>&1; then
    tail -n 40 target/fuzz.log
    echo "fuzzing found a crash: see fuzz/target/fuzz.log and fuzz/artifacts/" >&2
    exit 1
  fi
  grep '^Done' target/fuzz.log
)

echo "== build the helpers the end-to-end tests install"
cargo build --quiet -p sudohub -p sudohub-spawner -p sudohub-pam -p sudohub-account
export SUDOHUB_TEST_BIN_DIR="$PWD/target/debug"

echo "== tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo's own last line is the doc-tests' summary).
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
