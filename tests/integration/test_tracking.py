#!/usr/bin/env python3
"""Integration tests of what users do with their history: names, tags and
notes (PATCH /v1/runs/{id}), deleting runs (DELETE), the list of sweeps (GET
/v1/sweeps), tag and text filters on GET /v1/runs, "did you mean" in the 400
of an unknown field, and a store written by an older vvd opened by this one.

Usage: test_tracking.py VVD [SCENARIO...]   (speaks TAP; exit 0 when all pass)

Scenarios: annotate, delete, sweeps, suggest, migrate.  Standard library only;
every scenario runs its own daemon in a temporary data directory.
"""

import os
import shutil
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, run_scenarios  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def quick(seed=1, ratio=0.1, **extra):
    s = {"kind": "lasso", "generate": {"n": 2000, "k": 64, "d": 4, "seed": seed},
         "lambda_ratio": ratio, "tol": 1e-8}
    s.update(extra)
    return s


def long_run(seed=3):
    """A run that only ends when stopped (or after 120 s)."""
    return {"kind": "lasso", "generate": {"n": 20000, "k": 256, "d": 8, "seed": seed},
            "lambda_ratio": 0.01, "solver": "adam_prox", "mu": 1e-6, "tol": 1e-12,
            "max_iter": 1000000000, "max_seconds": 120}


def problem(t, r, status, code, field, desc):
    """One point: the answer is a problem with this status, code and field."""
    try:
        body = r.json()
    except ValueError:
        body = {}
    ok = (r.status == status and r.ctype.startswith("application/problem+json")
          and body.get("error_code") == code and body.get("field") == field)
    t.ok(ok, desc, (r.status, r.text[:300]))
    return body


def patch(d, rid, body):
    return d.req("PATCH", "/v1/runs/" + rid, body)


def ids(d, query):
    r = d.get("/v1/runs?" + query)
    return [x["id"] for x in r.json()["runs"]] if r.status == 200 else r.status


def wait_running(d, rid):
    """Follows the run's events until its first metric: it is RUNNING."""
    d.follow(rid, until=lambda ev, s: ev["event"] == "metric", deadline=60)
    return d.run(rid)["state"]


