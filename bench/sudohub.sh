#!/usr/bin/env bash
# sudohub for side-by-side measurements: a real install of this tree under
# /opt/sudohub-bench (install.sh --prefix, account sudohub-bench), made live with its own
# sudoers rule and PAM service, so that an admin's real install is never touched.
#
#   bench/sudohub.sh setup    build and install this tree (a release build)
#   bench/sudohub.sh start    start it with an empty database on 127.0.0.1:8000
#   bench/sudohub.sh restart  a planned restart: sudohub upgrade (the hand-over)
#   bench/sudohub.sh crash    kill -9 the hub and start it again
#   bench/sudohub.sh stop     stop it and every server it started
set -euo pipefail
cd "$(dirname "$0")/.."
P=/opt/sudohub-bench HUB_USER=sudohub-bench RUN=/run/hubbench
say() { echo "[sudohub] $*" >&2; }

setup() {
  ./install.sh --prefix "$P" --user "$HUB_USER" --group jupyterhub >/dev/null
  install -m 0440 "$P/etc/sudoers.d/sudohub" /etc/sudoers.d/sudohub-bench
  install -m 0644 "$P/etc/pam.d/sudohub" /etc/pam.d/sudohub-bench
  install -m 0644 "$P/etc/pam.d/sudohub" "$P/etc/pam.d/sudohub-bench"   # for sudohub check
  sed -i -e 's/^service = .*/service = "sudohub-bench"/' \
         -e 's#^hub_api_url = .*#hub_api_url = "http://127.0.0.1:8000/hub/api"#' \
      "$P/etc/sudohub/helpers.toml"
  grep -q '^service = "sudohub-bench"' "$P/etc/sudohub/helpers.toml" \
    || sed -i 's/^\[pam\]$/[pam]\nservice = "sudohub-bench"/' "$P/etc/sudohub/helpers.toml"
  install -m 0640 -o root -g "$HUB_USER" /dev/stdin "$P/etc/sudohub/hub.toml" <<TOML
bind = "127.0.0.1:8000"
db = "$P/var/lib/sudohub/sudohub.sqlite"
cookie_secret_file = "$P/var/lib/sudohub/cookie_secret"
reattach_socket = "$P/run/sudohub/spawners.sock"
[auth]
allowed_groups = ["jupyterhub"]
[pam]
helper = "$P/usr/lib/sudohub/sudohub-pam"
[spawner]
helper = "$P/usr/lib/sudohub/sudohub-spawner"
start_timeout_secs = 180
http_timeout_secs = 120
[[services]]
name = "bench"
url = "http://127.0.0.1:9555"
[[services]]
name = "echo"
url = "http://127.0.0.1:9556"
[[services]]
name = "bench-admin"
api_token = "$(cat /etc/hubbench/admin-token)"
admin = true
TOML
  "$P/usr/bin/sudohub" check --config "$P/etc/sudohub/hub.toml" --prefix "$P" >&2 || true
}

start() {
  stop >/dev/null 2>&1 || true
  rm -f "$P"/var/lib/sudohub/sudohub.sqlite*
  install -d -m 0755 "$RUN"
  launch
}

# The hub on the database that is there.
launch() {
  setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
    /bin/sh -c 'exec "$0" --config "$1" >>"$2" 2>&1' "$P/usr/bin/sudohub" \
    "$P/etc/sudohub/hub.toml" "$P/var/log/sudohub/sudohub.log" </dev/null &
  echo $! > "$RUN/sudohub.pid"
  for _ in $(seq 1 400); do
    curl -sf -o /dev/null http://127.0.0.1:8000/hub/api/ && break
    sleep 0.025
  done
  curl -sf -o /dev/null http://127.0.0.1:8000/hub/api/ \
    || { tail -20 "$P/var/log/sudohub/sudohub.log" >&2; exit 1; }
  say "up, pid $(cat "$RUN/sudohub.pid")"
}

# A planned restart as install.sh does it: the hub account asks for the hand-over.
restart() {
  local out
  out=$(setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
    "$P/usr/bin/sudohub" --config "$P/etc/sudohub/hub.toml" upgrade)
  printf '%s\n' "$out" | sed -n 's/.*(pid \([0-9]*\)).*/\1/p' | head -1 > "$RUN/sudohub.pid"
  say "$out"
}

crash() {
  kill -KILL "$(cat "$RUN/sudohub.pid")"
  launch
}

stop() {
  local pid
  pid=$(cat "$RUN/sudohub.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && sleep 0.5
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  # Servers outlive the hub by design; the benchmark's own end them with their helpers.
  pkill -TERM -f "$P/usr/lib/sudohub/sudohub-spawner" 2>/dev/null || true
  sleep 1
  pkill -KILL -f "$P/usr/lib/sudohub/sudohub-spawner" 2>/dev/null || true
  rm -f "$RUN/sudohub.pid"
}

[ "$(id -u)" = 0 ] || { echo "bench/sudohub.sh must run as root" >&2; exit 1; }
case "${1:-}" in
  setup|start|restart|crash|stop) "$1" ;;
  *) echo "usage: bench/sudohub.sh setup|start|restart|crash|stop" >&2; exit 2 ;;
esac
