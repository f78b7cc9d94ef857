"""conftest.py - fixtures for the cluster tests.

  cluster       one shared 3-agent cluster for the whole session (tests clean up their apps)
  make_cluster  factory for a private cluster (its own agent count and timeouts); torn down
                after the test
  apps          creates apps on a cluster and deletes them (force) after the test
  events        an SSE reader on the shared cluster's /v2/events

PACER_BUILD names the build dir holding pacer-master, pacer-agent, pacer-executor and
pacerctl (default: build/ beside this repo). On a failed test the last lines of the
master's and agents' logs are attached to the report.
"""

import atexit
import os
import signal
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, wait_until  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_live_clusters = []


def _on_sigterm(signum, frame):
    # Turn a SIGTERM (CI time-out, kill) into the same unwinding as Ctrl-C, so the
    # fixtures' finalisers remove namespaces, cgroups and processes.
    raise KeyboardInterrupt("SIGTERM")


signal.signal(signal.SIGTERM, _on_sigterm)


@atexit.register
def _destroy_leftover_clusters():
    for c in list(_live_clusters):
        c.destroy()


def build_dir():
    return os.path.abspath(os.environ.get("PACER_BUILD", os.path.join(REPO, "build")))


def _new_cluster(**kw):
    if os.geteuid() != 0:
        pytest.fail("the cluster tests need root (network namespaces, cgroups, bpf)")
    c = Cluster(build_dir(), **kw)
    _live_clusters.append(c)
    try:
        c.start()
    except BaseException:
        print(c.logs(), file=sys.stderr)
        problems = c.destroy()
        _live_clusters.remove(c)
        if problems:
            print("clean-up problems: %s" % problems, file=sys.stderr)
        raise
    return c


def _destroy(c):
    problems = c.destroy()
    if c in _live_clusters:
        _live_clusters.remove(c)
    if problems:
        pytest.fail("cluster %s clean-up problems:\n  %s" % (c.tag, "\n  ".join(problems)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _live_clusters:
        for c in _live_clusters:
            rep.sections.append(("pacer logs (cluster %s)" % c.tag, c.logs(80)))


@pytest.fixture(scope="session")
def cluster():
    c = _new_cluster(agents=3, agent_timeout=10)
    yield c
    _destroy(c)


@pytest.fixture
def make_cluster():
    made = []

    def make(**kw):
        c = _new_cluster(**kw)
        made.append(c)
        return c
    yield make
    for c in made:
        _destroy(c)


class Apps:
    """Creates apps with unique ids under /t-<run>/ and removes them at the end."""

    def __init__(self, default_cluster):
        self.default = default_cluster
        self.created = []
        self.run_tag = uuid.uuid4().hex[:6]

    def new_id(self, name):
        return "/t%s/%s" % (self.run_tag, name)

    def create(self, definition, cluster=None, expect=201):
        c = cluster or self.default
        r = c.api.post("/v2/apps", definition)
        if r.status in (200, 201):
            self.created.append((c, definition["id"]))
        assert r.status == expect, "POST /v2/apps %s -> %r" % (definition.get("id"), r)
        return r

    def track(self, app_id, cluster=None):
        self.created.append((cluster or self.default, app_id))

    def cleanup(self):
        for c, app_id in self.created:
            if c.master_proc is None or c.master_proc.poll() is not None:
                continue
            c.api.delete("/v2/apps%s?force=true" % app_id)
        for c, app_id in self.created:
            if c.master_proc is None or c.master_proc.poll() is not None:
                continue
            wait_until(lambda: not app_tasks_any(c, app_id), 30,
                       what="tasks of %s to be gone" % app_id)


def app_tasks_any(c, app_id):
    r = c.api.get("/v2/tasks")
    if r.status != 200:
        return True
    # unreachable tasks of a dead agent are checked by the tests that make them
    return [t for t in r.json.get("tasks", []) if t.get("appId") == app_id
            and t.get("state") != "TASK_UNREACHABLE"]


@pytest.fixture
def apps(request):
    # The default cluster is the shared one only if the test asked for it.
    default = request.getfixturevalue("cluster") if "cluster" in request.fixturenames else None
    a = Apps(default)
    yield a
    a.cleanup()


@pytest.fixture
def events(cluster):
    s = cluster.events()
    yield s
    s.close()
    cluster.streams.remove(s)
