"""vvd.compress: export a torch module, compress it in the daemon, load the result."""

import hashlib
import io
import json
import os
import sys
import time

import numpy as np

from . import safetensors as st
from .client import Client
from .errors import VvdError

BLOB_DIR = "py"  # uploads go to DATA/blobs/py/<content hash>/...


def _npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:16]


class _Uploader:
    def __init__(self, client):
        self.client = client

    def put(self, data, name):
        """Uploads bytes under a content-addressed name; returns the spec path."""
        blob = "%s/%s/%s" % (BLOB_DIR, _digest(data), name)
        self.client.blobs.upload(blob, data)
        return "blobs/" + blob

    def put_file(self, path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        blob = "%s/%s/%s" % (BLOB_DIR, h.hexdigest()[:16], os.path.basename(path))
        self.client.blobs.upload(blob, path)
        return "blobs/" + blob


def _data_spec(data, up, input_shape):
    """The spec's data: local files and numpy arrays uploaded as blobs."""
    if isinstance(data, str) or data is None:
        return data
    if not isinstance(data, dict):
        raise TypeError("data must be \"fashion-mnist\" or a dict as in compress specs "
                        "(format, train, test, ...), not %s" % type(data).__name__)
    out = dict(data)
    for split in ("train", "test"):
        part = out.get(split)
        if not isinstance(part, dict):
            continue
        part = dict(part)
        for key in ("images", "labels"):
            v = part.get(key)
            if isinstance(v, np.ndarray) or (hasattr(v, "numpy") and hasattr(v, "detach")):
                a = v.detach().cpu().numpy() if hasattr(v, "detach") else v
                if key == "images" and a.ndim == 2 and input_shape is not None:
                    # N x features: the model's N x C x H x W.
                    a = a.reshape((a.shape[0],) + tuple(input_shape))
                if key == "labels":
                    a = a.astype(np.int64)
                elif a.dtype not in (np.uint8, np.float32, np.float64):
                    a = a.astype(np.float32)
                part[key] = up.put(_npy_bytes(a), "%s_%s.npy" % (split, key))
            elif isinstance(v, (str, os.PathLike)) and os.path.isfile(v):
                part[key] = up.put_file(os.fspath(v))
        out[split] = part
    d = out.get("dir")
    if isinstance(d, (str, os.PathLike)) and os.path.isdir(d):
        names = sorted(n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)))
        h = hashlib.sha256()
        for n in names:
            h.update(n.encode() + b"\0" + str(os.path.getsize(os.path.join(d, n))).encode())
        prefix = "%s/%s/%s" % (BLOB_DIR, h.hexdigest()[:16], os.path.basename(os.path.abspath(d)))
        for n in names:
            up.client.blobs.upload(prefix + "/" + n, os.path.join(d, n))
        out["dir"] = "blobs/" + prefix
    return out


class _Progress:
    """One line on stderr, rewritten in place on a terminal; elsewhere only
    the final line is printed."""

    def __init__(self, run_id, stream=None, enabled=True):
        self.run_id = run_id
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.monotonic()
        self.state = "QUEUED"
        self.layer = None
        self.phase = None
        self.last = {}
        self.shown = 0.0

    def __call__(self, ev):
        d = ev.data if isinstance(ev.data, dict) else {}
        if ev.event == "state":
            self.state = d.get("state", self.state)
        elif ev.event == "log":
            self.layer = d.get("layer", self.layer)
            self.phase = d.get("phase", self.phase)
        elif ev.event == "metric":
            self.last.update(d)
            if "layer" in d:
                self.layer = d["layer"]
        if self.tty and (time.monotonic() - self.shown > 0.1 or ev.event == "state"):
            self.shown = time.monotonic()
            self._write(self._line(), final=False)

    def _line(self):
        parts = ["vvd %s %s" % (self.run_id, self.state)]
        if self.layer:
            parts.append("layer " + str(self.layer))
        m = self.last
        if "active" in m:
            parts.append("active %g" % m["active"])
        if "rel_gap" in m:
            parts.append("rel_gap %.2e" % m["rel_gap"])
        if "test_acc" in m:
            parts.append("test_acc %.4f" % m["test_acc"])
        parts.append("%.1f s" % (time.monotonic() - self.t0))
        return "  ".join(parts)

    def _write(self, text, final):
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self, run):
        if not self.enabled:
            return
        self.state = run.get("state", self.state)
        res = run.get("result") or {}
        layers = res.get("layers") or []
        text = "vvd %s %s in %.1f s" % (self.run_id, self.state, time.monotonic() - self.t0)
        if layers:
            text += ": " + ", ".join("%s %s->%s" % (l.get("layer"), l.get("neurons", "?"),
                                                    l.get("kept")) for l in layers)
        b, a = res.get("before") or {}, res.get("after") or {}
        if "params" in b and "params" in a:
            text += "; params %d -> %d" % (b["params"], a["params"])
        if "test_acc" in b and "test_acc" in a:
            text += "; test acc %.4f -> %.4f" % (b["test_acc"], a["test_acc"])
        if run.get("error"):
            text += ": " + str((run["error"] or {}).get("detail", ""))
        self._write(text, final=True)


