#!/usr/bin/env python3
"""vvctl end to end against a real `vvd serve` on a loopback port (TAP).

usage: test_vvctl.py VVCTL VVD

Standard library only.  Starts `vvd serve --listen 127.0.0.1:0` in a
temporary data directory (and a second one with --token), drives every vvctl
command and checks its output and exit status against the daemon's own
answers (read over HTTP here).  The watch display is checked in a
pseudo-terminal (`script`) and through a pipe; reconnection through a proxy
that cuts the event stream.
"""

import json
import math
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

VVCTL, VVD = sys.argv[1], sys.argv[2]
QUICK = {"kind": "lasso", "generate": {"n": 2000, "k": 64, "d": 4, "seed": 1}, "lambda_ratio": 0.1}
LONG = {"kind": "lasso", "generate": {"n": 20000, "k": 256, "d": 8, "seed": 3},
        "lambda_ratio": 0.01, "solver": "adam_prox", "mu": 1e-6, "tol": 1e-12,
        "max_iter": 1000000000, "max_seconds": 120}  # ends when stopped (or after 120 s)
FINAL = ("FINISHED", "STOPPED", "FAILED", "CRASHED")

# ---- TAP ----------------------------------------------------------------------

count = 0
failures = 0


def ok(cond, desc, diag=None):
    global count, failures
    count += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", count, desc.replace("#", "No.")), flush=True)
    if not cond:
        failures += 1
        if diag is not None:
            for line in str(diag).splitlines()[-40:]:
                print("#   " + line, flush=True)
    return bool(cond)


def comment(text):
    print("# " + text, flush=True)


def wait_for(pred, timeout, step=0.05):
    """Polls pred() until it is true or timeout seconds pass; returns its value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


# ---- The daemon ----------------------------------------------------------------


class Daemon:
    """`vvd serve` on a free loopback port in a new data directory, or, with
    restart_of, on the port and data directory of a daemon that has exited."""

    def __init__(self, *extra, restart_of=None):
        self.dir = restart_of.dir if restart_of else tempfile.mkdtemp(prefix="vvctl-test-")
        self.port_file = os.path.join(self.dir, "port")
        if restart_of:
            os.unlink(self.port_file)
        self.log = open(os.path.join(self.dir, "vvd.log"), "a")
        self.token = None
        if "--token" in extra:
            self.token = extra[extra.index("--token") + 1]
        listen = "127.0.0.1:%d" % (restart_of.port if restart_of else 0)
        self.proc = subprocess.Popen(
            [VVD, "serve", "--listen", listen, "--data-dir", os.path.join(self.dir, "data"),
             "--port-file", self.port_file, "--sse-ping", "0.5", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)

        def port():
            if self.proc.poll() is not None:
                raise RuntimeError("vvd exited with %s" % self.proc.returncode)
            try:
                with open(self.port_file) as f:
                    return int(f.read().strip() or 0)
            except (OSError, ValueError):
                return 0
        self.port = wait_for(port, 30)
        if not self.port:
            raise RuntimeError("vvd wrote no port file within 30 s")
        self.url = "http://127.0.0.1:%d" % self.port

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def run(self, rid):
        return self.api("GET", "/v1/runs/" + rid)[1]

    def wait_state(self, rid, states, timeout=60):
        return wait_for(lambda: self.run(rid)["state"] in states, timeout)

    def wait_metric(self, rid, step=1, timeout=60):
        """Waits until a run reports a metric at or past step."""
        return wait_for(lambda: self.run(rid)["summary"].get("step", -1) >= step, timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def vvctl(args, server=None, env=None, timeout=120, input=None):
    """Runs vvctl; returns (exit status, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("VVD_TOKEN", None)
    if server:
        e["VVD_SERVER"] = server
    e.update(env or {})
    p = subprocess.run([VVCTL] + args, capture_output=True, text=True, env=e, timeout=timeout,
                       input=input)
    return p.returncode, p.stdout, p.stderr


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


def npy(path, rows):
    """Writes a float64 C-order 2-D .npy file."""
    r, c = len(rows), len(rows[0])
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }" % (r, c)
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    body = b"".join(struct.pack("<%dd" % c, *row) for row in rows)
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + body)


def pareto(points):
    """Ids of the Pareto-optimal points among (id, active, mse)."""
    best = set()
    for i, a, m in points:
        if not any((a2 <= a and m2 <= m and (a2 < a or m2 < m)) for j, a2, m2 in points if j != i):
            best.add(i)
    return best


