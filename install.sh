#!/usr/bin/env bash
# Installs sudohub and starts it: `sudo ./install.sh`.
#
#   --no-start     install everything but do not start the hub
#   --prefix DIR   a self-contained install below DIR (for packaging, trials and tests):
#                  configs name DIR's paths and the helpers read DIR/etc/sudohub/helpers.toml;
#                  DIR/etc/sudoers.d and DIR/etc/pam.d are not live; nothing is started
#   --user NAME    the hub's service account (default sudohub)
#   --group NAME   the group whose members may use the hub (default jupyterhub)
#   --setuid-spawner  install the spawner helper setuid root (root:<hub user's group>, 4750)
#                  instead of giving the hub a sudoers rule for it; sets [spawner] sudo = []
#                  in a new hub.toml (an existing one: set it yourself)
#   --uninstall    remove what this script installed (keeps the database, config and homes)
#   --purge        with --uninstall: also remove /etc/sudohub, /var/lib/sudohub and the
#                  service account
#
# Idempotent: running it again upgrades the binaries and never overwrites an admin's
# edits to /etc/sudohub/*.toml.
set -euo pipefail
cd "$(dirname "$0")"

start=1 prefix="" uninstall=0 purge=0 setuid=0 HUB_USER=sudohub GROUP=jupyterhub
while [ $# -gt 0 ]; do
  case "$1" in
    --no-start) start=0 ;;
    --prefix) prefix="${2:?--prefix needs a directory}"; shift; start=0 ;;
    --prefix=*) prefix="${1#--prefix=}"; start=0 ;;
    --user) HUB_USER="${2:?--user needs a name}"; shift ;;
    --group) GROUP="${2:?--group needs a name}"; shift ;;
    --setuid-spawner) setuid=1 ;;
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "install.sh must run as root: sudo ./install.sh" >&2; exit 1; }

