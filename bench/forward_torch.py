#!/usr/bin/python3
"""PyTorch side of bench/bench_forward.sh: the same network (weights from
OUT/w.safetensors, written by vvd) on the same inputs (OUT/x.npy), eval mode,
in batches; prints one JSON line with the best of 3 times and the largest
relative difference of its logits from vvd's (OUT/y.npy).  With a fifth
argument "once" it runs every image in one call and saves the logits
(OUT/y_torch.npy), for timing as a whole process.  With FORWARD_DEVICE=cuda
(tests/gpu/device-check.sh) it runs on the GPU when this torch has CUDA,
each batch's images going up and logits coming down as vvd's do, else on
the CPU; the JSON says which."""
import json
import os
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tests/fixtures")
from gen_model import alexnet, vgg19  # noqa: E402


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    h = json.loads(data[8:8 + n])
    out = {}
    for k, e in h.items():
        if k == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[8 + n + a:8 + n + b], "<f4").copy()
                                  .reshape(e["shape"]))
    return out


def main():
    torch.set_num_threads(os.cpu_count())  # the same cores as vvd
    arch, div, batch, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    m = vgg19(div) if arch == "vgg19_cifar" else alexnet(div)
    missing = m.load_state_dict(load(out + "/w.safetensors"), strict=False).missing_keys
    assert all(k.endswith("num_batches_tracked") for k in missing), missing
    m.eval()
    dev = "cuda" if os.environ.get("FORWARD_DEVICE") == "cuda" and torch.cuda.is_available() \
        else "cpu"
    m = m.to(dev)
    x = np.load(out + "/x.npy")
    shape = (3, 32, 32) if arch == "vgg19_cifar" else (3, 64, 64)
    x = torch.from_numpy(x).reshape((-1,) + shape)
    if len(sys.argv) > 5 and sys.argv[5] == "once":
        # What a user's script does: every image in one call, logits saved.
        with torch.no_grad():
            np.save(out + "/y_torch.npy", m.forward(x.to(dev)).cpu().numpy())
        return
    best, ys = 1e30, None
    with torch.no_grad():
        for _ in range(3):
            t0 = time.perf_counter()
            ys = [m.forward(x[i:i + batch].to(dev)).cpu() for i in range(0, len(x), batch)]
            best = min(best, time.perf_counter() - t0)
    y = torch.cat(ys).numpy()
    yv = np.load(out + "/y.npy")
    err = float(np.abs(y - yv).max() / np.abs(y).max())
    print(json.dumps({"seconds": best, "images_per_s": len(x) / best, "rel_diff": err,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu"}))


if __name__ == "__main__":
    main()
