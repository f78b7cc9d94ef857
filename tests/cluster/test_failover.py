"""test_failover.py - failures of agents and of the master, each on a private cluster:
agent kill -9 and restart, an agent gone for good, a master restart."""

import os
import signal

from cluster import (app_def, app_path, cmdline, holds_for, live_tasks, pid_alive,
                     procs_with_env, tasks_of, wait_running, wait_until)


def _task_pids(task_id):
    return procs_with_env("MESOS_TASK_ID", task_id)


def _app_task_ids_on_host(app_id):
    """Distinct task ids of processes that carry MARATHON_APP_ID=app_id (no matter which
    agent started them): what really runs."""
    ids = set()
    for p in procs_with_env("MARATHON_APP_ID", app_id):
        try:
            with open("/proc/%d/environ" % p, "rb") as f:
                for kv in f.read().split(b"\0"):
                    if kv.startswith(b"MESOS_TASK_ID="):
                        ids.add(kv.split(b"=", 1)[1].decode())
        except OSError:
            pass
    return ids


def _agent_state_tasks(agent):
    r = agent.api.get("/v1/state", timeout=3)
    if r.status != 200:
        return None
    return {(t.get("task_id") or t.get("id")): t.get("state") for t in r.json.get("tasks", [])}


def test_agent_kill9_and_restart_keeps_tasks(make_cluster, apps):
    c = make_cluster(agents=2, agent_timeout=10)
    app_id = apps.new_id("survive")
    apps.create(app_def(app_id, instances=4), cluster=c)
    tasks = wait_running(c, app_id, 4)
    by_host = {}
    for t in tasks:
        by_host.setdefault(t["host"], []).append(t)
    host = max(by_host, key=lambda h: len(by_host[h]))
    agent = c.agent_by_host(host)
    mine = {t["id"]: _task_pids(t["id"]) for t in by_host[host]}
    assert all(mine.values()), "tasks without processes: %s" % mine
    old_agent_id = agent.agent_id

    agent.kill9()
    for tid, pids in mine.items():
        assert all(pid_alive(p) for p in pids), "task %s died with its agent" % tid
    agent.start()
    assert agent.agent_id == old_agent_id, "the agent id changed across a restart"

    wait_until(lambda: (_agent_state_tasks(agent) or {}).keys() >= mine.keys(), 20,
               what="restarted agent to list its tasks in /v1/state")
    c.wait_agents_registered([agent])
    want = {t["id"] for t in tasks}

    def same():
        live = live_tasks(c, app_id)
        return ({t["id"] for t in live} == want and len(live) == 4
                and all(t["state"] == "TASK_RUNNING" for t in live)
                and _app_task_ids_on_host(app_id) == want
                and all(_task_pids(tid) == pids for tid, pids in mine.items()))
    wait_until(same, 20, what="tasks unchanged after the agent restart")
    # Several heartbeats later nothing was relaunched, killed or doubled.
    holds_for(same, 5, what="tasks unchanged (same ids, same pids, no extra tasks)")
    st = _agent_state_tasks(agent)
    assert all(st[tid] == "TASK_RUNNING" for tid in mine), st


def test_task_that_ended_while_agent_was_down_is_reported(make_cluster, apps):
    c = make_cluster(agents=1, agent_timeout=10)
    ev = c.events()
    app_id = apps.new_id("downexit")
    apps.create(app_def(app_id, cmd="sleep 3600", instances=1), cluster=c)
    task = wait_running(c, app_id, 1)[0]
    agent = c.agents[0]
    agent.kill9()
    sleeps = [p for p in _task_pids(task["id"]) if cmdline(p).startswith("sleep")]
    assert sleeps, "no sleep process for %s" % task["id"]
    os.kill(sleeps[0], signal.SIGKILL)
    agent.start()
    _, d = ev.wait_for(lambda t, d: t == "status_update_event" and d.get("taskId") == task["id"]
                       and d.get("taskStatus") in ("TASK_FAILED", "TASK_KILLED",
                                                   "TASK_LOST"), 30,
                       what="terminal update for the task that died while the agent was down")
    assert d["taskStatus"] == "TASK_FAILED", d
    new = wait_until(lambda: [t for t in live_tasks(c, app_id)
                              if t["id"] != task["id"] and t["state"] == "TASK_RUNNING"], 40,
                     what="a replacement task")
    assert len(new) == 1


