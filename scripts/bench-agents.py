#!/usr/bin/env python3
"""A Direct run to N agent processes beside the same run to N simulated nodes.

Each side gets its own server (test profile, in-memory store): one with N
simulated nodes in Development, one with none and N `hotswap agent`
processes on loopback. The same unsigned module, with hooks that append a
line to a file, is deployed to Development ROUNDS times (a new version each
time); the run's own duration (its `duration` field) is compared. The cost
of the hooks themselves is measured on its own: the four hook runs a node
makes in a run (deactivate, activate and health while loading, health again
when the validation step checks it) as `sh -c`, one after another.

    PROFILE=debug scripts/bench-agents.py          # NODES=50 ROUNDS=5 by default

HOTSWAP_BIN names another binary (such as one built in a separate target
directory). PHASES=1 has every agent log how long each phase of each
command took (`hotswap::agent::phases`) and prints the median per phase
over the measured runs. The work directory is made under TMPDIR (set it to
a tmpfs such as /dev/shm to see what the disk's fsyncs cost). HOOKS=none
deploys a module without hooks: what is left is the agent's own work
(download, checks, durable writes, the session's round trips).

It also prints the CPU each measured run cost, from /proc: the server's,
the agents' own and their hooks' (the agents' waited-for children). On a
filesystem without a journal, ext4 scans recently deleted inodes on every
file it creates, which the agents' atomic writes pay for; TMPDIR on a
journaled filesystem shows the agent as a usual host would run it.
"""

import base64
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

