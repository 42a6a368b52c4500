#!/usr/bin/python3
"""Experiment 1 of the paper (neuron sharing) in PyTorch, as the notebook
does it (reference/paper.md section 2.2): full-batch SGD, lr 0.2, MSELoss,
after every step the group soft-threshold of the output columns with
tau = lr * reg (denominator clamped at 1e-8) and (w_k, b_k) renormalised to
unit norm.  float32, CPU.  Used by bench/bench_neuron_sharing.sh.

  neuron_sharing_torch.py train X.npy Y.npy STEPS SEED [MODE]
      trains on the given data from torch.manual_seed(SEED)'s default init;
      prints one JSON line (seconds of the training loop alone)
  neuron_sharing_torch.py paper DIR
      writes the paper's exact data and student init (torch seeds 43 and 49)
      to DIR/{x,y,w1,b1,v}.npy (float64) for the C driver's train_from
"""
import json
import sys
import time

import numpy as np
import torch


class Net(torch.nn.Module):
    def __init__(self, d_in, width, d_out):
        super().__init__()
        self.w = torch.nn.Linear(d_in, width)
        self.v = torch.nn.Linear(width, d_out, bias=False)

    def forward(self, x):
        return self.v(torch.relu(self.w(x)))


def metrics(net, x, y):
    with torch.no_grad():
        mse = torch.mean((net(x).double() - y.double()) ** 2).item()
        W = net.w.weight.double()
        b = net.w.bias.double()
        V = net.v.weight.double()
        wb = torch.sqrt((W ** 2).sum(1) + b ** 2)
        vn = torch.sqrt((V ** 2).sum(0))
        wn = torch.sqrt((W ** 2).sum(1))
        used = (V.abs() * wn[None, :]) > 1e-3
        return dict(mse=mse, active=int((vn > 1e-3).sum()), vv_norm=float((wb * vn).sum()),
                    group_norm=float(vn.sum()), used=[int(u) for u in used.sum(1)],
                    shared=int(used.all(0).sum()))


def train(xp, yp, steps, seed, mode="prox_vv", lr=0.2, reg=5e-5, width=100):
    x = torch.from_numpy(np.load(xp)).float()
    y = torch.from_numpy(np.load(yp)).float()
    torch.manual_seed(seed)
    net = Net(x.shape[1], width, y.shape[1])
    opt = torch.optim.SGD(net.parameters(), lr=lr,
                          weight_decay=reg if mode == "weight_decay" else 0)
    lossf = torch.nn.MSELoss()
    tau = lr * reg
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = lossf(net(x), y)
        loss.backward()
        opt.step()
        if mode == "prox_vv":
            with torch.no_grad():
                V = net.v.weight
                n = torch.clamp(torch.norm(V, dim=0, keepdim=True), min=1e-8)
                V.mul_(torch.clamp(1 - tau / n, min=0))
                W, b = net.w.weight, net.w.bias
                nw = torch.sqrt((W ** 2).sum(1) + b ** 2)
                W.div_(nw[:, None])
                b.div_(nw)
    secs = time.perf_counter() - t0
    out = dict(seconds=secs, steps=steps, seed=seed, mode=mode, threads=torch.get_num_threads(),
               torch=torch.__version__, dtype="float32")
    out.update(metrics(net, x, y))
    return out


def paper(d):
    torch.manual_seed(43)
    x = torch.randn(50, 2)
    teacher = Net(2, 5, 2)
    with torch.no_grad():
        y = teacher(x)
    torch.manual_seed(49)
    s = Net(2, 100, 2)
    for name, t in (("x", x), ("y", y), ("w1", s.w.weight), ("b1", s.w.bias), ("v", s.v.weight)):
        np.save(f"{d}/{name}.npy", t.detach().double().numpy())
    W, b, V = teacher.w.weight, teacher.w.bias, teacher.v.weight
    tv = float((torch.sqrt((W ** 2).sum(1) + b ** 2) * torch.norm(V, dim=0)).sum())
    print(json.dumps(dict(teacher_vv=tv)))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        print(json.dumps(train(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                               sys.argv[6] if len(sys.argv) > 6 else "prox_vv")))
    elif sys.argv[1] == "paper":
        paper(sys.argv[2])
    else:
        sys.exit(__doc__)