def test_lost_agent_tasks_are_replaced_after_timeout(make_cluster, apps):
    c = make_cluster(agents=3, agent_timeout=3)
    ev = c.events()
    app_id = apps.new_id("lost")
    apps.create(app_def(app_id, instances=3), cluster=c)
    tasks = wait_running(c, app_id, 3)
    victim = c.agent_by_host(tasks[0]["host"])
    lost_ids = {t["id"] for t in tasks if c.agent_by_host(t["host"]) is victim}

    victim.kill_everything()

    for tid in lost_ids:
        ev.wait_for(lambda t, d: t == "status_update_event" and d.get("taskId") == tid
                    and d.get("taskStatus") in ("TASK_LOST", "TASK_UNREACHABLE", "TASK_GONE"),
                    3 + 30, what="TASK_LOST/UNREACHABLE for %s" % tid)

    # Marathon keeps unreachable tasks listed (state TASK_UNREACHABLE) next to their
    # replacements; what must hold is: 3 running, none of them on the dead agent.
    def replaced():
        ts = tasks_of(c, app_id)
        running = [t for t in ts if t["state"] == "TASK_RUNNING"]
        others = [t for t in ts if t["state"] != "TASK_RUNNING"]
        ok = (len(running) == 3 and not lost_ids & {t["id"] for t in running}
              and all(c.agent_by_host(t["host"]) is not victim for t in running)
              and all(t["id"] in lost_ids for t in others))
        return running if ok else None
    running = wait_until(replaced, 40, what="3 running tasks on the surviving agents")
    for t in running:
        assert _task_pids(t["id"]), "replacement %s has no process" % t["id"]
    r = c.api.get("/v1/agents")
    if r.status == 200:
        mine = [a for a in r.json["agents"] if a["id"] == victim.agent_id]
        assert not mine or mine[0].get("active") is False, mine

    # Deleting the app forgets its unreachable tasks too.
    assert c.api.delete(app_path(app_id)).status == 200

    def left():
        return [(t["id"], t["state"]) for t in c.api.get("/v2/tasks").json["tasks"]
                if t["appId"] == app_id]
    try:
        wait_until(lambda: not left(), 20, what="tasks of the deleted app to go")
    except AssertionError:
        raise AssertionError("GET /v2/tasks still lists tasks of the deleted app %s: %s"
                             % (app_id, left()))


def _without_stats(app):
    """The app as GET /v2/apps/{id} shows it, minus the byte counters (they grow)."""
    app = dict(app)
    app["tasks"] = sorted(({k: v for k, v in t.items() if k != "stats"}
                           for t in app.get("tasks", [])), key=lambda t: t["id"])
    return app


def _diff(before, after, path=""):
    """Paths whose values differ, with both values."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for k in sorted(set(before) | set(after)):
            out += _diff(before.get(k), after.get(k), "%s/%s" % (path, k))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after)):
            out += _diff(b, a, "%s[%d]" % (path, i))
        return out
    return [] if before == after else ["%s: %r -> %r" % (path or "/", before, after)]


def test_master_restart_keeps_apps_and_tasks(make_cluster, apps):
    c = make_cluster(agents=2, agent_timeout=10)
    a1, a2 = apps.new_id("keep-a"), apps.new_id("keep-b")
    apps.create(app_def(a1, instances=3, env={"GREETING": "hi"},
                        labels={"team": "t"}), cluster=c)
    apps.create(app_def(a2, cmd="sleep 3602", instances=1), cluster=c)
    tasks = wait_running(c, a1, 3) + wait_running(c, a2, 1)

    def settled(app_id, n):
        app = c.api.get(app_path(app_id)).json["app"]
        return app if app["tasksRunning"] == n and not app["deployments"] else None
    before = {a: wait_until(lambda: settled(a, n), 20, what="%s settled" % a)
              for a, n in ((a1, 3), (a2, 1))}
    before_list = sorted(x["id"] for x in c.api.get("/v2/apps").json["apps"])
    pids = {t["id"]: _task_pids(t["id"]) for t in tasks}
    assert all(pids.values()), pids

    c.stop_master(signal.SIGKILL)
    c.start_master()
    c.wait_agents_registered()

    for a, n in ((a1, 3), (a2, 1)):
        after = wait_until(lambda: settled(a, n), 30, what="%s settled after restart" % a)
        diff = _diff(_without_stats(before[a]), _without_stats(after))
        assert not diff, "app %s changed across a master restart:\n  %s" % (
            a, "\n  ".join(diff))
    assert sorted(x["id"] for x in c.api.get("/v2/apps").json["apps"]) == before_list

    want = {t["id"] for t in tasks}

    def untouched():
        live = live_tasks(c, a1) + live_tasks(c, a2)
        return ({t["id"] for t in live} == want and len(live) == 4
                and all(t["state"] == "TASK_RUNNING" for t in live)
                and all(_task_pids(tid) == p for tid, p in pids.items()))
    wait_until(untouched, 20, what="same tasks after the master restart")
    holds_for(untouched, 5, what="tasks untouched (same ids and pids) after the restart")
