#!/usr/bin/env bash
# The scale run (bench/scale.py) on the benchmark's sudohub install: 500 Unix users
# scale000..scale499 own the servers, and helpers.toml runs bench/stand-in.py instead of
# JupyterLab for the length of the run (restored after). Usage: bench/scale.sh OUT.json
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/scale.sh must run as root" >&2; exit 1; }
OUT="${1:?usage: bench/scale.sh OUT.json}"
P=/opt/sudohub-bench
say() { echo "[scale] $*" >&2; }

say "users scale000..scale499"
for i in $(seq -w 0 499); do
  u="scale$i"
  id "$u" >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin -G jupyterhub "$u"
done
install -m 0644 bench/stand-in.py "$P/usr/lib/sudohub/stand-in.py"
cp -p "$P/etc/sudohub/helpers.toml" "$P/etc/sudohub/helpers.toml.bench-saved"
restore() {
  bash bench/sudohub.sh stop >/dev/null 2>&1 || true
  mv -f "$P/etc/sudohub/helpers.toml.bench-saved" "$P/etc/sudohub/helpers.toml"
}
trap restore EXIT
sed -i "s#^command = .*#command = [\"/usr/bin/python3\", \"$P/usr/lib/sudohub/stand-in.py\"]#" \
  "$P/etc/sudohub/helpers.toml"
bash bench/sudohub.sh start
python3 bench/scale.py --pid-file /run/hubbench/sudohub.pid --out "$OUT"
