#!/usr/bin/env python3
"""Direct runs to many simulated nodes through the real server (issue 13).

`hotswap serve` with the development profile and the in-memory store, NODES
simulated nodes in Development, then RUNS Direct runs of one module to
Development through the API, one after another, each with a new version.
Prints each run's own duration (its `duration` field) and the server's
resident memory one second after the run ended. Unlike the fan-out bench
(`cargo bench --bench deployment_fanout`, the core alone), this includes
what the server adds to every run: HTTP, the knowledge graph, tracing.

    HOTSWAP_BIN=<release binary> NODES=100000 RUNS=6 scripts/bench-server-runs.py
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

NODES = int(os.environ.get("NODES", "10000"))
RUNS = int(os.environ.get("RUNS", "6"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HOTSWAP_BIN") or os.path.join(ROOT, "target", "release", "hotswap")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"null")


def until(limit, what, check):
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting: {what}")
        time.sleep(0.05)


def ready(base):
    try:
        with urllib.request.urlopen(base + "/health/ready", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def resident_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def seconds(duration):
    """A run's `duration`, "HH:MM:SS.fffffff"."""
    hours, minutes, rest = duration.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def main():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({
        "HOTSWAP_ENV": "development",
        "HOTSWAP_CONFIG_DIR": os.path.join(ROOT, "config"),
        "HOTSWAP__SERVER__BIND": f"127.0.0.1:{port}",
        "HOTSWAP__LOGGING__LEVEL": "warn",
        "HOTSWAP__RATE_LIMIT__ENABLED": "false",
        "HOTSWAP__SIMULATION__NODES__DEVELOPMENT": str(NODES),
    })
    server = subprocess.Popen([BIN, "serve"], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(300, "the server is ready", lambda: ready(base))
        token = call(base, "POST", "/api/v1/authentication/login",
                     body={"username": "admin", "password": "Admin123!"})["token"]
        print(f"{NODES} development nodes, {RUNS} runs; resident after start {resident_mb(server.pid):.0f} MB")
        for number in range(1, RUNS + 1):
            version = f"1.0.{number}"
            run = call(base, "POST", "/api/v1/deployments", token, {
                "moduleName": "kmod-fanout", "version": version, "targetEnvironment": "Development",
                "requesterEmail": "bench@example.com"})
            path = f"/api/v1/deployments/{run['executionId']}"
            until(600, "the run ends",
                  lambda: call(base, "GET", path, token)["status"] not in ("Running", "PendingApproval"))
            done = call(base, "GET", path, token)
            time.sleep(1)
            print(f"run {number}: {done['status']} in {seconds(done['duration']):.3f} s; "
                  f"resident {resident_mb(server.pid):.0f} MB")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