def secs_of(text):
    """Seconds of a vvctl duration: 0.42s, 12.3s, 4m05s, 2h03m, 120h; None otherwise."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", text)
    if m:
        return float(m.group(1))
    m = re.fullmatch(r"(\d+)m(\d+)s", text)
    if m:
        return 60 * int(m.group(1)) + int(m.group(2))
    m = re.fullmatch(r"(\d+)h(?:(\d+)m)?", text)
    if m:
        return 3600 * int(m.group(1)) + 60 * int(m.group(2) or 0)
    return None


def status_rows(out, axes):
    """Parses `vvctl sweep status`: {run id: (marked, {axis: text}, state, tries)};
    tries is None without a TRIES column."""
    rows = {}
    tries = any(x.split()[-1:] == ["TRIES"] for x in out.splitlines() if "RUN" in x)
    for line in out.splitlines():
        m = re.match(r"^(\*| )\s+(r-\d+)\s+(.*)$", line)
        if not m:
            continue
        cells = m.group(3).split()
        rows[m.group(2)] = (m.group(1) == "*", dict(zip(axes, cells)), cells[len(axes)],
                            int(cells[-1]) if tries else None)
    return rows


# ---- A proxy that cuts the first event stream ------------------------------------


class CuttingProxy:
    """Forwards TCP to the daemon; the first response carrying an event stream
    is cut after cut_bytes.  Records every request head."""

    def __init__(self, port, cut_bytes):
        self.target = port
        self.cut = cut_bytes
        self.heads = []
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        s = socket.create_connection(("127.0.0.1", self.target))
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(65536)
            if not d:
                break
            head += d
        self.heads.append(head.decode("latin-1"))
        s.sendall(head)
        cut = b"/events" in head.split(b"\r\n", 1)[0] and self.cuts == 0
        if cut:
            self.cuts += 1
        sent = 0
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                c.sendall(d)
                sent += len(d)
                if cut and sent >= self.cut:
                    break
        except OSError:
            pass
        for x in (c, s):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.sock.close()


# ---- The tests -------------------------------------------------------------------


def test_usage(d, tmp):
    rc, out, err = vvctl(["--help"])
    ok(rc == 0 and "Exit status" in out and "130" in out and "VVD_SERVER" in out,
       "vvctl --help: exit 0, documents exit codes and VVD_SERVER", out + err)
    for cmd in ("submit", "lasso", "watch", "stop", "ls", "show", "metrics", "get", "sweep",
                "upload", "models", "compare", "tag", "note", "rename", "rm"):
        rc1, out1, _ = vvctl(["help", cmd])
        rc2, out2, _ = vvctl([cmd, "--help"])
        if not ok(rc1 == 0 and rc2 == 0 and out1 == out2 and out1.startswith("usage: vvctl " + cmd),
                  "help %s == %s --help" % (cmd, cmd), out1 + out2):
            break
    rc, out, err = vvctl(["sweep", "--help"])
    ok("resume" in out and "/v1/sweeps/ID/resume" in out and "TRIES" in out and
       "a:b:log:n" in out,
       "sweep --help documents resume and the grid syntax", out)
    cases = [
        (["frobnicate"], "no command"),
        (["ls", "--bogus"], "unknown option"),
        (["lasso", "--generate", "10,4,2"], "exactly one of"),
        (["lasso", "--generate", "10,x,2", "--lambda", "1"], "--generate"),
        (["lasso", "--generate", "10,4,2", "--lambda", "abc"], "not a number"),
        (["submit", os.path.join(tmp, "missing.json")], "No such file"),
        (["watch"], "one run id"),
        ([], "usage"),
    ]
    for args, msg in cases:
        rc, out, err = vvctl(args, server=d.url)
        ok(rc == 2 and msg in err, "usage error %r: exit 2 and says '%s'" % (args, msg),
           "rc=%d\n%s" % (rc, err))
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('{"kind": "lasso",\n "lambda": }')
    rc, out, err = vvctl(["submit", bad], server=d.url)
    ok(rc == 2 and "malformed JSON near line 2" in err, "malformed spec file: exit 2, names the line",
       err)


def test_lasso_flags(d, tmp):
    rc, out, err = vvctl(["lasso", "--generate", "100,8,2,5", "--lambda-paper", "0.5", "--bias",
                          "0.5,-1", "--solver", "fista", "--tol", "1e-8", "--max-iter", "50",
                          "--max-seconds", "9", "--mu", "0.01", "--refit", "--name", "x",
                          "--device", "cpu", "--dry-run"])
    want = {"kind": "lasso", "name": "x", "generate": {"n": 100, "k": 8, "d": 2, "seed": 5},
            "bias": [0.5, -1], "lambda_paper": 0.5, "solver": "fista", "tol": 1e-8,
            "max_iter": 50, "max_seconds": 9, "mu": 0.01, "refit": True, "device": "cpu"}
    ok(rc == 0 and json.loads(out) == want, "lasso --dry-run builds the spec from flags", out + err)
    # A server-side refusal: one line, exit 1.
    rc, out, err = vvctl(["lasso", "--generate", "100,8,2", "--lambda", "-1"], server=d.url)
    lines = err.strip().splitlines()
    ok(rc == 1 and len(lines) == 1 and
       lines[0] == "vvctl: 400 INVALID_PARAMETER_VALUE at /lambda: /lambda: must be > 0, got -1",
       "a problem+json answer is one line and exit 1", "rc=%d\n%s" % (rc, err))
    # Local files uploaded first (--upload), then referenced by their names.
    rnd = random.Random(7)
    x = [[rnd.gauss(0, 1) for _ in range(5)] for _ in range(300)]
    w = [[rnd.gauss(0, 1) for _ in range(5)] for _ in range(12)]
    phi = [[max(0.0, sum(a * b for a, b in zip(r, col))) for col in w] for r in x]
    v0 = [[rnd.gauss(0, 1) if k < 4 else 0.0 for k in range(12)] for _ in range(3)]
    psi = [[sum(p[k] * v0[j][k] for k in range(12)) + 0.01 * rnd.gauss(0, 1) for j in range(3)]
           for p in phi]
    npy(os.path.join(tmp, "feats.npy"), phi)
    npy(os.path.join(tmp, "outs.npy"), psi)
    rc, out, err = vvctl(["lasso", "--phi", os.path.join(tmp, "feats.npy"), "--psi",
                          os.path.join(tmp, "outs.npy"), "--lambda-ratio", "0.1", "--upload",
                          "--watch"], server=d.url)
    rid = out.split()[0] if out else ""
    run = d.run(rid) if rid.startswith("r-") else {}
    ok(rc == 0 and run.get("state") == "FINISHED" and
       run["spec"]["phi"] == "blobs/feats.npy" and
       os.path.exists(os.path.join(d.dir, "data", "blobs", "outs.npy")) and
       not os.path.exists(os.path.join(d.dir, "data", "outs.npy")),
       "lasso --upload: files land as blobs in DATA/blobs/, the run uses them and finishes",
       out + err)


def test_submit_watch(d, tmp):
    spec = write_json(os.path.join(tmp, "quick.json"), QUICK)
    rc, out, err = vvctl(["submit", spec], server=d.url)
    rid = out.strip()
    ok(rc == 0 and re.fullmatch(r"r-\d{6,}", rid) and "vvctl watch " + rid in err,
       "submit prints the run id (and how to watch it)", out + err)
    d.wait_state(rid, FINAL)
    # Plain mode (a pipe).
    rc, out, err = vvctl(["watch", rid], server=d.url)
    run = d.run(rid)
    s = run["summary"]
    ok(rc == 0 and "\r" not in out and re.search(r"^%s step=\d+ objective=\S+ rel_gap=\S+ active=\d+ "
                                                  r"it/s=\S+ elapsed=\S+ eta=\S+$" % rid, out, re.M),
       "watch through a pipe: plain metric lines", out + err)
    ok("%s state FINISHED (converged)" % rid in out, "plain watch prints state changes", out)
    summary = out[out.rfind("%s FINISHED (converged)\n" % rid):]
    ok(summary.startswith(rid) and "objective %.9g" % s["objective"] in summary and
       "active %d" % s["active"] in summary and "iterations %d" % s["iterations"] in summary and
       "V.npy" in summary and "rel_gap" in summary and "seconds" in summary,
       "watch ends with the run's summary: state, stop_reason, objective, rel_gap, active, "
       "iterations, seconds, artifacts", out)
    # --json: one JSON object per event, then the run object.
    rc, out, err = vvctl(["watch", rid, "--json"], server=d.url)
    lines = [json.loads(x) for x in out.splitlines()]
    ids = [x["id"] for x in lines[:-1]]
    ok(rc == 0 and ids == list(range(1, len(ids) + 1)) and
       lines[-2]["event"] == "state" and lines[-2]["data"]["state"] == "FINISHED" and
       lines[-1]["id"] == rid and lines[-1]["state"] == "FINISHED",
       "watch --json: every event as a JSON line, then the run object", out[-2000:] + err)
    # submit --watch in one go, with --json for the submission.
    rc, out, err = vvctl(["submit", spec, "--watch"], server=d.url)
    ok(rc == 0 and "FINISHED (converged)" in out, "submit --watch follows the run to its end", out + err)
    return rid


def test_run_commands(d, tmp, rid):
    rc, out, err = vvctl(["show", rid], server=d.url)
    ok(rc == 0 and rid + " FINISHED (converged)" in out and '"lambda_ratio":0.1' in out,
       "show: summary and spec", out + err)
    rc, out, err = vvctl(["show", rid, "--json"], server=d.url)
    j = json.loads(out) if rc == 0 else {}
    server = d.run(rid)
    for k in ("heartbeat", "queue_position", "waiting_reason"):
        j.pop(k, None)
        server.pop(k, None)
    ok(rc == 0 and j == server, "show --json prints the run object", out + err)
    rc, out, err = vvctl(["show", "r-999999"], server=d.url)
    ok(rc == 1 and err.startswith("vvctl: 404 RESOURCE_DOES_NOT_EXIST") and err.count("\n") == 1,
       "show of an unknown run: one 404 line, exit 1", err)
    # ls
    total = len(d.api("GET", "/v1/runs?page_size=1000")[1]["runs"])
    rc, out, err = vvctl(["ls"], server=d.url)
    head = out.splitlines()[0].split() if out else []
    ok(rc == 0 and head == ["ID", "NAME", "KIND", "STATE", "SWEEP", "LAMBDA", "RATIO", "MU",
                            "ACTIVE", "REL_GAP", "DURATION", "STOP_REASON"] and
       re.search(r"^%s\s+-\s+lasso\s+FINISHED\s+-\s+0\.127\s+0\.1\s+\S+\s+\d+\s+"
                 r"\S+\s+\S+s\s+converged$" % rid, out, re.M),
       "ls: a table with id, name, kind, state, sweep, lambda, ratio, mu, active, rel_gap, "
       "duration, stop_reason", out + err)
    # One unit per column: the absolute lambda never carries the ratio.
    lam_col = [l.split()[5] for l in out.splitlines()[1:]]
    ok(lam_col and not any("max" in x or "*" in x for x in lam_col),
       "ls: the LAMBDA column holds absolute lambdas only (the ratio has its own column)", out)
    rc, out, err = vvctl(["ls", "--page-size", "1", "--state", "FINISHED"], server=d.url)
    m = re.search(r"--page-token (\S+)", err)
    ok(rc == 0 and len(out.splitlines()) == 2 and m, "ls --page-size 1: one row and the next token",
       out + err)
    if m:
        rc2, out2, _ = vvctl(["ls", "--page-size", "1", "--state", "FINISHED", "--page-token",
                              m.group(1)], server=d.url)
        ok(rc2 == 0 and out2.splitlines()[1].split()[0] != out.splitlines()[1].split()[0],
           "ls --page-token gives the next page", out + out2)
    rc, out, err = vvctl(["ls", "--all", "--page-size", "2"], server=d.url)
    ok(rc == 0 and len(out.splitlines()) == total + 1 and "page-token" not in err,
       "ls --all follows every page (%d runs)" % total, out + err)
    rc, out, err = vvctl(["ls", "--all", "--page-size", "2", "--json"], server=d.url)
    ok(rc == 0 and len(json.loads(out)["runs"]) == total, "ls --all --json: every run", err)
    rc, out, err = vvctl(["ls", "--state", "DONE"], server=d.url)
    ok(rc == 1 and "400 INVALID_PARAMETER_VALUE at /query/state" in err, "ls --state DONE: 400, exit 1",
       err)
    # metrics
    hist = d.api("GET", "/v1/runs/%s/metrics" % rid)[1]["metrics"]
    steps = sorted({p["step"] for p in hist})
    rc, out, err = vvctl(["metrics", rid, "--keys", "rel_gap,active"], server=d.url)
    rows = out.splitlines()
    ok(rc == 0 and rows[0].split() == ["step", "time", "rel_gap", "active"] and
       [int(r.split()[0]) for r in rows[1:]] == steps, "metrics --keys: one row per step", out + err)
    rc, out, err = vvctl(["metrics", rid, "--csv"], server=d.url)
    rows = out.splitlines()
    hdr = rows[0].split(",") if rows else []
    last = dict(zip(hdr, rows[-1].split(","))) if rows else {}
    want = {p["key"]: p["value"] for p in hist if p["step"] == steps[-1]}
    ok(rc == 0 and hdr[:2] == ["step", "time"] and set(hdr[2:]) == set(want) and
       all(abs(float(last[k]) - v) <= 1e-12 * max(1, abs(v)) for k, v in want.items()),
       "metrics --csv: the full history, values as the server stored them", out[-500:] + err)
    rc, out, err = vvctl(["metrics", rid, "--json"], server=d.url)
    ok(rc == 0 and json.loads(out)["metrics"] == hist, "metrics --json is the server's answer", err)
    # get
    dest = os.path.join(tmp, "V.npy")
    rc, out, err = vvctl(["get", rid, "V.npy", "-o", dest], server=d.url)
    with open(os.path.join(d.dir, "data", "runs", rid, "V.npy"), "rb") as f:
        want = f.read()
    ok(rc == 0 and open(dest, "rb").read() == want, "get ARTIFACT -o FILE downloads it byte for byte",
       err)
    rc, out, err = vvctl(["get", rid, "nope.npy", "-o", os.path.join(tmp, "nope")], server=d.url)
    ok(rc == 1 and "404" in err and not os.path.exists(os.path.join(tmp, "nope")) and
       not [f for f in os.listdir(tmp) if f.startswith("nope")],
       "get of a missing artifact: exit 1, no file left", err)


def test_failed_run(d, tmp):
    garbage = os.path.join(tmp, "garbage.npy")
    with open(garbage, "wb") as f:
        f.write(b"this is not an npy file at all" * 10)
    shutil.copy(garbage, os.path.join(d.dir, "data", "garbage.npy"))
    rc, out, err = vvctl(["submit", "-", "--watch"], server=d.url, input=json.dumps(
        {"kind": "lasso", "phi": "garbage.npy", "psi": "garbage.npy", "lambda_ratio": 0.1}))
    ok(rc == 1 and "FAILED" in out and "error: " in out,
       "watch of a run that FAILS: exit 1 and the error in the summary", out + err)


def test_watch_tty(d, tmp):
    rc, out, err = vvctl(["submit", write_json(os.path.join(tmp, "long.json"), LONG)], server=d.url)
    rid = out.strip()
    p = subprocess.Popen(["script", "-qfec", "%s --server %s watch %s" % (VVCTL, d.url, rid),
                          "/dev/null"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    buf = bytearray()
    t = threading.Thread(target=lambda: [buf.extend(c) for c in iter(lambda: p.stdout.read1(4096), b"")],
                         daemon=True)
    t.start()
    redrawn = wait_for(lambda: buf.count(b"\r\x1b[K") >= 5, 60)
    d.wait_metric(rid, 3000)
    vvctl(["stop", rid], server=d.url)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
    t.join(5)
    text = buf.decode("utf-8", "replace")
    live = [x for x in text.split("\r\x1b[K") if x.startswith(rid + " RUNNING  step")]
    ok(redrawn and len(live) >= 3, "watch on a terminal: one line redrawn in place (\\r + erase)",
       text[-3000:])
    ok(live and all(re.match(r"%s RUNNING  step \d+  objective \S+  rel_gap \S+  active \d+  \S+ it/s  "
                             r"\S+  ETA (-|\S+)" % rid, x) for x in live),
       "the live line shows step, objective, rel_gap, active, it/s, elapsed and ETA", live[-3:])
    # The ETA is '-' or believable: at most 10x the elapsed time, and within
    # the run's max_seconds.
    bad = []
    for x in live:
        m = re.search(r"  (\S+)  ETA (\S+)", x)
        if m and m.group(2) != "-":
            el, eta = secs_of(m.group(1)), secs_of(m.group(2))
            if eta is None or el is None or eta > 10 * el + 0.5 or el + eta > LONG["max_seconds"] + 1:
                bad.append(x)
    ok(not bad, "the ETA is never absurd: '-' or at most 10x the elapsed time and within "
       "max_seconds (%d live lines)" % len(live), bad[:3])
    ok(p.returncode == 0 and re.search(r"%s STOPPED \(user\)\r?\n  objective" % rid, text),
       "after a stop the terminal watch prints the summary and exits 0", text[-2000:])
    # Plain mode replays the whole history, throttled.
    nsteps = d.run(rid)["summary"]["iterations"]
    t0 = time.monotonic()
    rc, out, err = vvctl(["watch", rid], server=d.url)
    secs = time.monotonic() - t0
    mlines = [x for x in out.splitlines() if " step=" in x]
    ok(rc == 0 and 1 <= len(mlines) <= 4 * secs + 3 and nsteps >= 3000,
       "plain watch is throttled (%d metric lines for %d iterations in %.1fs)"
       % (len(mlines), nsteps, secs), out[-1000:])
    return rid


def test_detach(d, tmp):
    rc, out, err = vvctl(["submit", os.path.join(tmp, "long.json")], server=d.url)
    rid = out.strip()
    p = subprocess.Popen([VVCTL, "--server", d.url, "watch", rid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    while first and " step=" not in first:
        first = p.stdout.readline()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    state = d.run(rid)["state"]
    ok(p.returncode == 130 and "re-attach: vvctl watch " + rid in err and
       "vvctl stop " + rid in err and state == "RUNNING",
       "Ctrl-C detaches (exit 130), says how to re-attach and stop; the run goes on",
       "rc=%s state=%s\n%s" % (p.returncode, state, err))
    return rid


def test_reconnect(d, tmp, rid):
    proxy = CuttingProxy(d.port, 20000)
    p = subprocess.Popen([VVCTL, "--server", "http://127.0.0.1:%d" % proxy.port, "--json", "watch",
                          rid], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = wait_for(lambda: len([h for h in proxy.heads if "/events" in h]) >= 2, 30)
    d.wait_metric(rid, d.run(rid)["summary"].get("step", 0) + 100)
    vvctl(["stop", rid], server=d.url)
    out, err = p.communicate(timeout=60)
    proxy.close()
    lines = [json.loads(x) for x in out.splitlines()]
    ids = [x["id"] for x in lines[:-1]]
    resumed = [h for h in proxy.heads if "/events" in h][1:2]
    m = re.search(r"Last-Event-ID: (\d+)", resumed[0]) if resumed else None
    ok(got and m and int(m.group(1)) > 0, "a dropped stream is resumed with Last-Event-ID",
       "\n".join(proxy.heads) + err)
    ok(p.returncode == 0 and ids == list(range(1, len(ids) + 1)) and
       lines[-1]["state"] == "STOPPED", "no event lost or repeated across the reconnection "
       "(%d events)" % len(ids), err + out[-1000:])
    ok("connection lost" in err and "reconnected" in err, "the reconnection is reported on stderr",
       err)


def test_restart(tmp):
    """The daemon restarts under a watch: SIGTERM stops the run (shutdown),
    the watch reconnects to the new daemon and gets the rest from the store."""
    d = Daemon()
    d2 = None
    try:
        rid = vvctl(["submit", os.path.join(tmp, "long.json")], server=d.url)[1].strip()
        p = subprocess.Popen([VVCTL, "--server", d.url, "--json", "watch", rid],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(20):  # some metric events first
            if not p.stdout.readline():
                break
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(30)
        d2 = Daemon(restart_of=d)
        rest, err = p.communicate(timeout=90)
        lines = [json.loads(x) for x in rest.splitlines()]
        ok(p.returncode == 0 and lines and lines[-1]["state"] == "STOPPED" and
           lines[-1]["stop_reason"] == "shutdown",
           "watch survives a daemon restart and ends with STOPPED (shutdown)", err + rest[-500:])
        ids = [x["id"] for x in lines[:-1]]
        ok(ids and ids == list(range(ids[0], ids[0] + len(ids))) and
           lines[-2]["event"] == "state", "the events after the restart continue the numbering",
           ids[:5] + ids[-5:])
    finally:
        if d2 is not None:
            d.log.close()
            d2.close()  # removes the directory they share
        else:
            d.close()


def test_sweep(d, tmp):
    base = write_json(os.path.join(tmp, "quick.json"), QUICK)
    grid = ["--grid", "lambda_ratio=0.03:0.3:log:3", "--grid", "max_iter=3,1000"]
    rc, out, err = vvctl(["sweep", base] + grid + ["--dry-run"])
    req = json.loads(out) if rc == 0 else {}
    ok(rc == 0 and req.get("grid") == {"lambda_ratio": [0.03, float("%.12g" % math.sqrt(0.03 * 0.3)), 0.3],
                                       "max_iter": [3, 1000]} and req.get("base") == QUICK,
       "sweep --dry-run: grid ranges expand (log, both ends included)", out + err)
    rc, out, err = vvctl(["sweep", base] + grid + ["--watch"], server=d.url)
    sid = out.splitlines()[0] if out else ""
    runs = d.api("GET", "/v1/runs?sweep=%s&page_size=100" % sid)[1]["runs"]
    ok(rc == 0 and re.fullmatch(r"s-\d+", sid) and len(runs) == 6 and
       all(r["state"] == "FINISHED" for r in runs), "a 3 x 2 sweep runs to completion (--watch)",
       out + err)
    rc, out, err = vvctl(["sweep", "status", sid], server=d.url)
    rows = status_rows(out, ["lambda_ratio", "max_iter"])
    want = pareto([(r["id"], r["result"]["active"], r["result"]["mse"]) for r in runs])
    marked = {k for k, v in rows.items() if v[0]}
    ok(rc == 0 and len(rows) == 6 and marked == want,
       "sweep status marks exactly the Pareto-optimal points (%s)" % ",".join(sorted(want)),
       out + "\nwant " + str(sorted(want)))
    byid = {r["id"]: r for r in runs}
    good = all(abs(float(v[1]["lambda_ratio"]) - byid[k]["spec"]["lambda_ratio"]) < 1e-5 and
               int(v[1]["max_iter"]) == byid[k]["spec"]["max_iter"] and v[2] == "FINISHED"
               for k, v in rows.items())
    hdr = [x for x in out.splitlines() if "RUN" in x][:1]
    ok(good and hdr and hdr[0].split() == ["RUN", "lambda_ratio", "max_iter", "STATE", "ACTIVE",
                                          "OBJECTIVE", "MSE", "REL_GAP"],
       "sweep status: run id, grid values, state, active, objective, mse per point", out)
    rc, out, err = vvctl(["sweep", "status", sid, "--json"], server=d.url)
    pts = json.loads(out)["points"] if rc == 0 else []
    ok({p["run"]["id"] for p in pts if p["pareto"]} == want, "sweep status --json agrees", out[-500:])
    # --file with vvctl's syntax inside a sweep request.
    f = write_json(os.path.join(tmp, "sweep.json"),
                   {"base": QUICK, "grid": {"lambda_ratio": "0.1,0.2", "tol": [1e-6]}, "name": "n"})
    rc, out, err = vvctl(["sweep", "--file", f, "--grid", "max_iter=10:30:lin:3", "--dry-run"])
    req = json.loads(out) if rc == 0 else {}
    ok(rc == 0 and req["grid"] == {"lambda_ratio": [0.1, 0.2], "tol": [1e-6], "max_iter": [10, 20, 30]}
       and req["name"] == "n", "sweep --file: a request body; string grids in vvctl syntax", out + err)
    return sid


def test_bad_grid(d, tmp):
    base = os.path.join(tmp, "quick.json")
    for g, msg in [("lambda_ratio=1e-3:1e-1:log", "expected a:b:lin:n or a:b:log:n"),
                   ("lambda_ratio=1e-3:1e-1:exp:4", "expected a:b:lin:n or a:b:log:n"),
                   ("lambda_ratio=0:1e-1:log:4", "needs both ends > 0"),
                   ("lambda_ratio=1e-3:1e-1:log:x", "number of points"),
                   ("lambda_ratio=1e-3:1e-1:lin:1", "number of points"),
                   ("lambda_ratio=0.1,,0.2", "empty value"),
                   ("lambda_ratio=0.1,1e-3x", "not a number"),
                   ("lambda_ratio", "expected FIELD=VALUES"),
                   ("lambda-ratio=1", "not a field name"),
                   ("lambda_ratio=", "no values")]:
        rc, out, err = vvctl(["sweep", base, "--grid", g], server=d.url)
        ok(rc == 2 and msg in err and err.count("\n") == 1,
           "bad grid '%s': exit 2 and '%s'" % (g, msg), "rc=%d %s" % (rc, err))
    rc, out, err = vvctl(["sweep", base], server=d.url)
    ok(rc == 2 and "no grid" in err, "sweep without a grid: exit 2", err)


def test_resume(d, tmp):
    long_rid = vvctl(["submit", os.path.join(tmp, "long.json")], server=d.url)[1].strip()
    base = os.path.join(tmp, "quick.json")
    rc, out, err = vvctl(["sweep", base, "--grid", "lambda_ratio=0.05,0.1,0.2", "--grid",
                          "solver=fista,bcd"], server=d.url)
    sid = out.strip()
    runs = sorted(r["id"] for r in d.api("GET", "/v1/runs?sweep=" + sid)[1]["runs"])
    stopped = runs[1:3]
    for r in stopped:
        vvctl(["stop", r], server=d.url)
    vvctl(["stop", long_rid], server=d.url)
    rc, out, err = vvctl(["sweep", "watch", sid], server=d.url)
    ok(rc == 0 and out.count("STOPPED") >= 2 and "FINISHED 4" in out and "STOPPED 2" in out,
       "sweep watch: 4 points finish, the 2 stopped stay STOPPED", out + err)
    old = {r: d.run(r) for r in stopped}
    ok(all(o["sweep_id"] == sid and o["attempt"] == 1 and re.fullmatch(r"[0-9a-f]{16}", o["point"])
           for o in old.values()), "a sweep's runs carry their point's hash and attempt 1",
       list(old.values()))
    rc, out, err = vvctl(["sweep", "resume", sid, "--watch"], server=d.url)
    requeued = re.findall(r"^%s: re-queued (r-\d+) lambda_ratio=(\S+) solver=(\S+) attempt (\d+) "
                          r"\(was (\w+)\)$" % sid, out, re.M)
    new = [x[0] for x in requeued]
    want_vals = sorted((o["spec"]["lambda_ratio"], o["spec"]["solver"]) for o in old.values())
    ok(rc == 0 and sorted((float(x[1]), x[2]) for x in requeued) == want_vals and
       all(x[3] == "2" and x[4] == "STOPPED" for x in requeued) and
       "%s: 2 points re-queued" % sid in out and "FINISHED 6" in out,
       "sweep resume re-queues exactly the stopped points (values, attempt 2, was STOPPED); "
       "they run again and finish", out + err)
    sweep_runs = d.api("GET", "/v1/runs?sweep=%s&page_size=100" % sid)[1]["runs"]
    byid = {r["id"]: r for r in sweep_runs}
    point_of = {(o["spec"]["lambda_ratio"], o["spec"]["solver"]): o["point"] for o in old.values()}
    def vals(r):
        return r["spec"]["lambda_ratio"], r["spec"]["solver"]
    ok(len(sweep_runs) == 8 and set(new) <= set(byid) and
       all(byid[n]["sweep_id"] == sid and byid[n]["attempt"] == 2 and
           byid[n]["state"] == "FINISHED" and byid[n]["point"] == point_of[vals(byid[n])]
           for n in new) and all(byid[r]["attempt"] == 1 for r in runs),
       "the new attempts run inside the sweep: GET /v1/runs?sweep=ID lists them with attempt 2 "
       "and their point's hash", [(r["id"], r.get("point"), r.get("attempt")) for r in sweep_runs])
    rc, out, err = vvctl(["ls", "--sweep", sid], server=d.url)
    listed = set(re.findall(r"^(r-\d+)\s", out, re.M))
    ok(rc == 0 and listed == set(byid), "vvctl ls --sweep ID shows the new attempts too", out + err)
    rc, out, err = vvctl(["show", new[0] if new else "r-000000"], server=d.url)
    ok(rc == 0 and re.search(r"^sweep\s+%s\s+point [0-9a-f]{16}\s+attempt 2$" % sid, out, re.M),
       "show of a resumed run names its sweep, point and attempt", out + err)
    sw = d.api("GET", "/v1/sweeps/" + sid)[1]
    latest = [r for r in sw["runs"] if r["latest"]]
    ok(sw["state"] == "FINISHED" and sw["counts"]["FINISHED"] == 6 and len(latest) == 6 and
       {r["id"] for r in sw["runs"] if not r["latest"]} == set(stopped),
       "GET /v1/sweeps/ID: the stopped attempts are not latest, counts count latest ones",
       json.dumps(sw)[-1500:])
    rc, out, err = vvctl(["sweep", "status", sid], server=d.url)
    rows = status_rows(out, ["lambda_ratio", "solver"])
    hdr = [x for x in out.splitlines() if "RUN" in x][:1]
    ok(rc == 0 and set(rows) == {r["id"] for r in latest} and
       hdr and hdr[0].split()[-1] == "TRIES" and
       all(v[2] == "FINISHED" and v[3] == (2 if k in new else 1) for k, v in rows.items()),
       "sweep status shows the latest attempt of each point, with a TRIES column", out)
    want = pareto([(r["id"], r["result"]["active"], r["result"]["mse"]) for r in latest
                   if r["state"] == "FINISHED"])
    marked = {k for k, v in rows.items() if v[0]}
    ok(marked == want, "the Pareto front is computed over the latest attempts (%s)"
       % ",".join(sorted(want)), out + "\nwant " + str(sorted(want)))
    rc, out, err = vvctl(["sweep", "status", sid, "--json"], server=d.url)
    pts = json.loads(out)["points"] if rc == 0 else []
    ok(len(pts) == 6 and {p["run"]["id"] for p in pts} == {r["id"] for r in latest} and
       sorted(p["attempts"] for p in pts) == [1, 1, 1, 1, 2, 2] and
       {p["run"]["id"] for p in pts if p["pareto"]} == want and
       all(p["point"] == p["run"]["point"] for p in pts),
       "sweep status --json: latest runs, attempts, point hashes, the same front", out[-800:])
    rc, out, err = vvctl(["sweep", "resume", sid], server=d.url)
    rc2, out2, err2 = vvctl(["sweep", "resume", sid, "--json"], server=d.url)
    n_after = len(d.api("GET", "/v1/runs?sweep=%s&page_size=100" % sid)[1]["runs"])
    ok(rc == 0 and "nothing to resume" in out and rc2 == 0 and
       json.loads(out2) == {"id": sid, "requeued": []} and n_after == 8,
       "resuming a complete sweep queues nothing", out + err + out2 + err2)
    rc, out, err = vvctl(["sweep", "resume", "s-999999"], server=d.url)
    ok(rc == 1 and "404" in err and err.count("\n") == 1, "resume of an unknown sweep: 404, exit 1",
       err)
    # sweep stop, then resume everything.
    long_rid = vvctl(["submit", os.path.join(tmp, "long.json")], server=d.url)[1].strip()
    d.wait_state(long_rid, ("RUNNING",))
    rc, out, err = vvctl(["sweep", base, "--grid", "lambda_ratio=0.07,0.15"], server=d.url)
    sid2 = out.strip()
    rc, out, err = vvctl(["sweep", "stop", sid2], server=d.url)
    runs = d.api("GET", "/v1/runs?sweep=" + sid2)[1]["runs"]
    ok(rc == 0 and all(r["state"] == "STOPPED" for r in runs) and "STOPPED 2" in out and
       "sweep %s  STOPPED" % sid2 in out, "sweep stop stops the queued points", out + err)
    vvctl(["stop", long_rid], server=d.url)
    rc, out, err = vvctl(["sweep", "resume", sid2, "--watch", "--json"], server=d.url)
    lines = [json.loads(x) for x in out.splitlines()] if rc == 0 else [{}]
    first, final = lines[0], lines[-1]
    ok(rc == 0 and first.get("id") == sid2 and len(first.get("requeued", [])) == 2 and
       all(e["attempt"] == 2 and e["was"] == "STOPPED" for e in first["requeued"]),
       "resume --json: the daemon's answer first", out[:800] + err)
    ok(rc == 0 and final.get("counts", {}).get("FINISHED") == 2 and
       final.get("state") == "FINISHED",
       "resume after sweep stop: every point finishes (--json status at the end)", out[-800:] + err)


def test_resume_full_queue(tmp):
    """A resume that does not fit the queue is refused (429) and queues nothing."""
    d = Daemon("--max-queue", "2")
    try:
        long_rid = vvctl(["submit", os.path.join(tmp, "long.json")], server=d.url)[1].strip()
        d.wait_state(long_rid, ("RUNNING",))
        rc, out, err = vvctl(["sweep", os.path.join(tmp, "quick.json"), "--grid",
                              "lambda_ratio=0.07,0.15"], server=d.url)
        sid = out.strip()
        vvctl(["sweep", "stop", sid], server=d.url)
        other = vvctl(["submit", os.path.join(tmp, "quick.json")], server=d.url)[1].strip()
        rc, out, err = vvctl(["sweep", "resume", sid], server=d.url)
        n = len(d.api("GET", "/v1/runs?sweep=" + sid)[1]["runs"])
        ok(rc == 1 and err.startswith("vvctl: 429") and err.count("\n") == 1 and n == 2,
           "resume with too little room in the queue: one 429 line, exit 1, nothing queued",
           "rc=%d n=%d\n%s%s" % (rc, n, out, err))
        vvctl(["stop", other], server=d.url)
        vvctl(["stop", long_rid], server=d.url)
        rc, out, err = vvctl(["sweep", "resume", sid, "--watch"], server=d.url)
        ok(rc == 0 and "2 points re-queued" in out and "FINISHED 2" in out,
           "with room again the same resume goes through", out + err)
    finally:
        d.close()


def test_unreachable(tmp):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = "http://127.0.0.1:%d" % port
    for args in (["ls"], ["watch", "r-000001"], ["sweep", "status", "s-000001"],
                 ["submit", os.path.join(tmp, "quick.json")]):
        rc, out, err = vvctl(args, server=url)
        ok(rc == 3 and "cannot reach vvd at " + url in err,
           "%s with no server: exit 3" % args[0], "rc=%d %s" % (rc, err))
    rc, out, err = vvctl(["--server", url, "ls"])
    ok(rc == 3, "--server overrides VVD_SERVER", err)


def test_token(tmp):
    d = Daemon("--token", "s3cret")
    try:
        rc, out, err = vvctl(["ls"], server=d.url)
        ok(rc == 1 and err == "vvctl: 401 UNAUTHENTICATED: this vvd requires "
           "'Authorization: Bearer <token>'\n", "no token: exit 1 and one 401 line", err)
        rc, out, err = vvctl(["ls", "--token", "wrong"], server=d.url)
        ok(rc == 1 and err.startswith("vvctl: 401 UNAUTHENTICATED") and err.count("\n") == 1,
           "a wrong token: exit 1 and one 401 line", err)
        rc, out, err = vvctl(["watch", "r-000001"], server=d.url)
        ok(rc == 1 and "401" in err, "watch with no token: exit 1", err)
        rc, out, err = vvctl(["submit", os.path.join(tmp, "quick.json"), "--watch"], server=d.url,
                             env={"VVD_TOKEN": "s3cret"})
        ok(rc == 0 and "FINISHED" in out, "VVD_TOKEN: submit and watch (SSE) with the token", out + err)
        rc, out, err = vvctl(["--token", "s3cret", "ls"], server=d.url)
        ok(rc == 0 and "FINISHED" in out, "--token before the command", out + err)
    finally:
        d.close()


def write_npy(path, descr, shape, values):
    """Writes a C-order .npy of any shape: descr '<f4', '<f8', '|u1' or '<i8'."""
    fmt = {"<f4": "f", "<f8": "d", "|u1": "B", "<i8": "q"}[descr]
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))
    return path


def test_upload_models(tmp):
    """vvctl upload, vvctl models ls|load|rm, and submit --upload of a compress
    spec naming every kind of local file, on a daemon of their own."""
    fix = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    weights = os.path.join(fix, "fmnist", "mlp_128_64.safetensors")
    mlp = {"arch": "mlp", "input": [1, 28, 28], "sizes": [784, 128, 64, 10],
           "preprocess": {"mean": [0.286], "std": [0.353]}}
    up = os.path.join(tmp, "up")
    for sub in ("train", "test", "cifar"):
        os.makedirs(os.path.join(up, sub))
    rnd = random.Random(11)
    for sub, n in (("train", 64), ("test", 32)):
        write_npy(os.path.join(up, sub, "x.npy"), "|u1", (n, 28, 28),
                  [rnd.randrange(256) for _ in range(n * 784)])
        write_npy(os.path.join(up, sub, "y.npy"), "<i8", (n,), [i % 10 for i in range(n)])
    for name in ("data_batch_1.bin", "test_batch.bin"):
        with open(os.path.join(up, "cifar", name), "wb") as f:
            f.write(bytes([3]) + bytes(3072))
    write_json(os.path.join(up, "model.json"), mlp)
    shutil.copy(weights, os.path.join(up, "mlp.safetensors"))
    with open(os.path.join(up, "model.pt"), "wb") as f:
        f.write(b"PK\x03\x04" + b"\0" * 22 + struct.pack("<HH", 16, 0) + b"archive/data.pkl" +
                b"\0" * 32)
    d = Daemon()
    blobs = os.path.join(d.dir, "data", "blobs")
    try:
        # vvctl upload: a file, a file under another name, a folder.
        rc, out, err = vvctl(["upload", os.path.join(up, "train", "x.npy")], server=d.url)
        ok(rc == 0 and out.strip() == "blobs/x.npy" and
           open(os.path.join(blobs, "x.npy"), "rb").read() ==
           open(os.path.join(up, "train", "x.npy"), "rb").read(),
           "vvctl upload FILE: prints blobs/BASENAME, the blob holds the file", out + err)
        rc, out, err = vvctl(["upload", os.path.join(up, "test", "y.npy"), "sets/test-y.npy"],
                             server=d.url)
        ok(rc == 0 and out.strip() == "blobs/sets/test-y.npy" and
           os.path.isfile(os.path.join(blobs, "sets", "test-y.npy")),
           "vvctl upload FILE NAME: a name with a folder", out + err)
        rc, out, err = vvctl(["upload", os.path.join(up, "cifar")], server=d.url)
        ok(rc == 0 and out.strip() == "blobs/cifar" and
           sorted(os.listdir(os.path.join(blobs, "cifar"))) == ["data_batch_1.bin",
                                                                 "test_batch.bin"],
           "vvctl upload FOLDER: every file inside, under the folder's name", out + err)
        rc, out, err = vvctl(["upload", os.path.join(up, "model.json"), "a b.json"],
                             server=d.url)
        ok(rc == 2 and "cannot be a blob name" in err, "vvctl upload with a bad name: exit 2", err)

        # vvctl models.
        rc, out, err = vvctl(["models"], server=d.url)
        ok(rc == 0 and out.startswith("NAME") and "default model fmnist-mlp: not trained" in out,
           "vvctl models: an empty table and the default model's state", out + err)
        rc, out, err = vvctl(["models", "load", "fm", "--arch", "mlp", "--input", "1,28,28",
                              "--sizes", "784,128,64,10", "--weights",
                              os.path.join(up, "mlp.safetensors"), "--preprocess",
                              json.dumps(mlp["preprocess"])], server=d.url)
        st, body = d.api("GET", "/v1/models/fm")
        ok(rc == 0 and out.startswith("fm: loaded, 109386 parameters") and st == 200 and
           body["weights"].endswith("/blobs/mlp.safetensors") and
           os.path.isfile(os.path.join(blobs, "mlp.safetensors")),
           "vvctl models load --arch --weights LOCAL: uploaded first, then loaded", out + err)
        rc, out, err = vvctl(["models", "load", "fs", "--spec", os.path.join(up, "model.json"),
                              "--weights", "mlp.safetensors"], server=d.url)
        st, body = d.api("GET", "/v1/models/fs")
        ok(rc == 0 and st == 200 and body["spec"].get("preprocess") == mlp["preprocess"] and
           os.path.isfile(os.path.join(blobs, "model.json")),
           "vvctl models load --spec LOCAL --weights BLOB: the spec file uploaded, the blob used",
           out + err)
        rc, out, err = vvctl(["models", "ls"], server=d.url)
        rows = [l.split() for l in out.splitlines()[1:] if l and not l.startswith("default")]
        ok(rc == 0 and sorted(r[0] for r in rows) == ["fm", "fs"] and
           all(r[1] == "109386" and r[3] == "1x28x28" and r[6] == "fc1,fc2,fc3" for r in rows),
           "vvctl models ls: both, with parameters, input and linear layers", out + err)
        rc, out, err = vvctl(["--json", "models", "ls"], server=d.url)
        ok(rc == 0 and [m["name"] for m in json.loads(out)["models"]] ==
           [m["name"] for m in d.api("GET", "/v1/models")[1]["models"]],
           "vvctl --json models ls: the daemon's answer", out + err)
        rc, out, err = vvctl(["models", "load", "pt", "--arch", "mlp", "--input", "1,28,28",
                              "--sizes", "784,128,64,10", "--weights",
                              os.path.join(up, "model.pt")], server=d.url)
        ok(rc == 1 and "400 BAD_FILE_FORMAT at /weights" in err and "torch.save" in err and
           "vvd.export(" in err,
           "vvctl models load with torch.save weights: exit 1, says what it is and how to export",
           err)
        rc, out, err = vvctl(["models", "load", "x", "--arch", "mlp", "--spec", "m.json"],
                             server=d.url)
        ok(rc == 2 and "exactly one of --arch and --spec" in err, "models load --arch --spec: "
           "exit 2", err)
        rc, out, err = vvctl(["models", "frob"], server=d.url)
        ok(rc == 2 and "no subcommand 'frob'" in err, "models frob: exit 2", err)
        rc, out, err = vvctl(["models", "rm", "fs"], server=d.url)
        ok(rc == 0 and "fs: deleted" in out and d.api("GET", "/v1/models/fs")[0] == 404,
           "vvctl models rm: deleted", out + err)
        rc, out, err = vvctl(["models", "rm", "fs"], server=d.url)
        ok(rc == 1 and "404" in err, "vvctl models rm of a model that is gone: exit 1, 404", err)

        # submit --upload: every local file of a compress spec, rewritten to its blob.
        spec = {"kind": "compress", "layers": ["fc3"], "lambda_ratio": 0.1, "finetune": False,
                "baseline": False,
                "model": {"spec": os.path.join(up, "model.json"),
                          "weights": os.path.join(up, "mlp.safetensors")},
                "data": {"format": "npy",
                         "train": {"images": os.path.join(up, "train", "x.npy"),
                                   "labels": os.path.join(up, "train", "y.npy")},
                         "test": {"images": os.path.join(up, "test", "x.npy"),
                                  "labels": os.path.join(up, "test", "y.npy")}}}
        path = write_json(os.path.join(tmp, "compress.json"), spec)
        rc, out, err = vvctl(["submit", path, "--upload", "--watch"], server=d.url)
        rid = out.split()[0] if out else ""
        run = d.run(rid) if rid.startswith("r-") else {}
        sp = run.get("spec") or {}
        want = {"model": {"spec": "blobs/model.json", "weights": "blobs/mlp.safetensors"},
                "data": {"format": "npy",
                         "train": {"images": "blobs/x.npy", "labels": "blobs/y.npy"},
                         "test": {"images": "blobs/test/x.npy", "labels": "blobs/test/y.npy"}}}
        ok(rc == 0 and run.get("state") == "FINISHED" and
           {k: sp.get(k) for k in want} == want and
           open(os.path.join(blobs, "test", "x.npy"), "rb").read() ==
           open(os.path.join(up, "test", "x.npy"), "rb").read(),
           "submit --upload of a compress spec: model.spec, model.weights and the data's files "
           "uploaded and renamed (test/x.npy apart from train's x.npy); the run FINISHED",
           "rc=%d %s\n%s\n%s" % (rc, json.dumps(sp), out, err))
        cifar = {"kind": "compress", "layers": ["classifier.6"], "lambda_ratio": 0.1,
                 "model": {"arch": "vgg19_cifar", "width_div": 16},
                 "data": {"format": "cifar10", "dir": os.path.join(up, "cifar")}}
        shutil.rmtree(os.path.join(blobs, "cifar"))
        path = write_json(os.path.join(tmp, "cifar.json"), cifar)
        rc, out, err = vvctl(["submit", path, "--upload", "--dry-run"], server=d.url)
        sent = json.loads(out) if rc == 0 else {}
        ok(rc == 0 and sent.get("data", {}).get("dir") == "blobs/cifar" and
           sorted(os.listdir(os.path.join(blobs, "cifar"))) == ["data_batch_1.bin",
                                                                 "test_batch.bin"],
           "submit --upload: data.dir's files go to blobs/DIRNAME/ and dir becomes blobs/DIRNAME",
           out + err)
        bad = dict(spec, model={"spec": os.path.join(up, "nope.json")})
        rc, out, err = vvctl(["submit", write_json(os.path.join(tmp, "bad.json"), bad),
                              "--upload"], server=d.url)
        ok(rc == 2 and "/model/spec" in err and "is not a local file" in err,
           "submit --upload naming a file that is not here: exit 2 naming the field", err)
        rc, out, err = vvctl(["submit", write_json(os.path.join(tmp, "fc1.json"),
                                                   dict(spec, model="fm", layers=["fc1"],
                                                        data=want["data"]))],
                             server=d.url)
        ok(rc == 1 and "400 INVALID_PARAMETER_VALUE at /layers/0" in err and
           "fed by the input" in err,
           "submit of a compress run naming fc1 of a resident model: refused when submitted",
           err)
    finally:
        d.close()


# ---- A fake daemon with canned answers --------------------------------------------


class FakeServer:
    """Answers (METHOD, PATH) from a table of (status, content type, body); 404
    for anything else.  For what the real daemon cannot be made to send: a
    problem carrying did_you_mean, a canned event stream."""

    def __init__(self, routes):
        import http.server

        table = routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                st, ctype, body = table.get((self.command, self.path.split("?")[0]),
                                            (404, "application/problem+json",
                                             b'{"error_code":"RESOURCE_DOES_NOT_EXIST",'
                                             b'"detail":"no such thing"}'))
                self.send_response(st)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = answer

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sse(events):
    """An event stream of (type, data) pairs, numbered from 1."""
    return "".join("id: %d\nevent: %s\ndata: %s\n\n" % (i + 1, t, json.dumps(d))
                   for i, (t, d) in enumerate(events)).encode()


# ---- Issue 16: vvctl as a tracking tool ---------------------------------------------


def test_suggestions(d, tmp):
    cases = [
        (["lsit"], "no command 'lsit'; did you mean 'ls'?"),
        (["shwo", "r-000001"], "no command 'shwo'; did you mean 'show'?"),
        (["help", "comapre"], "no command 'comapre'; did you mean 'compare'?"),
        (["sweep", "statsu", "s-000001"], "unknown sweep subcommand 'statsu'; did you mean 'status'?"),
        (["sweep", "lst"], "unknown sweep subcommand 'lst'; did you mean 'ls'?"),
        (["ls", "--stat", "FINISHED"], "unknown option '--stat'; did you mean '--state'?"),
        (["sweep", "ls", "--limt", "3"], "unknown option '--limt'; did you mean '--limit'?"),
        (["tag", "r-000001", "x", "--rn", "y"], "unknown option '--rn'; did you mean '--rm'?"),
        (["--jsno", "ls"], "unknown option '--jsno'; did you mean '--json'?"),
        (["models", "lod", "x"], "no subcommand 'lod'; did you mean 'load'?"),
    ]
    for args, msg in cases:
        rc, out, err = vvctl(args, server=d.url)
        ok(rc == 2 and msg in err and err.count("\n") == 1 and "spec" not in err and
           "No such file" not in err,
           "%s: exit 2 and '%s'" % (" ".join(args), msg), "rc=%d\n%s" % (rc, err))
    rc, out, err = vvctl(["frobnicate"], server=d.url)
    ok(rc == 2 and "no command 'frobnicate'" in err and "did you mean" not in err,
       "a word close to no command gets no suggestion", err)
    # The daemon's own suggestion for an unknown field of a spec.
    rc, out, err = vvctl(["submit", "-"], server=d.url, input=json.dumps(
        {"kind": "lasso", "generate": {"n": 100, "k": 8, "d": 2}, "lamdba": 0.1}))
    ok(rc == 1 and err.startswith("vvctl: 400 UNKNOWN_FIELD at /lamdba: ") and
       err.rstrip().endswith("did you mean 'lambda'?") and err.count("did you mean") == 1 and
       err.count("\n") == 1,
       "a 400 for an unknown spec field ends with the daemon's 'did you mean', once", err)
    # did_you_mean alone, and repeated in the detail: printed once either way.
    problem = {"type": "about:blank", "title": "Bad Request", "status": 400,
               "error_code": "UNKNOWN_FIELD", "field": "/nmae", "detail": "/nmae: unknown field",
               "did_you_mean": "name"}
    f = FakeServer({("PATCH", "/v1/runs/r-000001"):
                    (400, "application/problem+json", json.dumps(problem).encode())})
    try:
        rc, out, err = vvctl(["rename", "r-000001", "x"], server=f.url)
        ok(rc == 1 and err == "vvctl: 400 UNKNOWN_FIELD at /nmae: /nmae: unknown field; "
           "did you mean 'name'?\n", "a problem's did_you_mean is printed after its detail", err)
    finally:
        f.close()
    problem["detail"] = "/nmae: unknown field; did you mean 'name'?"
    f = FakeServer({("PATCH", "/v1/runs/r-000001"):
                    (400, "application/problem+json", json.dumps(problem).encode())})
    try:
        rc, out, err = vvctl(["rename", "r-000001", "x"], server=f.url)
        ok(rc == 1 and err.count("did you mean") == 1,
           "a detail that already suggests is not suggested twice", err)
    finally:
        f.close()


def test_stop_ended(d, rid):
    before = d.run(rid)
    rc, out, err = vvctl(["stop", rid], server=d.url)
    after = d.run(rid)
    ok(rc == 0 and out == "%s: the run had already ended (state FINISHED); nothing to stop\n" % rid
       and after["state"] == "FINISHED" and after["finished"] == before["finished"],
       "stop of an ended run: exit 0, says it had already ended and its state", out + err)


def test_state_case(d):
    rc1, out1, err1 = vvctl(["ls", "--all", "--state", "finished"], server=d.url)
    rc2, out2, _ = vvctl(["ls", "--all", "--state", "FINISHED"], server=d.url)
    ids = re.findall(r"^(r-\d+)\s", out1, re.M)
    want = [r["id"] for r in d.api("GET", "/v1/runs?state=FINISHED&page_size=1000")[1]["runs"]]
    ok(rc1 == 0 and rc2 == 0 and ids == want and out1 == out2 and len(ids) > 0,
       "ls --state finished == --state FINISHED (%d runs)" % len(ids), out1 + err1)


def test_tracking(d, tmp, rid):
    rc, out, err = vvctl(["rename", rid, "baseline-run"], server=d.url)
    ok(rc == 0 and out == "%s: name baseline-run\n" % rid and d.run(rid).get("name") == "baseline-run",
       "rename: the run carries the name", out + err)
    rc, out, err = vvctl(["tag", rid, "exp1", "fmnist"], server=d.url)
    ok(rc == 0 and out == "%s: tags exp1, fmnist\n" % rid and d.run(rid).get("tags") == ["exp1", "fmnist"],
       "tag ID TAG...: adds them and prints the run's tags", out + err)
    rc, out, err = vvctl(["tag", rid, "keep", "--rm", "fmnist"], server=d.url)
    ok(rc == 0 and out == "%s: tags exp1, keep\n" % rid and d.run(rid).get("tags") == ["exp1", "keep"],
       "tag ID TAG --rm TAG: adds and removes", out + err)
    rc, out, err = vvctl(["tag", rid], server=d.url)
    ok(rc == 0 and out == "%s: tags exp1, keep\n" % rid, "tag ID alone prints the tags", out + err)
    rc, out, err = vvctl(["tag", rid, "not a tag"], server=d.url)
    ok(rc == 1 and err.startswith("vvctl: 400 ") and d.run(rid).get("tags") == ["exp1", "keep"],
       "a bad tag: one 400 line, exit 1, tags unchanged", err)
    rc, out, err = vvctl(["note", rid, "first", "try"], server=d.url)
    ok(rc == 0 and d.run(rid).get("notes") == "first try" and "notes set" in out,
       "note ID TEXT...: the words joined", out + err)
    rc, out, err = vvctl(["note", rid, "-"], server=d.url, input="line one\nline two\n")
    ok(rc == 0 and d.run(rid).get("notes") == "line one\nline two",
       "note ID -: the notes from stdin, the trailing newline dropped", out + err)
    rc, out, err = vvctl(["show", rid], server=d.url)
    ok(rc == 0 and "name      baseline-run\n" in out and "tags      exp1, keep\n" in out and
       "notes     line one\n          line two\n" in out,
       "show: name, tags and every line of the notes", out + err)
    rc, out, err = vvctl(["ls", "--all", "--tag", "exp1"], server=d.url)
    rows = re.findall(r"^(r-\d+)\s+(\S+)", out, re.M)
    ok(rc == 0 and rows == [(rid, "baseline-run")], "ls --tag T: only the tagged run, with its name",
       out + err)
    rc, out, err = vvctl(["ls", "--all", "--tag", "exp1", "--tag", "fmnist"], server=d.url)
    ok(rc == 0 and not re.findall(r"^r-\d+", out, re.M), "ls --tag A --tag B: runs carrying both",
       out + err)
    rc, out, err = vvctl(["ls", "--all", "--q", "BASELINE-R"], server=d.url)
    ok(rc == 0 and re.findall(r"^(r-\d+)", out, re.M) == [rid], "ls --q TEXT: by name, any case",
       out + err)
    rc, out, err = vvctl(["note", rid, ""], server=d.url)
    rc2, out2, err2 = vvctl(["rename", rid, "--reset"], server=d.url)
    run = d.run(rid)
    ok(rc == 0 and "notes cleared" in out and rc2 == 0 and out2 == "%s: no name\n" % rid and
       run.get("notes") == "" and run.get("name") is None,
       "note ID '' clears the notes; rename --reset drops the name", out + err + out2 + err2)


def test_rm(d, tmp):
    rid = vvctl(["submit", os.path.join(tmp, "quick.json")], server=d.url)[1].strip()
    d.wait_state(rid, FINAL)
    folder = os.path.join(d.dir, "data", "runs", rid)
    had_files = os.path.isdir(folder) and len(os.listdir(folder)) > 0
    rc, out, err = vvctl(["rm", rid], server=d.url, input="")
    st, _ = d.api("GET", "/v1/runs/" + rid)
    ok(rc == 0 and re.match(r"%s: deleted \(\d+ files removed\)" % rid, out) and st == 404 and
       had_files and not os.path.exists(folder),
       "rm of an ended run (stdin not a terminal: no question): GET is 404, its folder is gone",
       out + err)
    long_rid = vvctl(["submit", os.path.join(tmp, "long.json")], server=d.url)[1].strip()
    d.wait_state(long_rid, ("RUNNING",))
    done = vvctl(["submit", os.path.join(tmp, "quick.json")], server=d.url)[1].strip()
    rc, out, err = vvctl(["rm", long_rid, "--yes"], server=d.url)
    ok(rc == 1 and "409" in err and "stop it first" in err and "vvctl stop " + long_rid in err and
       d.run(long_rid)["state"] == "RUNNING",
       "rm of a running run: refused with the 409 shown, how to stop it, exit 1", err)
    vvctl(["stop", long_rid], server=d.url)
    d.wait_state(long_rid, FINAL)
    d.wait_state(done, FINAL)
    rc, out, err = vvctl(["rm", long_rid, "r-999999", done], server=d.url, input="")
    ok(rc == 1 and "404" in err and d.api("GET", "/v1/runs/" + long_rid)[0] == 404 and
       d.api("GET", "/v1/runs/" + done)[0] == 404,
       "rm of several runs: a missing one is an error (exit 1), the others are deleted", out + err)
    # A person at a terminal is asked; 'n' deletes nothing.
    rid = vvctl(["submit", os.path.join(tmp, "quick.json")], server=d.url)[1].strip()
    d.wait_state(rid, FINAL)
    p = subprocess.run(["script", "-qec", "%s --server %s rm %s" % (VVCTL, d.url, rid), "/dev/null"],
                       input=b"n\n", capture_output=True, timeout=60)
    text = p.stdout.decode("utf-8", "replace")
    ok("[y/N]" in text and "nothing deleted" in text and d.api("GET", "/v1/runs/" + rid)[0] == 200,
       "rm on a terminal asks first; 'n' deletes nothing", text)


def test_compare(d, tmp):
    a = dict(QUICK, name="cmp-a")
    b = dict(QUICK, name="cmp-b", lambda_ratio=0.2, solver="fista",
             generate=dict(QUICK["generate"], seed=2))
    ra = vvctl(["submit", "-"], server=d.url, input=json.dumps(a))[1].strip()
    rb = vvctl(["submit", "-"], server=d.url, input=json.dumps(b))[1].strip()
    d.wait_state(ra, FINAL)
    d.wait_state(rb, FINAL)
    rc, out, err = vvctl(["compare", ra, rb], server=d.url)
    params = out[out.find("PARAMETER"):]
    prow = {l.split()[0]: l.split()[1:] for l in params.splitlines()[1:] if l.strip()}
    mrow = {l.split()[0]: l.split()[1:] for l in out[:out.find("PARAMETER")].splitlines()[1:]
            if l.strip()}
    sa, sb = d.run(ra)["summary"], d.run(rb)["summary"]
    ok(rc == 0 and params.splitlines()[0].split() == ["PARAMETER", ra, rb] and
       set(prow) == {"name", "lambda_ratio", "solver", "generate.seed"} and
       prow["lambda_ratio"] == ["0.1", "0.2"] and prow["solver"] == ["-", "fista"] and
       prow["generate.seed"] == ["1", "2"],
       "compare: the differing spec parameters, nested ones dotted; equal ones (kind, "
       "generate.n) left out", out + err)
    ok(mrow.get("active") == [str(sa["active"]), str(sb["active"])] and
       mrow.get("state") == ["FINISHED", "FINISHED"] and set(sa) <= set(mrow),
       "compare: every summary key, side by side", out)
    rc, out, err = vvctl(["compare", ra, rb, "--json"], server=d.url)
    j = json.loads(out) if rc == 0 else {}
    ok(rc == 0 and j.get("runs") == [ra, rb] and
       j["params"] == {"name": ["cmp-a", "cmp-b"], "lambda_ratio": [0.1, 0.2],
                       "solver": [None, "fista"], "generate.seed": [1, 2]} and
       j["metrics"]["active"] == [sa["active"], sb["active"]],
       "compare --json: the same as JSON, null where a run lacks a value", out + err)
    rc, out, err = vvctl(["compare", ra], server=d.url)
    ok(rc == 2 and "2 to" in err, "compare of one run: usage error", err)


def test_sweep_ls(d, tmp):
    want = d.api("GET", "/v1/sweeps?page_size=1000")[1]["sweeps"]
    rc, out, err = vvctl(["sweep", "ls"], server=d.url)
    lines = out.splitlines()
    rows = {l.split()[0]: l for l in lines[1:]}
    first = want[0] if want else {}
    ok(rc == 0 and lines and lines[0].split() == ["ID", "NAME", "KIND", "STATE", "POINTS", "COUNTS",
                                                  "GRID", "CREATED"] and
       [l.split()[0] for l in lines[1:]] == [s["id"] for s in want] and len(want) >= 2,
       "sweep ls: every sweep, newest first, with its columns", out + err)
    if first:
        counts = ",".join("%s=%d" % (k, v) for k, v in first["counts"].items() if v)
        if first.get("deleted"):
            counts += ",DELETED=%d" % first["deleted"]
        grid = ",".join("%s[%d]" % (k, len(v)) for k, v in first["grid"].items())
        cells = rows[first["id"]].split()
        ok(cells[2] == first["kind"] and cells[3] == first["state"] and
           cells[4] == str(first["points"]) and cells[5] == counts and cells[6] == grid,
           "sweep ls: kind, state, points, counts by state and grid axes of a sweep", rows[first["id"]])
    rc, out, err = vvctl(["sweep", "ls", "--limit", "1"], server=d.url)
    ok(rc == 0 and len(out.splitlines()) == 2 and "--limit" in err, "sweep ls --limit 1: one sweep",
       out + err)
    rc, out, err = vvctl(["sweep", "ls", "--state", "finished"], server=d.url)
    fin = [s["id"] for s in want if s["state"] == "FINISHED"]
    ok(rc == 0 and re.findall(r"^(s-\d+)", out, re.M) == fin and fin,
       "sweep ls --state finished (any case)", out + err)
    rc, out, err = vvctl(["sweep", "ls", "--kind", "interpolate"], server=d.url)
    ok(rc == 0 and not re.findall(r"^s-\d+", out, re.M), "sweep ls --kind: only that kind", out + err)
    rc, out, err = vvctl(["sweep", "ls", "--json"], server=d.url)
    ok(rc == 0 and [s["id"] for s in json.loads(out)["sweeps"]] == [s["id"] for s in want],
       "sweep ls --json", err)


def compress_spec(d, tmp, **kw):
    """A small compress job on the fixture MLP: Fashion-MNIST (a few hundred
    images) when installed, else random images written here."""
    fix = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    data = os.path.join(d.dir, "data")
    shutil.copy(os.path.join(fix, "fmnist", "mlp_128_64.safetensors"),
                os.path.join(data, "mlp.safetensors"))
    fmnist = os.environ.get("VV_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    if os.path.exists(os.path.join(fmnist, "t10k-labels-idx1-ubyte.gz")):
        ds = {"format": "fashion-mnist", "max_train": 1000, "max_test": 500}
    else:
        rnd = random.Random(5)
        for sub, n in (("train", 200), ("test", 100)):
            write_npy(os.path.join(data, "c_%s_x.npy" % sub), "|u1", (n, 28, 28),
                      [rnd.randrange(256) for _ in range(n * 784)])
            write_npy(os.path.join(data, "c_%s_y.npy" % sub), "<i8", (n,), [i % 10 for i in range(n)])
        ds = {"format": "npy", "train": {"images": "c_train_x.npy", "labels": "c_train_y.npy"},
              "test": {"images": "c_test_x.npy", "labels": "c_test_y.npy"}}
    spec = {"kind": "compress", "layers": ["fc2", "fc3"], "lambda_ratio": 0.1,
            "model": {"arch": "mlp", "input": [1, 28, 28], "sizes": [784, 128, 64, 10],
                      "weights": "mlp.safetensors", "preprocess": {"mean": [0.286], "std": [0.353]}},
            "data": ds}
    spec.update(kw)
    return spec


def metric_lines(out, rid):
    """Plain watch metric lines: [(layer or None, layer_step or None, step)]."""
    res = []
    for m in re.finditer(r"^%s(?: layer=(\S+) layer_step=(\d+))? step=(\d+) objective=" % rid, out, re.M):
        res.append((m.group(1), int(m.group(2)) if m.group(2) else None, int(m.group(3))))
    return res


def test_compress_views(d, tmp):
    spec = write_json(os.path.join(tmp, "compress.json"), compress_spec(d, tmp, name="cmp"))
    rc, out, err = vvctl(["submit", spec, "--watch"], server=d.url)
    rid = out.split()[0] if out else ""
    run = d.run(rid) if rid.startswith("r-") else {}
    res = run.get("result") or {}
    ml = metric_lines(out, rid)
    fc3 = [x for x in ml if x[0] == "fc3"]
    ok(rc == 0 and run.get("state") == "FINISHED" and {x[0] for x in ml} == {"fc2", "fc3"} and
       fc3 and all(1 <= x[1] < x[2] for x in fc3),
       "watch of a compress run: each metric line names its layer and counts steps within it",
       out + err)
    ok("{" not in out and " log " not in out and
       re.search(r"^%s start compress: model \S+, layers fc2, fc3; \d+ train / \d+ test images" % rid,
                 out, re.M) and
       re.search(r"^%s layer fc3: statistics over \d+ samples \(64 inputs, 10 outputs\)" % rid,
                 out, re.M),
       "watch renders the log events in words, never raw JSON", out)
    rc, out, err = vvctl(["watch", rid, "--json"], server=d.url)
    ok(rc == 0 and all(json.loads(x) is not None for x in out.splitlines()) and
       any('"event":"log"' in x for x in out.splitlines()), "watch --json stays raw JSON", out[-500:])
    kept = "/".join(str(l["kept"]) for l in res.get("layers", []))
    rc, out, err = vvctl(["ls", "--kind", "compress"], server=d.url)
    head = out.splitlines()[0].split() if out else []
    row = dict(zip(head, (re.findall(r"^%s\s.*$" % rid, out, re.M) or [""])[0].split()))
    ok(rc == 0 and row.get("ACTIVE") == kept and
       row.get("PARAMS") == "%d->%d" % (res["before"]["params"], res["params"]) and
       row.get("TEST_ACC") == "%.4f->%.4f" % (res["before"]["test_acc"], res["test_acc"]) and
       row.get("NAME") == "cmp" and row.get("RATIO") == "0.1" and row.get("LAMBDA") == "-",
       "ls: a compress run's kept widths (%s), parameters and test accuracy before->after" % kept,
       out + err)
    rc, out, err = vvctl(["show", rid], server=d.url)
    widths = ", ".join("%s %d->%d" % (l["layer"], l["neurons"], l["kept"]) for l in res["layers"])
    ok(rc == 0 and "layers %s\n" % widths in out and
       "parameters %d->%d  test acc %.4f->%.4f" % (res["before"]["params"], res["params"],
                                                   res["before"]["test_acc"], res["test_acc"]) in out,
       "show: layer widths, parameters and test accuracy before->after", out + err)
    # A compress sweep: the front on parameters and test accuracy.
    base = write_json(os.path.join(tmp, "compress_base.json"), compress_spec(d, tmp))
    # Without fine-tuning a point keeps its widths (and parameters) but loses
    # accuracy: it is dominated by its fine-tuned twin.
    rc, out, err = vvctl(["sweep", base, "--grid", "lambda_ratio=0.05,0.3", "--grid",
                          "finetune=false,true", "--name", "cfront", "--watch"], server=d.url)
    sid = out.splitlines()[0] if out else ""
    runs = d.api("GET", "/v1/runs?sweep=%s&page_size=100" % sid)[1]["runs"]
    ok(rc == 0 and len(runs) == 4 and all(r["state"] == "FINISHED" for r in runs) and
       re.search(r"widths=\S+ params=\S+ test_acc=\S+", out),
       "a compress sweep runs (sweep watch shows widths, params, test_acc)", out + err)
    rc, out, err = vvctl(["sweep", "status", sid], server=d.url)
    rows = status_rows(out, ["lambda_ratio", "finetune"])
    want = pareto([(r["id"], r["result"]["params"], -r["result"]["test_acc"]) for r in runs])
    marked = {k for k, v in rows.items() if v[0]}
    hdr = [x for x in out.splitlines() if "RUN" in x][:1]
    real = compress_spec(d, tmp)["data"]["format"] == "fashion-mnist"
    ok(rc == 0 and hdr and hdr[0].split() == ["RUN", "lambda_ratio", "finetune", "STATE", "WIDTHS",
                                              "PARAMS", "TEST_ACC"] and len(rows) == 4 and
       marked == want and (not real or 0 < len(want) < 4) and
       "params <= and test_acc >=" in out,
       "compress sweep status: widths, params, test_acc; '*' on exactly the points with no "
       "other of fewer-or-equal params and higher-or-equal accuracy (%s)" % ",".join(sorted(want)),
       out + "\nwant " + str(sorted(want)))
    rc, out, err = vvctl(["sweep", "ls", "--kind", "compress"], server=d.url)
    ok(rc == 0 and re.findall(r"^(s-\d+)\s+cfront\s+compress\s+FINISHED\s+4\s+FINISHED=4\s+"
                              r"lambda_ratio\[2\],finetune\[2\]", out, re.M) == [sid],
       "sweep ls --kind compress: the compress sweep, with its name", out + err)
    # Deleting a point's run: the sweep keeps a record, status says DELETED.
    gone = sorted(set(rows) - want)[:1] or sorted(rows)[:1]
    rc, out, err = vvctl(["rm", gone[0], "--yes"], server=d.url)
    ok(rc == 0 and "sweep %s keeps a record" % sid in out, "rm of a sweep's run names the sweep",
       out + err)
    rc, out, err = vvctl(["sweep", "status", sid], server=d.url)
    ok(rc == 0 and gone[0] not in out and len(re.findall(r"^\s+-\s.*\sDELETED\s", out, re.M)) == 1
       and "MISSING 1 (1 deleted)" in out, "sweep status shows the deleted point as DELETED", out)


def test_watch_fake(tmp):
    """watch against canned events: metrics carrying "layer", stats with the
    layer's first step, and an event vvctl does not know."""
    rid = "r-000001"
    run = {"id": rid, "kind": "compress", "state": "FINISHED", "stop_reason": "converged",
           "spec": {"kind": "compress", "tol": 1e-6}, "summary": {"test_acc": 0.8, "params": 10},
           "artifacts": []}
    events = [("state", {"state": "RUNNING"}),
              ("log", {"event": "start", "kind": "compress", "model": "fm", "layers": ["fc2", "fc3"],
                       "n_train": 100, "n_test": 50, "device": "cpu"}),
              ("log", {"event": "stats", "layer": "fc2", "step": 1, "n": 100, "k": 128, "d": 64,
                       "seconds": 0.5, "cached": False, "lambda_max": 2.0}),
              ("metric", {"step": 1, "time": 0.6, "objective": 1, "rel_gap": 0.5, "active": 9,
                          "layer": "fc2"}),
              ("metric", {"step": 40, "time": 0.7, "objective": 0.5, "rel_gap": 1e-7, "active": 8,
                          "layer": "fc2"}),
              ("log", {"event": "stats", "layer": "fc3", "step": 41, "n": 100, "k": 64, "d": 10,
                       "seconds": 0.1, "cached": True, "lambda_max": 1.0}),
              ("metric", {"step": 41, "time": 0.8, "objective": 1, "rel_gap": 0.5, "active": 5,
                          "layer": "fc3"}),
              ("metric", {"step": 60, "time": 0.9, "objective": 0.2, "rel_gap": 1e-7, "active": 4,
                          "layer": "fc3"}),
              ("log", {"event": "frobnicated", "alpha": 1.5, "beta": "x", "nested": {"a": 1},
                       "gamma": True}),
              ("state", {"state": "FINISHED", "stop_reason": "converged"})]
    f = FakeServer({("GET", "/v1/runs/" + rid): (200, "application/json", json.dumps(run).encode()),
                    ("GET", "/v1/runs/%s/events" % rid): (200, "text/event-stream", sse(events))})
    try:
        rc, out, err = vvctl(["watch", rid], server=f.url)
        ml = metric_lines(out, rid)
        ok(rc == 0 and ("fc2", 40, 40) in ml and ("fc3", 20, 60) in ml and
           all(l is not None and s - ls + 1 == (1 if l == "fc2" else 41) for l, ls, s in ml),
           "watch: metric lines name the layer of the metric and count from the layer's first "
           "step", out + err)
        ok("%s event frobnicated alpha=1.5 beta=x gamma=true\n" % rid in out and "{" not in out and
           "%s layer fc3: statistics over 100 samples (64 inputs, 10 outputs) (cached)" % rid in out,
           "watch: an unknown event is 'event NAME' and a few key=value pairs, never JSON", out)
    finally:
        f.close()


