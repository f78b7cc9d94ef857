"""test_marathon_health.py - Marathon healthChecks run by the agents: for HTTP, TCP and
COMMAND, a passing check shows healthCheckResults alive=true and tasksHealthy=instances; a
failing one gets its task killed (unhealthy_task_kill_event, TASK_KILLED) and replaced, with
tasksUnhealthy reported meanwhile; maxConsecutiveFailures 0 keeps an unhealthy task; checks
resume after an agent's kill -9 and the health survives a master restart."""

import os
import subprocess
import threading
import time

import pytest

from cluster import app_def, app_path, holds_for, live_tasks, wait_running, wait_until

# Passing checks: failures while the server starts are inside the grace period, so none
# is counted (lastFailure stays null).
GRACE = {"gracePeriodSeconds": 20}
# A task's web server: python3's, serving the sandbox (GET / -> 200, other paths -> 404).
HTTP_SERVER = "exec python3 -m http.server $PORT0"
# Ignoring SIGTERM keeps a killed task in TASK_KILLING for its kill grace period, long
# enough to see it counted in tasksUnhealthy.
STUBBORN = "trap '' TERM; "


def check(**kw):
    hc = {"gracePeriodSeconds": 0, "intervalSeconds": 1, "timeoutSeconds": 2,
          "maxConsecutiveFailures": 2, "delaySeconds": 0}
    hc.update(kw)
    return hc


def health_app(app_id, cmd, hc, instances=1, **kw):
    return app_def(app_id, cmd=cmd, instances=instances, mem=64, healthChecks=[hc], **kw)


def app_json(c, app_id):
    r = c.api.get(app_path(app_id))
    assert r.status == 200, r
    return r.json["app"]


def healthy_tasks(c, app_id):
    return [t for t in live_tasks(c, app_id) if t["state"] == "TASK_RUNNING" and
            t.get("healthCheckResults") and all(h["alive"] for h in t["healthCheckResults"])]


def wait_healthy(c, app_id, n, timeout=40):
    def ready():
        app = app_json(c, app_id)
        ts = healthy_tasks(c, app_id)
        return ts if len(ts) == n and app["tasksHealthy"] == n else None
    return wait_until(ready, timeout, what="%s: %d healthy tasks" % (app_id, n))


PASSING = {
    "HTTP": (HTTP_SERVER, check(protocol="HTTP", path="/", portIndex=0, **GRACE)),
    "TCP": (HTTP_SERVER, check(protocol="TCP", portIndex=0, **GRACE)),
    "MESOS_HTTP": (HTTP_SERVER, check(protocol="MESOS_HTTP", path="/", **GRACE)),
    # /tmp is the task's private tmpfs: the check sees the file only inside its container.
    "COMMAND": ("touch /tmp/ready && exec sleep 3600",
                check(protocol="COMMAND", command={"value": "test -f /tmp/ready && "
                                                   "test \"$MARATHON_APP_ID\" != ''"},
                      **GRACE)),
}


@pytest.mark.parametrize("proto", sorted(PASSING))
def test_passing_check_is_healthy(cluster, apps, proto):
    app_id = apps.new_id("ok-" + proto.lower().replace("_", "-"))
    cmd, hc = PASSING[proto]
    apps.create(health_app(app_id, cmd, hc, instances=2))
    ts = wait_healthy(cluster, app_id, 2)
    for t in ts:
        (r,) = t["healthCheckResults"]
        assert r["alive"] is True and r["consecutiveFailures"] == 0, r
        assert r["taskId"] == t["id"] and r["instanceId"] == t["id"], r
        assert r["firstSuccess"] and r["lastSuccess"] and r["lastFailure"] is None, r
    app = app_json(cluster, app_id)
    assert app["tasksUnhealthy"] == 0 and app["tasksRunning"] == 2, app
    assert app["healthChecks"][0]["protocol"] == proto, app["healthChecks"]
    # Healthy tasks stay: nothing is killed or replaced.
    ids = {t["id"] for t in ts}
    holds_for(lambda: {t["id"] for t in healthy_tasks(cluster, app_id)} == ids, 3,
              what="healthy tasks are kept")


class UnhealthySampler:
    """Polls the app every 100 ms and remembers the largest tasksUnhealthy seen."""

    def __init__(self, c, app_id):
        self.c, self.app_id, self.max_unhealthy = c, app_id, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            r = self.c.api.get(app_path(self.app_id))
            if r.status == 200:
                self.max_unhealthy = max(self.max_unhealthy, r.json["app"]["tasksUnhealthy"])
            time.sleep(0.1)

    def stop(self):
        self._stop.set()
        self._t.join(10)


FAILING = {
    # a path that 404s
    "HTTP": (STUBBORN + "python3 -m http.server $PORT0",
             check(protocol="HTTP", path="/no-such-page")),
    # a port nobody listens on: the task's second port
    "TCP": (STUBBORN + "exec sleep 3600", check(protocol="TCP", portIndex=1)),
    "COMMAND": (STUBBORN + "exec sleep 3600",
                check(protocol="COMMAND", command={"value": "false"})),
}


