"""Helpers for the vvd daemon integration tests (standard library only).

A Daemon runs `vvd serve` on a loopback port chosen by the kernel, in its own
temporary data directory, and is always killed by close() (used as a context
manager).  request() sends one request; Client keeps one connection open, as a
real client does; follow() reads a run's Server-Sent Events stream.
"""

import ast
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

# ---- TAP ----------------------------------------------------------------------


class Tap:
    """Numbered TAP test points; the plan is printed at the end."""

    def __init__(self):
        self.n = 0
        self.failed = []

    def ok(self, cond, desc, diag=None):
        self.n += 1
        desc = desc.replace("\n", " ").replace("#", "No.")
        if cond:
            print("ok %d - %s" % (self.n, desc), flush=True)
        else:
            print("not ok %d - %s" % (self.n, desc), flush=True)
            self.failed.append((self.n, desc))
            if diag is not None:
                self.diag(diag)
        return bool(cond)

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, "got %r, want %r" % (got, want))

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            print("#   " + line, flush=True)

    def comment(self, text):
        for line in str(text).splitlines() or [""]:
            print("# " + line, flush=True)

    def done(self):
        print("1..%d" % self.n, flush=True)
        return 0 if not self.failed and self.n > 0 else 1


# ---- .npy ---------------------------------------------------------------------


def npy_bytes(rows, dtype="<f4"):
    """A C-order 2-D .npy (float32 '<f4' or float64 '<f8') from a list of rows."""
    r, c = len(rows), len(rows[0])
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }" % (dtype, r, c)
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    assert (10 + len(hdr)) % 64 == 0
    fmt = "<%d%s" % (c, "f" if dtype == "<f4" else "d")
    body = b"".join(struct.pack(fmt, *row) for row in rows)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + body


def npy_header(data):
    """The header dict of .npy bytes, plus 'data_offset'; raises ValueError."""
    if data[:6] != b"\x93NUMPY":
        raise ValueError("not a .npy file (magic %r)" % data[:8])
    major = data[6]
    if major == 1:
        n = struct.unpack("<H", data[8:10])[0]
        off = 10
    else:
        n = struct.unpack("<I", data[8:12])[0]
        off = 12
    h = ast.literal_eval(data[off:off + n].decode("latin1"))
    h["data_offset"] = off + n
    return h


# ---- HTTP ---------------------------------------------------------------------


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    @property
    def ctype(self):
        return self.headers.get("content-type", "")

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%d %s %s>" % (self.status, self.ctype, self.body[:300])


