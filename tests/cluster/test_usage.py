"""test_usage.py - the usage pipeline end to end (issue 4): agents read each task's exact
BPF counters every second and send them, numbered, to the master, which keeps totals per
task, app and tenant. No loss and no double count: a task that sends a known number of UDP
datagrams of a known size shows exactly that many bytes and packets at the master - whether
it exited between two reports, the agent was killed -9 and restarted in the middle, or the
master was down for 10 s or restarted in the middle of the agent's usage stream. The agent
sends its batches over that stream (GET /internal/v1/usage/stream, upgraded), not as POSTs.
Also: /metrics passes promtool, usage_update events, pacerctl."""

import json
import os
import shutil
import subprocess
import time

import pytest

from cluster import EventStream, wait_until

SENDER = r"""
import os, socket, time
n, size, gap = int(os.environ["N"]), int(os.environ["SIZE"]), float(os.environ["GAP"])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(b"x" * size, (os.environ["DST"], 9))
    if gap:
        time.sleep(gap)
with open("sent", "w") as f:
    f.write(str(n))
"""

SIZE = 1000
IP_UDP_HEADERS = 28


def sender_app(app_id, dst, n, gap, then):
    return {"id": app_id, "cmd": 'python3 -c "$SENDER" && ' + then,
            "cpus": 0.1, "mem": 64, "instances": 1, "backoffSeconds": 60,
            "env": {"SENDER": SENDER, "N": str(n), "SIZE": str(SIZE), "GAP": str(gap),
                    "DST": dst}}


def expected(n):
    return {"tx_packets": n, "tx_bytes": n * (SIZE + IP_UDP_HEADERS), "udp_tx_datagrams": n}


def usage(c, **q):
    qs = "&".join("%s=%s" % kv for kv in q.items())
    r = c.api.get("/v1/usage" + ("?" + qs if qs else ""))
    assert r.status == 200, r
    return r.json


def tasks_of(c, app_id):
    return usage(c, app=app_id)["tasks"]


def counters_match(task, want):
    got = {k: task["counters"].get(k) for k in want}
    return got == want


def app_task_ids(c, app_id):
    r = c.api.get("/v2/apps%s/tasks" % app_id)
    return [t["id"] for t in r.json.get("tasks", [])] if r.status == 200 else []


def first_task(c, app_id):
    return wait_until(lambda: (app_task_ids(c, app_id) or [None])[0], 60,
                      what="a task of %s" % app_id)


def wait_sent(c, task_id):
    agent = c.agents[0]
    path = agent.sandbox_file(task_id, "sent")
    wait_until(lambda: os.path.exists(path), 60, what="%s to finish sending" % task_id)


def task_usage(c, task_id):
    t = usage(c, task=task_id)["tasks"]
    return t[0] if t else None


def wait_exact(c, task_id, want, final):
    def ok():
        t = task_usage(c, task_id)
        return t if t and counters_match(t, want) and t["final"] == final else None
    try:
        return wait_until(ok, 30, what="%s usage %s final=%s" % (task_id, want, final))
    except AssertionError:
        raise AssertionError("task %s: want %s final=%s, master has %r"
                             % (task_id, want, final, task_usage(c, task_id)))


def end_app(c, app_id, task_id, want):
    """Deletes the app; the task's final reading must carry the same exact totals."""
    r = c.api.delete("/v2/apps%s?force=true" % app_id)
    assert r.status in (200, 202), r
    return wait_exact(c, task_id, want, final=True)


@pytest.fixture
def one_agent(make_cluster):
    return make_cluster(agents=1, agent_timeout=10)


def test_task_exiting_between_reports_is_exact(one_agent, apps):
    c = one_agent
    app_id = apps.new_id("udpexit")
    n = 25
    apps.create(sender_app(app_id, c.bridge_ip, n, 0, "exit 0"), cluster=c)
    tid = first_task(c, app_id)
    # It sends and exits in well under the 1 s interval: only the final reading has it.
    t = wait_exact(c, tid, expected(n), final=True)
    assert t["tenant"] == app_id.split("/")[1]
    assert t["app_id"] == app_id
    assert t["agent_id"] == c.agents[0].agent_id


def test_agent_kill9_mid_task_no_loss_no_double(one_agent, apps):
    c = one_agent
    agent = c.agents[0]
    app_id = apps.new_id("udpagent")
    n = 40
    apps.create(sender_app(app_id, c.bridge_ip, n, 0.1, "sleep 3600"), cluster=c)
    tid = first_task(c, app_id)
    wait_until(lambda: task_usage(c, tid), 30, what="first usage report of %s" % tid)
    agent.kill9()
    time.sleep(1.5)
    agent.start()
    c.wait_agents_registered([agent])
    wait_sent(c, tid)
    wait_exact(c, tid, expected(n), final=False)
    end_app(c, app_id, tid, expected(n))


