#!/usr/bin/env python3
"""The markdown table of one bench/run.sh run: each figure for the anchor and sudohub,
their ratio (same run), the goal of issue #12 and whether it is met.
Usage: report.py anchor.json sudohub.json [pam.json]"""

import json
import sys

MIB = 1024 * 1024


def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


# (figure, json path, unit scale, format, goal text, goal test(sudohub, anchor) or None)
ROWS = [
    ("hub RSS, idle (MiB)", "rss.hub_rss", 1 / MIB, "{:.1f}", "≤ 15", lambda s, a: s <= 15),
    ("hub RSS, 20 servers running (MiB)", "spawn_conc.hub_rss_running", 1 / MIB, "{:.1f}",
     "≤ 40 at scale", lambda s, a: s <= 40),
    ("`GET /hub/api/users`, 1,000 users, 8 conns (req/s)", "users.list.rps", 1, "{:.0f}",
     "≥ 50× anchor", lambda s, a: s >= 50 * a),
    ("  the same, p50 (ms)", "users.list.p50_ms", 1, "{:.2f}", None, None),
    ("  one request alone (ms)", "users.one_request_ms", 1, "{:.2f}", None, None),
    ("`GET /hub/api/user` whoami (req/s)", "whoami.rps", 1, "{:.0f}", "≥ 20× anchor",
     lambda s, a: s >= 20 * a),
    ("  the same, p50 (ms)", "whoami.p50_ms", 1, "{:.2f}", "≤ 0.3", lambda s, a: s <= 0.3),
    ("proxy, 1 KiB, share of direct nginx", "proxy.ratio", 1, "{:.2f}", "≥ 0.6",
     lambda s, a: s >= 0.6),
    ("  nginx as the proxy instead, share of direct (reference)", "proxy.nginx_proxy_ratio", 1,
     "{:.2f}", None, None),
    ("  proxied p50 (ms)", "proxy.p50_ms", 1, "{:.2f}", "≤ 0.5", lambda s, a: s <= 0.5),
    ("WebSocket echo round trip added by the proxy (ms)", "ws.added_ms", 1, "{:.3f}",
     "≤ 0.1", lambda s, a: s <= 0.1),
    ("spawn, sequential, POST to ready, median (s)", "spawn_seq.start_median_s", 1, "{:.2f}",
     None, None),
    ("  jupyterhub-singleuser alone, exec to answering, median (s)",
     "spawn_seq.own_start_median_s", 1, "{:.2f}", None, None),
    ("  the hub's part: spawn minus that, median of pairs (s)", "spawn_seq.over_own_s", 1, "{:.2f}", "≤ 0.1",
     lambda s, a: s <= 0.1),
    ("20 spawns at once, all ready (s)", "spawn_conc.all_ready_s", 1, "{:.1f}",
     "≤ 0.5× anchor", lambda s, a: s <= 0.5 * a),
    ("  20 jupyterhub-singleuser alone at once, all answering (s)", "spawn_conc.all_alone_s", 1,
     "{:.1f}", None, None),
    ("stop one, median (s)", "spawn_seq.stop_median_s", 1, "{:.2f}", "≤ 0.2",
     lambda s, a: s <= 0.2),
    ("stop 20 at once (s)", "spawn_conc.stop_all_s", 1, "{:.1f}", "≤ 2", lambda s, a: s <= 2),
    ("extra RSS per running server (MiB)", "spawn_conc.extra_rss_per_server", 1 / MIB,
     "{:.1f}", "≤ 2", lambda s, a: s <= 2),
    ("  the same, proportional set size (MiB)", "spawn_conc.extra_pss_per_server", 1 / MIB,
     "{:.1f}", None, None),
    ("  extra processes per running server", "spawn_conc.extra_procs_per_server", 1, "{:.1f}",
     None, None),
    ("logins/s, 5 concurrent (PAM)", "login.per_s", 1, "{:.1f}", "≥ 2× anchor",
     lambda s, a: s >= 2 * a),
    ("hub CPU-s, idle with 20 servers", "spawn_conc.idle_cpu_s", 1, "{:.2f}", "keep it", None),
    ("planned restart under load: failed proxied requests, new connections",
     "restart.planned.failed.proxied_new", 1, "{:.0f}", "0", lambda s, a: s == 0),
    ("  the same, one keep-alive connection", "restart.planned.failed.proxied_keepalive", 1,
     "{:.0f}", "0", lambda s, a: s == 0),
    ("  failed hub API requests (whoami)", "restart.planned.failed.api", 1, "{:.0f}", "0",
     lambda s, a: s == 0),
    ("  longest wait for a hub API answer (ms)", "restart.planned.longest_gap_ms.api", 1,
     "{:.0f}", None, None),
    ("  longest wait for a proxied answer (ms)", "restart.planned.longest_gap_ms.proxied_new",
     1, "{:.0f}", None, None),
    ("  WebSocket through the proxy kept (1 yes, 0 no)", "restart.planned.websocket_kept", 1,
     "{:.0f}", "1", lambda s, a: s == 1),
    ("  the restart command, start to new process serving (s)", "restart.planned.command_s", 1,
     "{:.2f}", None, None),
    ("crash (kill -9) and start under load: failed proxied requests, new connections",
     "restart.crash.failed.proxied_new", 1, "{:.0f}", None, None),
    ("  failed hub API requests (whoami)", "restart.crash.failed.api", 1, "{:.0f}", None, None),
    ("  longest wait for a hub API answer (ms)", "restart.crash.longest_gap_ms.api", 1,
     "{:.0f}", None, None),
    ("  longest wait for a proxied answer (ms)", "restart.crash.longest_gap_ms.proxied_new", 1,
     "{:.0f}", None, None),
    ("  WebSocket through the proxy kept (1 yes, 0 no)", "restart.crash.websocket_kept", 1,
     "{:.0f}", None, None),
]


def main():
    a, s = (json.load(open(p)) for p in sys.argv[1:3])
    pam = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else None
    secs = get(s, "phases.spawn_conc.idle_secs") or "?"
    print(f"Measured {s.get('started', '?')} on this machine, the anchor first, then sudohub.")
    print()
    print("| figure | anchor | sudohub | sudohub / anchor | goal | met |")
    print("|---|---|---|---|---|---|")
    for name, path, scale, fmt, goal, test in ROWS:
        av, sv = get(a, "phases." + path), get(s, "phases." + path)
        if av is None and sv is None:  # a phase this run left out (PHASES=…)
            continue
        cell = lambda v: fmt.format(v * scale) if isinstance(v, (int, float)) else "—"
        ratio = (f"{sv / av:.2f}" if isinstance(av, (int, float)) and isinstance(sv, (int, float))
                 and av else "—")
        met = ""
        if test and isinstance(sv, (int, float)):
            met = "yes" if test(sv * scale, (av or 0) * scale) else "**no**"
        print(f"| {name.replace('idle with', f'{secs} s idle with')} | {cell(av)} | {cell(sv)} "
              f"| {ratio} | {goal or ''} | {met} |")
    if pam:
        print(f"\nOne password check (sudohub-pam as the hub runs it, {pam['checks']} checks): "
              f"{pam['cpu_ms_per_check']} ms of CPU ({pam['user_ms']} user, {pam['sys_ms']} "
              f"system): at most {pam['bound_per_s']} checks/s on {pam['cores']} cores, "
              "whichever hub asks.")
    for side in (a, s):
        if side.get("errors"):
            print(f"\n{side['label']}: phases that failed: {side['errors']}")


if __name__ == "__main__":
    main()
