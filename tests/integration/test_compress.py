#!/usr/bin/env python3
"""Compression of a trained network (kind "compress", experiment 3 of the
paper) through `vvd run` and through the daemon, in TAP.

The network is tests/fixtures/fmnist/mlp_128_64.safetensors, a 784-128-64-10
MLP trained by PyTorch on Debian's Fashion-MNIST (gen_fmnist_mlp.py), with
PyTorch's own accuracy and cross-entropy of it in mlp_128_64.json: vvd's
"before" numbers must equal them.  The exported model's logits, computed by
`vvd forward` from its files alone, must equal a pure-Python forward pass of
the original network with each compressed layer's weight replaced by V (the
deleted neurons' columns zero).  Bad specs get clear errors naming the field.

Usage: test_compress.py VVD FIXTURES_DIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, Tap, expect_failure, vvd_run, write_cifar10  # noqa: E402

t = Tap()
VVD, FIX = sys.argv[1], sys.argv[2]
WEIGHTS = os.path.join(FIX, "fmnist", "mlp_128_64.safetensors")
REF = json.load(open(os.path.join(FIX, "fmnist", "mlp_128_64.json")))
FMNIST = os.environ.get("VV_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
PRE = {"mean": [0.286], "std": [0.353]}


def model(**kw):
    m = {"arch": "mlp", "input": [1, 28, 28], "sizes": [784, 128, 64, 10], "weights": WEIGHTS,
         "preprocess": PRE}
    m.update(kw)
    return m


def run(tmp, spec, name, env=None):
    return vvd_run(VVD, tmp, spec, name, env)


# ---- Pure-Python readers and the reference forward pass -------------------------------

def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    hlen = struct.unpack("<H", data[8:10])[0]
    header = eval(data[10:10 + hlen].decode("latin1"))  # numpy's own dict literal
    shape, descr = header["shape"], header["descr"]
    body = data[10 + hlen:]
    fmt = {"<f4": "f", "<f8": "d", "<i8": "q"}[descr]
    count = 1
    for s in shape:
        count *= s
    vals = struct.unpack("<%d%s" % (count, fmt), body[:count * struct.calcsize(fmt)])
    if len(shape) == 2:
        return [list(vals[i * shape[1]:(i + 1) * shape[1]]) for i in range(shape[0])]
    return list(vals)


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
        elif e["dtype"] == "F32":
            vals = list(struct.unpack("<%df" % (len(raw) // 4), raw))
        else:
            continue
        shape = e["shape"]
        if len(shape) == 2:
            vals = [vals[i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])]
        out[name] = vals
    return out


def idx_images(n):
    import gzip
    with gzip.open(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz")) as f:
        data = f.read(16 + 784 * n)
    return [[((data[16 + i * 784 + p] / 255.0) - PRE["mean"][0]) / PRE["std"][0]
             for p in range(784)] for i in range(n)]


def mlp_forward(w, x):
    h = x
    for i in (1, 2, 3):
        W, b = w["fc%d.weight" % i], w["fc%d.bias" % i]
        h = [sum(wr[c] * h[c] for c in range(len(h))) + br for wr, br in zip(W, b)]
        if i < 3:
            h = [v if v > 0 else 0.0 for v in h]
    return h


def write_npy_f32(path, rows):
    cols = len(rows[0])
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(rows), cols)
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        for r in rows:
            f.write(struct.pack("<%df" % cols, *r))


def close(a, b, tol):
    return abs(a - b) <= tol * max(1.0, abs(b))


def main():
    if not os.path.exists(os.path.join(FMNIST, "train-images-idx3-ubyte.gz")):
        t.ok(False, "Fashion-MNIST is installed (Debian package dataset-fashion-mnist) at " + FMNIST)
        return t.done()
    tmp = tempfile.mkdtemp(prefix="vvd-compress-")
    try:
        main_cases(tmp)
        other_formats(tmp)
        bad_input(tmp)
        daemon_cases(tmp)
        device_cases(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


def main_cases(tmp):
    # The paper's way (independent layers, the lasso's weights, no fine-tuning),
    # checked exactly against the original network; the default pipeline below.
    paper = {"sequential": False, "refit": False, "finetune": False, "baseline": False}
    spec = dict({"kind": "compress", "model": model(), "layers": "all_linear",
                 "lambda_ratio": 0.05, "data": {"format": "fashion-mnist", "max_train": 10000}},
                **paper)
    rc, r, lines = run(tmp, spec, "c1")
    t.ok(rc == 0 and r.get("state") == "FINISHED", "compress runs to FINISHED",
         lines[-3:] if lines else "")
    if rc != 0:
        return
    b, a = r["before"], r["after"]
    t.ok(close(b["train_acc"], REF["train10k"]["acc"], 1.5e-4) and
         close(b["test_acc"], REF["test"]["acc"], 1.5e-4),
         "accuracy before equals PyTorch's on the same network (train %.4f vs %.4f, test %.4f vs %.4f)"
         % (b["train_acc"], REF["train10k"]["acc"], b["test_acc"], REF["test"]["acc"]))
    t.ok(close(b["train_loss"], REF["train10k"]["loss"], 1e-5) and
         close(b["test_loss"], REF["test"]["loss"], 1e-5),
         "cross-entropy before equals PyTorch's (%.6f vs %.6f)" % (b["test_loss"], REF["test"]["loss"]))
    ls = {l["layer"]: l for l in r["layers"]}
    t.eq(sorted(ls), ["fc2", "fc3"], "all_linear picks the layers fed by hidden neurons")
    k1, k2 = ls["fc2"]["kept"], ls["fc3"]["kept"]
    t.ok(1 <= k1 < 128 and 1 <= k2 < 64, "neurons are deleted: %d of 128, %d of 64 kept" % (k1, k2))
    t.ok(all(l["stop_reason"] == "converged" and l["rel_gap"] <= 1e-6 for l in r["layers"]),
         "each layer's lasso is certified (rel_gap <= 1e-6)")
    want = 784 * k1 + k1 + k1 * k2 + k2 + k2 * 10 + 10
    t.eq(a["params"], want, "parameters after = 784*k1+k1 + k1*k2+k2 + k2*10+10")
    t.ok(b["params"] == 784 * 128 + 128 + 128 * 64 + 64 + 640 + 10, "parameters before")
    t.ok(0.5 < a["test_acc"] <= 1 and a["latency_ms"] > 0, "accuracy after %.4f (before %.4f)"
         % (a["test_acc"], b["test_acc"]))
    metric_keys = set()
    for ev in lines:
        if ev.get("event") == "metric":
            metric_keys.update(ev)
    t.ok({"train_acc", "test_acc", "params", "macs", "latency_ms", "rel_gap"} <= metric_keys,
         "metrics include the compression keys")
    # Which layer each solver metric belongs to: tagged on the event, and the
    # result's first_step..last_step of each layer hold exactly its metrics.
    solver_evs = [ev for ev in lines if ev.get("event") == "metric" and "rel_gap" in ev]
    t.ok(solver_evs and all(ev.get("layer") in ("fc2", "fc3") for ev in solver_evs)
         and not any("layer" in ev for ev in lines
                     if ev.get("event") == "metric" and "rel_gap" not in ev),
         "every solver metric names its layer; the evaluation metrics name none")
    spans_ok = True
    for l in r["layers"]:
        steps = [ev["step"] for ev in solver_evs if ev.get("layer") == l["layer"]]
        spans_ok &= bool(steps) and l["first_step"] <= min(steps) and max(steps) <= l["last_step"]
    t.ok(spans_ok and r["layers"][0]["last_step"] <= r["layers"][1]["first_step"],
         "each layer's metric steps lie in its [first_step, last_step], in order",
         [(l["layer"], l.get("first_step"), l.get("last_step")) for l in r["layers"]])
    stats = [ev for ev in lines if ev.get("event") == "stats"]
    t.ok([ev.get("layer") for ev in stats] == ["fc2", "fc3"]
         and all(ev.get("step") == l["first_step"] for ev, l in zip(stats, r["layers"])),
         "the stats event of each layer names it and the step its solve starts at")
    # auto picks FISTA from 64 outputs on, block coordinate descent below (fc2
    # has 64, fc3 10); the run names each solver once, in layer order.
    t.ok(r.get("solver") == "auto" and r.get("solver_used") == "fista, bcd"
         and [l["solver_used"] for l in r["layers"]] == ["fista", "bcd"]
         and r.get("macs") == a["macs"],
         "the result names the solver auto chose (%s) and the multiply-adds after"
         % r.get("solver_used"))

    # Below fc1 (which feeds the first compressed layer) lies only a flatten:
    # no trunk to keep, the images are read directly.
    t.ok("trunk" not in r, "no trunk below a flatten alone", r.get("trunk"))
    t.ok(b.get("latency_batch") == 32 and a.get("latency_batch") == 32,
         "latency is measured on its own, on batches of 32")

    out = os.path.join(tmp, "c1")
    kept = json.load(open(os.path.join(out, "kept.json")))
    V2 = read_npy(os.path.join(out, "V_fc2.npy"))
    V3 = read_npy(os.path.join(out, "V_fc3.npy"))
    nz2 = [c for c in range(128) if any(row[c] != 0 for row in V2)]
    t.eq(kept["fc2"], nz2, "kept.json lists the nonzero columns of V_fc2")
    spec_out = json.load(open(os.path.join(out, "model.json")))
    widths = [l.get("out_features") for l in spec_out["layers"] if l["type"] == "linear"]
    t.eq(widths, [k1, k2, 10], "the exported spec has the new widths")
    t.ok("weights" not in json.dumps(spec_out) and WEIGHTS not in json.dumps(spec_out),
         "the exported spec does not refer to the original model")

    # The exported model, alone in another folder, against the reference.
    alone = os.path.join(tmp, "alone")
    os.makedirs(alone)
    for f in ("model.json", "model.safetensors"):
        shutil.copy(os.path.join(out, f), alone)
    x = idx_images(8)
    write_npy_f32(os.path.join(alone, "x.npy"), x)
    p = subprocess.run([VVD, "forward", os.path.join(alone, "model.json"),
                        os.path.join(alone, "model.safetensors"), os.path.join(alone, "x.npy"),
                        os.path.join(alone, "y.npy")], capture_output=True, text=True, timeout=60)
    t.ok(p.returncode == 0, "vvd forward runs the exported model from its own files", p.stderr)
    w = read_safetensors(WEIGHTS)
    w["fc2.weight"], w["fc3.weight"] = V2, V3
    ref = [mlp_forward(w, xi) for xi in x]
    got = read_npy(os.path.join(alone, "y.npy")) if p.returncode == 0 else [[0] * 10] * 8
    scale = max(abs(v) for row in ref for v in row)
    err = max(abs(g - e) for gr, er in zip(got, ref) for g, e in zip(gr, er)) / scale
    t.ok(err < 1e-5, "exported logits = original with V and pruned columns zero (rel err %.1e)" % err)

    # The same compression on a device: the simulated one, and the CUDA
    # backend on the CUDA emulator when meson names it (the
    # forward passes and the statistics run there with the weights uploaded;
    # fc2's lasso, D = 64, runs resident there by FISTA; fc3's, D = 10, by
    # BCD on the host).
    emu = os.environ.get("VV_TEST_CUDA_EMULATOR")
    devices = [("sim:0", None)]
    if emu:
        devices.append(("cuda:0", {"VVD_CUDA_DRIVER": emu, "VVD_CUBLAS": emu}))
    for dev, env in devices:
        rc, rd, out = run(tmp, dict(spec, device=dev), "c1-" + dev.replace(":", ""), env)
        lsd = {l["layer"]: l for l in rd.get("layers", [])} if rc == 0 else {}
        t.ok(rc == 0 and all(lsd.get(n, {}).get("kept") == ls[n]["kept"]
                             and lsd[n]["stop_reason"] == "converged"
                             and abs(lsd[n]["objective"] - ls[n]["objective"])
                             <= 2e-6 * abs(ls[n]["objective"]) for n in ("fc2", "fc3")),
             "on %s: the same neurons kept, certified, objectives within the certificate (%s)"
             % (dev, [(n, lsd.get(n, {}).get("kept"), ls[n]["kept"]) for n in ls]),
             None if rc == 0 else (rc, out[-2000:]))
        t.ok(rc == 0 and rd.get("device") == dev
             and all(close(rd[p][q], r[p][q], 1e-6) for p in ("before", "after")
                     for q in ("train_acc", "test_acc", "train_loss", "test_loss")),
             "on %s the accuracies and losses before and after are the CPU's (%s)"
             % (dev, {p: rd.get(p, {}).get("test_acc") for p in ("before", "after")}))
    # Refit, sequential and a neuron budget.
    rc, r2, _ = run(tmp, dict(spec, sequential=True, refit=True), "c2")
    t.ok(rc == 0 and r2["sequential"] and all(l["refit"] for l in r2["layers"]),
         "sequential compression with refit runs")
    t.ok(rc == 0 and not r2["layers"][1]["stats_cached"],
         "sequential features of the second layer come from the compressed network")
    rc, r3, _ = run(tmp, {"kind": "compress", "model": model(), "layers": ["fc3"],
                          "target_active": 12, "data": {"format": "fashion-mnist",
                                                        "max_train": 5000}}, "c3")
    t.ok(rc == 0 and 1 <= r3["layers"][0]["kept"] <= 12,
         "target_active 12 keeps at most 12 neurons (%s)" % (r3.get("layers") or [{}])[0].get("kept"))
    rc, r4, _ = run(tmp, dict(spec, lambda_ratio=1.0), "c4")
    t.ok(rc == 0 and all(l["kept"] == 1 and "note" in l for l in r4["layers"]),
         "lambda = lambda_max never removes every neuron: one is kept, with a note")

    default_pipeline(tmp)


def default_pipeline(tmp):
    """The default compress pipeline: sequential layers, the refit, fine-tuning
    and the magnitude baseline at the same widths, each stage evaluated."""
    spec = {"kind": "compress", "model": model(), "layers": ["fc2", "fc3"], "lambda_ratio": 0.05,
            "data": {"format": "fashion-mnist", "max_train": 6000, "max_test": 2000},
            "finetune": {"epochs": 2}}
    rc, r, lines = run(tmp, spec, "pipeline")
    t.ok(rc == 0 and r.get("state") == "FINISHED", "the default pipeline runs to FINISHED",
         lines[-2:] if lines else "")
    if rc != 0:
        return
    st, bl = r.get("stages", {}), r.get("baseline", {})
    t.eq(sorted(st), ["before", "finetuned", "pruned", "refit"],
         "the result has every stage: before, pruned, refit, finetuned")
    t.ok(r["sequential"] and r["refit"] and not r["layers"][1]["stats_cached"] and
         "warning" not in r, "by default the layers are sequential and refitted, with no warning")
    t.ok(st["pruned"]["params"] == st["refit"]["params"] == st["finetuned"]["params"]
         < st["before"]["params"], "the stages share the smaller network's parameters (%d < %d)"
         % (st["pruned"]["params"], st["before"]["params"]))
    t.ok(st["refit"]["train_loss"] < st["pruned"]["train_loss"],
         "the refit lowers the training loss of the pruned network (%.4f -> %.4f)"
         % (st["pruned"]["train_loss"], st["refit"]["train_loss"]))
    t.ok(st["finetuned"]["train_loss"] < st["refit"]["train_loss"] and
         st["finetuned"]["epochs"] == 2,
         "fine-tuning lowers it further (%.4f -> %.4f)" % (st["refit"]["train_loss"],
                                                          st["finetuned"]["train_loss"]))
    t.eq(r["after"], {k: v for k, v in st["finetuned"].items() if k not in ("epochs", "seconds")},
         "after is the fine-tuned network's evaluation")
    t.ok(sorted(bl) == ["finetuned", "kept", "method", "pruned", "refit", "selection"] and
         bl["method"] == "magnitude" and
         [len(bl["kept"][n]) for n in ("fc2", "fc3")] == [l["kept"] for l in r["layers"]] and
         bl["pruned"]["params"] == st["pruned"]["params"],
         "the magnitude baseline has the same widths and goes through the same stages",
         bl.get("kept"))
    # The baseline's choice is by magnitude: the kept columns of fc3 have the
    # largest outgoing-weight norms of the original weight.
    w = read_safetensors(WEIGHTS)
    W3 = w["fc3.weight"]
    norms = [sum(W3[i][c] ** 2 for i in range(len(W3))) for c in range(len(W3[0]))]
    top = sorted(range(len(norms)), key=lambda c: (-norms[c], c))[:len(bl["kept"]["fc3"])]
    t.eq(sorted(top), bl["kept"]["fc3"], "the baseline keeps the largest outgoing-weight norms")
    fine = [ev for ev in lines if ev.get("event") == "metric" and ev.get("phase") == "finetune"]
    t.ok(len(fine) == 2 and [ev["epoch"] for ev in fine] == [1, 2],
         "fine-tuning reports a metric per epoch (phase finetune)")
    # The exported model is the fine-tuned one: vvd forward gives its accuracy.
    out = os.path.join(tmp, "pipeline")
    x = idx_images(8)
    write_npy_f32(os.path.join(out, "x.npy"), x)
    p = subprocess.run([VVD, "forward", os.path.join(out, "model.json"),
                        os.path.join(out, "model.safetensors"), os.path.join(out, "x.npy"),
                        os.path.join(out, "y.npy")], capture_output=True, text=True, timeout=60)
    t.ok(p.returncode == 0 and len(read_npy(os.path.join(out, "y.npy"))) == 8,
         "the exported (fine-tuned) model runs with vvd forward", p.stderr[-500:])
    rc, ri, _ = run(tmp, dict(spec, sequential=False, finetune=False, baseline=False), "indep")
    t.ok(rc == 0 and "independent mode" in ri.get("warning", "") and "finetuned" not in
         ri.get("stages", {}) and "baseline" not in ri,
         "independent mode is flagged; finetune and baseline can be turned off", ri.get("warning"))


def other_formats(tmp):
    """A narrow VGG-19 on CIFAR-10 binary batches and on .npy arrays that the
    test writes (random pixels, seeded initialisation): the convolutional path
    through a whole compress run."""
    cdir = os.path.join(tmp, "cifar")
    write_cifar10(cdir, 40, 30, seed=4)
    vgg = {"arch": "vgg19_cifar", "width_div": 16, "seed": 2,
           "preprocess": {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}}
    rc, r, lines = run(tmp, {"kind": "compress", "model": vgg, "layers": "all_linear",
                             "lambda_ratio": 0.3, "data": {"format": "cifar10", "dir": cdir}}, "cifar")
    ok = rc == 0 and r.get("state") == "FINISHED"
    t.ok(ok and r["n_train"] == 200 and r["n_test"] == 30 and
         [l["layer"] for l in r["layers"]] == ["classifier.4", "classifier.6"],
         "a narrow VGG-19 compresses on CIFAR-10 batches (200 train, 30 test images)",
         lines[-1:] if lines else "")
    if ok:
        t.ok(r["after"]["params"] < r["before"]["params"] and r["after"]["macs"] < r["before"]["macs"],
             "fewer parameters and multiply-adds after (%d -> %d)" % (r["before"]["params"],
                                                                     r["after"]["params"]))
        # The convolutions (up to classifier.1's input) run once on the
        # training and the test images; every statistics pass (classifier.4,
        # classifier.6, the baseline's classifier.6) and the evaluations before
        # fine-tuning (before, pruned, refit, the baseline's pruned and refit)
        # run only the classifier from there.
        tr = r.get("trunk", {})
        t.ok(tr.get("input_of") == "classifier.1" and tr.get("train_rows") == 200 and
             tr.get("test_rows") == 30 and tr.get("features") == 32 and
             tr.get("storage") == "memory" and tr.get("statistics_passes") == 3 and
             tr.get("evaluations") == 5 and tr.get("cached") is False,
             "the convolutions run once; the statistics and evaluations start from their output",
             tr)
        # Beyond the memory limit the trunk goes to a temporary file: the same run.
        quick = {"kind": "compress", "model": vgg, "layers": "all_linear", "lambda_ratio": 0.3,
                 "data": {"format": "cifar10", "dir": cdir}, "finetune": False, "baseline": False}
        rcm, rm, _ = run(tmp, quick, "cifar-mem")
        rcf, rf, _ = run(tmp, quick, "cifar-file", {"VVD_TRUNK_MEMORY": "0"})
        t.ok(rcm == 0 and rcf == 0 and rf.get("trunk", {}).get("storage") == "file" and
             rm.get("trunk", {}).get("storage") == "memory" and
             [l["kept"] for l in rf["layers"]] == [l["kept"] for l in rm["layers"]] and
             all(close(x[q], y[q], 1e-12) for x, y in zip(rf["layers"], rm["layers"])
                 for q in ("objective", "lambda_max")) and
             all(close(rf["stages"][p][q], rm["stages"][p][q], 1e-9) for p in rm["stages"]
                 for q in ("train_acc", "test_acc", "train_loss", "test_loss")),
             "with the trunk in a file: the same neurons, objectives and accuracies",
             rf.get("trunk"))
        t.ok(not [f for f in os.listdir(os.path.join(tmp, "cifar-file")) if f.startswith(".trunk")],
             "the trunk's temporary file is gone")
        # On a device the trunk stays in its memory, and the layers above run
        # there from it (the device's convolutions are im2col's, not
        # Winograd's: float32 rounding apart, the same run).
        # (The CUDA backend too, on the CUDA emulator when meson names it.)
        emu = os.environ.get("VV_TEST_CUDA_EMULATOR")
        for dev, env in [("sim:0", None)] + (
                [("cuda:0", {"VVD_CUDA_DRIVER": emu, "VVD_CUBLAS": emu})] if emu else []):
            rcv, rv, _ = run(tmp, dict(quick, device=dev), "cifar-" + dev.replace(":", ""), env)
            t.ok(rcv == 0 and rv.get("trunk", {}).get("storage") == "device" and
                 rv["trunk"].get("statistics_passes") == 2 and
                 rv["trunk"].get("evaluations") == 3 and
                 [l["kept"] for l in rv["layers"]] == [l["kept"] for l in rm["layers"]] and
                 all(abs(x["lambda_max"] - y["lambda_max"]) <= 1e-5 * y["lambda_max"]
                     for x, y in zip(rv["layers"], rm["layers"])) and
                 all(abs(rv["stages"][p][q] - rm["stages"][p][q]) <= 1e-5 for p in rm["stages"]
                     for q in ("train_acc", "test_acc", "train_loss", "test_loss")),
                 "on %s the trunk is kept in the device's memory: the same neurons, "
                 "lambda_max, accuracies and losses to 1e-5" % dev, rv.get("trunk") or rv)
        # Independent mode: every layer's inputs come from the original
        # network, so one pass over the data gives all the layers' statistics
        # (15 convs and 3 linear layers); with VVD_STATS_MEMORY=1 byte each
        # layer has a pass of its own, as when compressed alone.  The float32
        # features then come from forward passes over batches of other sizes
        # (BLAS's rounding depends on them), and the sums are in another
        # order: the statistics agree to float32 rounding.
        ind = dict(quick, layers="all", sequential=False, refit=False, lambda_ratio=0.2)
        rcs, rs, ls = run(tmp, ind, "cifar-shared")
        rce, re_, _ = run(tmp, ind, "cifar-each", {"VVD_STATS_MEMORY": "1"})
        rcd, rd, ld = run(tmp, dict(ind, device="sim:0"), "cifar-shared-dev")
        ok = rcs == 0 and rce == 0 and len(rs["layers"]) == 18
        t.ok(ok and all(l["stats_pass_layers"] == 18 for l in rs["layers"]) and
             all(l["stats_pass_layers"] == 1 for l in re_["layers"]) and
             [e.get("pass_layers") for e in ls if e.get("event") == "stats"] == [18] * 18,
             "independent mode: the 18 layers' statistics in one pass (one pass each when "
             "VVD_STATS_MEMORY allows one layer)", [l.get("stats_pass_layers") for l in
                                                    (rs.get("layers") or [])])
        t.ok(ok and [l["layer"] for l in rs["layers"]] == [l["layer"] for l in re_["layers"]] and
             all(abs(a["lambda_max"] - b["lambda_max"]) <= 1e-6 * b["lambda_max"] and
                 a["kept"] == b["kept"] and
                 abs(a["objective"] - b["objective"]) <= 1e-6 * b["objective"]
                 for a, b in zip(rs["layers"], re_["layers"])),
             "the shared pass's statistics are each layer's own: lambda_max and objectives "
             "to 1e-6 relative, the same channels and neurons kept",
             [(a["layer"], a["lambda_max"], b["lambda_max"], a["kept"], b["kept"])
              for a, b in zip(rs.get("layers", []), re_.get("layers", []))])
        t.ok(rcd == 0 and rd.get("device") == "sim:0" and
             [l["kept"] for l in rd["layers"]] == [l["kept"] for l in rs["layers"]] and
             all(l["stats_pass_layers"] == 18 and
                 abs(a["lambda_max"] - l["lambda_max"]) <= 1e-6 * a["lambda_max"]
                 for a, l in zip(rs["layers"], rd["layers"])),
             "the shared pass on a device (sim:0): forward passes and sums there, the same "
             "channels and neurons kept, lambda_max to 1e-6",
             ld[-2:] if rcd else [(a["lambda_max"], b["lambda_max"])
                                  for a, b in zip(rs["layers"], rd["layers"])])
    # The same images as .npy (N x C x H x W uint8) with int64 labels.
    imgs, labs = bytearray(), []
    with open(os.path.join(cdir, "data_batch_1.bin"), "rb") as f:
        data = f.read()
    for i in range(40):
        labs.append(data[i * 3073])
        imgs += data[i * 3073 + 1:(i + 1) * 3073]

    def npy(path, descr, shape, raw):
        header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
        header += " " * (63 - (len(header) + 10) % 64) + "\n"
        with open(path, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + raw)
    npy(os.path.join(tmp, "x.npy"), "|u1", "(40, 3, 32, 32)", bytes(imgs))
    npy(os.path.join(tmp, "y.npy"), "<i8", "(40,)", struct.pack("<40q", *labs))
    rc2, r2, lines2 = run(tmp, {"kind": "compress", "model": vgg, "layers": ["classifier.6"],
                                "lambda_ratio": 0.3, "data": {"format": "npy", "train": {
                                    "images": os.path.join(tmp, "x.npy"),
                                    "labels": os.path.join(tmp, "y.npy")}}}, "npy")
    rc3, r3, _ = run(tmp, {"kind": "compress", "model": vgg, "layers": ["classifier.6"],
                           "lambda_ratio": 0.3, "data": {"format": "cifar10", "dir": cdir,
                                                         "max_train": 40}}, "cifar40")
    t.ok(rc2 == 0 and rc3 == 0 and r2["before"]["train_acc"] == r3["before"]["train_acc"] and
         close(r2["before"]["train_loss"], r3["before"]["train_loss"], 1e-6) and
         r2["layers"][0]["kept"] == r3["layers"][0]["kept"],
         "the same 40 images as .npy give the same losses and the same kept neurons as CIFAR-10",
         lines2[-1:] if lines2 else "")


def bad_input(tmp):
    def expect(spec, name, field, words):
        expect_failure(t, VVD, tmp, spec, name, field, words)

    base = {"kind": "compress", "model": model(), "layers": ["fc3"], "lambda_ratio": 0.1,
            "data": {"format": "fashion-mnist", "max_train": 500}}
    expect(dict(base, model=model(sizes=[784, 100, 64, 10])), "wrong shapes", "/model/weights",
           ["fc1.weight", "[128, 784]", "[100, 784]"])
    expect(dict(base, layers=["fc9"]), "unknown layer", "/layers/0", ["no layer"])
    expect(dict(base, model={"arch": "alexnet_cifar64", "width_div": 32}, layers=["features.0"]),
           "first conv", "/layers/0", ["no channels to delete in front of it"])
    expect(dict(base, model={"arch": "vgg19_cifar", "width_div": 16}, layers=["classifier.6"]),
           "image size", "/data", ["1x28x28", "3x32x32"])
    trunc = os.path.join(tmp, "trunc-images.gz")
    import gzip
    with gzip.open(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz")) as f:
        head = f.read(16 + 784 * 10 + 100)
    with gzip.open(trunc, "wb") as f:
        f.write(head)
    expect(dict(base, data={"format": "idx", "train": {"images": trunc, "labels": os.path.join(
        FMNIST, "t10k-labels-idx1-ubyte.gz")}}), "truncated IDX", "/data/train/images", [trunc])
    nolam = {k: v for k, v in base.items() if k != "lambda_ratio"}
    expect(dict(nolam, path={"n": 3}), "path refused", "/path", ["sweep"])
    expect(nolam, "no lambda", "/lambda", ["target_active"])
    expect(dict(base, phi="x.npy"), "lasso data fields", "/phi", ["unknown field"])
    expect(dict(base, data={"format": "cifar10"}), "cifar10 without dir", "/data/dir", ["dir"])


def daemon_cases(tmp):
    with Daemon(VVD) as d:
        local = os.path.join(d.dir, "mlp.safetensors")
        shutil.copy(WEIGHTS, local)
        r = d.post("/v1/models", {"name": "fm", "arch": "mlp", "input": [1, 28, 28],
                                  "sizes": [784, 128, 64, 10], "weights": "mlp.safetensors",
                                  "preprocess": PRE})
        t.eq(r.status, 201, "POST /v1/models loads a model")
        lst = d.get("/v1/models").json()
        t.ok(lst["models"][0]["name"] == "fm" and lst["bytes"] == 4 * 109386,
             "GET /v1/models shows it and the memory it uses (%s bytes)" % lst.get("bytes"))
        r = d.post("/v1/models", {"name": "fm", "arch": "mlp", "sizes": [784, 10]})
        t.eq(r.status, 409, "a second model of the same name is a conflict")
        r = d.post("/v1/models", {"name": "bad", "arch": "mlp", "input": [1, 28, 28],
                                  "sizes": [784, 100, 64, 10], "weights": "mlp.safetensors"})
        t.ok(r.status == 400 and r.json()["field"] == "/weights", "a wrong-shape model load is a 400 naming /weights")
        r = d.post("/v1/models", {"name": "esc", "arch": "mlp", "sizes": [784, 10],
                                  "weights": "/etc/hostname"})
        t.eq(r.status, 403, "weights outside the data root are refused")
        # Independent layers: both layers' statistics are cached for the second run.
        spec = {"kind": "compress", "model": "fm", "layers": ["fc2", "fc3"], "lambda_ratio": 0.05,
                "data": {"format": "fashion-mnist", "max_train": 4000, "max_test": 2000},
                "sequential": False, "finetune": False}
        ids = [d.submit(spec)["id"], d.submit(dict(spec, lambda_ratio=0.1))["id"]]
        for i in ids:
            d.wait_end(i, deadline=300)
        runs = [d.run(i) for i in ids]
        t.ok(all(x["state"] == "FINISHED" for x in runs), "compress runs on a resident model finish")
        res = [x.get("result") or {} for x in runs]
        t.ok(res[1].get("layers") and all(l["stats_cached"] for l in res[1]["layers"]),
             "the second run reuses the cached statistics of both layers")
        names = {a["name"] for a in runs[0].get("artifacts", [])}
        t.ok({"model.safetensors", "model.json", "kept.json", "result.json"} <= names,
             "the exported model is among the run's artifacts")
        lr = d.get("/v1/runs?kind=compress").json()
        t.ok(len(lr.get("runs", [])) == 2, "the run history lists both compress runs")
        t.eq(d.req("DELETE", "/v1/models/fm").status, 200, "DELETE /v1/models/fm")
        r = d.post("/v1/runs", spec)
        t.ok(r.status == 400 and r.json().get("field") == "/model",
             "a run naming a deleted model is a 400 naming /model")
        t.ok(d.get("/health").json().get("models") == 0, "/health counts resident models")
        # A sweep's points share the trunk: the second run on a resident VGG
        # takes the first one's convolution outputs from the daemon's cache.
        write_cifar10(os.path.join(d.dir, "cifar"), 40, 30, seed=5)
        r = d.post("/v1/models", {"name": "vgg", "arch": "vgg19_cifar", "width_div": 16, "seed": 3,
                                  "preprocess": {"mean": [0.49, 0.48, 0.45],
                                                 "std": [0.25, 0.24, 0.26]}})
        t.eq(r.status, 201, "POST /v1/models loads a VGG with seeded weights")
        spec = {"kind": "compress", "model": "vgg", "layers": "all_linear",
                "data": {"format": "cifar10", "dir": "cifar"}, "lambda_ratio": 0.3,
                "finetune": False}
        ids = [d.submit(spec)["id"], d.submit(dict(spec, lambda_ratio=0.2))["id"]]
        for i in ids:
            d.wait_end(i, deadline=300)
        res = [d.run(i).get("result") or {} for i in ids]
        t.ok(res[0].get("trunk", {}).get("cached") is False and
             res[1].get("trunk", {}).get("cached") is True and
             res[1]["trunk"].get("evaluations") == 5 and
             all(res[1]["before"][q] == res[0]["before"][q]
                 for q in ("train_acc", "test_acc", "train_loss", "test_loss")),
             "the second run reuses the first one's trunk: the same evaluation before",
             [x.get("trunk") for x in res])


def device_cases(tmp):
    """A resident model's weights go to the device with its first run there
    and stay: the second run reuses them (the device's free memory does not
    move), and deleting the model frees them."""
    with Daemon(VVD, args=["--device", "sim:0"]) as d:
        shutil.copy(WEIGHTS, os.path.join(d.dir, "mlp.safetensors"))
        r = d.post("/v1/models", {"name": "fm", "arch": "mlp", "input": [1, 28, 28],
                                  "sizes": [784, 128, 64, 10], "weights": "mlp.safetensors",
                                  "preprocess": PRE})
        m0 = d.get("/v1/models").json()["models"][0]
        t.ok(r.status == 201 and m0["device"] == "cpu" and m0["device_bytes"] == 0,
             "a model just loaded is in host memory only", m0)
        spec = {"kind": "compress", "model": "fm", "layers": ["fc2", "fc3"], "lambda_ratio": 0.05,
                "data": {"format": "fashion-mnist", "max_train": 2000, "max_test": 1000}}
        free = []
        for ratio in (0.05, 0.1):
            i = d.submit(dict(spec, lambda_ratio=ratio))["id"]
            d.wait_end(i, deadline=300)
            run = d.run(i)
            free.append(d.get("/health").json()["device"]["memory_free"])
            t.ok(run["state"] == "FINISHED" and (run["result"] or {}).get("device") == "sim:0",
                 "compress on the device, lambda_ratio %g: FINISHED" % ratio, run.get("error"))
        m1 = d.get("/v1/models").json()["models"][0]
        t.ok(m1["device"] == "sim:0" and m1["device_bytes"] == 4 * 109386,
             "after a run the model's weights are on the device too (%s bytes)"
             % m1["device_bytes"], m1)
        t.ok(free[0] == free[1] and free[0] < 1 << 30,
             "the second run reuses them: the device's free memory is the same after both "
             "(%s bytes)" % free)
        d.req("DELETE", "/v1/models/fm")
        h = d.get("/health").json()["device"]
        t.eq(h["memory_free"], h["memory_total"], "deleting the model frees its device memory")


if __name__ == "__main__":
    sys.exit(main())
