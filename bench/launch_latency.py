#!/usr/bin/python3
"""launch_latency.py - the launch-latency benchmark behind `make bench` (run by bench/run.sh).

Measures, in one run on one machine:
  1. the floor: plain fork+exec of the task command, and the same command in new PID, mount,
     UTS and IPC namespaces with its own cgroup (bench/floor.c), N times each;
  2. Pacer: POST /v2/apps of a new one-instance app -> the status_update_event with
     TASK_RUNNING for that app read from /v2/events, N times (each app deleted afterwards);
  3. pacer-agent VmRSS idle and with 100 tasks running, and pacer-master VmRSS.
Prints a table (and writes it as markdown and JSON into <build>/bench/), then removes every
process, cgroup, BPF pin and directory it made. Stdlib only.
"""
import argparse
import errno
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CG_ROOT = "/sys/fs/cgroup"
BPFFS = "/sys/fs/bpf"
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
            "TASK_DROPPED", "TASK_GONE", "TASK_UNREACHABLE", "TASK_GONE_BY_OPERATOR"}


class BenchError(Exception):
    pass


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def percentile(samples, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(samples)
    k = max(0, math.ceil(p / 100.0 * len(s)) - 1)
    return s[k]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vmrss_kib(pid, field="VmRSS"):
    """A size in KiB from /proc/<pid>/status: VmRSS, or RssAnon (the process's own pages,
    without the shared libraries' resident text)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def wait_for(cond, timeout, what, interval=0.02):
    """Polls cond() until it returns a true value; raises BenchError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# The floor (bench/floor.c)

def run_floor(floor_bin, mode, n, argv, out_dir, pause_ms=0):
    out = os.path.join(out_dir, f"floor-{mode}-{pause_ms}.txt")
    r = subprocess.run([floor_bin, "-p", str(pause_ms), mode, str(n), out] + argv,
                       stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=300)
    if r.returncode != 0:
        raise BenchError(f"floor {mode} failed: {r.stderr.strip()}")
    with open(out) as f:
        samples = [int(x) / 1e6 for x in f.read().split()]
    if len(samples) != n:
        raise BenchError(f"floor {mode}: {len(samples)} samples, expected {n}")
    note = r.stdout.strip()
    if note:
        log(note)
    return samples


# ---------------------------------------------------------------------------------------
# The master's API and event stream

class Api:
    """One keep-alive connection to the master; reconnects once if the server closed it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if resp.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, raw.decode(errors="replace")

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


class EventStream(threading.Thread):
    """Reads /v2/events. For every app: when TASK_RUNNING was first read, and the last
    state of each of its tasks. The time is taken as soon as the event's data line is read."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.cond = threading.Condition()
        self.first_running = {}      # appId -> perf_counter of its first TASK_RUNNING
        self.first_seen = {}         # (appId, state) -> perf_counter it was first read
        self.tasks = {}              # appId -> {taskId: state}
        self.error = None
        self.connected = False
        self.conn = self.sock = None

    def run(self):
        try:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=None)
            self.conn.connect()
            self.sock = self.conn.sock   # http.client may drop its own reference later
            self.conn.request("GET", "/v2/events", headers={"Accept": "text/event-stream"})
            resp = self.conn.getresponse()
            if resp.status != 200:
                raise BenchError(f"GET /v2/events answered {resp.status}")
            with self.cond:
                self.connected = True
                self.cond.notify_all()
            event = None
            while True:
                line = resp.readline()
                if not line:
                    raise BenchError("the event stream ended")
                now = time.perf_counter()
                line = line.rstrip(b"\r\n")
                if line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    self._on_data(event, line[5:].strip(), now)
                elif not line:
                    event = None
        except Exception as e:       # reported to the waiting main thread
            with self.cond:
                self.error = e if isinstance(e, BenchError) else BenchError(f"event stream: {e!r}")
                self.cond.notify_all()

    def _on_data(self, event, data, now):
        try:
            ev = json.loads(data)
        except ValueError:
            return
        if not isinstance(ev, dict):
            return
        if (event or ev.get("eventType")) != "status_update_event":
            return
        app, task, state = ev.get("appId"), ev.get("taskId"), ev.get("taskStatus")
        if not app or not task or not state:
            return
        with self.cond:
            if state == "TASK_RUNNING" and app not in self.first_running:
                self.first_running[app] = now
            self.first_seen.setdefault((app, state), now)
            self.tasks.setdefault(app, {})[task] = state
            self.cond.notify_all()

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.error:
                    raise self.error
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
                self.cond.wait(left)

    def wait_connected(self, timeout):
        self.wait(lambda: self.connected, timeout, "the event stream")

    def wait_running(self, app, timeout):
        return self.wait(lambda: self.first_running.get(app), timeout, f"TASK_RUNNING of {app}")

    def count_running(self, app):
        return sum(1 for s in self.tasks.get(app, {}).values() if s == "TASK_RUNNING")

    def all_terminal(self, app):
        t = self.tasks.get(app, {})
        return all(s in TERMINAL for s in t.values())

    def close(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------
# A master and one agent on loopback, and everything needed to remove them again

def help_text(binary):
    try:
        r = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=10)
        return r.stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


