"""test_agent_stream_real.py - the agent stream (pacer-agent/1: the master's launch and kill calls
and the agent's status updates on one persistent connection per agent) on private clusters:
an agent with --agent-stream=off next to one with the stream, both launching and killing
an app's tasks; and a master killed and restarted while tasks run: the stream reopens and a
new app still launches."""

import signal

from cluster import app_def, app_path, live_tasks, procs_with_env, wait_running, wait_until


def _log_lines(agent, event):
    with open(agent.log_path, errors="replace") as f:
        return [line for line in f if "event=%s " % event in line or
                line.rstrip().endswith("event=%s" % event)]


def _stream_opened(agent):
    return len(_log_lines(agent, "agent_stream_opened"))


def _master_streams(c):
    r = c.api.get("/v1/metrics")
    assert r.status == 200, r
    return r.json["agent_link"]["streams"]


def _master_opened_for(c):
    """Agent ids the master logged a stream opened for since its last start."""
    ids = []
    with open(c.master_log, errors="replace") as f:
        for line in f:
            if line.startswith("=== start"):
                ids = []
            if "event=agent_stream_opened " in line and " agent=" in line:
                ids.append(line.split(" agent=", 1)[1].split()[0])
    return ids


def _killed(ev, task_id):
    return ev.wait_for(lambda t, d: t == "status_update_event" and d.get("taskId") == task_id
                       and d.get("taskStatus") == "TASK_KILLED", 30,
                       what="TASK_KILLED for %s" % task_id)


def test_stream_and_http_agents_side_by_side(make_cluster, apps):
    c = make_cluster(agents=2, agent_timeout=10, agent_args={0: ["--agent-stream=off"]})
    http_only, streaming = c.agents
    wait_until(lambda: _stream_opened(streaming) >= 1, 20,
               what="event=agent_stream_opened in the streaming agent's log")
    assert any("master=%s" % c.master_url in line
               for line in _log_lines(streaming, "agent_stream_opened"))
    # The master has exactly one stream, the streaming agent's.
    wait_until(lambda: _master_streams(c) == 1, 10, what="agent_link.streams == 1")
    assert _master_opened_for(c) == [streaming.agent_id]
    ev = c.events()

    app_id = apps.new_id("both")
    apps.create(app_def(app_id, instances=2, constraints=[["hostname", "UNIQUE"]]), cluster=c)
    tasks = wait_running(c, app_id, 2)
    hosts = {c.agent_by_host(t["host"]) for t in tasks}
    assert hosts == {http_only, streaming}, "tasks on %s" % [t["host"] for t in tasks]
    pids = {t["id"]: procs_with_env("MESOS_TASK_ID", t["id"]) for t in tasks}
    assert all(pids.values()), "tasks without processes: %s" % pids

    r = c.api.put(app_path(app_id), {"instances": 0})
    assert r.status in (200, 201), r
    for t in tasks:
        _killed(ev, t["id"])
    wait_until(lambda: not live_tasks(c, app_id), 30, what="no live tasks of %s" % app_id)
    wait_until(lambda: not any(procs_with_env("MESOS_TASK_ID", tid) for tid in pids), 20,
               what="the killed tasks' processes to be gone on both agents")

    # The agent told to stay on HTTP never tried the stream; the other one kept its one.
    assert not [line for line in open(http_only.log_path, errors="replace")
                if "event=agent_stream_" in line]
    assert _stream_opened(streaming) == 1
    assert not _log_lines(streaming, "agent_stream_closed")
    assert _master_streams(c) == 1


def test_stream_reopens_after_master_restart(make_cluster, apps):
    c = make_cluster(agents=1, agent_timeout=10)
    agent = c.agents[0]
    wait_until(lambda: _stream_opened(agent) >= 1, 20, what="the agent stream to open")
    old = apps.new_id("before")
    apps.create(app_def(old, instances=1), cluster=c)
    task = wait_running(c, old, 1)[0]
    pids = procs_with_env("MESOS_TASK_ID", task["id"])
    assert pids

    c.stop_master(signal.SIGKILL)
    wait_until(lambda: _log_lines(agent, "agent_stream_closed"), 20,
               what="event=agent_stream_closed after the master died")
    c.start_master()
    c.wait_agents_registered()
    wait_until(lambda: _stream_opened(agent) >= 2, 30,
               what="the agent stream to reopen after the master restart")
    wait_until(lambda: _master_opened_for(c) == [agent.agent_id], 10,
               what="the restarted master to log the agent's stream")

    new = apps.new_id("after")
    apps.create(app_def(new, cmd="sleep 3601", instances=1), cluster=c)
    wait_running(c, new, 1)
    # the task that ran across the restart is the same process
    assert [t["id"] for t in live_tasks(c, old)] == [task["id"]]
    assert procs_with_env("MESOS_TASK_ID", task["id"]) == pids

