#!/usr/bin/env python3
"""The daemon's device handling, on a device any machine has:
- sim:0 (the default): the simulated device, host memory behind the device
  interface, with a memory budget (VVD_SIM_MEMORY) and a sticky fault after
  a number of operations (VVD_SIM_FAIL_AFTER);
- cuda:0 with VV_TEST_DEVICE=cuda:0: the CUDA backend itself on the CUDA
  emulator (tests/gpu/emu; meson sets VVD_CUDA_DRIVER and VVD_CUBLAS), with
  its memory budget (VV_EMU_MEMORY) and a sticky fault on SIGUSR2
  (VV_EMU_FAULT_SIGNAL=1);
so that what a GPU does to vvd runs on any machine.

Usage: test_device.py VVD [scenario...]   (speaks TAP; exit 0 when all pass)

Scenarios: devices (selection, /health and /v1/models, the same job on the
device and the CPU), selftest (a device is checked at start-up), oom (a job
past the device's memory fails, the daemon serves on), lost (a sticky fault
fails the run, /health 503, exit 75, queued runs kept for the restart).
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon  # noqa: E402
from test_daemon import main  # noqa: E402

GIB = 1 << 30
DEV = os.environ.get("VV_TEST_DEVICE", "sim:0")
SIM = DEV.startswith("sim:")
KIND = "sim" if SIM else "cuda"


def mem_env(nbytes):
    """The environment that gives the device nbytes of memory."""
    return {"VVD_SIM_MEMORY" if SIM else "VV_EMU_MEMORY": str(nbytes)}


def lasso(seed=1, k=None, d=None, **extra):
    """D >= 64: auto picks FISTA, which runs resident on a device.  Smaller
    on the emulator, whose kernels run thread by thread on the host."""
    k = k or (200 if SIM else 64)
    d = d or (80 if SIM else 64)
    s = {"kind": "lasso", "generate": {"n": 3000, "k": k, "d": d, "seed": seed},
         "lambda_ratio": 0.05, "tol": 1e-8}
    s.update(extra)
    return s


def start_event(stream):
    for e in stream.of("log"):
        if isinstance(e["data"], dict) and e["data"].get("event") == "start":
            return e["data"]
    return {}


def problem(r):
    try:
        return r.json()
    except ValueError:
        return {}


def scenario_devices(t, vvd):
    with Daemon(vvd, args=["--device", DEV], env=mem_env(GIB)) as d:
        h = d.get("/health")
        dev = h.json().get("device", {}) if h.status == 200 else {}
        free0 = dev.get("memory_free", 0)
        # The CUDA backend keeps two small buffers of its own (under 9 KiB).
        t.ok(h.status == 200 and dev.get("name") == DEV and dev.get("kind") == KIND
             and dev.get("memory_total") == GIB
             and (free0 == GIB if SIM else GIB - 9216 <= free0 < GIB)
             and dev.get("lost") is False,
             "/health: the device %s, 1 GiB total, %d bytes free, not lost" % (DEV, free0),
             (h.status, dev))
        m = d.get("/v1/models")
        t.ok(m.status == 200 and m.json().get("device", {}).get("name") == DEV,
             "/v1/models reports the device too", m)

        a = d.submit(lasso())["id"]
        sa = d.wait_end(a)
        ra = d.run(a)
        b = d.submit(lasso(device="cpu"))["id"]
        sb = d.wait_end(b)
        rb = d.run(b)
        t.ok(start_event(sa).get("device") == DEV and start_event(sb).get("device") == "cpu",
             "a job without device runs on the daemon's (%s); device cpu on the CPU" % DEV,
             (start_event(sa), start_event(sb)))
        res_a, res_b = ra.get("result") or {}, rb.get("result") or {}
        t.ok(ra["state"] == rb["state"] == "FINISHED"
             and res_a.get("stop_reason") == res_b.get("stop_reason") == "converged"
             and res_a.get("rel_gap", 1) <= 1e-8 and res_b.get("rel_gap", 1) <= 1e-8,
             "both are certified: rel_gap <= 1e-8", (res_a.get("rel_gap"), res_b.get("rel_gap")))
        oa, ob = res_a.get("objective", 0), res_b.get("objective", 1)
        t.ok(abs(oa - ob) <= 2e-8 * abs(ob) and res_a.get("active") == res_b.get("active"),
             "on the device and on the CPU: the same objective (%.12g vs %.12g) and active "
             "neurons (%s vs %s)" % (oa, ob, res_a.get("active"), res_b.get("active")))
        h = d.get("/health").json().get("device", {})
        t.ok(h.get("memory_free") == free0,
             "after the jobs the device's memory is all free again (%s bytes)"
             % h.get("memory_free"), h)

        c = d.submit(lasso(seed=2, d=8, solver="bcd"))["id"]
        d.wait_end(c)
        t.eq(d.run(c)["state"], "FINISHED", "bcd on a device daemon runs (on the CPU)")

        for dev_name, want in (("cuda:1", "not available"), ("gpu", "unknown device")):
            r = d.post("/v1/runs", lasso(device=dev_name))
            p = problem(r)
            t.ok(r.status == 400 and p.get("field") == "/device" and want in p.get("detail", "")
                 and (DEV in p.get("detail", "") or want == "unknown device"),
                 "device %s: 400 at /device (%s)" % (dev_name, p.get("detail")), r)


def scenario_selftest(t, vvd):
    """A device is checked before it is trusted: a small lasso and a narrow
    VGG-19's forward pass on it must agree with the CPU."""
    with Daemon(vvd, args=["--device", DEV]) as d:
        log = d.log_tail()
        t.ok(DEV + " passed its self-test" in log, "at start-up the device passes its self-test",
             log[-400:])
    d = Daemon(vvd, args=["--device", DEV], env=mem_env(100000))
    try:
        d.start()
        started, msg = True, ""
    except RuntimeError as e:
        started, msg = False, str(e)
    finally:
        code = d.proc.returncode if d.proc else None
        d.close()
    t.ok(not started and code == 1 and DEV + " failed its self-test" in msg
         and "cannot allocate" in msg,
         "a device that fails it (too little memory) stops vvd serve: exit 1, saying why",
         (started, code, msg[-300:]))