for name in "$HUB_USER" "$GROUP"; do
  [[ "$name" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || { echo "install.sh: '$name' is not a valid user or group name" >&2; exit 2; }
done
case "$prefix" in
  ""|/*) ;;
  *) prefix="$(pwd)/$prefix" ;;
esac
P="${prefix%/}"
say() { printf 'install: %s\n' "$*"; }

# Without systemd the hub runs in the background; root keeps its pid in a root-owned file
# (never in /run/sudohub, which the hub account owns and could fill with a symlink or a
# foreign pid), and signals it only after checking that the process is /usr/bin/sudohub
# running as the hub account.
PIDFILE=/run/sudohub-hub.pid
hub_pid() {
  local pid exe
  for f in "$PIDFILE" /run/sudohub/sudohub.pid; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    pid=$(timeout 2 head -c 16 "$f" | tr -cd '0-9')
    [ -n "$pid" ] || continue
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    # After an upgrade the running binary is the replaced one: "… (deleted)".
    [ "${exe% (deleted)}" = /usr/bin/sudohub ] || continue
    [ "$(stat -c %U "/proc/$pid" 2>/dev/null)" = "$HUB_USER" ] || continue
    echo "$pid"
    return 0
  done
  return 1
}

stop_hub() {
  if [ -d /run/systemd/system ] && systemctl list-unit-files sudohub.service >/dev/null 2>&1; then
    systemctl stop sudohub.service 2>/dev/null || true
  fi
  local pid
  if pid=$(hub_pid); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # Still there after 5 s (a client holding a connection open): it is ours, checked above.
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  # rm removes a planted symlink itself, never what it points to.
  rm -f "$PIDFILE" /run/sudohub/sudohub.pid
}

if [ "$uninstall" = 1 ]; then
  [ -z "$P" ] && stop_hub
  [ -z "$P" ] && [ -d /run/systemd/system ] && systemctl disable sudohub.service 2>/dev/null || true
  rm -f "$P/usr/bin/sudohub" "$P/etc/sudoers.d/sudohub" "$P/etc/pam.d/sudohub" \
        "$P/lib/systemd/system/sudohub.service" "$P/lib/systemd/system/sudohub-servers.service" \
        "$P/lib/systemd/system/sudohub.socket"
  rm -rf "$P/usr/lib/sudohub"
  if [ "$purge" = 1 ]; then
    rm -rf "$P/etc/sudohub" "$P/var/lib/sudohub" "$P/var/lib/sudohub-pam" "$P/var/log/sudohub" \
           "$P/opt/sudohub"
    [ -z "$P" ] && id "$HUB_USER" >/dev/null 2>&1 && userdel "$HUB_USER" || true
  fi
  say "uninstalled (user servers already running keep running until stopped)"
  exit 0
fi

bash scripts/deps.sh
for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do [ -d "$d" ] && PATH="$PATH:$d"; done

say "building release binaries"
# The helpers' config path is compiled in: the real one, or the prefix's.
if [ -n "$P" ]; then
  SUDOHUB_HELPERS_CONFIG="$P/etc/sudohub/helpers.toml" \
    cargo build --release --quiet -p sudohub -p sudohub-spawner -p sudohub-pam -p sudohub-account
else
  env -u SUDOHUB_HELPERS_CONFIG cargo build --release --quiet -p sudohub -p sudohub-spawner -p sudohub-pam -p sudohub-account
fi

say "accounts"
getent group "$GROUP" >/dev/null || groupadd "$GROUP"
if ! id "$HUB_USER" >/dev/null 2>&1; then
  # Its home is this install's state directory (below --prefix for a prefix install), so
  # removing the account with its home can never take another install's state.
  useradd --system --home-dir "$P/var/lib/sudohub" --no-create-home --shell /usr/sbin/nologin \
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
if [ "$setuid" = 1 ]; then
  # Only the hub's group may run it; its root phase serves the hub's account only.
  install -m 0750 -o root -g "$HUB_USER" target/release/sudohub-spawner "$P/usr/lib/sudohub/sudohub-spawner"
  chmod 4750 "$P/usr/lib/sudohub/sudohub-spawner"   # after chown/install: setuid root
else
  install -m 0755 -o root -g root target/release/sudohub-spawner "$P/usr/lib/sudohub/sudohub-spawner"
fi
install -m 0755 -o root -g root target/release/sudohub-account "$P/usr/lib/sudohub/sudohub-account"
install -m 0755 -o root -g shadow target/release/sudohub-pam "$P/usr/lib/sudohub/sudohub-pam"
chmod 2755 "$P/usr/lib/sudohub/sudohub-pam"   # after chown/install: setgid shadow

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# The shipped files name sudohub, jupyterhub and the real paths; render them for this
# install's account, group and prefix.
render() {
  sed -e "s#\"/usr/lib/sudohub/#\"$P/usr/lib/sudohub/#g" \
      -e "s#\"/var/lib/sudohub/#\"$P/var/lib/sudohub/#g" \
      -e "s#\"/var/lib/sudohub-pam\"#\"$P/var/lib/sudohub-pam\"#g" \
      -e "s#\"/run/sudohub/#\"$P/run/sudohub/#g" \
      -e "s#^hub_user = \"sudohub\"#hub_user = \"$HUB_USER\"#" \
      -e "s#^allowed_group = \"jupyterhub\"#allowed_group = \"$GROUP\"#" \
      -e "s#^allowed_groups = \[\"jupyterhub\"\]#allowed_groups = [\"$GROUP\"]#" "$@"
}
# Setuid mode: no rule for the spawner helper at all.
spawner_rule='s/^//'
[ "$setuid" = 1 ] && spawner_rule='/sudohub-spawner/d'
sed -e "s#/usr/lib/sudohub/#$P/usr/lib/sudohub/#g" -e "s#^sudohub ALL=#$HUB_USER ALL=#g" \
    -e "$spawner_rule" sudoers.d/sudohub > "$tmp"
if visudo -cf "$tmp" >/dev/null; then
  install -m 0440 -o root -g root "$tmp" "$P/etc/sudoers.d/sudohub"
else
  echo "install: sudoers.d/sudohub does not pass visudo -cf; not installed" >&2
  exit 1
fi
install -m 0644 -o root -g root pam.d/sudohub "$P/etc/pam.d/sudohub"
sed -e "s#^User=sudohub#User=$HUB_USER#" -e "s#^Group=sudohub#Group=$HUB_USER#" \
    -e "s#^ExecStart=/usr/bin/sudohub --config /etc/sudohub/hub.toml#ExecStart=$P/usr/bin/sudohub --config $P/etc/sudohub/hub.toml#" \
    systemd/sudohub.service > "$tmp"
install -m 0644 -o root -g root "$tmp" "$P/lib/systemd/system/sudohub.service"
# cgroup v2 machines: root's subtree for the servers (README, "Limits"); enabled by the admin.
install -m 0644 -o root -g root systemd/sudohub-servers.service "$P/lib/systemd/system/sudohub-servers.service"
# Optional socket activation (README, "Upgrading"); enabled by the admin.
install -m 0644 -o root -g root systemd/sudohub.socket "$P/lib/systemd/system/sudohub.socket"

if [ ! -e "$P/etc/sudohub/helpers.toml" ]; then
  render etc/helpers.toml > "$tmp"
  install -m 0644 -o root -g root "$tmp" "$P/etc/sudohub/helpers.toml"
else
  say "keeping existing $P/etc/sudohub/helpers.toml"
fi
if [ ! -e "$P/etc/sudohub/hub.toml" ]; then
  if [ "$setuid" = 1 ]; then
    "$P/usr/bin/sudohub" generate-config | render | sed 's#^sudo = \["sudo", "-n"\]#sudo = []#' > "$tmp"
  else
    "$P/usr/bin/sudohub" generate-config | render > "$tmp"
  fi
  install -m 0640 -o root -g "$HUB_USER" "$tmp" "$P/etc/sudohub/hub.toml"
else
  say "keeping existing $P/etc/sudohub/hub.toml"
fi
install -d -m 0700 -o "$HUB_USER" -g "$HUB_USER" "$P/var/lib/sudohub"
# sudohub-pam's per-account pacing: root and group shadow only, never the hub account.
install -d -m 0770 -o root -g shadow "$P/var/lib/sudohub-pam"
install -d -m 0750 -o "$HUB_USER" -g "$HUB_USER" "$P/var/log/sudohub"
install -d -m 0755 -o "$HUB_USER" -g "$HUB_USER" "$P/run/sudohub"

# A hub already running hands over to the binary just installed (`sudohub upgrade`, run as
# the hub's account): it takes the listening sockets, the servers and the open WebSockets,
# and the old process drains; nothing is refused or dropped. A hub too old for that, or
# none, is (re)started instead.
upgrade_hub() {
  local out newpid
  [ -z "$P" ] || return 1
  if [ -d /run/systemd/system ]; then
    systemctl is-active --quiet sudohub.service 2>/dev/null || return 1
    systemctl daemon-reload
  else
    hub_pid >/dev/null || return 1
  fi
  if ! out=$(setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
        /usr/bin/sudohub --config /etc/sudohub/hub.toml upgrade 2>&1); then
    say "no upgrade in place ($out); restarting instead"
    return 1
  fi
  newpid=$(printf '%s\n' "$out" | sed -n 's/.*(pid \([0-9]*\)).*/\1/p' | head -1)
  [ -d /run/systemd/system ] || echo "$newpid" > "$PIDFILE"
  say "upgraded in place: $out"
}

if [ "$start" = 1 ]; then
  if upgrade_hub; then
    :
  elif stop_hub && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now sudohub.service
    say "started with systemd (systemctl status sudohub)"
  else
    # No systemd as PID 1 (a container): run it in the background as the hub user. The
    # log is opened by the hub user's shell, not by root: a symlink planted there is
    # followed with the hub's rights only (and root removes one first, without following
    # it, so that a planted link cannot keep the hub from starting).
    [ -L /var/log/sudohub/sudohub.log ] && rm -f /var/log/sudohub/sudohub.log
    setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
      /bin/sh -c 'exec "$0" --config "$1" >>"$2" 2>&1' \
      /usr/bin/sudohub /etc/sudohub/hub.toml /var/log/sudohub/sudohub.log </dev/null &
    echo $! > "$PIDFILE"
    say "started in the background, pid $!, logs in /var/log/sudohub/"
  fi
  port=$(sed -n 's/^bind *= *"[^"]*:\([0-9]*\)".*/\1/p' /etc/sudohub/hub.toml | head -1)
  port=${port:-8000}
  base=$(sed -n 's/^base_url *= *"\([^"]*\)".*/\1/p' /etc/sudohub/hub.toml | head -1)
  scheme=http
  grep -q '^ssl_cert *=' /etc/sudohub/hub.toml && scheme=https
  for _ in $(seq 1 50); do
    curl -ksf -o /dev/null "$scheme://127.0.0.1:$port${base:-/}hub/api/" && break
    sleep 0.2
  done
  if ! curl -ksf -o /dev/null "$scheme://127.0.0.1:$port${base:-/}hub/api/"; then
    echo "install: the hub does not answer on port $port; its log says:" >&2
    # The log is the hub account's file: read it as that account, never as root.
    { journalctl -u sudohub -n 20 --no-pager 2>/dev/null \
      || setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
           tail -n 20 /var/log/sudohub/sudohub.log; } >&2
    exit 1
  fi
  say "checking the installation (sudohub check):"
  /usr/bin/sudohub check --config /etc/sudohub/hub.toml | sed 's/^/  /'
  addr=$(sed -n 's/^bind *= *"\([^"]*\):[0-9]*".*/\1/p' /etc/sudohub/hub.toml | head -1)
  case "$addr" in
    127.*|localhost|'[::1]'|'')
      say "sudohub is at $scheme://127.0.0.1:$port${base:-/} (this machine only)"
      say "to open it to the network, with TLS: put nginx in front (nginx/sudohub.conf), or set"
      say "  ssl_cert, ssl_key and bind = \"0.0.0.0:$port\" in /etc/sudohub/hub.toml, then restart" ;;
    *)
      say "sudohub is at $scheme://$(hostname -f 2>/dev/null || hostname):$port${base:-/}"
      [ "$scheme" = http ] && say "warning: plain HTTP on $addr: passwords cross the network in clear; set up TLS" ;;
  esac
  say "let a user in:  usermod -aG $GROUP <name>   (then they log in with their Unix password)"
  say "make an admin:  add the name to admin_users in /etc/sudohub/hub.toml, then restart the hub"
fi
