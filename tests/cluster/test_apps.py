"""test_apps.py - Marathon apps on a live 3-agent cluster: deploy, scale, replacement of a
killed task, the event stream, memory limits, PID isolation and byte counters."""

import os
import signal

from cluster import (app_def, app_path, cmdline, live_tasks, pid_alive, procs_with_env,
                     tasks_of, wait_running, wait_until)


def test_deploy_three_instances(cluster, apps):
    app_id = apps.new_id("deploy")
    r = apps.create(app_def(app_id, cmd='echo "PORT0=$PORT0 HOST=$HOST PORTS=$PORTS"; '
                                          "sleep 3600", instances=3))
    assert r.headers.get("Location", "").endswith(app_path(app_id)), r.headers
    dep_id = r.headers.get("Marathon-Deployment-Id")
    assert dep_id, "no Marathon-Deployment-Id header: %r" % r.headers
    body = r.json
    assert body["id"] == app_id and body["instances"] == 3
    assert body.get("version"), body
    assert [d["id"] for d in body.get("deployments", [])] == [dep_id], body

    tasks = wait_running(cluster, app_id, 3)
    hosts = {a.hostname for a in cluster.agents} | {a.ip for a in cluster.agents}
    for t in tasks:
        assert t["appId"] == app_id
        assert t["id"].startswith(app_id[1:].replace("/", "_") + "."), t["id"]
        assert t["host"] in hosts, t
        assert len(t["ports"]) == 1 and 31000 <= t["ports"][0] <= 32000, t
    # Offered together, the three agents each get one instance.
    assert len({t["slaveId"] for t in tasks}) == 3, [(t["id"], t["host"]) for t in tasks]

    # The deployment finishes and the app's counters agree with the task list.
    def settled():
        app = cluster.api.get(app_path(app_id)).json["app"]
        deps = cluster.api.get("/v2/deployments").json
        return (app["tasksRunning"] == 3 and not app["deployments"]
                and dep_id not in [d["id"] for d in deps])
    wait_until(settled, 20, what="deployment %s to finish" % dep_id)

    # $PORT0 and $HOST reach the command: read the sandbox's stdout on the agent.
    t = tasks[0]
    agent = cluster.agent_by_host(t["host"])
    out = agent.sandbox_file(t["id"])
    text = wait_until(lambda: open(out).read() if os.path.exists(out) else None, 10,
                      what="stdout of %s" % t["id"])
    assert "PORT0=%d " % t["ports"][0] in text, text
    assert "PORTS=%d" % t["ports"][0] in text, text


def test_scale_up_and_down(cluster, apps):
    app_id = apps.new_id("scale")
    apps.create(app_def(app_id, instances=1))
    first = wait_running(cluster, app_id, 1)[0]

    r = cluster.api.put(app_path(app_id), {"instances": 4})
    assert r.status == 200, r
    assert r.json.get("deploymentId") and r.json.get("version"), r.json
    up = wait_running(cluster, app_id, 4)
    assert first["id"] in {t["id"] for t in up}, "scaling up replaced the first task"

    r = cluster.api.put(app_path(app_id), {"instances": 2})
    assert r.status == 200, r
    down = wait_running(cluster, app_id, 2)
    assert {t["id"] for t in down} < {t["id"] for t in up}
    # The killed tasks' processes are gone, the survivors' are there.
    for t in up:
        if t["id"] in {d["id"] for d in down}:
            assert procs_with_env("MESOS_TASK_ID", t["id"]), t["id"]
        else:
            wait_until(lambda: not procs_with_env("MESOS_TASK_ID", t["id"]), 15,
                       what="processes of killed task %s to exit" % t["id"])
    app = cluster.api.get(app_path(app_id)).json["app"]
    assert app["instances"] == 2


def test_killed_process_is_replaced(cluster, apps, events):
    app_id = apps.new_id("replace")
    apps.create(app_def(app_id, cmd="sleep 3600", instances=1))
    old = wait_running(cluster, app_id, 1)[0]
    pids = [p for p in procs_with_env("MESOS_TASK_ID", old["id"])
            if cmdline(p).startswith("sleep")]
    assert pids, "no 'sleep' process with MESOS_TASK_ID=%s" % old["id"]
    os.kill(pids[0], signal.SIGKILL)

    events.wait_for(lambda t, d: t == "status_update_event" and d.get("taskId") == old["id"]
                    and d.get("taskStatus") == "TASK_FAILED", 20,
                    what="TASK_FAILED for %s" % old["id"])
    def replaced():
        ts = live_tasks(cluster, app_id)
        ok = len(ts) == 1 and ts[0]["state"] == "TASK_RUNNING" and ts[0]["id"] != old["id"]
        return ts if ok else None
    new = wait_until(replaced, 40, what="a replacement task")[0]
    assert procs_with_env("MESOS_TASK_ID", new["id"]), "replacement has no process"
    assert not procs_with_env("MESOS_TASK_ID", old["id"]), "old task still has processes"


def _states_of(events, task_id):
    return [d.get("taskStatus") for t, d in events.snapshot()
            if t == "status_update_event" and d.get("taskId") == task_id]


