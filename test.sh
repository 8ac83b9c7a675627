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
# Every build of this run, helpers included, reads the helpers' config from the test path
# (compiled in; see helpers-config/src/lib.rs). One value for all builds keeps one cache.
export SUDOHUB_HELPERS_CONFIG=/etc/sudohub-test/helpers.toml

echo "== format and lints (warnings are errors)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== build the helpers the end-to-end tests install"
cargo build --quiet -p sudohub -p sudohub-spawner -p sudohub-pam
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
