"""test_agent_stream.py - the master's end of the agent stream (pacer-agent/1, issue 3),
driven by a fake agent written here against the wire format of lib/agent_frame.h: launches
arrive as call frames (not HTTP), results and status frames are answered, acks come once
durable and in order, and every bad frame gets a named error. Real agents use the stream in
every other cluster test; this file checks what a real agent never sends."""

import json
import socket
import struct
import threading
import time
import uuid

import pytest

from cluster import wait_until

PROTO = "pacer-agent/1"


# ---- the wire format (lib/agent_frame.h) -------------------------------------------------

def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def hello(agent_id):
    b = agent_id.encode()
    return frame(b"H" + struct.pack("<H", len(b)) + b)


def status_frame(batch_id, body):
    return frame(b"S" + struct.pack("<Q", batch_id) + json.dumps(body).encode())


def answer(kind, ident, status=200, message="", items=()):
    m = message.encode()
    out = kind + struct.pack("<QHH", ident, status, len(m)) + m + struct.pack("<I", len(items))
    for ok, err in items:
        e = err.encode()
        out += struct.pack("<BH", 1 if ok else 0, len(e)) + e
    return frame(out)


def parse_call(p):
    kind, call_id, n = p[:1], *struct.unpack("<QI", p[1:13])
    at, els = 13, []
    for _ in range(n):
        tl = p[at]
        tid = p[at + 1:at + 1 + tl].decode()
        at += 1 + tl
        (jl,) = struct.unpack("<I", p[at:at + 4])
        els.append((tid, json.loads(p[at + 4:at + 4 + jl])))
        at += 4 + jl
    assert at == len(p), "bytes after the last element"
    return kind, call_id, els


def parse_answer(p):
    kind = p[:1]
    ident, status, ml = struct.unpack("<QHH", p[1:13])
    msg = p[13:13 + ml].decode()
    at = 13 + ml
    (n,) = struct.unpack("<I", p[at:at + 4])
    at += 4
    items = []
    for _ in range(n):
        ok, el = struct.unpack("<BH", p[at:at + 3])
        items.append((ok == 1, p[at + 3:at + 3 + el].decode()))
        at += 3 + el
    return kind, ident, status, msg, items


def parse_error(p):
    status, ml = struct.unpack("<HH", p[1:5])
    return status, p[5:5 + ml].decode()