class Cluster:
    def __init__(self, build, alloc_interval, keep):
        self.build = build
        self.alloc_interval = alloc_interval
        self.keep = keep
        self.tmp = tempfile.mkdtemp(prefix="pacer-bench-")
        self.master = self.agent = None
        self.master_port = self.agent_port = None
        self.agent_id = None
        self.apps = set()            # apps we created that may still exist
        self.post_times = {}         # appId -> perf_counter just before its POST

    def _spawn(self, name, argv):
        logf = open(os.path.join(self.tmp, f"{name}.log"), "wb")
        log(f"starting {' '.join(argv)}")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             start_new_session=True)
        logf.close()
        return p

    def _check_alive(self, proc, name):
        if proc.poll() is not None:
            tail = self.log_tail(name)
            raise BenchError(f"{name} exited with status {proc.returncode}; log tail:\n{tail}")

    def log_tail(self, name, lines=15):
        try:
            with open(os.path.join(self.tmp, f"{name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def start(self):
        master_bin = os.path.join(self.build, "pacer-master")
        agent_bin = os.path.join(self.build, "pacer-agent")
        for b in (master_bin, agent_bin):
            if not os.access(b, os.X_OK):
                raise BenchError(f"{b} is missing: build first (make bench does)")
        self.master_port = free_port()
        argv = [master_bin, "--port", str(self.master_port),
                "--work-dir", os.path.join(self.tmp, "master"),
                "--allocation-interval", str(self.alloc_interval)]
        if "--bind" in help_text(master_bin):
            argv += ["--bind", "127.0.0.1"]
        self.master = self._spawn("master", argv)
        api = Api(self.master_port)

        def ping():
            self._check_alive(self.master, "master")
            try:
                return api.request("GET", "/ping", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(ping, 15, "pacer-master /ping")
        api.close()

        self.agent_port = free_port()
        ahelp = help_text(agent_bin)
        argv = [agent_bin, "--master", f"http://127.0.0.1:{self.master_port}",
                "--work-dir", os.path.join(self.tmp, "agent"),
                "--port", str(self.agent_port), "--ip", "127.0.0.1",
                # room for 100 tasks of 0.1 cpus / 32 MiB (sleeping tasks; nothing is burnt)
                "--resources", "cpus:16;mem:8192;disk:10000;ports:[31000-31999]"]
        executor_bin = os.path.join(self.build, "pacer-executor")
        m = re.search(r"--(executor[\w-]*)", ahelp)
        if m and os.access(executor_bin, os.X_OK):
            argv += [f"--{m.group(1)}", executor_bin]
        self.agent = self._spawn("agent", argv)
        id_file = os.path.join(self.tmp, "agent", "agent_id")

        def agent_id():
            self._check_alive(self.agent, "agent")
            try:
                with open(id_file) as f:
                    return f.read().strip()
            except OSError:
                return None
        self.agent_id = wait_for(agent_id, 15, f"{id_file}")
        log(f"master on 127.0.0.1:{self.master_port}, agent {self.agent_id} on "
            f"127.0.0.1:{self.agent_port}, work dirs in {self.tmp}")

    def executors(self):
        """pids of this run's pacer-executor processes (found by binary and work dir)."""
        exe = os.path.realpath(os.path.join(self.build, "pacer-executor"))
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{d}/exe") != exe:
                    continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
                cwd = os.readlink(f"/proc/{d}/cwd")
            except OSError:
                continue
            if self.tmp.encode() in cmd or cwd.startswith(self.tmp):
                pids.append(int(d))
        return pids

    # -- teardown ------------------------------------------------------------------------

    def stop(self):
        """Deletes our apps, stops the daemons, then removes whatever is left on the host."""
        if self.master and self.master.poll() is None and self.apps:
            api = Api(self.master_port)
            for app in sorted(self.apps):
                try:
                    api.request("DELETE", f"/v2/apps{app}?force=true", timeout=5)
                except OSError:
                    pass
            api.close()
            cgs = self._task_cgroups()
            try:
                wait_for(lambda: not any(self._cgroup_pids(c) for c in cgs), 15,
                         "the tasks of deleted apps to end")
            except BenchError as e:
                log(f"warning: {e}")
        for name in ("agent", "master"):
            p = getattr(self, name)
            if p is None or p.poll() is not None:
                continue
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                log(f"warning: {name} ignored SIGTERM for 20 s; killing it")
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            if time.monotonic() - t0 > 2:
                log(f"note: {name} took {time.monotonic() - t0:.1f} s to stop after SIGTERM")
        self._sweep()

    def _task_cgroups(self):
        """Every cgroup dir named pacer/<agent-id> in any hierarchy, deepest first."""
        if not self.agent_id:
            return []
        roots = [CG_ROOT] + [os.path.join(CG_ROOT, d) for d in sorted(os.listdir(CG_ROOT))]
        out = []
        for r in roots:
            top = os.path.join(r, "pacer", self.agent_id)
            if not os.path.isdir(top):
                continue
            for dirpath, _, _ in os.walk(top, topdown=False):
                out.append(dirpath)
        return out

    @staticmethod
    def _cgroup_pids(cg):
        try:
            with open(os.path.join(cg, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def _sweep(self):
        leftovers = []
        for pid in self.executors():
            leftovers.append(f"executor {pid}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cgs = self._task_cgroups()
        for cg in cgs:
            for pid in self._cgroup_pids(cg):
                leftovers.append(f"pid {pid} in {cg}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            wait_for(lambda: not any(self._cgroup_pids(c) for c in cgs), 10,
                     "killed task processes to leave their cgroups")
        except BenchError as e:
            log(f"warning: {e}")
        for cg in cgs:
            try:
                os.rmdir(cg)
            except FileNotFoundError:
                pass
            except OSError as e:
                log(f"warning: cannot remove cgroup {cg}: {e.strerror}")
        if self.agent_id:
            pins = os.path.join(BPFFS, "pacer", self.agent_id)
            if os.path.isdir(pins):
                shutil.rmtree(pins, ignore_errors=True)
                if os.path.exists(pins):
                    log(f"warning: could not remove {pins}")
        # The shared pacer/ parents go too once no other agent uses them (rmdir of a
        # non-empty dir fails, which is what should happen then).
        parents = [os.path.join(BPFFS, "pacer")]
        parents += [os.path.join(CG_ROOT, d, "pacer") for d in sorted(os.listdir(CG_ROOT))]
        parents.append(os.path.join(CG_ROOT, "pacer"))
        for parent in parents:
            try:
                os.rmdir(parent)
            except OSError:
                pass
        if leftovers:
            log(f"removed what the agent left behind: {', '.join(leftovers[:10])}"
                + (" ..." if len(leftovers) > 10 else ""))
        self._unmount_under(self.tmp)
        if self.keep:
            log(f"kept work dirs and logs in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @staticmethod
    def _unmount_under(path):
        try:
            with open("/proc/self/mountinfo") as f:
                mounts = [l.split()[4] for l in f]
        except OSError:
            return
        for mp in sorted((m for m in mounts if m.startswith(path + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------
# The measurements against the cluster

def app_body(app_id, cmd, instances=1):
    return {"id": app_id, "cmd": cmd, "cpus": 0.1, "mem": 32, "disk": 0,
            "instances": instances, "portDefinitions": []}


def launch_once(api, events, cluster, app_id, cmd, timeout):
    """POST a one-instance app; returns ms from just before the POST to TASK_RUNNING read."""
    body = app_body(app_id, cmd)
    t0 = time.perf_counter()
    status, resp = api.request("POST", "/v2/apps", body)
    t_resp = time.perf_counter()
    if status != 201:
        raise BenchError(f"POST /v2/apps {app_id} answered {status}: {resp}")
    cluster.apps.add(app_id)
    t1 = events.wait_running(app_id, timeout)
    cluster.post_times[app_id] = t0
    with events.cond:
        events.first_seen[(app_id, "POST answered")] = t_resp
    return (t1 - t0) * 1000.0


def delete_app(api, events, cluster, app_id, timeout):
    status, resp = api.request("DELETE", f"/v2/apps{app_id}?force=true")
    if status not in (200, 202):
        raise BenchError(f"DELETE /v2/apps{app_id} answered {status}: {resp}")
    events.wait(lambda: events.all_terminal(app_id), timeout, f"the tasks of {app_id} to end")
    cluster.apps.discard(app_id)


def measure_pacer(args, cluster, events, api, run_id):
    samples = []
    for i in range(args.warmup):
        app = f"/bench/{run_id}-warm{i}"
        ms = launch_once(api, events, cluster, app, args.cmd, 60 if i == 0 else args.timeout)
        log(f"warm-up launch {i}: {ms:.2f} ms")
        delete_app(api, events, cluster, app, args.timeout)
    rss = {"agent_idle_kib": vmrss_kib(cluster.agent.pid),
           "agent_idle_anon_kib": vmrss_kib(cluster.agent.pid, "RssAnon"),
           "master_idle_kib": vmrss_kib(cluster.master.pid)}
    for i in range(args.n):
        app = f"/bench/{run_id}-{i:03d}"
        samples.append(launch_once(api, events, cluster, app, args.cmd, args.timeout))
        delete_app(api, events, cluster, app, args.timeout)
        if args.gap_ms > 0:
            time.sleep(args.gap_ms / 1000.0)      # idle time between launches, not timed
        if (i + 1) % 50 == 0:
            log(f"{i + 1}/{args.n} launches, p50 so far {percentile(samples, 50):.2f} ms")
    rss["agent_idle_after_kib"] = vmrss_kib(cluster.agent.pid)
    rss["phases"] = phases(events, cluster, [f"/bench/{run_id}-{i:03d}" for i in range(args.n)])
    return samples, rss


def phases(events, cluster, apps):
    """Median ms from the POST to its answer and to the first STAGING, STARTING and RUNNING
    events read."""
    out = {}
    for state in ("POST answered", "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
        d = [(events.first_seen[(a, state)] - cluster.post_times[a]) * 1000.0
             for a in apps if (a, state) in events.first_seen and a in cluster.post_times]
        if d:
            out[state] = (len(d), percentile(d, 50))
    return out


def measure_rss_under_load(args, cluster, events, api, run_id, rss):
    app = f"/bench/{run_id}-many"
    t0 = time.perf_counter()
    status, resp = api.request("POST", "/v2/apps", app_body(app, args.cmd, args.tasks))
    if status != 201:
        raise BenchError(f"POST /v2/apps {app} ({args.tasks} instances) answered {status}: {resp}")
    cluster.apps.add(app)
    events.wait(lambda: events.count_running(app) >= args.tasks, args.tasks * 2 + 30,
                f"{args.tasks} tasks of {app} to run")
    rss["tasks_running_s"] = time.perf_counter() - t0
    rss["agent_tasks_kib"] = vmrss_kib(cluster.agent.pid)
    rss["agent_tasks_anon_kib"] = vmrss_kib(cluster.agent.pid, "RssAnon")
    rss["master_tasks_kib"] = vmrss_kib(cluster.master.pid)
    ex = cluster.executors()
    sizes = [s for s in (vmrss_kib(p) for p in ex) if s is not None]
    rss["executor_procs"] = len(sizes)
    rss["executor_per_task_kib"] = sum(sizes) / args.tasks if sizes else None
    delete_app(api, events, cluster, app, args.tasks + 30)
    rss["agent_after_tasks_kib"] = vmrss_kib(cluster.agent.pid)


# ---------------------------------------------------------------------------------------
# Report

def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def cgroup2_options():
    """Mount options of the cgroup2 mounts (favordynmods changes what a cgroup move costs)."""
    try:
        with open("/proc/self/mountinfo") as f:
            return sorted({l.split()[4] + " " + l.split()[5] for l in f
                           if " - cgroup2 " in l})
    except OSError:
        return []


def favordynmods_sticky():
    """True if the kernel log says favordynmods was on and could not be turned off again:
    since Linux 6.18 a cgroup move then takes a per-threadgroup lock for good (no RCU
    grace period), until the next boot, whatever the mount options say now."""
    try:
        r = subprocess.run(["dmesg"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "per threadgroup rwsem mechanism can't be disabled" in r.stdout


def grace_period_note(ns_spaced):
    """What the spaced floor says about cgroup moves on this boot. The kernel log line that
    favordynmods_sticky() looks for can be gone from the ring buffer, so measure: a spaced
    move that waits for an RCU grace period takes ~10 ms, one that does not well under 5."""
    if not ns_spaced:
        return ""
    p50 = percentile(ns_spaced, 50)
    if p50 < 5:
        return (f"; spaced floor p50 {p50:.1f} ms: cgroup moves do NOT wait for an RCU grace "
                "period on this boot (favordynmods on, now or earlier)")
    return (f"; spaced floor p50 {p50:.1f} ms: cgroup moves wait for an RCU grace period "
            "(default kernel behaviour)")


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def report(args, fork, ns, ns_spaced, pacer, rss, out_dir):
    f50 = percentile(fork, 50)
    n50 = percentile(ns, 50)
    rows = [("fork+exec", fork), ("ns+cgroup (C floor)", ns)]
    if ns_spaced:
        rows.append((f"ns+cgroup, {args.floor_pause_ms} ms apart", ns_spaced))
    if pacer:
        rows.append(("pacer POST->RUNNING", pacer))
    lines = [f"{'case':<24} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
             f"{'x fork(p50)':>11} {'x ns(p50)':>9}"]
    md = ["| case | n | p50 ms | p99 ms | max ms | x fork+exec (p50) | x ns+cgroup (p50) |",
          "|---|---|---|---|---|---|---|"]
    for name, s in rows:
        p50, p99 = percentile(s, 50), percentile(s, 99)
        lines.append(f"{name:<24} {len(s):>4} {p50:>8.3f} {p99:>8.3f} {max(s):>8.3f} "
                     f"{p50 / f50:>11.1f} {p50 / n50:>9.1f}")
        md.append(f"| {name} | {len(s)} | {p50:.3f} | {p99:.3f} | {max(s):.3f} | "
                  f"{p50 / f50:.1f} | {p50 / n50:.1f} |")
    verdicts = []
    if pacer:
        p50, p99 = percentile(pacer, 50), percentile(pacer, 99)
        verdicts.append(f"p50 {p50:.2f} ms vs target 10 ms: {'ok' if p50 <= 10 else 'MISSED'}")
        verdicts.append(f"p99 {p99:.2f} ms vs target 50 ms: {'ok' if p99 <= 50 else 'MISSED'}")
    if rss:
        mem = [("agent RSS idle (after warm-up)", rss.get("agent_idle_kib")),
               ("  of which RssAnon (own memory)", rss.get("agent_idle_anon_kib")),
               ("agent RSS idle (after the launches)", rss.get("agent_idle_after_kib")),
               (f"agent RSS, {args.tasks} tasks running", rss.get("agent_tasks_kib")),
               ("  of which RssAnon (own memory)", rss.get("agent_tasks_anon_kib")),
               (f"agent RSS after the {args.tasks} ended", rss.get("agent_after_tasks_kib")),
               ("master RSS idle", rss.get("master_idle_kib")),
               (f"master RSS, {args.tasks} tasks running", rss.get("master_tasks_kib")),
               (f"pacer-executor RSS per task ({rss.get('executor_procs', 0)} procs)",
                rss.get("executor_per_task_kib"))]
        lines.append("")
        md += ["", "| memory | VmRSS |", "|---|---|"]
        for name, kib in mem:
            if kib is not None or (name.startswith("agent RSS, ") and args.tasks > 0):
                lines.append(f"{name:<40} {mib(kib)}")
                md.append(f"| {name} | {mib(kib)} |")
        ph = rss.get("phases") or {}
        if ph:
            txt = ", ".join(f"{st.replace('TASK_', '')} {v[1]:.2f} ms"
                            + (f" (n={v[0]})" if v[0] != args.n else "")
                            for st, v in ph.items())
            lines.append(f"median from POST to: {txt}")
            md.append(f"| median from POST to | {txt} |")
        if "tasks_running_s" in rss:
            lines.append(f"{args.tasks} instances POST -> all RUNNING      "
                         f"{rss['tasks_running_s']:.2f} s")
            md.append(f"| {args.tasks} instances: POST -> all RUNNING | "
                      f"{rss['tasks_running_s']:.2f} s |")
        a = rss.get("agent_tasks_kib")
        if a is not None:
            verdicts.append(f"agent RSS with {args.tasks} tasks {mib(a)} vs target 10 MiB: "
                            f"{'ok' if a <= 10240 else 'MISSED'}")
    notes = (f"command: {args.cmd!r} (floor: /bin/sh -c {args.cmd!r}); "
             f"allocation interval {args.alloc_interval:g} s; warm-up launches {args.warmup} "
             f"(not counted); {args.gap_ms:g} ms idle between launches; "
             f"app: 0.1 cpus, 32 MiB, no ports; cgroup2 mounts: "
             f"{'; '.join(cgroup2_options()) or 'none'}"
             + ("; NOTE favordynmods was enabled earlier since boot (per-threadgroup rwsem "
                "stays on: cgroup moves skip the RCU grace period)" if favordynmods_sticky()
                else "")
             + grace_period_note(ns_spaced)
             + f"; load average at the end {load_average()} (other work on the machine "
               "inflates the tails)")
    text = "\n".join(lines + [""] + verdicts + [notes])
    print(text, flush=True)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(md + [""] + [f"- {v}" for v in verdicts] + [f"- {notes}", ""]))
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"fork_ms": fork, "ns_ms": ns, "ns_spaced_ms": ns_spaced,
                   "floor_pause_ms": args.floor_pause_ms, "pacer_ms": pacer, "rss": rss,
                   "alloc_interval_s": args.alloc_interval, "cmd": args.cmd}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="absolute build dir (binaries, bench/floor)")
    ap.add_argument("--n", type=int, default=200, help="launches per case")
    ap.add_argument("--tasks", type=int, default=100, help="tasks running for the RSS figure")
    ap.add_argument("--warmup", type=int, default=3, help="uncounted launches first")
    ap.add_argument("--alloc-interval", type=float, default=0.05,
                    help="master --allocation-interval seconds")
    ap.add_argument("--cmd", default="sleep 3600", help="the task command (a shell string)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds per launch")
    ap.add_argument("--gap-ms", type=float, default=0,
                    help="idle ms after one app's tasks ended before the next POST")
    ap.add_argument("--floor-pause-ms", type=int, default=50,
                    help="idle time between launches of the spaced floor case (0: skip it)")
    ap.add_argument("--floor-only", action="store_true", help="skip the cluster")
    ap.add_argument("--keep", action="store_true", help="keep work dirs and logs")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (namespaces, cgroups, BPF)")
    build = os.path.abspath(args.build)
    out_dir = os.path.join(build, "bench")
    os.makedirs(out_dir, exist_ok=True)
    floor_bin = os.path.join(out_dir, "floor")
    argv = ["/bin/sh", "-c", args.cmd]

    # SIGTERM/SIGHUP behave like Ctrl-C so that the teardown always runs.
    def on_signal(signum, _):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    log(f"floor: fork+exec x{args.n}")
    fork = run_floor(floor_bin, "fork", args.n, argv, out_dir)
    log(f"floor: namespaces + cgroup x{args.n}")
    ns = run_floor(floor_bin, "ns", args.n, argv, out_dir)
    ns_spaced = None
    if args.floor_pause_ms > 0:
        # Pacer's launches come one at a time, tens of ms apart; a cgroup move after an
        # idle spell can cost an RCU grace period that back-to-back launches never see.
        log(f"floor: namespaces + cgroup x{args.n}, {args.floor_pause_ms} ms apart")
        ns_spaced = run_floor(floor_bin, "ns", args.n, argv, out_dir, args.floor_pause_ms)
    if args.floor_only:
        report(args, fork, ns, ns_spaced, None, None, out_dir)
        return 0

    cluster = Cluster(build, args.alloc_interval, args.keep)
    events = api = None
    rc = 0
    try:
        cluster.start()
        events = EventStream(cluster.master_port)
        events.start()
        events.wait_connected(10)
        api = Api(cluster.master_port)
        run_id = f"r{os.getpid()}"
        pacer, rss = measure_pacer(args, cluster, events, api, run_id)
        if args.tasks > 0:
            measure_rss_under_load(args, cluster, events, api, run_id, rss)
        report(args, fork, ns, ns_spaced, pacer, rss, out_dir)
    except BenchError as e:
        log(f"FAILED: {e}")
        for name in ("master", "agent"):
            tail = cluster.log_tail(name)
            if tail:
                log(f"{name} log tail:\n{tail}")
        report(args, fork, ns, ns_spaced, None, None, out_dir)
        rc = 1
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        rc = 130
    finally:
        if api:
            api.close()
        if events:
            events.close()
        cluster.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main())
