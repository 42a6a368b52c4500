#!/usr/bin/python3
"""PyTorch side of bench/bench_train_step.sh: the best time of one SGD step
(momentum 0.9, cross-entropy, dropout off as vvd's driver runs it) of the
same architecture on random data, on the machine's cores."""
import json
import os
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tests/fixtures")
from gen_model import mlp, vgg19  # noqa: E402


def main():
    torch.set_num_threads(os.cpu_count())
    arch, div, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if arch == "vgg19_cifar":
        m, x = vgg19(div), torch.rand(n, 3, 32, 32)
    else:
        m, x = mlp([784, 128, 64, 10]), torch.rand(n, 1, 28, 28)
    m.train()
    for mod in m.modules():  # vvd's driver passes no rng: dropout off
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    y = torch.randint(0, 10, (n,))
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    best = 1e30
    for s in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m.forward(x), y).backward()
        opt.step()
        if s > 0:
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"seconds": best, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
