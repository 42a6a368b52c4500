#!/usr/bin/env python3
"""Sweeps on a cluster's scheduler, reporting to one daemon: `vvctl sweep
--emit slurm|k8s` and `vvd run --report-to` (no Slurm or Kubernetes needed).

Usage: test_cluster.py VVD VVCTL [SCENARIO...]   (TAP; exit 0 when all pass)

Scenarios:
- slurm: the emitted job-array script, each task run here with
  SLURM_ARRAY_TASK_ID set, against a central daemon: every point appears in
  its history live (RUNNING with metrics while its task still runs), with
  its metrics, files and where it ran; the daemon stopped and restarted in
  the middle of a task loses nothing of it; a task run again does nothing.
- k8s: the manifest's structure: an Indexed Job whose completions are the
  grid's points, each index running its point, with the spec's resources.
- api: the worker routes' refusals (a local run, bad events, a bad end, an
  artifact name leaving the folder), a stop reaching the worker, and a
  single spec reported with `vvd run --report-to URL SPEC.json`.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, Tap  # noqa: E402

t = Tap()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def timed(seconds, seed=1):
    """A lasso run of about `seconds` (Adam-prox to a time limit)."""
    return {"kind": "lasso", "generate": {"n": 20000, "k": 256, "d": 8, "seed": seed},
            "lambda_ratio": 0.01, "solver": "adam_prox", "mu": 1e-6, "tol": 1e-12,
            "max_iter": 1000000000, "max_seconds": seconds, "metrics_every": 50}


def quick(seed=1):
    return {"kind": "lasso", "generate": {"n": 2000, "k": 64, "d": 4, "seed": seed},
            "lambda_ratio": 0.1, "tol": 1e-8}


def poll(fn, deadline, what):
    """Calls fn until it returns a true value or the deadline passes."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def metric_lines(out):
    return [json.loads(l) for l in out.splitlines()
            if l.startswith("{") and '"event":"metric"' in l]


def yaml_subset(text):
    """Parses the YAML the emitter writes (mappings, lists of scalars or
    mappings, JSON-quoted or plain scalars; no flow style) into Python."""
    lines = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]

    def scalar(v):
        v = v.strip()
        if v.startswith('"'):
            return json.loads(v)
        if re.fullmatch(r"-?\d+", v):
            return int(v)
        return v

    def block(i, indent):
        if lines[i].lstrip().startswith("- "):
            out = []
            while i < len(lines) and len(lines[i]) - len(lines[i].lstrip()) == indent \
                    and lines[i].lstrip().startswith("- "):
                item = lines[i].lstrip()[2:]
                if ":" in item and not item.startswith('"'):
                    # a mapping inside a list: its first key on the dash line
                    lines[i] = " " * (indent + 2) + item
                    v, i = block(i, indent + 2)
                else:
                    v, i = scalar(item), i + 1
                out.append(v)
            return out, i
        out = {}
        while i < len(lines) and len(lines[i]) - len(lines[i].lstrip()) == indent:
            k, _, v = lines[i].strip().partition(":")
            i += 1
            if v.strip():
                out[k] = scalar(v)
            else:
                nxt = len(lines[i]) - len(lines[i].lstrip()) if i < len(lines) else -1
                if nxt > indent or (nxt == indent and lines[i].lstrip().startswith("- ")):
                    out[k], i = block(i, nxt)
                else:
                    out[k] = None
        return out, i

    return block(0, 0)[0]


