#!/usr/bin/env python3
"""Measures one JupyterHub-compatible hub through its REST API and HTTP only (plus /proc
for the memory and CPU of its processes), so that the same run measures sudohub and the
stack it replaces. Writes one JSON object. Used by bench/run.sh; see bench/README.md.

Load comes from wrk; everything else is the Python standard library."""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

from procs import CLK_TCK, split_tree  # scale.py uses hb.split_tree too


def log(*a):
    print("[hubbench]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ HTTP

class Hub:
    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.token = token
        self.url = url.rstrip("/")

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method, path, body=None, token=None, headers=None):
        c = self.conn()
        h = {"Authorization": f"token {token or self.token}"}
        if body is not None:
            h["Content-Type"] = "application/json"
            body = json.dumps(body)
        h.update(headers or {})
        c.request(method, "/hub/api" + path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data.decode(errors="replace")


def together(fn, items):
    """Runs fn(item) for every item, each in its own thread, all at once; the seconds
    until the last one is done."""
    t0 = time.monotonic()
    ts = [threading.Thread(target=fn, args=(i,)) for i in items]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.monotonic() - t0


def wrk(url, token=None, conns=8, secs=10):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--latency", url]
    if token:
        cmd[1:1] = ["-H", f"Authorization: token {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)\b", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": ms("50"), "p99_ms": ms("99"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


# ------------------------------------------------------------------ phases

def phase_users(hub, a):
    """Creates the bulk users one by one (409: there already) and times the list."""
    t0 = time.monotonic()
    made = 0
    for i in range(a.bulk_count):
        s, _ = hub.call("POST", f"/users/{a.bulk_prefix}{i:04d}")
        if s not in (201, 409):
            raise RuntimeError(f"create user: {s}")
        made += s == 201
    created_s = time.monotonic() - t0
    s, users = hub.call("GET", "/users")
    one = []
    for _ in range(5):
        t = time.monotonic()
        hub.call("GET", "/users")
        one.append((time.monotonic() - t) * 1000)
    return {"created": made, "create_s": round(created_s, 2), "page_len": len(users),
            "one_request_ms": statistics.median(one),
            "list": wrk(f"http://{hub.host}:{hub.port}/hub/api/users", hub.token, 8, a.load_secs)}


def phase_whoami(hub, a):
    s, tok = hub.call("POST", f"/users/{a.users[0]}/tokens", {"note": "bench"})
    if s not in (200, 201):
        raise RuntimeError(f"token: {s} {tok}")
    return wrk(f"http://{hub.host}:{hub.port}/hub/api/user", tok["token"], 8, a.load_secs)


def login_once(hub, user, password):
    c = hub.conn()
    c.request("GET", "/hub/login")
    r = c.getresponse()
    page = r.read().decode()
    cookies = [h.split(";")[0] for k, h in r.getheaders() if k.lower() == "set-cookie"]
    m = re.search(r'name="_xsrf" value="([^"]+)"', page)
    form = {"username": user, "password": password}
    if m:
        form["_xsrf"] = m.group(1)
    c.request("POST", "/hub/login?next=", body=urllib.parse.urlencode(form),
              headers={"Content-Type": "application/x-www-form-urlencoded",
                       "Cookie": "; ".join(cookies)})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status in (302, 303) and any(
        "login" in h for k, h in r.getheaders() if k.lower() == "set-cookie")


def phase_login(hub, a):
    users = a.users[: a.login_concurrency]
    n = a.login_count
    results, lock = [], threading.Lock()

    def worker(u):
        for _ in range(n):
            ok = login_once(hub, u, a.password)
            with lock:
                results.append(ok)

    wall = together(worker, users)
    return {"logins": len(results), "ok": sum(results), "per_s": len(results) / wall}


def phase_proxy(hub, a):
    direct = f"{a.backend_url}{a.service_path}{a.service_file}"
    via = f"http://{hub.host}:{hub.port}{a.service_path}{a.service_file}"
    reference = f"{a.reference_proxy_url}{a.service_path}{a.service_file}"
    rounds = []
    for _ in range(a.proxy_rounds):
        d = wrk(direct, None, 16, a.load_secs)
        p = wrk(via, None, 16, a.load_secs)
        n = wrk(reference, None, 16, a.load_secs) if a.reference_proxy_url else None
        rounds.append({"direct": d, "proxied": p, "ratio": p["rps"] / d["rps"],
                       "nginx_proxy_ratio": n["rps"] / d["rps"] if n else None})
    refs = [r["nginx_proxy_ratio"] for r in rounds if r["nginx_proxy_ratio"]]
    return {"rounds": rounds, "ratio": statistics.median(r["ratio"] for r in rounds),
            "nginx_proxy_ratio": statistics.median(refs) if refs else None,
            "p50_ms": statistics.median(r["proxied"]["p50_ms"] for r in rounds),
            "p99_ms": statistics.median(r["proxied"]["p99_ms"] for r in rounds)}


def ws_connect(host, port, path):
    """A WebSocket to host:port/path, handshake done."""
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("websocket: closed during handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"websocket handshake: {head[:80]!r}")
    return s


def ws_rtt(s):
    """One echo round trip of a 32-byte text frame, in ms."""
    payload = b"x" * 32
    frame = bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload
    t = time.perf_counter_ns()
    s.sendall(frame)
    got = b""
    while len(got) < 2 + len(payload):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("the WebSocket was closed")
        got += chunk
    return (time.perf_counter_ns() - t) / 1e6


def phase_ws(hub, a):
    """Round trips direct and through the hub, taken in alternation (so that the
    machine's drift hits both alike), over `ws_rounds` fresh pairs of connections;
    `added_ms` is the median over the rounds of each round's median difference."""
    e = urllib.parse.urlsplit(a.echo_url)
    path = a.echo_path + "ws"
    rounds = []
    for _ in range(a.ws_rounds):
        d = ws_connect(e.hostname, e.port, path)
        p = ws_connect(hub.host, hub.port, path)
        for _ in range(200):  # warm both paths up
            ws_rtt(d), ws_rtt(p)
        pairs = [(ws_rtt(d), ws_rtt(p)) for _ in range(a.ws_count)]
        d.close(), p.close()
        rounds.append({"direct_ms": statistics.median(x for x, _ in pairs),
                       "proxied_ms": statistics.median(y for _, y in pairs),
                       "added_ms": statistics.median(y - x for x, y in pairs)})
    return {"rounds": rounds,
            "direct_ms": statistics.median(r["direct_ms"] for r in rounds),
            "proxied_ms": statistics.median(r["proxied_ms"] for r in rounds),
            "added_ms": statistics.median(r["added_ms"] for r in rounds)}


def server_of(hub, user):
    s, m = hub.call("GET", f"/users/{user}")
    return (m or {}).get("servers", {}).get("", None) if s == 200 else None


def wait_for(check, every, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return True
        time.sleep(every)
    return False


def wait_ready(hub, user, every, timeout=300):
    return wait_for(lambda: (server_of(hub, user) or {}).get("ready"), every, timeout)


def wait_gone(hub, user, every, timeout=120):
    return wait_for(lambda: server_of(hub, user) is None, every, timeout)


def singleuser_alone(hub, a, u, token):
    """jupyterhub-singleuser's own start, without any hub starting it: run as `u` with the
    environment a spawner gives it (calling this hub's API), from exec to the first 200
    of its /api, polled every 10 ms."""
    pw = subprocess.run(["getent", "passwd", u], capture_output=True, text=True).stdout
    home = pw.split(":")[5] if pw.count(":") >= 6 else "/tmp"
    prefix = f"/user/{u}/"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"HOME": home, "USER": u, "PATH": os.path.dirname(a.singleuser) + ":/usr/bin:/bin",
           "LANG": "C.UTF-8", "JUPYTERHUB_API_TOKEN": token,
           "JUPYTERHUB_API_URL": f"{hub.url}/hub/api", "JUPYTERHUB_BASE_URL": "/",
           "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{u}", "JUPYTERHUB_USER": u,
           "JUPYTERHUB_SERVER_NAME": "", "JUPYTERHUB_SERVICE_PREFIX": prefix,
           "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
           "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{prefix}"}
    t = time.monotonic()
    proc = subprocess.Popen(["runuser", "-u", u, "--", "env", "-i",
                             *[f"{k}={v}" for k, v in env.items()], a.singleuser],
                            cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def answers():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", f"{prefix}api")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False
    ok = wait_for(answers, 0.01, 120)
    took = time.monotonic() - t
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)
    if not ok:
        raise RuntimeError("jupyterhub-singleuser never answered")
    return took


def phase_spawn_seq(hub, a):
    """Each user: jupyterhub-singleuser started alone first, then through the hub (POST
    to ready); the hub's part is the median of the differences, pair by pair."""
    users = a.users[: a.seq_count]
    starts, stops, alone = [], [], []
    for _ in range(a.seq_rounds):
        for u in users:
            if a.singleuser:
                s, tok = hub.call("POST", f"/users/{u}/tokens", {"note": "singleuser alone"})
                if s not in (200, 201):
                    raise RuntimeError(f"token: {s} {tok}")
                alone.append(singleuser_alone(hub, a, u, tok["token"]))
            t = time.monotonic()
            s, _ = hub.call("POST", f"/users/{u}/server")
            if s not in (201, 202) or not wait_ready(hub, u, 0.01):
                raise RuntimeError(f"spawn {u}: {s}")
            starts.append(time.monotonic() - t)
        for u in users:
            t = time.monotonic()
            hub.call("DELETE", f"/users/{u}/server")
            wait_gone(hub, u, 0.01)
            stops.append(time.monotonic() - t)
    r = {"start_s": starts, "start_median_s": statistics.median(starts),
         "stop_s": stops, "stop_median_s": statistics.median(stops)}
    if alone:
        r.update({"own_start_s": alone, "own_start_median_s": statistics.median(alone),
                  "over_own_s": statistics.median(x - y for x, y in zip(starts, alone))})
    return r


def alone_at_once(hub, a, users):
    """The floor of starting these servers at once on this machine: as many
    jupyterhub-singleuser started together with no hub starting them; seconds until all
    answer."""
    tokens = {}
    for u in users:
        s, tok = hub.call("POST", f"/users/{u}/tokens", {"note": "singleuser alone"})
        if s not in (200, 201):
            raise RuntimeError(f"token: {s} {tok}")
        tokens[u] = tok["token"]
    barrier = threading.Barrier(len(users))
    errors = []

    def go(u):
        barrier.wait()
        try:
            singleuser_alone(hub, a, u, tokens[u])
        except Exception as e:  # reported after all are done
            errors.append(repr(e))
    # singleuser_alone stops each server as soon as it answered: the last answer ends it.
    took = together(go, users)
    if errors:
        raise RuntimeError(f"singleuser alone: {errors[0]}")
    return took


def phase_spawn_conc(hub, a, roots):
    users = a.users[a.seq_count: a.seq_count + a.conc_count]
    alone = alone_at_once(hub, a, users) if a.singleuser else None
    time.sleep(2)
    barrier = threading.Barrier(len(users))
    lat = {}

    def go(u):
        barrier.wait()
        t = time.monotonic()
        s, _ = hub.call("POST", f"/users/{u}/server")
        ok = s in (201, 202) and wait_ready(hub, u, 0.25)
        lat[u] = time.monotonic() - t if ok else None

    all_ready = together(go, users)
    time.sleep(2)
    running = split_tree(roots)
    t1 = split_tree(roots)["ticks"]
    time.sleep(a.idle_secs)
    idle_cpu = (split_tree(roots)["ticks"] - t1) / CLK_TCK
    t = time.monotonic()
    together(lambda u: hub.call("DELETE", f"/users/{u}/server"), users)
    for u in users:
        wait_gone(hub, u, 0.1)
    stop_all = time.monotonic() - t
    return {"ready": sum(v is not None for v in lat.values()), "all_ready_s": all_ready,
            "all_alone_s": alone,
            "hub_rss_running": running["hub_rss"], "servers": running["servers"],
            "extra_rss_per_server": running["extra_rss"] / max(1, running["servers"]),
            "extra_pss_per_server": running["extra_pss"] / max(1, running["servers"]),
            "extra_procs_per_server": running["extra_procs"] / max(1, running["servers"]),
            "idle_cpu_s": idle_cpu, "idle_secs": a.idle_secs, "stop_all_s": stop_all}


def under_load(hub, a, cmd):
    """Runs `cmd` (a restart of the hub) while clients keep asking: fresh connections to
    a service through the proxy, one keep-alive connection to it, fresh connections to
    the hub's API (whoami) and a WebSocket echo through the proxy. Counts what failed
    (refused, reset, a status other than 200, an echo that never came back) and the
    longest time each kind went without an answer."""
    stop = threading.Event()
    kinds = ("proxied_new", "proxied_keepalive", "api", "websocket")
    ok = {k: 0 for k in kinds}
    failed = {k: 0 for k in kinds}
    last = {k: time.monotonic() for k in kinds}
    gap = {k: 0.0 for k in kinds}
    errors = []
    path = a.service_path + a.service_file
    lock = threading.Lock()

    def count(kind, good, why=None):
        with lock:
            now = time.monotonic()
            if good:
                ok[kind] += 1
                gap[kind] = max(gap[kind], now - last[kind])
                last[kind] = now
            else:
                failed[kind] += 1
                if len(errors) < 20:
                    errors.append(f"{kind}: {why}")

    def get(c, target, headers):
        c.request("GET", target, headers=headers)
        r = c.getresponse()
        r.read()
        return r.status

    def fresh(kind, target, headers):
        while not stop.is_set():
            c = http.client.HTTPConnection(hub.host, hub.port, timeout=10)
            try:
                st = get(c, target, headers)
                count(kind, st == 200, f"status {st}")
            except (OSError, http.client.HTTPException) as e:
                count(kind, False, repr(e))
            finally:
                c.close()
            time.sleep(0.005)

    def keepalive():
        c = http.client.HTTPConnection(hub.host, hub.port, timeout=10)
        while not stop.is_set():
            try:
                st = get(c, path, {})
                count("proxied_keepalive", st == 200, f"status {st}")
            except (OSError, http.client.HTTPException) as e:
                count("proxied_keepalive", False, repr(e))
                c.close()
                c = http.client.HTTPConnection(hub.host, hub.port, timeout=10)
            time.sleep(0.005)
        c.close()

    def websocket():
        s = ws_connect(hub.host, hub.port, a.echo_path + "ws")
        s.settimeout(10)
        while not stop.is_set():
            try:
                ws_rtt(s)
                count("websocket", True)
            except OSError as e:  # a WebSocket that broke stays broken: count it once
                count("websocket", False, repr(e))
                break
            time.sleep(0.02)
        s.close()

    threads = [threading.Thread(target=fresh, args=("proxied_new", path, {})),
               threading.Thread(target=keepalive),
               threading.Thread(target=fresh, args=("api", "/hub/api/user",
                                                    {"Authorization": f"token {hub.token}"})),
               threading.Thread(target=websocket)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        t0 = time.monotonic()
        run = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=300)
        took = time.monotonic() - t0
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    if run.returncode != 0:
        raise RuntimeError(f"{cmd}: {run.stderr.strip()[-300:]}")
    log(run.stderr.strip()[-200:])
    return {"command_s": took, "ok": ok, "failed": failed,
            "longest_gap_ms": {k: v * 1000 for k, v in gap.items()},
            "websocket_kept": int(failed["websocket"] == 0 and ok["websocket"] > 0),
            "errors": errors}


def phase_restart(hub, a):
    """A planned restart under load (sudohub: `sudohub upgrade`; the anchor: SIGTERM and
    start, its proxy left up), then a crash (kill -9 and start) under the same load."""
    if not a.restart_cmd or not a.crash_cmd:
        raise RuntimeError("--restart-cmd and --crash-cmd are needed")
    with open(a.pid_file[0]) as f:  # the hub's own (the anchor's proxy is the second)
        before = int(f.read().strip())
    planned = under_load(hub, a, a.restart_cmd)
    # The old process drains before it exits; the crash is measured once it is gone.
    gone = wait_for(lambda: not os.path.exists(f"/proc/{before}"), 0.1, 60)
    planned["old_process_exited"] = gone
    crash = under_load(hub, a, a.crash_cmd)
    return {"planned": planned, "crash": crash}


# ------------------------------------------------------------------ main

def roots_of(a):
    roots = set(a.pid or [])
    for f in a.pid_file or []:
        with open(f) as fh:
            roots.add(int(fh.read().strip()))
    return roots


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--label", required=True)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--token-file", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--pid-file", action="append")
    p.add_argument("--pid", type=int, action="append")
    p.add_argument("--users", default="bench0-24", help="bench0-24 or a,b,c")
    p.add_argument("--bulk-prefix", default="benchapi")
    p.add_argument("--bulk-count", type=int, default=1000)
    p.add_argument("--backend-url", default="http://127.0.0.1:9555")
    p.add_argument("--service-path", default="/services/bench/")
    p.add_argument("--service-file", default="small.txt")
    p.add_argument("--reference-proxy-url", default="http://127.0.0.1:9557",
                   help="nginx proxying to the backend: the reference for the proxy share")
    p.add_argument("--echo-url", default="http://127.0.0.1:9556")
    p.add_argument("--echo-path", default="/services/echo/")
    p.add_argument("--load-secs", type=int, default=10)
    p.add_argument("--proxy-rounds", type=int, default=2)
    p.add_argument("--ws-count", type=int, default=1000)
    p.add_argument("--ws-rounds", type=int, default=7)
    p.add_argument("--login-count", type=int, default=20)
    p.add_argument("--login-concurrency", type=int, default=5)
    p.add_argument("--seq-count", type=int, default=5)
    p.add_argument("--seq-rounds", type=int, default=4,
                   help="each of the seq-count users is started and stopped this many times")
    p.add_argument("--conc-count", type=int, default=20)
    p.add_argument("--idle-secs", type=int, default=60)
    p.add_argument("--settle", type=int, default=5)
    p.add_argument("--singleuser", default="/opt/sudohub/venv/bin/jupyterhub-singleuser",
                   help="the jupyterhub-singleuser both hubs start (same version), run alone "
                        "before each sequential spawn; '' to skip")
    p.add_argument("--restart-cmd", help="a planned restart of the hub, e.g. 'bench/sudohub.sh restart'")
    p.add_argument("--crash-cmd", help="kill -9 the hub and start it, e.g. 'bench/sudohub.sh crash'")
    p.add_argument("--phases",
                   default="rss,users,whoami,login,proxy,ws,spawn_seq,spawn_conc,restart")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    m = re.fullmatch(r"([a-z_]+)(\d+)-(\d+)", a.users)
    a.users = ([f"{m.group(1)}{i}" for i in range(int(m.group(2)), int(m.group(3)) + 1)]
               if m else a.users.split(","))
    with open(a.token_file) as f:
        token = f.read().strip()
    with open(a.password_file) as f:
        a.password = f.read().strip()
    hub = Hub(a.url, token)
    roots = roots_of(a)
    for u in a.users:  # the test users exist in the hub (409: already)
        status, body = hub.call("POST", f"/users/{u}")
        if status not in (201, 409):
            log(f"cannot create user {u}: {status} {body}")
            return 2
    result = {"label": a.label, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "phases": {}, "errors": {}}
    for name in a.phases.split(","):
        log(a.label, name)
        try:
            if name == "rss":
                time.sleep(a.settle)
                r = split_tree(roots)
            elif name == "spawn_conc":
                r = phase_spawn_conc(hub, a, roots)
            else:
                r = globals()[f"phase_{name}"](hub, a)
            result["phases"][name] = r
            roots = roots_of(a)  # a restart changes the hub's pid
        except Exception as e:  # a phase that fails is recorded, the others still run
            log(a.label, name, "failed:", repr(e))
            result["errors"][name] = repr(e)
    result["phases"].setdefault("rss_end", split_tree(roots))
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