# The named sets of layers a compress spec takes instead of names.
LAYER_SETS = ("all_linear", "all_conv", "all")


def compress(module, data, layers="all_linear", input_shape=None, client=None,
             preprocess=None, name=None, progress=True, timeout=None, **lasso):
    """Compresses module's linear and conv layers in the daemon and returns
    (smaller_module, result).

    module: an nn.Module vvd.export accepts; input_shape: (C, H, W) or
    (features,) (taken from a module made by vvd.load when omitted).
    data: what a compress spec takes: "fashion-mnist", or a dict
    {"format": "npy" | "idx" | "cifar10", "train": {"images", "labels"},
    "test": {...}, "max_train", ...}; local files (and numpy arrays, saved
    as .npy) in it are uploaded as blobs, other strings are passed as paths
    in the daemon's data root.
    layers: "all_linear", "all_conv", "all" or a list of layer names
    ("classifier.4": its input neurons, or channels after flatten;
    "features.3", a conv: its input channels).
    lasso: the other fields of the compress spec, passed as they are
    (lambda_ratio, lambda, target_active, refit, solver, tol, sequential,
    positions_per_image, ...).
    client: a vvd.Client (default: Client(), VVD_SERVER or 127.0.0.1:8470).
    progress: a one-line display on stderr while the run goes.

    result is the run's result (per-layer neurons kept and certificates,
    before/after accuracy, parameters, ...) with "run_id" added.  A run that
    does not finish raises VvdError (code FAILED/STOPPED/CRASHED, .run)."""
    from . import _torch

    client = client or Client()
    if input_shape is None:
        spec_in = (getattr(module, "vvd_spec", None) or {}).get("input")
        if not spec_in:
            raise ValueError("compress needs input_shape: (C, H, W) or (features,)")
        input_shape = tuple(spec_in)
    spec, tensors = _torch.export_spec(module, input_shape, preprocess)
    shape = tuple(spec["input"])
    up = _Uploader(client)
    spec_bytes = json.dumps(spec, indent=1).encode("utf-8")
    weights_bytes = st.dumps(tensors, metadata={"format": "pt"})
    key = _digest(spec_bytes, weights_bytes)
    base = "%s/%s/" % (BLOB_DIR, key)
    client.blobs.upload(base + "model.json", spec_bytes)
    client.blobs.upload(base + "model.safetensors", weights_bytes)
    job = {"kind": "compress",
           "model": {"spec": "blobs/" + base + "model.json",
                     "weights": "blobs/" + base + "model.safetensors"},
           "data": _data_spec(data, up, shape),
           "layers": layers if layers in LAYER_SETS else
           [layers] if isinstance(layers, str) else list(layers)}
    if name is not None:
        job["name"] = name
    job.update(lasso)
    run = client.runs.submit(job)
    rid = run["id"]
    show = _Progress(rid, enabled=bool(progress))
    try:
        run = client.runs.wait(rid, timeout=timeout, on_event=show if progress else None)
    except KeyboardInterrupt:
        # Ctrl-C stops the run in the daemon, too.
        try:
            client.runs.stop(rid)
        except VvdError:
            pass
        raise
    show.done(run)
    if run.get("state") != "FINISHED":
        err = run.get("error") or {}
        raise VvdError(None, run.get("state"), err.get("field", ""),
                       "run %s %s: %s" % (rid, run.get("state"),
                                          err.get("detail") or run.get("stop_reason") or ""),
                       problem=err, run=run)
    model = _torch.load(rid, client=client)
    result = dict(run.get("result") or {})
    result.setdefault("run_id", rid)
    return model, result
