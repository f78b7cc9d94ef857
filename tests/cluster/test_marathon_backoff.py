"""test_marathon_backoff.py - a crash-looping app is relaunched with a growing delay
(backoffSeconds x backoffFactor^n, capped by maxLaunchDelaySeconds) shown in /v2/queue;
DELETE /v2/queue/{id}/delay relaunches at once; a successful run (5 s RUNNING) resets the
delay."""

import datetime
import os
import signal
import time
import uuid

from cluster import app_path, live_tasks, procs_with_env, wait_until


def _starts(ev, app_id):
    """Times (arrival order) of the first event of each task of the app."""
    seen, times = set(), []
    for t, d in ev.snapshot():
        if t == "status_update_event" and d.get("appId") == app_id and d["taskId"] not in seen:
            seen.add(d["taskId"])
            times.append(d["_at"])
    return times


class TimedEvents:
    """Wraps the event stream, stamping each event with the time it was first seen."""

    def __init__(self, ev):
        self.ev = ev
        self.stamped = 0

    def snapshot(self):
        evs = self.ev.snapshot()
        now = time.monotonic()
        for t, d in evs[self.stamped:]:
            if isinstance(d, dict):
                d.setdefault("_at", now)
        self.stamped = len(evs)
        return evs


def _wall(iso):
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _queue_entry(c, app_id):
    for e in c.api.get("/v2/queue").json["queue"]:
        if e["app"]["id"] == app_id:
            return e
    return None


def test_crash_loop_backs_off_and_delay_reset(cluster, apps, events):
    app_id = apps.new_id("crashloop")
    ev = TimedEvents(events)
    apps.create({"id": app_id, "cmd": "exit 1", "cpus": 0.05, "mem": 32, "instances": 1,
                 "backoffSeconds": 1, "backoffFactor": 2, "maxLaunchDelaySeconds": 60})

    def five_starts():
        s = _starts(ev, app_id)
        return s if len(s) >= 5 else None
    starts = wait_until(five_starts, 60, interval=0.05, what="5 launches of the crash loop")
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # Delays 1, 2, 4, 8 s (+ launch latency): each gap clearly longer than the one before.
    assert gaps[1] > gaps[0] + 0.5 and gaps[2] > gaps[1] + 1.0 and gaps[3] > gaps[2] + 2.0, gaps
    assert gaps[3] > 7.0, gaps

    # The fifth task failed too: the queue shows a delay of 16 s counting down.
    e = wait_until(lambda: (_queue_entry(cluster, app_id) or {}).get("delay", {})
                   .get("timeLeftSeconds", 0) > 10 and _queue_entry(cluster, app_id),
                   15, what="queue entry with a long delay")
    assert e["delay"]["overdue"] is False and e["count"] == 1, e

    # DELETE .../delay: relaunched at once instead of in ~16 s.
    before = len(_starts(ev, app_id))
    r = cluster.api.delete("/v2/queue%s/delay" % app_id)
    assert r.status == 204, r
    t0 = time.monotonic()
    wait_until(lambda: len(_starts(ev, app_id)) > before, 5, interval=0.05,
               what="a launch right after the delay reset")
    assert time.monotonic() - t0 < 5
    assert cluster.api.delete("/v2/queue/nope/delay").status == 404


def test_successful_run_resets_backoff(cluster, apps, events):
    app_id = apps.new_id("flaky")
    flag = "/var/tmp/pacer-test-flaky-%s" % uuid.uuid4().hex
    open(flag, "w").close()
    ev = TimedEvents(events)
    try:
        apps.create({"id": app_id, "cmd": "test -e %s && exit 1; exec sleep 3600" % flag,
                     "cpus": 0.05, "mem": 32, "backoffSeconds": 1, "backoffFactor": 2,
                     "maxLaunchDelaySeconds": 60})
        wait_until(lambda: len(_starts(ev, app_id)) >= 4, 40, interval=0.05,
                   what="4 failed launches")
        os.unlink(flag)                     # the next launch runs (after up to 8 s)
        def ran_6s():
            for t in live_tasks(cluster, app_id):
                started = t.get("startedAt")
                if t["state"] == "TASK_RUNNING" and started and time.time() - _wall(started) >= 6:
                    return t
            return None
        task = wait_until(ran_6s, 40, what="a task running for 6 s (a successful run)")
        assert _queue_entry(cluster, app_id) is None
        # It dies on its own now: the delay starts again from backoffSeconds (1 s), not 16 s.
        before = len(_starts(ev, app_id))
        pids = wait_until(lambda: procs_with_env("MESOS_TASK_ID", task["id"]), 10,
                          what="processes of %s" % task["id"])
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        t0 = time.monotonic()
        wait_until(lambda: len(_starts(ev, app_id)) > before, 10, interval=0.05,
                   what="the replacement")
        assert time.monotonic() - t0 < 4.5, "relaunch took %.1fs" % (time.monotonic() - t0)
        r = cluster.api.get(app_path(app_id))
        assert r.status == 200
    finally:
        if os.path.exists(flag):
            os.unlink(flag)
