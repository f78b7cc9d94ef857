"""test_task_log.py - the master's task records live in tasks.log (an append-only log in its
work dir), not in master.db: running tasks come back after the master is killed; a torn
tail (a batch whose sync never returned) is cut off at start without losing the records
before it; task rows an older master left in master.db are moved into the log; and a
second master started on the same work dir exits with an error naming the log."""

import json
import os
import signal
import sqlite3
import struct
import subprocess
import zlib

from cluster import app_def, live_tasks, procs_with_env, wait_running, wait_until


def _log_path(c):
    return os.path.join(c.master_work, "tasks.log")


def _db_task_rows(c):
    db = sqlite3.connect(os.path.join(c.master_work, "master.db"))
    try:
        return db.execute("SELECT key, value FROM objects WHERE kind = 'tasks'").fetchall()
    finally:
        db.close()


def _read_log(path):
    """The live records of a task log, read by its documented format (master/task_log.h):
    {key: merged record}."""
    data = open(path, "rb").read()
    assert data[:8] == b"PACERTL1", data[:8]
    off, puts, updates = 8, {}, {}
    while off + 24 <= len(data):
        magic, plen, crc, rtype, key = struct.unpack_from("<4sII B3x Q", data, off)
        payload = data[off + 24:off + 24 + plen]
        if magic != b"PTLR" or len(payload) != plen or \
                crc != zlib.crc32(payload, zlib.crc32(data[off + 12:off + 24])) & 0xffffffff:
            break
        if rtype == ord("P"):
            puts[key] = json.loads(payload)
            updates.pop(key, None)
        elif rtype == ord("U") and key in puts:
            updates[key] = json.loads(payload)
        elif rtype == ord("D"):
            puts.pop(key, None)
            updates.pop(key, None)
        off += 24 + plen
    return {k: dict(v, **updates.get(k, {})) for k, v in puts.items()}


def _metrics_log(c):
    r = c.api.get("/v1/metrics")
    assert r.status == 200, r
    return r.json["store"]["task_log"]


def _master_log_has(c, event):
    with open(c.master_log, errors="replace") as f:
        return any("event=%s " % event in line for line in f)


def _running_ids(c, app_id):
    return sorted(t["id"] for t in live_tasks(c, app_id) if t.get("state") == "TASK_RUNNING")


def test_tasks_come_back_from_the_log(make_cluster, apps):
    c = make_cluster(agents=1, agent_timeout=30)
    app_id = apps.new_id("logged")
    apps.create(app_def(app_id, instances=3), cluster=c)
    ids = sorted(t["id"] for t in wait_running(c, app_id, 3))
    pids = {tid: procs_with_env("MESOS_TASK_ID", tid) for tid in ids}

    # In the log (each put, then updated to RUNNING), not in master.db.
    wait_until(lambda: sorted(r["task_id"] for r in _read_log(_log_path(c)).values()
                              if r["state"] == "TASK_RUNNING") == ids, 20,
               what="the three RUNNING records in tasks.log")
    assert _db_task_rows(c) == []
    m = _metrics_log(c)
    assert m["open"] is True and m["writes"] >= 3, m
    assert m["file_bytes"] == os.path.getsize(_log_path(c)), m
    assert 0 < m["live_bytes"] <= m["file_bytes"], m

    c.stop_master(signal.SIGKILL)
    c.start_master()
    c.wait_agents_registered()
    wait_until(lambda: _running_ids(c, app_id) == ids, 30,
               what="the same three tasks RUNNING after the restart")
    assert all(procs_with_env("MESOS_TASK_ID", tid) == pids[tid] for tid in ids)


def test_torn_tail_is_cut_and_nothing_before_it_is_lost(make_cluster, apps):
    c = make_cluster(agents=1, agent_timeout=30)
    app_id = apps.new_id("torn")
    apps.create(app_def(app_id, instances=2), cluster=c)
    ids = sorted(t["id"] for t in wait_running(c, app_id, 2))
    c.stop_master(signal.SIGTERM)
    whole = os.path.getsize(_log_path(c))
    with open(_log_path(c), "ab") as f:   # half a record, as a crash mid-write leaves it
        f.write(b"PTLR\x40\x00\x00\x00\x00\x00\x00\x00P\x00\x00\x00" + b"\x07" * 10)

    c.start_master()
    c.wait_agents_registered()
    wait_until(lambda: _master_log_has(c, "task_log_torn_tail"), 10,
               what="event=task_log_torn_tail in the master's log")
    assert os.path.getsize(_log_path(c)) >= whole
    wait_until(lambda: _running_ids(c, app_id) == ids, 30,
               what="both tasks RUNNING after the torn tail was cut")
    # Records after the cut land and read back.
    more = apps.new_id("after")
    apps.create(app_def(more, instances=1), cluster=c)
    new_id = wait_running(c, more, 1)[0]["id"]
    wait_until(lambda: new_id in {r["task_id"] for r in _read_log(_log_path(c)).values()}, 20,
               what="the new task's record readable in tasks.log")


def test_task_rows_in_master_db_move_into_the_log(make_cluster, apps):
    c = make_cluster(agents=1, agent_timeout=30)
    app_id = apps.new_id("moved")
    apps.create(app_def(app_id, instances=2), cluster=c)
    ids = sorted(t["id"] for t in wait_running(c, app_id, 2))
    wait_until(lambda: sorted(r["task_id"] for r in _read_log(_log_path(c)).values()
                              if r["state"] == "TASK_RUNNING") == ids, 20,
               what="both RUNNING records in tasks.log")
    c.stop_master(signal.SIGTERM)

    # What a master from before the task log left: the records as rows of master.db.
    records = _read_log(_log_path(c))
    os.unlink(_log_path(c))
    db = sqlite3.connect(os.path.join(c.master_work, "master.db"))
    with db:
        for key, rec in records.items():
            db.execute("INSERT INTO objects (kind, key, value) VALUES ('tasks', ?, ?)",
                       ("%016x" % key, json.dumps(rec)))
    db.close()

    c.start_master()
    c.wait_agents_registered()
    wait_until(lambda: _master_log_has(c, "tasks_moved_to_log"), 10,
               what="event=tasks_moved_to_log in the master's log")
    assert _db_task_rows(c) == []
    assert sorted(r["task_id"] for r in _read_log(_log_path(c)).values()) == ids
    wait_until(lambda: _running_ids(c, app_id) == ids, 30,
               what="both tasks RUNNING after the move")


def test_second_master_on_the_same_work_dir_exits(make_cluster, apps):
    c = make_cluster(agents=1, agent_timeout=30)
    app_id = apps.new_id("alone")
    apps.create(app_def(app_id, instances=1), cluster=c)
    task_id = wait_running(c, app_id, 1)[0]["id"]
    size = os.path.getsize(_log_path(c))

    p = subprocess.run([os.path.join(c.build, "pacer-master"), "--port", "0", "--bind",
                        "127.0.0.1", "--work-dir", c.master_work],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p
    assert "tasks.log is in use by another process" in p.stderr, p.stderr
    # The first master and its log carry on.
    assert os.path.getsize(_log_path(c)) >= size
    assert _running_ids(c, app_id) == [task_id]
    more = apps.new_id("more")
    apps.create(app_def(more, instances=1), cluster=c)
    wait_running(c, more, 1)
