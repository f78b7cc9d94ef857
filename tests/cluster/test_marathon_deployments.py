"""test_marathon_deployments.py - deployments on a live cluster: a rolling upgrade that
keeps upgradeStrategy's bounds at every sampled moment, rollback of a stuck upgrade to
the old version's tasks, force-stop, 409 on a locked app, restoring a stored version, and
unreachable tasks replaced only after unreachableStrategy.inactiveAfterSeconds."""

import math
import threading
import time

from cluster import app_def, app_path, holds_for, tasks_of, wait_running, wait_until

COUNTED = {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"}


class BoundsSampler:
    """Samples the app's task list after every event on /v2/events (and at least every
    50 ms) and records each moment a bound is broken."""

    def __init__(self, c, ev, app_id, min_healthy, max_total, healthy=None):
        self.c, self.ev, self.app_id = c, ev, app_id
        self.min_healthy, self.max_total = min_healthy, max_total
        self.healthy = healthy or (lambda t: t["state"] == "TASK_RUNNING")
        self.samples, self.violations, self.max_seen, self.min_seen = 0, [], 0, 10 ** 6
        self.running_not_healthy = 0    # samples with a running task that is not healthy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        seen = 0
        while not self._stop.is_set():
            n = len(self.ev.snapshot())
            if n == seen:
                time.sleep(0.01)
            seen = n
            try:
                ts = tasks_of(self.c, self.app_id)
            except AssertionError:
                continue
            total = len([t for t in ts if t["state"] in COUNTED])
            healthy = len([t for t in ts if self.healthy(t)])
            running = len([t for t in ts if t["state"] == "TASK_RUNNING"])
            self.running_not_healthy += running > healthy
            self.samples += 1
            self.max_seen = max(self.max_seen, total)
            self.min_seen = min(self.min_seen, healthy)
            if total > self.max_total or healthy < self.min_healthy:
                self.violations.append((total, healthy, [(t["id"][-8:], t["state"], t.get("healthCheckResults"))
                                                         for t in ts]))

    def stop(self):
        self._stop.set()
        self._thread.join(10)


def _deployment_done(c, dep_id):
    return dep_id not in [d["id"] for d in c.api.get("/v2/deployments").json]


def test_rolling_upgrade_keeps_bounds(cluster, apps, events):
    app_id = apps.new_id("rolling")
    n, mh, mo = 4, 0.5, 0.25
    apps.create(app_def(app_id, instances=n,
                        upgradeStrategy={"minimumHealthCapacity": mh, "maximumOverCapacity": mo}))
    old = {t["id"] for t in wait_running(cluster, app_id, n)}
    wait_until(lambda: not cluster.api.get(app_path(app_id)).json["app"]["deployments"], 20,
               what="the start deployment to end")

    min_healthy, max_total = math.ceil(mh * n), int((1 + mo) * n)
    start = len(events.snapshot())
    sampler = BoundsSampler(cluster, events, app_id, min_healthy, max_total)
    try:
        r = cluster.api.put(app_path(app_id), {"cmd": "sleep 3601"})
        assert r.status == 200, r
        dep = r.json["deploymentId"]
        deps = cluster.api.get("/v2/deployments").json
        mine = [d for d in deps if d["id"] == dep]
        assert not mine or (mine[0]["affectedApps"] == [app_id] and
                            mine[0]["currentActions"][0]["action"] == "RestartApplication"), deps
        events.wait_for(lambda t, d: t == "deployment_success" and d.get("id") == dep, 90,
                        what="deployment_success of the upgrade")
    finally:
        sampler.stop()
    # Every event replayed: the task states right after each one (the master publishes
    # them in the order it applies them). STAGING is not announced, so this total is a
    # lower bound; the sampler's task lists hold the staged ones.
    states = {t: "TASK_RUNNING" for t in old}
    replay_min, replay_max = n, n
    for t, d in events.snapshot()[start:]:
        if t != "status_update_event" or d.get("appId") != app_id:
            continue
        states[d["taskId"]] = d["taskStatus"]
        healthy = len([s for s in states.values() if s == "TASK_RUNNING"])
        total = len([s for s in states.values() if s in COUNTED])
        replay_min, replay_max = min(replay_min, healthy), max(replay_max, total)
        assert healthy >= min_healthy, "after %s %s: %d running" % (d["taskId"], d["taskStatus"],
                                                                   healthy)
        assert total <= max_total, "after %s %s: %d tasks" % (d["taskId"], d["taskStatus"], total)
    assert not sampler.violations, sampler.violations[:5]
    assert sampler.samples >= 2, sampler.samples
    # The strategy was used, not merely respected: old tasks went before new ones ran.
    assert replay_min < n, replay_min
    new = wait_running(cluster, app_id, n)
    assert not old & {t["id"] for t in new}
    version = cluster.api.get(app_path(app_id)).json["app"]["versionInfo"]["lastConfigChangeAt"]
    assert {t["version"] for t in new} == {version}


def test_rollback_restores_old_tasks_and_locks(cluster, apps):
    app_id = apps.new_id("rollback")
    apps.create(app_def(app_id, cmd="sleep 3600", instances=2))
    old = {t["id"] for t in wait_running(cluster, app_id, 2)}
    wait_until(lambda: not cluster.api.get(app_path(app_id)).json["app"]["deployments"], 20,
               what="the start deployment to end")
    v1 = cluster.api.get(app_path(app_id)).json["app"]["versionInfo"]["lastConfigChangeAt"]

    # An upgrade that cannot be placed: it stays running, the app is locked.
    r = cluster.api.put(app_path(app_id), {"cmd": "sleep 3602",
                                           "constraints": [["hostname", "LIKE", "nowhere"]]})
    assert r.status == 200, r
    dep = r.json["deploymentId"]
    r = cluster.api.put(app_path(app_id), {"instances": 3})
    assert r.status == 409, r
    assert r.json["deployments"] == [{"id": dep}], r.json
    assert "locked" in r.json["message"]
    assert not _deployment_done(cluster, dep)

    # Rollback: a new deployment back to the old definition; the old tasks are kept.
    r = cluster.api.delete("/v2/deployments/%s" % dep)
    assert r.status == 200, r
    rb = r.json["deploymentId"]
    assert rb != dep and r.headers.get("Marathon-Deployment-Id") == rb
    wait_until(lambda: _deployment_done(cluster, rb), 20, what="the rollback to finish")
    app = cluster.api.get(app_path(app_id)).json["app"]
    assert app["cmd"] == "sleep 3600" and app["constraints"] == [], app
    assert app["versionInfo"]["lastConfigChangeAt"] == v1
    tasks = wait_running(cluster, app_id, 2)
    assert {t["id"] for t in tasks} == old
    assert {t["version"] for t in tasks} == {v1}


def test_force_stop_and_restore_version(cluster, apps):
    app_id = apps.new_id("forcestop")
    apps.create(app_def(app_id, cmd="sleep 3600", instances=1))
    old = {t["id"] for t in wait_running(cluster, app_id, 1)}
    wait_until(lambda: not cluster.api.get(app_path(app_id)).json["app"]["deployments"], 20,
               what="the start deployment to end")
    first = cluster.api.get(app_path(app_id)).json["app"]["version"]
    r = cluster.api.put(app_path(app_id), {"cmd": "sleep 3603",
                                           "constraints": [["rack", "CLUSTER", "nowhere"]]})
    dep = r.json["deploymentId"]
    # force=true on a locked app cancels the running deployment.
    r = cluster.api.put(app_path(app_id) + "?force=true", {"cmd": "sleep 3604",
                        "constraints": [["rack", "CLUSTER", "nowhere"]]})
    assert r.status == 200, r
    assert _deployment_done(cluster, dep)
    dep2 = r.json["deploymentId"]
    r = cluster.api.delete("/v2/deployments/%s?force=true" % dep2)
    assert r.status == 202, r
    assert _deployment_done(cluster, dep2)
    assert cluster.api.get(app_path(app_id)).json["app"]["cmd"] == "sleep 3604"

    versions = cluster.api.get(app_path(app_id) + "/versions").json["versions"]
    assert len(versions) == 3 and versions[-1] == first, versions
    r = cluster.api.get(app_path(app_id) + "/versions/" + first)
    assert r.status == 200 and r.json["cmd"] == "sleep 3600", r
    # PUT {"version": first} restores it, and its tasks are current again.
    r = cluster.api.put(app_path(app_id), {"version": first})
    assert r.status == 200, r
    wait_until(lambda: _deployment_done(cluster, r.json["deploymentId"]), 20,
               what="the restore to finish")
    assert cluster.api.get(app_path(app_id)).json["app"]["cmd"] == "sleep 3600"
    assert {t["id"] for t in wait_running(cluster, app_id, 1)} == old


def test_unreachable_replaced_after_inactive_after(make_cluster, apps):
    c = make_cluster(agents=2, agent_timeout=3)
    ev = c.events()
    app_id = apps.new_id("inactive")
    inactive = 10
    apps.create(app_def(app_id, instances=2,
                        unreachableStrategy={"inactiveAfterSeconds": inactive,
                                             "expungeAfterSeconds": 600}), cluster=c)
    tasks = wait_running(c, app_id, 2)
    victim = c.agent_by_host(tasks[0]["host"])
    lost_ids = {t["id"] for t in tasks if c.agent_by_host(t["host"]) is victim}

    victim.kill_everything()
    for tid in lost_ids:
        ev.wait_for(lambda t, d: t == "status_update_event" and d.get("taskId") == tid
                    and d.get("taskStatus") == "TASK_UNREACHABLE", 30,
                    what="TASK_UNREACHABLE for %s" % tid)
    t0 = time.monotonic()

    def not_replaced():
        ts = tasks_of(c, app_id)
        return len([t for t in ts if t["state"] != "TASK_UNREACHABLE"]) == 2 - len(lost_ids)
    holds_for(not_replaced, inactive - 2.5, what="no replacement before inactiveAfterSeconds")

    def replaced():
        ts = tasks_of(c, app_id)
        running = [t for t in ts if t["state"] == "TASK_RUNNING"]
        return len(running) == 2 and not lost_ids & {t["id"] for t in running}
    wait_until(replaced, 30, what="replacements after inactiveAfterSeconds")
    assert time.monotonic() - t0 >= inactive - 2.5
    # The unreachable tasks are still listed (expungeAfterSeconds is 600).
    assert lost_ids <= {t["id"] for t in tasks_of(c, app_id)}


def _passed_health_checks(t):
    return t["state"] == "TASK_RUNNING" and bool(t.get("healthCheckResults")) and \
        all(h["alive"] for h in t["healthCheckResults"])


def test_rolling_upgrade_with_health_checks_counts_healthy_tasks(cluster, apps, events):
    """With health checks, "healthy" in the bounds is a passed check, not TASK_RUNNING: a
    new task is healthy only 2 s after it starts (its check looks for a file it makes then),
    so an upgrade that counted running tasks would kill old ones too early."""
    app_id = apps.new_id("rolling-hc")
    n, mh, mo = 4, 0.5, 0.25
    hc = {"protocol": "COMMAND", "command": {"value": "test -f ready"}, "gracePeriodSeconds": 60,
          "intervalSeconds": 1, "timeoutSeconds": 2, "maxConsecutiveFailures": 3,
          "delaySeconds": 0}
    apps.create(app_def(app_id, cmd="sleep 2; touch ready; exec sleep 3600", instances=n,
                        healthChecks=[hc],
                        upgradeStrategy={"minimumHealthCapacity": mh, "maximumOverCapacity": mo}))
    wait_until(lambda: len([t for t in tasks_of(cluster, app_id)
                            if _passed_health_checks(t)]) == n, 40, what="4 healthy tasks")
    wait_until(lambda: not cluster.api.get(app_path(app_id)).json["app"]["deployments"], 20,
               what="the start deployment to end")
    old = {t["id"] for t in tasks_of(cluster, app_id)}

    min_healthy, max_total = math.ceil(mh * n), int((1 + mo) * n)
    sampler = BoundsSampler(cluster, events, app_id, min_healthy, max_total,
                            healthy=_passed_health_checks)
    try:
        r = cluster.api.put(app_path(app_id), {"cmd": "sleep 2; touch ready; exec sleep 3601"})
        assert r.status == 200, r
        dep = r.json["deploymentId"]
        events.wait_for(lambda t, d: t == "deployment_success" and d.get("id") == dep, 120,
                        what="deployment_success of the upgrade")
        # Done means healthy: every task is new and has passed its check.
        ts = tasks_of(cluster, app_id)
        assert len(ts) == n and all(_passed_health_checks(t) for t in ts), ts
        assert not old & {t["id"] for t in ts}
    finally:
        sampler.stop()
    assert not sampler.violations, sampler.violations[:5]
    assert sampler.samples >= 2, sampler.samples
    # New tasks did run before they were healthy, and the planner waited for them.
    assert sampler.running_not_healthy > 0, sampler.samples
    assert sampler.min_seen < n, sampler.min_seen
    app = cluster.api.get(app_path(app_id)).json["app"]
    assert app["tasksHealthy"] == n and app["tasksUnhealthy"] == 0, app
