#!/usr/bin/env python3
"""Integration tests of the `vvd serve` daemon: a real daemon on loopback.

Usage: test_daemon.py VVD [SCENARIO...]   (speaks TAP; exit 0 when all pass)

Scenarios: stream, stop, sweep, restart, bad, token (the load test is
test_daemon_load.py).  Standard library
only.  Every scenario starts its own daemon in a temporary data directory and
kills it (and removes the directory) when it ends, failures included.
Nothing waits on a fixed sleep for something to happen: readiness is the port
file, progress is the SSE stream.
"""

import http.client
import json
import math
import os
import random
import re
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import (Daemon, Resp, npy_bytes, npy_header, request,  # noqa: E402
                         run_scenarios)

FINAL = ("FINISHED", "STOPPED", "FAILED", "CRASHED")
METRIC_KEYS = ("objective", "gap", "rel_gap", "active", "mse", "group_norm", "lambda")
RUN_KEYS = ("id", "kind", "state", "stop_reason", "sweep_id", "created", "started", "finished",
            "heartbeat", "queue_position", "waiting_reason", "spec", "result", "error",
            "summary", "artifacts")
PROBLEM_KEYS = ("type", "title", "status", "detail", "error_code", "field", "instance")


def quick(seed=1, ratio=0.1, tol=1e-8):
    return {"kind": "lasso", "generate": {"n": 2000, "k": 64, "d": 4, "seed": seed},
            "lambda_ratio": ratio, "tol": tol}


def long_run(seed=3, **extra):
    """A run that ends only when stopped or after 120 s: its iteration limit
    (10^9) is out of reach (the default 10^5 was reached under load)."""
    s = {"kind": "lasso", "generate": {"n": 20000, "k": 256, "d": 8, "seed": seed},
         "lambda_ratio": 0.01, "solver": "adam_prox", "mu": 1e-6, "tol": 1e-12,
         "max_iter": 1000000000, "max_seconds": 120}
    s.update(extra)
    return s


def reference(seed):
    return {"kind": "lasso", "generate": {"n": 50000, "k": 256, "d": 10, "seed": seed},
            "lambda_ratio": 0.05}


def n_metrics(k):
    """until() for follow(): stop once k metric events arrived."""
    return lambda ev, s: len(s.of("metric")) >= k


def contiguous(ids, first=1):
    return ids == list(range(first, first + len(ids)))


def increasing(xs):
    return all(b > a for a, b in zip(xs, xs[1:]))


def stream_points(events):
    """{(step, key): value} of the metric events of a stream."""
    pts = {}
    for e in events:
        if e["event"] != "metric":
            continue
        d = e["data"]
        for k in METRIC_KEYS:
            v = d.get(k)
            if isinstance(v, (int, float)) and math.isfinite(v):
                pts[(d["step"], k)] = float(v)
    return pts


def stored_points(d, run_id, query=""):
    r = d.get("/v1/runs/%s/metrics%s" % (run_id, query))
    if r.status != 200:
        raise RuntimeError("metrics of %s: %r" % (run_id, r))
    m = r.json()
    pts = {(p["step"], p["key"]): p["value"] for p in m["metrics"]}
    return m, pts


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def check_problem(t, r, status, code, field=None, desc="", path=None):
    """One test point: status, problem+json type, members, error_code, field."""
    errs = []
    body = None
    if r.status != status:
        errs.append("status %d, want %d" % (r.status, status))
    if not r.ctype.startswith("application/problem+json"):
        errs.append("Content-Type %r" % r.ctype)
    try:
        body = r.json()
    except ValueError:
        errs.append("body is not JSON")
    if isinstance(body, dict):
        missing = [k for k in PROBLEM_KEYS if k not in body]
        if missing:
            errs.append("members missing: %s" % missing)
        if body.get("status") != status:
            errs.append("body status %r" % body.get("status"))
        codes = code if isinstance(code, (list, tuple)) else (code,)
        if body.get("error_code") not in codes:
            errs.append("error_code %r, want %s" % (body.get("error_code"), "/".join(codes)))
        if field is not None:
            fields = field if isinstance(field, (list, tuple)) else (field,)
            if body.get("field") not in fields:
                errs.append("field %r, want %s" % (body.get("field"), " or ".join(map(repr, fields))))
        if path is not None and body.get("instance") != path.split("?")[0]:
            errs.append("instance %r, want %r" % (body.get("instance"), path.split("?")[0]))
    elif body is not None:
        errs.append("body is not an object")
    return t.ok(not errs, desc, "; ".join(errs) + "\nbody: %r" % r.body[:400])


def artifact_names(run):
    return sorted(a["name"] for a in run.get("artifacts") or [])


# ==== 1, 2, 4: a run followed to the end, metrics, artifacts, resume ========


