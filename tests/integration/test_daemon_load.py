#!/usr/bin/env python3
"""The daemon under load: 50 clients submitting and polling plus 20 SSE
subscribers for 30 s on loopback, and a reference job timed alone and under
that load.

Usage: test_daemon_load.py VVD   (speaks TAP; exit 0 when all pass)

It times things, so meson runs it alone (is_parallel: false): another test
binary on the same two cores would be measured as the daemon's overhead.
With VV_TEST_QUICK set (the sanitizer run of tests/run-tests.sh) the load is
20 clients and 8 subscribers: under AddressSanitizer each request costs the
daemon several times its release-build CPU (measured: 50 clients took 0.94
of the 2 cores, leaving the job one), and the bound is about the daemon's
design, not the sanitizer's overhead.  The release run keeps the full load.
"""

import collections
import os
import random
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Client, Daemon, follow, request  # noqa: E402
from test_daemon import (FINAL, contiguous, increasing, main, quick, reference,  # noqa: E402
                         stream_points)


def proc_cpu(pid):
    """utime + stime of a process, in seconds (Linux /proc)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def proc_rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return float("nan")


def scenario_load(t, vvd, clients=50, subscribers=20, seconds=30.0, poll_s=0.2):
    """Each client thread, on one keep-alive connection: submit a quick run,
    then GET /v1/runs/{id} and GET /v1/runs?page_size=10 every poll_s until
    the run ends, and again.  Each subscriber follows the newest run's events
    to the end and compares them with the stored metrics.  The reference job
    (statistics not cached: a new seed each time) is timed by its result's
    "seconds" -- its own run time, not its wait in the queue -- three times
    alone and three times under load; the medians are compared."""
    with Daemon(vvd) as d:
        def ref_job(seed):
            t0 = time.monotonic()
            rid = d.submit(reference(seed))["id"]
            s = d.follow(rid, deadline=120, read_timeout=30)
            wall = time.monotonic() - t0
            run = d.run(rid)
            res = run["result"] or {}
            if not (s.ended and run["state"] == "FINISHED"):
                raise RuntimeError("reference job %s: %s %s" % (rid, run["state"], s.error))
            return res["seconds"], wall, res.get("stats_cached")

        alone = [ref_job(1000 + i) for i in range(3)]
        # Warm the statistics cache of the quick runs.
        d.wait_end(d.submit(quick(seed=1))["id"])

        lock = threading.Lock()
        statuses = collections.Counter()
        unexpected = []
        errors = []
        recent = collections.deque(maxlen=64)
        followed = []    # (run, n events, n metric events) per complete follow
        lost = []
        counts = collections.Counter()
        stop = threading.Event()
        t_end = time.monotonic() + seconds

        def note(r, want, what):
            with lock:
                statuses[r.status] += 1
                if r.status != want:
                    unexpected.append((what, r.status, r.body[:200]))
            return r.status == want

        def client(i):
            c = Client(d.port, timeout=30)
            rnd = random.Random(i)
            try:
                while not stop.is_set() and time.monotonic() < t_end:
                    spec = quick(seed=1, ratio=rnd.choice((0.5, 0.3, 0.2, 0.1, 0.05)),
                                 tol=rnd.choice((1e-6, 1e-7, 1e-8)))
                    r = c.request("POST", "/v1/runs", spec)
                    if not note(r, 201, "POST /v1/runs"):
                        stop.wait(poll_s)
                        continue
                    rid = r.json()["id"]
                    with lock:
                        recent.append(rid)
                        counts["submitted"] += 1
                    for _ in range(600):
                        r1 = c.request("GET", "/v1/runs/" + rid)
                        r2 = c.request("GET", "/v1/runs?page_size=10")
                        note(r2, 200, "GET /v1/runs")
                        if not note(r1, 200, "GET /v1/runs/{id}"):
                            break
                        st = r1.json()["state"]
                        if st in FINAL:
                            with lock:
                                counts[st] += 1
                            break
                        if stop.wait(poll_s):
                            break
            except Exception as e:  # noqa: BLE001 - any failure is a finding
                with lock:
                    errors.append("client %d: %r" % (i, e))
            finally:
                c.close()

        def subscriber(i):
            try:
                while not stop.is_set() and time.monotonic() < t_end:
                    with lock:
                        rid = recent[-1] if recent else None
                    if rid is None:
                        stop.wait(0.1)
                        continue
                    s = follow(d.port, rid, deadline=60, read_timeout=30)
                    ok = (s.status == 200 and s.ended and s.error is None and contiguous(s.ids())
                          and s.events and s.events[-1]["event"] == "state"
                          and s.events[-1]["data"].get("state") == "FINISHED")
                    steps = [e["data"]["step"] for e in s.of("metric")]
                    r = request(d.port, "GET", "/v1/runs/%s/metrics" % rid, timeout=30)
                    note(r, 200, "GET /v1/runs/{id}/metrics")
                    mlist = r.json()["metrics"] if r.status == 200 else []
                    stored = {(p["step"], p["key"]) for p in mlist}
                    spts = stream_points(s.events)
                    ok = (ok and increasing(steps) and stored == set(spts)
                          and len(mlist) == len(spts) == (r.json()["count"] if r.status == 200 else -1))
                    with lock:
                        if ok:
                            followed.append((rid, len(s.events), len(steps)))
                        else:
                            lost.append((rid, s.status, s.error, s.ids()[:5], len(steps),
                                         len(stored), len(stream_points(s.events))))
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append("subscriber %d: %r" % (i, e))

        rss0 = proc_rss_mb(d.proc.pid)
        cpu0, dcpu0, w0 = os.times(), proc_cpu(d.proc.pid), time.monotonic()
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        threads += [threading.Thread(target=subscriber, args=(i,), daemon=True)
                    for i in range(subscribers)]
        for th in threads:
            th.start()
        under = []
        try:
            # Let the load build up, then time the reference job three times.
            stop.wait(3.0)
            for i in range(3):
                under.append(ref_job(2000 + i))
        finally:
            while time.monotonic() < t_end and not stop.is_set():
                stop.wait(min(1.0, max(0.0, t_end - time.monotonic())))
            stop.set()
            for th in threads:
                th.join(90)
        cpu1, dcpu1, w1 = os.times(), proc_cpu(d.proc.pid), time.monotonic()
        rss1 = proc_rss_mb(d.proc.pid)
        hung = [th.name for th in threads if th.is_alive()]
        el = w1 - w0
        client_cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / el
        daemon_cpu = (dcpu1 - dcpu0) / el
        total_req = sum(statuses.values())
        t.comment("load: %d clients + %d SSE subscribers for %.1f s: %d requests (%.0f/s), "
                  "statuses %s, %d runs submitted, %s"
                  % (clients, subscribers, el, total_req, total_req / el, dict(statuses),
                     counts["submitted"], {k: v for k, v in counts.items() if k != "submitted"}))
        t.comment("load: %d streams followed to the end, %d bad; CPU cores used: test clients %.2f, "
                  "daemon %.2f (of %d); daemon RSS %.0f MB -> %.0f MB"
                  % (len(followed), len(lost), client_cpu, daemon_cpu, os.cpu_count() or 0,
                     rss0, rss1))
        t.ok(not hung, "every load thread ended (bounded loops, timeouts)", hung)
        t.ok(not errors, "no client or subscriber error (timeouts, resets)", errors[:5])
        t.ok(not unexpected and not any(s >= 500 for s in statuses),
             "no 5xx and no unexpected status in %d requests" % total_req, unexpected[:5])
        t.ok(counts["submitted"] >= clients and counts["FINISHED"] >= clients,
             "the clients submitted and saw FINISHED at least %d runs" % clients, dict(counts))
        t.ok(len(followed) >= subscribers and not lost,
             "every followed stream was complete: ids contiguous, steps increasing, the final "
             "state, stored metrics == streamed (%d streams)" % len(followed), lost[:5])
        t.ok(d.get("/health").status == 200, "GET /health is 200 after the load")

        a = statistics.median(x[0] for x in alone)
        u = statistics.median(x[0] for x in under) if under else float("inf")
        ratio = u / a if a > 0 else float("inf")
        t.comment("reference job alone: %.3f s, under load: %.3f s, ratio %.2f "
                  "(medians of 3; alone %s, under load %s; wall incl. queue: alone %s, under load %s)"
                  % (a, u, ratio, ["%.3f" % x[0] for x in alone], ["%.3f" % x[0] for x in under],
                     ["%.2f" % x[1] for x in alone], ["%.2f" % x[1] for x in under]))
        t.ok(not any(x[2] for x in alone + under),
             "the reference jobs computed their statistics (no cache hit)")
        t.ok(ratio <= 1.5, "the reference job under load takes <= 1.5x its time alone "
             "(ratio %.2f)" % ratio)


def load(t, vvd):
    if os.environ.get("VV_TEST_QUICK"):
        t.comment("VV_TEST_QUICK: 20 clients and 8 subscribers (sanitizer build)")
        return scenario_load(t, vvd, clients=20, subscribers=8)
    return scenario_load(t, vvd)


if __name__ == "__main__":
    sys.exit(main(sys.argv, [("load", load)]))
