#!/usr/bin/python3
"""Channel pruning (compress on conv layers) against PyTorch, in TAP.

A small VGG-style CNN (conv -> batch norm -> relu twice, a pool, a conv
with bias, a pool, flatten, two linear layers) with seeded random weights
and batch-norm statistics is exported with the Python package and
compressed by `vvd run` with layers "all": the two conv layers fed by
channels (groups of 3 x 3 inputs per channel), the linear layer after
flatten (groups of 7 x 7 columns per channel) and the last linear layer
(neurons).  The same deletion is then done in PyTorch on the original
module, from the run's kept.json and V files alone: each layer's weight set
to V, the channels not kept sliced out of the producing conv, its batch
norm and the consumer.  Its logits must equal those of the exported model
run by `vvd forward` and by the package's `load`; the exported tensors
are physically smaller; the result's parameters and multiply-adds equal
counts made here from the module's shapes; each layer's certificate is
recomputed here from its statistics' definition (the rows of sampled
positions are not available here, so the gap is checked through the
solver's own report and the kept channels' count).

Runs under Debian's python3 (torch); exit 77 (skip) without torch.
Usage: test_channels.py VVD (Fashion-MNIST from VV_FASHION_MNIST_DIR, else
Debian's dataset-fashion-mnist)
"""
import copy
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError:
    print("1..0 # SKIP needs Debian's python3-torch")
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import vvd  # noqa: E402
from daemon_util import Tap, vvd_run  # noqa: E402

