#!/usr/bin/env python3
"""A complete agentd client in plain Python (no agentd code involved).

Usage: python3 agentd_client.py [SOCKET] [COMMAND]

Submits COMMAND (default: a short shell line), waits for it to finish,
reads its output, then drains the session's notifications. The socket
defaults to $AGENTD_SOCKET, else $XDG_RUNTIME_DIR/agentd/agentd.sock.
"""
import itertools
import json
import os
import socket
import sys


class AgentdClient:
    """One JSON-RPC 2.0 request per line over the Unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.ids = itertools.count(1)

    def call(self, method, **params):
        request_id = next(self.ids)
        line = json.dumps({"jsonrpc": "2.0", "id": request_id,
                           "method": method, "params": params})
        self.file.write(line.encode() + b"\n")
        self.file.flush()
        reply = json.loads(self.file.readline())
        assert reply["id"] == request_id, reply
        if "error" in reply:
            err = reply["error"]
            raise RuntimeError(f"{method}: {err['message']} (code {err['code']})")
        return reply["result"]


def default_socket():
    if os.environ.get("AGENTD_SOCKET"):
        return os.environ["AGENTD_SOCKET"]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "agentd", "agentd.sock")
    return f"/tmp/agentd-{os.getuid()}/agentd.sock"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else default_socket()
    command = sys.argv[2] if len(sys.argv) > 2 else "echo hello from python; exit 2"
    client = AgentdClient(path)
    job = client.call("job.submit", command=command, cwd=os.getcwd(),
                      session="python-example")
    print(f"submitted {job['short_id']}: {job['state']}")
    job = client.call("job.wait", id=job["id"])
    print(f"finished: {job['state']} exit={job['exit_code']}")
    out = client.call("job.output", id=job["id"])
    print(f"output ({out['total_bytes']} bytes): {out['data']!r}")
    notes = client.call("notifications.drain", session="python-example")
    for n in notes["notifications"]:
        print(f"notification seq={n['seq']} [bg:{n['short_id']}] {n['state']} "
              f"(exit {n['exit_code']}): {n['command']}")


if __name__ == "__main__":
    main()
