#!/usr/bin/env bash
# Side-by-side benchmark: sudohub against the stack it replaces (JupyterHub 6.1.1 +
# SudoSpawner + configurable-http-proxy), on this machine, in one run, through the same
# REST API and HTTP calls. Installs what is missing (the anchor from PyPI and npm, this
# tree under /opt/sudohub-bench), then writes DIR/anchor.json, DIR/sudohub.json and
# DIR/results.md (the figures and their ratios).
#
#   sudo bench/run.sh [DIR]          DIR defaults to bench/results/<date>
#   PHASES=rss,users,whoami sudo bench/run.sh    a subset (see bench/hubbench.py --phases)
#   SIDES=sudohub sudo bench/run.sh  one side only (no ratios: for trying a change)
#   SCALE=0 sudo bench/run.sh        without the scale run (bench/scale.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/run.sh must run as root: sudo bench/run.sh" >&2; exit 1; }
OUT="${1:-bench/results/$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
RUN=/run/hubbench
say() { echo "[bench] $*" >&2; }

say "packages"
missing=()
for p in wrk nginx-light python3-venv curl sudo; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm may come from Debian or from a node package that bundles npm.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's nginx would start its default site on :80; the benchmark runs its own.
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

say "users: bench0..24 (password in /etc/hubbench/password), benchapi0000..0999"
install -d -m 0700 /etc/hubbench
[ -s /etc/hubbench/password ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > /etc/hubbench/password
[ -s /etc/hubbench/admin-token ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > /etc/hubbench/admin-token
getent group jupyterhub >/dev/null || groupadd jupyterhub
for i in $(seq 0 24); do
  id "bench$i" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash -G jupyterhub "bench$i"
  echo "bench$i:$(cat /etc/hubbench/password)"
done | chpasswd
for i in $(seq 0 999); do
  u=$(printf 'benchapi%04d' "$i")
  id "$u" >/dev/null 2>&1 || useradd --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin -G jupyterhub "$u"
done

say "backends: nginx with a 1 KiB file on 127.0.0.1:9555 (and as a proxy to it on 9557), a WebSocket echo on 9556"
install -d -m 0755 "$RUN" "$RUN/www/services/bench"
head -c 1024 /dev/zero | tr '\0' x > "$RUN/www/services/bench/small.txt"
cat > "$RUN/nginx.conf" <<NGINX
worker_processes 1;
pid $RUN/nginx.pid;
error_log $RUN/nginx.log;
events {}
http {
  access_log off;
  client_body_temp_path $RUN/body;
  proxy_temp_path $RUN/proxy;
  server { listen 127.0.0.1:9555; root $RUN/www; }
  # The reference proxy: nginx itself in front of the backend, keep-alive upstream. What
  # a well-tuned C proxy keeps of direct throughput on this machine.
  upstream backend { server 127.0.0.1:9555; keepalive 32; }
  server {
    listen 127.0.0.1:9557;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
stop_backends() {
  [ -s "$RUN/nginx.pid" ] && kill "$(cat "$RUN/nginx.pid")" 2>/dev/null || true
  [ -s "$RUN/echo.pid" ] && kill "$(cat "$RUN/echo.pid")" 2>/dev/null || true
  rm -f "$RUN/echo.pid"
}
stop_backends
sleep 0.3
nginx -c "$RUN/nginx.conf"
python3 bench/echo.py 9556 </dev/null >/dev/null 2>&1 &
echo $! > "$RUN/echo.pid"

SIDES="${SIDES:-anchor sudohub}"
for side in $SIDES; do
  say "setting up $side"
  bash "bench/$side.sh" setup
done

common=(--token-file /etc/hubbench/admin-token --password-file /etc/hubbench/password
        --users bench0-24 --bulk-prefix benchapi --bulk-count 1000)
[ -n "${PHASES:-}" ] && common+=(--phases "$PHASES")
rc=0
for side in $SIDES; do
  say "measuring $side"
  bash "bench/$side.sh" start
  # The anchor's proxy is its own process: its pid is the second root.
  if [ "$side" = anchor ]; then pids=(--pid-file /run/anchor-hub/hub.pid --pid-file /run/anchor-hub/chp.pid)
  else pids=(--pid-file "$RUN/sudohub.pid"); fi
  python3 bench/hubbench.py --label "$side" "${pids[@]}" "${common[@]}" \
    --restart-cmd "bash bench/$side.sh restart" --crash-cmd "bash bench/$side.sh crash" \
    --out "$OUT/$side.json" || rc=1
  bash "bench/$side.sh" stop
  if [ "$side" = sudohub ]; then
    say "the CPU of one password check"
    python3 bench/pamcost.py --helper /opt/sudohub-bench/usr/lib/sudohub/sudohub-pam \
      --as sudohub-bench --user bench0 --password-file /etc/hubbench/password > "$OUT/pam.json" || rc=1
  fi
done
if [ "${SCALE:-1}" = 1 ] && [[ " $SIDES " == *" sudohub "* ]]; then
  say "the scale run: 100, 1,000, 10,000 users; 5, 50, 500 servers"
  bash bench/scale.sh "$OUT/scale.json" || rc=1
fi
stop_backends
if [ -s "$OUT/anchor.json" ] && [ -s "$OUT/sudohub.json" ]; then
  pam=()
  [ -s "$OUT/pam.json" ] && pam=("$OUT/pam.json")
  python3 bench/report.py "$OUT/anchor.json" "$OUT/sudohub.json" "${pam[@]}" > "$OUT/results.md"
  if [ -s "$OUT/scale.json" ]; then
    printf '\nScale run (sudohub alone):\n\n' >> "$OUT/results.md"
    python3 bench/scale.py --pid-file /dev/null --markdown "$OUT/scale.json" >> "$OUT/results.md"
  fi
  cat "$OUT/results.md"
  say "written: $OUT/results.md, $OUT/anchor.json, $OUT/sudohub.json"
else
  say "written: $OUT/*.json"
fi
exit "$rc"