def scenario_stream(t, vvd):
    with Daemon(vvd) as d:
        h = d.get("/health")
        t.ok(h.status == 200 and h.json().get("status") == "ok", "GET /health is 200 {status: ok}")

        spec = quick(seed=1, ratio=0.1, tol=1e-8)
        r = d.post("/v1/runs", spec)
        t.eq(r.status, 201, "POST /v1/runs with a generated problem answers 201")
        run = r.json()
        rid = run["id"]
        t.ok(re.fullmatch(r"r-\d{6}", rid) and all(k in run for k in RUN_KEYS)
             and run["kind"] == "lasso" and run["spec"] == spec and run["error"] is None
             and run["state"] in ("QUEUED", "RUNNING", "FINISHED") and run["created"] > 0
             and r.ctype.startswith("application/json"),
             "the 201 body is a run object (id r-NNNNNN, every member, the spec echoed)",
             json.dumps(run)[:600])

        s = d.follow(rid, deadline=60)
        t.ok(s.status == 200 and s.ctype.startswith("text/event-stream"),
             "GET /v1/runs/{id}/events is 200 text/event-stream", (s.status, s.ctype))
        t.eq(s.first_line, "retry: 2000", "the stream opens with 'retry: 2000'")
        t.ok(s.ended and s.error is None, "the stream ends by itself after the final state",
             s.error)
        ids = s.ids()
        t.ok(len(ids) >= 6 and contiguous(ids), "event ids are 1, 2, 3, ... with no gap",
             ids[:40])
        head = [(e["event"], (e["data"] or {}).get("state") or (e["data"] or {}).get("event"))
                for e in s.events[:4]]
        t.eq(head, [("state", "QUEUED"), ("state", "RUNNING"), ("log", "start"), ("log", "stats")],
             "the first events are state QUEUED, state RUNNING, log start, log stats")
        mev = s.of("metric")
        steps = [e["data"]["step"] for e in mev]
        t.ok(len(steps) >= 2 and increasing(steps), "metric steps arrive strictly increasing",
             steps[:50])
        t.ok(all(set(METRIC_KEYS) <= set(e["data"]) for e in mev),
             "every metric event carries objective gap rel_gap active mse group_norm lambda")
        last = s.events[-1] if s.events else {"event": None, "data": {}}
        t.ok(last["event"] == "state" and last["data"].get("state") == "FINISHED"
             and last["data"].get("stop_reason") == "converged",
             "the last event is state FINISHED / converged", last)
        t.eq(sum(1 for e in s.events if e["event"] == "state" and e["data"]["state"] in FINAL), 1,
             "exactly one final state event")

        # The state is stored when the stream ends: read it right away.
        run = d.run(rid)
        res = run["result"] or {}
        t.ok(run["state"] == "FINISHED" and run["stop_reason"] == "converged",
             "GET right after the stream ended: FINISHED, stop_reason converged",
             (run["state"], run["stop_reason"]))
        t.ok(isinstance(res.get("rel_gap"), (int, float)) and res["rel_gap"] <= spec["tol"]
             and res.get("gap", -1) >= -1e-12 and res.get("iterations", 0) > 0,
             "auto-stop: result rel_gap <= tol (a duality-gap certificate), iterations > 0",
             {k: res.get(k) for k in ("rel_gap", "gap", "iterations")})
        t.ok(all(k in res for k in ("objective", "gap", "rel_gap", "active", "iterations",
                                    "lambda", "outputs")),
             "the result has objective, gap, rel_gap, active, iterations, lambda, outputs",
             sorted(res))
        t.ok(run["created"] <= run["started"] <= run["finished"] and run["started"] > 0
             and run["queue_position"] == 0 and run["error"] is None,
             "created <= started <= finished, queue_position 0, error null",
             {k: run[k] for k in ("created", "started", "finished", "queue_position")})
        t.ok(close(run["summary"].get("objective", float("nan")), res.get("objective", 0.0))
             and run["summary"].get("iterations") == res.get("iterations"),
             "summary repeats the result's numbers", run["summary"])

        # Metrics endpoint == stream.
        spts = stream_points(s.events)
        m, pts = stored_points(d, rid)
        t.ok(m["run_id"] == rid and m["count"] == len(m["metrics"]) == len(pts),
             "GET /v1/runs/{id}/metrics: run_id, count == len(metrics)", (m["run_id"], m["count"]))
        t.ok(sorted({st for st, _ in pts}) == steps,
             "the stored metric steps are exactly the streamed steps",
             (sorted({st for st, _ in pts})[:30], steps[:30]))
        t.ok(set(pts) == set(spts) and all(close(pts[k], spts[k]) for k in spts),
             "every stored (step, key, value) equals the streamed one",
             (len(pts), len(spts), sorted(set(pts) ^ set(spts))[:10]))
        mk, pk = stored_points(d, rid, "?keys=objective,rel_gap")
        t.ok({k for _, k in pk} == {"objective", "rel_gap"}
             and len(pk) == sum(1 for k in spts if k[1] in ("objective", "rel_gap")),
             "?keys=objective,rel_gap returns only those keys, all of them", mk["count"])
        cut = steps[len(steps) // 2]
        ma, pa = stored_points(d, rid, "?after_step=%d" % cut)
        t.ok(pa and min(st for st, _ in pa) > cut and len(pa) == sum(1 for k in spts if k[0] > cut),
             "?after_step=N returns exactly the points of later steps", (cut, ma["count"]))
        rc = d.get("/v1/runs/%s/metrics?format=csv" % rid)
        lines = rc.body.decode().splitlines()
        ok_csv = rc.status == 200 and "csv" in rc.ctype and lines and lines[0] == "step,key,value,time"
        rows = [ln.split(",") for ln in lines[1:] if ln]
        ok_csv = ok_csv and len(rows) == m["count"] and all(
            close(float(v), pts[(int(st), k)]) for st, k, v, _ in rows)
        t.ok(ok_csv, "?format=csv: header step,key,value,time and the same points",
             (rc.status, rc.ctype, lines[:2], len(rows), m["count"]))

        # Artifacts.
        names = artifact_names(run)
        t.ok({"V.npy", "kept.npy", "result.json"} <= set(names),
             "artifacts list V.npy, kept.npy, result.json", names)
        okall, why = True, []
        for a in run["artifacts"]:
            ra = d.get(a["url"])
            if ra.status != 200 or len(ra.body) != a["bytes"]:
                okall = False
                why.append((a["name"], ra.status, len(ra.body), a["bytes"]))
        t.ok(okall and run["artifacts"], "every artifact downloads (200) with its listed size", why)
        rv = d.get("/v1/runs/%s/artifacts/V.npy" % rid)
        try:
            hv = npy_header(rv.body)
            shape_ok = (hv["shape"] == (4, 64) and hv["descr"] == "<f4" and not hv["fortran_order"]
                        and len(rv.body) - hv["data_offset"] == 4 * 64 * 4)
        except (ValueError, SyntaxError, KeyError) as e:
            hv, shape_ok = repr(e), False
        t.ok(shape_ok, "V.npy is a float32 (D, K) = (4, 64) array", hv)
        rr = d.get("/v1/runs/%s/artifacts/result.json" % rid)
        t.ok(rr.status == 200 and close(json.loads(rr.body)["objective"], res["objective"]),
             "result.json downloads and matches the run's result")
        check_problem(t, d.get("/v1/runs/%s/artifacts/nope.npy" % rid), 404,
                      "RESOURCE_DOES_NOT_EXIST", desc="an artifact the run does not have: 404")

        # Listing and Prometheus.
        lst = d.get("/v1/runs").json()
        t.ok([x["id"] for x in lst["runs"]] == [rid] and lst["next_page_token"] == "",
             "GET /v1/runs lists the run, next_page_token empty", lst.get("next_page_token"))
        fin = d.get("/v1/runs?state=FINISHED&kind=lasso").json()["runs"]
        que = d.get("/v1/runs?state=QUEUED").json()["runs"]
        t.ok([x["id"] for x in fin] == [rid] and que == [],
             "?state=FINISHED&kind=lasso has it, ?state=QUEUED does not")
        pm = d.get("/metrics")
        txt = pm.body.decode()
        it = re.search(r"^vvd_iterations_total (\d+)", txt, re.M)
        t.ok(pm.status == 200 and pm.ctype.startswith("text/plain")
             and re.search(r"^vvd_queue_length 0$", txt, re.M)
             and re.search(r'^vvd_runs\{state="FINISHED"\} 1$', txt, re.M)
             and "vvd_iterations_per_second" in txt and it and int(it.group(1)) >= 1,
             "GET /metrics: Prometheus text with queue length, runs by state, iterations",
             txt[:600])

        # 2. Resume after the end: exactly the remaining events.
        raw = [(e["id"], e["event"], e["raw"]) for e in s.events]
        for k in (0, 3, len(ids) // 2, len(ids) - 1):
            s2 = d.follow(rid, after=k, deadline=30)
            t.ok(s2.ended and [(e["id"], e["event"], e["raw"]) for e in s2.events] == raw[k:],
                 "resume after the end with Last-Event-ID: %d gives exactly events %d..%d"
                 % (k, k + 1, len(ids)), (s2.error, s2.ids()[:10]))
        s3 = d.follow(rid, query_after=4, deadline=30)
        t.ok(s3.ended and [(e["id"], e["event"], e["raw"]) for e in s3.events] == raw[4:],
             "resume with ?after=4 gives exactly events 5..N", s3.ids()[:10])
        s4 = d.follow(rid, after=len(ids), deadline=30)
        t.ok(s4.ended and s4.events == [] and s4.error is None,
             "Last-Event-ID: <last id> of an ended run: no events, the stream ends", s4.ids())

        # 2. Resume mid-stream on a live run.
        L = d.submit(long_run(metrics_every=5))["id"]
        a = d.follow(L, until=n_metrics(5), deadline=60)
        t.ok(a.stopped and contiguous(a.ids()), "live run: first connection read 5 metric events",
             a.error)
        k = a.events[-1]["id"] if a.events else 0
        stop_sent = []

        def stop_after_more(ev, st):
            if not stop_sent and len(st.of("metric")) >= 20:
                stop_sent.append(d.post("/v1/runs/%s/stop" % L).status)
            return False

        b = d.follow(L, after=k, until=stop_after_more, deadline=90)
        t.ok(b.ended and b.events and b.events[0]["id"] == k + 1 and contiguous(b.ids(), k + 1),
             "live resume with Last-Event-ID: %d continues at %d with no gap, to the end" % (k, k + 1),
             (b.error, b.ids()[:5]))
        t.ok(stop_sent == [200] and b.events and b.events[-1]["event"] == "state"
             and b.events[-1]["data"]["state"] == "STOPPED",
             "the resumed stream carries the run to its final state (STOPPED by user)",
             (stop_sent, b.events[-1] if b.events else None))
        full = d.follow(L, deadline=90)
        fr = [(e["id"], e["event"], e["raw"]) for e in full.events]
        t.ok(full.ended and fr[:k] == [(e["id"], e["event"], e["raw"]) for e in a.events]
             and fr[k:] == [(e["id"], e["event"], e["raw"]) for e in b.events],
             "first connection + resumed connection == the whole stream, event for event",
             (len(fr), k, len(b.events)))

        # 2. A run with more events than the daemon keeps in memory (a metric
        # every iteration): a late subscriber starting from 0 reads old events
        # from the store and new ones live, with no gap or duplicate.
        W = d.submit(long_run(metrics_every=1))["id"]
        a = d.follow(W, until=n_metrics(6000), deadline=90)
        t.ok(a.stopped and contiguous(a.ids()), "a run reporting every iteration streamed 6000 "
             "metric events, ids contiguous", (a.error, len(a.events)))
        ka = a.events[-1]["id"] if a.events else 0
        late = d.follow(W, after=0, until=lambda ev, st: ev["id"] >= ka + 300, deadline=90)
        t.ok(late.stopped and contiguous(late.ids()) and len(late.events) >= ka + 300,
             "a late subscriber (Last-Event-ID: 0) gets events 1..%d+ from store and live, no gap"
             % (ka + 300), (late.error, len(late.events)))
        t.eq(d.post("/v1/runs/%s/stop" % W).status, 200, "stop it: 200")
        rest = d.follow(W, after=ka, deadline=90)
        whole = d.follow(W, deadline=90)
        wr = [(e["id"], e["event"], e["raw"]) for e in whole.events]
        t.ok(rest.ended and whole.ended and contiguous(whole.ids())
             and wr == [(e["id"], e["event"], e["raw"]) for e in a.events + rest.events]
             and wr[:len(late.events)] == [(e["id"], e["event"], e["raw"]) for e in late.events]
             and whole.events[-1]["data"].get("state") == "STOPPED",
             "live stream + resumed rest == late stream prefix == the whole stream after the end "
             "(%d events)" % len(wr), (rest.error, whole.error, len(wr)))
        _, wp = stored_points(d, W)
        t.ok(set(wp) == set(stream_points(whole.events)),
             "stored metrics == streamed metrics (%d points)" % len(wp))

        # 4. Other stop reasons: max_iter.
        mi = d.submit(dict(quick(seed=7, ratio=0.01, tol=1e-14), max_iter=3))["id"]
        d.wait_end(mi)
        mrun = d.run(mi)
        t.ok(mrun["state"] == "FINISHED" and mrun["stop_reason"] == "max_iter"
             and mrun["result"]["iterations"] <= 3,
             "max_iter 3 with an unreachable tol: FINISHED, stop_reason max_iter",
             (mrun["state"], mrun["stop_reason"], (mrun["result"] or {}).get("iterations")))


# ==== 3: stop =================================================================


def scenario_stop(t, vvd):
    with Daemon(vvd) as d:
        L = d.submit(long_run())["id"]
        a = d.follow(L, until=n_metrics(3), deadline=60)
        t.ok(a.stopped and len(a.of("metric")) >= 3,
             "a long run reported 3 metric events on its stream", a.error)
        t.eq(d.run(L)["state"], "RUNNING", "it is RUNNING")
        r = d.post("/v1/runs/%s/stop" % L)
        t.ok(r.status == 200 and r.json()["id"] == L and r.json()["state"] in ("RUNNING", "STOPPED"),
             "POST /v1/runs/{id}/stop on a RUNNING run: 200 with the run object", r)
        k = a.events[-1]["id"]
        b = d.follow(L, after=k, deadline=60)
        last = b.events[-1] if b.events else {"event": None, "data": {}}
        t.ok(b.ended and contiguous(b.ids(), k + 1) and last["event"] == "state"
             and last["data"].get("state") == "STOPPED" and last["data"].get("stop_reason") == "user",
             "the stream goes on to a final state STOPPED / user, then ends", (b.error, last))
        run = d.run(L)
        t.ok(run["state"] == "STOPPED" and run["stop_reason"] == "user" and run["finished"] > 0,
             "GET: STOPPED, stop_reason user", (run["state"], run["stop_reason"]))
        t.ok("V.npy" in artifact_names(run), "a stopped run keeps V.npy as an artifact",
             artifact_names(run))
        rv = d.get("/v1/runs/%s/artifacts/V.npy" % L)
        try:
            hv = npy_header(rv.body)
            okv = rv.status == 200 and hv["shape"] == (8, 256) and hv["descr"] == "<f4"
        except (ValueError, SyntaxError, KeyError) as e:
            hv, okv = repr(e), False
        t.ok(okv, "the stopped run's V.npy downloads as float32 (8, 256)", hv)
        allev = a.events + b.events
        _, pts = stored_points(d, L)
        t.ok(set(pts) == set(stream_points(allev)),
             "stored metrics of the stopped run == the streamed ones (%d points)" % len(pts),
             (len(pts), len(stream_points(allev))))
        r2 = d.post("/v1/runs/%s/stop" % L)
        t.ok(r2.status == 200 and r2.json()["state"] == "STOPPED"
             and r2.json()["stop_reason"] == "user",
             "stop again on the STOPPED run: 200, still STOPPED / user", r2)

        # A QUEUED run behind a long one.
        L2 = d.submit(long_run())["id"]
        a2 = d.follow(L2, until=n_metrics(1), deadline=60)
        t.ok(a2.stopped, "a second long run is RUNNING (it reported a metric)", a2.error)
        Q = d.submit(quick(seed=11))["id"]
        q = d.run(Q)
        t.ok(q["state"] == "QUEUED" and q["queue_position"] == 1 and q["waiting_reason"],
             "a run submitted behind it is QUEUED, queue_position 1, with a waiting_reason",
             {k: q[k] for k in ("state", "queue_position", "waiting_reason")})
        t0 = time.monotonic()
        sp = d.follow(Q, on_ping=lambda st: st.pings >= 3, deadline=20)
        t.ok(sp.stopped and sp.pings >= 3 and [e["data"]["state"] for e in sp.events] == ["QUEUED"],
             "the stream of a waiting run sends ': ping' comments while idle (3 in %.1f s with "
             "--sse-ping 0.5)" % (time.monotonic() - t0), (sp.error, sp.pings, sp.ids()))
        rq = d.post("/v1/runs/%s/stop" % Q)
        t.ok(rq.status == 200 and rq.json()["state"] == "STOPPED",
             "stop the QUEUED run: 200, STOPPED", rq)
        q = d.run(Q)
        t.ok(q["state"] == "STOPPED" and q["stop_reason"] == "user" and q["started"] == 0
             and q["result"] is None,
             "it never started: STOPPED / user, started == 0, result null",
             {k: q[k] for k in ("state", "stop_reason", "started", "result")})
        sq = d.follow(Q, deadline=30)
        states = [e["data"]["state"] for e in sq.of("state")]
        t.ok(sq.ended and states == ["QUEUED", "STOPPED"] and contiguous(sq.ids())
             and not sq.of("metric"),
             "its events: state QUEUED, state STOPPED, no RUNNING, no metrics, stream ends",
             (sq.error, states))
        t.eq(d.post("/v1/runs/%s/stop" % Q).status, 200, "stop again on the stopped QUEUED run: 200")

        # The stream of a QUEUED run that is stopped ends only once STOPPED is
        # stored: followers connected first, then the runs are stopped, and
        # each follower reads the run the moment its stream ends.
        seen_state = []
        for rnd in range(8):
            ids = [d.submit(quick(seed=300 + 20 * rnd + i))["id"] for i in range(20)]
            connected = {i: threading.Event() for i in ids}
            after_end = {}

            def watch(i):
                s = d.follow(i, until=lambda ev, st: connected[i].set(), deadline=30)
                after_end[i] = (s.ended, [e["data"]["state"] for e in s.of("state")],
                                d.try_req("GET", "/v1/runs/" + i))
            ths = [threading.Thread(target=watch, args=(i,), daemon=True) for i in ids]
            for th in ths:
                th.start()
            for i in ids:
                connected[i].wait(20)
            for i in ids:
                d.post("/v1/runs/%s/stop" % i)
            for th in ths:
                th.join(60)
            for i in ids:
                ended, states, r = after_end.get(i, (False, [], None))
                got = r.json()["state"] if r is not None and r.status == 200 else repr(r)
                seen_state.append((i, ended, states, got))
        wrong = [x for x in seen_state if not (x[1] and x[2] == ["QUEUED", "STOPPED"]
                                               and x[3] == "STOPPED")]
        t.ok(not wrong, "stopping QUEUED runs with followers: each stream ends after QUEUED, "
             "STOPPED and a GET at that moment says STOPPED (%d of %d wrong)"
             % (len(wrong), len(seen_state)), wrong[:5])
        t.eq(d.run(L2)["state"], "RUNNING", "the long run ahead of them is still RUNNING")
        d.post("/v1/runs/%s/stop" % L2)
        e2 = d.follow(L2, after=a2.events[-1]["id"], deadline=60)
        r2 = d.run(L2)
        t.ok(e2.ended and r2["state"] == "STOPPED", "the second long run stops too",
             (e2.status, e2.ended, e2.error, [e["data"] for e in e2.of("state")],
              r2["state"], r2["stop_reason"]))

        # Stop is idempotent: a FINISHED run answers 200 and stays FINISHED.
        F = d.submit(quick(seed=12))["id"]
        d.wait_end(F)
        path = "/v1/runs/%s/stop" % F
        sr = d.post(path)
        t.ok(sr.status == 200 and sr.json()["state"] == "FINISHED"
             and sr.json()["stop_reason"] == "converged",
             "stop a FINISHED run: 200 with the run unchanged (FINISHED, converged)",
             (sr.status, sr.text[:200]))
        t.eq(d.run(F)["state"], "FINISHED", "the FINISHED run stays FINISHED")

        # max_seconds.
        M = d.submit(long_run(max_seconds=0.3))["id"]
        d.wait_end(M)
        mr = d.run(M)
        t.ok(mr["state"] == "FINISHED" and mr["stop_reason"] == "max_seconds"
             and "V.npy" in artifact_names(mr),
             "max_seconds 0.3 on a long run: FINISHED, stop_reason max_seconds, V.npy kept",
             (mr["state"], mr["stop_reason"]))

        # Sweep stop: one running, one queued.
        sw = d.post("/v1/sweeps", {"base": long_run(), "grid": {"mu": [1e-6, 2e-6]}})
        t.eq(sw.status, 201, "a sweep of two long runs is created")
        sid, (s1, s2) = sw.json()["id"], sw.json()["runs"]
        d.follow(s1, until=n_metrics(1), deadline=60)
        rs = d.post("/v1/sweeps/%s/stop" % sid)
        t.eq(rs.status, 200, "POST /v1/sweeps/{id}/stop: 200")
        f1, f2 = d.follow(s1, deadline=60), d.follow(s2, deadline=60)
        g = d.get("/v1/sweeps/" + sid).json()
        t.ok(f1.ended and f2.ended and g["counts"]["STOPPED"] == 2
             and [x["state"] for x in g["runs"]] == ["STOPPED", "STOPPED"]
             and d.run(s2)["started"] == 0,
             "both runs of the stopped sweep end STOPPED (the queued one never started)",
             g.get("counts"))


# ==== 5: sweeps ===============================================================


def scenario_sweep(t, vvd):
    with Daemon(vvd) as d:
        base = quick(seed=2)
        del base["lambda_ratio"], base["tol"]
        grid = {"lambda_ratio": [0.5, 0.1, 0.5], "tol": [1e-6, 1e-8]}
        r = d.post("/v1/sweeps", {"base": base, "grid": grid, "name": "it-sweep"})
        t.eq(r.status, 201, "POST /v1/sweeps with a 3x2 grid (0.5 twice): 201")
        sw = r.json()
        sid, ids = sw.get("id", ""), sw.get("runs", [])
        want = {(lr, tol) for lr in (0.5, 0.1) for tol in (1e-6, 1e-8)}
        t.ok(re.fullmatch(r"s-\d{6}", sid) and sw.get("points") == 4 and len(ids) == 4
             and len(set(ids)) == 4,
             "the duplicate value is expanded once: 4 points, 4 distinct runs", sw)
        streams = {i: d.follow(i, deadline=60) for i in ids}
        t.ok(all(s.ended and s.events and s.events[-1]["data"].get("state") == "FINISHED"
                 for s in streams.values()),
             "every run of the sweep streams to FINISHED")
        g = d.get("/v1/sweeps/" + sid)
        gj = g.json()
        gids = [x["id"] for x in gj.get("runs", [])]
        t.ok(g.status == 200 and gj["id"] == sid and sorted(gids) == sorted(ids)
             and len(gids) == len(set(gids)),
             "GET /v1/sweeps/{id} lists every run once", gids)
        t.ok(gj.get("counts") == {"QUEUED": 0, "RUNNING": 0, "FINISHED": 4, "STOPPED": 0,
                                  "FAILED": 0, "CRASHED": 0} and gj.get("state") == "FINISHED",
             "sweep counts: FINISHED 4, state FINISHED", (gj.get("counts"), gj.get("state")))
        lj = d.get("/v1/runs?sweep=" + sid).json()
        lids = [x["id"] for x in lj["runs"]]
        t.ok(sorted(lids) == sorted(ids) and len(lids) == 4 and lj["next_page_token"] == "",
             "GET /v1/runs?sweep= lists every run once", lids)
        # Paging one at a time.
        seen, tok, pages = [], "", 0
        while pages < 10:
            pr = d.get("/v1/runs?sweep=%s&page_size=1%s" % (sid, "&page_token=" + tok if tok else ""))
            if pr.status != 200:
                break
            pj = pr.json()
            seen += [x["id"] for x in pj["runs"]]
            pages += 1
            tok = pj["next_page_token"]
            if not tok:
                break
        t.ok(sorted(seen) == sorted(ids) and len(seen) == 4 and not tok,
             "page_size=1 pages through the sweep: each run exactly once, then an empty token",
             (seen, pages))
        pts, bad = set(), []
        for i in ids:
            run = d.run(i)
            sp, res = run["spec"], run["result"] or {}
            pt = (sp.get("lambda_ratio"), sp.get("tol"))
            pts.add(pt)
            lam_ok = (res.get("lambda_max") and close(res["lambda"] / res["lambda_max"], pt[0], 1e-9))
            if not (run["sweep_id"] == sid and run["state"] == "FINISHED"
                    and run["stop_reason"] == "converged" and lam_ok
                    and res.get("rel_gap", 1) <= pt[1] and res.get("tol") == pt[1]
                    and sp.get("generate") == base["generate"]):
                bad.append((i, run["sweep_id"], pt, res.get("lambda"), res.get("lambda_max"),
                            res.get("rel_gap"), res.get("tol")))
        t.eq(pts, want, "the runs' specs are exactly the 4 grid points")
        t.ok(not bad, "each run: sweep_id, converged, result lambda = lambda_ratio * lambda_max "
             "of its point, rel_gap <= its tol", bad)
        rr = d.post("/v1/sweeps/%s/resume" % sid)
        t.ok(rr.status == 200 and rr.json().get("requeued") == [],
             "resume of a sweep whose points all FINISHED queues nothing", rr.body)

    # Resume: stop two points (queued behind a long run), resume, they run again in the sweep.
    with Daemon(vvd) as d:
        long_id = d.post("/v1/runs", long_run(seed=5)).json()["id"]
        base = quick(seed=4)
        del base["lambda_ratio"]
        r = d.post("/v1/sweeps", {"base": base, "grid": {"lambda_ratio": [0.5, 0.2, 0.1]}})
        sid, ids = r.json()["id"], r.json()["runs"]
        stopped = ids[:2]
        for i in stopped:
            d.post("/v1/runs/%s/stop" % i)
        d.post("/v1/runs/%s/stop" % long_id)
        s3 = d.follow(ids[2], deadline=60)
        t.ok(s3.ended and all(d.run(i)["state"] == "STOPPED" for i in stopped),
             "two points STOPPED while queued, the third finishes")
        rr = d.post("/v1/sweeps/%s/resume" % sid)
        req = rr.json().get("requeued", []) if rr.status == 200 else []
        t.ok(rr.status == 200 and len(req) == 2 and all(q["attempt"] == 2 and q["was"] == "STOPPED"
                                                         for q in req),
             "resume queues exactly the two stopped points again, as attempt 2", rr.body)
        new = [q["run"] for q in req]
        ends = [d.follow(i, deadline=60) for i in new]
        runs = d.get("/v1/sweeps/" + sid).json()
        latest = {x["id"]: x for x in runs["runs"] if x.get("latest")}
        t.ok(all(e.ended for e in ends) and sorted(latest) == sorted(new + [ids[2]])
             and all(x["state"] == "FINISHED" for x in latest.values())
             and runs["counts"]["FINISHED"] == 3 and runs["counts"]["STOPPED"] == 0
             and runs["state"] == "FINISHED" and len(runs["runs"]) == 5,
             "the new attempts run inside the sweep; counts and state follow the latest attempts",
             (sorted(latest), runs.get("counts"), runs.get("state")))
        points_old = {d.run(i)["point"] for i in stopped}
        t.ok({d.run(i)["point"] for i in new} == points_old
             and all(d.run(i)["attempt"] == 2 and d.run(i)["sweep_id"] == sid for i in new),
             "a new attempt keeps its point's hash and the sweep id")
        rr = d.post("/v1/sweeps/%s/resume" % sid)
        t.ok(rr.status == 200 and rr.json().get("requeued") == [], "a second resume queues nothing")
        t.eq(d.post("/v1/sweeps/s-999999/resume").status, 404, "resume of an unknown sweep: 404")


# ==== 6: kill -9 and SIGTERM =================================================


def db_rows(path, ids):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchall()
        rows = {i: con.execute("SELECT state, stop_reason FROM runs WHERE id = ?", (i,)).fetchone()
                for i in ids}
        return ok, rows
    finally:
        con.close()


def scenario_restart(t, vvd):
    data = tempfile.mkdtemp(prefix="vvd-it-restart-")
    try:
        d = Daemon(vvd, data_dir=data)
        try:
            d.start()
            F = d.submit(quick(seed=21))["id"]
            sF = d.wait_end(F)
            mF, _ = stored_points(d, F)
            fres = d.run(F)["result"]
            L = d.submit(long_run())["id"]
            a = d.follow(L, until=n_metrics(3), deadline=60)
            Q = d.submit(quick(seed=22))["id"]
            t.ok(a.stopped and d.run(L)["state"] == "RUNNING" and d.run(Q)["state"] == "QUEUED"
                 and sF.events[-1]["data"]["state"] == "FINISHED",
                 "before kill -9: one FINISHED, one RUNNING (3 metrics seen), one QUEUED")
        finally:
            d.kill9()
        ok, rows = db_rows(os.path.join(data, "vvd.db"), [F, L, Q])
        t.ok(ok == [("ok",)] and rows[F] == ("FINISHED", "converged") and rows[L][0] == "RUNNING"
             and rows[Q][0] == "QUEUED",
             "right after kill -9: PRAGMA integrity_check ok, the rows FINISHED/RUNNING/QUEUED",
             (ok, rows))
        d2 = Daemon(vvd, data_dir=data)
        try:
            d2.start()
            t.ok(True, "the daemon starts again on the same data dir after kill -9")
            lr = d2.run(L)
            t.ok(lr["state"] == "CRASHED" and isinstance(lr["error"], dict)
                 and lr["error"].get("error_code") and lr["finished"] > 0,
                 "the run killed while RUNNING is CRASHED with an error",
                 (lr["state"], lr["error"]))
            fr = d2.run(F)
            m2, _ = stored_points(d2, F)
            t.ok(fr["state"] == "FINISHED" and fr["stop_reason"] == "converged"
                 and fr["result"] == fres and m2["count"] == mF["count"] and m2 == mF,
                 "the finished run is intact: state, result, all %d metric points" % mF["count"],
                 (fr["state"], m2["count"], mF["count"]))
            sf2 = d2.follow(F, deadline=30)
            t.ok(sf2.ended and [(e["id"], e["raw"]) for e in sf2.events]
                 == [(e["id"], e["raw"]) for e in sF.events],
                 "the finished run's event history replays unchanged")
            sq = d2.follow(Q, deadline=60)
            qr = d2.run(Q)
            t.ok(sq.ended and qr["state"] == "FINISHED" and contiguous(sq.ids())
                 and sq.events[-1]["data"].get("state") == "FINISHED",
                 "the queued run runs to FINISHED after the restart (ids contiguous)",
                 (sq.error, qr["state"], sq.ids()[:5]))
            sl = d2.follow(L, deadline=20)
            t.ok(sl.ended and sl.error is None and contiguous(sl.ids()),
                 "the crashed run's stream ends by itself, ids contiguous", (sl.error, len(sl.events)))
            lastl = sl.events[-1] if sl.events else {"event": None, "data": {}}
            t.ok(lastl["event"] == "state" and lastl["data"].get("state") == "CRASHED",
                 "the crashed run's stream ends with a final state event CRASHED",
                 lastl if lastl["event"] != "metric" else
                 "last event is %s id %s" % (lastl["event"], lastl.get("id")))
            sr = d2.post("/v1/runs/%s/stop" % L)
            t.ok(sr.status == 200 and sr.json()["state"] == "CRASHED",
                 "stop the CRASHED run: 200, still CRASHED (stop is idempotent)",
                 (sr.status, sr.text[:200]))
            crashed = [x["id"] for x in d2.get("/v1/runs?state=CRASHED").json()["runs"]]
            t.eq(crashed, [L], "?state=CRASHED lists the killed run")
            N = d2.submit(quick(seed=23))["id"]
            t.ok(N > max(F, L, Q), "new run ids continue after the old ones (%s)" % N)
            d2.wait_end(N)

            # A clean SIGTERM with a running and a queued run.
            L2 = d2.submit(long_run())["id"]
            a2 = d2.follow(L2, until=n_metrics(3), deadline=60)
            Q2 = d2.submit(quick(seed=24))["id"]
            t.ok(a2.stopped and d2.run(Q2)["state"] == "QUEUED", "a long run RUNNING, one QUEUED")
            rc = d2.stop(signal.SIGTERM, timeout=30)
            t.eq(rc, 0, "SIGTERM: vvd exits 0 within 30 s")
        finally:
            d2.kill9()
        ok, rows = db_rows(os.path.join(data, "vvd.db"), [L2, Q2])
        t.eq(ok, [("ok",)], "PRAGMA integrity_check is ok after kill -9, restart and SIGTERM")
        t.eq(rows[L2], ("STOPPED", "shutdown"), "SIGTERM: the running run is STOPPED / shutdown")
        t.eq(rows[Q2], ("QUEUED", None), "SIGTERM: the queued run stays QUEUED")
        d3 = Daemon(vvd, data_dir=data)
        try:
            d3.start()
            l2 = d3.run(L2)
            t.ok(l2["state"] == "STOPPED" and l2["stop_reason"] == "shutdown"
                 and "V.npy" in artifact_names(l2),
                 "after the next start: still STOPPED / shutdown, V.npy kept",
                 (l2["state"], l2["stop_reason"], artifact_names(l2)))
            s2 = d3.follow(L2, deadline=30)
            t.ok(s2.ended and s2.events and s2.events[-1]["data"].get("state") == "STOPPED"
                 and s2.events[-1]["data"].get("stop_reason") == "shutdown",
                 "its stream ends with state STOPPED / shutdown", s2.events[-1:] if s2.events else None)
            sq2 = d3.follow(Q2, deadline=60)
            t.ok(sq2.ended and d3.run(Q2)["state"] == "FINISHED",
                 "the run queued at SIGTERM runs to FINISHED at the next start")
            rc = d3.stop(signal.SIGINT, timeout=30)
            t.eq(rc, 0, "SIGINT on an idle daemon: exit 0")
        finally:
            d3.kill9()
        ok, _ = db_rows(os.path.join(data, "vvd.db"), [])
        t.eq(ok, [("ok",)], "PRAGMA integrity_check is ok at the end")
    finally:
        shutil.rmtree(data, ignore_errors=True)


# ==== 7: bad input ============================================================


def scenario_bad(t, vvd):
    outside = tempfile.mkdtemp(prefix="vvd-it-outside-")
    try:
        with open(os.path.join(outside, "x.npy"), "wb") as f:
            f.write(npy_bytes([[1.0, 2.0]] * 4))
        with Daemon(vvd, args=["--max-body", "65536", "--max-upload", "4096",
                               "--max-queue", "2"]) as d:
            _scenario_bad(t, d, outside)
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def _scenario_bad(t, d, outside):
    n_bad = [0]

    def bad(method, path, body, status, code, field=None, desc="", headers=None):
        n_bad[0] += 1
        r = d.try_req(method, path, body, headers=headers)
        return check_problem(t, r, status, code, field, "%s %s: %d %s%s - %s" % (
            method, path.split("?")[0] if len(path) > 60 else path, status,
            code if isinstance(code, str) else "/".join(code),
            " at %s" % (field if isinstance(field, str) else " or ".join(field)) if field else "",
            desc), path=path)

    # Data for file specs.
    rng = random.Random(5)
    phi = [[max(0.0, rng.gauss(0, 1)) for _ in range(6)] for _ in range(40)]
    psi = [[sum(phi[i][j] * (j % 3 - 1) for j in range(6)) + rng.gauss(0, 0.1),
            phi[i][0] - phi[i][5]] for i in range(40)]
    nan_phi = [row[:] for row in phi]
    nan_phi[7][3] = float("nan")
    for name, rows in (("phi.npy", phi), ("psi.npy", psi), ("nan_phi.npy", nan_phi),
                       ("psi_short.npy", psi[:30])):
        r = d.req("PUT", "/v1/blobs/" + name, npy_bytes(rows),
                  headers={"Content-Type": "application/octet-stream"})
        t.ok(r.status == 201 and r.json() == {"name": name, "bytes": len(npy_bytes(rows))},
             "PUT /v1/blobs/%s: 201 {name, bytes}" % name, r)
    r = d.req("PUT", "/v1/blobs/blobs/phi.npy", npy_bytes(phi),
              headers={"Content-Type": "application/octet-stream"})
    t.ok(r.status == 201 and os.path.isfile(os.path.join(d.dir, "blobs", "phi.npy")),
         "PUT /v1/blobs/blobs/phi.npy (a name with '/'): 201, stored at DATA/blobs/phi.npy", r)
    with open(os.path.join(d.dir, "junk.npy"), "wb") as f:
        f.write(b"this is not a npy file at all" * 4)
    os.symlink(os.path.join(outside, "x.npy"), os.path.join(d.dir, "escape.npy"))
    os.symlink(outside, os.path.join(d.dir, "outdir"))
    # Uploads go to DATA/blobs/: a symlinked folder there must not lead them out.
    os.symlink(outside, os.path.join(d.dir, "blobs", "outdir"))

    good = d.post("/v1/runs", {"kind": "lasso", "phi": "phi.npy", "psi": "psi.npy", "lambda": 0.1})
    t.eq(good.status, 201, "a spec of uploaded files is accepted (201)")
    if good.status == 201:
        d.wait_end(good.json()["id"])
        t.eq(d.run(good.json()["id"])["state"], "FINISHED", "the run on uploaded files FINISHES")

    Q = quick()
    base_files = {"kind": "lasso", "phi": "phi.npy", "psi": "psi.npy", "lambda": 0.1}

    def spec(**kw):
        s = dict(Q)
        for k, v in kw.items():
            if v is None:
                s.pop(k, None)
            else:
                s[k] = v
        return s

    def fspec(**kw):
        s = dict(base_files)
        for k, v in kw.items():
            if v is None:
                s.pop(k, None)
            else:
                s[k] = v
        return s

    P = "/v1/runs"
    # Broken / non-object JSON.
    bad("POST", P, '{"kind": "lasso", "generate": {', 400, "MALFORMED_JSON", desc="truncated JSON")
    bad("POST", P, "{'kind': 'lasso'}", 400, "MALFORMED_JSON", desc="single quotes")
    bad("POST", P, "", 400, "MALFORMED_JSON", desc="empty body")
    bad("POST", P, json.dumps(Q) + " trailing", 400, "MALFORMED_JSON",
        desc="a valid spec followed by garbage")
    bad("POST", P, "[1, 2, 3]", 400, "INVALID_TYPE", desc="a JSON array, not an object")
    bad("POST", P, '"lasso"', 400, "INVALID_TYPE", desc="a JSON string, not an object")
    # Wrong types.
    bad("POST", P, spec(kind=5), 400, "INVALID_TYPE", "/kind", "kind a number")
    bad("POST", P, spec(kind="svm"), 400, "INVALID_PARAMETER_VALUE", "/kind", "unknown kind")
    bad("POST", P, spec(generate={"n": "2000", "k": 64, "d": 4}), 400, "INVALID_TYPE",
        "/generate/n", "generate.n a string")
    bad("POST", P, spec(generate=[2000, 64, 4]), 400, "INVALID_TYPE", "/generate",
        "generate an array")
    bad("POST", P, spec(tol="1e-6"), 400, "INVALID_TYPE", "/tol", "tol a string")
    bad("POST", P, spec(max_iter=2.5), 400, "INVALID_TYPE", "/max_iter", "max_iter not an integer")
    bad("POST", P, spec(refit="yes"), 400, "INVALID_TYPE", "/refit", "refit a string")
    bad("POST", P, spec(lambda_ratio="0.1"), 400, "INVALID_TYPE", "/lambda_ratio",
        "lambda_ratio as a string")
    bad("POST", P, fspec(**{"lambda": "0.1"}), 400, "INVALID_TYPE", "/lambda", "lambda as a string")
    # Unknown fields.
    bad("POST", P, spec(colour="blue"), 400, "UNKNOWN_FIELD", "/colour", "unknown top-level field")
    bad("POST", P, spec(generate={"n": 2000, "k": 64, "d": 4, "sed": 1}), 400, "UNKNOWN_FIELD",
        "/generate/sed", "unknown field in generate")
    bad("POST", P, fspec(phi={"path": "phi.npy", "tensr": "x"}), 400, "UNKNOWN_FIELD",
        "/phi/tensr", "unknown field in a file object")
    # Missing fields.
    bad("POST", P, spec(kind=None), 400, "MISSING_FIELD", "/kind", "no kind")
    bad("POST", P, fspec(phi=None), 400, "MISSING_FIELD", "/phi", "no phi (and no generate)")
    bad("POST", P, fspec(psi=None), 400, "MISSING_FIELD", "/psi", "no psi")
    bad("POST", P, spec(lambda_ratio=None), 400, "MISSING_FIELD", "/lambda", "no lambda")
    bad("POST", P, spec(generate={"k": 64, "d": 4}), 400, "MISSING_FIELD", "/generate/n",
        "generate without n")
    # Values.
    bad("POST", P, fspec(**{"lambda": -0.1}), 400, "INVALID_PARAMETER_VALUE", "/lambda",
        "negative lambda")
    bad("POST", P, fspec(**{"lambda": 0}), 400, "INVALID_PARAMETER_VALUE", "/lambda", "zero lambda")
    bad("POST", P, spec(lambda_ratio=1.5), 400, "INVALID_PARAMETER_VALUE", "/lambda_ratio",
        "lambda_ratio > 1")
    bad("POST", P, spec(**{"lambda": 0.1}), 400, "INVALID_PARAMETER_VALUE",
        ("/lambda", "/lambda_ratio"), "two lambdas (lambda_ratio and lambda)")
    bad("POST", P, '{"kind": "lasso", "kind": "lasso", "generate": {"n": 10, "k": 2, "d": 1}, '
        '"lambda_ratio": 0.1}', 400, "INVALID_PARAMETER_VALUE", "/kind", "a key given twice")
    bad("POST", P, spec(solver="newton"), 400, "INVALID_PARAMETER_VALUE", "/solver",
        "unknown solver")
    bad("POST", P, spec(mu=1e-3), 400, "INVALID_PARAMETER_VALUE", "/mu", "mu without adam_prox")
    bad("POST", P, spec(tol=2), 400, "INVALID_PARAMETER_VALUE", "/tol", "tol >= 1")
    bad("POST", P, spec(generate={"n": 2000, "k": 0, "d": 4}), 400, "INVALID_PARAMETER_VALUE",
        "/generate/k", "k = 0")
    bad("POST", P, spec(phi="phi.npy"), 400, "INVALID_PARAMETER_VALUE", "/phi",
        "phi and generate together")
    # Paths.
    bad("POST", P, fspec(phi=""), 400, "INVALID_PARAMETER_VALUE", "/phi", "empty path")
    bad("POST", P, fspec(phi=42), 400, "INVALID_TYPE", "/phi", "path a number")
    bad("POST", P, fspec(phi="nope.npy"), 400, "FILE_NOT_FOUND", "/phi", "missing file")
    bad("POST", P, fspec(psi="dir/nope.npy"), 400, "FILE_NOT_FOUND", "/psi", "missing psi file")
    bad("POST", P, fspec(phi="../x.npy"), 403, "PATH_OUTSIDE_DATA_ROOT", "/phi", "'..' path")
    bad("POST", P, fspec(phi="blobs/../../x.npy"), 403, "PATH_OUTSIDE_DATA_ROOT", "/phi",
        "'..' inside a path")
    bad("POST", P, fspec(phi="/etc/passwd"), 403, "PATH_OUTSIDE_DATA_ROOT", "/phi",
        "absolute path outside")
    bad("POST", P, fspec(phi=os.path.join(outside, "x.npy")), 403, "PATH_OUTSIDE_DATA_ROOT",
        "/phi", "absolute path to an existing file outside")
    bad("POST", P, fspec(phi="escape.npy"), 403, "PATH_OUTSIDE_DATA_ROOT", "/phi",
        "a symlink in the data dir pointing outside")
    bad("POST", P, fspec(psi="outdir/x.npy"), 403, "PATH_OUTSIDE_DATA_ROOT", "/psi",
        "a path through a symlinked directory outside")
    # Too large.
    big = dict(Q, name="x" * 70000)
    bad("POST", P, big, 413, "TOO_LARGE", desc="a 70 kB body over --max-body 65536")
    # Unknown ids.
    for method, path in (("GET", "/v1/runs/r-999999"), ("POST", "/v1/runs/r-999999/stop"),
                         ("GET", "/v1/runs/r-999999/metrics"), ("GET", "/v1/runs/r-999999/events"),
                         ("GET", "/v1/runs/r-999999/artifacts/V.npy"),
                         ("GET", "/v1/sweeps/s-999999"), ("POST", "/v1/sweeps/s-999999/stop"),
                         ("GET", "/v1/nothing")):
        bad(method, path, None, 404, "RESOURCE_DOES_NOT_EXIST", desc="unknown resource")
    # Methods.
    for method, path in (("DELETE", "/v1/runs"), ("DELETE", "/v1/sweeps"), ("PUT", "/v1/runs/x"),
                         ("GET", "/v1/runs/r-000001/stop"), ("POST", "/health"),
                         ("GET", "/v1/blobs/phi.npy")):
        bad(method, path, None, 405, "METHOD_NOT_ALLOWED", desc="wrong method")
    # Queries.
    for q in ("page_size=0", "page_size=1001", "page_size=ten", "page_size=5x"):
        bad("GET", "/v1/runs?" + q, None, 400, "INVALID_PARAMETER_VALUE", "/query/page_size",
            "bad page_size (%s)" % q)
    bad("GET", "/v1/runs?page_token=garbage!!", None, 400, "INVALID_PARAMETER_VALUE",
        "/query/page_token", "bad page_token")
    bad("GET", "/v1/runs?state=DONE", None, 400, "INVALID_PARAMETER_VALUE", "/query/state",
        "unknown state filter")
    gid = good.json()["id"] if good.status == 201 else "r-000001"
    bad("GET", "/v1/runs/%s/metrics?after_step=abc" % gid, None, 400, "INVALID_PARAMETER_VALUE",
        "/query/after_step", "bad after_step")
    bad("GET", "/v1/runs/%s/metrics?format=xml" % gid, None, 400, "INVALID_PARAMETER_VALUE",
        "/query/format", "bad format")
    bad("GET", "/v1/runs/%s/events" % gid, None, 400, "INVALID_PARAMETER_VALUE",
        "/header/Last-Event-ID", "Last-Event-ID not a number", headers={"Last-Event-ID": "abc"})
    bad("GET", "/v1/runs/%s/events" % gid, None, 400, "INVALID_PARAMETER_VALUE",
        "/header/Last-Event-ID", "negative Last-Event-ID", headers={"Last-Event-ID": "-3"})
    bad("GET", "/v1/runs/%s/events?after=x1" % gid, None, 400, "INVALID_PARAMETER_VALUE",
        ("/query/after", "/header/Last-Event-ID"), "?after= not a number")
    # Sweeps.
    S = "/v1/sweeps"
    sb = quick()
    del sb["lambda_ratio"]
    bad("POST", S, "{not json", 400, "MALFORMED_JSON", desc="broken sweep JSON")
    bad("POST", S, {"base": sb, "grid": {"lambda_ratio": [0.1]}, "extra": 1}, 400, "UNKNOWN_FIELD",
        "/extra", "unknown sweep field")
    bad("POST", S, {"grid": {"lambda_ratio": [0.1]}}, 400, "MISSING_FIELD", "/base", "no base")
    bad("POST", S, {"base": sb}, 400, "MISSING_FIELD", "/grid", "no grid")
    bad("POST", S, {"base": sb, "grid": [0.1]}, 400, "INVALID_TYPE", "/grid", "grid an array")
    bad("POST", S, {"base": sb, "grid": {"lambda_rate": [0.1]}}, 400, "UNKNOWN_FIELD",
        "/grid/lambda_rate", "grid over an unknown field")
    bad("POST", S, {"base": sb, "grid": {"lambda_ratio": []}}, 400,
        ("INVALID_PARAMETER_VALUE", "INVALID_TYPE"), "/grid/lambda_ratio", "empty grid list")
    bad("POST", S, {"base": sb, "grid": {"lambda_ratio": 0.1}}, 400, "INVALID_TYPE",
        "/grid/lambda_ratio", "grid value not a list")
    bad("POST", S, {"base": sb, "grid": {"lambda_ratio": [0.5, -1]}}, 400, "INVALID_PARAMETER_VALUE",
        "/grid/lambda_ratio/1", "a bad grid value names its index")
    bad("POST", S, {"base": sb, "grid": {"lambda_ratio": [0.5, 0.2], "tol": [1e-6, "x"]}}, 400,
        "INVALID_TYPE", "/grid/tol/1", "a grid value of the wrong type names its index")
    bad("POST", S, {"base": dict(sb, bogus=1), "grid": {"lambda_ratio": [0.5]}}, 400,
        "UNKNOWN_FIELD", "/base/bogus", "a bad base names /base/...")
    # Blob names and sizes.
    for name, codes in (("a%20b.npy", ("INVALID_PARAMETER_VALUE",)),
                        ("x%3By.npy", ("INVALID_PARAMETER_VALUE",)),
                        ("dir/", ("INVALID_PARAMETER_VALUE",)),
                        ("..", ("INVALID_PARAMETER_VALUE", "PATH_OUTSIDE_DATA_ROOT")),
                        ("sub/../../x.npy", ("INVALID_PARAMETER_VALUE", "PATH_OUTSIDE_DATA_ROOT")),
                        ("outdir/y.npy", ("PATH_OUTSIDE_DATA_ROOT",))):
        r = d.try_req("PUT", "/v1/blobs/" + name, b"12345678",
                  headers={"Content-Type": "application/octet-stream"})
        n_bad[0] += 1
        http_of = {"INVALID_PARAMETER_VALUE": 400, "PATH_OUTSIDE_DATA_ROOT": 403}
        try:
            got = r.json().get("error_code")
        except (ValueError, AttributeError):
            got = None
        want = http_of[got] if got in codes else http_of[codes[0]]
        check_problem(t, r, want, codes, "/name", desc="PUT /v1/blobs/%s: bad blob name refused" % name)
    r = d.try_req("PUT", "/v1/blobs/bad%20name.npy", b"",
                  headers={"Content-Type": "application/octet-stream"})
    det = r.json().get("detail", "") if r.ctype.startswith("application/problem+json") else ""
    t.ok(r.status == 400 and "bad name.npy" in det,
         "the problem detail of a refused blob name says which name (not just the title)", r)
    t.ok(not os.path.exists(os.path.join(outside, "y.npy")) and
         not os.path.exists(os.path.join(os.path.dirname(d.dir), "x.npy")),
         "refused blob names wrote nothing outside the data root")
    n_bad[0] += 1
    r = d.try_req("PUT", "/v1/blobs/huge.npy", b"\0" * 10000,
              headers={"Content-Type": "application/octet-stream"})
    check_problem(t, r, 413, "TOO_LARGE", desc="PUT a 10 kB blob over --max-upload 4096: 413")
    left = [os.path.join(dp, f) for dp, _, fs in os.walk(d.dir) for f in fs
            if f.startswith("huge.npy") or f.startswith(".upload-")]
    t.eq(left, [], "the refused upload leaves no file behind (no DATA/blobs/huge.npy, no "
         "temporary file anywhere in the data root)")

    # Run-time failures: NaN in a file, a file that is not .npy, mismatched rows.
    def fails(spec_, code, desc):
        r = d.post("/v1/runs", spec_)
        if r.status != 201:
            # Checking the file at submit time is fine too, with the same code.
            n_bad[0] += 1
            return check_problem(t, r, 400, code, desc=desc + " (refused at submit)")
        rid = r.json()["id"]
        s = d.wait_end(rid, deadline=60)
        run = d.run(rid)
        err = run["error"] or {}
        return t.ok(run["state"] == "FAILED" and err.get("error_code") == code
                    and s.events and s.events[-1]["data"].get("state") == "FAILED",
                    desc, (run["state"], err))

    fails(fspec(phi="nan_phi.npy"), "NON_FINITE_VALUE",
          "a NaN in an uploaded .npy: the run ends FAILED with error_code NON_FINITE_VALUE")
    failed = d.get("/v1/runs?state=FAILED").json()["runs"]
    if failed:
        sr = d.post("/v1/runs/%s/stop" % failed[-1]["id"])
        t.ok(sr.status == 200 and sr.json()["state"] == "FAILED",
             "stop a FAILED run: 200, still FAILED (stop is idempotent)", (sr.status, sr.text[:200]))
    fails(fspec(phi="junk.npy"), "BAD_FILE_FORMAT",
          "a file that is not .npy: FAILED (or 400) with BAD_FILE_FORMAT")
    fails(fspec(psi="psi_short.npy"), "SHAPE_MISMATCH",
          "phi 40 rows, psi 30 rows: FAILED (or 400) with SHAPE_MISMATCH")

    # Queue full (--max-queue 2) behind a long run.
    L = d.submit(long_run())["id"]
    a = d.follow(L, until=n_metrics(1), deadline=60)
    t.ok(a.stopped, "a long run is RUNNING", a.error)
    q1 = d.post(P, quick(seed=31))
    q2 = d.post(P, quick(seed=32))
    t.ok(q1.status == 201 and q2.status == 201, "two runs queue behind it (--max-queue 2)",
         (q1.status, q2.status))
    n_bad[0] += 1
    check_problem(t, d.post(P, quick(seed=33)), 429, "RESOURCE_EXHAUSTED", path=P,
                  desc="a third queued run: 429 RESOURCE_EXHAUSTED")
    n_bad[0] += 1
    check_problem(t, d.post(S, {"base": sb, "grid": {"lambda_ratio": [0.5]}}), 429,
                  "RESOURCE_EXHAUSTED", desc="a sweep on a full queue: 429 RESOURCE_EXHAUSTED")
    d.post("/v1/runs/%s/stop" % q1.json()["id"])
    # One place free, a sweep of 3 points: refused as a whole, nothing queued.
    before = {x["id"] for x in d.get("/v1/runs?page_size=1000").json()["runs"]}
    n_bad[0] += 1
    rs = d.post(S, {"base": sb, "grid": {"lambda_ratio": [0.5, 0.3, 0.2]}})
    after = d.get("/v1/runs?page_size=1000").json()["runs"]
    orphans = [(x["id"], x["state"], x["sweep_id"]) for x in after if x["id"] not in before]
    t.ok(rs.status == 429 and not orphans,
         "a 3-point sweep with one queue place left: 429 and no run of it queued (all or nothing)",
         (rs.status, orphans))
    for x in orphans:
        d.post("/v1/runs/%s/stop" % x[0])
    q3 = d.post(P, quick(seed=34))
    t.eq(q3.status, 201, "after stopping a queued run there is room again: 201")
    for i in (L, q2.json()["id"], q3.json()["id"]):
        d.post("/v1/runs/%s/stop" % i)
    d.follow(L, after=a.events[-1]["id"], deadline=60)

    t.ok(n_bad[0] >= 30, "%d malformed requests were sent (at least 30)" % n_bad[0])
    h = d.get("/health")
    t.ok(h.status == 200 and h.json().get("status") == "ok" and d.proc.poll() is None,
         "GET /health is still 200 after all of them, the daemon alive")


def scenario_token(t, vvd):
    with Daemon(vvd, token="s3cret-token") as d:
        p = d.port

        def noauth(method, path, body=None, headers=None):
            try:
                return request(p, method, path, body, headers)
            except (OSError, http.client.HTTPException) as e:
                return Resp(0, {}, ("no HTTP answer: %r" % e).encode())

        h = noauth("GET", "/health")
        t.eq(h.status, 200, "--token: GET /health without a token is 200")
        for method, path, body, hdr, what in (
                ("GET", "/v1/runs", None, None, "no Authorization header"),
                ("GET", "/v1/runs", None, {"Authorization": "Bearer wrong"}, "a wrong token"),
                ("GET", "/v1/runs", None, {"Authorization": "Bearer s3cret-token-and-more"},
                 "a token with the right prefix"),
                ("GET", "/v1/runs", None, {"Authorization": "Bearer s3cret"}, "a prefix of the token"),
                ("GET", "/v1/runs", None, {"Authorization": "Basic czNjcmV0LXRva2Vu"}, "Basic auth"),
                ("POST", "/v1/runs", quick(), None, "POST a run without a token"),
                ("GET", "/metrics", None, None, "Prometheus metrics without a token"),
                ("GET", "/v1/runs/r-000001/events", None, None, "events without a token")):
            r = noauth(method, path, body, hdr)
            check_problem(t, r, 401, "UNAUTHENTICATED",
                          desc="%s %s with %s: 401 UNAUTHENTICATED" % (method, path, what))
        r = noauth("PUT", "/v1/blobs/sneaky.npy", b"data" * 10,
                   {"Content-Type": "application/octet-stream"})
        check_problem(t, r, 401, "UNAUTHENTICATED", desc="PUT a blob without a token: 401")
        t.ok(not os.path.exists(os.path.join(d.dir, "sneaky.npy")) and
             not os.path.exists(os.path.join(d.dir, "blobs", "sneaky.npy")),
             "the unauthenticated upload stored nothing")
        t.ok("bearer" in r.headers.get("www-authenticate", "").lower(),
             "401 answers carry WWW-Authenticate: Bearer", r.headers.get("www-authenticate"))
        lst = d.get("/v1/runs")
        t.ok(lst.status == 200 and lst.json()["runs"] == [],
             "with the right token GET /v1/runs is 200 (no run was created without one)", lst)
        r = d.post("/v1/runs", quick())
        t.eq(r.status, 201, "with the right token POST /v1/runs is 201")
        s = d.follow(r.json()["id"], deadline=60)
        t.ok(s.ended and s.events and s.events[-1]["data"].get("state") == "FINISHED",
             "with the right token the event stream follows the run to FINISHED")


# ==== main ====================================================================

SCENARIOS = [("stream", scenario_stream), ("stop", scenario_stop), ("sweep", scenario_sweep),
             ("restart", scenario_restart), ("bad", scenario_bad), ("token", scenario_token)]


def main(argv, scenarios=SCENARIOS):
    """Runs the scenarios (those named after VVD, or all) and speaks TAP."""
    return run_scenarios(argv, scenarios)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
