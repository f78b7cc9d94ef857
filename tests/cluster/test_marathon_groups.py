"""test_marathon_groups.py - Marathon groups on a live cluster: a group with nested apps
and groups shown as a tree, dependency order (an app's first task only once the apps it
depends on are ready; on delete, dependents gone before their dependencies are killed) in
one deployment whose steps advance, scaleBy, replacing a group's apps, locks and force,
rollback of a group deployment, 404/409/422, and groups surviving a master restart."""

import threading
import time
import uuid

import pytest

from cluster import TERMINAL, app_def, tasks_of, wait_running, wait_until


def gpath(gid):
    return "/v2/groups" + gid


def deployment(c, dep_id):
    for d in c.api.get("/v2/deployments").json:
        if d["id"] == dep_id:
            return d
    return None


def live(c):
    r = c.api.get("/v2/tasks")
    assert r.status == 200, r
    return [t for t in r.json["tasks"] if t.get("state") not in TERMINAL]


class Groups:
    """Makes unique group ids and deletes the groups (force) after the test."""

    def __init__(self):
        self.made = []
        self.tag = uuid.uuid4().hex[:6]

    def new_id(self, name):
        return "/g%s-%s" % (self.tag, name)

    def track(self, c, gid):
        self.made.append((c, gid))

    def cleanup(self):
        for c, gid in self.made:
            if c.master_proc is None or c.master_proc.poll() is not None:
                continue
            c.api.delete(gpath(gid) + "?force=true")
            wait_until(lambda: not [t for t in live(c) if t["appId"].startswith(gid + "/")],
                       30, what="tasks of %s to be gone" % gid)


@pytest.fixture
def groups():
    g = Groups()
    yield g
    g.cleanup()


def small(app_id, **kw):
    return app_def(app_id, **kw)


def test_group_tree_scale_replace_and_errors(cluster, groups):
    c = cluster
    gid = groups.new_id("prod")
    body = {"id": gid,
            "apps": [small("web", instances=1)],
            "groups": [{"id": "db", "apps": [small("pg", instances=1)]},
                       {"id": "%s/empty" % gid}]}
    r = c.api.post("/v2/groups", body)
    groups.track(c, gid)
    assert r.status == 201, r
    assert r.json["deploymentId"] and r.json["version"], r.json
    assert r.headers.get("Location", "").endswith(gpath(gid)), r.headers
    wait_running(c, gid + "/web", 1)
    wait_running(c, gid + "/db/pg", 1)

    g = c.api.get(gpath(gid)).json
    assert g["id"] == gid and g["pods"] == [] and g["dependencies"] == [], g
    assert [a["id"] for a in g["apps"]] == [gid + "/web"]
    assert [s["id"] for s in g["groups"]] == [gid + "/db", gid + "/empty"]
    assert [a["id"] for a in g["groups"][0]["apps"]] == [gid + "/db/pg"]
    assert g["groups"][1]["apps"] == [] and g["groups"][1]["groups"] == []
    # The root lists the group; embed picks the fields.
    root = c.api.get("/v2/groups").json
    assert root["id"] == "/" and gid in [s["id"] for s in root["groups"]], root
    only = c.api.get(gpath(gid) + "?embed=group.groups").json
    assert "apps" not in only and [s["id"] for s in only["groups"]][0] == gid + "/db"
    # Groups implied by /v2/apps ids show up too.
    r = c.api.get(gpath(gid + "/db"))
    assert r.status == 200 and r.json["apps"][0]["id"] == gid + "/db/pg", r

    # 409, 404, 422.
    r = c.api.post("/v2/groups", {"id": gid})
    assert r.status == 409 and "already created" in r.json["message"], r
    r = c.api.get(gpath(gid + "/nope"))
    assert r.status == 404 and r.json["message"] == "Group '%s/nope' does not exist" % gid, r
    assert c.api.delete(gpath(gid + "/nope")).status == 404
    r = c.api.post("/v2/groups", {"id": gid + "-bad", "apps": [small("/elsewhere/x")]})
    assert r.status == 422, r
    assert r.json["details"][0]["path"] == "/apps(0)/id", r.json
    assert "not child of" in r.json["details"][0]["errors"][0]
    r = c.api.post("/v2/groups", {"id": gid + "-bad", "apps": [small("x", cpus=-1)]})
    assert r.status == 422 and r.json["details"][0]["path"] == "/apps(0)/cpus", r
    r = c.api.post("/v2/groups", {"id": gid + "-cyc", "apps": [
        small("a", dependencies=["b"]), small("b", dependencies=["a"])]})
    assert r.status == 422 and "cyclic" in r.json["details"][0]["errors"][0], r
    assert c.api.get(gpath(gid + "-cyc")).status == 404
    # An app may not close a cycle either.
    r = c.api.put("/v2/apps%s/db/pg" % gid, {"dependencies": ["../web"]})
    assert r.status == 200, r
    r = c.api.put("/v2/apps%s/web" % gid, {"dependencies": ["db/pg"]})
    assert r.status == 422 and r.json["details"][0]["path"] == "/dependencies", r

    # scaleBy: every app of the group, one deployment.
    wait_until(lambda: not c.api.get("/v2/deployments").json, 30, what="no deployments")
    r = c.api.put(gpath(gid), {"scaleBy": 2})
    assert r.status == 200, r
    d = deployment(c, r.json["deploymentId"])
    assert d is None or sorted(d["affectedApps"]) == [gid + "/db/pg", gid + "/web"], d
    wait_running(c, gid + "/web", 2)
    wait_running(c, gid + "/db/pg", 2)
    # A factor that would take an app past 10,000 instances is refused, naming the app;
    # nothing changes (an app too big for any agent: nothing of it runs meanwhile).
    big = groups.new_id("big")
    groups.track(c, big)
    r = c.api.post("/v2/groups", {"id": big, "apps": [small("app", instances=11, cpus=512)]})
    assert r.status == 201, r
    r = c.api.put(gpath(big) + "?force=true", {"scaleBy": 1000})
    assert r.status == 422 and r.json["details"][0]["path"] == "/scaleBy", r
    assert big + "/app 11000 instances, more than 10000" in r.json["details"][0]["errors"][0], r
    assert c.api.get("/v2/apps%s/app" % big).json["app"]["instances"] == 11
    assert c.api.delete(gpath(big) + "?force=true").status == 200

    # PUT with "apps": the group's apps are replaced (web back to 1, a new one); its
    # subgroups, not listed, stay.
    r = c.api.put(gpath(gid), {"apps": [small("web", instances=1), small("new")]})
    assert r.status == 200, r
    wait_running(c, gid + "/web", 1)
    wait_running(c, gid + "/new", 1)
    assert len(wait_running(c, gid + "/db/pg", 2)) == 2
    # ...and with "groups": listed ones are kept, the rest removed (apps stopped).
    r = c.api.put(gpath(gid), {"groups": [{"id": "db", "apps": [small("pg", instances=2)]}]})
    assert r.status == 200, r
    wait_until(lambda: c.api.get(gpath(gid + "/empty")).status == 404, 20,
               what="the empty group to be removed")
    assert [a["id"] for a in c.api.get(gpath(gid)).json["apps"]] == [gid + "/new", gid + "/web"]

    # DELETE: one deployment for all the apps; the group is gone.
    r = c.api.delete(gpath(gid))
    assert r.status == 200 and r.json["deploymentId"], r
    wait_until(lambda: c.api.get(gpath(gid)).status == 404, 30, what="the group to go")
    wait_until(lambda: not [t for t in live(c) if t["appId"].startswith(gid + "/")], 30,
               what="the group's tasks to go")