t = Tap()
VVD = sys.argv[1]
FMNIST = os.environ.get("VV_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
PRE = {"mean": [0.286], "std": [0.353]}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(12, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def make_net():
    torch.manual_seed(7)
    net = Net()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def images(n):
    with gzip.open(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz")) as f:
        data = f.read(16 + 784 * n)
    x = np.frombuffer(data[16:], dtype=np.uint8).astype(np.float32) / 255.0
    return ((x - PRE["mean"][0]) / PRE["std"][0]).reshape(n, 1, 28, 28)


def torch_delete(net, layers, kept, vs):
    """The compress run's deletion redone in PyTorch: layer by layer (in the
    run's order), the weight set to V, then the units not kept removed."""
    net = copy.deepcopy(net)
    mods = dict(net.named_modules())
    with torch.no_grad():
        for l in layers:
            name = l["layer"]
            m = mods[name]
            v = torch.from_numpy(vs[name])
            m.weight.copy_(v.reshape(m.weight.shape))
            keep = torch.tensor(kept[name], dtype=torch.long)
            prod = mods[l["producer"]] if l.get("unit") == "channel" else None
            if l.get("unit") == "channel":
                # The producing conv, the batch norms after it, the consumer.
                prod.weight = nn.Parameter(prod.weight[keep].clone())
                if prod.bias is not None:
                    prod.bias = nn.Parameter(prod.bias[keep].clone())
                prod.out_channels = len(keep)
                seq, idx = l["producer"].rsplit(".", 1)
                after = list(mods[seq])[int(idx) + 1:]
                for bn in after:
                    if bn is m:
                        break
                    if isinstance(bn, nn.BatchNorm2d):
                        bn.weight = nn.Parameter(bn.weight[keep].clone())
                        bn.bias = nn.Parameter(bn.bias[keep].clone())
                        bn.running_mean = bn.running_mean[keep].clone()
                        bn.running_var = bn.running_var[keep].clone()
                        bn.num_features = len(keep)
                if isinstance(m, nn.Conv2d):
                    m.weight = nn.Parameter(m.weight[:, keep].clone())
                    m.in_channels = len(keep)
                else:
                    g = l["group"]
                    cols = torch.cat([torch.arange(c * g, (c + 1) * g) for c in keep.tolist()])
                    m.weight = nn.Parameter(m.weight[:, cols].clone())
                    m.in_features = len(cols)
            else:
                # Neurons: rows of the linear layer feeding it, columns here.
                pm = mods[l["producer"]]
                pm.weight = nn.Parameter(pm.weight[keep].clone())
                pm.bias = nn.Parameter(pm.bias[keep].clone())
                pm.out_features = len(keep)
                m.weight = nn.Parameter(m.weight[:, keep].clone())
                m.in_features = len(keep)
    return net


def counts(net):
    """Parameters and multiply-adds per image of net on 1 x 28 x 28 inputs."""
    params = sum(p.numel() for p in net.parameters())
    macs = 0
    x = torch.zeros(1, 1, 28, 28)
    for m in list(net.features) + [nn.Flatten()] + list(net.classifier):
        y = m(x)
        if isinstance(m, nn.Conv2d):
            macs += y.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += m.in_features * m.out_features
        x = y
    return params, macs


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def main():
    tmp = tempfile.mkdtemp(prefix="vvd-channels-")
    try:
        cases(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


def cases(tmp):
    net = make_net()
    spec_path, weights_path = vvd.export(net, (1, 28, 28), os.path.join(tmp, "orig"),
                                         preprocess=PRE)
    spec = {"kind": "compress", "model": {"spec": spec_path, "weights": weights_path},
            "data": {"format": "fashion-mnist", "max_train": 600,
                     "max_test": 200},
            "layers": "all", "lambda_ratio": 0.03, "positions_per_image": 16,
            "finetune": False, "baseline": True, "tol": 1e-8}
    rc, r, ev = vvd_run(VVD, tmp, spec, "c")
    t.ok(rc == 0 and r.get("state") == "FINISHED", "compress with layers \"all\" finishes",
         ev[-3:] if ev else "")
    if rc != 0:
        return
    out = os.path.join(tmp, "c")
    ls = r["layers"]
    t.eq([l["layer"] for l in ls], ["features.3", "features.7", "classifier.0", "classifier.2"],
         "\"all\": the conv layers fed by channels, the linear after flatten, the last linear")
    chans = {l["layer"]: l for l in ls if l.get("unit") == "channel"}
    t.eq({k: (v["producer"], v["group"], v["channels"]) for k, v in chans.items()},
         {"features.3": ("features.0", 9, 8), "features.7": ("features.3", 9, 12),
          "classifier.0": ("features.7", 49, 16)},
         "each channel layer names its producer, its group size (k x k, h x w) and channels")
    t.ok(chans["features.3"]["positions_per_image"] == 16 and
         "positions_per_image" not in chans["classifier.0"],
         "conv layers sample 16 positions per image; the linear layer has none")
    stats = [e for e in ev if e.get("event") == "stats"]
    t.ok(len(stats) == 4 and stats[0]["n"] == 600 * 16 and stats[2]["n"] == 600,
         "statistics rows: 600 images x 16 positions for a conv, 600 for the linear layer",
         [(s.get("layer"), s.get("n")) for s in stats])
    t.ok(all(l["stop_reason"] == "converged" and l["rel_gap"] <= 1e-8 for l in ls),
         "every layer's lasso is certified to rel_gap 1e-8",
         [(l["layer"], l["rel_gap"]) for l in ls])
    t.ok(any(l["kept"] < l["channels"] for l in chans.values()),
         "channels are deleted: %s" % {k: "%d/%d" % (v["kept"], v["channels"])
                                       for k, v in chans.items()})

    kept = json.load(open(os.path.join(out, "kept.json")))
    vs = {l["layer"]: np.load(os.path.join(out, "V_%s.npy" % l["layer"])) for l in ls}
    ref = torch_delete(net, ls, kept, vs)
    x = images(64)
    with torch.no_grad():
        y_ref = ref(torch.from_numpy(x)).numpy()

    # vvd forward on the exported files alone.
    np.save(os.path.join(tmp, "x.npy"), x)
    p = subprocess.run([VVD, "forward", os.path.join(out, "model.json"),
                        os.path.join(out, "model.safetensors"), os.path.join(tmp, "x.npy"),
                        os.path.join(tmp, "y.npy")], capture_output=True, text=True, timeout=120)
    t.ok(p.returncode == 0, "vvd forward runs the exported model", p.stderr[-400:])
    if p.returncode == 0:
        e = rel(np.load(os.path.join(tmp, "y.npy")), y_ref)
        t.ok(e < 1e-4, "vvd forward's logits = the same deletion done in PyTorch (rel %.1e)" % e)
    # The package's load builds the smaller module.
    small = vvd.load(out)
    with torch.no_grad():
        e = rel(small(torch.from_numpy(x)).numpy(), y_ref)
    t.ok(e < 1e-4, "vvd.load's module gives the same logits (rel %.1e)" % e)

    # Physically smaller, and the counts.
    sd_small = vvd.safetensors.load(os.path.join(out, "model.safetensors"))
    sd_orig = vvd.safetensors.load(weights_path)
    k0 = len(kept["features.3"])
    t.ok(sd_small["features.0.weight"].shape == (k0, 1, 3, 3) and
         sd_small["features.1.running_mean"].shape == (k0,) and
         sd_small["features.3.weight"].shape[1] == k0 and
         sd_small["classifier.0.weight"].shape[1] == 49 * len(kept["classifier.0"]),
         "the exported tensors lose the deleted channels (conv, batch norm, consumer)",
         {k: v.shape for k, v in sd_small.items() if "weight" in k})
    t.ok(os.path.getsize(os.path.join(out, "model.safetensors")) < os.path.getsize(weights_path),
         "the exported file is smaller than the original")
    p0, m0 = counts(net)
    p1, m1 = counts(ref)
    t.eq((r["before"]["params"], r["before"]["macs"]), (p0, m0),
         "parameters and multiply-adds before = PyTorch's counts (%d, %d)" % (p0, m0))
    t.eq((r["after"]["params"], r["after"]["macs"]), (p1, m1),
         "parameters and multiply-adds after = PyTorch's counts of the pruned module "
         "(%d, %d)" % (p1, m1))
    t.ok(m1 < m0, "channel pruning cuts multiply-adds: %d -> %d (%.2fx)" % (m0, m1, m0 / m1))
    b = r.get("baseline", {})
    t.ok("L1 norm" in b.get("selection", "") and
         all(len(b["kept"][k]) == len(kept[k]) for k in kept),
         "the baseline prunes the same widths by the L1 norm of the filters", b.get("selection"))

    # The same on a device: the simulated one, and the CUDA backend on the
    # CUDA emulator when meson names it (forward passes and statistics there;
    # the conv layers' lassos, D >= 12 outputs and groups of 9, by whichever
    # solver auto picks, resident FISTA with the groups viewed as rows of
    # 9 D).
    emu = os.environ.get("VV_TEST_CUDA_EMULATOR")
    devices = [("sim:0", None)]
    if emu:
        devices.append(("cuda:0", {"VVD_CUDA_DRIVER": emu, "VVD_CUBLAS": emu}))
    for dev, env in devices:
        rc, rd, evd = vvd_run(VVD, tmp, dict(spec, device=dev, baseline=False),
                              "c-" + dev.replace(":", ""), env)
        lsd = {l["layer"]: l for l in rd.get("layers", [])} if rc == 0 else {}
        t.ok(rc == 0 and all(lsd.get(l["layer"], {}).get("kept") == l["kept"] and
                             lsd[l["layer"]]["stop_reason"] == "converged" and
                             abs(lsd[l["layer"]]["objective"] - l["objective"])
                             <= 1e-6 * abs(l["objective"]) for l in ls),
             "on %s: the same channels kept, certified, the same objectives" % dev,
             None if rc == 0 else evd[-2:])
        t.ok(rc == 0 and abs(rd["after"]["test_acc"] - r["after"]["test_acc"]) <= 1e-6,
             "on %s: the compressed network's accuracy is the CPU's" % dev)

    # Group size one through the same code: a linear-only run equals the
    # layers' own neuron lasso (classifier.2 fed by classifier.0's neurons).
    spec1 = dict(spec, layers=["classifier.2"], baseline=False)
    rc, r1, _ = vvd_run(VVD, tmp, spec1, "lin")
    l1 = r1.get("layers", [{}])[0]
    t.ok(rc == 0 and l1.get("unit") == "neuron" and l1.get("neurons") == 32 and
         "group" not in l1, "a linear layer fed by neurons is the group-size-one case", l1)


if __name__ == "__main__":
    main()
