"""test_demo.py - `make run` (tools/demo-cluster.sh): the demo comes up with 3 agents and a
web app that answers, and Ctrl-C removes everything it made."""

import glob
import json
import os
import signal
import subprocess
import time
import urllib.request

from conftest import REPO, build_dir
from cluster import cgroup_roots, wait_until

SCRIPT = os.path.join(REPO, "tools", "demo-cluster.sh")
DEMO_DIR = "/tmp/pacer-demo"
MASTER = "http://198.18.0.1:5050"


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode("utf-8", "replace")


def _demo_leftovers(agent_ids):
    left = [p for p in ("/run/netns/pacer-demo-1", "/run/netns/pacer-demo-2",
                        "/run/netns/pacer-demo-3", "/sys/class/net/pacer-br0", DEMO_DIR)
            if os.path.exists(p)]
    for aid in agent_ids:
        left += [p for p in [os.path.join(r, "pacer", aid) for r in cgroup_roots()]
                 + [os.path.join("/sys/fs/bpf/pacer", aid)] if os.path.exists(p)]
    return left


def test_demo_cluster_up_and_clean_teardown():
    if os.path.exists(os.path.join(DEMO_DIR, "demo.pid")):
        raise AssertionError("a demo cluster is running on this host; stop it first")
    out_path = "/tmp/pacer-demo-test-%d.out" % os.getpid()
    out = open(out_path, "wb")
    p = subprocess.Popen([SCRIPT, build_dir()], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    agent_ids = []
    try:
        def ready():
            if p.poll() is not None:
                raise AssertionError("demo exited with %s:\n%s"
                                     % (p.returncode, open(out_path).read()))
            return "Ctrl-C stops the cluster" in open(out_path).read()
        wait_until(ready, 120, interval=0.5, what="the demo cluster to come up")
        text = open(out_path).read()
        agent_ids = [open(f).read().strip()
                     for f in glob.glob(os.path.join(DEMO_DIR, "agent-*", "agent_id"))]
        assert len(agent_ids) == 3, agent_ids

        urls = [l.strip() for l in text.splitlines() if l.strip().startswith("http://198.18.0.")
                and l.strip().endswith("/")]
        assert len(urls) == 3, text
        for u in urls:
            # RUNNING means exec'd, not listening yet: python needs a moment to bind
            status, body = wait_until(lambda: _get(u), 20, what="%s to answer" % u)
            assert status == 200 and "Directory listing" in body, (u, body[:200])
        status, body = _get(MASTER + "/v2/apps/demo/web")
        assert json.loads(body)["app"]["tasksRunning"] == 3
        r = subprocess.run([os.path.join(build_dir(), "pacerctl"), "--master", MASTER,
                            "agents", "list"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and len(r.stdout.splitlines()) == 4, r
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)          # what Ctrl-C sends
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        out.close()
    text = open(out_path).read()
    os.unlink(out_path)
    assert p.returncode == 130, "demo should exit 130 after Ctrl-C:\n" + text[-2000:]
    assert "demo: done" in text, text[-2000:]
    assert not _demo_leftovers(agent_ids), _demo_leftovers(agent_ids)
    # none of its processes survive (agents, executors, the web tasks)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        procs = subprocess.run(["pgrep", "-f", "pacer-demo-|/tmp/pacer-demo/"],
                               capture_output=True, text=True).stdout.split()
        if not procs:
            break
        time.sleep(0.2)
    assert not procs, "demo processes left: %s" % procs
