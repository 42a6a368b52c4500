"""A client of the vvd daemon's HTTP API (standard library only).

    c = vvd.Client("http://127.0.0.1:8470", token=None)
    run = c.runs.submit({"kind": "lasso", "generate": {"n": 200, "k": 30, "d": 5},
                         "lambda_ratio": 0.1})
    for ev in c.runs.events(run["id"]):      # Server-Sent Events, resumed after a drop
        print(ev.id, ev.event, ev.data)
    run = c.runs.wait(run["id"])              # the final run object
    c.blobs.upload("feats.npy", "feats.npy")  # a file, bytes or a file object
    c.runs.download(run["id"], "V.npy", "out/")

Errors that vvd answers (application/problem+json) raise vvd.VvdError with
.status, .code (error_code), .field and .detail; an unreachable daemon
raises vvd.VvdConnectionError.  The URL and token default to the
environment's VVD_SERVER and VVD_TOKEN, as for vvctl.
"""

import collections
import http.client
import json
import os
import socket
import time
import urllib.parse

from .errors import VvdConnectionError, VvdError

__all__ = ["Client", "Event", "FINAL_STATES"]

DEFAULT_URL = "http://127.0.0.1:8470"
FINAL_STATES = ("FINISHED", "STOPPED", "FAILED", "CRASHED")

Event = collections.namedtuple("Event", "id event data")
Event.__doc__ = """One Server-Sent Event of a run: id (int, for Last-Event-ID),
event ("metric", "state" or "log") and data (the decoded JSON)."""

_NET_ERRORS = (OSError, http.client.HTTPException)  # socket.timeout is an OSError
_PING = object()


class Client:
    """The daemon at url ("http://host:port", optionally with a path prefix)."""

    def __init__(self, url=None, token=None, timeout=60.0):
        url = url or os.environ.get("VVD_SERVER") or DEFAULT_URL
        if "://" not in url:
            url = "http://" + url
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("url must be http://HOST[:PORT], not %r" % url)
        self.url = url.rstrip("/")
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port or (443 if self._https else 80)
        self._base = u.path.rstrip("/")
        self.token = token if token is not None else (os.environ.get("VVD_TOKEN") or None)
        self.timeout = timeout
        self.runs = Runs(self)
        self.sweeps = Sweeps(self)
        self.models = Models(self)
        self.blobs = Blobs(self)

    def __repr__(self):
        return "vvd.Client(%r)" % self.url

    # ---- HTTP ----

    def _conn(self, timeout=None):
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout or self.timeout)

    def _headers(self, extra=None):
        h = {"Accept": "application/json", "User-Agent": "vvd-python"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(extra or {})
        return h

    def _path(self, path, query=None):
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                path += "?" + urllib.parse.urlencode(q)
        return self._base + path

    def _open(self, method, path, body=None, headers=None, query=None, timeout=None):
        """Sends a request; returns (connection, response) for a 2xx answer,
        raises VvdError otherwise."""
        conn = self._conn(timeout)
        try:
            conn.request(method, self._path(path, query), body=body,
                         headers=self._headers(headers))
            resp = conn.getresponse()
        except _NET_ERRORS as e:
            conn.close()
            raise VvdConnectionError(self.url, _reason(e)) from None
        if resp.status >= 300:
            try:
                data = resp.read()
            except _NET_ERRORS:
                data = b""
            conn.close()
            raise _problem(resp.status, resp.getheader("Content-Type", ""), data)
        return conn, resp

    def request(self, method, path, body=None, query=None, headers=None, raw=False,
                timeout=None):
        """One request: body is JSON-encoded unless it is bytes (or a file);
        the answer is decoded JSON, or bytes with raw=True."""
        h = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)) and \
                not hasattr(body, "read"):
            body = json.dumps(body).encode("utf-8")
            h.setdefault("Content-Type", "application/json")
        conn, resp = self._open(method, path, body, h, query, timeout)
        try:
            data = resp.read()
        except _NET_ERRORS as e:
            raise VvdConnectionError(self.url, _reason(e)) from None
        finally:
            conn.close()
        if raw:
            return data
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError:
            raise VvdError(resp.status, "BAD_RESPONSE", "",
                           "%s %s: the answer is not JSON: %r" % (method, path, data[:200]))

    def health(self):
        """GET /health (device, BLAS, queue and model counts)."""
        return self.request("GET", "/health")

    def prometheus(self):
        """GET /metrics: the daemon's Prometheus text."""
        return self.request("GET", "/metrics", raw=True).decode("utf-8")

    # Shortcuts to the run namespace.
    def events(self, run_id, **kw):
        """Same as client.runs.events(run_id, ...)."""
        return self.runs.events(run_id, **kw)

    def metrics(self, run_id, **kw):
        """Same as client.runs.metrics(run_id, ...)."""
        return self.runs.metrics(run_id, **kw)

    def download(self, run_id, name, dest=None):
        """Same as client.runs.download(run_id, name, dest)."""
        return self.runs.download(run_id, name, dest)


