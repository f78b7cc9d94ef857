"""test_marathon_constraints.py - Marathon placement constraints on the shared 3-agent
cluster (agents carry rack:a, rack:b, rack:c): each operator places where it must, an app
whose constraints cannot be met waits in /v2/queue and says why, bad constraints are 422."""

import collections

from cluster import app_def, app_path, live_tasks, wait_running, wait_until


def _racks(c, tasks):
    return [c.agent_by_host(t["host"]).rack for t in tasks]


def _queue_entry(c, app_id):
    r = c.api.get("/v2/queue")
    assert r.status == 200, r
    for e in r.json["queue"]:
        if e["app"]["id"] == app_id:
            return e
    return None


def test_unique_hostname_waits_in_queue_with_reason(cluster, apps):
    app_id = apps.new_id("unique")
    apps.create(app_def(app_id, instances=4, constraints=[["hostname", "UNIQUE"]]))
    running = wait_until(lambda: len([t for t in live_tasks(cluster, app_id)
                                      if t["state"] == "TASK_RUNNING"]) == 3
                         and live_tasks(cluster, app_id), 40, what="3 tasks running")
    assert len({t["host"] for t in running}) == 3, running

    def refused_for_constraint():
        e = _queue_entry(cluster, app_id)
        if not e or not e["lastUnusedOffers"]:
            return None
        return e
    e = wait_until(refused_for_constraint, 20, what="queue entry with an unused offer")
    assert e["count"] == 1, e
    assert e["delay"]["overdue"] is True and e["delay"]["timeLeftSeconds"] == 0, e
    assert "UnfulfilledConstraint" in e["lastUnusedOffers"][0]["reason"], e
    summary = e["processedOffersSummary"]
    assert summary["unusedOffersCount"] >= 1, summary
    by_reason = {r["reason"]: r for r in summary["rejectSummaryLastOffers"]}
    assert by_reason["UnfulfilledConstraint"]["declined"] >= 1, summary
    assert len(live_tasks(cluster, app_id)) == 3

    # Scaling to what fits ends the wait.
    # The start deployment cannot finish: it locks the app, force overrides it.
    assert cluster.api.put(app_path(app_id), {"instances": 3}).status == 409
    assert cluster.api.put(app_path(app_id) + "?force=true", {"instances": 3}).status == 200
    wait_until(lambda: _queue_entry(cluster, app_id) is None, 20, what="queue to empty")


def test_cluster_pins_to_one_rack(cluster, apps):
    app_id = apps.new_id("cluster")
    apps.create(app_def(app_id, instances=3, constraints=[["rack", "CLUSTER", "b"]]))
    tasks = wait_running(cluster, app_id, 3)
    assert _racks(cluster, tasks) == ["b", "b", "b"]


def test_group_by_spreads_evenly(cluster, apps):
    app_id = apps.new_id("groupby")
    apps.create(app_def(app_id, instances=6, constraints=[["rack", "GROUP_BY", "3"]]))
    tasks = wait_running(cluster, app_id, 6)
    assert collections.Counter(_racks(cluster, tasks)) == {"a": 2, "b": 2, "c": 2}


def test_like_and_unlike(cluster, apps):
    like, unlike = apps.new_id("like"), apps.new_id("unlike")
    apps.create(app_def(like, instances=4, constraints=[["rack", "LIKE", "a|b"]]))
    apps.create(app_def(unlike, instances=4, constraints=[["rack", "UNLIKE", "[ab]"]]))
    assert set(_racks(cluster, wait_running(cluster, like, 4))) <= {"a", "b"}
    assert set(_racks(cluster, wait_running(cluster, unlike, 4))) == {"c"}


def test_max_per_rack(cluster, apps):
    app_id = apps.new_id("maxper")
    apps.create(app_def(app_id, instances=5, constraints=[["rack", "MAX_PER", "1"]]))
    wait_until(lambda: len([t for t in live_tasks(cluster, app_id)
                            if t["state"] == "TASK_RUNNING"]) == 3, 40, what="3 running")
    e = wait_until(lambda: _queue_entry(cluster, app_id), 10, what="queue entry")
    assert e["count"] == 2, e
    tasks = live_tasks(cluster, app_id)
    assert len(tasks) == 3 and sorted(_racks(cluster, tasks)) == ["a", "b", "c"], tasks


def test_bad_constraints_are_422(cluster, apps):
    app_id = apps.new_id("badc")
    for constraints, msg in (
            ([["rack", "NEAR", "a"]], "Constraint operator must be one of"),
            ([["rack", "LIKE"]], "regular expression value must be provided"),
            ([["rack", "MAX_PER", "x"]], "is not a number"),
            ([["rack", "LIKE", "(a"]], "is not a valid regular expression")):
        r = cluster.api.post("/v2/apps", app_def(app_id, constraints=constraints))
        assert r.status == 422, r
        d = [x for x in r.json["details"] if x["path"] == "/constraints(0)"]
        assert d and any(msg in e for e in d[0]["errors"]), r.json
