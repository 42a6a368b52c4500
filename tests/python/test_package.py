#!/usr/bin/python3
"""The Python package (python/vvd) end to end, with TAP output:

- vvd.safetensors: round trips of every dtype, the reference layout
  (8-byte header padding, aligned data), the files vvd writes, and
  malformed files refused with ValueErrors that say what is wrong;
- vvd.export of an MLP, a narrow VGG-19 and an AlexNet (nested
  nn.Sequential), and of modules torch.fx traces (a torchvision-style class,
  view(x.size(0), -1), functional calls, a forward set on the instance):
  the spec, the tensor names, and `vvd forward` on the exported files equal
  to PyTorch's logits; unsupported modules named with their path;
- vvd.load: strict state_dict names, logits equal to `vvd forward`;
- through a real `vvd serve`: export -> compress -> load for an MLP and a
  narrow VGG-19 on .npy data sets the test writes, the compressed model's
  logits equal to `vvd forward` on the run's artifacts; Client errors
  (status, code, field, detail), an event stream cut in the middle of an
  event and resumed with Last-Event-ID, runs, sweeps, models, blobs;
- `pip install ./python` into a fresh venv with no package index.

Needs Debian's python3-torch under /usr/bin/python3 (exit 77, a skip,
without it).  Usage: test_package.py VVD
"""

import collections
import contextlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True  # nothing written into python/ or tests/
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))

from daemon_util import Daemon, Tap  # noqa: E402

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("1..0 # SKIP %s has no torch (Debian: apt-get install python3-torch)" % sys.executable)
    sys.exit(77)

import numpy as np  # noqa: E402

import vvd  # noqa: E402
from vvd import safetensors as st  # noqa: E402

VVD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "vvd")
t = Tap()
torch.set_num_threads(1)
TOL = 1e-5


# ---- helpers -----------------------------------------------------------------------


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float(np.abs(got - want).max() / max(1.0, np.abs(want).max()))


def vvd_forward(spec_path, weights_path, x, tmp):
    """`vvd forward` on x (N x ...): the logits, or the error text."""
    xp, yp = os.path.join(tmp, "fwd_x.npy"), os.path.join(tmp, "fwd_y.npy")
    np.save(xp, np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32))
    p = subprocess.run([VVD, "forward", spec_path, weights_path, xp, yp], capture_output=True,
                       text=True, timeout=120)
    if p.returncode != 0:
        return p.stderr.strip() or "exit %d" % p.returncode
    return np.load(yp)


def torch_out(m, x):
    with torch.no_grad():
        return m(torch.from_numpy(x)).numpy()


def randomize(m, seed):
    """Random weights and batch-norm statistics (so that every layer matters)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if "weight" in name else 0.1))
            if p.dim() > 1:
                p.mul_(1.5 / np.sqrt(p[0].numel()))
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.2)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                mod.num_batches_tracked.fill_(3)
    return m.eval()


def calibrate(m, x, seed):
    """Random weights, then batch-norm statistics of x (as training would
    leave them), so that a deep net's features still differ between images."""
    randomize(m, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(1 + 0.1 * torch.randn(mod.num_features, generator=g))
                mod.reset_running_stats()
                mod.momentum = None
        m.train()
        m(torch.from_numpy(x))
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                # No channel amplified much: float32 rounding stays small.
                mod.running_var.add_(0.2 * mod.running_var.mean())
    return m.eval()


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 24), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 5))


def vgg19_like(div=16, classes=10):
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
           512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v // div, 3, padding=1, bias=False),
                       nn.BatchNorm2d(v // div), nn.ReLU(inplace=True)]
            c = v // div
    h = 512 // div
    return nn.Sequential(collections.OrderedDict([
        ("features", nn.Sequential(*layers)),
        ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(nn.Dropout(), nn.Linear(h, h), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(h, h), nn.ReLU(True), nn.Linear(h, classes)))]))


