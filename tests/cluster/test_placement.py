"""test_placement.py - the placement load generator (bench/placement.c) works end to end.

A small run of what `make bench-placement` runs at full size, with no timing assertions:
  * 1,000 simulated agents and 20,000 tasks against the master core with the reference
    scheduler (bench/placement_master.c): every task is launched on a simulated agent over
    the real protocol and acknowledged TASK_RUNNING, and the master's /v1/metrics counted
    the allocation cycles;
  * 100 simulated agents and 2,000 tasks through pacer-master's /v2/apps (the Marathon app
    scheduler on the same core), against the same simulated agents, twice in one run: over
    the agents' streams (pacer-agent/1) and over HTTP (case suffix ":http").
By default every simulated agent opens its agent stream and every launch and status update
goes over it: the report says none went as HTTP.
The generator runs in its own network namespace (loopback only) and stops by itself; its
JSON report is checked here. The two binaries are built into PACER_BUILD with the same
flags as the rest of it (a sanitizer build stays one).
"""

import json
import os
import subprocess
import tempfile

from conftest import REPO, build_dir


def _sanitized(build):
    lib = os.path.join(build, "libpacer.a")
    out = subprocess.run(["nm", "-A", lib], capture_output=True, text=True).stdout
    return "__asan_" in out


def _build_tools(build):
    targets = [os.path.join(build, "bench", "placement"),
               os.path.join(build, "bench", "placement_master")]
    cmd = ["make", "-C", REPO, "BUILD=" + build] + targets
    if _sanitized(build):
        cmd += ["SAN=1", "OPT=-O1 -g"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "building the load generator failed:\n" + r.stdout + r.stderr
    return targets


def _run(args, timeout):
    with tempfile.TemporaryDirectory(prefix="pacer-placement-test-") as d:
        out = os.path.join(d, "result.json")
        r = subprocess.run(args + ["--json", out], capture_output=True, text=True,
                           timeout=timeout)
        report = r.stdout + r.stderr
        assert os.path.exists(out), "no result file; output:\n" + report
        with open(out) as f:
            return json.load(f), r.returncode, report


def _over_streams(res, report):
    """Every launch of the row came on an agent stream, every agent had one."""
    assert res["agent_link"] == "stream" and not res["agent_http"], report
    assert res["launches"] >= res["tasks"] and res["http_launches"] == 0, report
    assert res["streams"]["opened"] >= res["agents"], report
    assert res["streams"]["refused"] == 0 and res["streams"]["errors"] == 0, report
    assert res["streams"]["acked"] >= res["tasks"], report


def test_placement_1k_agents_20k_tasks_reference_scheduler():
    build = build_dir()
    placement, ref = _build_tools(build)
    results, rc, report = _run([placement, "--ref-master", ref, "--ref-case", "1000:20000",
                                "--timeout", "240"], timeout=600)
    assert rc == 0, report
    [res] = results
    assert res["ok"], report
    assert res["agents"] == 1000 and res["tasks"] == 20000
    assert res["placed"] == 20000, report
    assert res["cycles"] > 0, "the master's /v1/metrics counted no allocation cycle"
    assert res["master_cpu_s"] > 0 and res["master_hwm_kib"] > 0
    assert res["generator_cpu_s"] > 0
    assert res["error"] == ""
    _over_streams(res, report)


def test_placement_through_marathon_apps_stream_and_http():
    build = build_dir()
    placement, _ = _build_tools(build)
    results, rc, report = _run([placement, "--master", os.path.join(build, "pacer-master"),
                                "--case", "100:2000", "--case", "100:2000:http",
                                "--timeout", "240"], timeout=600)
    assert rc == 0, report
    stream, http = results
    for res in results:
        assert res["ok"] and res["placed"] == 2000, report
        assert res["cycles"] > 0
    _over_streams(stream, report)
    # The old way still works: no stream opened, every launch a POST /v1/launch.
    assert http["agent_link"] == "http" and http["agent_http"], report
    assert http["streams"]["opened"] == 0 and http["streams"]["batches"] == 0, report
    assert http["launches"] >= 2000 and http["http_launches"] == http["launches"], report
    assert "ratio stream/http, pacer at N=100 M=2000" in report, report