class Stream:
    """One agent stream: the upgrade, then frames."""

    def __init__(self, c, extra=b""):
        self.sock = socket.create_connection((c.bridge_ip, c.port), timeout=10)
        req = ("GET /internal/v1/agent/stream HTTP/1.1\r\nHost: %s:%d\r\n"
               "Connection: Upgrade\r\nUpgrade: %s\r\n\r\n" % (c.bridge_ip, c.port, PROTO))
        self.sock.sendall(req.encode() + extra)
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the upgrade"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, data):
        self.sock.sendall(data)

    def read(self, timeout=15):
        """The next frame's payload, or None when the master closed the stream."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    p, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return p
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def close(self):
        self.sock.close()


class HttpSpy:
    """A listener at the fake agent's registered address: records any HTTP call the master
    makes to it (the stream must make them unnecessary) and answers 503."""

    def __init__(self, host):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.addr = "%s:%d" % self.sock.getsockname()
        self.calls = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                data = conn.recv(65536)
                self.calls.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n"
                             b"Connection: close\r\n\r\n{}")
            except OSError:
                pass
            conn.close()

    def close(self):
        self.sock.close()


def register(c, agent_id, address, cpus=4.0):
    r = c.api.post("/internal/v1/register", {
        "agent_id": agent_id, "hostname": agent_id, "address": address,
        "attributes": {}, "tasks": [],
        "resources": {"cpus": cpus, "mem": 4096.0, "disk": 4096.0, "ports": [[31000, 31100]]}})
    assert r.status == 200, r


def running(c, app_id):
    r = c.api.get("/v2/apps" + app_id)
    return r.status == 200 and r.json["app"]["tasksRunning"]


def updates(agent_id, fw, tids, state):
    return {"agent_id": agent_id, "updates": [
        {"uuid": str(uuid.uuid4()), "task_id": t, "framework_id": fw, "state": state,
         "message": "", "source": "SOURCE_EXECUTOR", "timestamp": time.time()} for t in tids]}


@pytest.fixture
def master(make_cluster):
    return make_cluster(agents=0, agent_timeout=30)


@pytest.fixture
def spy(master):
    s = HttpSpy(master.bridge_ip)
    yield s
    s.close()


def open_agent(c, spy, name="fake"):
    agent_id = "%s-%s" % (name, uuid.uuid4().hex[:8])
    register(c, agent_id, spy.addr)
    s = Stream(c)
    s.send(hello(agent_id))
    wait_until(lambda: "event=agent_stream_opened agent=%s" % agent_id in open(c.master_log).read(),
               10, what="the master logs the stream open")
    return agent_id, s


def create_app(c, definition):
    # No apps fixture: its clean-up waits for kills a fake agent that is gone never answers
    # (the private cluster goes away with its tasks).
    r = c.api.post("/v2/apps", definition)
    assert r.status == 201, r


def test_launch_over_stream_status_acked_in_order(master, spy):
    c = master
    agent_id, s = open_agent(c, spy)
    app_id = "/streamed"
    create_app(c, {"id": app_id, "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 3})
    got = []
    while len(got) < 3:
        p = s.read()
        assert p is not None and p[:1] == b"L", p
        kind, call_id, els = parse_call(p)
        for tid, el in els:
            assert el["task"]["task_id"] == tid      # the element is the HTTP batch element
            assert el["framework_id"]
        s.send(answer(b"R", call_id, items=[(True, "")] * len(els)))
        got += els
    fw = got[0][1]["framework_id"]
    tids = [t for t, _ in got]
    # Two status frames back to back: two acks, in order, all acknowledged.
    s.send(status_frame(7, updates(agent_id, fw, tids[:2], "TASK_RUNNING")) +
           status_frame(8, updates(agent_id, fw, tids[2:], "TASK_RUNNING")))
    a1, a2 = parse_answer(s.read()), parse_answer(s.read())
    assert a1 == (b"A", 7, 200, "", [(True, "")] * 2)
    assert a2 == (b"A", 8, 200, "", [(True, "")])
    wait_until(lambda: running(c, app_id) == 3, 15, what="3 tasks running")
    assert spy.calls == []          # nothing went over HTTP
    assert c.api.get("/v1/metrics").json["agent_link"]["streams"] == 1
    # A kill goes over the stream too.
    r = c.api.put("/v2/apps" + app_id, {"instances": 2})
    assert r.status == 200, r
    p = s.read()
    assert p[:1] == b"K", p
    _, call_id, els = parse_call(p)
    assert len(els) == 1 and els[0][0] in tids and els[0][1]["task_id"] == els[0][0]
    s.send(answer(b"R", call_id, items=[(True, "")]))
    s.close()


def test_refused_launch_and_closed_stream_fail_the_task(master, spy):
    c = master
    agent_id, s = open_agent(c, spy)
    create_app(c, {"id": "/refused", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16,
                   "instances": 1, "backoffSeconds": 1})
    p = s.read()
    _, call_id, els = parse_call(p)
    first = els[0][0]
    s.send(answer(b"R", call_id, items=[(False, "no room for it here")]))

    def failed_with(tid, text):
        with open(c.master_log) as f:
            return any("event=launch_failed task=%s" % tid in ln and text in ln for ln in f)
    wait_until(lambda: failed_with(first, "refused the task: no room for it here"), 15,
               what="the refusal fails the launch")
    # The relaunch: the stream closes before answering -> that launch fails too.
    p = s.read(timeout=30)
    assert p is not None and p[:1] == b"L"
    second = parse_call(p)[2][0][0]
    assert second != first
    s.close()
    wait_until(lambda: failed_with(second, "closed before the agent answered"), 15,
               what="a call on a closed stream fails its launch")


def expect_error(s, status, text):
    p = s.read()
    assert p is not None and p[:1] == b"E", p
    st, msg = parse_error(p)
    assert st == status and text in msg, (st, msg)
    assert s.read() is None             # then the master closes the stream


def test_bad_frames_get_named_errors(master, spy):
    c = master
    s = Stream(c)
    s.send(hello("nobody-registered-this"))
    expect_error(s, 404, "unknown agent 'nobody-registered-this'; register again")

    s = Stream(c)
    s.send(status_frame(1, {"agent_id": "x", "updates": []}))
    expect_error(s, 400, "the first frame must be a hello")

    s = Stream(c)
    s.send(frame(b"H\x05\x00ab"))
    expect_error(s, 400, "hello frame: agent_id is cut short")

    agent_id, s = open_agent(c, spy, "big")
    s.send(struct.pack(">I", 2 * 1024 * 1024) + b"S")
    expect_error(s, 413, "exceeds the limit")

    agent_id, s = open_agent(c, spy, "odd")
    s.send(frame(b"Z"))
    expect_error(s, 400, "unknown frame type 0x5a")

    agent_id, s = open_agent(c, spy, "role")
    s.send(frame(b"L" + bytes(12)))
    expect_error(s, 400, "frame type 'L' is not one an agent sends")

    # A bad status body is answered in order and the stream stays open.
    agent_id, s = open_agent(c, spy, "json")
    s.send(frame(b"S" + struct.pack("<Q", 41) + b"{not json") +
           status_frame(42, {"agent_id": "someone-else", "updates": []}) +
           status_frame(43, {"agent_id": agent_id, "updates": [{"uuid": 5}]}))
    k, ident, st, msg, items = parse_answer(s.read())
    assert (k, ident, st, items) == (b"A", 41, 400, []) and msg.startswith("Invalid JSON"), msg
    k, ident, st, msg, items = parse_answer(s.read())
    assert (ident, st) == (42, 400) and "not this stream's agent" in msg, msg
    k, ident, st, msg, items = parse_answer(s.read())
    assert (ident, st) == (43, 200) and len(items) == 1 and not items[0][0]
    assert "uuid" in items[0][1], items
    s.close()


def test_upgrade_needs_its_headers(master):
    r = master.api.get("/internal/v1/agent/stream")
    assert r.status == 426, r
    assert PROTO in r.json["message"]


def test_stream_without_hello_is_closed(master):
    s = Stream(master)
    started = time.monotonic()
    expect_error(s, 408, "no hello frame within 10 seconds")
    assert 9 <= time.monotonic() - started < 15
