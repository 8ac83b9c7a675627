#!/usr/bin/env bash
# The stack sudohub replaces, for side-by-side measurements ("the anchor"): the real
# JupyterHub 6.1.1 + SudoSpawner + configurable-http-proxy, set up the way JupyterHub's
# docs describe running it without root ("Using sudo to run JupyterHub without root
# privileges"): hub account `rhea` in group shadow (PAM), one sudoers rule for the
# sudospawner mediator. configurable-http-proxy runs as its own process, as in the
# deployments admins copy (zero-to-jupyterhub, TLJH with traefik), so that a restart of the
# hub leaves the proxy and its routes up.
#
#   bench/anchor.sh setup    install what is missing (idempotent; a few minutes the first time)
#   bench/anchor.sh start    start the proxy, then the hub with an empty database, on 127.0.0.1:8000
#   bench/anchor.sh restart  a planned restart of the hub (SIGTERM, start again), the proxy left up
#   bench/anchor.sh crash    kill -9 the hub and start it again, the proxy left up
#   bench/anchor.sh stop     stop it and every server it started
#
# Shares with bench/sudohub.sh: group jupyterhub, users bench0..24 (password in
# /etc/hubbench/password) and benchapi0000..0999, the backends of bench/backends.sh.
set -euo pipefail
VENV=/opt/anchor-venv CHP=/opt/anchor-chp ETC=/etc/anchor-hub STATE=/var/lib/anchor-hub
LOG=/var/log/anchor-hub RUN=/run/anchor-hub HUB_USER=rhea
say() { echo "[anchor] $*" >&2; }

setup() {
  if [ ! -x "$VENV/bin/jupyterhub" ] || [ ! -x "$VENV/bin/sudospawner" ]; then
    say "venv $VENV: jupyterhub 6.1.1, sudospawner, jupyterlab 4.6.6"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q jupyterhub==6.1.1 sudospawner jupyterlab==4.6.6
  fi
  chmod -R a+rX "$VENV"
  if [ ! -x "$CHP/node_modules/.bin/configurable-http-proxy" ]; then
    say "configurable-http-proxy from npm into $CHP"
    mkdir -p "$CHP"
    (cd "$CHP" && { [ -f package.json ] || npm init -y >/dev/null; } \
      && npm install --no-audit --no-fund --loglevel=error configurable-http-proxy >/dev/null)
  fi
  chmod -R a+rX "$CHP"
  if ! id "$HUB_USER" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
            --shell /usr/sbin/nologin "$HUB_USER"
  fi
  usermod -aG shadow "$HUB_USER"   # the anchor's PAM runs in the hub process
  install -d -m 0755 "$ETC" "$RUN"
  install -d -m 0700 -o "$HUB_USER" -g "$HUB_USER" "$STATE"
  install -d -m 0755 -o "$HUB_USER" -g "$HUB_USER" "$LOG"
  local rule
  rule=$(mktemp)
  printf 'Cmnd_Alias ANCHOR_CMD = %s/bin/sudospawner\n%s ALL=(%%jupyterhub) NOPASSWD:ANCHOR_CMD\n' \
    "$VENV" "$HUB_USER" > "$rule"
  visudo -cf "$rule" >/dev/null
  install -m 0440 "$rule" /etc/sudoers.d/anchor-jupyterhub
  rm -f "$rule"
  local token
  token=$(cat /etc/hubbench/admin-token)
  [ -s /etc/hubbench/proxy-token ] \
    || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/hubbench/proxy-token
  install -m 0640 -o root -g "$HUB_USER" /dev/stdin "$ETC/jupyterhub_config.py" <<PY
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = 8000
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = 8081
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.auth_token = "$(cat /etc/hubbench/proxy-token)"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.db_url = "sqlite:///$STATE/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "$STATE/cookie_secret"
c.JupyterHub.pid_file = "$STATE/hub.pid"
c.JupyterHub.spawner_class = "sudospawner.SudoSpawner"
c.SudoSpawner.sudospawner_path = "$VENV/bin/sudospawner"
c.Spawner.cmd = ["$VENV/bin/jupyterhub-singleuser"]
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 180
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_groups = {"jupyterhub"}
c.JupyterHub.services = [
    {"name": "bench", "url": "http://127.0.0.1:9555"},
    {"name": "echo", "url": "http://127.0.0.1:9556"},
    {"name": "bench-admin", "api_token": "$token"},
]
c.JupyterHub.load_roles = [{"name": "admin", "services": ["bench-admin"]}]
PY
}

start() {
  stop >/dev/null 2>&1 || true
  rm -f "$STATE"/jupyterhub.sqlite* "$STATE"/chp.pid
  # The proxy's token goes through its environment, never a command line.
  # Started with every fd redirected and nothing waiting for it: a caller that reads this
  # script's output sees its end.
  ( CONFIGPROXY_AUTH_TOKEN="$(cat /etc/hubbench/proxy-token)"
    export CONFIGPROXY_AUTH_TOKEN PATH=/usr/bin:/bin
    cd "$STATE" && exec setsid setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
      "$CHP/node_modules/.bin/configurable-http-proxy" --ip 127.0.0.1 --port 8000 \
      --api-ip 127.0.0.1 --api-port 8001 --default-target http://127.0.0.1:8081 \
      --error-target http://127.0.0.1:8081/hub/error --log-level warn \
      --pid-file "$STATE/chp.pid" ) </dev/null >>"$LOG/proxy.log" 2>&1 &
  for _ in $(seq 1 100); do [ -s "$STATE/chp.pid" ] && break; sleep 0.1; done
  cp "$STATE/chp.pid" "$RUN/chp.pid"
  launch
}

# The hub alone, on the database that is there; the proxy must be up.
launch() {
  rm -f "$STATE/hub.pid"
  ( cd "$STATE" && exec setsid sudo -u "$HUB_USER" env PATH="$VENV/bin:/usr/bin:/bin" \
      "$VENV/bin/jupyterhub" -f "$ETC/jupyterhub_config.py" ) </dev/null >>"$LOG/hub.log" 2>&1 &
  for _ in $(seq 1 300); do
    curl -sf -m 2 -o /dev/null http://127.0.0.1:8000/hub/api/ && break
    sleep 0.05
  done
  curl -sf -o /dev/null http://127.0.0.1:8000/hub/api/ || { tail -20 "$LOG/hub.log" >&2; exit 1; }
  cp "$STATE/hub.pid" "$RUN/hub.pid"
  say "up, pid $(cat "$RUN/hub.pid")"
}

# The way a planned restart goes (systemctl restart jupyterhub): SIGTERM, wait, start.
restart() {
  local pid
  pid=$(cat "$RUN/hub.pid")
  kill -TERM "$pid"
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  launch
}

crash() {
  kill -KILL "$(cat "$RUN/hub.pid")"
  launch
}

stop() {
  local pid
  pid=$(cat "$RUN/hub.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 450); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  pkill -KILL -f "$CHP/node_modules" 2>/dev/null || true
  pkill -KILL -f "$VENV/bin/" 2>/dev/null || true
  rm -f "$RUN/hub.pid" "$RUN/chp.pid"
}

[ "$(id -u)" = 0 ] || { echo "bench/anchor.sh must run as root" >&2; exit 1; }
case "${1:-}" in
  setup|start|restart|crash|stop) "$1" ;;
  *) echo "usage: bench/anchor.sh setup|start|restart|crash|stop" >&2; exit 2 ;;
esac
