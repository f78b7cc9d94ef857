"""cluster.py - a real Pacer cluster on one host for the cluster tests.

One bridge (pt<rand>) on the host holds 198.19.N.1/24; each agent runs in its own network
namespace (pacer-t<rand>-<i>) behind a veth, with address 198.19.N.(i+1). The master runs
on the host and binds the bridge address only, so every request the tests make stays on
this machine. Names are unique per run, so several runs (and `make run`) can coexist.

Everything the cluster makes is removed by Cluster.destroy(): processes (agents, their
executors and tasks, the master), namespaces, the bridge, cgroups pacer/<agent-id>, BPF pins
/sys/fs/bpf/pacer/<agent-id>, mounts under the work dir, and the temp dir.

Only the standard library is used (urllib/http.client), as the tests must run on a bare
Debian python3.
"""

import http.client
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_RESOURCES = "cpus:2;mem:4096;disk:20000;ports:[31000-32000]"
RACKS = "abcdefghij"


class WaitTimeout(AssertionError):
    pass


def wait_until(cond, timeout=30.0, interval=0.1, what=None):
    """Polls cond() until it returns something truthy; returns that value. Raises
    WaitTimeout naming `what` and the last value (or exception) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
            if last:
                return last
        except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
            last = e
        if time.monotonic() >= deadline:
            raise WaitTimeout("timed out after %.1fs waiting for %s (last: %r)"
                              % (timeout, what or getattr(cond, "__name__", "condition"),
                                 last))
        time.sleep(interval)


def holds_for(cond, seconds, interval=0.2, what=None):
    """Checks that cond() stays truthy for `seconds` (a stability check: the thing must
    NOT change); raises AssertionError at the first falsy value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = cond()
        if not v:
            raise AssertionError("%s stopped holding (value %r)"
                                 % (what or getattr(cond, "__name__", "condition"), v))
        time.sleep(interval)
    return True


