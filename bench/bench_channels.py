#!/usr/bin/env python3
"""Channel pruning of a small CNN on Fashion-MNIST (the fmnist-cnn train
preset): vvd's certified channel selection (the group lasso on each conv
layer's unfolded inputs, doc/group-lasso.md) against L1-norm filter pruning
(Li et al., ICLR 2017: keep the filters of largest L1 norm) at the same
widths, both refitted and fine-tuned the same way, in one run per lambda.
Not run in CI.

    python3 bench/bench_channels.py [--lambdas "0.3 0.2 0.1"] [--epochs 2]

The network is trained first by `vvd run` of {"kind": "train", "preset":
"fmnist-cnn"} (cached in bench/out/channels/train).  Each point is one
`vvd run` of a compress job with layers "all_conv" whose result carries
both selections through every stage (result.stages, result.baseline); the
baseline's choice of the first layer is checked here against Li et al.'s
rule computed with numpy from the trained weights.  Prints channels kept per
layer, multiply-adds and parameters, and test accuracy after pruning, refit
and fine-tuning for both, with the machine, load and OpenBLAS kernel.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(vvd, spec, out, env):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    p = subprocess.run([vvd, "run", path, "--out", os.path.join(out, "run")], env=env,
                       capture_output=True, text=True)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        sys.exit("vvd run failed (%d): %s" % (p.returncode, (p.stderr or p.stdout)[-2000:]))
    return json.loads(lines[-1])


def l1_filters(path, name):
    """The L1 norm of each filter of conv `name` in a .safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    h = json.loads(data[8:8 + n])[name + ".weight"]
    a, b = h["data_offsets"]
    vals = struct.unpack("<%df" % ((b - a) // 4), data[8 + n + a:8 + n + b])
    out_ch = h["shape"][0]
    per = len(vals) // out_ch
    return [sum(abs(v) for v in vals[c * per:(c + 1) * per]) for c in range(out_ch)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lambdas", default="0.3 0.2 0.1")
    ap.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (both methods)")
    ap.add_argument("--positions", type=int, default=0,
                    help="positions_per_image (default: vvd's, 64 or all of a smaller map)")
    ap.add_argument("--vvd", default=os.path.join(ROOT, "build", "vvd"))
    a = ap.parse_args()
    out = os.path.join(ROOT, "bench", "out", "channels")
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ)
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print("machine: %s, %d cores; load %s" % (cpu, os.cpu_count(),
                                              open("/proc/loadavg").read().split()[:3]))
    tdir = os.path.join(out, "train")
    weights = os.path.join(tdir, "run", "model.safetensors")
    spec = os.path.join(tdir, "run", "model.json")
    if not os.path.exists(weights):
        t0 = time.time()
        tr = run(a.vvd, {"kind": "train", "preset": "fmnist-cnn"}, tdir, env)
        print("trained fmnist-cnn in %.0f s: test accuracy %.4f" % (time.time() - t0,
                                                                     tr.get("test_acc", 0)))
    rows = []
    for lam in [float(x) for x in a.lambdas.split()]:
        t0 = time.time()
        job = {"kind": "compress", "model": {"spec": spec, "weights": weights},
               "data": "fashion-mnist", "layers": "all_conv", "lambda_ratio": lam,
               "finetune": {"epochs": a.epochs}}
        if a.positions:
            job["positions_per_image"] = a.positions
        r = run(a.vvd, job, os.path.join(out, "l%g" % lam), env)
        rows.append((lam, r, time.time() - t0))
    r0 = rows[0][1]
    print("OpenBLAS kernel: %s; fine-tuning: %d epochs of Adam (lr 1e-3, cosine), refit on; "
          "positions per image: %s" % (r0.get("blas"), a.epochs, ", ".join(
              "%s %d" % (l["layer"], l.get("positions_per_image", 0)) for l in r0["layers"])))
    # Li et al.'s rule on the first layer, from the trained weights.
    first = r0["layers"][0]
    norms = l1_filters(weights, first["producer"])
    k = len(r0["baseline"]["kept"][first["layer"]])
    want = sorted(sorted(range(len(norms)), key=lambda c: (-norms[c], c))[:k])
    agree = want == r0["baseline"]["kept"][first["layer"]]
    print("baseline's channels of %s = Li et al.'s largest-L1 filters computed here: %s"
          % (first["producer"], "yes" if agree else "NO"))
    before = r0["stages"]["before"]
    hdr = ("lambda_ratio", "channels kept", "MACs", "params", "pruned", "refit", "finetuned",
           "L1 pruned", "L1 refit", "L1 finetuned", "seconds")
    fmt = "%-12s %-22s %-16s %-15s %-7s %-7s %-9s %-9s %-8s %-12s %s"
    print(fmt % hdr)
    widths = "/".join(str(l["channels"]) for l in r0["layers"])
    print(fmt % ("(original)", widths, "%.2fM" % (before["macs"] / 1e6), "%d" % before["params"],
                 "", "", "%.4f" % before["test_acc"], "", "", "", ""))
    wins = 0
    for lam, r, secs in rows:
        st, b = r["stages"], r["baseline"]
        w = "/".join(str(l["kept"]) for l in r["layers"])
        acc = lambda d, key: d[key]["test_acc"] if key in d else float("nan")
        m = st["pruned"]["macs"]
        print(fmt % ("%g" % lam, w, "%.2fM (%.2fx)" % (m / 1e6, before["macs"] / m),
                     "%d" % st["pruned"]["params"], "%.4f" % acc(st, "pruned"),
                     "%.4f" % acc(st, "refit"), "%.4f" % acc(st, "finetuned"),
                     "%.4f" % acc(b, "pruned"), "%.4f" % acc(b, "refit"),
                     "%.4f" % acc(b, "finetuned"), "%.0f" % secs))
        wins += acc(st, "finetuned") > acc(b, "finetuned")
    print("test accuracy on the 10,000 test images; channels: the outputs kept of the convs "
          "feeding each compressed layer (%s)" % ", ".join(l["producer"] for l in r0["layers"]))
    print("vvd's selection ahead of L1-norm filter pruning after fine-tuning at %d of %d widths"
          % (wins, len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
