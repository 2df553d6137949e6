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

TIMELINE=1 (implies PHASES=1) prints, for each measured run, how long its
deployment and validation stages took, how busy the machine's cores were
meanwhile (/proc/stat, sampled every 2 ms), and how long each stage went on
after the last agent had finished its command: a stage that waits with
idle cores is waiting on something other than work (this is how a reply
held back by Nagle's algorithm was found). The kernel counts CPU in ticks
(10 ms here), so a stage a few ticks long reads as 0 or 100 % busy.

It also prints the CPU each measured run cost, from /proc: the server's,
the agents' own and their hooks' (the agents' waited-for children). On a
filesystem without a journal, ext4 scans recently deleted inodes on every
file it creates, which the agents' atomic writes pay for; TMPDIR on a
journaled filesystem shows the agent as a usual host would run it.
"""

import base64
import bisect
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

NODES = int(os.environ.get("NODES", "50"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
PROFILE = os.environ.get("PROFILE", "release")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HOTSWAP_BIN") or os.path.join(ROOT, "target", PROFILE, "hotswap")
TIMELINE = os.environ.get("TIMELINE") == "1"
PHASES = os.environ.get("PHASES") == "1" or TIMELINE
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


class CoreSampler:
    """The machine's busy and total CPU ticks (/proc/stat), every 2 ms, with
    the wall-clock time of each sample, while `with` lasts."""

    def __init__(self):
        self.samples = []
        self.running = False

    def __enter__(self):
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.running = False
        self.thread.join()

    def sample(self):
        while self.running:
            with open("/proc/stat") as f:
                ticks = [int(x) for x in f.readline().split()[1:9]]
            idle = ticks[3] + ticks[4]
            self.samples.append((time.time(), sum(ticks) - idle, sum(ticks)))
            time.sleep(0.002)

    def busy(self, start, end):
        """How busy the cores were between two wall-clock times, as text: a
        percentage, or "n/a" when no tick fell between the samples taken."""
        times = [s[0] for s in self.samples]
        a = self.samples[min(bisect.bisect_left(times, start), len(times) - 1)]
        b = self.samples[min(bisect.bisect_left(times, end), len(times) - 1)]
        if b[2] == a[2]:
            return "n/a"
        return f"{(b[1] - a[1]) / (b[2] - a[2]) * 100:.0f} %"


def measure(server, agents, finished=None):
    """The median run duration, and the CPU per run (see cpu_of). Each
    measured run's record is appended to `finished` when given."""
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
            if finished is not None:
                finished.append(done)
        if r == 0:
            before = cpu_of(server, agents)
    after = cpu_of(server, agents)
    # CPU per measured run (between runs the heartbeats cost a little too).
    cpu = tuple((b - a) / ROUNDS for a, b in zip(before, after))
    return statistics.median(times), cpu


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def wall_clock(stamp):
    """Seconds since the epoch of an RFC 3339 UTC time with up to nanoseconds."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    start = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp()
    return start + float("0." + (fraction or "0"))


def agent_commands(work, count):
    """Every command the agents logged: (command, started, ended), wall clock."""
    commands = []
    for i in range(count):
        with open(os.path.join(work, f"agent-{i:02}", "agent.log"), errors="replace") as f:
            for line in f:
                line = ANSI.sub("", line)
                if "command timed" not in line:
                    continue
                ended = wall_clock(line.split()[0])
                total = float(re.search(r"total_ms=([0-9.]+)", line).group(1)) / 1000
                commands.append((re.search(r'command="(\w+)"', line).group(1), ended - total, ended))
    return commands


def timeline(runs, commands, cores):
    """Per run and stage: its length, how busy the cores were, and how long it
    went on after the last agent finished the stage's command."""
    lines = []
    for run in runs:
        stages = {s["name"]: s for s in run["stages"]}
        parts = []
        for stage, command in (("Deploy to Development", "load"), ("Validation", "verify")):
            start, end = wall_clock(stages[stage]["startTime"]), wall_clock(stages[stage]["endTime"])
            finished = [e for c, b, e in commands if c == command and start - 0.005 <= b <= end]
            tail = (end - max(finished)) * 1000 if finished else float("nan")
            parts.append(f"{stage.split()[0].lower()} {(end - start) * 1000:6.1f} ms, cores {cores.busy(start, end):>5} busy, "
                         f"{tail:5.1f} ms after the last agent's {command}")
        lines.append(f"  run {run['version']}: " + "; ".join(parts))
    return lines


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
                if side == "agents" and TIMELINE:
                    runs = []
                    with CoreSampler() as cores:
                        results[side], results[side + " cpu"] = measure(server, agents, runs)
                    results["timeline"] = timeline(runs, agent_commands(home, NODES), cores)
                else:
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
    for line in results.get("timeline", []):
        print(line)
    for name, ms in results.get("phases", {}).items():
        print(f"  phase {name:14}: {ms:8.2f} ms (median over every agent's measured loads)")


if __name__ == "__main__":
    main()
