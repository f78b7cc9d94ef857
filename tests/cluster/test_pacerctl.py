"""test_pacerctl.py - the CLI against a live master: tables, --json, writes, error exits."""

import json
import os

from cluster import app_def, live_tasks, wait_running, wait_until


def _ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout,
                                                                  r.stderr)
    return r


def test_apps_add_list_scale_remove(cluster, apps, tmp_path):
    app_id = apps.new_id("ctl")
    f = tmp_path / "app.json"
    f.write_text(json.dumps(app_def(app_id, instances=1)))
    apps.track(app_id)

    r = _ok(cluster.pacerctl("apps", "add", str(f)))
    assert app_id in r.stdout
    wait_running(cluster, app_id, 1)

    r = _ok(cluster.pacerctl("apps", "list"))
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "INSTANCES", "RUNNING", "CPUS", "MEM", "VERSION",
                                "DEPLOYMENTS"], lines[0]
    row = [l for l in lines if l.split()[0] == app_id]
    assert row and row[0].split()[1:5] == ["1", "1", "0.05", "32"], lines
    # columns are aligned: every row has the RUNNING column at the header's offset
    col = lines[0].index("RUNNING")
    assert row[0][col - 2:col] == "  " and row[0][col] != " ", lines

    r = _ok(cluster.pacerctl("--json", "apps", "list"))
    doc = json.loads(r.stdout)
    assert app_id in [a["id"] for a in doc["apps"]]

    r = _ok(cluster.pacerctl("apps", "scale", app_id, "3"))
    wait_running(cluster, app_id, 3)
    r = _ok(cluster.pacerctl("--json", "apps", "show", app_id))
    app = json.loads(r.stdout)["app"]
    assert app["instances"] == 3 and len(app["tasks"]) == 3, app
    r = _ok(cluster.pacerctl("apps", "show", app_id))
    assert "instances" in r.stdout and "TASK_RUNNING" in r.stdout, r.stdout

    r = _ok(cluster.pacerctl("tasks", "list"))
    assert r.stdout.splitlines()[0].split() == ["ID", "APP", "STATE", "HOST", "PORTS",
                                                "RX_BYTES", "TX_BYTES"]
    assert sum(app_id in l for l in r.stdout.splitlines()) == 3, r.stdout

    # kill one task with --scale: 2 left, not replaced
    victim = live_tasks(cluster, app_id)[0]["id"]
    _ok(cluster.pacerctl("tasks", "kill", victim, "--scale"))
    wait_running(cluster, app_id, 2)
    assert cluster.api.get("/v2/apps" + app_id).json["app"]["instances"] == 2

    r = _ok(cluster.pacerctl("--json", "deployments", "list"))
    assert isinstance(json.loads(r.stdout), list)
    _ok(cluster.pacerctl("deployments", "list"))

    r = _ok(cluster.pacerctl("apps", "remove", app_id))
    wait_until(lambda: cluster.api.get("/v2/apps" + app_id).status == 404, 30,
               what="app removed")
    r = _ok(cluster.pacerctl("apps", "list"))
    assert app_id not in r.stdout


def test_add_from_stdin_and_update(cluster, apps):
    app_id = apps.new_id("ctl-stdin")
    apps.track(app_id)
    _ok(cluster.pacerctl("--json", "apps", "add", "-",
                         stdin=json.dumps(app_def(app_id, instances=1))))
    first = wait_running(cluster, app_id, 1)[0]
    r = _ok(cluster.pacerctl("--json", "apps", "update", app_id, "-",
                             stdin=json.dumps(app_def(app_id, cmd="sleep 3599", instances=1))))
    assert json.loads(r.stdout).get("deploymentId"), r.stdout
    def new_version():
        live = live_tasks(cluster, app_id)
        return (len(live) == 1 and live[0]["id"] != first["id"]
                and live[0]["state"] == "TASK_RUNNING")
    wait_until(new_version, 40, what="the new version's task")
    assert cluster.api.get("/v2/apps" + app_id).json["app"]["cmd"] == "sleep 3599"
    _ok(cluster.pacerctl("apps", "restart", app_id))


def test_agents_list(cluster):
    r = _ok(cluster.pacerctl("--json", "agents", "list"))
    ids = {a["id"] for a in json.loads(r.stdout)["agents"]}
    assert {a.agent_id for a in cluster.agents} <= ids
    r = _ok(cluster.pacerctl("agents", "list"))
    assert r.stdout.splitlines()[0].split()[:3] == ["ID", "HOSTNAME", "ADDRESS"]
    for a in cluster.agents:
        assert a.agent_id in r.stdout and a.ip in r.stdout, r.stdout
    r = _ok(cluster.pacerctl("agents", "show", cluster.agents[0].agent_id))
    assert cluster.agents[0].hostname in r.stdout


def test_errors_and_exit_codes(cluster, tmp_path):
    r = cluster.pacerctl("apps", "show", "/t/nope")
    assert r.returncode == 1, r
    assert r.stderr.strip() == "pacerctl: App '/t/nope' does not exist (HTTP 404)", r.stderr

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "/t/invalid", "cpus": -1, "mem": 32, "cmd": "true"}))
    r = cluster.pacerctl("apps", "add", str(bad))
    assert r.returncode == 1 and "(HTTP 422)" in r.stderr and "/cpus" in r.stderr, r

    r = cluster.pacerctl("apps", "add", str(tmp_path / "missing.json"))
    assert r.returncode == 1 and "missing.json" in r.stderr, r

    for args in (["apps"], ["apps", "frobnicate"], ["apps", "scale", "/x", "many"],
                 ["nouns", "list"], ["tasks", "kill"], ["--bogus", "apps", "list"]):
        r = cluster.pacerctl(*args)
        assert r.returncode == 2, (args, r)
        assert "usage:" in r.stderr, (args, r.stderr)

    r = cluster.pacerctl("--help")
    assert r.returncode == 0 and "apps list" in r.stdout

    # --master falls back to $PACER_MASTER; an unreachable master is exit 1
    env = dict(os.environ, PACER_MASTER=cluster.master_url)
    import subprocess
    r = subprocess.run([os.path.join(cluster.build, "pacerctl"), "--json", "apps", "list"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "apps" in json.loads(r.stdout), r
    r = cluster.pacerctl("--master", "http://127.0.0.1:1", "apps", "list", master=False)
    assert r.returncode == 1 and "cannot reach" in r.stderr, r