def test_master_outage_no_loss_no_double(one_agent, apps):
    c = one_agent
    app_id = apps.new_id("udpmaster")
    n = 60
    apps.create(sender_app(app_id, c.bridge_ip, n, 0.1, "sleep 3600"), cluster=c)
    tid = first_task(c, app_id)
    wait_until(lambda: task_usage(c, tid), 30, what="first usage report of %s" % tid)
    c.stop_master()
    time.sleep(10)
    c.start_master()
    wait_sent(c, tid)
    wait_exact(c, tid, expected(n), final=False)
    t = end_app(c, app_id, tid, expected(n))
    # App and tenant totals are sums over their tasks, the finished one included.
    u = usage(c, tenant=t["tenant"])
    tasks = [x for x in u["tasks"] if x["app_id"] == app_id]
    app = [a for a in u["apps"] if a["app_id"] == app_id][0]
    assert app["counters"]["tx_bytes"] == sum(x["counters"]["tx_bytes"] for x in tasks)
    ten = u["tenants"][0]
    assert ten["counters"]["tx_bytes"] == sum(x["counters"]["tx_bytes"] for x in u["tasks"])


def metric(c, name):
    r = c.api.get("/metrics")
    assert r.status == 200, r
    text = r.body.decode() if isinstance(r.body, bytes) else r.body
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError("no %s in /metrics" % name)


def test_usage_goes_over_the_stream_master_restart_mid_stream(one_agent, apps):
    c = one_agent
    agent = c.agents[0]
    app_id = apps.new_id("udpstream")
    n = 60
    apps.create(sender_app(app_id, c.bridge_ip, n, 0.1, "sleep 3600"), cluster=c)
    tid = first_task(c, app_id)
    wait_until(lambda: task_usage(c, tid), 30, what="first usage report of %s" % tid)
    # The agent's batches come on its stream: one open, and every batch applied came on it.
    wait_until(lambda: metric(c, "pacer_usage_stream_connections") == 1, 10,
               what="the agent's usage stream")
    streamed = metric(c, "pacer_usage_stream_batches_total")
    applied = metric(c, "pacer_usage_reports_total")
    assert streamed >= applied > 0, (streamed, applied)
    with open(agent.log_path, errors="replace") as f:
        assert "event=usage_stream_opened" in f.read()
    # A restart while the task is still sending (the stream breaks under the agent).
    c.stop_master()
    c.start_master()
    wait_until(lambda: metric(c, "pacer_usage_stream_connections") == 1, 15,
               what="the agent's usage stream after the restart")
    wait_until(lambda: metric(c, "pacer_usage_stream_batches_total") >= 2, 15,
               what="batches on the new stream")
    wait_sent(c, tid)
    wait_exact(c, tid, expected(n), final=False)
    end_app(c, app_id, tid, expected(n))


def promtool():
    p = shutil.which("promtool")
    if p:
        return p
    # Debian's prometheus package carries promtool; the package is large and its postinst
    # would start a server, so only the binary is taken from it (cached between runs).
    cache = "/var/tmp/pacer-promtool"
    p = os.path.join(cache, "usr/bin/promtool")
    if os.access(p, os.X_OK):
        return p
    os.makedirs(cache, exist_ok=True)
    subprocess.run(["apt-get", "download", "prometheus"], cwd=cache, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    deb = [f for f in os.listdir(cache) if f.startswith("prometheus_") and f.endswith(".deb")][0]
    subprocess.run("dpkg-deb --fsys-tarfile %s | tar -x ./usr/bin/promtool" % deb, shell=True,
                   cwd=cache, check=True, timeout=300)
    return p


def test_metrics_promtool_events_and_pacerctl(one_agent, apps):
    c = one_agent
    ev = EventStream(c.bridge_ip, c.port, path="/v1/usage/events")
    c.streams.append(ev)
    app_id = apps.new_id("udpmetrics")
    n = 5
    apps.create(sender_app(app_id, c.bridge_ip, n, 0, "sleep 3600"), cluster=c)
    tid = first_task(c, app_id)
    wait_exact(c, tid, expected(n), final=False)
    ev.wait_for(lambda etype, data: etype == "usage_update" and data.get("task_id") == tid
                and data["counters"]["tx_bytes"] == expected(n)["tx_bytes"],
                what="usage_update event of %s" % tid)

    r = c.api.get("/metrics")
    assert r.status == 200, r
    text = r.body.decode() if isinstance(r.body, bytes) else r.body
    line = 'pacer_task_transmit_bytes_total{tenant="%s",app="%s",task="%s",agent="%s"} %d' % (
        app_id.split("/")[1], app_id, tid, c.agents[0].agent_id, expected(n)["tx_bytes"])
    assert line in text.splitlines(), text[:2000]
    chk = subprocess.run([promtool(), "check", "metrics"], input=text, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert chk.returncode == 0 and not chk.stdout.strip(), chk.stdout

    out = c.pacerctl("usage", "--app", app_id)
    assert out.returncode == 0, out.stderr
    assert "TENANTS" in out.stdout and app_id in out.stdout and tid in out.stdout, out.stdout
    assert str(expected(n)["tx_bytes"]) in out.stdout
    out = c.pacerctl("--json", "usage", "--tenant", app_id.split("/")[1])
    assert out.returncode == 0, out.stderr
    j = json.loads(out.stdout)
    assert [t["task_id"] for t in j["tasks"]] == [tid]
    out = c.pacerctl("usage", "bogus")
    assert out.returncode == 2