def test_locked_group_force_and_rollback(cluster, groups):
    c = cluster
    gid = groups.new_id("lock")
    stuck = small("stuck", constraints=[["hostname", "LIKE", "nowhere"]])
    r = c.api.post("/v2/groups", {"id": gid, "apps": [small("ok"), stuck]})
    groups.track(c, gid)
    assert r.status == 201, r
    dep = r.json["deploymentId"]
    wait_running(c, gid + "/ok", 1)
    assert deployment(c, dep) is not None
    # Every app of a running group deployment is locked, through either API.
    r = c.api.put(gpath(gid), {"scaleBy": 2})
    assert r.status == 409 and r.json["deployments"] == [{"id": dep}], r
    r = c.api.put("/v2/apps%s/ok" % gid, {"instances": 2})
    assert r.status == 409, r
    # Rollback of the group deployment: the apps it created are deleted (the group,
    # made explicitly, stays).
    r = c.api.delete("/v2/deployments/%s" % dep)
    assert r.status == 200, r
    assert deployment(c, dep) is None
    wait_until(lambda: c.api.get(gpath(gid)).json["apps"] == [], 30,
               what="the rolled-back group's apps to go")
    wait_until(lambda: not [t for t in live(c) if t["appId"].startswith(gid + "/")], 30,
               what="the rolled-back group's tasks to go")
    # force=true cancels the running deployment.
    r = c.api.put(gpath(gid), {"apps": [stuck]})
    assert r.status == 200, r
    dep = r.json["deploymentId"]
    r = c.api.put(gpath(gid) + "?force=true", {"apps": [small("stuck", instances=0)]})
    assert r.status == 200, r
    assert deployment(c, dep) is None