@pytest.mark.parametrize("proto", sorted(FAILING))
def test_failing_check_kills_and_replaces(cluster, apps, events, proto):
    app_id = apps.new_id("bad-" + proto.lower())
    cmd, hc = FAILING[proto]
    sampler = UnhealthySampler(cluster, app_id)
    try:
        apps.create(health_app(app_id, cmd, hc, taskKillGracePeriodSeconds=3,
                               portDefinitions=[{"port": 0}, {"port": 0}]))
        _, kill = events.wait_for(lambda t, d: t == "unhealthy_task_kill_event" and
                               d.get("appId") == app_id, 40, what="unhealthy_task_kill_event")
        old = kill["taskId"]
        assert "health check failed" in kill["reason"], kill
        _, changed = events.wait_for(lambda t, d: t == "health_status_changed_event" and
                                  d.get("taskId") == old, 5, what="health_status_changed_event")
        assert changed["alive"] is False, changed
        events.wait_for(lambda t, d: t == "status_update_event" and d.get("taskId") == old and
                        d.get("taskStatus") == "TASK_KILLED", 20, what="the old task killed")
        # A replacement with a new id.
        wait_until(lambda: [t for t in live_tasks(cluster, app_id) if t["id"] != old], 30,
                   what="a replacement task")
    finally:
        sampler.stop()
    assert sampler.max_unhealthy >= 1, "tasksUnhealthy never reported"


def test_zero_max_failures_keeps_unhealthy_task(cluster, apps, events):
    app_id = apps.new_id("bad-kept")
    apps.create(health_app(app_id, "exec sleep 3600",
                           check(protocol="COMMAND", command={"value": "exit 3"},
                                 maxConsecutiveFailures=0)))

    def unhealthy():
        app = app_json(cluster, app_id)
        ts = live_tasks(cluster, app_id)
        return ts if app["tasksUnhealthy"] == 1 and app["tasksHealthy"] == 0 and \
            ts and ts[0].get("healthCheckResults") else None
    (t,) = wait_until(unhealthy, 30, what="an unhealthy task")
    (r,) = t["healthCheckResults"]
    assert r["alive"] is False and r["consecutiveFailures"] >= 1, r
    assert r["lastFailure"] and r["firstSuccess"] is None, r
    assert "status 3" in r["lastFailureCause"], r
    holds_for(lambda: [x["id"] for x in live_tasks(cluster, app_id)] == [t["id"]], 3,
              what="the unhealthy task is kept")
    assert not [d for ty, d in events.snapshot() if ty == "unhealthy_task_kill_event" and
                d.get("appId") == app_id]


def test_bad_health_checks_are_422(cluster):
    r = cluster.api.post("/v2/apps", app_def("/health-bad", healthChecks=[
        {"protocol": "HTTP", "portIndex": 3}]))
    assert r.status == 422, r
    assert {"path": "/healthChecks(0)/portIndex",
            "errors": ["Health check port indices must address an element of the ports array "
                       "or container port mappings."]} in r.json["details"], r.json


def test_checks_resume_after_agent_restart_and_health_survives_master_restart(make_cluster,
                                                                              apps):
    c = make_cluster(agents=1, agent_timeout=10)
    app_id = apps.new_id("restarts")
    # Healthy while the sandbox has no file named "sick".
    apps.create(health_app(app_id, "exec sleep 3600",
                           check(protocol="COMMAND", command={"value": "test ! -e sick"})),
                cluster=c)
    (t,) = wait_healthy(c, app_id, 1)

    c.stop_master()
    c.start_master()
    (again,) = wait_healthy(c, app_id, 1)
    assert again["id"] == t["id"]

    agent = c.agents[0]
    agent.kill9()
    agent.start()
    wait_until(lambda: "health_checks_started task_id=%s" % t["id"] in
               c.tail(agent.log_path, 400), 30, what="checks of the recovered task")
    with open(agent.sandbox_file(t["id"], "sick"), "w"):
        pass
    wait_until(lambda: [x for x in live_tasks(c, app_id) if x["id"] != t["id"]], 40,
               what="the unhealthy recovered task replaced")
    assert os.path.exists(agent.sandbox_file(t["id"], "sick"))


def test_killing_a_task_during_its_command_check_leaves_the_agent_running(make_cluster, apps):
    """The COMMAND check's leader is a fork of the agent in the task's cgroup: the kill's
    SIGTERM reaches it. It must die of it, not run the agent's own SIGTERM handler (which
    stopped the agent: its tasks went unreachable and nothing launched there any more)."""
    c = make_cluster(agents=1, agent_timeout=10)
    app_id = apps.new_id("kill-mid-check")
    marker = "sleep 47.25"          # the check's command, found on the host while it runs
    apps.create(health_app(app_id, "exec sleep 3600",
                           check(protocol="COMMAND", command={"value": "exec " + marker},
                                 timeoutSeconds=60, gracePeriodSeconds=120)),
                cluster=c)
    wait_running(c, app_id, 1)
    wait_until(lambda: subprocess.run(["pgrep", "-f", "^" + marker + "$"],
                                      capture_output=True).returncode == 0,
               30, what="the COMMAND check running")
    r = c.api.delete(app_path(app_id) + "?force=true")
    assert r.status == 200, r
    wait_until(lambda: c.api.get(app_path(app_id)).status == 404, 30,
               what="the app and its task gone")
    agent = c.agents[0]
    holds_for(agent.running, 3, what="the agent still running after the kill")
    after = apps.new_id("after-kill")
    apps.create(app_def(after), cluster=c)
    wait_running(c, after, 1)