def scenario_slurm(vvd, vvctl):
    tmp = tempfile.mkdtemp(prefix="vvd-cluster-")
    port = free_port()
    data = os.path.join(tmp, "central")
    os.mkdir(data)
    work = os.path.join(tmp, "worker")
    os.mkdir(work)
    url = "http://127.0.0.1:%d" % port
    d = Daemon(vvd, data_dir=data, args=["--listen", "127.0.0.1:%d" % port])
    try:
        d.start()
        spec = os.path.join(tmp, "base.json")
        with open(spec, "w") as f:
            json.dump(timed(4), f)
        script = os.path.join(tmp, "sweep.sbatch")
        p = subprocess.run([vvctl, "--server", url, "sweep", spec, "--grid", "mu=1e-6,2e-6,3e-6",
                            "--name", "on-slurm", "--emit", "slurm", "--output", script,
                            "--vvd", vvd], capture_output=True, text=True, timeout=60)
        t.ok(p.returncode == 0 and os.path.exists(script),
             "vvctl sweep --emit slurm writes the script", (p.returncode, p.stderr[-500:]))
        text = open(script).read() if os.path.exists(script) else ""
        sid = (re.search(r"vvd sweep (s-\d+)", text) or re.search("(s-\\d+)", p.stderr))
        sid = sid.group(1) if sid else "?"
        t.ok("#SBATCH --array=0-2" in text and "#SBATCH --mem=" in text
             and "--gres" not in text and "#SBATCH --cpus-per-task=4" in text
             and '--index "$SLURM_ARRAY_TASK_ID"' in text and ("--sweep %s" % sid) in text
             and ("--report-to '%s'" % url) in text,
             "the script: an array of 3 tasks, memory and CPUs, no GPU for a CPU spec, task i "
             "runs point i against the daemon", text)
        sw = d.get("/v1/sweeps/" + sid).json()
        runs = sorted(sw["runs"], key=lambda r: r["id"])
        t.ok(len(runs) == 3 and all(r["state"] == "QUEUED" and r["runner"] == "external"
                                   and "worker" in r["waiting_reason"] for r in runs),
             "the sweep's 3 runs wait for workers (QUEUED, runner external), not for this daemon",
             [(r["state"], r["runner"]) for r in runs])
        h = d.get("/health").json()
        t.eq(h.get("queued"), 0, "the daemon's own queue holds none of them")

        env = dict(os.environ, SLURM_ARRAY_JOB_ID="4242", VV_LOG="warn")

        def task(i):
            e = dict(env, SLURM_ARRAY_TASK_ID=str(i))
            return subprocess.Popen(["bash", script], cwd=work, env=e, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)

        # Task 0: live.
        p0 = task(0)
        rid0 = runs[0]["id"]

        def live():
            r = d.get("/v1/runs/" + rid0).json()
            m = d.get("/v1/runs/%s/metrics?keys=rel_gap" % rid0).json()
            return r if r["state"] == "RUNNING" and m["count"] > 0 else None
        r = poll(live, 60, "task 0's run to be RUNNING with metrics")
        t.ok(p0.poll() is None and "slurm job 4242_0" in (r["runner"] or ""),
             "while task 0 runs, its run is RUNNING on the daemon with metrics, marked with where "
             "it runs", r["runner"])
        out0, err0 = p0.communicate(timeout=120)
        t.eq(p0.returncode, 0, "task 0 exits 0")

        # Task 1: the daemon is stopped and restarted while it runs.
        p1 = task(1)
        rid1 = runs[1]["id"]
        poll(lambda: d.get("/v1/runs/" + rid1).json()["state"] == "RUNNING", 60,
             "task 1's run to be RUNNING")
        d.stop()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5 and p1.poll() is None:
            time.sleep(0.05)
        d.start()
        out1, err1 = p1.communicate(timeout=180)
        t.eq(p1.returncode, 0, "task 1 exits 0 although the daemon was away for a while")
        # Task 2, and task 0 again.
        p2 = task(2)
        out2, _ = p2.communicate(timeout=120)
        again = task(0)
        outa, erra = again.communicate(timeout=60)
        t.ok(again.returncode == 0 and "nothing to do" in erra,
             "task 0 run again: exits 0, nothing to do (the point has ended)", erra[-300:])

        for i, (rid, out) in enumerate(((rid0, out0), (rid1, out1), (runs[2]["id"], out2))):
            r = d.get("/v1/runs/" + rid).json()
            arts = sorted(a["name"] for a in r["artifacts"])
            sent = metric_lines(out)
            m = d.get("/v1/runs/%s/metrics?keys=rel_gap" % rid).json()
            t.ok(r["state"] == "FINISHED" and r["stop_reason"] == "max_seconds"
                 and {"V.npy", "kept.npy", "result.json"} <= set(arts)
                 and r["result"]["active"] == r["summary"]["active"]
                 and ("slurm job 4242_%d" % i) in r["runner"],
                 "point %d: FINISHED on the daemon with its result, files and worker" % i,
                 (r["state"], r["stop_reason"], arts, r["runner"]))
            t.ok(len(sent) > 0 and m["count"] == len(sent),
                 "point %d: every metric the task printed is on the daemon (%d of %d)%s"
                 % (i, m["count"], len(sent), " across the restart" if i == 1 else ""))
            v = d.get("/v1/runs/%s/artifacts/V.npy" % rid)
            local = os.path.join(work, "vvd-out", "%s-%d" % (sid, i), "V.npy")
            t.ok(v.status == 200 and os.path.exists(local) and v.body == open(local, "rb").read(),
                 "point %d: its V.npy on the daemon is the worker's file, byte for byte" % i)
        sw = d.get("/v1/sweeps/" + sid).json()
        t.ok(sw["state"] == "FINISHED" and sw["counts"]["FINISHED"] == 3,
             "the sweep is FINISHED with its 3 points", (sw["state"], sw["counts"]))
        vc = subprocess.run([vvctl, "--server", url, "sweep", "status", sid], capture_output=True,
                            text=True, timeout=30)
        t.ok(vc.returncode == 0 and vc.stdout.count("FINISHED") >= 3,
             "vvctl sweep status shows the 3 points FINISHED", vc.stdout[-600:])
        vs = subprocess.run([vvctl, "--server", url, "show", rid0], capture_output=True,
                            text=True, timeout=30)
        t.ok(vs.returncode == 0 and re.search(r"^runner +.*slurm job 4242_0", vs.stdout, re.M),
             "vvctl show names where the run ran", vs.stdout[:400])
    finally:
        d.close()
        shutil.rmtree(tmp, ignore_errors=True)