class OrderSampler:
    """After every event on /v2/events, one GET /v2/tasks (one consistent view): records
    every moment a task of `dependent` exists while `dependency` is not ready."""

    def __init__(self, c, ev, dependency, n, dependent):
        self.c, self.ev = c, ev
        self.dependency, self.n, self.dependent = dependency, n, dependent
        self.samples, self.violations, self.saw_dependent = 0, [], False
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
            ts = live(self.c)
            dep = [t for t in ts if t["appId"] == self.dependency]
            ready = len([t for t in dep if t["state"] == "TASK_RUNNING"]) >= self.n
            mine = [t for t in ts if t["appId"] == self.dependent]
            self.samples += 1
            self.saw_dependent = self.saw_dependent or bool(mine)
            if mine and not ready:
                self.violations.append([(t["appId"], t["state"]) for t in ts])

    def stop(self):
        self._stop.set()
        self._thread.join(10)


def test_dependencies_order_start_and_delete(cluster, groups, events):
    c = cluster
    gid = groups.new_id("deps")
    a, b = gid + "/a", gid + "/b"
    start = len(events.snapshot())
    sampler = OrderSampler(c, events, a, 3, b)
    try:
        r = c.api.post("/v2/groups", {"id": gid, "apps": [
            small("b", dependencies=["a"]), small("a", instances=3)]})
        groups.track(c, gid)
        assert r.status == 201, r
        dep = r.json["deploymentId"]
        d = deployment(c, dep)
        assert d is None or (d["totalSteps"] == 2 and d["currentStep"] == 1), d
        _, info = events.wait_for(lambda t, e: t == "deployment_info"
                                  and e["plan"]["id"] == dep, 10, what="deployment_info")
        plan = info["plan"]
        assert plan["steps"] == [{"actions": [{"action": "StartApplication", "app": a}]},
                                 {"actions": [{"action": "StartApplication", "app": b}]}], plan
        assert sorted(plan["affectedApps"]) == [a, b]
        events.wait_for(lambda t, e: t == "deployment_success" and e.get("id") == dep, 60,
                        what="deployment_success of the group")
        wait_running(c, b, 1)
    finally:
        sampler.stop()
    assert sampler.saw_dependent and sampler.samples >= 3, sampler.samples
    assert not sampler.violations, sampler.violations[:3]
    # The events in order: b's first status comes after a's third TASK_RUNNING, and the
    # deployment moved from step 1 (a) to step 2 (b).
    evs = events.snapshot()[start:]
    running_a, first_b = [], None
    for i, (t, e) in enumerate(evs):
        if t == "status_update_event" and e["appId"] == a and e["taskStatus"] == "TASK_RUNNING":
            running_a.append(i)
        if t == "status_update_event" and e["appId"] == b and first_b is None:
            first_b = i
    assert len(running_a) >= 3 and first_b is not None and first_b > running_a[2], \
        (running_a, first_b)
    infos = [e["currentStep"]["actions"] for t, e in evs
             if t == "deployment_info" and e["plan"]["id"] == dep]
    assert [x[0]["app"] for x in infos] == [a, b], infos
    steps_ok = [t for t, e in evs if t == "deployment_step_success" and e["plan"]["id"] == dep]
    assert len(steps_ok) == 2, steps_ok

    # DELETE: b (the dependent) is stopped, and gone, before a's tasks are killed.
    start = len(events.snapshot())
    a_tasks = {t["id"] for t in tasks_of(c, a)}
    b_tasks = {t["id"] for t in tasks_of(c, b)}
    r = c.api.delete(gpath(gid))
    assert r.status == 200, r
    d = deployment(c, r.json["deploymentId"])
    assert d is None or [s["actions"][0]["app"] for s in d["steps"]] == [b, a], d
    wait_until(lambda: c.api.get(gpath(gid)).status == 404, 40, what="the group to go")
    evs = [e for t, e in events.snapshot()[start:] if t == "status_update_event"]
    b_done = [i for i, e in enumerate(evs) if e["taskId"] in b_tasks
              and e["taskStatus"] in TERMINAL]
    a_any = [i for i, e in enumerate(evs) if e["taskId"] in a_tasks]
    assert len(b_done) == len(b_tasks) and a_any, (b_done, a_any)
    assert max(b_done) < min(a_any), [(e["appId"], e["taskStatus"]) for e in evs]


def test_groups_survive_master_restart(make_cluster, groups):
    c = make_cluster(agents=1)
    gid = groups.new_id("keep")
    r = c.api.post("/v2/groups", {"id": gid, "dependencies": ["/base"],
                                  "groups": [{"id": "empty"}],
                                  "apps": [small("w", instances=0, dependencies=["../x"])]})
    groups.track(c, gid)
    assert r.status == 201, r
    before = c.api.get(gpath(gid)).json
    c.stop_master()
    c.start_master()
    c.wait_agents_registered()
    g = c.api.get(gpath(gid)).json
    assert g["dependencies"] == ["/base"], g
    assert [s["id"] for s in g["groups"]] == [gid + "/empty"], g
    assert g["apps"][0]["dependencies"] == ["/x"], g
    assert g["version"] == before["version"]