NODES = int(os.environ.get("NODES", "50"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
PROFILE = os.environ.get("PROFILE", "release")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HOTSWAP_BIN") or os.path.join(ROOT, "target", PROFILE, "hotswap")
PHASES = os.environ.get("PHASES") == "1"
HOOKS = {} if os.environ.get("HOOKS") == "none" else {
    "activate": 'echo "activate $HOTSWAP_VERSION" >> "$HOTSWAP_ARTIFACT.log"',
    "deactivate": 'echo "deactivate $HOTSWAP_VERSION" >> "$HOTSWAP_ARTIFACT.log"',
    "health": "echo '{\"errorRate\": 0}'",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, work, simulated):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({
            "HOTSWAP_ENV": "test",
            "HOTSWAP_CONFIG_DIR": os.path.join(ROOT, "config"),
            "HOTSWAP__SERVER__BIND": f"127.0.0.1:{self.port}",
            "HOTSWAP__LOGGING__LEVEL": "warn",
            "HOTSWAP__SIMULATION__NODES__DEVELOPMENT": str(simulated),
            "HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT": "120s",
            "HOTSWAP__AGENT__COMMAND_TIMEOUT": "120s",
            "HOTSWAP__AGENT__HEARTBEAT_INTERVAL": "1s",
            "HOTSWAP__AGENT__HEARTBEAT_TIMEOUT": "30s",
            "HOTSWAP__RATE_LIMIT__ENABLED": "false",
            "HOTSWAP__REGISTRY__ARTIFACT_DIR": os.path.join(work, "artifacts"),
        })
        log = open(os.path.join(work, "server.log"), "ab")
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.token = None
        until(60, "the server is ready", lambda: self.ready())
        self.token = self.call("POST", "/api/v1/authentication/login",
                               {"username": "admin", "password": "Admin123!"})["token"]

    def ready(self):
        try:
            with urllib.request.urlopen(self.base + "/health/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def until(limit, what, check):
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting: {what}")
        time.sleep(0.1)


def start_agents(server, work, count):
    token = server.call("POST", "/api/v1/agents/tokens", {"environment": "Development", "expiresIn": 3600})["token"]
    procs = []
    for i in range(count):
        home = os.path.join(work, f"agent-{i:02}")
        os.makedirs(home)
        config = os.path.join(home, "agent.toml")
        with open(config, "w") as f:
            f.write('host_metrics = false\nrequire_signatures = false\nhook_timeout = "60s"\n')
        log = open(os.path.join(home, "agent.log"), "ab")
        procs.append(subprocess.Popen(
            [BIN, "agent", "--server", server.base, "--token", token, "--hostname", f"bench-agent-{i:02}",
             "--data-dir", os.path.join(home, "data"), "--config", config],
            env=dict(os.environ, RUST_LOG="warn,hotswap::agent::phases=info" if PHASES else "warn"), stdout=log, stderr=log, stdin=subprocess.DEVNULL))

    def joined():
        nodes = server.call("GET", "/api/v1/clusters/Development?pageSize=500").get("nodes", [])
        return sum(1 for n in nodes if n.get("kind") == "agent" and n.get("isHealthy")) == count
    until(300, f"{count} agents join", joined)
    return procs


def publish(server, version):
    artifact = f"bench module {version}".encode() * 64
    body = {
        "descriptor": {"name": "kmod-bench", "version": version, "hooks": HOOKS},
        "artifact": base64.b64encode(artifact).decode(),
    }
    server.call("POST", "/api/v1/modules", body)


def seconds(duration):
    """The run's `duration`, "HH:MM:SS.fffffff"."""
    h, m, s = duration.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """A process's own CPU time and that of its waited-for children (the
    hooks, for an agent), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / TICK, (cutime + cstime) / TICK


def cpu_of(server, agents):
    """CPU seconds so far: the server's, the agents' own, their hooks'."""
    own = [cpu_seconds(a.pid) for a in agents]
    return cpu_seconds(server.proc.pid)[0], sum(o for o, _ in own), sum(c for _, c in own)


def measure(server, agents):
    """The median run duration, and the CPU per run (see cpu_of)."""
    times = []
    before = None
    for r in range(ROUNDS + 1):  # the first is a warm-up
        version = f"1.0.{r}"
        publish(server, version)
        run = server.call("POST", "/api/v1/deployments", {
            "moduleName": "kmod-bench", "version": version, "targetEnvironment": "Development",
            "requesterEmail": "bench@example.com"})
        path = f"/api/v1/deployments/{run['executionId']}"
        until(600, "the run ends", lambda: server.call("GET", path)["status"] not in ("Running", "PendingApproval"))
        done = server.call("GET", path)
        if done["status"] != "Succeeded":
            sys.exit(f"run {version} ended {done['status']}: {done.get('message')}")
        if r > 0:
            times.append(seconds(done["duration"]))
        if r == 0:
            before = cpu_of(server, agents)
    after = cpu_of(server, agents)
    # CPU per measured run (between runs the heartbeats cost a little too).
    cpu = tuple((b - a) / ROUNDS for a, b in zip(before, after))
    return statistics.median(times), cpu


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def phase_times(work, count):
    """Median milliseconds of each phase of the agents' loads in the measured
    runs (each agent's last ROUNDS loads), of a whole load, and of the
    validation's verify command (its health hook)."""
    per_phase = {}
    for i in range(count):
        with open(os.path.join(work, f"agent-{i:02}", "agent.log"), errors="replace") as f:
            lines = [ANSI.sub("", line) for line in f]
        loads = [line for line in lines if "command timed" in line and 'command="load"' in line]
        for line in loads[-ROUNDS:]:
            total = re.search(r"total_ms=([0-9.]+)", line)
            per_phase.setdefault("(whole load)", []).append(float(total.group(1)))
            phases = line.split("phases=", 1)[1].split()
            for phase in phases:
                name, ms = phase.rsplit("=", 1)
                per_phase.setdefault(name, []).append(float(ms))
        verifies = [line for line in lines if "command timed" in line and 'command="verify"' in line]
        for line in verifies[-ROUNDS:]:
            total = re.search(r"total_ms=([0-9.]+)", line)
            per_phase.setdefault("(whole verify)", []).append(float(total.group(1)))
    return {name: statistics.median(ms) for name, ms in per_phase.items()}


def hook_time(work):
    """One node's hook runs in a run, one after another, median of 20: the
    load's deactivate, activate and health, and the validation step's health
    check, which runs the health hook again."""
    if not HOOKS:
        return 0.0
    env = dict(os.environ, HOTSWAP_VERSION="1.0.0", HOTSWAP_ARTIFACT=os.path.join(work, "artifact"))
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        for hook in ("deactivate", "activate", "health", "health"):
            subprocess.run(["sh", "-c", HOOKS[hook]], env=env, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: cargo build {'--release ' if PROFILE == 'release' else ''}--bin hotswap")
    work = tempfile.mkdtemp(prefix="hotswap-bench-agents-")
    results = {}
    try:
        for side in ("simulated", "agents"):
            home = os.path.join(work, side)
            os.makedirs(home)
            server = Server(home, NODES if side == "simulated" else 0)
            agents = []
            try:
                if side == "agents":
                    agents = start_agents(server, home, NODES)
                results[side], results[side + " cpu"] = measure(server, agents)
                if side == "agents" and PHASES:
                    results["phases"] = phase_times(home, NODES)
            finally:
                for a in agents:
                    a.kill()
                    a.wait()
                server.stop()
        hooks = hook_time(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sim, real = results["simulated"], results["agents"]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average: {load}; binary {BIN}; {NODES} nodes; median of {ROUNDS} runs; work dir under {tempfile.gettempdir()}")
    print(f"simulated run : {sim * 1000:8.1f} ms")
    print(f"agent run     : {real * 1000:8.1f} ms  ({real / sim:.2f}x the simulated run)")
    print(f"hooks, 1 node : {hooks * 1000:8.1f} ms  (deactivate + activate + health + validation's health, in sequence)")
    print(f"agent run / (simulated run + hooks): {real / (sim + hooks):.2f}x")
    # On one machine the N nodes' hooks share its cores; on N hosts they would not.
    cores = os.cpu_count() or 1
    shared = NODES * hooks / cores
    print(f"hooks of all {NODES} nodes on {cores} cores: {shared * 1000:.1f} ms; "
          f"agent run / (simulated run + that): {real / (sim + shared):.2f}x")
    print(f"overhead per agent node: {(real - sim) / NODES * 1000:.2f} ms")
    for side in ("simulated", "agents"):
        srv, own, hooks_cpu = results[side + " cpu"]
        print(f"CPU per run, {side:9}: server {srv * 1000:7.1f} ms, agents {own * 1000:7.1f} ms, "
              f"hooks {hooks_cpu * 1000:7.1f} ms (all {NODES} nodes; from /proc, {1000 / TICK:.0f} ms ticks)")
    for name, ms in results.get("phases", {}).items():
        print(f"  phase {name:14}: {ms:8.2f} ms (median over every agent's measured loads)")


if __name__ == "__main__":
    main()
