#!/usr/bin/env python3
"""The paper's Adam-prox loop on the problem tests/gpu/lasso_bench.c wrote,
in PyTorch on the same GPU, beside vvd's certified FISTA
(tests/gpu/device-check.sh).

Usage: adam_prox_torch.py DIR [--seconds S] [--mu MU] [--eval-every K] [--json OUT]

DIR holds phi.f32 (N x K), psi.f32 (N x D), row-major float32, and
problem.json (n, k, d, lambda, and vvd's own numbers).

The loop is prox_gradient.train_mse_pytorch as the paper's code has it
(reference/paper.md 4.5): float32; nn.Linear(K, D) with PyTorch's default
initialisation, its bias 0 and frozen (the bench's outputs have no bias);
Adam(lr = mu) with the default betas and eps; each iteration one full-batch
MSELoss step, then every column v_i of V shrunk by max(0, 1 - mu lambda_paper
/ (||v_i|| + 1e-8)), lambda_paper = 2 lambda / D.  One liberty, in PyTorch's
favour: the per-column Python loop is vectorised.

Every K iterations the duality-gap certificate of the current V is computed
in float64 from G = Phi^T Phi, Bt = Phi^T Psi and c = ||Psi||^2, with the
formula vvd uses (core/gram.c), and printed; the time it takes is not
counted as Adam's.  The loop runs for S seconds of Adam time (or until
rel_gap <= the tolerance vvd met).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch


def certificate(G, Bt, c, n, lam, W):
    """vvd's certificate of W (K x D, float64): objective, rel_gap, active."""
    GW = G @ W
    wb = float((W * Bt).sum())
    wgw = float((W * GW).sum())
    r2 = max(c - 2 * wb + wgw, 0.0)
    wn = W.norm(dim=1)
    gn = float(wn.sum())
    mmax = float((Bt - GW).norm(dim=1).max()) / n
    primal = r2 / (2 * n) + lam * gn
    sc = lam / mmax if mmax > lam else 1.0
    dual = (2 * sc * (c - wb) - sc * sc * r2) / (2 * n)
    gap = primal - dual
    return primal, gap / (c / (2 * n)), int((wn > 1e-7).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--mu", type=float, default=1e-3)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--json")
    a = ap.parse_args()
    prob = json.load(open(os.path.join(a.dir, "problem.json")))
    n, k, d, lam = prob["n"], prob["k"], prob["d"], prob["lambda"]
    tol = max(prob.get("vvd_rel_gap", 1e-6), 1e-12)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "CPU"
    print("Adam-prox (the paper's loop) in PyTorch %s on %s: N=%d K=%d D=%d, lambda %.6g, mu %g"
          % (torch.__version__, name, n, k, d, lam, a.mu))
    t0 = time.monotonic()
    phi = torch.from_numpy(np.fromfile(os.path.join(a.dir, "phi.f32"), dtype=np.float32)
                           .reshape(n, k)).to(dev)
    psi = torch.from_numpy(np.fromfile(os.path.join(a.dir, "psi.f32"), dtype=np.float32)
                           .reshape(n, d)).to(dev)
    p64 = phi.double()
    G = p64.T @ p64
    Bt = p64.T @ psi.double()
    del p64
    c = float((psi.double() ** 2).sum())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    print("load and float64 statistics for the certificate: %.2f s (not counted)"
          % (time.monotonic() - t0))

    torch.manual_seed(0)
    lin = torch.nn.Linear(k, d, bias=True).to(dev)
    with torch.no_grad():
        lin.bias.zero_()
    lin.bias.requires_grad_(False)
    opt = torch.optim.Adam([lin.weight], lr=a.mu)
    mse = torch.nn.MSELoss()
    thr = a.mu * (2 * lam / d)
    x, y = phi.T, psi.T  # the paper's layout: features K x N, outputs D x N
    adam_s, it, best = 0.0, 0, (float("inf"), 0.0, 0)
    trace = []
    while adam_s < a.seconds:
        if dev.type == "cuda":
            torch.cuda.synchronize()
        ta = time.monotonic()
        for _ in range(a.eval_every):
            opt.zero_grad(set_to_none=True)
            out = lin.weight @ x + lin.bias[:, None]
            loss = mse(out, y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                v = lin.weight  # D x K: the columns v_i are the neurons
                nrm = v.norm(dim=0)
                v.mul_(torch.clamp(1 - thr / (nrm + 1e-8), min=0))
            it += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        adam_s += time.monotonic() - ta
        with torch.no_grad():
            obj, rel, act = certificate(G, Bt, c, n, lam, lin.weight.detach().double().T)
        trace.append({"iteration": it, "seconds": adam_s, "rel_gap": rel, "objective": obj,
                      "active": act})
        if rel < best[0]:
            best = (rel, adam_s, it)
        print("  %7.1f s  iteration %6d  mse %.6g  rel_gap %.3e  objective %.10g  active %d"
              % (adam_s, it, float(loss), rel, obj, act))
        sys.stdout.flush()
        if rel <= tol:
            break
    per = 1e3 * adam_s / max(it, 1)
    print("Adam-prox: %d iterations in %.1f s (%.1f ms each); best rel_gap %.3e (after %.1f s, "
          "iteration %d), never certified below %.1e" % (it, adam_s, per, best[0], best[1],
                                                         best[2], tol)
          if best[0] > tol else
          "Adam-prox: rel_gap %.3e <= %.1e after %.1f s (%d iterations, %.1f ms each)"
          % (best[0], tol, best[1], best[2], per))
    vs = prob.get("vvd_seconds_solve")
    if vs:
        print("vvd (FISTA, float64, resident): rel_gap %.3e in %.2f s of solve, %.2f s from the "
              "rows; objective %.10g vs Adam-prox's best %.10g"
              % (prob["vvd_rel_gap"], vs, prob["vvd_seconds_total"], prob["vvd_objective"],
                 min(t["objective"] for t in trace)))
        if best[0] <= tol:
            print("time to the same certificate: Adam-prox %.1f s / vvd %.2f s = %.1fx"
                  % (best[1], vs, best[1] / vs))
        else:
            print("Adam-prox ran %.1f s (%.0fx vvd's solve) and did not reach vvd's certificate"
                  % (adam_s, adam_s / vs))
    if a.json:
        json.dump({"device": name, "mu": a.mu, "iterations": it, "seconds": adam_s,
                   "ms_per_iteration": per, "best_rel_gap": best[0], "trace": trace,
                   "vvd": {k2: v2 for k2, v2 in prob.items() if k2.startswith("vvd_")}},
                  open(a.json, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