def scenario_annotate(t, vvd):
    with Daemon(vvd) as d:
        a = d.submit(quick(seed=1, name="first"))["id"]
        b = d.submit(quick(seed=2))["id"]
        d.wait_end(a)
        d.wait_end(b)
        ra = d.run(a)
        t.ok(ra["name"] == "first" and ra["tags"] == [] and ra["notes"] == "",
             "a new run: its name is the spec's, no tags, empty notes",
             (ra.get("name"), ra.get("tags"), ra.get("notes")))
        t.ok(d.run(b)["name"] is None, "a run whose spec has no name: name null")

        r = patch(d, a, {"name": "baseline", "tags": ["paper", "fig2", "paper"],
                         "notes": "lambda from the paper\nsecond line"})
        j = r.json() if r.status == 200 else {}
        t.ok(r.status == 200 and j.get("name") == "baseline" and j.get("tags") == ["fig2", "paper"]
             and j.get("notes") == "lambda from the paper\nsecond line",
             "PATCH name, tags (sorted, unique) and notes: 200 with the run", (r.status, r.text[:300]))
        g = d.run(a)
        t.ok(g["name"] == "baseline" and g["tags"] == ["fig2", "paper"]
             and g["spec"]["name"] == "first",
             "GET shows what was stored; the spec keeps its own name",
             (g["name"], g["tags"], g["spec"].get("name")))
        r = patch(d, a, {"add_tags": ["v2", "fig2"], "remove_tags": ["paper", "absent"]})
        t.eq(r.json().get("tags") if r.status == 200 else r.status, ["fig2", "v2"],
             "add_tags and remove_tags change the set (removing an absent tag is no error)")
        r = patch(d, a, {"notes": ""})
        t.ok(r.status == 200 and r.json()["notes"] == "" and r.json()["tags"] == ["fig2", "v2"]
             and r.json()["name"] == "baseline", "notes \"\" clears the notes and keeps the rest")
        r = patch(d, a, {"name": None})
        t.eq(r.json().get("name") if r.status == 200 else r.status, "first",
             "name null falls back to the spec's name")
        patch(d, b, {"tags": ["v2", "ablation"], "name": "Second Try"})

        # Filters on the list.
        t.eq(ids(d, "tag=v2"), [b, a], "?tag=v2 lists both tagged runs, newest first")
        t.eq(ids(d, "tag=v2&tag=ablation"), [b], "?tag=v2&tag=ablation: a run must carry every tag")
        t.eq(ids(d, "tag=nothing"), [], "?tag=nothing: none")
        t.eq(ids(d, "q=second"), [b], "?q=second finds the run by name, any case")
        t.eq(ids(d, "q=" + a), [a], "?q=ID finds the run by id")
        t.eq(ids(d, "q=first"), [a], "?q=first finds a run by its spec's name")
        t.eq(ids(d, "q=ABLATION"), [b], "?q= matches tags too, any case")
        t.eq(ids(d, "state=finished"), [b, a], "?state=finished is FINISHED (any case)")
        problem(t, d.get("/v1/runs?state=done"), 400, "INVALID_PARAMETER_VALUE", "/query/state",
                "?state=done: 400 naming /query/state")
        many = "&".join("tag=t%d" % i for i in range(17))
        problem(t, d.get("/v1/runs?" + many), 400, "INVALID_PARAMETER_VALUE", "/query/tag",
                "17 tag filters: 400 naming /query/tag")

        # Bad bodies: each a 400 naming the field; nothing changes.
        body = problem(t, patch(d, a, {"nmae": "x"}), 400, "UNKNOWN_FIELD", "/nmae",
                       "PATCH with an unknown member: 400 UNKNOWN_FIELD at /nmae")
        t.eq(body.get("did_you_mean"), "name", "... and did_you_mean is 'name'")
        t.ok("did you mean 'name'?" in body.get("detail", ""), "... also said in the detail",
             body.get("detail"))
        problem(t, patch(d, a, {"tags": "v1"}), 400, "INVALID_TYPE", "/tags",
                "tags as a string: 400 at /tags")
        problem(t, patch(d, a, {"tags": ["ok", "has space"]}), 400, "INVALID_PARAMETER_VALUE",
                "/tags/1", "a tag with a space: 400 at /tags/1")
        problem(t, patch(d, a, {"add_tags": [7]}), 400, "INVALID_TYPE", "/add_tags/0",
                "a tag that is a number: 400 at /add_tags/0")
        problem(t, patch(d, a, {"tags": ["x" * 65]}), 400, "INVALID_PARAMETER_VALUE", "/tags/0",
                "a 65-character tag: 400 at /tags/0")
        problem(t, patch(d, a, {"tags": ["t%d" % i for i in range(33)]}), 400,
                "INVALID_PARAMETER_VALUE", "/tags", "33 tags: 400 at /tags")
        problem(t, patch(d, a, {"name": ""}), 400, "INVALID_PARAMETER_VALUE", "/name",
                "an empty name: 400 at /name")
        problem(t, patch(d, a, {"name": 3}), 400, "INVALID_TYPE", "/name",
                "a name that is a number: 400 at /name")
        problem(t, patch(d, a, {"notes": "n" * 65537}), 413, "TOO_LARGE", "/notes",
                "notes over 64 KiB: 413 at /notes")
        problem(t, patch(d, a, ["name"]), 400, "INVALID_TYPE", "",
                "a body that is not an object: 400")
        problem(t, patch(d, "r-999999", {"name": "x"}), 404, "RESOURCE_DOES_NOT_EXIST", "",
                "PATCH an unknown run: 404")
        g = d.run(a)
        t.ok(g["name"] == "first" and g["tags"] == ["fig2", "v2"] and g["notes"] == "",
             "the refused PATCHes changed nothing", (g["name"], g["tags"], g["notes"]))

        # A running run can be annotated; the annotation survives its end.
        c = d.submit(long_run())["id"]
        state = wait_running(d, c)
        r = patch(d, c, {"tags": ["live"], "notes": "watching"})
        t.ok(state == "RUNNING" and r.status == 200 and r.json()["tags"] == ["live"],
             "PATCH a RUNNING run: 200", (state, r.status))
        d.post("/v1/runs/%s/stop" % c)
        d.wait_end(c)
        g = d.run(c)
        t.ok(g["state"] == "STOPPED" and g["tags"] == ["live"] and g["notes"] == "watching",
             "the tags and notes set while it ran are kept when it ends", (g["state"], g["tags"]))
        r = d.req("PUT", "/v1/runs/" + a, {"name": "x"})
        t.ok(r.status == 405 and "PATCH" in r.json().get("detail", ""),
             "PUT on a run: 405 naming the allowed methods", (r.status, r.text[:200]))


