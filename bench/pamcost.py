#!/usr/bin/env python3
"""The CPU one password check costs on this machine: sudohub-pam run as the hub's user,
as the hub runs it (one process, the PAM stack, the yescrypt hash of a bench user's
password), N times one after the other; user and system CPU from getrusage. With C
cores, C / (CPU per check) bounds the logins per second any hub can verify here.
Usage: pamcost.py --helper PATH --as HUBUSER --user NAME --password-file F [--count N]"""

import argparse
import json
import os
import resource
import struct
import subprocess
import sys


def frame(body):
    return struct.pack("<I", len(body)) + body


def text(s):
    b = s.encode()
    if len(b) > 127:
        raise ValueError("too long for a one-byte varint")
    return bytes([len(b)]) + b


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--helper", required=True)
    p.add_argument("--as", dest="hub_user", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--count", type=int, default=20)
    a = p.parse_args()
    with open(a.password_file) as f:
        password = f.read().strip()
    # postcard frames: Hello { version: 2 } (PROTOCOL_VERSION, protocol/src/lib.rs), then
    # Authenticate { username, password }.
    request = frame(bytes([0, 2])) + frame(bytes([1]) + text(a.user) + text(password))
    run = ["setpriv", f"--reuid={a.hub_user}", f"--regid={a.hub_user}", "--clear-groups",
           a.helper]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(a.count):
        out = subprocess.run(run, input=request, capture_output=True)
        # The answer frame: 4-byte length, then variant 0 (Ok).
        if out.stdout[4:5] != b"\x00":
            print(f"pamcost: the check failed: {out.stderr.decode(errors='replace')}",
                  file=sys.stderr)
            return 1
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user_ms = (after.ru_utime - before.ru_utime) * 1000 / a.count
    sys_ms = (after.ru_stime - before.ru_stime) * 1000 / a.count
    cores = os.cpu_count() or 1
    cpu = user_ms + sys_ms
    json.dump({"checks": a.count, "user_ms": round(user_ms, 1), "sys_ms": round(sys_ms, 1),
               "cpu_ms_per_check": round(cpu, 1), "cores": cores,
               "bound_per_s": round(cores * 1000 / cpu, 1)}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