def scenario_k8s(vvd, vvctl):
    with Daemon(vvd) as d:
        tmp = tempfile.mkdtemp(prefix="vvd-k8s-")
        try:
            spec = os.path.join(tmp, "base.json")
            base = dict(quick(), device="cuda:0")
            with open(spec, "w") as f:
                json.dump(base, f)
            url = "http://127.0.0.1:%d" % d.port
            man = os.path.join(tmp, "job.yaml")
            p = subprocess.run([vvctl, "--server", url, "sweep", spec, "--grid",
                                "lambda_ratio=0.1,0.2", "--grid", "tol=1e-6,1e-7,1e-8", "--emit", "k8s",
                                "--output", man, "--image", "registry.example/vvd:1.0",
                                "--token-file", "/secrets/vvd/token", "--mem", "6G"],
                               capture_output=True, text=True, timeout=60)
            t.ok(p.returncode == 0, "vvctl sweep --emit k8s", p.stderr[-400:])
            job = yaml_subset(open(man).read()) if p.returncode == 0 else {}
            spec_k = job.get("spec", {})
            sid = job.get("metadata", {}).get("labels", {}).get("vvd/sweep", "?")
            sw = d.get("/v1/sweeps/" + sid).json() if sid != "?" else {}
            npoints = len(sw.get("runs", []))
            t.ok(job.get("apiVersion") == "batch/v1" and job.get("kind") == "Job"
                 and spec_k.get("completionMode") == "Indexed" and npoints == 6
                 and spec_k.get("completions") == npoints,
                 "an Indexed Job whose completions (%s) equal the grid's points (%d)"
                 % (spec_k.get("completions"), npoints))
            c = (spec_k.get("template", {}).get("spec", {}).get("containers") or [{}])[0]
            cmd = c.get("command", [])
            res = c.get("resources", {})
            t.ok(cmd[:2] == ["vvd", "run"] and cmd[cmd.index("--sweep") + 1] == sid
                 and cmd[cmd.index("--index") + 1] == "$(JOB_COMPLETION_INDEX)"
                 and cmd[cmd.index("--report-to") + 1] == url
                 and cmd[cmd.index("--token-file") + 1] == "/secrets/vvd/token",
                 "each index runs its point: vvd run --report-to URL --sweep ID "
                 "--index $(JOB_COMPLETION_INDEX)", cmd)
            t.ok(c.get("image") == "registry.example/vvd:1.0"
                 and res.get("limits", {}).get("nvidia.com/gpu") == 1
                 and res.get("limits", {}).get("memory") == "6144Mi"
                 and res.get("requests", {}).get("memory") == "6144Mi"
                 and spec_k.get("template", {}).get("spec", {}).get("restartPolicy") == "Never",
                 "resources from the spec (a GPU for device cuda:0) and --mem; restartPolicy "
                 "Never", res)
            # Index i is the sweep's point i: claim point 5 and compare.
            first = sorted(sw["runs"], key=lambda r: r["id"])
            r = d.post("/v1/sweeps/%s/claim" % sid, {"index": 5, "where": "test"})
            t.ok(r.status == 200 and r.json()["id"] == first[5]["id"]
                 and r.json()["state"] == "RUNNING" and r.json()["runner"] == "test",
                 "claiming index 5 takes the sweep's sixth point", r.text[:300])
            r = d.post("/v1/sweeps/%s/claim" % sid, {"index": 6})
            t.ok(r.status == 400 and r.json()["field"] == "/index",
                 "index 6 of 6 points: 400 at /index", r.text[:300])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def scenario_api(vvd, vvctl):
    with Daemon(vvd) as d:
        url = "http://127.0.0.1:%d" % d.port
        local = d.submit(quick())["id"]
        d.wait_end(local)
        r = d.post("/v1/runs/%s/claim" % local, {"where": "x"})
        t.ok(r.status == 409 and r.json()["error_code"] == "INVALID_STATE",
             "claiming a run of this daemon: 409", r.text[:200])
        r = d.post("/v1/runs/%s/events" % local, {"events": []})
        t.eq(r.status, 409, "events for a run of this daemon: 409")
        r = d.req("PUT", "/v1/runs/%s/artifacts/V.npy" % local, b"xx")
        t.eq(r.status, 409, "an artifact for a run of this daemon: 409")
        r = d.post("/v1/runs?external=1", quick(seed=2))
        ext = r.json()["id"] if r.status == 201 else "?"
        t.ok(r.status == 201 and r.json()["state"] == "QUEUED" and r.json()["runner"] == "external",
             "POST /v1/runs?external=1: QUEUED for a worker", r.text[:200])
        r = d.post("/v1/runs/%s/events" % ext, {"events": []})
        t.eq(r.status, 409, "events before a worker claimed it: 409")
        r = d.post("/v1/runs/%s/claim" % ext, {"where": "w1", "host": "x"})
        t.ok(r.status == 400 and r.json()["field"] == "/host"
             and r.json().get("did_you_mean") is None, "an unknown member of a claim: 400 at /host")
        r = d.post("/v1/runs/%s/claim" % ext, {"where": "w1"})
        t.ok(r.status == 200 and r.json()["state"] == "RUNNING", "claim: RUNNING")
        t.eq(d.post("/v1/runs/%s/claim" % ext, {"where": "w2"}).status, 409,
             "a second claim: 409")
        bad = [({"events": [{"seq": 0, "type": "metric", "data": {}}]}, "/events/0/seq"),
               ({"events": [{"seq": 2, "type": "metric", "data": {}},
                            {"seq": 2, "type": "metric", "data": {}}]}, "/events/1/seq"),
               ({"events": [{"seq": 1, "type": "state", "data": {}}]}, "/events/0/type"),
               ({"events": [{"seq": 1, "type": "log", "data": []}]}, "/events/0/data"),
               ({"events": {}}, "/events"), ({"evnets": []}, "/evnets")]
        for body, field in bad:
            r = d.post("/v1/runs/%s/events" % ext, body)
            t.ok(r.status == 400 and r.json()["field"] == field,
                 "a bad batch: 400 at %s" % field, r.text[:200])
        ok = {"events": [{"seq": 1, "type": "metric", "data": {"step": 1, "time": 0.1,
                                                               "rel_gap": 0.5, "layer": "fc2"}},
                         {"seq": 2, "type": "log", "data": {"event": "stats", "n": 5}}]}
        r1 = d.post("/v1/runs/%s/events" % ext, ok).json()
        r2 = d.post("/v1/runs/%s/events" % ext, ok).json()
        m = poll(lambda: (lambda j: j if j["count"] >= 1 else None)(
            d.get("/v1/runs/%s/metrics" % ext).json()), 10, "the metric to be stored")
        t.ok(r1["applied"] == 2 and r2["applied"] == 0 and r2["ext_seq"] == 2 and m["count"] == 1,
             "a batch sent twice is applied once", (r1, r2, m["count"]))
        for name in ("../x", ".hidden", "a/b/c", "a%20b"):
            r = d.req("PUT", "/v1/runs/%s/artifacts/%s" % (ext, name), b"data")
            t.ok(r.status in (400, 404), "artifact name %r: refused (%d)" % (name, r.status))
        r = d.req("PUT", "/v1/runs/%s/artifacts/sub/f.bin" % ext, b"hello")
        t.ok(r.status == 201 and os.path.isfile(os.path.join(d.dir, "runs", ext, "sub", "f.bin")),
             "an artifact in a folder (one level, as runs write): 201")
        t.eq(d.post("/v1/runs/%s/finish" % ext, {"state": "DONE"}).status, 400,
             "an end with an unknown state: 400")
        t.eq(d.post("/v1/runs/%s/finish" % ext, {"state": "RUNNING"}).status, 400,
             "an end that is not final: 400")
        r = d.post("/v1/runs/%s/finish" % ext, {"state": "FINISHED", "stop_reason": "converged",
                                                "result": {"active": 3}})
        t.ok(r.status == 200 and r.json()["state"] == "FINISHED"
             and r.json()["summary"]["active"] == 3, "the end: FINISHED with its result")
        t.eq(d.post("/v1/runs/%s/finish" % ext, {"state": "FINISHED"}).status, 200,
             "the end sent again: 200 (nothing changes)")

        # A stop asked for on the daemon reaches the worker.
        tmp = tempfile.mkdtemp(prefix="vvd-api-")
        try:
            spec = os.path.join(tmp, "long.json")
            with open(spec, "w") as f:
                json.dump(timed(60, seed=5), f)
            w = subprocess.Popen([vvd, "run", "--report-to", url, spec, "--where", "laptop"],
                                 cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=dict(os.environ, VV_LOG="warn"))
            rid = poll(lambda: next((x["id"] for x in d.get("/v1/runs").json()["runs"]
                                     if x["runner"] == "laptop" and x["state"] == "RUNNING"),
                                    None), 60, "the worker's run")
            t0 = time.monotonic()
            d.post("/v1/runs/%s/stop" % rid)
            out, err = w.communicate(timeout=60)
            r = d.get("/v1/runs/" + rid).json()
            t.ok(w.returncode == 0 and r["state"] == "STOPPED" and r["stop_reason"] == "user"
                 and time.monotonic() - t0 < 30,
                 "stop on the daemon: the worker stops its run, reported STOPPED (user) in %.1f s"
                 % (time.monotonic() - t0),
                 (w.returncode, r["state"], r.get("error"), out[-600:], err[-600:]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


SCENARIOS = [("slurm", scenario_slurm), ("k8s", scenario_k8s), ("api", scenario_api)]


def main():
    if len(sys.argv) < 3:
        print("usage: test_cluster.py VVD VVCTL [SCENARIO...]", file=sys.stderr)
        return 2
    vvd, vvctl = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    only = set(sys.argv[3:])
    import traceback
    for name, fn in SCENARIOS:
        if only and name not in only:
            continue
        t.comment("scenario " + name)
        s0 = time.monotonic()
        try:
            fn(vvd, vvctl)
        except Exception as e:  # noqa: BLE001
            t.ok(False, "scenario %s ran to its end (raised %s)" % (name, type(e).__name__),
                 traceback.format_exc())
        t.comment("scenario %s: %.1f s" % (name, time.monotonic() - s0))
    return t.done()


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