def run(*cmd, check=True):
    return subprocess.run(list(cmd), check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<HTTP %d %s>" % (self.status, self.body[:500])


class Api:
    """Tiny JSON client. Never raises for HTTP error statuses: returns a Response."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, body=None, raw=None, headers=None, timeout=15):
        data = raw
        hdrs = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Response(r.status, dict(r.headers),
                                r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            return Response(e.code, dict(e.headers or {}),
                            e.read().decode("utf-8", "replace"))

    def post_early_answer(self, path, data, timeout=15):
        """POST a body the server may refuse before reading it all (413): keeps sending
        until the server closes, then reads the answer it already sent, as curl does."""
        u = urllib.parse.urlsplit(self.base)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        try:
            conn.putrequest("POST", path)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
            conn.endheaders()
            try:
                for i in range(0, len(data), 65536):
                    conn.sock.sendall(data[i:i + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = conn.getresponse()
            return Response(r.status, dict(r.headers), r.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


class EventStream:
    """Reads /v2/events (Server-Sent Events) on a thread; keeps every event as
    (event_type, data_dict) in arrival order."""

    def __init__(self, host, port, path="/v2/events"):
        self.events = []
        self.cond = threading.Condition()
        self.error = None
        self.connected = threading.Event()
        self._conn = http.client.HTTPConnection(host, port, timeout=None)
        self._path = path
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self.connected.wait(10):
            raise AssertionError("event stream did not connect: %r" % (self.error,))
        if self.error:
            raise AssertionError("event stream failed: %r" % (self.error,))

    def _run(self):
        try:
            self._conn.request("GET", self._path, headers={"Accept": "text/event-stream"})
            resp = self._conn.getresponse()
            if resp.status != 200:
                self.error = "HTTP %d %s" % (resp.status, resp.read(500))
                self.connected.set()
                return
            self.content_type = resp.getheader("Content-Type", "")
            self.connected.set()
            etype, data = None, []
            while not self._stop:
                line = resp.fp.readline()
                if not line:
                    break
                line = line.decode("utf-8", "replace").rstrip("\r\n")
                if line == "":
                    if data:
                        self._add(etype, "\n".join(data))
                    etype, data = None, []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    etype = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        except Exception as e:  # the reader must never kill the test process
            if not self._stop:
                self.error = e
        finally:
            self.connected.set()
            with self.cond:
                self.cond.notify_all()

    def _add(self, etype, text):
        try:
            data = json.loads(text)
        except ValueError:
            data = {"_raw": text}
        if not etype and isinstance(data, dict):
            etype = data.get("eventType")
        with self.cond:
            self.events.append((etype, data))
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.events)

    def wait_for(self, pred, timeout=30, what="event"):
        """Waits for an event (type, data) with pred(type, data) true; returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events:
                    if pred(*ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout("no %s within %ss; saw %d events: %s" % (
                        what, timeout, len(self.events),
                        [e[0] for e in self.events][-30:]))
                if self.error:
                    raise AssertionError("event stream broke: %r" % (self.error,))
                self.cond.wait(min(left, 0.5))

    def close(self):
        self._stop = True
        try:
            if self._conn.sock:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._conn.close()
        self._thread.join(5)


def free_port(addr):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def _pick_subnet():
    """A /24 inside 198.19.0.0/16 (half of 198.18.0.0/15; the demo uses 198.18.0.0/24)
    that no interface on the host uses yet."""
    used = run("ip", "-o", "-4", "addr", "show", check=False).stdout
    for _ in range(200):
        n = random.randint(0, 254)
        net = ipaddress.ip_network("198.19.%d.0/24" % n)
        if ("198.19.%d." % n) not in used:
            return net
    raise RuntimeError("no free 198.19.x.0/24 subnet")


def cgroup_roots():
    """Mount points of every cgroup (v1 and v2) hierarchy on the host."""
    roots = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] in ("cgroup", "cgroup2"):
                roots.append(parts[4])
    return roots


def procs_with_env(key, value):
    """Pids of host processes whose environment has key=value (e.g. MESOS_TASK_ID)."""
    needle = ("%s=%s" % (key, value)).encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            pids.append(int(d))
    return sorted(pids)


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Agent:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.netns = "pacer-t%s-%d" % (cluster.tag, index + 1)
        self.ip = str(cluster.subnet.network_address + index + 2)
        self.hostname = self.netns
        self.port = 5051
        self.work_dir = os.path.join(cluster.tmp, "agent-%d" % (index + 1))
        self.log_path = os.path.join(cluster.tmp, "agent-%d.log" % (index + 1))
        self.rack = RACKS[index % len(RACKS)]
        self.proc = None
        self.agent_id = None
        self.api = Api("http://%s:%d" % (self.ip, self.port))
        self.extra_args = list(cluster.agent_args.get(index, []))

    def start(self):
        b = self.cluster.build
        os.makedirs(self.work_dir, exist_ok=True)
        cmd = ["nsenter", "--net=/run/netns/" + self.netns,
               os.path.join(b, "pacer-agent"),
               "--master", self.cluster.master_url_for_agents,
               "--work-dir", self.work_dir,
               "--resources", self.cluster.agent_resources,
               "--attributes", "rack:%s" % self.rack,
               "--ip", self.ip, "--port", str(self.port),
               "--hostname", self.hostname,
               "--executor", os.path.join(b, "pacer-executor")] + self.extra_args
        log = open(self.log_path, "ab")
        log.write(("\n=== start %s: %s\n" % (time.strftime("%T"), " ".join(cmd))).encode())
        log.flush()
        # nsenter execs the agent itself, so proc.pid is the agent's pid.
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        id_file = os.path.join(self.work_dir, "agent_id")
        self.agent_id = wait_until(lambda: self._read_id(id_file), 20,
                                   what="%s to write agent_id" % self.netns)
        self.cluster.agent_ids.add(self.agent_id)
        return self

    def _read_id(self, path):
        if self.proc.poll() is not None:
            raise AssertionError("pacer-agent %s exited with %s; log:\n%s"
                                 % (self.netns, self.proc.returncode,
                                    self.cluster.tail(self.log_path)))
        try:
            with open(path) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def kill9(self):
        """SIGKILL the agent process only: executors and tasks keep running."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def netns_pids(self):
        out = run("ip", "netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split()]

    def kill_everything(self):
        """The node dies: the agent, its executors and every task in its namespace."""
        self.kill9()
        for p in self.netns_pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not [p for p in self.netns_pids() if pid_alive(p)], 15,
                   what="processes in %s to die" % self.netns)

    def sandbox_file(self, task_id, name="stdout"):
        return os.path.join(self.work_dir, "sandboxes", task_id, name)


class Cluster:
    def __init__(self, build, agents=3, agent_timeout=10.0, offer_timeout=5.0,
                 allocation_interval=0.5, agent_resources=DEFAULT_RESOURCES, agent_args=None):
        self.build = build
        self.n_agents = agents
        self.agent_timeout = agent_timeout
        self.offer_timeout = offer_timeout
        self.allocation_interval = allocation_interval
        self.agent_resources = agent_resources
        self.agent_args = agent_args or {}   # agent index -> extra pacer-agent flags
        self.tag = "%04x" % random.randint(0, 0xFFFF)
        self.bridge = "pt" + self.tag
        self.subnet = _pick_subnet()
        self.bridge_ip = str(self.subnet.network_address + 1)
        self.tmp = tempfile.mkdtemp(prefix="pacer-t%s-" % self.tag)
        self.master_work = os.path.join(self.tmp, "master")
        self.master_log = os.path.join(self.tmp, "master.log")
        self.master_proc = None
        self.port = None
        self.agents = []
        self.agent_ids = set()
        self.netns_made = []
        self.links_made = []
        self.bpffs_was_mounted = os.path.ismount("/sys/fs/bpf")
        self.streams = []

    # ---- topology -------------------------------------------------------------
    def _make_network(self):
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self.links_made.append(self.bridge)
        run("ip", "addr", "add", "%s/%d" % (self.bridge_ip, self.subnet.prefixlen),
            "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for i in range(self.n_agents):
            ns = "pacer-t%s-%d" % (self.tag, i + 1)
            host_if, ns_if = "pt%sh%d" % (self.tag, i + 1), "pt%sn%d" % (self.tag, i + 1)
            run("ip", "netns", "add", ns)
            self.netns_made.append(ns)
            run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            self.links_made.append(host_if)
            run("ip", "link", "set", host_if, "master", self.bridge)
            run("ip", "link", "set", host_if, "up")
            run("ip", "link", "set", ns_if, "netns", ns)
            ip = str(self.subnet.network_address + i + 2)
            # nsenter only joins the netns; `ip -n` also remounts /sys, which fails in a chroot.
            ns_ip = ("nsenter", "--net=/run/netns/" + ns, "ip")
            run(*ns_ip, "link", "set", ns_if, "name", "eth0")
            run(*ns_ip, "addr", "add", "%s/%d" % (ip, self.subnet.prefixlen), "dev", "eth0")
            run(*ns_ip, "link", "set", "eth0", "up")
            run(*ns_ip, "link", "set", "lo", "up")

    # ---- master ---------------------------------------------------------------
    @property
    def master_url(self):
        return "http://%s:%d" % (self.bridge_ip, self.port)

    master_url_for_agents = master_url

    def start_master(self):
        if self.port is None:
            self.port = free_port(self.bridge_ip)
        os.makedirs(self.master_work, exist_ok=True)
        cmd = [os.path.join(self.build, "pacer-master"),
               "--port", str(self.port), "--bind", self.bridge_ip,
               "--work-dir", self.master_work,
               "--agent-timeout", str(self.agent_timeout),
               "--offer-timeout", str(self.offer_timeout),
               "--allocation-interval", str(self.allocation_interval)]
        log = open(self.master_log, "ab")
        log.write(("\n=== start %s: %s\n" % (time.strftime("%T"), " ".join(cmd))).encode())
        log.flush()
        self.master_proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        log.close()
        self.api = Api(self.master_url)

        def ping():
            if self.master_proc.poll() is not None:
                raise AssertionError("pacer-master exited with %s; log:\n%s"
                                     % (self.master_proc.returncode,
                                        self.tail(self.master_log)))
            return self.api.get("/ping", timeout=2).status == 200
        wait_until(ping, 20, what="master /ping")

    def stop_master(self, sig=signal.SIGTERM, timeout=10):
        p = self.master_proc
        if not p or p.poll() is not None:
            return
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)

    # ---- whole cluster ----------------------------------------------------------
    def start(self):
        for prog in ("pacer-master", "pacer-agent", "pacer-executor"):
            path = os.path.join(self.build, prog)
            if not os.access(path, os.X_OK):
                raise AssertionError("%s is not built (PACER_BUILD=%s)" % (path, self.build))
        self._make_network()
        self.start_master()
        for i in range(self.n_agents):
            self.agents.append(Agent(self, i).start())
        self.wait_agents_registered()
        return self

    def registered_agent_ids(self):
        """Agent ids the master lists as active (GET /v1/agents)."""
        r = self.api.get("/v1/agents")
        if r.status == 404:
            return self._registered_from_log()
        if r.status != 200 or not isinstance(r.json, dict):
            raise AssertionError("GET /v1/agents: %r" % r)
        return {a.get("id") for a in r.json.get("agents", []) if a.get("active", True)}

    def _registered_from_log(self):
        """Fallback while the master has no GET /v1/agents: the ids of agents it logged
        as (re-)registered since its last start."""
        ids = set()
        with open(self.master_log, errors="replace") as f:
            for line in f:
                if line.startswith("=== start"):
                    ids = set()
                for ev in ("event=agent_registered ", "event=agent_reregistered "):
                    if ev in line and " id=" in line:
                        ids.add(line.split(" id=", 1)[1].split()[0])
        return ids

    def wait_agents_registered(self, agents=None, timeout=30):
        want = {a.agent_id for a in (agents or self.agents)}
        wait_until(lambda: want <= self.registered_agent_ids(), timeout,
                   what="agents %s registered" % sorted(want))

    def agent_by_id(self, agent_id):
        for a in self.agents:
            if a.agent_id == agent_id:
                return a
        return None

    def agent_by_host(self, host):
        for a in self.agents:
            if host in (a.hostname, a.ip):
                return a
        return None

    def events(self):
        s = EventStream(self.bridge_ip, self.port)
        self.streams.append(s)
        return s

    def pacerctl(self, *args, stdin=None, master=True, timeout=30):
        cmd = [os.path.join(self.build, "pacerctl")]
        if master:
            cmd += ["--master", self.master_url]
        cmd += list(args)
        return subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)

    # ---- logs -------------------------------------------------------------------
    @staticmethod
    def tail(path, lines=60):
        try:
            with open(path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            return "(no log: %s)" % e
        return "\n".join(data[-lines:])

    def logs(self, lines=60):
        out = ["--- master (%s)\n%s" % (self.master_log, self.tail(self.master_log, lines))]
        for a in self.agents:
            out.append("--- %s %s (%s)\n%s" % (a.netns, a.agent_id, a.log_path,
                                               self.tail(a.log_path, lines)))
        return "\n".join(out)

    # ---- tear-down --------------------------------------------------------------
    def destroy(self):
        """Removes everything; never raises (collects problems into a list returned)."""
        problems = []

        def attempt(what, fn, *a):
            try:
                fn(*a)
            except Exception as e:  # keep going: clean up as much as possible
                problems.append("%s: %r" % (what, e))

        for s in self.streams:
            attempt("close event stream", s.close)
        for a in self.agents:
            attempt("stop agent %s" % a.netns, a.stop, signal.SIGTERM, 5)
        for ns in self.netns_made:
            attempt("kill processes in %s" % ns, self._kill_netns_procs, ns)
        for agent_id in self.agent_ids:
            attempt("cgroups of %s" % agent_id, self._remove_cgroups, agent_id)
        attempt("stop master", self.stop_master, signal.SIGTERM, 5)
        for agent_id in self.agent_ids:
            attempt("bpf pins of %s" % agent_id, self._remove_bpf_pins, agent_id)
        attempt("mounts", self._unmount_under, self.tmp)
        for ns in self.netns_made:
            attempt("netns %s" % ns, run, "ip", "netns", "del", ns)
        for link in reversed(self.links_made):
            run("ip", "link", "del", link, check=False)  # veths go with their netns
        attempt("bpffs", self._maybe_unmount_bpffs)
        problems += self.sanitizer_reports()
        attempt("temp dir", shutil.rmtree, self.tmp)
        problems += self.leftovers()
        return problems

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

    def sanitizer_reports(self):
        """ASan/LSan/UBSan reports in the daemons' logs (the check build is sanitized):
        each one is a bug, reported with the lines that follow it."""
        found = []
        logs = [self.master_log] + [a.log_path for a in self.agents]
        for path in logs:
            try:
                with open(path, errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for i, line in enumerate(lines):
                if any(m in line for m in self.SANITIZER_MARKS):
                    found.append("sanitizer report in %s:\n%s" % (
                        os.path.basename(path), "\n".join(lines[i:i + 25])))
                    break
        return found

    def leftovers(self):
        """Whatever of this cluster is still on the host (should be nothing)."""
        left = []
        for agent_id in self.agent_ids:
            for root in cgroup_roots():
                if os.path.exists(os.path.join(root, "pacer", agent_id)):
                    left.append("cgroup %s/pacer/%s" % (root, agent_id))
            if os.path.exists(os.path.join("/sys/fs/bpf/pacer", agent_id)):
                left.append("bpf pins /sys/fs/bpf/pacer/%s" % agent_id)
        for ns in self.netns_made:
            if os.path.exists("/run/netns/" + ns):
                left.append("netns " + ns)
        if os.path.exists("/sys/class/net/" + self.bridge):
            left.append("bridge " + self.bridge)
        if os.path.exists(self.tmp):
            left.append("dir " + self.tmp)
        return ["left behind: " + x for x in left]

    @staticmethod
    def _kill_netns_procs(ns):
        def alive():
            out = run("ip", "netns", "pids", ns, check=False).stdout
            pids = [int(p) for p in out.split() if pid_alive(int(p))]
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return pids
        wait_until(lambda: not alive(), 15, what="processes in %s to die" % ns)

    @staticmethod
    def _remove_cgroups(agent_id):
        for root in cgroup_roots():
            base = os.path.join(root, "pacer", agent_id)
            if not os.path.isdir(base):
                continue

            def emptied():
                busy = False
                for dirpath, _, files in os.walk(base):
                    if "cgroup.procs" not in files:
                        continue
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        for p in f.read().split():
                            busy = True
                            try:
                                os.kill(int(p), signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                return not busy
            wait_until(emptied, 15, what="cgroup %s to empty" % base)
            for dirpath, _, _ in sorted(os.walk(base), key=lambda w: -len(w[0])):
                wait_until(lambda: _rmdir(dirpath), 10, what="rmdir " + dirpath)
            try:
                os.rmdir(os.path.join(root, "pacer"))
            except OSError:
                pass  # another agent (another run) still uses it

    @staticmethod
    def _remove_bpf_pins(agent_id):
        base = os.path.join("/sys/fs/bpf/pacer", agent_id)
        if os.path.isdir(base):
            shutil.rmtree(base)
        try:
            os.rmdir("/sys/fs/bpf/pacer")
        except OSError:
            pass

    def _maybe_unmount_bpffs(self):
        """If bpffs was mounted during this run (by an agent) and nothing else lives in it,
        unmount it again."""
        if self.bpffs_was_mounted or not os.path.ismount("/sys/fs/bpf"):
            return
        if not os.listdir("/sys/fs/bpf"):
            run("umount", "/sys/fs/bpf", check=False)

    @staticmethod
    def _unmount_under(path):
        mounts = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4]
                if mp == path or mp.startswith(path.rstrip("/") + "/"):
                    mounts.append(mp)
        for mp in sorted(mounts, key=len, reverse=True):
            run("umount", "-l", mp, check=False)


def _rmdir(path):
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError as e:
        if e.errno == 16:  # EBUSY: the kernel has not released it yet
            return False
        raise


# ---- app and task helpers shared by the tests ---------------------------------------

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
            "TASK_DROPPED", "TASK_GONE"}


def app_path(app_id):
    return "/v2/apps" + app_id


def tasks_of(c, app_id):
    r = c.api.get(app_path(app_id) + "/tasks")
    assert r.status == 200, "GET %s/tasks -> %r" % (app_path(app_id), r)
    return r.json["tasks"]


def live_tasks(c, app_id):
    return [t for t in tasks_of(c, app_id) if t.get("state") not in TERMINAL]


def wait_running(c, app_id, n, timeout=40):
    """Waits until the app has exactly n tasks, all TASK_RUNNING; returns them."""
    def ready():
        ts = live_tasks(c, app_id)
        running = [t for t in ts if t.get("state") == "TASK_RUNNING"]
        return running if len(running) == n and len(ts) == n else None
    return wait_until(ready, timeout, what="%s: %d tasks running" % (app_id, n))


def app_def(app_id, cmd="sleep 3600", instances=1, **kw):
    d = {"id": app_id, "cmd": cmd, "cpus": 0.05, "mem": 32, "instances": instances}
    d.update(kw)
    return d