def scenario_oom(t, vvd):
    with Daemon(vvd, args=["--device", DEV], env=mem_env(4000000)) as d:
        free0 = d.get("/health").json()["device"]["memory_free"]
        big = d.submit(lasso(k=1000))["id"]
        d.wait_end(big)
        r = d.run(big)
        err = r.get("error") or {}
        t.ok(r["state"] == "FAILED" and err.get("error_code") == "OUT_OF_MEMORY"
             and "cannot allocate" in err.get("detail", ""),
             "a job whose Gram matrix (8 MB) exceeds the device (4 MB) fails: %s"
             % err.get("detail"), r.get("error"))
        small = d.submit(lasso(k=100 if SIM else None))["id"]
        d.wait_end(small)
        t.eq(d.run(small)["state"], "FINISHED", "the next job, which fits, runs to the end")
        h = d.get("/health")
        t.ok(h.status == 200 and h.json()["device"]["lost"] is False
             and h.json()["device"]["memory_free"] == free0,
             "out of memory is not a lost device: /health 200, memory all free", h)


def scenario_lost(t, vvd):
    if SIM:
        env = {"VVD_SIM_FAIL_AFTER": "2000"}
    else:  # the emulator faults at the first device work after SIGUSR2
        env = {"VV_EMU_FAULT_SIGNAL": "1"}
    with Daemon(vvd, args=["--device", DEV], env=env) as d:
        x = d.submit(lasso(tol=1e-13, max_iter=1000000000))["id"]
        y = d.submit(lasso(seed=3))["id"]
        if not SIM:
            first = d.follow(x, until=lambda ev, s: ev["event"] == "metric", deadline=120)
            t.ok(first.stopped, "the long run computes on the device", first.error)
            d.send(signal.SIGUSR2)
        s = d.follow(x, deadline=120)
        r = d.run(x)
        h = d.try_req("GET", "/health")
        q = d.run(y)
        err = r.get("error") or {}
        t.ok(s.ended and r["state"] == "FAILED" and err.get("error_code") == "UNAVAILABLE"
             and "illegal memory access" in err.get("detail", ""),
             "a sticky fault mid-solve fails the run: %s" % err.get("detail"), (s.error, r))
        t.ok(h.status == 503 and h.json().get("status") == "device lost"
             and h.json()["device"]["lost"] is True,
             "/health answers 503, status 'device lost'", h)
        t.ok(q["state"] == "QUEUED" and "lost" in (q.get("waiting_reason") or ""),
             "the run queued behind it stays QUEUED: %s" % q.get("waiting_reason"), q)
        t0 = time.monotonic()
        try:
            code = d.proc.wait(30)
        except Exception:  # noqa: BLE001 - a hang is the finding
            code = None
        t.ok(code == 75, "vvd exits with status 75 (after %.1f s) for its service manager to "
             "restart it" % (time.monotonic() - t0), code)
        log = d.log_tail()
        t.ok("was lost" in log, "its log says the device was lost", log[-600:])
        with Daemon(vvd, data_dir=d.dir, args=["--device", DEV]) as d2:
            d2.wait_end(y, deadline=120)
            ry, rx = d2.run(y), d2.run(x)
            t.ok(ry["state"] == "FINISHED" and rx["state"] == "FAILED",
                 "after the restart the queued run runs (FINISHED); the failed one stays FAILED",
                 (ry["state"], rx["state"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv, [("devices", scenario_devices), ("selftest", scenario_selftest),
                             ("oom", scenario_oom), ("lost", scenario_lost)]))
