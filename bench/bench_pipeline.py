#!/usr/bin/env python3
"""The compress pipeline end to end: vvd against PyTorch + scikit-learn.

Compresses every linear layer fed by hidden neurons ("all_linear":
classifier.4 and classifier.6) of VGG-19 for CIFAR-10, the paper's way
(independent layers, the lasso's weights, no refit, no fine-tuning, no
baseline), each layer's multi-task lasso solved to rel_gap 1e-6, with the
accuracy on the training and test images before and after.  Not run in CI.

- vvd: one `vvd run` of a compress spec (wall time of the process).
- reference: PyTorch computes the features (one eval-mode pass over the
  training images with hooks on the compressed layers, one over the test
  images), scikit-learn's MultiTaskLasso solves each layer (alpha = vvd's
  lambda, no intercept, Psi minus the layer's bias, tol = rel_gap / 2, which
  is sklearn's dual-gap test tol * ||Y||_F^2 on its N-scaled objective), and
  the accuracy after is computed from the captured classifier inputs.  Its
  time runs from reading the data set files to the accuracies after.

The network has random weights made here (PyTorch's default initialisation
from --seed, batch-norm statistics set by one training-mode pass over 512
images), written as a .safetensors state_dict that both sides load; the
images are random CIFAR-10 binary batches (no downloads).

    python3 bench/bench_pipeline.py [--n 10000] [--n-test 2000] [--width-div 1]
                                    [--lambda-ratio 0.1] [--rel-gap 1e-6]

Prints the machine, its load, the OpenBLAS kernel, both times, the ratio
(target >= 10x) and, per layer, the neurons each kept and its certificate.
"""
import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Both sides on the OpenBLAS kernels vvd picks for this CPU (SkylakeX with
# AVX-512, else Haswell), set before numpy or torch loads OpenBLAS.
if "OPENBLAS_CORETYPE" not in os.environ:
    with open("/proc/cpuinfo") as _f:
        _flags = next((l for l in _f if l.startswith("flags")), "").split()
    os.environ["OPENBLAS_CORETYPE"] = "SkylakeX" if "avx512f" in _flags else "Haswell"


def write_cifar(d, n_train, n_test, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    os.makedirs(d, exist_ok=True)
    per = [n_train // 5 + (1 if i < n_train % 5 else 0) for i in range(5)]
    for name, n in [("data_batch_%d.bin" % (i + 1), per[i]) for i in range(5)] + [
            ("test_batch.bin", n_test)]:
        rec = rng.integers(0, 256, size=(n, 3073), dtype=np.uint8)
        rec[:, 0] = rng.integers(0, 10, size=n, dtype=np.uint8)
        rec.tofile(os.path.join(d, name))


def read_cifar(d, n_train, n_test):
    import numpy as np
    tr = np.concatenate([np.fromfile(os.path.join(d, "data_batch_%d.bin" % (i + 1)),
                                     dtype=np.uint8).reshape(-1, 3073) for i in range(5)])[:n_train]
    te = np.fromfile(os.path.join(d, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)[:n_test]
    return tr, te


def vgg19(div, classes=10):
    import torch.nn as nn
    cfg = [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0,
           512, 512, 512, 512, 0]
    layers, c = [], 3
    for w in cfg:
        if not w:
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers += [nn.Conv2d(c, w // div, 3, 1, 1, bias=False), nn.BatchNorm2d(w // div),
                   nn.ReLU(inplace=True)]
        c = w // div
    h = 512 // div

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(c, h), nn.ReLU(True),
                                            nn.Dropout(), nn.Linear(h, h), nn.ReLU(True),
                                            nn.Linear(h, classes))

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))
    return Net()


def save_safetensors(sd, path):
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        b = v.detach().float().contiguous().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


def to_tensor(rec):
    import torch
    x = torch.from_numpy(rec[:, 1:].reshape(-1, 3, 32, 32).astype("float32") / 255.0)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.from_numpy(rec[:, 0].astype("int64"))


def reference(net, cdir, a, layers):
    """PyTorch features + scikit-learn MultiTaskLasso; returns (seconds, info)."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.linear_model import MultiTaskLasso
    t0 = time.time()
    tr, te = read_cifar(cdir, a.n, a.n_test)
    mods = dict(net.named_modules())
    first = min(int(n.split(".")[1]) for n in layers)
    # The input of the linear layer feeding the first compressed one (the
    # trunk), and each compressed layer's input and output.
    trunk_mod = mods["classifier.%d" % (first - 3)]
    cap = {}

    def hook(name):
        def f(m, inp, out):
            cap.setdefault(name, []).append((inp[0].detach().clone(), out.detach().clone()))
        return f
    hs = [mods[n].register_forward_hook(hook(n)) for n in layers]
    hs.append(trunk_mod.register_forward_hook(hook("trunk")))

    def run(rec):
        cap.clear()
        x, y = to_tensor(rec)
        logits = []
        with torch.no_grad():
            for s in range(0, len(x), a.batch):
                logits.append(net(x[s:s + a.batch]))
        z = torch.cat(logits)
        out = {k: (torch.cat([p[0] for p in v]), torch.cat([p[1] for p in v]))
               for k, v in cap.items()}
        return z, y, out

    def acc_loss(z, y):
        return (z.argmax(1) == y).float().mean().item(), F.cross_entropy(z, y).item()
    z, ytr, ftr = run(tr)
    before_tr = acc_loss(z, ytr)
    zt, yte, fte = run(te)
    before_te = acc_loss(zt, yte)
    t_feat = time.time() - t0
    for h in hs:
        h.remove()
    info, newW = {}, {}
    for n in layers:
        phi, psi = ftr[n]
        X = phi.double().numpy()
        b = mods[n].bias.detach().double().numpy()
        Y = psi.double().numpy() - b
        lam_max = np.sqrt(((X.T @ Y) ** 2).sum(1)).max() / len(X)
        lam = a.lambda_ratio * lam_max
        t1 = time.time()
        m = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=a.rel_gap / 2, max_iter=a.max_iter)
        m.fit(X, Y)
        W = m.coef_  # D x K
        kept = int((np.linalg.norm(W, axis=0) > 1e-7).sum())
        R = Y - X @ W.T
        obj = 0.5 / len(X) * (R ** 2).sum() + lam * np.linalg.norm(W, axis=0).sum()
        info[n] = {"kept": kept, "lambda": lam, "objective": obj, "n_iter": int(m.n_iter_),
                   "seconds": time.time() - t1,
                   "rel_gap": float(m.dual_gap_) / len(X) / ((Y ** 2).sum() / (2 * len(X)))}
        newW[n] = torch.from_numpy(W.astype("float32"))

    def after(feats, y):
        h = feats["trunk"][0]
        for i in range(first - 3, 7):
            mod = net.classifier[i]
            name = "classifier.%d" % i
            if name in newW:
                h = F.linear(h, newW[name], mod.bias)
            else:
                h = mod(h)
        return acc_loss(h, y)
    with torch.no_grad():
        after_tr, after_te = after(ftr, ytr), after(fte, yte)
    return time.time() - t0, {"features_seconds": t_feat, "layers": info,
                              "before": before_tr + before_te, "after": after_tr + after_te}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000, help="training images")
    ap.add_argument("--n-test", type=int, default=2000, help="test images")
    ap.add_argument("--width-div", type=int, default=1, help="1: full VGG-19")
    ap.add_argument("--lambda-ratio", type=float, default=0.1)
    ap.add_argument("--rel-gap", type=float, default=1e-6)
    ap.add_argument("--max-iter", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vvd", default=os.path.join(ROOT, "build", "vvd"))
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    out = os.path.join(ROOT, "bench", "out", "pipeline")
    os.makedirs(out, exist_ok=True)
    cdir = os.path.join(out, "cifar-%d-%d-%d" % (a.n, a.n_test, a.seed))
    if not os.path.exists(os.path.join(cdir, "test_batch.bin")):
        write_cifar(cdir, a.n, a.n_test, a.seed)
    torch.manual_seed(a.seed)
    net = vgg19(a.width_div)
    # Batch-norm statistics from one training-mode pass (cumulative average).
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(to_tensor(read_cifar(cdir, 512, 1)[0])[0])
    net.eval()
    wpath = os.path.join(out, "vgg19-div%d-seed%d.safetensors" % (a.width_div, a.seed))
    save_safetensors(net.state_dict(), wpath)
    layers = ["classifier.4", "classifier.6"]

    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print("machine: %s (%s), %d cores; load %s" % (cpu, platform.machine(), os.cpu_count(),
                                                 " ".join(open("/proc/loadavg").read().split()[:3])))
    print("problem: VGG-19 (width / %d), %d training and %d test random CIFAR-10 images, layers %s,"
          " lambda_ratio %g, rel_gap %g" % (a.width_div, a.n, a.n_test, ", ".join(layers),
                                            a.lambda_ratio, a.rel_gap))

    spec = {"kind": "compress",
            "model": {"arch": "vgg19_cifar", "width_div": a.width_div, "weights": wpath,
                      "preprocess": {"mean": MEAN, "std": STD}},
            "data": {"format": "cifar10", "dir": cdir, "max_train": a.n, "max_test": a.n_test},
            "layers": "all_linear", "lambda_ratio": a.lambda_ratio, "tol": a.rel_gap,
            "sequential": False, "refit": False, "finetune": False, "baseline": False,
            "batch_size": a.batch}
    sp = os.path.join(out, "spec.json")
    with open(sp, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ)
    env.setdefault("VVD_DATA_DIR", os.path.join(out, "data"))
    t0 = time.time()
    p = subprocess.run([a.vvd, "run", sp, "--out", os.path.join(out, "run")], env=env,
                       capture_output=True, text=True)
    t_vvd = time.time() - t0
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        sys.exit("vvd run failed (%d): %s" % (p.returncode, (p.stderr or p.stdout)[-2000:]))
    r = lines[-1]
    kern = subprocess.run([sys.executable, "-c", "import torch; torch.ones(64, 64) @ torch.ones(64, 64)"],
                          env=dict(os.environ, OPENBLAS_VERBOSE="2"), capture_output=True,
                          text=True)
    kern = kern.stdout + kern.stderr
    kern = kern.split("Core: ")[1].split()[0] if "Core: " in kern else "?"
    print("OpenBLAS kernel: vvd %s, PyTorch %s (OPENBLAS_CORETYPE=%s); PyTorch %s, %d threads, "
          "scikit-learn %s" % (r.get("blas"), kern, os.environ["OPENBLAS_CORETYPE"],
                               torch.__version__, torch.get_num_threads(),
                               __import__("sklearn").__version__))
    tr = r.get("trunk", {})
    print("vvd:       %7.1f s  (trunk %s x %s computed once in %.1f s, %s statistics passes and %s "
          "evaluations from it)" % (t_vvd, tr.get("train_rows"), tr.get("features"),
                                   tr.get("seconds", 0), tr.get("statistics_passes"),
                                   tr.get("evaluations")))
    for l in r["layers"]:
        print("  %-13s kept %4d of %4d  rel_gap %.2e  objective %.9g  stats %.2f s  solver %s"
              % (l["layer"], l["kept"], l["neurons"], l["rel_gap"], l["objective"],
                 l["stats_seconds"], l["solver_used"]))
    print("  accuracy train/test before %.4f/%.4f after %.4f/%.4f"
          % (r["before"]["train_acc"], r["before"].get("test_acc", 0), r["after"]["train_acc"],
             r["after"].get("test_acc", 0)))
    if a.skip_reference:
        return 0
    t_ref, info = reference(net, cdir, a, layers)
    print("reference: %7.1f s  (PyTorch features %.1f s)" % (t_ref, info["features_seconds"]))
    for n, l in info["layers"].items():
        print("  %-13s kept %4d           rel_gap %.2e  objective %.9g  sklearn %.1f s, %d epochs"
              % (n, l["kept"], l["rel_gap"], l["objective"], l["seconds"], l["n_iter"]))
    print("  accuracy train/test before %.4f/%.4f after %.4f/%.4f"
          % (info["before"][0], info["before"][2], info["after"][0], info["after"][2]))
    print("ratio (reference / vvd): %.1fx (target >= 10x: %s)"
          % (t_ref / t_vvd, "met" if t_ref / t_vvd >= 10 else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
