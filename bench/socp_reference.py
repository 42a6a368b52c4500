#!/usr/bin/python3
"""cvxopt side of bench/bench_socp.sh (Debian's python3 with python3-cvxopt).

  socp_reference.py PHI.npy PSI.npy [REPS]

Solves  min sum_k ||v_k||  s.t.  Phi V^T = Psi  with cvxopt.solvers.socp
(abstol = reltol = feastol = 1e-9): variables x = (t_k, v_k) per column,
one second-order cone ||v_k|| <= t_k per column (G_k = -I), equality
matrix Phi (x) I_D.  When Phi is rank-deficient the equalities are first
reduced to its row space (cvxopt needs a full-rank equality matrix).
Prints one JSON line; "seconds" is the median over REPS calls of
solvers.socp alone (building the matrices is not timed).
"""
import json
import sys
import time

import numpy as np
from cvxopt import matrix, solvers, spmatrix


def build(phi, psi):
    """cvxopt data for the problem; equalities reduced to the row space of Phi."""
    n, k = phi.shape
    d = psi.shape[1]
    u, sv, vt = np.linalg.svd(phi, full_matrices=False)
    r = int(np.sum(sv > 1e-10 * sv[0]))
    if r < n:
        aeq = vt[:r]                                  # r x K, orthonormal rows
        beq = (u[:, :r].T @ psi) / sv[:r, None]       # r x D
    else:
        aeq, beq = phi, psi
    nc = d + 1
    nv = k * nc
    c = matrix(np.tile(np.r_[1.0, np.zeros(d)], k))
    gq = [spmatrix(-1.0, range(nc), range(j * nc, (j + 1) * nc), (nc, nv)) for j in range(k)]
    hq = [matrix(0.0, (nc, 1)) for _ in range(k)]
    rows, cols, vals = [], [], []
    m = aeq.shape[0]
    for i in range(m):
        for j in range(k):
            a = aeq[i, j]
            if a != 0.0:
                for e in range(d):
                    rows.append(i * d + e)
                    cols.append(j * nc + 1 + e)
                    vals.append(float(a))
    A = spmatrix(vals, rows, cols, (m * d, nv))
    b = matrix(beq.reshape(-1).astype(np.float64))
    return c, gq, hq, A, b, r


def solve(phi, psi, reps=1):
    n, k = phi.shape
    d = psi.shape[1]
    c, gq, hq, A, b, r = build(phi, psi)
    solvers.options.update({"abstol": 1e-9, "reltol": 1e-9, "feastol": 1e-9,
                            "show_progress": False, "maxiters": 200})
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sol = solvers.socp(c, Gq=gq, hq=hq, A=A, b=b)
        times.append(time.perf_counter() - t0)
    x = np.array(sol["x"]).reshape(k, d + 1)
    v = x[:, 1:].T                                    # D x K
    norms = np.linalg.norm(v, axis=0)
    return {
        "status": sol["status"],
        "iterations": int(sol["iterations"]),
        "seconds": float(np.median(times)),
        "seconds_min": float(np.min(times)),
        "primal": float(np.sum(norms)),
        "primal_cvxopt": float(sol["primal objective"]),
        "dual_cvxopt": float(sol["dual objective"]),
        "pres": float(np.linalg.norm(phi @ v.T - psi) / np.linalg.norm(psi)),
        "rank": r,
        "active": int(np.sum(norms > 1e-7)),
        "v": v,
    }


def main():
    phi = np.load(sys.argv[1]).astype(np.float64)
    psi = np.load(sys.argv[2]).astype(np.float64)
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    res = solve(phi, psi, reps)
    res.pop("v")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