def _reason(e):
    text = str(e) or type(e).__name__
    return "%s (%s)" % (text, type(e).__name__) if str(e) else text


def _problem(status, ctype, data):
    """The VvdError of a non-2xx answer."""
    body = None
    try:
        body = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        pass
    if isinstance(body, dict) and ("error_code" in body or "detail" in body):
        return VvdError(body.get("status", status), body.get("error_code") or "HTTP_%d" % status,
                        body.get("field", ""), body.get("detail") or body.get("title", ""), body)
    text = data[:500].decode("utf-8", "replace").strip()
    return VvdError(status, "HTTP_%d" % status, "", text or http.client.responses.get(status, ""))


def _q(s):
    return urllib.parse.quote(str(s), safe="")


class Runs:
    """/v1/runs: submit, get, list, stop, wait, events, metrics, artifacts."""

    def __init__(self, client):
        self._c = client

    def submit(self, spec):
        """POST /v1/runs: queues a job spec (a dict); returns the run object."""
        return self._c.request("POST", "/v1/runs", spec)

    def get(self, run_id):
        """GET /v1/runs/ID: the run (state, spec, result, error, summary, artifacts)."""
        return self._c.request("GET", "/v1/runs/" + _q(run_id))

    def list(self, state=None, kind=None, sweep=None, limit=None, page_size=None):
        """The runs, newest first (every page, or the first limit runs),
        filtered by state, kind and sweep id."""
        out, token = [], None
        while True:
            size = page_size or (min(1000, limit - len(out)) if limit else 1000)
            page = self._c.request("GET", "/v1/runs", query={
                "state": state, "kind": kind, "sweep": sweep, "page_size": size,
                "page_token": token})
            out.extend(page.get("runs", []))
            token = page.get("next_page_token")
            if not token or (limit and len(out) >= limit):
                return out[:limit] if limit else out

    def stop(self, run_id):
        """POST /v1/runs/ID/stop: asks a queued or running run to stop."""
        return self._c.request("POST", "/v1/runs/%s/stop" % _q(run_id))

    def metrics(self, run_id, keys=None, after_step=None):
        """GET /v1/runs/ID/metrics: the stored metric history, a list of
        {"step", "key", "value", "time"} (keys: a list of names to keep)."""
        if keys is not None and not isinstance(keys, str):
            keys = ",".join(keys)
        r = self._c.request("GET", "/v1/runs/%s/metrics" % _q(run_id),
                            query={"keys": keys, "after_step": after_step})
        return r.get("metrics", [])

    def artifacts(self, run_id):
        """The run's artifacts: a list of {"name", "bytes", "url"}."""
        return self.get(run_id).get("artifacts") or []

    def download(self, run_id, name, dest=None):
        """GET /v1/runs/ID/artifacts/NAME: the bytes, or written to dest (a
        folder, or a file path) and its path returned."""
        path = "/v1/runs/%s/artifacts/%s" % (_q(run_id), urllib.parse.quote(name, safe="/"))
        if dest is None:
            return self._c.request("GET", path, raw=True)
        dest = os.fspath(dest)
        if os.path.isdir(dest) or dest.endswith(("/", os.sep)):
            os.makedirs(dest, exist_ok=True)
            dest = os.path.join(dest, os.path.basename(name))
        conn, resp = self._c._open("GET", path)
        tmp = dest + ".part"
        try:
            with open(tmp, "wb") as f:
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    f.write(chunk)
            os.replace(tmp, dest)
        except _NET_ERRORS as e:
            _unlink(tmp)
            if isinstance(e, (http.client.HTTPException, ConnectionError, socket.timeout)):
                raise VvdConnectionError(self._c.url, _reason(e)) from None
            raise
        finally:
            conn.close()
        return dest

    def events(self, run_id, after=None, reconnect=True, retry_for=60.0, read_timeout=None,
               timeout=None):
        """The run's events as Event(id, event, data), from the first one (or
        after the id `after`) until the run has ended.  A connection that
        breaks is reopened with Last-Event-ID set to the last id seen, so that
        no event is lost or repeated; reconnecting gives up (VvdConnectionError)
        after retry_for seconds without a connection.  reconnect=False: end
        with the first connection instead.  timeout: TimeoutError after that
        many seconds (checked at every event and keep-alive ping)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = after
        delay = 0.1
        down_since = None
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            wait_s = read_timeout or max(self._c.timeout, 30.0)
            if deadline is not None:
                wait_s = max(0.05, min(wait_s, deadline - time.monotonic() + 0.05))
            try:
                conn, resp = self._c._open("GET", "/v1/runs/%s/events" % _q(run_id),
                                           headers=headers, timeout=wait_s)
            except VvdConnectionError:
                if not reconnect:
                    raise
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > retry_for:
                    raise
                _check(deadline, run_id)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            down_since, delay = None, 0.1
            clean = False
            try:
                for ev in _sse(resp):
                    _check(deadline, run_id)
                    if ev is _PING:
                        continue
                    if isinstance(ev, int):  # retry: from the server
                        delay = min(max(ev / 1000.0, 0.05), 5.0)
                        continue
                    if ev.id is not None:
                        last = ev.id
                    yield ev
                clean = True
            except _NET_ERRORS:  # a broken or silent connection (socket.timeout too)
                if not reconnect:
                    raise VvdConnectionError(self._c.url, "the event stream broke") from None
            finally:
                conn.close()
            _check(deadline, run_id)
            if not reconnect:
                return
            if clean:
                # The server ends a stream when the run has ended, and when
                # it shuts down: only the first ends the iteration.
                try:
                    state = self.get(run_id).get("state")
                except VvdConnectionError:
                    state = None
                if state in FINAL_STATES:
                    return

    def wait(self, run_id, timeout=None, on_event=None):
        """Follows the run's events until it ends; returns the final run
        object (whatever its state: check run["state"]).  on_event(Event) is
        called for each event; TimeoutError after timeout seconds."""
        run = self.get(run_id)
        if run.get("state") in FINAL_STATES:
            return run
        for ev in self.events(run_id, timeout=timeout):
            if on_event is not None:
                on_event(ev)
        return self.get(run_id)


def _check(deadline, run_id):
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError("run %s: no end before the timeout" % run_id)


def _unlink(p):
    try:
        os.unlink(p)
    except OSError:
        pass


def _sse(resp):
    """Parses a text/event-stream response: yields Events and, for a
    retry: field, its value in ms (an int)."""
    data, cur = [], {}
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data or cur:
                raw = "\n".join(data)
                try:
                    value = json.loads(raw) if raw else None
                except ValueError:
                    value = raw
                eid = cur.get("id")
                try:
                    eid = int(eid) if eid is not None else None
                except ValueError:
                    pass
                yield Event(eid, cur.get("event", "message"), value)
                data, cur = [], {}
            continue
        if line.startswith(":"):
            yield _PING  # a comment: the server's keep-alive
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "retry":
            try:
                yield int(value)
            except ValueError:
                pass
        elif name in ("id", "event"):
            cur[name] = value


class Sweeps:
    """/v1/sweeps: submit, get, stop, resume, wait."""

    def __init__(self, client):
        self._c = client

    def submit(self, base, grid=None, name=None):
        """POST /v1/sweeps with a base spec and a grid {field: [values]} (or
        the whole body as base); returns {"id", "points", ...}."""
        body = dict(base) if grid is None else {"base": base, "grid": grid}
        if name is not None:
            body["name"] = name
        return self._c.request("POST", "/v1/sweeps", body)

    def get(self, sweep_id):
        """GET /v1/sweeps/ID: state, counts and every run of the sweep."""
        return self._c.request("GET", "/v1/sweeps/" + _q(sweep_id))

    def stop(self, sweep_id):
        """POST /v1/sweeps/ID/stop."""
        return self._c.request("POST", "/v1/sweeps/%s/stop" % _q(sweep_id))

    def resume(self, sweep_id):
        """POST /v1/sweeps/ID/resume: re-queues the points that failed,
        crashed or were stopped."""
        return self._c.request("POST", "/v1/sweeps/%s/resume" % _q(sweep_id))

    def wait(self, sweep_id, on_event=None):
        """Follows every run of the sweep to its end; returns the sweep."""
        while True:
            sw = self.get(sweep_id)
            live = [r["id"] for r in sw.get("runs", []) if r.get("state") not in FINAL_STATES]
            if not live:
                return sw
            for rid in live:
                self._c.runs.wait(rid, on_event=on_event)


class Models:
    """/v1/models: resident models (loaded once, referred to by name)."""

    def __init__(self, client):
        self._c = client

    def load(self, name, **model):
        """POST /v1/models: load {arch, width_div, ...} or {spec, weights}
        (paths in the daemon's data root, e.g. uploaded blobs) as name."""
        body = {"name": name}
        body.update(model)
        return self._c.request("POST", "/v1/models", body)

    def list(self):
        """GET /v1/models: the resident models (and the default model, device)."""
        return self._c.request("GET", "/v1/models")

    def get(self, name):
        """GET /v1/models/NAME."""
        return self._c.request("GET", "/v1/models/" + _q(name))

    def delete(self, name):
        """DELETE /v1/models/NAME."""
        return self._c.request("DELETE", "/v1/models/" + _q(name))


class Blobs:
    """PUT /v1/blobs/NAME: files a spec can name (as NAME or blobs/NAME)."""

    def __init__(self, client):
        self._c = client

    def upload(self, name, data):
        """Uploads data (bytes, a file path, or a binary file object) as the
        blob NAME (folders allowed: "runs-in/feats.npy"); returns {"name",
        "bytes"}.  A spec then names it "blobs/NAME"."""
        path = "/v1/blobs/" + urllib.parse.quote(name, safe="/")
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._c.request("PUT", path, bytes(data),
                                   headers={"Content-Type": "application/octet-stream"})
        if isinstance(data, (str, os.PathLike)):
            with open(data, "rb") as f:
                return self._put_file(path, f)
        if hasattr(data, "read"):
            return self._put_file(path, data)
        raise TypeError("blob data must be bytes, a path or a binary file, not %s"
                        % type(data).__name__)

    def _put_file(self, path, f):
        try:
            size = os.fstat(f.fileno()).st_size - f.tell()
        except (AttributeError, OSError, ValueError):
            return self._c.request("PUT", path, f.read(),
                                   headers={"Content-Type": "application/octet-stream"})
        return self._c.request("PUT", path, f, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(size)})
