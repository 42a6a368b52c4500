#!/usr/bin/env python3
"""vvd at its edges, in TAP: `vvd forward` on every input form it takes,
torch.save files where .safetensors weights are expected, and the layers of
a compress run checked when it is submitted.

`vvd forward` runs tests/fixtures/fmnist/mlp_128_64.safetensors (a
784-128-64-10 MLP) on N x D float32, N x C x H x W float64 and uint8 raw
images (which get model.json's preprocess: scale, center crop, mean/std),
and each must equal a pure-Python forward pass; bad inputs exit 2 with the
one-line error of `vvd run` naming the field.  A torch.save file (zip
archive or pickle, hand-built here) given as weights is refused by `vvd
forward`, POST /v1/models and POST /v1/runs, saying what it is and how to
export.  A compress run naming an unknown layer, a layer that is not linear
or a linear layer fed by the input is a 400 at /layers/i listing the layers
that can be compressed, whatever names the model (inline, a spec file, a
resident model, the untrained default model, a sweep's base), and nothing
is queued; a valid run is accepted and finishes.

Standard library only.  Usage: test_edges.py VVD FIXTURES_DIR
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, Tap, vvd_run  # noqa: E402

t = Tap()
VVD, FIX = sys.argv[1], sys.argv[2]
WEIGHTS = os.path.join(FIX, "fmnist", "mlp_128_64.safetensors")
PRE = {"mean": [0.286], "std": [0.353]}
MLP = {"arch": "mlp", "input": [1, 28, 28], "sizes": [784, 128, 64, 10]}

# A torch.save zip archive (its first entry archive/data.pkl) and a legacy
# pickle (protocol 2, then torch's magic number), as far as vvd reads them.
TORCH_ZIP = (b"PK\x03\x04" + b"\0" * 22 + struct.pack("<HH", 16, 0) + b"archive/data.pkl" +
             b"\x80\x02}q\x00." + b"\0" * 32)
TORCH_PICKLE = bytes([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8,
                      0x50, 0x19, 0x2e]) + b"\x80\x02}q\x00." + b"\0" * 32


# ---- Files and the reference ------------------------------------------------------------

def write_npy(path, descr, shape, values):
    fmt = {"<f4": "f", "<f8": "d", "|u1": "B", "<i4": "i", "<i8": "q"}[descr]
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))
    return path


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    hlen = struct.unpack("<H", data[8:10])[0]
    h = eval(data[10:10 + hlen].decode("latin1"))  # numpy's own dict literal
    n, k = h["shape"]
    vals = struct.unpack("<%df" % (n * k), data[10 + hlen:10 + hlen + 4 * n * k])
    return [list(vals[i * k:(i + 1) * k]) for i in range(n)]


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        if e["dtype"] == "BF16":
            vals = [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
        else:
            vals = list(struct.unpack("<%df" % (len(raw) // 4), raw))
        shape = e["shape"]
        if len(shape) == 2:
            vals = [vals[i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])]
        out[name] = vals
    return out


def mlp_forward(w, x):
    h = x
    for i in (1, 2, 3):
        W, b = w["fc%d.weight" % i], w["fc%d.bias" % i]
        h = [sum(wr[c] * h[c] for c in range(len(h))) + br for wr, br in zip(W, b)]
        if i < 3:
            h = [v if v > 0 else 0.0 for v in h]
    return h


def rel_err(got, ref):
    scale = max(abs(v) for row in ref for v in row)
    return max(abs(g - e) for gr, er in zip(got, ref) for g, e in zip(gr, er)) / scale


def forward(tmp, x, *opts, model="model.json", weights=WEIGHTS, out="y.npy"):
    """Runs vvd forward; returns (exit status, the JSON line or {}, stderr)."""
    p = subprocess.run([VVD, "forward", os.path.join(tmp, model), weights, os.path.join(tmp, x),
                        os.path.join(tmp, out)] + list(opts),
                       capture_output=True, text=True, timeout=120)
    lines = p.stdout.strip().splitlines()
    try:
        last = json.loads(lines[-1]) if lines else {}
    except ValueError:
        last = {"unparsed": p.stdout}
    return p.returncode, last, p.stderr


def problem(r):
    try:
        j = r.json()
    except ValueError:
        j = {}
    return j.get("error_code"), j.get("field"), j.get("detail", "")


# ---- vvd forward ---------------------------------------------------------------------------

def forward_cases(tmp):
    with open(os.path.join(tmp, "model.json"), "w") as f:
        json.dump(dict(MLP, preprocess=PRE), f)
    with open(os.path.join(tmp, "crop.json"), "w") as f:
        json.dump(dict(MLP, preprocess=dict(PRE, crop=28)), f)
    rnd = random.Random(5)
    n = 6
    u8 = [[rnd.randrange(256) for _ in range(784)] for _ in range(n)]
    pre = [[(v / 255.0 - PRE["mean"][0]) / PRE["std"][0] for v in img] for img in u8]
    w = read_safetensors(WEIGHTS)
    ref = [mlp_forward(w, x) for x in pre]
    flat = [v for img in pre for v in img]
    write_npy(os.path.join(tmp, "x_f32.npy"), "<f4", (n, 784), flat)
    write_npy(os.path.join(tmp, "x_f64.npy"), "<f8", (n, 1, 28, 28), flat)
    write_npy(os.path.join(tmp, "x_u8.npy"), "|u1", (n, 28, 28), [v for img in u8 for v in img])
    write_npy(os.path.join(tmp, "x_u8_4d.npy"), "|u1", (n, 1, 28, 28),
              [v for img in u8 for v in img])
    write_npy(os.path.join(tmp, "x_float_img.npy"), "<f4", (n, 28, 28),
              [v / 255.0 for img in u8 for v in img])
    # 32 x 32 images whose center 28 x 28 crop (rows and columns 2..29) is u8.
    big = []
    for img in u8:
        for r in range(32):
            for c in range(32):
                big.append(img[(r - 2) * 28 + (c - 2)] if 2 <= r < 30 and 2 <= c < 30 else 255)
    write_npy(os.path.join(tmp, "x_u8_32.npy"), "|u1", (n, 1, 32, 32), big)

    cases = [
        ("x_f32.npy", (), "N x 784 float32 (preprocessed)", False),
        ("x_f64.npy", (), "N x 1 x 28 x 28 float64 (preprocessed)", False),
        ("x_u8.npy", (), "N x 28 x 28 uint8 raw images: model.json's preprocess applied", True),
        ("x_u8_4d.npy", (), "N x 1 x 28 x 28 uint8 raw images", True),
        ("x_float_img.npy", ("--preprocess",), "float images in [0, 1] with --preprocess", True),
        ("x_f32.npy", ("--batch", "4"), "in batches of 4 (two calls, the last one short)", False),
        ("x_f64.npy", ("--device", "sim:0"), "on the simulated device (its batched path)", False),
    ]
    for x, opts, what, pp in cases:
        rc, res, err = forward(tmp, x, *opts)
        got = read_npy(os.path.join(tmp, "y.npy")) if rc == 0 else [[0.0] * 10] * n
        e = rel_err(got, ref)
        t.ok(rc == 0 and res.get("state") == "FINISHED" and res.get("samples") == n and
             res.get("outputs") == 10 and res.get("preprocessed") is pp and e < 1e-5,
             "vvd forward, %s: exit 0, logits = the reference (rel err %.1e)" % (what, e),
             json.dumps(res) + err[-2000:])
        os.unlink(os.path.join(tmp, "y.npy")) if rc == 0 else None
    rc, res, err = forward(tmp, "x_u8_32.npy", model="crop.json")
    got = read_npy(os.path.join(tmp, "y.npy")) if rc == 0 else [[0.0] * 10] * n
    t.ok(rc == 0 and rel_err(got, ref) < 1e-5,
         "vvd forward, 32 x 32 uint8 images and a model.json with crop 28: the center crop, "
         "scaled and normalised, gives the reference logits", json.dumps(res) + err[-2000:])

    # Bad input: exit 2, one JSON line naming the field, and nothing written.
    write_npy(os.path.join(tmp, "x_783.npy"), "<f4", (n, 783), flat[:n * 783])
    write_npy(os.path.join(tmp, "x_3x28.npy"), "<f4", (n, 3, 28, 28), flat * 3)
    write_npy(os.path.join(tmp, "x_i32.npy"), "<i4", (n, 784), [v for img in u8 for v in img])
    write_npy(os.path.join(tmp, "x_u8_30.npy"), "|u1", (n, 30, 30), [0] * (n * 900))
    write_npy(os.path.join(tmp, "x_nan.npy"), "<f4", (2, 784), [0.0] * 800 + [float("nan")] +
              [0.0] * 767)
    with open(os.path.join(tmp, "model.pt"), "wb") as f:
        f.write(TORCH_ZIP)
    with open(os.path.join(tmp, "legacy.pt"), "wb") as f:
        f.write(TORCH_PICKLE)
    bad = [
        (("x_783.npy",), {}, "SHAPE_MISMATCH", "/x", ["6 x 783 float32", "N x 1 x 28 x 28",
                                                      "N x 784"], "N x 783 inputs"),
        (("x_3x28.npy",), {}, "SHAPE_MISMATCH", "/x", ["6 x 3 x 28 x 28", "N x 1 x 28 x 28"],
         "N x 3 x 28 x 28 inputs for a 1 x 28 x 28 model"),
        (("x_u8_30.npy",), {}, "SHAPE_MISMATCH", "/x", ["1 x 30 x 30", "1 x 28 x 28"],
         "30 x 30 raw images that the preprocess leaves 30 x 30"),
        (("x_i32.npy",), {}, "UNSUPPORTED_DTYPE", "/x", ["<i4", "uint8"], "int32 inputs"),
        (("x_nan.npy",), {}, "NON_FINITE_VALUE", "/x", ["input 1", "element 16"], "a NaN"),
        (("missing.npy",), {}, "FILE_NOT_FOUND", "/x", ["missing.npy"], "a missing X"),
        (("x_f32.npy",), {"model": "nope.json"}, "FILE_NOT_FOUND", "/spec", ["nope.json"],
         "a missing model.json"),
        (("x_f32.npy",), {"weights": os.path.join(tmp, "model.pt")}, "BAD_FILE_FORMAT",
         "/weights", ["model.pt is a PyTorch torch.save file (zip archive", "vvd.export(",
                      "save_file(model.state_dict()"], "a torch.save zip archive as weights"),
        (("x_f32.npy",), {"weights": os.path.join(tmp, "legacy.pt")}, "BAD_FILE_FORMAT",
         "/weights", ["legacy.pt is a PyTorch torch.save file (pickle", "vvd.export("],
         "a legacy torch.save pickle as weights"),
        (("x_f32.npy", "--batch", "0"), {}, "INVALID_PARAMETER_VALUE", "/batch", ["--batch 0"],
         "--batch 0"),
        (("x_f32.npy", "--device", "tpu:0"), {}, "INVALID_PARAMETER_VALUE", "/device",
         ["tpu:0"], "an unknown device"),
    ]
    for args, kw, code, field, words, what in bad:
        rc, res, err = forward(tmp, *args, out="bad_out.npy", **kw)
        e = res.get("error", {})
        t.ok(rc == 2 and res.get("state") == "FAILED" and e.get("error_code") == code and
             e.get("field") == field and all(wd in e.get("detail", "") for wd in words) and
             not os.path.exists(os.path.join(tmp, "bad_out.npy")),
             "vvd forward, %s: exit 2, %s at %s naming %s" % (what, code, field, words),
             "rc=%d %s\n%s" % (rc, json.dumps(res), err[-1000:]))
    p = subprocess.run([VVD, "forward", "model.json", WEIGHTS], capture_output=True, text=True)
    t.ok(p.returncode == 2 and "usage: vvd forward" in p.stderr,
         "vvd forward with three arguments: exit 2 and its usage", p.stderr)
    p = subprocess.run([VVD, "forward", "--help"], capture_output=True, text=True)
    t.ok(p.returncode == 0 and "--preprocess" in p.stdout and "uint8" in p.stdout,
         "vvd forward --help documents --preprocess and raw images", p.stdout)


# ---- Layer names and weights at submit time ------------------------------------------------

def layer_cases(tmp):
    # vvd run: an inline architecture is checked when the spec is parsed.
    spec = {"kind": "compress", "model": dict(MLP, weights=WEIGHTS), "layers": ["fc1"],
            "lambda_ratio": 0.1, "data": "fashion-mnist"}
    rc, r, _ = vvd_run(VVD, tmp, spec, "fc1")
    e = r.get("error", {})
    t.ok(rc == 2 and e.get("field") == "/layers/0" and
         "fed by the input: it has no hidden neurons to delete" in e.get("detail", "") and
         "fc2, fc3" in e.get("detail", ""),
         "vvd run, a linear layer fed by the input: exit 2 at /layers/0 with the reason and "
         "the layers that can be compressed", json.dumps(e))

    with Daemon(VVD) as d:
        shutil.copy(WEIGHTS, os.path.join(d.dir, "mlp.safetensors"))
        with open(os.path.join(d.dir, "model.json"), "w") as f:
            json.dump(dict(MLP, preprocess=PRE), f)
        with open(os.path.join(d.dir, "model.pt"), "wb") as f:
            f.write(TORCH_ZIP)
        with open(os.path.join(d.dir, "legacy.pt"), "wb") as f:
            f.write(TORCH_PICKLE)
        rnd = random.Random(3)
        write_npy(os.path.join(d.dir, "img.npy"), "|u1", (64, 28, 28),
                  [rnd.randrange(256) for _ in range(64 * 784)])
        write_npy(os.path.join(d.dir, "lab.npy"), "<i8", (64,), [i % 10 for i in range(64)])
        data = {"format": "npy", "train": {"images": "img.npy", "labels": "lab.npy"}}

        # torch.save files as weights.
        for name, what in (("model.pt", "zip archive"), ("legacy.pt", "pickle")):
            r = d.post("/v1/models", dict(MLP, name="pt", weights=name))
            code, field, detail = problem(r)
            t.ok(r.status == 400 and code == "BAD_FILE_FORMAT" and field == "/weights" and
                 "PyTorch torch.save file (%s" % what in detail and "vvd.export(" in detail,
                 "POST /v1/models with a torch.save %s as weights: 400 at /weights saying what "
                 "it is and how to export" % what, r)
            r = d.post("/v1/runs", {"kind": "compress", "model": dict(MLP, weights=name),
                                    "layers": ["fc2"], "lambda_ratio": 0.1, "data": data})
            code, field, detail = problem(r)
            t.ok(r.status == 400 and code == "BAD_FILE_FORMAT" and field == "/model/weights" and
                 "torch.save" in detail,
                 "POST /v1/runs naming a torch.save %s as model.weights: 400 at /model/weights "
                 "when submitted" % what, r)

        r = d.post("/v1/models", dict(MLP, name="fm", weights="mlp.safetensors", preprocess=PRE))
        t.eq(r.status, 201, "POST /v1/models loads the MLP as fm")
        models = {
            "a resident model": "fm",
            "a spec file": {"spec": "model.json", "weights": "mlp.safetensors"},
            "an inline architecture": dict(MLP, weights="mlp.safetensors"),
        }
        for what, model in models.items():
            base = {"kind": "compress", "model": model, "lambda_ratio": 0.1, "data": data}
            for layers, field, words, why in (
                    (["fc9"], "/layers/0", ["'fc9'", "no layer", "fc2, fc3"], "an unknown name"),
                    (["fc2", "fc1"], "/layers/1", ["'fc1' is fed by the input: it has no hidden "
                                                   "neurons to delete", "fc2, fc3"],
                     "a linear layer fed by the input")):
                r = d.post("/v1/runs", dict(base, layers=layers))
                code, f, detail = problem(r)
                t.ok(r.status == 400 and code == "INVALID_PARAMETER_VALUE" and f == field and
                     all(w in detail for w in words),
                     "%s, %s: 400 at %s listing the layers that can be compressed"
                     % (what, why, field), r)
        r = d.post("/v1/runs", {"kind": "compress", "lambda_ratio": 0.1, "data": data,
                                "model": {"arch": "vgg19_cifar", "width_div": 16},
                                "layers": ["features.0"]})
        code, f, detail = problem(r)
        t.ok(r.status == 400 and f == "/layers/0" and
             "no channels to delete in front of it" in detail and
             "features.3, features.7" in detail and
             "classifier.1, classifier.4, classifier.6" in detail,
             "the first conv layer (fed by the input): 400 at /layers/0, no channels to "
             "delete, listing VGG's conv and classifier layers", r)
        vgg = {"arch": "vgg19_cifar", "width_div": 16}
        for extra, field, words, what in (
                ({"layers": ["features.49"], "positions_per_image": 5}, "/positions_per_image",
                 ["5 positions exceed the 2 x 2 output map of layer features.49"],
                 "more positions per image than the conv's output map"),
                ({"layers": "all_conv", "positions_per_image": 0}, "/positions_per_image",
                 ["integer >= 1"], "zero positions per image"),
                ({"layers": "all_conv", "positions_per_image": "some"}, "/positions_per_image",
                 ["\"all\""], "positions per image that is neither a number nor \"all\""),
                ({"layers": ["features.3"], "target_active": 0.5}, "/target_active", [],
                 "a fractional target_active"),
                ({"layers": ["features.1"]}, "/layers/0", ["batchnorm2d layer, not linear or "
                                                          "conv2d"], "a batch norm layer")):
            r = d.post("/v1/runs", dict({"kind": "compress", "lambda_ratio": 0.1, "data": data,
                                         "model": vgg}, **extra))
            code, f, detail = problem(r)
            t.ok(r.status == 400 and f == field and all(w in detail for w in words),
                 "%s: 400 at %s" % (what, field), r)
        r = d.post("/v1/runs", {"kind": "compress", "lambda_ratio": 0.1, "data": data,
                                "model": {"arch": "mlp", "input": [1, 28, 28],
                                          "sizes": [784, 64, 10]}, "layers": "all_conv"})
        code, f, detail = problem(r)
        t.ok(r.status == 400 and f == "/layers" and "no conv2d layer fed by the channels" in detail,
             "all_conv on an MLP: 400 at /layers", r)
        r = d.post("/v1/runs", {"kind": "compress", "lambda_ratio": 0.1, "data": data,
                                "model": {"arch": "mlp", "input": [1, 28, 28],
                                          "sizes": [784, 10]}, "layers": "all_linear"})
        code, f, detail = problem(r)
        t.ok(r.status == 400 and f == "/layers" and "no linear layer fed by hidden" in detail,
             "all_linear on a model whose only linear layer is fed by the input: 400 at /layers",
             r)
        r = d.post("/v1/sweeps", {"base": {"kind": "compress", "model": "fm", "layers": ["fc1"],
                                           "data": data},
                                  "grid": {"lambda_ratio": [0.1, 0.2]}})
        code, f, detail = problem(r)
        t.ok(r.status == 400 and f == "/base/layers/0" and "fed by the input" in detail,
             "a sweep whose base names fc1 of a resident model: 400 at /base/layers/0", r)
        # The embedded default model, not trained yet: its preset's layers.
        r = d.post("/v1/runs", {"kind": "compress", "model": "fmnist-mlp", "layers": ["fc1"],
                                "lambda_ratio": 0.1, "data": data})
        code, f, detail = problem(r)
        t.ok(r.status == 400 and f == "/layers/0" and "fc2, fc3" in detail,
             "the untrained default model, fc1: 400 at /layers/0 (its preset's layers)", r)
        runs = d.get("/v1/runs").json().get("runs")
        t.ok(runs == [], "no run was queued by any refused spec (not even the default model's "
             "training)", runs)
        # A valid run on each kind of model is accepted and finishes.
        for what, model in models.items():
            r = d.post("/v1/runs", {"kind": "compress", "model": model, "layers": ["fc3"],
                                    "lambda_ratio": 0.1, "data": data, "finetune": False,
                                    "baseline": False})
            if not t.ok(r.status == 201, "%s, layers [fc3]: 201" % what, r):
                continue
            d.wait_end(r.json()["id"], deadline=300)
            run = d.run(r.json()["id"])
            t.ok(run["state"] == "FINISHED", "%s, layers [fc3]: FINISHED" % what, run.get("error"))


def main():
    tmp = tempfile.mkdtemp(prefix="vvd-edges-")
    try:
        forward_cases(tmp)
        layer_cases(tmp)
    except Exception as e:  # a crash of the harness is a failed test point
        import traceback
        t.ok(False, "the test harness ran to its end: %r" % e, traceback.format_exc())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
