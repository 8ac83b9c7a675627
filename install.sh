#!/usr/bin/env bash
# Installs sudohub and starts it: `sudo ./install.sh`.
#
#   --no-start     install everything but do not start the hub
#   --prefix DIR   install below DIR instead of / (for packaging and tests; nothing started)
#   --uninstall    remove what this script installed (keeps the database, config and homes)
#   --purge        with --uninstall: also remove /etc/sudohub, /var/lib/sudohub and the
#                  sudohub user
#
# Idempotent: running it again upgrades the binaries and never overwrites an admin's
# edits to /etc/sudohub/*.toml.
set -euo pipefail
cd "$(dirname "$0")"

start=1 prefix="" uninstall=0 purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-start) start=0 ;;
    --prefix) prefix="${2:?--prefix needs a directory}"; shift; start=0 ;;
    --prefix=*) prefix="${1#--prefix=}"; start=0 ;;
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "install.sh must run as root: sudo ./install.sh" >&2; exit 1; }

HUB_USER=sudohub
GROUP=jupyterhub
P="$prefix"
say() { printf 'install: %s\n' "$*"; }

stop_hub() {
  if [ -d /run/systemd/system ] && systemctl list-unit-files sudohub.service >/dev/null 2>&1; then
    systemctl stop sudohub.service 2>/dev/null || true
  fi
  if [ -f /run/sudohub/sudohub.pid ]; then
    kill "$(cat /run/sudohub/sudohub.pid)" 2>/dev/null || true
    rm -f /run/sudohub/sudohub.pid
  fi
}

if [ "$uninstall" = 1 ]; then
  [ -z "$P" ] && stop_hub
  [ -z "$P" ] && [ -d /run/systemd/system ] && systemctl disable sudohub.service 2>/dev/null || true
  rm -f "$P/usr/bin/sudohub" "$P/etc/sudoers.d/sudohub" "$P/etc/pam.d/sudohub" \
        "$P/lib/systemd/system/sudohub.service"
  rm -rf "$P/usr/lib/sudohub"
  if [ "$purge" = 1 ]; then
    rm -rf "$P/etc/sudohub" "$P/var/lib/sudohub" "$P/var/log/sudohub" "$P/opt/sudohub"
    [ -z "$P" ] && id "$HUB_USER" >/dev/null 2>&1 && userdel "$HUB_USER" || true
  fi
  say "uninstalled (user servers already running keep running until stopped)"
  exit 0
fi

bash scripts/deps.sh
for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do [ -d "$d" ] && PATH="$PATH:$d"; done

say "building release binaries"
# The release build reads its config from the real path, never a test path.
env -u SUDOHUB_HELPERS_CONFIG cargo build --release --quiet -p sudohub -p sudohub-spawner -p sudohub-pam

say "accounts"
getent group "$GROUP" >/dev/null || groupadd "$GROUP"
if ! id "$HUB_USER" >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/sudohub --no-create-home --shell /usr/sbin/nologin \
          --user-group "$HUB_USER"
fi
passwd -l "$HUB_USER" >/dev/null 2>&1 || true
# The whole point: the hub never reads /etc/shadow. Take it out of shadow if an older
# JupyterHub-style setup put it there.
if id -nG "$HUB_USER" | tr ' ' '\n' | grep -qx shadow; then
  gpasswd -d "$HUB_USER" shadow >/dev/null
  say "removed $HUB_USER from group shadow"
fi

say "files"
install -d -m 0755 -o root -g root "$P/usr/bin" "$P/usr/lib/sudohub" "$P/etc/sudohub" \
        "$P/etc/sudoers.d" "$P/etc/pam.d" "$P/lib/systemd/system"
install -m 0755 -o root -g root target/release/sudohub "$P/usr/bin/sudohub"
install -m 0755 -o root -g root target/release/sudohub-spawner "$P/usr/lib/sudohub/sudohub-spawner"
install -m 0755 -o root -g shadow target/release/sudohub-pam "$P/usr/lib/sudohub/sudohub-pam"
chmod 2755 "$P/usr/lib/sudohub/sudohub-pam"   # after chown/install: setgid shadow

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed "s#/usr/lib/sudohub/#$P/usr/lib/sudohub/#g" sudoers.d/sudohub > "$tmp"
if visudo -cf "$tmp" >/dev/null; then
  install -m 0440 -o root -g root "$tmp" "$P/etc/sudoers.d/sudohub"
else
  echo "install: sudoers.d/sudohub does not pass visudo -cf; not installed" >&2
  exit 1
fi
install -m 0644 -o root -g root pam.d/sudohub "$P/etc/pam.d/sudohub"
install -m 0644 -o root -g root systemd/sudohub.service "$P/lib/systemd/system/sudohub.service"

if [ ! -e "$P/etc/sudohub/helpers.toml" ]; then
  install -m 0644 -o root -g root etc/helpers.toml "$P/etc/sudohub/helpers.toml"
else
  say "keeping existing $P/etc/sudohub/helpers.toml"
fi
if [ ! -e "$P/etc/sudohub/hub.toml" ]; then
  "$P/usr/bin/sudohub" generate-config > "$tmp"
  install -m 0640 -o root -g "$HUB_USER" "$tmp" "$P/etc/sudohub/hub.toml"
else
  say "keeping existing $P/etc/sudohub/hub.toml"
fi
install -d -m 0700 -o "$HUB_USER" -g "$HUB_USER" "$P/var/lib/sudohub"
install -d -m 0750 -o "$HUB_USER" -g "$HUB_USER" "$P/var/log/sudohub"
install -d -m 0755 -o "$HUB_USER" -g "$HUB_USER" "$P/run/sudohub"

if [ "$start" = 1 ]; then
  stop_hub
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now sudohub.service
    say "started with systemd (systemctl status sudohub)"
  else
    # No systemd as PID 1 (a container): run it in the background as the hub user.
    setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
      /usr/bin/sudohub --config /etc/sudohub/hub.toml >>/var/log/sudohub/sudohub.log 2>&1 &
    echo $! > /run/sudohub/sudohub.pid
    say "started in the background, pid $(cat /run/sudohub/sudohub.pid), logs in /var/log/sudohub/"
  fi
  port=$(sed -n 's/^port *= *\([0-9]*\).*/\1/p' /etc/sudohub/hub.toml | head -1)
  say "sudohub is at http://$(hostname -f 2>/dev/null || hostname):${port:-8000}/"
  say "let a user in:  usermod -aG $GROUP <name>   (then they log in with their Unix password)"
fi