def test_events_follow_every_transition(cluster, apps, events):
    app_id = apps.new_id("events")
    apps.create(app_def(app_id, instances=1))
    task = wait_running(cluster, app_id, 1)[0]
    events.wait_for(lambda t, d: t == "api_post_event" and
                    (d.get("appDefinition") or {}).get("id") == app_id, 10,
                    what="api_post_event for %s" % app_id)
    events.wait_for(lambda t, d: t == "deployment_success", 20, what="deployment_success")

    r = cluster.api.delete(app_path(app_id))
    assert r.status == 200 and r.json.get("deploymentId"), r
    events.wait_for(lambda t, d: t == "status_update_event" and d.get("taskId") == task["id"]
                    and d.get("taskStatus") == "TASK_KILLED", 30,
                    what="TASK_KILLED for %s" % task["id"])
    events.wait_for(lambda t, d: t == "app_terminated_event" and d.get("appId") == app_id,
                    20, what="app_terminated_event")

    states = _states_of(events, task["id"])
    # Every transition, in order: (STAGING) STARTING RUNNING (KILLING) KILLED.
    expected = ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING",
                "TASK_KILLED"]
    assert "TASK_STARTING" in states and "TASK_RUNNING" in states, states
    assert [s for s in expected if s in states] == [s for s in states if s in expected] \
        and len(set(states)) == len(states), "out of order or repeated: %s" % states
    assert set(states) <= set(expected), states
    ev = [d for t, d in events.snapshot() if t == "status_update_event"
          and d.get("taskId") == task["id"] and d.get("taskStatus") == "TASK_RUNNING"][0]
    for field in ("appId", "host", "ports", "slaveId", "timestamp", "version"):
        assert field in ev, "status_update_event lacks %s: %s" % (field, ev)
    assert ev["appId"] == app_id
    wait_until(lambda: cluster.api.get(app_path(app_id)).status == 404, 20,
               what="app gone after delete")


def test_memory_hog_fails_with_memory_reason(cluster, apps, events):
    app_id = apps.new_id("hog")
    # tail keeps the whole newline-free 'line' in memory: ~300 MiB against a 32 MiB limit.
    apps.create(app_def(app_id, cmd="head -c 300M /dev/zero | tail", mem=32,
                        instances=1))

    _, ev = events.wait_for(lambda t, d: t == "status_update_event"
                            and d.get("appId") == app_id
                            and d.get("taskStatus") == "TASK_FAILED", 60,
                            what="TASK_FAILED for the memory hog")
    assert "memory" in (ev.get("message") or "").lower(), ev
    r = cluster.api.delete(app_path(app_id) + "?force=true")
    assert r.status == 200, r


def test_task_cannot_see_other_tasks(cluster, apps):
    other_id = apps.new_id("victim")
    apps.create(app_def(other_id, cmd="sleep 3601", instances=2))
    victims = wait_running(cluster, other_id, 2)

    spy_id = apps.new_id("spy")
    apps.create(app_def(spy_id, cmd='for p in /proc/[0-9]*; do '
                        'echo "PID ${p#/proc/} $(tr "\\0" " " < $p/cmdline)"; done; '
                        'echo SPY-DONE; sleep 3600', instances=1))
    spy = wait_running(cluster, spy_id, 1)[0]
    out = cluster.agent_by_host(spy["host"]).sandbox_file(spy["id"])
    text = wait_until(lambda: os.path.exists(out) and "SPY-DONE" in open(out).read()
                      and open(out).read(), 15, what="the spy's process list")
    lines = [l for l in text.splitlines() if l.startswith("PID ")]
    pids = {int(l.split()[1]) for l in lines}
    assert lines, text
    assert "sleep 3601" not in text, "spy sees another task's process:\n" + text
    assert "pacer-agent" not in text and "pacer-master" not in text, text
    # Its own pid namespace: small pids only, far fewer than the host has.
    assert len(pids) < 10 and min(pids) == 1, text
    for v in victims:
        assert procs_with_env("MESOS_TASK_ID", v["id"]), "victim task not running"


SENDER = r"""
import os, socket, threading, time
port = int(os.environ["PORT0"])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
got = [0]
def sink():
    c, _ = srv.accept()
    while True:
        b = c.recv(65536)
        if not b:
            break
        got[0] += len(b)
t = threading.Thread(target=sink)
t.start()
s = socket.create_connection(("127.0.0.1", port))
chunk = b"x" * 10000
for _ in range(120):
    s.sendall(chunk)
s.close()
t.join()
print("SENT", got[0], flush=True)
time.sleep(3600)
"""


def test_byte_counters_rise_by_what_a_task_sent(cluster, apps):
    app_id = apps.new_id("bytes")
    apps.create(app_def(app_id, cmd="exec python3 -c '%s'" % SENDER.replace("'", "'\"'\"'"),
                        instances=1, mem=64))
    task = wait_running(cluster, app_id, 1)[0]
    out = cluster.agent_by_host(task["host"]).sandbox_file(task["id"])
    wait_until(lambda: os.path.exists(out) and "SENT 1200000" in open(out).read(), 20,
               what="the task to send 1.2 MB")

    def counted():
        for t in cluster.api.get("/v2/tasks").json["tasks"]:
            if t["id"] == task["id"]:
                st = t.get("stats") or {}
                if st.get("tx_bytes", 0) >= 1_200_000 and st.get("rx_bytes", 0) >= 1_200_000:
                    return st
        return None
    stats = wait_until(counted, 30, what="stats.tx_bytes/rx_bytes >= 1.2 MB in /v2/tasks")
    assert stats["tx_packets"] > 0 and stats["rx_packets"] > 0, stats

    r = cluster.pacerctl("--json", "tasks", "list", "--app", app_id)
    assert r.returncode == 0, r.stderr
    import json
    mine = [t for t in json.loads(r.stdout)["tasks"] if t["id"] == task["id"]]
    assert mine and mine[0]["stats"]["tx_bytes"] >= 1_200_000, mine
    r = cluster.pacerctl("tasks", "list", "--app", app_id)
    assert r.returncode == 0 and task["id"] in r.stdout, r.stdout + r.stderr
    assert "TX_BYTES" in r.stdout.splitlines()[0]
    assert all(pid_alive(p) for p in procs_with_env("MESOS_TASK_ID", task["id"]))
    assert tasks_of(cluster, app_id)