def alexnet_like(div=32, classes=10):
    c = [64 // div, 192 // div, 384 // div, 256 // div, 256 // div]
    h = 4096 // div
    return nn.Sequential(collections.OrderedDict([
        ("features", nn.Sequential(
            nn.Conv2d(3, c[0], 11, 4, 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2))),
        ("avgpool", nn.AdaptiveAvgPool2d((6, 6))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(nn.Dropout(), nn.Linear(c[4] * 36, h), nn.ReLU(True),
                                     nn.Dropout(), nn.Linear(h, h), nn.ReLU(True),
                                     nn.Linear(h, classes)))]))


class TorchvisionStyle(nn.Module):
    """torchvision's VGG shape: features, avgpool, torch.flatten, classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6),
                                      nn.ReLU(inplace=True), nn.AvgPool2d(2),
                                      nn.Conv2d(6, 8, 3, stride=2), nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(32, 20), nn.ReLU(True), nn.Dropout(0.3),
                                        nn.Linear(20, 4))

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class Functional(nn.Module):
    """A forward of functional calls and x.view(x.size(0), -1)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 3, padding=1)
        self.bn = nn.BatchNorm2d(5)
        self.head = nn.Linear(5 * 3 * 3, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        x = x.view(x.size(0), -1)
        return self.head(F.dropout(x, 0.5, self.training))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return x + self.fc(x)


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


def expect_raises(exc, fn, *words, desc):
    try:
        fn()
    except exc as e:
        msg = str(e)
        return t.ok(all(w in msg for w in words), desc, "message: %s" % msg), e
    except Exception as e:  # the wrong kind
        t.ok(False, desc, "raised %s: %s" % (type(e).__name__, e))
        return False, e
    t.ok(False, desc, "no exception")
    return False, None


# ---- safetensors --------------------------------------------------------------------


def safetensors_cases(tmp):
    rng = np.random.default_rng(5)
    tensors = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f64": rng.standard_normal((2, 2, 2)),
        "f16": rng.standard_normal(5).astype(np.float16),
        "i64": np.array([-(2 ** 62), 0, 7], dtype=np.int64),
        "i32": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
        "u8": np.arange(250, 256, dtype=np.uint8),
        "i8": np.array([-128, 127], dtype=np.int8),
        "i16": np.array([-3, 300], dtype=np.int16),
        "u16": np.array([65535], dtype=np.uint16),
        "u32": np.array([2 ** 32 - 1], dtype=np.uint32),
        "u64": np.array([2 ** 64 - 1], dtype=np.uint64),
        "bool": np.array([True, False, True]),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "fortran": np.asfortranarray(rng.standard_normal((3, 2)).astype(np.float32)),
        "big_endian": np.arange(4, dtype=">f4"),
    }
    path = os.path.join(tmp, "all.safetensors")
    st.save(tensors, path, metadata={"format": "pt", "note": "é"})
    back = st.load(path)
    t.ok(set(back) == set(tensors) and all(
        back[k].shape == np.asarray(v).shape and np.array_equal(back[k], v) and
        back[k].dtype == np.asarray(v).dtype.newbyteorder("=") for k, v in tensors.items()),
         "safetensors: every dtype round-trips (F32 F64 F16 I64 I32 U8 I8 I16 U16 U32 U64 "
         "BOOL, 0-d, empty, Fortran order, big-endian input)",
         {k: (back.get(k), v) for k, v in tensors.items()
          if k not in back or not np.array_equal(back[k], v)})
    t.eq(st.load_metadata(path), {"format": "pt", "note": "é"}, "safetensors: metadata kept")
    raw = open(path, "rb").read()
    hlen = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + hlen])
    meta = head.pop("__metadata__")
    ok = hlen % 8 == 0 and raw[8:8 + hlen].rstrip(b" ").endswith(b"}") and meta
    for name, info in head.items():
        itemsize = st.DTYPES[info["dtype"]].itemsize
        ok = ok and (8 + hlen + info["data_offsets"][0]) % itemsize == 0
    order = [n for n, _ in sorted(head.items(), key=lambda kv: kv[1]["data_offsets"])]
    # The reference's dtype order, largest first: U64 I64 F64 F32 U32 I32 ... I8 U8 BOOL.
    t.ok(ok and order[:3] == ["u64", "i64", "f64"] and order[-3:] == ["i8", "u8", "bool"],
         "safetensors: header padded to 8 bytes with spaces, largest dtypes first, every "
         "tensor aligned to its element size (the reference layout)", order)

    # BF16: from torch tensors, through a dtype map, and read back either way.
    w = torch.tensor([1.0, -2.5, 3.140625, 1e-3], dtype=torch.bfloat16)
    x = np.array([1.0, 1.00390625, 1.01171875, -0.0, np.inf], dtype=np.float32)
    path = os.path.join(tmp, "bf16.safetensors")
    st.save({"w": w, "x": x, "keep": x}, path, dtypes={"x": "BF16"})
    head = json.loads(open(path, "rb").read()[8:8 + struct.unpack(
        "<Q", open(path, "rb").read(8))[0]])
    got = st.load(path)
    bits = st.load(path, bf16="uint16")
    # Round to nearest even: 1.00390625 (halfway) -> 1.0, 1.01171875 -> 1.015625.
    t.ok(head["w"]["dtype"] == "BF16" and head["x"]["dtype"] == "BF16" and
         head["keep"]["dtype"] == "F32" and got["w"].dtype == np.float32 and
         np.array_equal(got["w"], w.float().numpy()) and
         np.array_equal(got["x"], np.array([1.0, 1.0, 1.015625, -0.0, np.inf], np.float32)) and
         bits["w"].dtype == np.uint16 and
         np.array_equal(bits["w"], w.view(torch.int16).numpy().view(np.uint16)),
         "safetensors: BF16 from torch tensors and dtypes={name: 'BF16'} (round to nearest "
         "even), read as float32 or as raw uint16 bits", (head, got))
    sd = {"a.weight": torch.randn(3, 2, dtype=torch.float64), "a.n": torch.tensor(4),
          "h": torch.randn(2).half()}
    st.save(sd, os.path.join(tmp, "torch.safetensors"))
    back = st.load(os.path.join(tmp, "torch.safetensors"))
    t.ok(all(np.array_equal(back[k], v.numpy()) and back[k].dtype == v.numpy().dtype
             for k, v in sd.items()), "safetensors: torch tensors saved as they are (F64, I64, "
         "F16, 0-d)")

    # The BF16 fixtures that tests/fixtures/gen_model.py wrote.
    fx = os.path.join(ROOT, "tests", "fixtures", "model", "vgg19_div16.safetensors")
    f32, b16 = st.load(fx), st.load(fx, bf16="uint16")
    t.ok(f32["features.0.weight"].shape == (4, 3, 3, 3) and
         f32["features.1.num_batches_tracked"].dtype == np.int64 and
         np.array_equal(f32["classifier.6.bias"],
                        (b16["classifier.6.bias"].astype(np.uint32) << 16).view(np.float32)),
         "safetensors: reads the BF16 fixtures the PyTorch script wrote")

    # Malformed files.
    good = st.dumps({"a": np.arange(4, dtype=np.float32), "b": np.arange(2, dtype=np.int64)})

    def header(h, data=b"", pad=True):
        hb = json.dumps(h).encode() if not isinstance(h, bytes) else h
        if pad:
            hb += b" " * (-len(hb) % 8)
        return struct.pack("<Q", len(hb)) + hb + data

    A = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    cases = [
        ("empty file", b"", ["truncated"]),
        ("7 bytes", b"\x08\0\0\0\0\0\0", ["truncated"]),
        ("header length past the end", good[:40], ["truncated", "header length"]),
        ("huge header length", struct.pack("<Q", 2 ** 40) + b"{}", ["exceeds"]),
        ("header not JSON", header(b"{\"a\": [1, }"), ["not valid JSON"]),
        ("header not an object", header(b"[1, 2]      "), ["does not start with '{'"]),
        ("header a JSON string", header(b"{}  \"x\""), ["not valid JSON"]),
        ("invalid UTF-8", header(b"{\"\xff\": 1}"), ["UTF-8"]),
        ("key twice", header(b'{"a": %s, "a": %s}' % (json.dumps(A).encode(),
                                                      json.dumps(A).encode()), b"\0" * 8),
         ["appears twice"]),
        ("unknown dtype", header({"a": dict(A, dtype="F12")}, b"\0" * 8), ["dtype 'F12'"]),
        ("missing data_offsets", header({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
         ["'data_offsets'"]),
        ("negative shape", header({"a": dict(A, shape=[-2])}, b"\0" * 8), ["shape"]),
        ("size mismatch", header({"a": dict(A, shape=[3])}, b"\0" * 8), ["need 12"]),
        ("offsets reversed", header({"a": dict(A, data_offsets=[8, 0])}, b"\0" * 8),
         ["data_offsets"]),
        ("overlap", header({"a": A, "b": dict(A, data_offsets=[4, 12])}, b"\0" * 12),
         ["'b'", "must not overlap"]),
        ("gap", header({"a": A, "b": dict(A, data_offsets=[12, 20])}, b"\0" * 20),
         ["'b'", "contiguous"]),
        ("trailing bytes", header({"a": A}, b"\0" * 12), ["cover 8 bytes", "holds 12"]),
        ("data missing", header({"a": A}, b"\0" * 4), ["cover 8 bytes", "holds 4"]),
        ("metadata not strings", header({"__metadata__": {"n": 1}}), ["__metadata__"]),
        ("a .npy file", b"\x93NUMPY\x01\x00" + b"\0" * 120, [".npy file"]),
        ("a torch.save zip", b"PK\x03\x04" + b"\0" * 60, ["zip archive"]),
    ]
    bad = []
    for name, data, words in cases:
        p = os.path.join(tmp, "bad.safetensors")
        with open(p, "wb") as f:
            f.write(data)
        try:
            st.load(p)
            bad.append("%s: loaded" % name)
        except ValueError as e:
            if not (str(e).startswith(p + ":") and all(w in str(e) for w in words)):
                bad.append("%s: %s" % (name, e))
        except Exception as e:
            bad.append("%s: %s %s" % (name, type(e).__name__, e))
    t.ok(not bad, "safetensors: %d kinds of malformed files refused with a ValueError naming "
         "the file and the problem" % len(cases), "\n".join(bad))
    refusals = []
    for what, fn in [
            ("metadata of numbers", lambda: st.dumps({"a": np.zeros(1)}, metadata={"k": 1})),
            ("the name __metadata__", lambda: st.dumps({"__metadata__": np.zeros(1)})),
            ("an object array", lambda: st.dumps({"a": np.array([None])})),
            ("an unknown target dtype", lambda: st.dumps({"a": np.zeros(1)}, dtypes={"a": "F7"})),
            ("dtypes naming no tensor", lambda: st.dumps({"a": np.zeros(1)}, dtypes={"b": "F16"}))]:
        try:
            fn()
            refusals.append(what + ": accepted")
        except ValueError:
            pass
    t.ok(not refusals, "safetensors: save refuses bad metadata, reserved names, object arrays "
         "and bad dtype maps", refusals)


# ---- export and load ------------------------------------------------------------------


def state_names(m):
    return list(m.state_dict().keys())


def export_case(tmp, label, module, shape, types, x):
    """Exports module, checks the spec's layer types and tensor names, runs
    `vvd forward` on the files and loads them back; returns (spec_path,
    weights_path, loaded module) or None."""
    prefix = os.path.join(tmp, "export", label)
    try:
        sp, wp = vvd.export(module, shape, prefix)
    except Exception as e:
        t.ok(False, "%s: exports" % label, "%s: %s" % (type(e).__name__, e))
        return None
    spec = json.load(open(sp))
    got_types = [l["type"] for l in spec["layers"]]
    want_in = list(shape) if len(shape) == 3 else [1, 1, shape[0]]
    t.ok(sp == prefix + ".json" and wp == prefix + ".safetensors" and got_types == types and
         spec["input"] == want_in,
         "%s: exported as %d layers (%s), input %s" % (label, len(types), " ".join(
             sorted(set(types))), want_in), {"types": got_types, "input": spec["input"]})
    names = [l["name"] for l in spec["layers"] if "name" in l]
    params = {n.rsplit(".", 1)[0] for n, _ in module.named_parameters()}
    tensors = st.load(wp)
    t.ok(set(names) == params and set(tensors) == set(module.state_dict()),
         "%s: layer names are the module paths and the .safetensors holds its state_dict "
         "names" % label, {"names": names, "tensors": sorted(tensors)})
    want = torch_out(module, x)
    y = vvd_forward(sp, wp, x, tmp)
    t.ok(not isinstance(y, str) and rel_err(y, want) <= TOL,
         "%s: `vvd forward` on the exported files = PyTorch's logits (rel err %s)"
         % (label, "-" if isinstance(y, str) else "%.1e" % rel_err(y, want)),
         y if isinstance(y, str) else None)
    back = vvd.load(sp)
    try:
        back.load_state_dict(module.state_dict(), strict=True)
        strict = True
    except RuntimeError as e:
        strict = str(e)
    t.ok(strict is True and state_names(back) == state_names(module),
         "%s: vvd.load builds a module with the same state_dict names (strict load of the "
         "original's state_dict)" % label, strict)
    if not isinstance(y, str):
        got = torch_out(vvd.load(sp), x)
        t.ok(rel_err(got, y) <= TOL, "%s: the loaded module's logits = `vvd forward`'s (rel "
             "err %.1e)" % (label, rel_err(got, y)))
    return sp, wp, back


def export_cases(tmp):
    rng = np.random.default_rng(7)
    x6 = rng.random((5, 1, 6, 6), dtype=np.float32)
    x32 = rng.random((4, 3, 32, 32), dtype=np.float32)
    x64 = rng.random((3, 3, 64, 64), dtype=np.float32)
    export_case(tmp, "MLP", randomize(mlp(), 1), (1, 6, 6),
                ["flatten", "linear", "relu", "dropout", "linear", "relu", "linear"], x6)
    flat = randomize(nn.Sequential(nn.Linear(36, 12), nn.ReLU(), nn.Linear(12, 4)), 2)
    export_case(tmp, "MLP on (features,)", flat, (36,), ["flatten", "linear", "relu", "linear"],
                x6.reshape(5, 36))
    vgg_types = []
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]:
        vgg_types += ["maxpool2d"] if v == "M" else ["conv2d", "batchnorm2d", "relu"]
    vgg_types += ["adaptive_avgpool2d", "flatten", "dropout", "linear", "relu", "dropout",
                  "linear", "relu", "linear"]
    r = export_case(tmp, "narrow VGG-19 (nested Sequential)", randomize(vgg19_like(16), 3),
                    (3, 32, 32), vgg_types, x32)
    if r:
        # The layers without weights are put back where they were.
        t.ok(isinstance(r[2].features, nn.Sequential) and len(r[2].features) == 53 and
             isinstance(r[2].features[2], nn.ReLU) and isinstance(r[2].avgpool,
                                                                  nn.AdaptiveAvgPool2d) and
             isinstance(r[2].classifier[0], nn.Dropout),
             "narrow VGG-19: vvd.load rebuilds features / avgpool / flatten / classifier",
             str(r[2])[:600])
    alex_types = ["conv2d", "relu", "maxpool2d", "conv2d", "relu", "maxpool2d", "conv2d", "relu",
                  "conv2d", "relu", "conv2d", "relu", "maxpool2d", "adaptive_avgpool2d",
                  "flatten", "dropout", "linear", "relu", "dropout", "linear", "relu", "linear"]
    export_case(tmp, "AlexNet-like (nested Sequential)", randomize(alexnet_like(32), 4),
                (3, 64, 64), alex_types, x64)
    x8 = rng.random((3, 3, 8, 8), dtype=np.float32)
    export_case(tmp, "torchvision-style forward (torch.fx)", randomize(TorchvisionStyle(), 5),
                (3, 8, 8), ["conv2d", "batchnorm2d", "relu", "avgpool2d", "conv2d", "relu",
                            "adaptive_avgpool2d", "flatten", "linear", "relu", "dropout",
                            "linear"], x8)
    export_case(tmp, "functional forward with view(x.size(0), -1) (torch.fx)",
                randomize(Functional(), 6), (1, 6, 6),
                ["conv2d", "batchnorm2d", "relu", "maxpool2d", "flatten", "dropout", "linear"],
                x6)
    import gen_model  # tests/fixtures: a forward set on the instance, as that script does
    export_case(tmp, "forward set on the instance (gen_model.mlp, torch.fx)",
                randomize(gen_model.mlp([36, 20, 12, 5]), 7), (1, 6, 6),
                ["flatten", "linear", "relu", "linear", "relu", "linear"], x6)

    # Unsupported modules: named with their path.
    gelu = nn.Sequential(collections.OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.GELU())),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(4 * 6 * 6, 2))]))
    ok, e = expect_raises(vvd.UnsupportedModuleError, lambda: vvd.export(gelu, (3, 8, 8), tmp),
                          "features.3 (nn.GELU) is not supported: supported are nn.Conv2d",
                          desc="nn.GELU at features.3: UnsupportedModuleError names it and its "
                               "path")
    t.ok(e is not None and getattr(e, "path", None) == "features.3" and
         getattr(e, "module_type", None) == "nn.GELU" and isinstance(e, vvd.ExportError) and
         isinstance(e, ValueError), "the error carries .path and .module_type")
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.Linear(4, 2))
    expect_raises(vvd.UnsupportedModuleError, lambda: vvd.export(grouped, (4, 3, 3), tmp),
                  "0 (nn.Conv2d) is not supported: groups=2",
                  desc="a grouped convolution is refused with its setting")
    ceil = nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    expect_raises(vvd.UnsupportedModuleError, lambda: vvd.export(ceil, (4, 5, 5), tmp),
                  "0 (nn.MaxPool2d) is not supported: ceil_mode=True",
                  desc="a max-pool with ceil_mode that changes the size is refused")
    nested = nn.Sequential(collections.OrderedDict([("body", Residual()),
                                                    ("out", nn.Linear(8, 2))]))
    expect_raises(vvd.ExportError, lambda: vvd.export(nested, (8,), tmp),
                  "body (", "Residual", "not a straight chain",
                  desc="a residual forward is refused as not a straight chain, naming the module")
    expect_raises(vvd.ExportError, lambda: vvd.export(Branchy(), (8,), tmp),
                  "torch.fx cannot trace",
                  desc="a forward torch.fx cannot trace is refused with torch.fx's reason")
    expect_raises(ValueError, lambda: vvd.export(mlp(), (6, 6), tmp), "input_shape",
                  desc="input_shape must be (C, H, W) or (features,)")

    # vvd.load: the forms of its source, and weights that do not fit.
    sp = os.path.join(tmp, "export", "MLP.json")
    wp = os.path.join(tmp, "export", "MLP.safetensors")
    d = os.path.join(tmp, "run-folder")
    os.makedirs(d)
    shutil.copy(sp, os.path.join(d, "model.json"))
    shutil.copy(wp, os.path.join(d, "model.safetensors"))
    ref = torch_out(vvd.load(sp), x6)
    forms = [vvd.load(d), vvd.load(sp, wp), vvd.load((sp, wp)),
             vvd.load(json.load(open(sp)), st.load(wp))]
    t.ok(all(np.array_equal(torch_out(m, x6), ref) for m in forms) and
         forms[0].vvd_spec["input"] == [1, 6, 6],
         "vvd.load takes a run folder, spec + weights paths, a pair, a spec dict + tensors")
    # A loaded model keeps its preprocessing when exported again (compress
    # then scores it on the inputs it was trained on).
    pre = {"mean": [0.286], "std": [0.353]}
    spec_pre = dict(json.load(open(sp)), preprocess=pre)
    again, _ = vvd._torch.export_spec(vvd.load(spec_pre, st.load(wp)), (1, 6, 6), check=False)
    t.ok(again.get("preprocess") == pre,
         "a module made by vvd.load keeps its model's preprocess when exported again",
         again.get("preprocess"))
    w = st.load(wp)
    w["7.weight"] = np.zeros((2, 2), np.float32)
    expect_raises(ValueError, lambda: vvd.load(sp, w), "unexpected 7.weight",
                  desc="vvd.load refuses a tensor the spec has no place for")
    w = st.load(wp)
    w["4.weight"] = np.zeros((16, 23), np.float32)
    expect_raises(ValueError, lambda: vvd.load(sp, w), "'4.weight' has shape [16, 23]",
                  desc="vvd.load refuses a tensor of the wrong shape, naming it")
    expect_raises(FileNotFoundError, lambda: vvd.load(os.path.join(tmp, "nothing")),
                  "no such file", desc="vvd.load of a path that is not there says so")