def main():
    tmp = tempfile.mkdtemp(prefix="vvctl-files-")
    t0 = time.monotonic()
    d = Daemon()
    try:
        test_usage(d, tmp)
        test_lasso_flags(d, tmp)
        rid = test_submit_watch(d, tmp)
        test_run_commands(d, tmp, rid)
        test_failed_run(d, tmp)
        test_watch_tty(d, tmp)
        long_rid = test_detach(d, tmp)
        test_reconnect(d, tmp, long_rid)
        test_sweep(d, tmp)
        test_bad_grid(d, tmp)
        test_resume(d, tmp)
        test_suggestions(d, tmp)
        test_stop_ended(d, rid)
        test_state_case(d)
        test_tracking(d, tmp, rid)
        test_rm(d, tmp)
        test_compare(d, tmp)
        test_compress_views(d, tmp)
        test_sweep_ls(d, tmp)
        test_watch_fake(tmp)
        test_resume_full_queue(tmp)
        test_unreachable(tmp)
        test_token(tmp)
        test_upload_models(tmp)
        test_restart(tmp)
    except Exception as e:  # a crash of the harness is a failed test point
        import traceback
        ok(False, "the test harness ran to its end: %r" % e, traceback.format_exc())
    finally:
        d.close()
        shutil.rmtree(tmp, ignore_errors=True)
    comment("%.1f s" % (time.monotonic() - t0))
    print("1..%d" % count, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
