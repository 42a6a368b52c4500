#!/usr/bin/env python3
"""The client side of deploy/quickstart.sh (Python's standard library only).

  quickstart.py --server URL --ping [--wait S]   exit 0 when vvd answers /health
  quickstart.py --server URL [--lambdas "0.2 0.1 ..."]

Makes sure the default model fmnist-mlp exists (a train run with live
progress when it does not), queues a sweep over lambda_ratio that compresses
its two hidden layers (kind compress, layers all_linear), follows it, and
prints the table: lambda, neurons kept per hidden layer, parameters, and
train/test accuracy before and after."""
import argparse
import os
import http.client
import json
import sys
import time
import urllib.parse

DEFAULT = "fmnist-mlp"


class Vvd:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port or 80

    def req(self, method, path, body=None, timeout=30):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, data, {"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        text = r.read()
        c.close()
        obj = json.loads(text) if text else {}
        if r.status >= 400:
            sys.exit("vvd: %s %s: %d %s" % (method, path, r.status, obj.get("detail", text)))
        return obj

    def events(self, run_id):
        """Yields the events of a run until its stream ends."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=120)
        c.request("GET", "/v1/runs/%s/events" % run_id)
        r = c.getresponse()
        ev, data = None, []
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                ev = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                yield ev, json.loads("\n".join(data))
                ev, data = None, []
        c.close()


def ping(v, wait):
    t_end = time.time() + wait
    while True:
        try:
            v.req("GET", "/health", timeout=2)
            return 0
        except (OSError, http.client.HTTPException):
            if time.time() >= t_end:
                return 1
            time.sleep(0.2)


def bar(frac, width=30):
    n = int(round(frac * width))
    return "[" + "#" * n + "." * (width - n) + "]"


def train_default(v):
    print("== training the default model %s (784-1024-1024-10 on Fashion-MNIST); it is cached"
          " for later runs" % DEFAULT)
    run = v.req("POST", "/v1/runs", {"kind": "train", "preset": DEFAULT,
                                     "name": "the default model " + DEFAULT})
    epochs, last = 6, ""
    for kind, e in v.events(run["id"]):
        if kind == "log" and e.get("event") == "start":
            epochs = e.get("epochs", epochs)
        elif kind == "metric" and "test_acc" in e:
            last = "  epoch %d/%d: train acc %.4f, test acc %.4f" % (
                e["epoch"], epochs, e["train_acc"], e["test_acc"])
            sys.stdout.write("\r" + " " * 79 + "\r" + last + "\n")
        elif kind == "metric" and "loss" in e:
            sys.stdout.write("\r  %s epoch %.2f/%d  loss %.4f  (%.0f s)   " % (
                bar(e["epoch"] / epochs), e["epoch"], epochs, e["loss"], e["time"]))
        sys.stdout.flush()
    r = v.req("GET", "/v1/runs/" + run["id"])
    if r["state"] != "FINISHED":
        sys.exit("training the default model ended %s: %s" % (r["state"], r.get("error")))
    res = r["result"]
    print("  trained in %.0f s: test accuracy %.4f (train %.4f)"
          % (res["seconds"], res["test_acc"], res["train_acc"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="http://127.0.0.1:8470")
    ap.add_argument("--ping", action="store_true")
    ap.add_argument("--wait", type=float, default=0)
    ap.add_argument("--lambdas", default="0.06 0.045 0.03 0.015")
    a = ap.parse_args()
    v = Vvd(a.server)
    if a.ping:
        return ping(v, a.wait)

    models = v.req("GET", "/v1/models")
    if models.get("default_model", {}).get("trained"):
        print("== the default model %s is trained (cached in the data directory)" % DEFAULT)
    else:
        train_default(v)

    lams = [float(x) for x in a.lambdas.split()]
    base = {"kind": "compress", "model": DEFAULT, "data": "fashion-mnist",
            "layers": "all_linear", "lambda_ratio": lams[0], "finetune": {"epochs": 3}}
    sw = v.req("POST", "/v1/sweeps", {"name": "quickstart: compress %s" % DEFAULT, "base": base,
                                      "grid": {"lambda_ratio": lams}})
    print("== sweep %s: compressing fc2 and fc3 (the inputs of both hidden layers) at "
          "lambda_ratio %s" % (sw["id"], ", ".join("%g" % x for x in lams)))
    shown = set()
    t0 = time.time()
    while True:
        s = v.req("GET", "/v1/sweeps/" + sw["id"])
        runs = [r for r in s["runs"] if r.get("latest", True)]
        for r in runs:
            if r["state"] in ("FINISHED", "STOPPED", "FAILED", "CRASHED") and r["id"] not in shown:
                shown.add(r["id"])
                sys.stdout.write("\r" + " " * 79 + "\r")  # clear the progress line
                res = r.get("result") or {}
                lam = r["spec"]["lambda_ratio"]
                if r["state"] == "FAILED":
                    print("  lambda_ratio %-5g FAILED: %s" % (lam, (r.get("error") or {}).get("detail")))
                    continue
                kept = ", ".join("%s %d/%d" % (l["layer"], l["kept"], l["neurons"])
                                 for l in res.get("layers", []))
                print("  lambda_ratio %-5g done: kept %s, test acc %.4f -> %.4f  (%.0f s)"
                      % (lam, kept, res["before"]["test_acc"], res["after"]["test_acc"],
                         res["seconds"]))
        running = [r for r in runs if r["state"] == "RUNNING"]
        if len(shown) == len(runs):
            break
        if running:
            sm = running[0].get("summary", {})
            sys.stdout.write("\r  [%d/%d] lambda_ratio %g running: step %s rel_gap %s  (%.0f s)   "
                             % (len(shown) + 1, len(runs), running[0]["spec"]["lambda_ratio"],
                                sm.get("step", "-"), "%.2e" % sm["rel_gap"] if "rel_gap" in sm
                                else "-", time.time() - t0))
            sys.stdout.flush()
        time.sleep(1)  # a progress display, not synchronisation
    sys.stdout.write("\r" + " " * 79 + "\r")

    rows = []
    for r in runs:
        res = r.get("result") or {}
        if r["state"] != "FINISHED" or "layers" not in res:
            continue
        rows.append((r["spec"]["lambda_ratio"], r["id"], res))
    rows.sort(key=lambda x: -x[0])
    if not rows:
        print("no point of the sweep finished")
        return 1
    acc = lambda d, k: "%.4f" % d[k]["test_acc"] if d and k in d else "-"
    cols = ("lambda", "hidden 1", "hidden 2", "parameters", "multiply-adds", "pruned",
            "refit", "fine-tuned", "magnitude", "run")
    table = []
    b = rows[0][2]["stages"]["before"]
    table.append(("(original)", "1024", "1024", "%d" % b["params"], "%d" % b["macs"], "", "",
                  "%.4f" % b["test_acc"], "", ""))
    for lam, rid, res in rows:
        L = {l["layer"]: l for l in res["layers"]}
        st, bl = res["stages"], res.get("baseline") or {}
        a_ = res["after"]
        table.append(("%g" % lam, "%d" % L["fc2"]["kept"], "%d" % L["fc3"]["kept"],
                      "%d (%.1f%%)" % (a_["params"], 100.0 * a_["params"] / b["params"]),
                      "%d" % a_["macs"], acc(st, "pruned"), acc(st, "refit"),
                      acc(st, "finetuned"), acc(bl, "finetuned"), rid))
    width = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    line = lambda t: "  ".join(x.ljust(w) if i < 3 or i == 9 else x.rjust(w)
                               for i, (x, w) in enumerate(zip(t, width)))
    print()
    print("test accuracy of the smaller network after each stage, and of the same widths")
    print("chosen by weight magnitude (refitted and fine-tuned the same way):")
    print(line(cols))
    for t in table:
        print(line(t))
    print("(lambda: lambda_ratio; hidden 1 = fc1's outputs kept, deleted by compressing fc2;")
    print(" hidden 2 = fc2's outputs kept, deleted by compressing fc3)")
    print("the smaller models (model.json + model.safetensors, in the data directory):")
    for lam, rid, res in rows:
        w = res.get("outputs", {}).get("weights")
        print("  %s  %s" % (rid, os.path.dirname(w) if w else "(not exported)"))
    # The smallest network within 1 point of the original after fine-tuning.
    good = [x for x in rows if "finetuned" in x[2]["stages"] and
            b["test_acc"] - x[2]["stages"]["finetuned"]["test_acc"] <= 0.01]
    lam, rid, res = min(good or rows, key=lambda x: x[2]["after"]["params"])
    folder = os.path.dirname(res["outputs"]["weights"]) if "weights" in res.get("outputs", {}) \
        else "runs/" + rid
    print()
    print("the smallest within 1 point: %s (lambda_ratio %g), its model in %s" % (rid, lam, folder))
    print("load it into PyTorch (pip install ./python):")
    print("  import vvd")
    print("  model = vvd.load(%r)            # an nn.Module, state_dict names kept" % folder)
    print("  logits = model(images)          # fine-tune it further like any module")
    return 0


if __name__ == "__main__":
    sys.exit(main())