def _body_bytes(body):
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def request(port, method, path, body=None, headers=None, timeout=20.0):
    """One request on a fresh connection; returns a Resp (raises on I/O errors)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = dict(headers or {})
        data = _body_bytes(body)
        if data is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        b = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, b)
    finally:
        conn.close()


class Client:
    """A keep-alive HTTP client (one connection, reopened after errors)."""

    def __init__(self, port, timeout=20.0, headers=None):
        self.port = port
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        h = dict(self.headers)
        h.update(headers or {})
        data = _body_bytes(body)
        if data is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                b = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, b)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest):
                # The server may close an idle keep-alive connection: one retry
                # on a fresh connection, as every HTTP client does.
                self.close()
                if attempt:
                    raise

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


# ---- Server-Sent Events ---------------------------------------------------------


class Stream:
    """The result of follow(): events, and how the stream went."""

    def __init__(self):
        self.status = None
        self.ctype = ""
        self.events = []     # [{"id": int, "event": str, "data": obj}]
        self.retry = None    # the retry: value, if any
        self.first_line = None
        self.pings = 0
        self.ended = False   # True when the server closed the stream
        self.stopped = False  # True when until() asked to stop
        self.error = None    # an exception text (timeout, reset)
        self.body = b""      # the body of a non-200 answer

    def ids(self):
        return [e["id"] for e in self.events]

    def of(self, kind):
        return [e for e in self.events if e["event"] == kind]


def follow(port, run_id, after=None, query_after=None, until=None, deadline=60.0,
           read_timeout=10.0, headers=None, on_ping=None):
    """Reads GET /v1/runs/{run_id}/events until the server ends it, until(ev,
    stream) returns True, on_ping(stream) returns True after a ': ping' comment,
    or the deadline passes (then .error is set).
    after: sent as Last-Event-ID; query_after: sent as ?after=."""
    s = Stream()
    path = "/v1/runs/%s/events" % run_id
    if query_after is not None:
        path += "?after=%s" % query_after
    h = {"Accept": "text/event-stream"}
    if after is not None:
        h["Last-Event-ID"] = str(after)
    h.update(headers or {})
    t_end = time.monotonic() + deadline
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=read_timeout)
    try:
        conn.request("GET", path, headers=h)
        r = conn.getresponse()
        s.status = r.status
        s.ctype = r.getheader("Content-Type", "")
        if r.status != 200:
            s.body = r.read()
            s.ended = True
            return s
        cur = {}
        data_lines = []
        while True:
            if time.monotonic() > t_end:
                s.error = "deadline of %.0f s passed" % deadline
                return s
            line = r.readline()
            if not line:
                s.ended = True
                return s
            line = line.decode("utf-8").rstrip("\r\n")
            if s.first_line is None:
                s.first_line = line
            if line == "":
                if data_lines or cur:
                    ev = {"id": int(cur["id"]) if "id" in cur else None,
                          "event": cur.get("event", "message"),
                          "raw": "\n".join(data_lines)}
                    try:
                        ev["data"] = json.loads(ev["raw"])
                    except ValueError:
                        ev["data"] = None
                    s.events.append(ev)
                    cur, data_lines = {}, []
                    if until is not None and until(ev, s):
                        s.stopped = True
                        return s
                continue
            if line.startswith(":"):
                s.pings += 1
                if on_ping is not None and on_ping(s):
                    s.stopped = True
                    return s
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data_lines.append(value)
            elif name == "retry":
                s.retry = value
            else:
                cur[name] = value
    except (socket.timeout, OSError, http.client.HTTPException) as e:
        s.error = repr(e)
        return s
    finally:
        conn.close()


# ---- The daemon ---------------------------------------------------------------


class Daemon:
    """`vvd serve` on 127.0.0.1:0 with a data directory (a fresh temporary one
    unless given).  Use as a context manager: the process is killed and the
    temporary directory removed on exit, failures included."""

    def __init__(self, vvd, data_dir=None, args=(), token=None, keep_dir=False, env=None):
        self.vvd = vvd
        self.env = env
        self.own_dir = data_dir is None
        self.keep_dir = keep_dir
        self.dir = data_dir or tempfile.mkdtemp(prefix="vvd-it-")
        self.args = list(args)
        self.token = token
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.log = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        # A daemon that died on its own (a crash, a sanitizer report) shows its log.
        if self.proc is not None and self.proc.poll() is not None and self.proc.returncode != 0:
            for line in self.log_tail().splitlines():
                print("# daemon: " + line)
        self.close()
        return False

    def start(self, timeout=30.0):
        port_file = os.path.join(self.dir, "port")
        try:
            os.unlink(port_file)
        except FileNotFoundError:
            pass
        cmd = [self.vvd, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.dir,
               "--port-file", port_file, "--sse-ping", "0.5"] + self.args
        if self.token:
            cmd += ["--token", self.token]
        self.log = open(self.log_path, "ab")
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, env=env)
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError("vvd serve exited with %s before serving:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return self
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        raise RuntimeError("vvd serve wrote no port file in %.0f s:\n%s" % (timeout, self.log_tail()))

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def auth(self, headers=None):
        h = dict(headers or {})
        if self.token and "Authorization" not in h:
            h["Authorization"] = "Bearer " + self.token
        return h

    def req(self, method, path, body=None, headers=None, timeout=20.0):
        return request(self.port, method, path, body, self.auth(headers), timeout)

    def try_req(self, method, path, body=None, headers=None, timeout=20.0):
        """req(), but an I/O error (a reset, an empty reply) comes back as a
        Resp with status 0 and the error as its body, so that a test can
        report it and go on."""
        try:
            return self.req(method, path, body, headers, timeout)
        except (OSError, http.client.HTTPException) as e:
            return Resp(0, {}, ("no HTTP answer: %r" % e).encode())

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body, **kw)

    def submit(self, spec):
        r = self.post("/v1/runs", spec)
        if r.status != 201:
            raise RuntimeError("POST /v1/runs: %r" % r)
        return r.json()

    def run(self, run_id):
        r = self.get("/v1/runs/" + run_id)
        if r.status != 200:
            raise RuntimeError("GET /v1/runs/%s: %r" % (run_id, r))
        return r.json()

    def follow(self, run_id, **kw):
        kw["headers"] = self.auth(kw.get("headers"))
        return follow(self.port, run_id, **kw)

    def wait_end(self, run_id, deadline=60.0):
        """Follows a run's events to the end; returns the Stream."""
        s = self.follow(run_id, deadline=deadline)
        if not s.ended:
            raise RuntimeError("events of %s did not end: %s" % (run_id, s.error))
        return s

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Sends sig and waits; returns the exit status (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None
        finally:
            self._close_log()

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def _close_log(self):
        if self.log:
            self.log.close()
            self.log = None

    def close(self):
        self.kill9()
        if self.own_dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- `vvd run` -------------------------------------------------------------------


def vvd_run(vvd, tmp, spec, name, env=None, timeout=900):
    """Writes spec to tmp/name.json and runs it with `vvd run` into tmp/name:
    (exit status, the last event line as JSON, every event as JSON)."""
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(spec, f)
    e = dict(os.environ)
    e.update(env or {})
    out = subprocess.run([vvd, "run", path, "--out", os.path.join(tmp, name)],
                         capture_output=True, text=True, timeout=timeout, env=e)
    events = [json.loads(x) for x in out.stdout.strip().splitlines()]
    return out.returncode, events[-1] if events else {}, events


def expect_failure(t, vvd, tmp, spec, name, field, words):
    """A TAP point: spec fails under `vvd run` with an error at field whose
    detail holds every one of words."""
    rc, r, _ = vvd_run(vvd, tmp, spec, name)
    err = r.get("error", {})
    return t.ok(rc != 0 and err.get("field") == field and
                all(w in err.get("detail", "") for w in words),
                "%s: field %s, detail names %s" % (name, field, words), json.dumps(err))


def write_cifar10(cdir, per_batch, n_test, seed):
    """CIFAR-10 binary batches of random pixels and labels in cdir (made):
    data_batch_1..5.bin with per_batch images each, test_batch.bin with
    n_test; each record is a label byte and 3072 pixel bytes."""
    import random
    rnd = random.Random(seed)
    os.makedirs(cdir)
    for name, n in [("data_batch_%d.bin" % i, per_batch) for i in range(1, 6)] + [
            ("test_batch.bin", n_test)]:
        with open(os.path.join(cdir, name), "wb") as f:
            for _ in range(n):
                f.write(bytes([rnd.randrange(10)]) + bytes(rnd.randrange(256) for _ in range(3072)))


# ---- Scenario runner -------------------------------------------------------


def run_scenarios(argv, scenarios):
    """Runs the scenarios, a list of (name, fn(t, vvd)), that argv names after
    the path of vvd (all when it names none), speaking TAP; a scenario that
    raises is one failed point, and the next one runs.  Returns the exit
    status (2 for bad usage)."""
    if len(argv) < 2 or not os.access(argv[1], os.X_OK):
        print("usage: %s PATH/TO/vvd [scenario...]" % os.path.basename(argv[0]), file=sys.stderr)
        return 2
    vvd = os.path.abspath(argv[1])
    only = set(argv[2:])
    t = Tap()
    t0 = time.monotonic()
    for name, fn in scenarios:
        if only and name not in only:
            continue
        s0 = time.monotonic()
        t.comment("scenario %s" % name)
        try:
            fn(t, vvd)
        except Exception as e:  # noqa: BLE001 - report and go on with the next scenario
            t.ok(False, "scenario %s ran to its end (raised %s)" % (name, type(e).__name__),
                 traceback.format_exc())
        t.comment("scenario %s: %.1f s" % (name, time.monotonic() - s0))
    t.comment("total %.1f s" % (time.monotonic() - t0))
    return t.done()