def scenario_delete(t, vvd):
    with Daemon(vvd) as d:
        a = d.submit(quick(seed=1))["id"]
        d.wait_end(a)
        run_dir = os.path.join(d.dir, "runs", a)
        arts = d.run(a)["artifacts"]
        t.ok(os.path.isdir(run_dir) and len(arts) > 0, "a finished run has a folder and artifacts",
             (os.path.isdir(run_dir), len(arts)))
        # A link in the run's folder is removed, never followed.
        outside = os.path.join(d.dir, "keep.txt")
        with open(outside, "w") as f:
            f.write("not the run's")
        os.symlink(outside, os.path.join(run_dir, "link"))
        nfiles = sum(len(fs) for _, _, fs in os.walk(run_dir))
        r = d.req("DELETE", "/v1/runs/" + a)
        j = r.json() if r.status == 200 else {}
        t.ok(r.status == 200 and j.get("deleted") is True and j.get("id") == a
             and j.get("sweep_id") is None and j.get("files_removed") == nfiles,
             "DELETE a finished run: 200, deleted, every file of its folder counted",
             (r.status, r.text[:300], nfiles))
        t.ok(not os.path.exists(run_dir), "its folder is gone")
        t.ok(os.path.exists(outside), "a file a link in the folder pointed to is untouched")
        t.eq(d.get("/v1/runs/" + a).status, 404, "GET the deleted run: 404")
        t.eq(d.get("/v1/runs/%s/metrics" % a).status, 404, "its metrics: 404")
        t.eq(d.get("/v1/runs/%s/events" % a).status, 404, "its events: 404")
        t.eq(d.get("/v1/runs/%s/artifacts/%s" % (a, arts[0]["name"])).status, 404,
             "its artifact: 404")
        t.ok(a not in ids(d, "page_size=100"), "the list no longer has it")
        db = sqlite3.connect(os.path.join(d.dir, "vvd.db"))
        left = [db.execute("SELECT COUNT(*) FROM %s WHERE run_id = ?" % tab, (a,)).fetchone()[0]
                for tab in ("events", "metrics", "artifacts")]
        db.close()
        t.eq(left, [0, 0, 0], "no events, metrics or artifact rows of it are left in the store")
        problem(t, d.req("DELETE", "/v1/runs/" + a), 404, "RESOURCE_DOES_NOT_EXIST", "",
                "DELETE it again: 404")

        # Refused while it runs; allowed once stopped.
        c = d.submit(long_run())["id"]
        state = wait_running(d, c)
        body = problem(t, d.req("DELETE", "/v1/runs/" + c), 409, "RESOURCE_CONFLICT", "",
                       "DELETE a RUNNING run: 409")
        t.ok(state == "RUNNING" and "stop it first" in body.get("detail", ""),
             "... saying to stop it first", body.get("detail"))
        q = d.submit(quick(seed=5))["id"]
        rq = d.run(q)
        if rq["state"] == "QUEUED":
            problem(t, d.req("DELETE", "/v1/runs/" + q), 409, "RESOURCE_CONFLICT", "",
                    "DELETE a QUEUED run: 409")
        else:
            t.ok(False, "the second run waits in the queue behind the running one", rq["state"])
        t.eq(d.run(c)["state"], "RUNNING", "the refused DELETE left the run running")
        d.post("/v1/runs/%s/stop" % c)
        d.wait_end(c)
        d.wait_end(q)
        t.eq(d.req("DELETE", "/v1/runs/" + c).status, 200, "DELETE the stopped run: 200")

        # A sweep keeps a record of its deleted point, and resume runs it again.
        r = d.post("/v1/sweeps", {"name": "ratios", "base": quick(seed=7),
                                  "grid": {"lambda_ratio": [0.1, 0.2, 0.3]}})
        sw = r.json()
        for rid in sw["runs"]:
            d.wait_end(rid)
        victim, second = sw["runs"][1], sw["runs"][2]
        before = d.run(victim)
        r = d.req("DELETE", "/v1/runs/" + victim)
        t.ok(r.status == 200 and r.json().get("sweep_id") == sw["id"],
             "DELETE a sweep's run: 200 naming the sweep", (r.status, r.text[:200]))
        t.eq(d.req("DELETE", "/v1/runs/" + second).status, 200, "DELETE a second run of it")
        g = d.get("/v1/sweeps/" + sw["id"]).json()
        dl = g.get("deleted", [])
        t.ok(len(dl) == 2 and dl[0]["id"] == victim and dl[0]["point"] == before["point"]
             and dl[0]["state"] == "FINISHED" and dl[0]["spec"]["lambda_ratio"] == 0.2
             and abs(dl[0]["summary"]["lambda"] - before["summary"]["lambda"]) < 1e-15
             and dl[0]["deleted"] > 0 and dl[1]["id"] == second,
             "the sweep lists the deleted runs in order: id, point, state, spec, summary, time", dl)
        t.eq([x["id"] for x in g["runs"]], [sw["runs"][0]], "the sweep's runs are the other one")
        lst = d.get("/v1/sweeps").json()["sweeps"][0]
        t.ok(lst["points"] == 1 and lst["deleted"] == 2 and lst["counts"]["FINISHED"] == 1,
             "GET /v1/sweeps counts 1 point, 2 deleted", lst)
        r = d.post("/v1/sweeps/%s/resume" % sw["id"])
        req = r.json().get("requeued", []) if r.status == 200 else []
        t.ok(sorted(x["point"] for x in req) == sorted([before["point"], dl[1]["point"]])
             and all(x["was"] == "MISSING" for x in req),
             "resume queues both deleted points again (they were MISSING)", (r.status, r.text[:300]))
        for x in req:
            d.wait_end(x["run"])
        t.eq([d.run(x["run"])["state"] for x in req], ["FINISHED"] * len(req),
             "the points run again to FINISHED")
        lst = d.get("/v1/sweeps").json()["sweeps"][0]
        t.ok(lst["points"] == 3 and lst["counts"]["FINISHED"] == 3 and lst["deleted"] == 2,
             "then the sweep has its 3 points again, and the record of the 2 deleted runs", lst)


