#!/usr/bin/env bash
# Installs what sudohub needs to build, run and be tested on Debian 12 / Ubuntu:
# Debian packages, and the Python venv with the pinned single-user server.
# Idempotent; shared by install.sh and test.sh. Must run as root.
set -euo pipefail

VENV=${SUDOHUB_VENV:-/opt/sudohub/venv}
# Pinned: the hub speaks exactly what these versions expect (../shared/jupyterhub-compat.md).
JUPYTERHUB_VERSION=6.1.1
JUPYTERLAB_VERSION=4.6.6
# The idle culler admins run as a managed service ([[services]] command in hub.toml).
IDLE_CULLER_VERSION=2.0.0
# batchspawner-singleuser: what a Slurm job runs ([spawner] backend = "slurm"): it picks a
# free port on the node, reports it to the hub, and runs jupyterhub-singleuser there.
BATCHSPAWNER_VERSION=1.3.0

packages=(sudo passwd util-linux procps libpam0g-dev libpam-modules libclang-dev clang pkg-config
          python3 python3-venv ca-certificates systemd nginx-light curl openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

want=(jupyterhub==$JUPYTERHUB_VERSION jupyterlab==$JUPYTERLAB_VERSION
      jupyterhub-idle-culler==$IDLE_CULLER_VERSION batchspawner==$BATCHSPAWNER_VERSION)
have=$("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null | tr "_" "-" || true)
lacking=()
for w in "${want[@]}"; do
  grep -qix "$w" <<<"$have" || lacking+=("$w")
done
if [ ${#lacking[@]} -gt 0 ]; then
  echo "deps: installing ${lacking[*]} into $VENV"
  install -d -m 0755 -o root -g root "$(dirname "$VENV")"
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${want[@]}"
fi
# Every user's server runs from this venv: readable and executable by all, writable by root only.
chmod -R u=rwX,go=rX "$VENV"

if ! command -v cargo >/dev/null 2>&1; then
  for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$PATH:$d" && break
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  # Debian's own cargo is too old for the pinned crates: use rustup's stable toolchain.
  echo "deps: no Rust toolchain found; installing one with rustup into $HOME/.cargo"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --component rustfmt,clippy >/dev/null \
    || { echo "deps: rustup failed; install Rust >= 1.85 (https://rustup.rs) and rerun" >&2; exit 1; }
  export PATH="$PATH:$HOME/.cargo/bin"
fi
