#!/usr/bin/env python3
"""Compressing the embedded default model (fmnist-mlp, 784-1024-1024-10 on
Fashion-MNIST): vvd's certified selection against pruning by weight
magnitude at the same widths, both refitted and fine-tuned the same way, in
one run per lambda.  Not run in CI.

    python3 bench/bench_compress.py [--lambdas "0.06 0.045 0.03 0.015"] [--epochs 3]

Each point is one `vvd run` of a compress job (fc2 and fc3: the inputs of
both hidden layers) whose result carries both selections through every
stage (result.stages and result.baseline).  Prints the table and checks the
target: at most 5% of the parameters within 1 point of the original test
accuracy after fine-tuning, and vvd's selection ahead of the baseline at
equal widths.  The default model is trained on first use and cached in
VVD_DATA_DIR (default bench/out/compress/data).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(vvd, spec, out, env):
    path = os.path.join(out, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    p = subprocess.run([vvd, "run", path, "--out", os.path.join(out, "run")], env=env,
                       capture_output=True, text=True)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        sys.exit("vvd run failed (%d): %s" % (p.returncode, (p.stderr or p.stdout)[-2000:]))
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lambdas", default="0.06 0.045 0.03 0.015")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--vvd", default=os.path.join(ROOT, "build", "vvd"))
    a = ap.parse_args()
    out = os.path.join(ROOT, "bench", "out", "compress")
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("VVD_DATA_DIR", os.path.join(out, "data"))
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print("machine: %s, %d cores; load %s" % (cpu, os.cpu_count(),
                                              open("/proc/loadavg").read().split()[:3]))
    rows = []
    for lam in [float(x) for x in a.lambdas.split()]:
        t0 = time.time()
        r = run(a.vvd, {"kind": "compress", "model": "fmnist-mlp", "data": "fashion-mnist",
                        "layers": ["fc2", "fc3"], "lambda_ratio": lam,
                        "finetune": {"epochs": a.epochs}}, out, env)
        rows.append((lam, r, time.time() - t0))
    r0 = rows[0][1]
    print("OpenBLAS kernel: %s; fine-tuning: %d epochs of Adam (lr 1e-3, cosine), refit on"
          % (r0.get("blas"), a.epochs))
    before = r0["stages"]["before"]
    hdr = ("lambda_ratio", "widths", "params", "pruned", "refit", "finetuned", "magn. pruned",
           "magn. refit", "magn. finetuned", "seconds")
    fmt = "%-12s %-10s %-15s %-8s %-8s %-10s %-13s %-12s %-16s %s"
    print(fmt % hdr)
    print(fmt % ("(original)", "1024/1024", "%d" % before["params"], "", "", "%.4f" %
                 before["test_acc"], "", "", "", ""))
    ok_target = False
    wins = 0
    for lam, r, secs in rows:
        st, b = r["stages"], r["baseline"]
        w = "/".join(str(l["kept"]) for l in r["layers"])
        frac = st["pruned"]["params"] / before["params"]
        acc = lambda d, k: d[k]["test_acc"] if k in d else float("nan")
        print(fmt % ("%g" % lam, w, "%d (%.1f%%)" % (st["pruned"]["params"], 100 * frac),
                     "%.4f" % acc(st, "pruned"), "%.4f" % acc(st, "refit"),
                     "%.4f" % acc(st, "finetuned"), "%.4f" % acc(b, "pruned"),
                     "%.4f" % acc(b, "refit"), "%.4f" % acc(b, "finetuned"), "%.0f" % secs))
        drop = before["test_acc"] - acc(st, "finetuned")
        if frac <= 0.05 and drop <= 0.01:
            ok_target = True
        wins += acc(st, "finetuned") > acc(b, "finetuned")
    print("test accuracy on the 10,000 test images; widths: fc1's and fc2's outputs kept")
    print("target (<= 5%% of the parameters within 1 point after fine-tuning): %s"
          % ("met" if ok_target else "NOT met"))
    print("vvd's selection ahead of the magnitude baseline after fine-tuning at %d of %d widths"
          % (wins, len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
