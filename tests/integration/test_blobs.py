#!/usr/bin/env python3
"""Blobs in their own namespace: PUT /v1/blobs/NAME writes DATA/blobs/NAME.

Usage: test_blobs.py VVD   (speaks TAP; exit 0 when all pass)

A real `vvd serve` on loopback.  Every blob name aiming at the daemon's state
(vvd.db and its WAL, a finished run's artifact, models/, '.', '..', absolute
names, percent-encoded dots, a symlinked folder inside DATA/blobs leading out)
is refused or confined to DATA/blobs, and the daemon still starts on the same
data directory with an intact database afterwards.  A name that is an existing
folder answers 409, an aborted upload leaves no temporary file, a blob runs
when a spec names it NAME or blobs/NAME, and a full disk (a 2 MiB tmpfs, when
it can be mounted) answers 507 INSUFFICIENT_STORAGE and leaves nothing behind.
Waiting is bounded polling, never a fixed sleep.  Standard library only.
"""

import hashlib
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, Tap, npy_bytes  # noqa: E402

OCTET = {"Content-Type": "application/octet-stream"}
QUICK = {"kind": "lasso", "generate": {"n": 2000, "k": 64, "d": 4, "seed": 1},
         "lambda_ratio": 0.1, "tol": 1e-8}


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree(root):
    """Every path under root (relative), folders with a trailing '/'."""
    out = set()
    for dp, dns, fns in os.walk(root):
        rel = os.path.relpath(dp, root)
        for n in dns:
            out.add(os.path.normpath(os.path.join(rel, n)) + "/")
        for n in fns:
            out.add(os.path.normpath(os.path.join(rel, n)))
    return out


def temp_files(root):
    """The upload temporary files ('.upload-*') anywhere under root."""
    return sorted(p for p in tree(root) if os.path.basename(p.rstrip("/")).startswith(".upload-"))


def poll(cond, deadline):
    """Calls cond() until it returns a true value or deadline seconds pass;
    returns its last value."""
    t_end = time.monotonic() + deadline
    while True:
        v = cond()
        if v or time.monotonic() > t_end:
            return v
        time.sleep(0.05)


def problem(r):
    """(status, error_code, field) of an answer; error_code None if not problem+json."""
    try:
        b = r.json() if r.ctype.startswith("application/problem+json") else {}
    except ValueError:
        b = {}
    return r.status, b.get("error_code"), b.get("field")


def put(d, name, body=b"12345678"):
    return d.try_req("PUT", "/v1/blobs/" + name, body, headers=OCTET)


def wait_state(d, rid, deadline=120):
    return poll(lambda: d.run(rid)["state"] in ("FINISHED", "FAILED", "STOPPED", "CRASHED")
                and d.run(rid), deadline) or d.run(rid)


# ==== Names aiming at the daemon's state, folders, aborted uploads, specs ========


