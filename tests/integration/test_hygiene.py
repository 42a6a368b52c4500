#!/usr/bin/env python3
"""Text and integers at the daemon's edges: a real `vvd serve` on loopback,
and `vvd run`.

Usage: test_hygiene.py VVD   (speaks TAP; exit 0 when all pass)

Every string that enters JSON is valid UTF-8: a body with invalid UTF-8 or a
key repeated in a nested object is refused with the JSON pointer of the
value, and bytes from files reach error details escaped as \\xNN.  Integer
query parameters and headers are parsed whole and range-checked.  Standard
library only; nothing waits on a fixed sleep: readiness is the port file,
progress is the SSE stream, and a stream that must end is read with a socket
timeout.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, Tap, npy_bytes  # noqa: E402

GEN = b'"generate":{"n":200,"k":8,"d":2,"seed":1}'
QUICK = {"kind": "lasso", "generate": {"n": 200, "k": 8, "d": 2, "seed": 1},
         "lambda_ratio": 0.1}
EVENT_ID_MAX = 2 ** 53


def strict_json(raw):
    """raw (bytes) as JSON, decoded as strict UTF-8; raises ValueError."""
    return json.loads(raw.decode("utf-8", "strict"))


def problem(t, r, status, code, field, desc):
    """One test point: a problem+json answer of status, error_code and field,
    its body valid UTF-8 JSON."""
    errs = []
    body = None
    if r.status != status:
        errs.append("status %d, want %d" % (r.status, status))
    if not r.ctype.startswith("application/problem+json"):
        errs.append("Content-Type %r" % r.ctype)
    try:
        body = strict_json(r.body)
    except ValueError as e:
        errs.append("body is not valid UTF-8 JSON: %s" % e)
    if isinstance(body, dict):
        codes = code if isinstance(code, (list, tuple)) else (code,)
        if body.get("error_code") not in codes:
            errs.append("error_code %r, want %s" % (body.get("error_code"), "/".join(codes)))
        if body.get("field") != field:
            errs.append("field %r, want %r" % (body.get("field"), field))
        if not body.get("detail"):
            errs.append("empty detail")
    elif body is not None:
        errs.append("body is not an object")
    return t.ok(not errs, desc, "; ".join(errs) + "\nbody: %r" % r.body[:400])


def runs_list_ok(t, d, desc):
    """GET /v1/runs answers strict UTF-8 JSON; returns the runs (or None)."""
    r = d.get("/v1/runs?page_size=1000")
    try:
        runs = strict_json(r.body)["runs"]
    except (ValueError, KeyError, TypeError) as e:
        t.ok(False, desc, "%r: %s" % (r, e))
        return None
    t.ok(r.status == 200, desc, r)
    return runs


def bad_npy(dtype):
    """A 4 x 3 .npy whose header names dtype (bytes, put in as they are)."""
    hdr = b"{'descr': '" + dtype + b"', 'fortran_order': False, 'shape': (4, 3), }"
    hdr += b" " * (63 - (10 + len(hdr)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + b"\0" * 48


# ==== bodies ==================================================================


def scenario_bodies(t, d):
    # A run name of invalid UTF-8: refused, nothing stored, the list stays JSON.
    body = b'{"kind":"lasso","name":"bad\xff\xfe name",' + GEN + b',"lambda_ratio":0.1}'
    r = d.post("/v1/runs", body)
    problem(t, r, 400, "MALFORMED_JSON", "/name", "POST /v1/runs with a name of invalid UTF-8: "
            "400 MALFORMED_JSON at /name")
    runs = runs_list_ok(t, d, "GET /v1/runs afterwards is strict UTF-8 JSON")
    t.eq(runs, [], "the refused run was not stored")

    r = d.post("/v1/runs", b'{"kind":"lasso","gen\xffx":{}}')
    problem(t, r, 400, "MALFORMED_JSON", "/gen\\xffx",
            "a key of invalid UTF-8: 400 at its pointer, the bad byte written \\xff")
    r = d.post("/v1/runs", b'{"kind":"lasso","name":"\xed\xa0\x80",' + GEN +
               b',"lambda_ratio":0.1}')
    problem(t, r, 400, "MALFORMED_JSON", "/name", "a surrogate (ED A0 80) in a name: 400 at /name")
    r = d.post("/v1/runs", b'{"kind":"lasso","name":"x","generate":{"n":200,"k":8,"d":2,'
               b'"seed":"\xc0\xaf"},"lambda_ratio":0.1}')
    problem(t, r, 400, "MALFORMED_JSON", "/generate/seed",
            "an overlong form in a nested value: 400 at /generate/seed")

    # Keys repeated below the top level.
    r = d.post("/v1/runs", b'{"kind":"lasso","generate":{"n":200,"k":8,"d":2,"n":100},'
               b'"lambda_ratio":0.1}')
    problem(t, r, 400, "INVALID_PARAMETER_VALUE", "/generate/n",
            "a key repeated inside generate: 400 at /generate/n")
    r = d.post("/v1/runs", b'{"kind":"lasso","phi":{"path":"a.npy","pa~th/x":1,"pa~th/x":2},'
               b'"psi":"b.npy","lambda":1}')
    problem(t, r, 400, "INVALID_PARAMETER_VALUE", "/phi/pa~0th~1x",
            "a repeated key with '~' and '/' is pointed at as ~0 and ~1")
    r = d.post("/v1/sweeps", b'{"base":{"kind":"lasso","generate":{"n":200,"k":8,"d":2,'
               b'"k":9}},"grid":{"lambda_ratio":[0.1]}}')
    problem(t, r, 400, "INVALID_PARAMETER_VALUE", "/base/generate/k",
            "POST /v1/sweeps: a key repeated in base.generate, 400 at /base/generate/k")
    r = d.post("/v1/sweeps", b'{"base":{"kind":"lasso","name":"\xff",' + GEN +
               b'},"grid":{"lambda_ratio":[0.1]}}')
    problem(t, r, 400, "MALFORMED_JSON", "/base/name",
            "POST /v1/sweeps: invalid UTF-8 in base.name, 400 at /base/name")
    r = d.post("/v1/models", b'{"name":"m","arch":{"input":[1,2,2],"input":[1,2,2]}}')
    problem(t, r, 400, "INVALID_PARAMETER_VALUE", "/arch/input",
            "POST /v1/models: a key repeated in arch, 400 at /arch/input")
    r = d.post("/v1/models", b'{"name":"m\x80","arch":"mlp"}')
    problem(t, r, 400, "MALFORMED_JSON", "/name",
            "POST /v1/models: a name of invalid UTF-8, 400 at /name")
    runs = runs_list_ok(t, d, "GET /v1/runs after the refusals is strict UTF-8 JSON")
    t.eq(runs, [], "no refused body created a run")

    # Valid multi-byte text goes through and comes back the same.
    name = "λ-run € 😀"
    r = d.post("/v1/runs", json.dumps(dict(QUICK, name=name), ensure_ascii=False).encode())
    t.eq(r.status, 201, "a multi-byte name (raw UTF-8) is accepted")
    if r.status == 201:
        run = d.run(r.json()["id"])
        t.eq(run["spec"].get("name"), name, "and comes back as it was sent")
        d.wait_end(run["id"])


# ==== integers =================================================================


def scenario_integers(t, d):
    r = d.post("/v1/runs", QUICK)
    if not t.eq(r.status, 201, "a quick run to query"):
        return
    rid = r.json()["id"]
    s = d.wait_end(rid, deadline=120)
    last = s.ids()[-1] if s.ids() else 0
    t.ok(s.ended and last > 0, "it ran to its end (last event id %d)" % last, s.error)

    ev = "/v1/runs/%s/events" % rid
    for q in ("9223372036854775807", "99999999999999999999", "-1", "1x", "", " 1", "+1",
              "0x10", str(EVENT_ID_MAX + 1)):
        r = d.try_req("GET", ev + "?after=" + q.replace(" ", "%20").replace("+", "%2B"))
        problem(t, r, 400, "INVALID_PARAMETER_VALUE", "/query/after",
                "GET events?after=%r: 400 at /query/after" % q)
    for h in ("9223372036854775807", "-3", "abc", str(EVENT_ID_MAX + 1)):
        r = d.try_req("GET", ev, headers={"Last-Event-ID": h})
        problem(t, r, 400, "INVALID_PARAMETER_VALUE", "/header/Last-Event-ID",
                "GET events with Last-Event-ID %r: 400 at /header/Last-Event-ID" % h)

    # A large but valid after on a finished run: the stream ends, empty.
    for kw, what in (({"query_after": EVENT_ID_MAX}, "?after=2^53"),
                     ({"after": EVENT_ID_MAX}, "Last-Event-ID 2^53"),
                     ({"query_after": last}, "?after=<the last id>")):
        st = d.follow(rid, deadline=20, read_timeout=5, **kw)
        t.ok(st.status == 200 and st.ended and st.error is None and st.events == []
             and st.pings <= 2,
             "%s on a finished run: 200, no event, the stream ends" % what,
             "status %s ended %s error %s events %d pings %d"
             % (st.status, st.ended, st.error, len(st.events), st.pings))
    st = d.follow(rid, deadline=20, read_timeout=5, query_after=last - 1)
    t.ok(st.ended and st.ids() == [last], "?after=<last - 1> gives the last event, then ends",
         (st.ids(), st.error))

    for q in ("0", "1001", "-1", "99999999999999999999", "9223372036854775808", " 5", "+5", "",
              "5x"):
        r = d.try_req("GET", "/v1/runs?page_size=" + q.replace(" ", "%20").replace("+", "%2B"))
        problem(t, r, 400, "INVALID_PARAMETER_VALUE", "/query/page_size",
                "GET /v1/runs?page_size=%r: 400 at /query/page_size" % q)
    r = d.get("/v1/runs?page_size=1000")
    t.ok(r.status == 200 and len(r.json()["runs"]) == 1, "page_size=1000 is fine", r)
    m = "/v1/runs/%s/metrics" % rid
    for q in ("-2", "99999999999999999999", "1.5", " 3", str(EVENT_ID_MAX + 1)):
        r = d.try_req("GET", m + "?after_step=" + q.replace(" ", "%20"))
        problem(t, r, 400, "INVALID_PARAMETER_VALUE", "/query/after_step",
                "GET metrics?after_step=%r: 400 at /query/after_step" % q)
    r = d.get(m + "?after_step=-1")
    t.ok(r.status == 200 and r.json()["count"] > 0, "after_step=-1 is every step", r)


# ==== bytes of files in error details ============================================


def scenario_file_bytes(t, d):
    # Straight into the data root (not through PUT /v1/blobs): the file name
    # carries an ESC, the dtype invalid UTF-8, DEL and a C1 control.
    name = "bad\x1b[31m.npy"
    with open(os.path.join(d.dir, name), "wb") as f:
        f.write(bad_npy(b"<f\xff\xfe\x7f\xc2\x85"))
    with open(os.path.join(d.dir, "psi.npy"), "wb") as f:
        f.write(npy_bytes([[1.0, 2.0]] * 4))
    r = d.post("/v1/runs", {"kind": "lasso", "phi": name, "psi": "psi.npy", "lambda": 0.1})
    err = None
    if r.status == 201:
        try:
            rid = strict_json(r.body)["id"]
        except ValueError as e:
            t.ok(False, "the 201 answer is strict UTF-8 JSON", e)
            return
        d.wait_end(rid, deadline=60)
        g = d.get("/v1/runs/" + rid)
        try:
            run = strict_json(g.body)
        except ValueError as e:
            t.ok(False, "GET the failed run: strict UTF-8 JSON", e)
            return
        t.ok(run["state"] == "FAILED" and isinstance(run["error"], dict),
             "a run on a .npy with a garbled dtype FAILED", run["state"])
        err = run["error"] or {}
    else:
        problem(t, r, 400, ("UNSUPPORTED_DTYPE", "BAD_FILE_FORMAT"), "/phi",
                "a run on a .npy with a garbled dtype: 400 at /phi")
        err = strict_json(r.body)
    det = err.get("detail", "")
    t.ok(err.get("error_code") == "UNSUPPORTED_DTYPE" and "dtype" in det,
         "the error is UNSUPPORTED_DTYPE and its detail names the dtype", err)
    t.ok(all(w in det for w in ("\\xff", "\\xfe", "\\x7f", "\\xc2\\x85", "\\x1b[31m")),
         "the dtype's bytes and the file name's ESC are written \\xNN in the detail", det)
    t.ok(not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or c == "\ufffd" for c in det),
         "the detail holds no control character and no replacement character", repr(det))
    runs_list_ok(t, d, "GET /v1/runs with the failed run is strict UTF-8 JSON")


# ==== vvd run ====================================================================


def vvd_run_raw(vvd, path, cwd):
    """`vvd run path`: (exit status, the last stdout line as strict JSON or
    None, stderr)."""
    out = subprocess.run([vvd, "run", path, "--out", os.path.join(cwd, "out")], cwd=cwd,
                         capture_output=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    try:
        last = strict_json(lines[-1]) if lines else None
    except ValueError:
        last = None
    return out.returncode, last, out.stderr.decode("utf-8", "replace")


def scenario_vvd_run(t, vvd):
    tmp = tempfile.mkdtemp(prefix="vvd-hyg-")
    try:
        os.mkdir(os.path.join(tmp, "specdir.json"))
        big = os.path.join(tmp, "big.json")
        with open(big, "wb") as f:
            f.truncate((64 << 20) + 1)  # sparse: nothing is written
        cases = [("missing.json", ("missing.json", "no such")),
                 ("specdir.json", ("specdir.json", "directory")),
                 ("big.json", ("big.json", "larger than", "64 MiB"))]
        if os.geteuid() != 0:
            locked = os.path.join(tmp, "locked.json")
            with open(locked, "w") as f:
                json.dump(QUICK, f)
            os.chmod(locked, 0)
            cases.append(("locked.json", ("locked.json", "Permission denied")))
        for name, words in cases:
            rc, last, err = vvd_run_raw(vvd, os.path.join(tmp, name), tmp)
            e = (last or {}).get("error") or {}
            det = e.get("detail", "")
            t.ok(rc == 2 and last is not None and last.get("state") == "FAILED"
                 and all(w in det for w in words),
                 "vvd run %s: exit 2, a FAILED line whose detail says %s" % (name, words),
                 "rc %d last %r stderr %r" % (rc, last, err[-300:]))
            t.ok(all(w in err for w in words[:2]), "vvd run %s: stderr says it too" % name,
                 err[-300:])
        spec = os.path.join(tmp, "badname.json")
        with open(spec, "wb") as f:
            f.write(b'{"kind":"lasso","name":"r\xff",' + GEN + b',"lambda_ratio":0.1}')
        rc, last, err = vvd_run_raw(vvd, spec, tmp)
        e = (last or {}).get("error") or {}
        t.ok(rc == 2 and e.get("field") == "/name" and e.get("error_code") == "MALFORMED_JSON",
             "vvd run: a spec whose name is invalid UTF-8 fails at /name (exit 2)",
             "rc %d last %r" % (rc, last))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ==== main ====================================================================


def main(argv):
    if len(argv) < 2 or not os.access(argv[1], os.X_OK):
        print("usage: %s PATH/TO/vvd" % os.path.basename(argv[0]), file=sys.stderr)
        return 2
    vvd = os.path.abspath(argv[1])
    t = Tap()
    for name, fn in (("bodies", scenario_bodies), ("integers", scenario_integers),
                     ("file_bytes", scenario_file_bytes)):
        t.comment("scenario %s" % name)
        try:
            with Daemon(vvd) as d:
                fn(t, d)
        except Exception as e:  # noqa: BLE001 - report and go on with the next scenario
            t.ok(False, "scenario %s ran to its end (raised %s)" % (name, type(e).__name__),
                 traceback.format_exc())
    t.comment("scenario vvd_run")
    try:
        scenario_vvd_run(t, vvd)
    except Exception as e:  # noqa: BLE001
        t.ok(False, "scenario vvd_run ran to its end (raised %s)" % type(e).__name__,
             traceback.format_exc())
    return t.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
