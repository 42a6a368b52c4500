#!/usr/bin/python3
"""Reference side of bench/bench_lasso.sh (Debian's python3: numpy, sklearn, torch).

  reference.py sklearn PHI PSI LAMBDA REL_GAP   scikit-learn MultiTaskLasso to REL_GAP
  reference.py adam PHI PSI LAMBDA SECONDS MU   the paper's Adam-prox (PyTorch CPU) for SECONDS
  reference.py gap PHI PSI LAMBDA V.npy         vvd's certificate for a given V (D x K)
  reference.py dgemm N                          OpenBLAS dgemm GFLOP/s on N x N x N (numpy)

Each prints one JSON line.  Timings include reading the .npy files.
"""
import json
import sys
import time

import numpy as np


def certificate(phi, psi, lam, v):
    """objective, gap, rel_gap of V (D x K) as vvd defines them (DESIGN.md section 1)."""
    n = phi.shape[0]
    x = phi.astype(np.float64)
    y = psi.astype(np.float64)
    r = y - x @ v.T
    c = float(np.sum(y * y))
    r2 = float(np.sum(r * r))
    m = (x.T @ r) / n                      # K x D
    mmax = float(np.max(np.linalg.norm(m, axis=1)))
    s = min(1.0, lam / mmax) if mmax > 0 else 1.0
    primal = r2 / (2 * n) + lam * float(np.sum(np.linalg.norm(v, axis=0)))
    yr = float(np.sum(y * r))
    dual = (2 * s * yr - s * s * r2) / (2 * n)
    gap = primal - dual
    return primal, gap, gap / (c / (2 * n)), int(np.sum(np.linalg.norm(v, axis=0) > 1e-7))


def main():
    cmd = sys.argv[1]
    if cmd == "dgemm":
        n = int(sys.argv[2])
        a = np.random.default_rng(0).standard_normal((n, n))
        a @ a
        t = time.perf_counter()
        reps = 3
        for _ in range(reps):
            a @ a
        dt = time.perf_counter() - t
        print(json.dumps({"dgemm_gflops": 2.0 * reps * n ** 3 / dt * 1e-9}))
        return
    if cmd == "adam":
        import torch  # imported before the clock starts: only the method is timed
    t0 = time.perf_counter()
    phi = np.load(sys.argv[2])
    psi = np.load(sys.argv[3])
    lam = float(sys.argv[4])
    if cmd == "sklearn":
        from sklearn.linear_model import MultiTaskLasso
        target = float(sys.argv[5])
        # scikit-learn stops when its unscaled gap <= tol ||Y||^2, i.e. rel_gap <= 2 tol.
        m = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=target / 2, max_iter=100000)
        m.fit(phi, psi)
        secs = time.perf_counter() - t0
        obj, gap, rel, act = certificate(phi, psi, lam, m.coef_)
        print(json.dumps({"seconds": secs, "objective": obj, "rel_gap": rel, "active": act,
                          "n_iter": int(m.n_iter_)}))
    elif cmd == "adam":
        budget, mu = float(sys.argv[5]), float(sys.argv[6])
        d, k = psi.shape[1], phi.shape[1]
        lam_paper = 2 * lam / d
        torch.manual_seed(0)
        x = torch.from_numpy(np.ascontiguousarray(phi, dtype=np.float32))
        y = torch.from_numpy(np.ascontiguousarray(psi, dtype=np.float32))
        model = torch.nn.Linear(k, d, bias=False)  # default init, as the paper's script
        opt = torch.optim.Adam(model.parameters(), lr=mu)
        loss_fn = torch.nn.MSELoss()
        its = 0
        while time.perf_counter() - t0 < budget:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                w = model.weight
                a = torch.clamp(1 - mu * lam_paper / (torch.linalg.norm(w, dim=0) + 1e-8), min=0)
                w.mul_(a)
            its += 1
        v = model.weight.detach().numpy().astype(np.float64)
        obj, gap, rel, act = certificate(phi, psi, lam, v)
        print(json.dumps({"seconds": time.perf_counter() - t0, "iterations": its,
                          "objective": obj, "rel_gap": rel, "active": act}))
    elif cmd == "gap":
        v = np.load(sys.argv[5]).astype(np.float64)
        obj, gap, rel, act = certificate(phi, psi, lam, v)
        print(json.dumps({"objective": obj, "rel_gap": rel, "active": act}))


if __name__ == "__main__":
    main()