def scenario_sweeps(t, vvd):
    with Daemon(vvd) as d:
        s1 = d.post("/v1/sweeps", {"name": "Ratios", "base": quick(seed=1),
                                   "grid": {"lambda_ratio": [0.1, 0.2]}}).json()
        s2 = d.post("/v1/sweeps", {"base": {"kind": "interpolate",
                                            "generate": {"n": 30, "k": 4, "d": 3, "seed": 1}},
                                   "grid": {"tol": [1e-6, 1e-7]}})
        t.ok(s2.status == 201, "a sweep of another kind (interpolate)", (s2.status, s2.text[:300]))
        s2 = s2.json()
        for rid in s1["runs"] + s2.get("runs", []):
            d.wait_end(rid)
        r = d.get("/v1/sweeps")
        lst = r.json().get("sweeps", []) if r.status == 200 else []
        t.eq([x["id"] for x in lst], [s2.get("id"), s1["id"]], "GET /v1/sweeps: newest first")
        x = lst[1] if len(lst) == 2 else {}
        t.ok(x.get("name") == "Ratios" and x.get("kind") == "lasso"
             and x.get("grid") == {"lambda_ratio": [0.1, 0.2]} and x.get("points") == 2
             and x.get("state") == "FINISHED" and x.get("counts", {}).get("FINISHED") == 2
             and x.get("deleted") == 0,
             "a sweep in the list: name, kind, grid, points, state, counts", x)
        t.eq(lst[0].get("kind") if lst else None, "interpolate", "the other sweep's kind")
        g = d.get("/v1/sweeps/" + s1["id"]).json()
        t.ok(g.get("name") == "Ratios" and g.get("kind") == "lasso" and g.get("deleted") == []
             and g.get("grid") == {"lambda_ratio": [0.1, 0.2]},
             "GET /v1/sweeps/{id} has name, kind, grid and an empty deleted list")

        def sweep_ids(query):
            r = d.get("/v1/sweeps?" + query)
            return [x["id"] for x in r.json()["sweeps"]] if r.status == 200 else r.status

        t.eq(sweep_ids("kind=lasso"), [s1["id"]], "?kind=lasso (a base without kind is lasso)")
        t.eq(sweep_ids("kind=interpolate"), [s2.get("id")], "?kind=interpolate")
        t.eq(sweep_ids("state=finished"), [s2.get("id"), s1["id"]], "?state=finished (any case)")
        t.eq(sweep_ids("state=ACTIVE"), [], "?state=ACTIVE: none")
        t.eq(sweep_ids("q=ratio"), [s1["id"]], "?q=ratio finds the sweep by name")
        t.eq(sweep_ids("q=" + s2.get("id", "?")), [s2.get("id")], "?q=ID finds it by id")
        r = d.get("/v1/sweeps?page_size=1")
        p1 = r.json()
        r2 = d.get("/v1/sweeps?page_size=1&page_token=" + p1["next_page_token"])
        p2 = r2.json() if r2.status == 200 else {}
        t.ok([x["id"] for x in p1["sweeps"]] == [s2.get("id")] and p1["next_page_token"]
             and [x["id"] for x in p2.get("sweeps", [])] == [s1["id"]]
             and p2.get("next_page_token") == "",
             "paging: page_size=1 twice walks both sweeps, the last token is empty")
        problem(t, d.get("/v1/sweeps?state=done"), 400, "INVALID_PARAMETER_VALUE", "/query/state",
                "?state=done: 400 naming /query/state")
        problem(t, d.get("/v1/sweeps?page_token=zz"), 400, "INVALID_PARAMETER_VALUE",
                "/query/page_token", "a malformed page_token: 400")
        problem(t, d.get("/v1/sweeps?page_size=0"), 400, "INVALID_PARAMETER_VALUE",
                "/query/page_size", "page_size=0: 400")
        r = d.req("DELETE", "/v1/sweeps")
        t.eq(r.status, 405, "DELETE /v1/sweeps: 405")


