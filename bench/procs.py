"""The processes of a hub, from /proc: its own, what exists once per running server
(sudo, helpers, mediators), and the servers; their memory (RSS, PSS) and CPU time.
Used by hubbench.py and scale.py."""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_table():
    """pid -> (ppid, uid, rss_bytes, cpu_ticks incl. reaped children, cmdline)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            rest = st[st.rindex(")") + 2:].split()
            ppid = int(rest[1])
            ticks = sum(int(x) for x in rest[11:15])
            rss = int(rest[21]) * PAGE
            uid = os.stat(f"/proc/{d}").st_uid
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            out[int(d)] = (ppid, uid, rss, ticks, cmd)
        except (OSError, ValueError, IndexError):
            continue
    return out


def pss(pid):
    """Proportional set size: private pages plus a share of those mapped by several
    processes (the helper's code and libc, once for all helpers)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree(table, roots):
    children = {}
    for pid, (ppid, *_r) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen, stack = set(), [r for r in roots if r in table]
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        stack.extend(children.get(p, []))
    return seen


def is_server(cmd):
    return "jupyterhub-singleuser" in cmd or "stand-in.py" in cmd


def split_tree(roots):
    """The hub tree split into: the hub's own processes, per-server extras (sudo,
    helpers, mediators: everything that is not a server or below one), servers."""
    t = proc_table()
    everything = tree(t, roots)
    # Servers anywhere: the anchor's mediator starts them and exits, so they end up
    # outside the hub's tree.
    servers = {p for p, v in t.items() if v[1] != 0 and is_server(v[4])}
    below_servers = tree(t, servers)
    # What exists once per server: sudo and what it runs, in the hub's tree, or a
    # server's parent outside it (sudohub's helper leaves sudo and the hub's tree).
    candidates = (everything - below_servers) | {t[s][0] for s in servers}
    extras = set()
    for p in candidates - set(roots):
        cmd = t.get(p, (0, 0, 0, 0, ""))[4]
        if cmd.startswith("sudo") or "sudospawner" in cmd or "sudohub-spawner" in cmd:
            extras.add(p)
    own = everything - below_servers - extras
    rss = lambda ps: sum(t[p][2] for p in ps)
    return {
        "hub_rss": rss(own),
        "hub_procs": sorted(t[p][4][:60] for p in own),
        "extra_rss": rss(extras),
        "extra_pss": sum(pss(p) for p in extras),
        "extra_procs": len(extras),
        "servers": len(servers),
        "ticks": sum(t[p][3] for p in everything - below_servers),
    }