# ---- through the daemon ----------------------------------------------------------------


class CutProxy:
    """A TCP proxy to the daemon that cuts the first event stream it carries
    in the middle of its `cut`-th event; records every request's head."""

    def __init__(self, port, cut):
        self.port, self.cut = port, cut
        self.heads = []
        self.cut_done = False
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        up = socket.create_connection(("127.0.0.1", self.port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(65536)
            if not chunk:
                break
            head += chunk
        with self.lock:
            self.heads.append(head.decode("latin-1"))
            cut = "/events" in head.split(b"\r\n")[0].decode() and not self.cut_done
            if cut:
                self.cut_done = True
        up.sendall(head)
        threading.Thread(target=self._pipe, args=(c, up), daemon=True).start()
        seen = b""
        while True:
            data = up.recv(65536)
            if not data:
                break
            if cut:
                seen += data
                at, n = -1, 0
                while n < self.cut:
                    at = seen.find(b"\ndata: ", at + 1)
                    if at < 0:
                        break
                    n += 1
                if at >= 0:
                    # Up to the middle of that event's data, then a broken connection.
                    c.sendall(data[:len(data) - (len(seen) - (at + 12))])
                    break
            c.sendall(data)
        for s in (c, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass

    def close(self):
        self.sock.close()


def npy_dataset(tmp, rng, n_train, n_test, shape, classes, file_shape=None):
    """Images and labels: arrays for train, .npy files for test (both upload;
    the test images are stored as file_shape)."""
    xtr = rng.random((n_train,) + shape, dtype=np.float32)
    ytr = rng.integers(0, classes, n_train)
    xte = rng.random((n_test,) + (file_shape or shape), dtype=np.float32)
    yte = rng.integers(0, classes, n_test).astype(np.int32)
    pi, pl = os.path.join(tmp, "test_images.npy"), os.path.join(tmp, "test_labels.npy")
    np.save(pi, xte)
    np.save(pl, yte)
    return {"format": "npy", "train": {"images": xtr, "labels": ytr},
            "test": {"images": pi, "labels": pl}}, xte


def compress_case(d, c, tmp, label, module, shape, data, x, **lasso):
    err = io.StringIO()
    t0 = time.monotonic()
    try:
        with contextlib.redirect_stderr(err):
            small, result = vvd.compress(module, data, input_shape=shape, client=c, **lasso)
    except Exception as e:
        t.ok(False, "%s: export -> compress -> load" % label, "%s: %s\n%s" % (
            type(e).__name__, e, err.getvalue()))
        return None
    secs = time.monotonic() - t0
    rid = result.get("run_id")
    layers = result.get("layers") or []
    t.ok(rid and layers and all(l["kept"] <= l["neurons"] for l in layers) and
         sum(l["kept"] for l in layers) < sum(l["neurons"] for l in layers),
         "%s: compress runs in the daemon (%s, %.1f s): %s" % (
             label, rid, secs, ", ".join("%s %d->%d" % (l["layer"], l["neurons"], l["kept"])
                                         for l in layers)), json.dumps(result)[:800])
    last = err.getvalue().strip().splitlines()[-1:] or [""]
    t.ok(last[0].startswith("vvd %s FINISHED" % rid), "%s: the progress line on stderr ends "
         "with the final state (%s)" % (label, last[0][:120]))
    run = c.runs.get(rid)
    t.ok(all(run["spec"].get(k) == v for k, v in lasso.items()) and
         run["spec"]["model"]["weights"].startswith("blobs/py/") and
         run["spec"]["data"]["train"]["images"].startswith("blobs/py/") and
         run["spec"]["data"]["test"]["labels"].startswith("blobs/py/"),
         "%s: the lasso keywords are passed into the spec; model and data went up as blobs"
         % label, run["spec"])
    folder = os.path.join(d.dir, "runs", rid)
    sp, wp = os.path.join(folder, "model.json"), os.path.join(folder, "model.safetensors")
    tensors = st.load(wp)
    t.ok(set(state_names(small)) - set(tensors) <= {n for n in state_names(small)
                                                     if n.endswith("num_batches_tracked")} and
         set(tensors) <= set(state_names(small)),
         "%s: the smaller module's state_dict names are those of the run's model.safetensors"
         % label, (state_names(small), sorted(tensors)))
    widths = {l["name"]: l["out_features"] for l in json.load(open(sp))["layers"]
              if l["type"] == "linear"}
    t.ok(all(getattr(small.get_submodule(n), "out_features", None) == w
             for n, w in widths.items()), "%s: its linear layers have the new widths %s"
         % (label, widths))
    y = vvd_forward(sp, wp, x, tmp)
    got = torch_out(small, x)
    t.ok(not isinstance(y, str) and rel_err(got, y) <= TOL,
         "%s: the compressed module's logits = `vvd forward` on the run's model.json + "
         "model.safetensors (rel err %s)" % (label, "-" if isinstance(y, str) else
                                            "%.1e" % rel_err(got, y)),
         y if isinstance(y, str) else None)
    by_id = vvd.load(rid, client=c)
    by_folder = vvd.load(folder)
    t.ok(np.array_equal(torch_out(by_id, x), got) and np.array_equal(torch_out(by_folder, x), got),
         "%s: vvd.load(run id, client) and vvd.load(run folder) give the same module" % label)
    return rid, small


def daemon_cases(tmp):
    rng = np.random.default_rng(11)
    with Daemon(VVD) as d:
        c = vvd.Client("http://127.0.0.1:%d" % d.port)
        t.eq(c.health().get("status"), "ok", "Client.health() answers")

        # export -> compress -> load: an MLP, one on vectors, a narrow VGG-19.
        data, xte = npy_dataset(tmp, rng, 400, 60, (1, 6, 6), 5)
        model = randomize(mlp(), 21)
        r = compress_case(d, c, tmp, "MLP", model, (1, 6, 6), data, xte[:20],
                          lambda_ratio=0.03, tol=1e-6)
        # A model on vectors (input_shape (features,)): N x 36 arrays, N x 1 x 36 files.
        data, xte = npy_dataset(tmp, rng, 300, 40, (36,), 4, file_shape=(1, 36))
        flat = randomize(nn.Sequential(nn.Linear(36, 20), nn.ReLU(), nn.Linear(20, 4)), 23)
        compress_case(d, c, tmp, "MLP on (features,)", flat, (36,), data, xte[:10],
                      lambda_ratio=0.05)
        data, xte = npy_dataset(tmp, rng, 64, 16, (3, 32, 32), 10)
        vgg = calibrate(vgg19_like(16), data["train"]["images"], 22)
        compress_case(d, c, tmp, "narrow VGG-19", vgg, (3, 32, 32), data, xte[:8],
                      lambda_ratio=0.05)
        if r:
            # A module from vvd.load knows its input shape: compress it again,
            # on N x features arrays (reshaped to the model's input).
            width = r[1].get_submodule("1").out_features
            budget = max(1, width - 1)
            small2, res2 = vvd.compress(r[1], data={"format": "npy", "train": {
                "images": rng.random((100, 36), dtype=np.float32),
                "labels": rng.integers(0, 5, 100)}}, layers=["4"], client=c, progress=False,
                target_active=budget)
            t.ok(res2["layers"][0]["layer"] == "4" and res2["layers"][0]["kept"] <= budget and
                 small2.get_submodule("1").out_features == res2["layers"][0]["kept"],
                 "a loaded module compresses again (input shape from its spec, N x features "
                 "arrays reshaped, target_active %d of %d passed through)" % (budget, width),
                 res2.get("layers"))
        if r:
            # A train run writes model.json + model.safetensors too.
            spec = c.runs.get(r[0])["spec"]
            tr = c.runs.wait(c.runs.submit({
                "kind": "train", "model": {"arch": "mlp", "sizes": [36, 12, 5],
                                           "input": [1, 6, 6]},
                "data": spec["data"], "epochs": 1, "batch_size": 50})["id"])
            y = "run %s" % tr["state"]
            if tr["state"] == "FINISHED":
                folder = os.path.join(d.dir, "runs", tr["id"])
                x = rng.random((5, 1, 6, 6), dtype=np.float32)
                y = vvd_forward(os.path.join(folder, "model.json"),
                                os.path.join(folder, "model.safetensors"), x, tmp)
                got = torch_out(vvd.load(tr["id"], client=c), x)
            t.ok(not isinstance(y, str) and rel_err(got, y) <= TOL,
                 "vvd.load(a train run's id) gives the trained network (logits = `vvd "
                 "forward`'s)", y if isinstance(y, str) else None)
        client_cases(d, c, tmp, r[0] if r else None)


def client_cases(d, c, tmp, rid):
    # Errors: problem+json fields on VvdError.
    try:
        c.runs.submit({"kind": "lasso", "generate": {"n": 10, "k": 3, "d": 2}, "lambda_ratio": 7})
        t.ok(False, "a bad spec raises VvdError")
    except vvd.VvdError as e:
        t.ok(e.status == 400 and e.code == "INVALID_PARAMETER_VALUE" and e.field == "/lambda_ratio"
             and "must be <= 1" in e.detail and e.problem.get("error_code") == e.code and
             "/lambda_ratio" in str(e),
             "a bad spec raises VvdError with status 400, code, field /lambda_ratio and detail",
             (e.status, e.code, e.field, e.detail))
    try:
        c.runs.get("r-999999")
        t.ok(False, "an unknown run raises VvdError")
    except vvd.VvdError as e:
        t.ok(e.status == 404 and e.code == "RESOURCE_DOES_NOT_EXIST" and "r-999999" in e.detail,
             "an unknown run raises VvdError 404 RESOURCE_DOES_NOT_EXIST (%s)" % e.detail)
    try:
        c.request("GET", "/v1/runs", query={"page_size": 0})
        t.ok(False, "a bad query raises VvdError")
    except vvd.VvdError as e:
        t.ok(e.status == 400 and e.field == "/query/page_size",
             "a bad query parameter names its field (%s)" % e.field)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        vvd.Client("http://127.0.0.1:%d" % s.getsockname()[1], timeout=5).health()
        t.ok(False, "an unreachable daemon raises VvdConnectionError")
    except vvd.VvdConnectionError as e:
        t.ok(e.code == "UNREACHABLE" and e.status is None and isinstance(e, vvd.VvdError) and
             isinstance(e, ConnectionError) and "cannot reach vvd" in str(e),
             "an unreachable daemon raises VvdConnectionError (a VvdError, code UNREACHABLE)")
    finally:
        s.close()
    tok = Daemon(VVD, token="s3cret")
    with tok:
        try:
            vvd.Client("http://127.0.0.1:%d" % tok.port).runs.list()
            t.ok(False, "a missing token raises VvdError 401")
        except vvd.VvdError as e:
            ok401 = e.status == 401
        runs = vvd.Client("http://127.0.0.1:%d" % tok.port, token="s3cret").runs.list()
        t.ok(ok401 and runs == [], "token: 401 without it, Authorization: Bearer with it")

    # Blobs, models.
    up = c.blobs.upload("mine/a.bin", b"\0\1\2")
    src = os.path.join(tmp, "export", "MLP.safetensors")
    up2 = c.blobs.upload("mine/mlp.safetensors", src)
    with open(os.path.join(tmp, "export", "MLP.json"), "rb") as f:
        up3 = c.blobs.upload("mine/mlp.json", f)
    t.ok(up == {"name": "mine/a.bin", "bytes": 3} and up2["bytes"] == os.path.getsize(src) and
         open(os.path.join(d.dir, "blobs", "mine", "mlp.safetensors"), "rb").read() ==
         open(src, "rb").read() and up3["bytes"] > 0,
         "blobs: bytes, a path and a file object upload to DATA/blobs/", (up, up2, up3))
    try:
        c.blobs.upload("../escape.bin", b"x")
        t.ok(False, "a blob name with .. is refused")
    except vvd.VvdError as e:
        t.ok(400 <= e.status < 500 and e.code, "a blob name with .. is refused (%d %s)"
             % (e.status, e.code))
    m = c.models.load("mlp", spec="blobs/mine/mlp.json", weights="blobs/mine/mlp.safetensors")
    names = [x.get("name") for x in c.models.list().get("models", [])]
    gone = c.models.delete("mlp")
    names2 = [x.get("name") for x in c.models.list().get("models", [])]
    t.ok(m.get("name") == "mlp" and "mlp" in names and gone.get("deleted") and
         "mlp" not in names2, "models: load (an exported spec and weights), list, delete",
         (m, names, names2))

    # Runs: list, metrics, artifacts.
    if rid:
        listed = [x["id"] for x in c.runs.list(kind="compress")]
        t.ok(rid in listed and all(x["kind"] == "compress" for x in c.runs.list(kind="compress")),
             "runs.list(kind=...) lists the compress runs", listed)
        t.ok(len(c.runs.list(limit=1)) == 1 and len(c.runs.list(page_size=1)) == len(
            c.runs.list()), "runs.list follows the pages (page_size 1) and stops at limit")
        ms = c.runs.metrics(rid)
        t.ok(ms and {"step", "key", "value", "time"} <= set(ms[0]) and
             any(m["key"] == "test_acc" for m in ms) and
             all(m["key"] == "rel_gap" for m in c.runs.metrics(rid, keys=["rel_gap"])),
             "runs.metrics: the stored history, filtered by keys (%d points)" % len(ms))
        arts = {a["name"] for a in c.runs.artifacts(rid)}
        dest = c.runs.download(rid, "kept.json", os.path.join(tmp, "dl") + os.sep)
        t.ok({"model.json", "model.safetensors", "kept.json", "result.json"} <= arts and
             dest == os.path.join(tmp, "dl", "kept.json") and
             json.load(open(dest)) == json.load(open(os.path.join(d.dir, "runs", rid,
                                                                   "kept.json"))),
             "runs.artifacts lists them; runs.download writes one into a folder", sorted(arts))

    # A lasso run, its events read whole, then through a proxy that breaks the
    # stream in the middle of its 4th event: the client reconnects with
    # Last-Event-ID and gets every event once.
    run = c.runs.submit({"kind": "lasso", "generate": {"n": 200, "k": 40, "d": 6, "seed": 3},
                         "lambda_ratio": 0.1, "solver": "fista", "metrics_every": 1,
                         "tol": 1e-9})
    seen = []
    final = c.runs.wait(run["id"], on_event=seen.append)
    full = list(c.runs.events(run["id"]))
    t.ok(final["state"] == "FINISHED" and [e.id for e in seen] == [e.id for e in full] and
         len(full) > 8 and full[0].event == "state" and full[-1].event == "state" and
         full[-1].data.get("state") == "FINISHED",
         "runs.wait follows the events to the end (%d events)" % len(full))
    proxy = CutProxy(d.port, cut=4)
    try:
        got = list(vvd.Client(proxy.url).runs.events(run["id"]))
    finally:
        proxy.close()
    streams = [h for h in proxy.heads if "/events" in h.split("\r\n")[0]]
    resumed = [h for h in streams[1:] if "Last-Event-ID: %d" % full[2].id in h]
    t.ok([(e.id, e.event, e.data) for e in got] == [(e.id, e.event, e.data) for e in full] and
         proxy.cut_done and len(streams) == 2 and resumed,
         "SSE: a stream broken inside an event is resumed with Last-Event-ID: %d, no event "
         "lost or repeated (%d events)" % (full[2].id, len(got)),
         {"ids": [e.id for e in got], "requests": [h.split("\r\n")[0] for h in proxy.heads],
          "heads": streams[1:]})
    after = list(c.runs.events(run["id"], after=full[5].id))
    t.ok([e.id for e in after] == [e.id for e in full[6:]],
         "runs.events(after=id) starts after that id")

    # wait's timeout, and stop.
    # (Adam-prox with a tiny step: far from converged for minutes.)
    long = c.runs.submit({"kind": "lasso", "generate": {"n": 1000, "k": 100, "d": 20, "seed": 4},
                          "lambda_ratio": 0.01, "solver": "adam_prox", "mu": 1e-6,
                          "tol": 1e-12, "max_iter": 100000000})
    t0 = time.monotonic()
    try:
        c.runs.wait(long["id"], timeout=0.5)
        timed_out = False
    except TimeoutError:
        timed_out = time.monotonic() - t0
    c.runs.stop(long["id"])
    ended = c.runs.wait(long["id"], timeout=60)
    t.ok(timed_out and timed_out < 5 and ended["state"] == "STOPPED",
         "runs.wait(timeout=0.5) raises TimeoutError (after %.1f s); runs.stop stops the run "
         "(%s)" % (timed_out or -1, ended["state"]))

    # Sweeps.
    sw = c.sweeps.submit({"kind": "lasso", "generate": {"n": 60, "k": 10, "d": 3, "seed": 1}},
                         {"lambda_ratio": [0.5, 0.2, 0.1]})
    done = c.sweeps.wait(sw["id"])
    stopped = c.sweeps.stop(sw["id"])
    t.ok(sw.get("points") == 3 and done["state"] == "FINISHED" and
         done["counts"]["FINISHED"] == 3 and stopped["id"] == sw["id"],
         "sweeps: submit (3 points), wait, get, stop", (sw, done.get("counts")))


# ---- pip install -------------------------------------------------------------------------


def pip_case(tmp):
    """python/README.md's commands, with PIP_NO_INDEX so that nothing can be
    downloaded."""
    venv = os.path.join(tmp, "vvd-env")
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                       capture_output=True, text=True, timeout=300)
    if p.returncode == 0:
        p = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "./python"],
                           capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    ok = p.returncode == 0
    if ok:
        p = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                            "import sys, vvd, vvd._torch; print(vvd.__file__); "
                            "print(vvd.__version__)"],
                           capture_output=True, text=True, timeout=120, env=env, cwd=tmp)
        ok = p.returncode == 0 and p.stdout.split()[0].startswith(
            os.path.join(venv, "lib")) and p.stdout.split()[1] == vvd.__version__
    t.ok(ok, "`pip install ./python` works offline (PIP_NO_INDEX) in a fresh venv "
         "(--system-site-packages), which then imports vvd and its torch helpers (%.1f s)"
         % (time.monotonic() - t0), (p.stdout + p.stderr)[-2000:])
    left = sorted(n for n in os.listdir(os.path.join(ROOT, "python"))
                  if n not in ("vvd", "_build", "pyproject.toml", "README.md"))
    t.ok(not left, "the build leaves nothing behind in python/", left)


def main():
    tmp = tempfile.mkdtemp(prefix="vvd-python-")
    t0 = time.monotonic()
    try:
        for part in (safetensors_cases, export_cases, daemon_cases, pip_case):
            t1 = time.monotonic()
            try:
                part(tmp)
            except Exception:  # a bug in the package: report it, go on
                t.ok(False, "%s ran without an exception" % part.__name__,
                     traceback.format_exc())
            t.comment("%s: %.1f s" % (part.__name__, time.monotonic() - t1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.comment("total %.1f s" % (time.monotonic() - t0))
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