def scenario_suggest(t, vvd):
    with Daemon(vvd) as d:
        cases = [
            ({"kind": "lasso", "generate": {"n": 100, "k": 4, "d": 2}, "lamda": 0.1},
             "/lamda", "lambda", "a misspelled top-level lasso field"),
            ({"generate": {"n": 100, "k": 4, "d": 2, "sed": 1}, "lambda": 0.1},
             "/generate/sed", "seed", "a misspelled nested field (generate.sed)"),
            ({"kind": "lasso", "generate": {"n": 100, "k": 4, "d": 2}, "lambda_ration": 0.1},
             "/lambda_ration", "lambda_ratio", "lambda_ration"),
            ({"kind": "lasso", "generate": {"n": 100, "k": 4, "d": 2}, "lambda": 0.1,
              "Solver": "bcd"}, "/Solver", "solver", "a field in the wrong case"),
            ({"kind": "compress", "model": "none", "data": "fashion-mnist", "layers": ["fc2"],
              "lambda_ratio": 0.1, "finetune": {"epoch": 1}}, "/finetune/epoch", "epochs",
             "a misspelled compress finetune field"),
            ({"kind": "train", "preset": "fmnist-mlp", "epocs": 1}, "/epocs", "epochs",
             "a misspelled train field"),
        ]
        for spec, field, near, what in cases:
            body = problem(t, d.post("/v1/runs", spec), 400, "UNKNOWN_FIELD", field,
                           "%s: 400 UNKNOWN_FIELD at %s" % (what, field))
            t.ok(body.get("did_you_mean") == near
                 and body.get("detail", "").endswith("did you mean '%s'?" % near),
                 "... did_you_mean '%s', also in the detail" % near, body)
        body = problem(t, d.post("/v1/runs", {"kind": "lasso", "generate": {"n": 100, "k": 4,
                                                                          "d": 2},
                                              "lambda": 0.1, "zzzzzzzz": 1}),
                       400, "UNKNOWN_FIELD", "/zzzzzzzz", "a field like no valid one: 400")
        t.ok("did_you_mean" not in body and "allowed:" in body.get("detail", ""),
             "... with no did_you_mean, and the detail lists the valid fields", body)
        body = problem(t, d.post("/v1/sweeps", {"base": quick(), "grid": {"lambda_ratoi": [0.1]}}),
                       400, "UNKNOWN_FIELD", "/grid/lambda_ratoi", "a misspelled grid field: 400")
        t.eq(body.get("did_you_mean"), "lambda_ratio", "... did_you_mean 'lambda_ratio'")
        body = problem(t, d.post("/v1/sweeps", {"base": quick(), "gird": {}}), 400,
                       "UNKNOWN_FIELD", "/gird", "a misspelled sweep member: 400")
        t.eq(body.get("did_you_mean"), "grid", "... did_you_mean 'grid'")


