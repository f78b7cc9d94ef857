"""test_api_errors.py - bad requests get Marathon's status codes and error bodies, and the
master stays healthy afterwards."""

import json

import pytest

from cluster import app_def, app_path


def _detail_paths(r):
    return [d.get("path") for d in (r.json or {}).get("details", [])]


def _mentions(r, word):
    return word.lower() in r.body.lower()


def _assert_422(r, path=None, word=None):
    assert r.status == 422, r
    assert r.json and r.json.get("message") == "Object is not valid", r
    assert isinstance(r.json.get("details"), list) and r.json["details"], r
    for d in r.json["details"]:
        assert isinstance(d.get("errors"), list) and d["errors"], r
    if path:
        assert path in _detail_paths(r), "expected a detail at %s: %r" % (path, r)
    if word:
        assert _mentions(r, word), "error should name %r: %r" % (word, r)


@pytest.fixture
def dup_app(cluster, apps):
    app_id = apps.new_id("dup")
    apps.create(app_def(app_id, instances=0))
    return app_id


def test_bad_requests_get_the_right_4xx(cluster, apps, dup_app):
    api = cluster.api
    base = app_def(apps.new_id("bad"))
    cases = []

    def case(name, fn):
        cases.append((name, fn))

    def post(body):
        return api.post("/v2/apps", body)

    def with_(**kw):
        d = dict(base)
        d.update(kw)
        return d

    def without(key):
        d = dict(base)
        d.pop(key)
        return d

    def bad_json():
        r = api.post("/v2/apps", raw=b'{"id": "/x",\n  "cmd": oops}')
        assert r.status == 400, r
        assert r.json["message"] == "Invalid JSON", r
        assert "line" in r.body and "column" in r.body, r
        assert "2" in json.dumps(r.json.get("details")), "should name line 2: %r" % r
    case("bad JSON -> 400 with line and column", bad_json)

    def empty_body():
        r = api.post("/v2/apps", raw=b"")
        assert r.status == 400 and r.json and r.json.get("message"), r
    case("empty body -> 400", empty_body)

    def too_big():
        big = json.dumps(with_(labels={"pad": "x" * (1024 * 1024 + 10)})).encode()
        r = api.post_early_answer("/v2/apps", big)
        assert r.status == 413, r
        assert r.json and r.json.get("message"), r
    case("body over 1 MiB -> 413", too_big)

    def not_object():
        r = api.post("/v2/apps", raw=b"[1, 2, 3]")
        assert r.status in (400, 422) and r.json and r.json.get("message"), r
    case("JSON array instead of object -> 400/422", not_object)

    case("missing cmd/args -> 422", lambda: _assert_422(post(without("cmd"))))
    case("negative cpus -> 422 at /cpus",
         lambda: _assert_422(post(with_(cpus=-1)), "/cpus"))
    case("negative mem -> 422 at /mem",
         lambda: _assert_422(post(with_(mem=-5)), "/mem"))
    case("negative instances -> 422 at /instances",
         lambda: _assert_422(post(with_(instances=-2)), "/instances"))
    case("bad id -> 422 at /id",
         lambda: _assert_422(post(with_(id="/Bad_ID!/x")), "/id"))
    case("id segment starting with a dash -> 422 at /id",
         lambda: _assert_422(post(with_(id="/t/-bad-")), "/id"))
    case("cmd and args together -> 422",
         lambda: _assert_422(post(with_(args=["/bin/true"]))))
    case("unknown constraint operator -> 422 naming constraints",
         lambda: _assert_422(post(with_(constraints=[["hostname", "NEAR"]])),
                             word="constraints"))
    case("unsupported uris -> 422 naming it",
         lambda: _assert_422(post(with_(uris=["http://example.invalid/a.tgz"])), word="uris"))
    case("bad healthChecks -> 422 naming the check's field",
         lambda: _assert_422(post(with_(healthChecks=[{"protocol": "HTTP", "path": "x"}])),
                             path="/healthChecks(0)/path"))
    case("port out of range -> 422",
         lambda: _assert_422(post(with_(portDefinitions=[{"port": 70000}]))))
    case("env value not a string -> 422",
         lambda: _assert_422(post(with_(env={"A": 1})), word="env"))

    def wrong_type():
        r = post(with_(mem="lots"))
        assert r.status in (400, 422) and "/mem" in r.body, r
    case("mem as a string -> 400/422 naming /mem", wrong_type)

    def duplicate():
        r = api.post("/v2/apps", app_def(dup_app))
        assert r.status == 409, r
        assert dup_app in r.json.get("message", ""), r
    case("duplicate app -> 409", duplicate)

    def unknown_app():
        r = api.get("/v2/apps/t/does-not-exist")
        assert r.status == 404, r
        assert r.json == {"message": "App '/t/does-not-exist' does not exist"}, r
    case("GET unknown app -> 404", unknown_app)

    def delete_unknown():
        r = api.delete("/v2/apps/t/does-not-exist")
        assert r.status == 404 and "does not exist" in r.json["message"], r
    case("DELETE unknown app -> 404", delete_unknown)

    def restart_unknown():
        r = api.post("/v2/apps/t/does-not-exist/restart", {})
        assert r.status == 404 and "does not exist" in r.json["message"], r
    case("restart unknown app -> 404", restart_unknown)

    def tasks_unknown():
        r = api.get("/v2/apps/t/does-not-exist/tasks")
        assert r.status == 404 and "does not exist" in r.json["message"], r
    case("tasks of unknown app -> 404", tasks_unknown)

    def kill_unknown_task():
        r = api.delete(app_path(dup_app) + "/tasks/" + dup_app[1:].replace("/", "_")
                       + ".00000000-0000-0000-0000-000000000000")
        assert r.status == 404 and r.json and r.json.get("message"), r
    case("kill unknown task -> 404", kill_unknown_task)

    def unknown_route():
        r = api.get("/v2/nonsense")
        assert r.status == 404, r
    case("unknown route -> 404", unknown_route)

    def wrong_method():
        r = api.call("PATCH", "/v2/apps")
        assert r.status == 405, r
    case("wrong method -> 405", wrong_method)

    failures = []
    for name, fn in cases:
        try:
            fn()
        except AssertionError as e:
            failures.append("%s: %s" % (name, str(e)[:600]))
        except Exception as e:
            failures.append("%s: %r" % (name, e))
        # after every bad request the master must still answer
        ping = api.get("/ping")
        if ping.status != 200:
            failures.append("after %s: /ping -> %r" % (name, ping))
            break
    assert len(cases) >= 15
    assert not failures, "%d of %d bad-request cases failed:\n  %s" % (
        len(failures), len(cases), "\n  ".join(failures))

    # Nothing invalid was created.
    ids = [a["id"] for a in api.get("/v2/apps").json["apps"]]
    assert base["id"] not in ids and "/x" not in ids, ids
    assert api.get("/v2/info").status == 200
