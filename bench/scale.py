#!/usr/bin/env python3
"""The scale run of bench/run.sh: sudohub alone with 100, 1,000 and 10,000 users in its
database and 5, 50 and 500 servers running (each started through sudo and the real
helper, bench/stand-in.py standing in for JupyterLab). At each step: the hub's memory,
the latency of a page of the users list (and of `?state=ready`), of a whoami, of a
request to a server through the proxy, and the proxy's throughput to the backend. The
cost must stay flat as the numbers grow. Writes JSON; `--markdown` prints the table."""

import argparse
import json
import statistics
import sys
import threading
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
import hubbench as hb  # noqa: E402

STEPS = [(100, 5), (1000, 50), (10000, 500)]
MIB = 1024 * 1024


def ensure_users(hub, names):
    for n in names:
        s, body = hub.call("POST", f"/users/{n}")
        if s not in (201, 409):
            raise RuntimeError(f"create {n}: {s} {body}")


def start_servers(hub, names, wave=25):
    for i in range(0, len(names), wave):
        batch = names[i:i + wave]
        ts = [threading.Thread(target=hub.call, args=("POST", f"/users/{u}/server"))
              for u in batch]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for u in batch:
            if not hb.wait_ready(hub, u, 0.2, timeout=120):
                raise RuntimeError(f"{u}'s server did not become ready")


def step(hub, a, roots, users, servers):
    url = f"http://{hub.host}:{hub.port}"
    tree = hb.split_tree(roots)
    mid = max(0, users // 2 - 100)
    r = {
        "users": users, "servers": tree["servers"],
        "hub_rss_mib": tree["hub_rss"] / MIB,
        "extra_rss_per_server_mib": tree["extra_rss"] / MIB / max(1, tree["servers"]),
        "extra_pss_per_server_mib": tree["extra_pss"] / MIB / max(1, tree["servers"]),
        "list_page": hb.wrk(f"{url}/hub/api/users?offset={mid}&limit=200", hub.token, 1, a.secs),
        "list_ready": hb.wrk(f"{url}/hub/api/users?state=ready", hub.token, 1, a.secs),
        "whoami": hb.wrk(f"{url}/hub/api/user", a.user_token, 1, a.secs),
        "to_a_server": hb.wrk(f"{url}/user/{servers[-1]}/x", None, 1, a.secs),
        "proxy_backend": hb.wrk(f"{url}/services/bench/small.txt", None, 16, a.secs),
    }
    hb.log("scale", users, "users", tree["servers"], "servers:",
           f"rss {r['hub_rss_mib']:.1f} MiB, page p50 {r['list_page']['p50_ms']} ms")
    return r


def markdown(steps):
    rows = [
        ("users in the database", lambda s: f"{s['users']:,}"),
        ("servers running", lambda s: f"{s['servers']}"),
        ("hub RSS (MiB)", lambda s: f"{s['hub_rss_mib']:.1f}"),
        ("extra RSS per server: the helper (MiB)", lambda s: f"{s['extra_rss_per_server_mib']:.1f}"),
        ("  the same, proportional set size (MiB)",
         lambda s: f"{s.get('extra_pss_per_server_mib', 0):.1f}"),
        ("page of 200 users, p50 (ms)", lambda s: f"{s['list_page']['p50_ms']:.2f}"),
        ("`?state=ready`, p50 (ms)", lambda s: f"{s['list_ready']['p50_ms']:.2f}"),
        ("whoami, p50 (ms)", lambda s: f"{s['whoami']['p50_ms']:.2f}"),
        ("request to a server through the proxy, p50 (ms)", lambda s: f"{s['to_a_server']['p50_ms']:.2f}"),
        ("proxy to the backend, 16 conns (req/s)", lambda s: f"{s['proxy_backend']['rps']:.0f}"),
    ]
    out = ["| | " + " | ".join(f"step {i + 1}" for i in range(len(steps))) + " |",
           "|---|" + "---|" * len(steps)]
    for name, f in rows:
        out.append(f"| {name} | " + " | ".join(f(s) for s in steps) + " |")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--token-file", default="/etc/hubbench/admin-token")
    p.add_argument("--pid-file", required=True)
    p.add_argument("--server-users", default="scale", help="prefix of the 500 Unix users")
    p.add_argument("--secs", type=int, default=5)
    p.add_argument("--out")
    p.add_argument("--markdown", help="print the table of a JSON file written before")
    a = p.parse_args()
    if a.markdown:
        print(markdown(json.load(open(a.markdown))["steps"]))
        return 0
    with open(a.token_file) as f:
        hub = hb.Hub(a.url, f.read().strip())
    roots = hb.roots_of(argparse.Namespace(pid=None, pid_file=[a.pid_file]))
    steps, filler, running = [], 0, 0
    server_users = [f"{a.server_users}{i:03d}" for i in range(STEPS[-1][1])]
    a.user_token = None
    for users, servers in STEPS:
        # `users` in all: the servers' owners and fillers.
        ensure_users(hub, server_users[running:servers])
        ensure_users(hub, [f"u{i:05d}" for i in range(filler, users - servers)])
        filler = users - servers
        if a.user_token is None:
            s, tok = hub.call("POST", f"/users/{server_users[0]}/tokens", {"note": "scale"})
            a.user_token = tok["token"]
        t = time.monotonic()
        start_servers(hub, server_users[running:servers])
        hb.log("scale", f"started {servers - running} servers in {time.monotonic() - t:.1f} s")
        running = servers
        steps.append(step(hub, a, roots, users, server_users[:servers]))
    result = {"steps": steps, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    print(markdown(steps))
    for u in server_users:
        hub.call("DELETE", f"/users/{u}/server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