def scenario_migrate(t, vvd):
    """A data dir written by a vvd with only the first schema (user_version
    1) is upgraded in place: its runs keep everything and gain no name,
    no tags and empty notes."""
    tmp = tempfile.mkdtemp(prefix="vvd-mig-")
    db = sqlite3.connect(os.path.join(tmp, "vvd.db"))
    with open(os.path.join(ROOT, "schema", "sql", "001_init.sql")) as f:
        db.executescript(f.read())
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs (id, kind, state, spec, result, created, started, finished) "
               "VALUES ('r-000007', 'lasso', 'FINISHED', '{\"kind\":\"lasso\",\"name\":\"old\"}', "
               "'{\"lambda\":0.5,\"active\":3}', 1700000000, 1700000001, 1700000002)")
    db.commit()
    db.close()
    with Daemon(vvd, data_dir=tmp) as d:
        g = d.get("/v1/runs/r-000007")
        j = g.json() if g.status == 200 else {}
        t.ok(j.get("state") == "FINISHED" and j.get("name") == "old" and j.get("tags") == []
             and j.get("notes") == "" and j.get("summary", {}).get("active") == 3,
             "the old run reads back, with name from its spec, no tags, empty notes", j)
        r = patch(d, "r-000007", {"tags": ["legacy"]})
        t.ok(r.status == 200 and r.json()["tags"] == ["legacy"], "and can be tagged")
        nid = d.submit(quick(seed=3))["id"]
        t.eq(nid, "r-000008", "new ids continue after the old ones")
        d.wait_end(nid)
    db = sqlite3.connect(os.path.join(tmp, "vvd.db"))
    ver = db.execute("PRAGMA user_version").fetchone()[0]
    tags = db.execute("SELECT tags FROM runs WHERE id = 'r-000007'").fetchone()[0]
    db.close()
    t.ok(ver >= 2 and tags == '["legacy"]', "the file is at the new schema version and holds the tag",
         (ver, tags))
    shutil.rmtree(tmp)


SCENARIOS = [("annotate", scenario_annotate), ("delete", scenario_delete),
             ("sweeps", scenario_sweeps), ("suggest", scenario_suggest),
             ("migrate", scenario_migrate)]

if __name__ == "__main__":
    sys.exit(run_scenarios(sys.argv, SCENARIOS))
