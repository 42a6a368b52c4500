#!/usr/bin/env python3
"""Training (kind "train") and the embedded default model, in TAP.

Through `vvd run`: a small MLP trains on Fashion-MNIST and its loss falls;
the default recipe (preset fmnist-mlp, one epoch) reaches a stated test
accuracy; a run resumed from the checkpoint of a shorter run ends with the
same weights, byte for byte, as an uninterrupted run; bad specs name their
field.  Through the daemon: a run stopped by the user resumes to the same
weights as an uninterrupted one; a compress run naming the default model
on a daemon that has not trained it queues its training first; a cached
default model is used without training.

Usage: test_train.py VVD FIXTURES_DIR
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, Tap, expect_failure, vvd_run, write_cifar10  # noqa: E402

t = Tap()
VVD, FIX = sys.argv[1], sys.argv[2]
QUICK = bool(os.environ.get("VV_TEST_QUICK"))
FMNIST = os.environ.get("VV_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
PRE = {"mean": [0.286], "std": [0.353]}
SMALL = {"arch": "mlp", "input": [1, 28, 28], "sizes": [784, 64, 10], "preprocess": PRE, "seed": 1}


def run(tmp, spec, name, env=None):
    return vvd_run(VVD, tmp, spec, name, env)


def small(**kw):
    s = {"kind": "train", "model": SMALL, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
         "weight_decay": 1e-4, "epochs": 3, "batch_size": 64, "seed": 7,
         "data": {"format": "fashion-mnist", "max_train": 3200, "max_test": 2000}}
    s.update(kw)
    return s


def read(path):
    with open(path, "rb") as f:
        return f.read()


def vvd_run_cases(tmp):
    rc, r, evs = run(tmp, small(), "a")
    t.ok(rc == 0 and r.get("state") == "FINISHED" and r.get("epochs") == 3,
         "a 784-64-10 MLP trains for 3 epochs (SGD, momentum, weight decay)", evs[-1:])
    if rc != 0:
        return
    losses = [e["loss"] for e in evs if e.get("event") == "metric" and "loss" in e]
    epochs = [e for e in evs if e.get("event") == "metric" and "test_acc" in e]
    t.ok(len(epochs) == 3 and losses and losses[-1] < 0.7 * losses[0],
         "per-step losses fall (%.3f -> %.3f) and each epoch reports accuracy"
         % (losses[0], losses[-1]) if losses else "losses")
    t.ok(r["test_acc"] > 0.75, "3 epochs on 3200 images give test accuracy %.4f > 0.75" % r["test_acc"])
    for f in ("model.safetensors", "model.json", "checkpoint/model-00003.safetensors",
              "checkpoint/optimizer-00003.safetensors", "checkpoint/state.json"):
        if not t.ok(os.path.exists(os.path.join(tmp, "a", f)), "artifact " + f):
            return
    t.ok(not os.path.exists(os.path.join(tmp, "a", "checkpoint", "model-00002.safetensors")),
         "only the latest epoch's checkpoint is kept")

    # Resume: 1 epoch, then continue to 3 from its checkpoint = 3 epochs at once.
    rc1, r1, _ = run(tmp, small(epochs=1), "b1")
    rc2, r2, _ = run(tmp, small(resume_from=os.path.join(tmp, "b1")), "b2")
    t.ok(rc1 == 0 and rc2 == 0 and r2.get("first_epoch") == 1 and r2.get("epochs") == 3,
         "a run resumes from another run's checkpoint at epoch 1")
    same = rc2 == 0 and read(os.path.join(tmp, "a", "model.safetensors")) == \
        read(os.path.join(tmp, "b2", "model.safetensors"))
    t.ok(same, "resumed weights are byte-identical to the uninterrupted run's")
    t.ok(rc2 == 0 and abs(r2["test_acc"] - r["test_acc"]) == 0 and len(r2["history"]) == 3,
         "and so are its accuracy and its epoch history")
    # The trained model loads back through compress (its exported spec + weights).
    rc, rc_, _ = run(tmp, {"kind": "compress", "model": {
        "spec": os.path.join(tmp, "a", "model.json"),
        "weights": os.path.join(tmp, "a", "model.safetensors")},
        "data": {"format": "fashion-mnist", "max_train": 2000, "max_test": 2000},
        "layers": ["fc2"], "lambda_ratio": 0.05}, "ac")
    t.ok(rc == 0 and abs(rc_["before"]["test_acc"] - r["test_acc"]) < 1e-9,
         "the trained model's files compress, with the training run's test accuracy before")

    # The default recipe, one epoch, all of Fashion-MNIST (not installed: the
    # recipe is changed).
    if not QUICK:
        rc, rd, _ = run(tmp, {"kind": "train", "preset": "fmnist-mlp", "epochs": 1}, "d1",
                        env={"VVD_DATA_DIR": os.path.join(tmp, "dd")})
        t.ok(rc == 0 and rd["test_acc"] >= 0.83 and "installed_as" not in rd,
             "the default recipe (784-1024-1024-10, Adam) reaches %.4f >= 0.83 test accuracy in one "
             "epoch, and a changed recipe is not installed as the default" % rd.get("test_acc", 0))

    def expect(spec, name, field, words):
        expect_failure(t, VVD, tmp, spec, name, field, words)
    # The paper's recipes run end to end on CIFAR-10 binary batches the test
    # writes (full-size networks, a few images, one epoch).
    if not QUICK:
        cdir = os.path.join(tmp, "cifar")
        write_cifar10(cdir, 16, 16, seed=9)
        for preset in ("alexnet_cifar64", "vgg19_cifar"):
            rc, rp, evs = run(tmp, {"kind": "train", "preset": preset, "epochs": 1, "batch_size": 16,
                                    "data": {"format": "cifar10", "dir": cdir, "max_train": 32}},
                              preset)
            t.ok(rc == 0 and rp.get("steps") == 2 and rp.get("preset") == preset and
                 0 <= rp.get("test_acc", -1) <= 1,
                 "preset %s trains a full-size network on CIFAR-10 batches (%s parameters)"
                 % (preset, rp.get("params")), evs[-1:])

    expect(small(optimizer="lbfgs"), "unknown optimizer", "/optimizer", ["sgd"])
    expect(small(optimizer="adam"), "momentum with adam", "/momentum", ["sgd"])
    expect(small(schedule="step"), "step without milestones", "/milestones", ["milestones"])
    expect(small(resume_from=os.path.join(tmp, "nowhere")), "resume from nothing", "/resume_from",
           ["checkpoint"])
    expect(small(model={"arch": "vgg19_cifar", "width_div": 16}), "image size", "/data",
           ["1x28x28", "3x32x32"])
    expect(small(augment={"crop": 40}), "crop larger than the image", "/augment", ["crop"])
    expect(small(model="fm"), "a resident model", "/model", ["architecture"])
    expect({"kind": "train", "preset": "vgg19_cifar"}, "preset without data", "/data", ["cifar10"])


def daemon_cases(tmp):
    with Daemon(VVD) as d:
        spec = small(epochs=3, data={"format": "fashion-mnist", "max_train": 6400, "max_test": 1000})
        a = d.submit(spec)["id"]
        d.wait_end(a, deadline=600)
        b = d.submit(spec)["id"]
        # Stop once the first epoch's checkpoint exists (its metric has test_acc).
        d.follow(b, until=lambda ev, s: ev["event"] == "metric" and "test_acc" in ev["data"],
                     deadline=600)
        d.post("/v1/runs/%s/stop" % b)
        d.wait_end(b, deadline=600)
        rb = d.run(b)
        t.ok(rb["state"] == "STOPPED" or rb["state"] == "FINISHED",
             "a train run stopped after its first epoch ends %s" % rb["state"])
        c = d.submit(dict(spec, resume_from="runs/" + b))["id"]
        d.wait_end(c, deadline=600)
        rc = d.run(c)
        wa = d.get("/v1/runs/%s/artifacts/model.safetensors" % a).body
        wc = d.get("/v1/runs/%s/artifacts/model.safetensors" % c).body
        t.ok(rc["state"] == "FINISHED" and len(wa) > 1000 and wa == wc,
             "resumed after a stop, the weights equal the uninterrupted run's (first epoch %s)"
             % (rc.get("result") or {}).get("first_epoch"))
        ms = d.get("/v1/runs/%s/metrics?keys=test_acc" % a).json()["metrics"]
        ra = d.run(a)["result"]
        t.ok(len(ms) == 3 and all(m["key"] == "test_acc" for m in ms) and
             ms[-1]["value"] == ra["test_acc"],
             "the metric history holds one test accuracy per epoch, the last the result's")

        # First use of the default model queues its training before the run.
        r = d.post("/v1/runs", {"kind": "compress", "model": "fmnist-mlp", "data": "fashion-mnist",
                                "layers": "all_linear", "lambda_ratio": 0.1})
        t.eq(r.status, 201, "a compress run naming the untrained default model is accepted")
        runs = d.get("/v1/runs?kind=train").json()["runs"]
        pre = [x for x in runs if (x.get("spec") or {}).get("preset") == "fmnist-mlp"]
        t.ok(len(pre) == 1 and pre[0]["state"] in ("QUEUED", "RUNNING") and
             pre[0]["id"] < r.json()["id"],
             "its training (train preset fmnist-mlp) is queued ahead of it")
        r2 = d.post("/v1/runs", {"kind": "compress", "model": "fmnist-mlp", "data": "fashion-mnist",
                                 "layers": "all_linear", "lambda_ratio": 0.05})
        runs = d.get("/v1/runs?kind=train").json()["runs"]
        t.ok(r2.status == 201 and len([x for x in runs if (x.get("spec") or {}).get("preset")
                                       == "fmnist-mlp"]) == 1,
             "a second run does not queue a second training")
        for x in (pre[0]["id"], r.json()["id"], r2.json()["id"]):
            d.post("/v1/runs/%s/stop" % x)
        for x in (pre[0]["id"], r.json()["id"], r2.json()["id"]):
            d.wait_end(x, deadline=300)

    # A crash (SIGKILL) after the first epoch: the restarted daemon marks the
    # run CRASHED, and resuming from its checkpoint gives the uninterrupted
    # run's weights.
    data = tempfile.mkdtemp(prefix="vvd-crash-")
    try:
        spec = small(epochs=3, data={"format": "fashion-mnist", "max_train": 6400, "max_test": 1000})
        with Daemon(VVD, data_dir=data, keep_dir=True) as d:
            b = d.submit(spec)["id"]
            d.follow(b, until=lambda ev, s: ev["event"] == "metric" and "test_acc" in ev["data"],
                     deadline=600)
            d.kill9()
            d.start()
            t.eq(d.run(b)["state"], "CRASHED", "a train run killed with the daemon is CRASHED")
            c = d.submit(dict(spec, resume_from="runs/" + b))["id"]
            a = d.submit(spec)["id"]
            d.wait_end(c, deadline=600)
            d.wait_end(a, deadline=600)
            wc = d.get("/v1/runs/%s/artifacts/model.safetensors" % c).body
            wa = d.get("/v1/runs/%s/artifacts/model.safetensors" % a).body
            t.ok(d.run(c)["state"] == "FINISHED" and len(wa) > 1000 and wa == wc,
                 "resumed after the crash, the weights equal an uninterrupted run's")
    finally:
        shutil.rmtree(data, ignore_errors=True)

    # A cached default model is loaded from the data directory, not trained.
    data = tempfile.mkdtemp(prefix="vvd-default-")
    try:
        cache = os.path.join(data, "models", "fmnist-mlp")
        os.makedirs(cache)
        shutil.copy(os.path.join(FIX, "fmnist", "mlp_128_64.safetensors"),
                    os.path.join(cache, "model.safetensors"))
        with open(os.path.join(cache, "model.json"), "w") as f:
            json.dump({"arch": "mlp", "input": [1, 28, 28], "sizes": [784, 128, 64, 10],
                       "preprocess": PRE}, f)
        with Daemon(VVD, data_dir=data, keep_dir=True) as d:
            t.ok(d.get("/v1/models").json()["default_model"]["trained"],
                 "GET /v1/models says the cached default model is trained")
            i = d.submit({"kind": "compress", "model": "fmnist-mlp", "layers": ["fc3"],
                          "data": {"format": "fashion-mnist", "max_train": 3000},
                          "lambda_ratio": 0.1})["id"]
            d.wait_end(i, deadline=300)
            res = d.run(i)
            runs = d.get("/v1/runs?kind=train").json()["runs"]
            t.ok(res["state"] == "FINISHED" and not runs and
                 abs(res["result"]["before"]["test_acc"] -
                     json.load(open(os.path.join(FIX, "fmnist", "mlp_128_64.json")))["test"]["acc"])
                 < 1.5e-4,
                 "a compress run uses the cached default model without training it")
            t.ok(any(m["name"] == "fmnist-mlp" for m in d.get("/v1/models").json()["models"]),
                 "and the default model is then resident")
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    if not os.path.exists(os.path.join(FMNIST, "train-images-idx3-ubyte.gz")):
        t.ok(False, "Fashion-MNIST is installed (Debian package dataset-fashion-mnist)")
        return t.done()
    tmp = tempfile.mkdtemp(prefix="vvd-train-")
    try:
        vvd_run_cases(tmp)
        daemon_cases(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
