#!/usr/bin/env python3
"""Per-job cost of agentd: N short jobs (`true`) submitted pipelined on one
connection, then waited for until every one has finished.

    python3 agentd/bench/spawn_jobs.py target/release/agentd 5000 [rounds]

Starts its own agentd in a temp dir (readiness from READY=1 on a
NOTIFY_SOCKET it creates), sends all submits in one write (from a thread,
while it reads the N replies), then drains notifications until N have arrived. Prints wall time
for the submits and for all jobs to finish, and CPU time: agentd's own and
its reaped children's (which include each job's shim and /bin/sh), from
/proc/<pid>/stat. Used for the numbers in docs/survival.md.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    # fields[0] is field 3 (state); utime=14, stime=15, cutime=16, cstime=17
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


def read_lines(conn, buf, n):
    lines = []
    while len(lines) < n:
        data = conn.recv(1 << 20)
        if not data:
            raise SystemExit("agentd closed the connection")
        buf += data
        *done, buf = buf.split(b"\n")
        lines.extend(done)
    return lines, buf


def round_once(agentd, n):
    tmp = tempfile.mkdtemp(prefix="agentd-bench-")
    sock_path = f"{tmp}/agentd.sock"
    notify_path = f"{tmp}/notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = dict(os.environ, AGENTD_SOCKET=sock_path, AGENTD_STATE_DIR=f"{tmp}/state",
               AGENTD_CONFIG=f"{tmp}/none.toml", NOTIFY_SOCKET=notify_path, RUST_LOG="warn")
    open(f"{tmp}/none.toml", "w").close()
    daemon = subprocess.Popen([agentd], env=env, stdin=subprocess.DEVNULL)
    notify.settimeout(30)
    while b"READY=1" not in notify.recv(4096):
        pass
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sock_path)
    req = b"".join(
        json.dumps({"jsonrpc": "2.0", "id": i, "method": "job.submit",
                    "params": {"command": "true", "cwd": tmp}}).encode() + b"\n"
        for i in range(n))
    cpu0 = cpu_seconds(daemon.pid)
    t0 = time.monotonic()
    # Send from a thread while this one reads: agentd stops reading a
    # connection whose replies are not read (docs/limits.md), so a client
    # that wrote everything before reading would wait forever.
    sender = threading.Thread(target=conn.sendall, args=(req,))
    sender.start()
    replies, buf = read_lines(conn, b"", n)
    sender.join()
    t_submitted = time.monotonic() - t0
    errors = [r for r in replies if b'"error"' in r]
    if errors:
        raise SystemExit(f"{len(errors)} submits failed, e.g. {errors[0][:200]!r}")
    seen = 0
    i = n
    while seen < n:
        i += 1
        conn.sendall(json.dumps({"jsonrpc": "2.0", "id": i, "method": "notifications.wait",
                                 "params": {"timeout_ms": 60000}}).encode() + b"\n")
        (line,), buf = read_lines(conn, buf, 1)
        got = json.loads(line)["result"]["notifications"]
        if got:
            i += 1
            conn.sendall(json.dumps({"jsonrpc": "2.0", "id": i, "method": "notifications.ack",
                                     "params": {"up_to_seq": got[-1]["seq"]}}).encode() + b"\n")
            _, buf = read_lines(conn, buf, 1)
            seen += len(got)
    t_done = time.monotonic() - t0
    cpu1 = cpu_seconds(daemon.pid)
    conn.sendall(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "daemon.shutdown",
                             "params": {"jobs": "kill"}}).encode() + b"\n")
    daemon.wait(timeout=60)
    subprocess.run(["rm", "-rf", tmp])
    return t_submitted, t_done, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]


def main():
    agentd, n = sys.argv[1], int(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    for r in range(rounds):
        sub, done, own, children = round_once(agentd, n)
        print(f"round {r + 1}: {n} jobs: submits answered in {sub:.2f} s, all finished in "
              f"{done:.2f} s = {done / n * 1000:.3f} ms/job wall; CPU agentd {own:.2f} s "
              f"({own / n * 1000:.3f} ms/job), children {children:.2f} s "
              f"({children / n * 1000:.3f} ms/job)", flush=True)


if __name__ == "__main__":
    main()