def scenario_names(t, vvd):
    # The data root and the folder outside it in a parent of their own, so
    # that "nothing was created next to the data root" is not disturbed by
    # the temporary folders of tests running beside this one.
    top = tempfile.mkdtemp(prefix="vvd-blobs-")
    data, outside = os.path.join(top, "data"), os.path.join(top, "outside")
    os.mkdir(data)
    os.mkdir(outside)
    try:
        with Daemon(vvd, data_dir=data) as d:
            _names(t, d, data, outside)
        # The same data directory starts again, its database intact.
        with Daemon(vvd, data_dir=data) as d2:
            h = d2.get("/health")
            t.ok(h.status == 200 and h.json().get("status") == "ok",
                 "after every attempt, vvd serve starts again on the same data dir: /health 200",
                 h)
            run = d2.run("r-000001")
            t.eq(run["state"], "FINISHED", "the finished run is still FINISHED after the restart")
        con = sqlite3.connect(os.path.join(data, "vvd.db"))
        try:
            res = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
        t.eq(res, [("ok",)], "PRAGMA integrity_check of DATA/vvd.db is ok")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _names(t, d, data, outside):
    blobs = os.path.join(data, "blobs")
    # A real run first, so that runs/r-000001/V.npy exists.
    rid = d.submit(QUICK)["id"]
    run = wait_state(d, rid)
    art = os.path.join(data, "runs", rid, "V.npy")
    t.ok(rid == "r-000001" and run["state"] == "FINISHED" and os.path.isfile(art),
         "a real run finishes and leaves DATA/runs/r-000001/V.npy", (rid, run["state"]))
    art_sha = sha(art) if os.path.isfile(art) else None
    db = os.path.join(data, "vvd.db")
    db_ino = os.stat(db).st_ino
    wal = os.path.join(data, "vvd.db-wal")
    wal_ino = os.stat(wal).st_ino if os.path.exists(wal) else None
    os.makedirs(os.path.join(data, "models", "m"), exist_ok=True)
    with open(os.path.join(data, "models", "m", "weights.safetensors"), "wb") as f:
        f.write(b"admin's weights")
    models_sha = sha(os.path.join(data, "models", "m", "weights.safetensors"))
    parent = os.path.dirname(data)
    parent_before = set(os.listdir(parent))
    etc_x_before = os.path.exists("/etc/x")
    abs_target = os.path.join(outside, "abs.npy")

    # Confined: these names are accepted, and land under DATA/blobs only.
    junk = b"this is not a database" * 10
    for name, where in (("vvd.db", "vvd.db"), ("vvd.db-wal", "vvd.db-wal"),
                        ("vvd.db-shm", "vvd.db-shm"),
                        ("runs/r-000001/V.npy", "runs/r-000001/V.npy"),
                        ("models/m/weights.safetensors", "models/m/weights.safetensors"),
                        ("blobs/vvd.db", "vvd.db")):
        r = put(d, name, junk)
        dest = os.path.join(blobs, where)
        stored = os.path.isfile(dest) and open(dest, "rb").read() == junk
        t.ok(r.status == 201 and stored,
             "PUT /v1/blobs/%s: 201, confined to DATA/blobs/%s" % (name, where), r)
    t.ok(os.stat(db).st_ino == db_ino and open(db, "rb").read(16) == b"SQLite format 3\0",
         "DATA/vvd.db is the same file, still a SQLite database")
    t.ok((os.stat(wal).st_ino if os.path.exists(wal) else None) == wal_ino and
         (not os.path.exists(wal) or open(wal, "rb").read(len(junk)) != junk),
         "DATA/vvd.db-wal is untouched")
    t.ok(art_sha is not None and sha(art) == art_sha,
         "the finished run's DATA/runs/r-000001/V.npy has the same bytes")
    rv = d.get("/v1/runs/%s/artifacts/V.npy" % rid)
    t.ok(rv.status == 200 and hashlib.sha256(rv.body).hexdigest() == art_sha,
         "GET .../artifacts/V.npy still serves the run's own bytes", rv.status)
    t.eq(sha(os.path.join(data, "models", "m", "weights.safetensors")), models_sha,
         "DATA/models/m/weights.safetensors is untouched")

    # Refused: nothing is created for them, anywhere.
    os.symlink(outside, os.path.join(blobs, "evil"))
    os.makedirs(os.path.join(blobs, "d1"))
    os.symlink(outside, os.path.join(blobs, "d1", "link"))
    before = tree(data)
    for name, status, code in (
            (".", 400, "INVALID_PARAMETER_VALUE"),
            ("./vvd.db", 400, "INVALID_PARAMETER_VALUE"),
            ("..", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("../vvd.db", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("a/../vvd.db", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("a/../../x.npy", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("%2e%2e", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("%2E%2E/vvd.db", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("a/%2e%2e/%2e%2e/vvd.db", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("%2e", 400, "INVALID_PARAMETER_VALUE"),
            ("/etc/x", 400, "INVALID_PARAMETER_VALUE"),
            ("%2Fetc%2Fx", 400, "INVALID_PARAMETER_VALUE"),
            ("/" + abs_target.lstrip("/"), 400, "INVALID_PARAMETER_VALUE"),
            ("a//b.npy", 400, "INVALID_PARAMETER_VALUE"),
            ("a/", 400, "INVALID_PARAMETER_VALUE"),
            ("", 400, "INVALID_PARAMETER_VALUE"),
            ("blobs/", 400, "INVALID_PARAMETER_VALUE"),
            ("x/.upload-1-2", 400, "INVALID_PARAMETER_VALUE"),
            ("a%20b.npy", 400, "INVALID_PARAMETER_VALUE"),
            ("evil/x.npy", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("evil/sub/x.npy", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("blobs/evil/x.npy", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("d1/link/y.npy", 403, "PATH_OUTSIDE_DATA_ROOT"),
            ("d1/link/new/y.npy", 403, "PATH_OUTSIDE_DATA_ROOT")):
        r = put(d, name, junk)
        got = problem(r)
        t.ok(got == (status, code, "/name"),
             "PUT /v1/blobs/%s: %d %s at /name" % (name, status, code),
             "got %r: %r" % (got, r.body[:300]))
    after = tree(data)
    t.eq(sorted(after - before), [], "the refused names created nothing in the data root")
    t.eq(os.listdir(outside), [], "nothing was created outside the root through a symlink")
    t.ok(set(os.listdir(parent)) - parent_before <= {os.path.basename(outside)} and
         os.path.exists("/etc/x") == etc_x_before,
         "nothing was created next to the data root, nor /etc/x",
         sorted(set(os.listdir(parent)) - parent_before))

    # A symlink as the blob itself is replaced, never written through.
    target = os.path.join(outside, "target.npy")
    with open(target, "wb") as f:
        f.write(b"outside")
    os.symlink(target, os.path.join(blobs, "leaf.npy"))
    r = put(d, "leaf.npy", junk)
    t.ok(r.status == 201 and open(target, "rb").read() == b"outside" and
         not os.path.islink(os.path.join(blobs, "leaf.npy")),
         "PUT over a symlink in DATA/blobs replaces the link; its target is untouched", r)
    os.unlink(target)

    # A name that is an existing folder: 409, no temporary file left.
    for name in ("runs", "runs/r-000001", "blobs/runs", "d1"):
        r = put(d, name, junk)
        t.ok(problem(r) == (409, "RESOURCE_CONFLICT", "/name") and
             os.path.isdir(os.path.join(blobs, name[6:] if name.startswith("blobs/") else name)),
             "PUT /v1/blobs/%s (an existing folder): 409 RESOURCE_CONFLICT, the folder stays" %
             name, r)
    r = put(d, "vvd.db/x.npy", junk)
    t.eq(problem(r), (409, "RESOURCE_CONFLICT", "/name"),
         "PUT /v1/blobs/vvd.db/x.npy (through a blob that is a file): 409")
    t.eq(temp_files(data), [], "no temporary file is left anywhere in the data root")

    # An aborted upload: the client promises more than it sends and goes away.
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    try:
        s.sendall(b"PUT /v1/blobs/aborted.npy HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n" +
                  b"x" * 50000)
        during = poll(lambda: temp_files(data), 20)
        t.ok(len(during) == 1 and during[0].startswith("blobs/.upload-"),
             "while an upload is received its temporary file is in DATA/blobs", during)
    finally:
        s.close()
    left = poll(lambda: not temp_files(data), 30)
    t.ok(left and not os.path.exists(os.path.join(blobs, "aborted.npy")),
         "the aborted upload leaves no temporary file and no blob (polled up to 30 s)",
         temp_files(data))

    # A blob named NAME and blobs/NAME in a spec.
    rnd = random.Random(3)
    phi = [[max(0.0, rnd.gauss(0, 1)) for _ in range(6)] for _ in range(40)]
    psi = [[sum(p[j] * (j % 3 - 1) for j in range(6)) + rnd.gauss(0, 0.1), p[0] - p[5]]
           for p in phi]
    for name, rows in (("feats.npy", phi), ("sub/outs.npy", psi)):
        r = put(d, name, npy_bytes(rows))
        t.ok(r.status == 201 and r.json() == {"name": name, "bytes": len(npy_bytes(rows))} and
             os.path.isfile(os.path.join(blobs, name)) and
             not os.path.exists(os.path.join(data, name)),
             "PUT /v1/blobs/%s: 201, stored at DATA/blobs/%s only" % (name, name), r)
    for phi_name, psi_name in (("feats.npy", "sub/outs.npy"), ("blobs/feats.npy",
                                                               "blobs/sub/outs.npy")):
        r = d.post("/v1/runs", {"kind": "lasso", "phi": phi_name, "psi": psi_name,
                                "lambda": 0.1})
        state = wait_state(d, r.json()["id"])["state"] if r.status == 201 else r
        t.eq(state, "FINISHED", "a spec naming the blobs %s and %s runs to FINISHED" %
             (phi_name, psi_name))
    # A run's output is found by its path in the data root.
    r = d.post("/v1/runs", {"kind": "lasso", "phi": "feats.npy", "psi": "sub/outs.npy",
                            "lambda": 0.1, "init": "runs/%s/V.npy" % rid})
    t.ok(r.status in (201, 400) and (r.status == 201 or problem(r)[1] != "FILE_NOT_FOUND"),
         "a spec naming runs/r-000001/V.npy finds the run's output (no FILE_NOT_FOUND)", r)
    t.eq(temp_files(data), [], "no temporary file is left after the uploads")
    h = d.get("/health")
    t.eq(h.status, 200, "the daemon still answers /health")
    d.stop()


# ==== A full disk ===================================================================


def scenario_full_disk(t, vvd):
    mnt = tempfile.mkdtemp(prefix="vvd-blobs-tmpfs-")
    mounted = False
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                           capture_output=True, text=True)
        mounted = p.returncode == 0
        if not mounted:
            t.n += 1
            print("ok %d # SKIP no tmpfs (%s)" % (t.n, (p.stderr or "").strip()[:200]),
                  flush=True)
            return
        data = os.path.join(mnt, "data")
        os.mkdir(data)
        with Daemon(vvd, data_dir=data) as d:
            big = os.urandom(3 * 1024 * 1024)
            r = put(d, "big.npy", big)
            t.eq(problem(r)[:2], (507, "INSUFFICIENT_STORAGE"),
                 "PUT a 3 MiB blob onto a 2 MiB tmpfs: 507 INSUFFICIENT_STORAGE")
            try:
                det = r.json().get("detail", "")
            except ValueError:
                det = ""
            t.ok("big.npy" in det, "its detail names the blob", det)
            t.ok(temp_files(data) == [] and not os.path.exists(os.path.join(data, "blobs",
                                                                             "big.npy")),
                 "no temporary file and no blob are left", temp_files(data))
            h = d.get("/health")
            t.ok(h.status == 200 and h.json().get("status") == "ok",
                 "the daemon still answers /health 200", h)
            small = b"small blob" * 100
            r = put(d, "small.npy", small)
            dest = os.path.join(data, "blobs", "small.npy")
            t.ok(r.status == 201 and os.path.isfile(dest) and open(dest, "rb").read() == small,
                 "then a 1 kB upload succeeds", r)
            d.stop()
    finally:
        if mounted:
            subprocess.run(["umount", mnt], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        print("usage: test_blobs.py VVD", file=sys.stderr)
        return 2
    vvd = os.path.abspath(sys.argv[1])
    t = Tap()
    for fn in (scenario_names, scenario_full_disk):
        try:
            fn(t, vvd)
        except Exception:
            t.ok(False, "%s raised" % fn.__name__, traceback.format_exc())
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
