#!/usr/bin/env python3
"""`mpirun -np 2 vvd run SPEC.json` against one process, in TAP.

Each rank computes the statistics of its share of the rows (of an .npy
file, of a list of shards, of the synthetic problem, or of a compress job's
training images through the forward passes); the sums are added up across
the ranks and rank 0 solves and writes (server/mpi_run.h).  Checked here:
G, B and c (save_stats) equal a single process's to 1e-12 relative, the
solution is the same, shards are split by rank, compress gives the same
kept neurons and accuracies, a rank that fails (a missing shard) ends every
rank with its message, mpirun returns and no vvd is left running.

Without mpirun it skips (exit 77, by hand only: meson registers it only
where vvd was built with MPI and mpirun is found); with mpirun and a vvd
built without MPI it fails.

Usage: test_mpi.py VVD FIXTURES_DIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Tap, npy_header, write_cifar10  # noqa: E402

VVD, FIX = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
MPIRUN = shutil.which("mpirun")
FMNIST = os.environ.get("VV_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
t = Tap()

# OpenMPI refuses root without these (CI runs as root); --oversubscribe lets
# 2 ranks run on fewer cores; shared-memory transport without the
# single-copy mechanism, which containers often forbid.  OpenMPI's own
# allocations are not freed at exit: no leak reports from the sanitizer build.
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
ENV["ASAN_OPTIONS"] = (ENV.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")


def run(tmp, spec, name, np=0, timeout=300, env=None, args=()):
    """Runs spec (np ranks under mpirun, 0: plain `vvd run`; env and vvd's
    args besides the defaults): (exit status, the last event, every event,
    stderr, seconds)."""
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(spec, f)
    cmd = [VVD, "run", path, "--out", os.path.join(tmp, name)] + list(args)
    if np:
        cmd = [MPIRUN, "-np", str(np), "--oversubscribe", "--bind-to", "none"] + cmd
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=dict(ENV, **(env or {})), cwd=tmp)
    except subprocess.TimeoutExpired as e:
        return -9, {}, [], "timed out: %s" % e, time.time() - t0
    events = []
    for line in p.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass  # mpirun's own notices
    return p.returncode, events[-1] if events else {}, events, p.stderr, time.time() - t0


def read_npy(path):
    """(shape, flat values) of a C-order float32/float64/int64 .npy."""
    with open(path, "rb") as f:
        data = f.read()
    h = npy_header(data)
    fmt = {"<f4": "f", "<f8": "d", "<i8": "q"}[h["descr"]]
    count = 1
    for s in h["shape"]:
        count *= s
    off, size = h["data_offset"], count * struct.calcsize(fmt)
    return h["shape"], struct.unpack("<%d%s" % (count, fmt), data[off:off + size])


def slice_npy(src, dst, r0, r1):
    """Rows [r0, r1) of the 2-D C-order .npy src as dst."""
    with open(src, "rb") as f:
        data = f.read()
    h = npy_header(data)
    rows, cols = h["shape"]
    esz = int(h["descr"][2:])
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }" % (h["descr"],
                                                                          r1 - r0, cols)
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    off = h["data_offset"]
    with open(dst, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(data[off + r0 * cols * esz:off + r1 * cols * esz])


def rel(a, b):
    """max |a - b| / max |b| of two flat sequences."""
    scale = max(abs(x) for x in b) or 1.0
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def same_stats(tmp, a, b, what):
    """A TAP point: G, B (files) and c (result) of runs a and b equal to 1e-12."""
    try:
        ga, gb = read_npy(os.path.join(tmp, a, "G.npy")), read_npy(os.path.join(tmp, b, "G.npy"))
        ba, bb = read_npy(os.path.join(tmp, a, "B.npy")), read_npy(os.path.join(tmp, b, "B.npy"))
        ra = json.load(open(os.path.join(tmp, a, "result.json")))
        rb = json.load(open(os.path.join(tmp, b, "result.json")))
    except (OSError, ValueError, KeyError) as e:
        return t.ok(False, what, str(e))
    dg, db, dc = rel(gb[1], ga[1]), rel(bb[1], ba[1]), abs(rb["c"] - ra["c"]) / abs(ra["c"])
    return t.ok(ga[0] == gb[0] and ba[0] == bb[0] and ra["n"] == rb["n"] and
                max(dg, db, dc) <= 1e-12,
                "%s: G, B, c equal to 1e-12 relative (G %.1e, B %.1e, c %.1e; n %d)"
                % (what, dg, db, dc, rb["n"]))


def left_running(tmp):
    """The vvd processes of this test still running (their command line names tmp)."""
    p = subprocess.run(["pgrep", "-f", "-a", tmp], capture_output=True, text=True)
    return [line for line in p.stdout.splitlines() if "vvd" in line]


def main():
    if not MPIRUN:
        print("1..0 # SKIP mpirun not found (Debian: apt-get install openmpi-bin)")
        return 77
    tmp = tempfile.mkdtemp(prefix="vvd-mpi-")
    try:
        lasso_cases(tmp)
        nccl_cases(tmp)
        failure_cases(tmp)
        compress_case(tmp)
        t.ok(not left_running(tmp), "no vvd process of this test is left running",
             left_running(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


def lasso_cases(tmp):
    subprocess.run([VVD, "gen", "--n", "6000", "--k", "48", "--d", "6", "--seed", "7", "--out",
                    os.path.join(tmp, "data")], check=True, capture_output=True)
    base = {"kind": "lasso", "phi": "data/phi.npy", "psi": "data/psi.npy", "lambda_ratio": 0.1,
            "bias": [0.1, -0.2, 0.3, 0, 0.5, -1], "tol": 1e-9, "metrics_every": 1,
            "save_stats": True}
    rc1, r1, _, err1, _ = run(tmp, base, "one")
    t.ok(rc1 == 0 and r1.get("state") == "FINISHED", "one process: FINISHED", err1[-800:])
    rc2, r2, ev2, err2, _ = run(tmp, base, "two", np=2)
    if not t.ok(rc2 == 0 and r2.get("state") == "FINISHED" and r2.get("ranks") == 2,
                "mpirun -np 2 vvd run: FINISHED on 2 ranks", err2[-1500:]):
        if "without MPI" in err2 + json.dumps(r2):
            t.diag("this vvd was built without MPI although mpirun is installed: "
                   "install libopenmpi-dev and rebuild (meson -Dmpi=enabled)")
        return
    t.ok([e.get("event") for e in ev2].count("result") == 1 and
         [e.get("event") for e in ev2].count("start") == 1,
         "only rank 0 prints events: one start, one result")
    same_stats(tmp, "one", "two", "2 ranks over one .npy")
    # The same statistics give the same solve: with a report every iteration
    # the solver takes the same steps; V agrees to float32 rounding.
    k1 = read_npy(os.path.join(tmp, "one", "kept.npy"))[1]
    k2 = read_npy(os.path.join(tmp, "two", "kept.npy"))[1]
    v1 = read_npy(os.path.join(tmp, "one", "V.npy"))[1]
    v2 = read_npy(os.path.join(tmp, "two", "V.npy"))[1]
    # (The single process's own sums vary in their last bits from run to run,
    # its workers taking chunks in any order, so the solver may stop one
    # iteration apart.)
    t.ok(k1 == k2 and 0 < len(k1) < 48 and rel(v2, v1) <= 1e-5 and
         abs(r2["objective"] - r1["objective"]) <= 1e-9 * r1["objective"],
         "the solution is the same: kept %d neurons, %d iterations, V to %.1e, objective to %.1e"
         % (len(k2), r2["iterations"], rel(v2, v1),
            abs(r2["objective"] - r1["objective"]) / r1["objective"]),
         {"kept": (k1, k2), "iterations": (r1["iterations"], r2["iterations"])})

    # Shards: 5 pieces of the same rows (one of a single row); each rank reads
    # whole shards; without MPI the concatenation.
    cuts = [0, 1000, 1001, 2500, 4700, 6000]
    for i in range(5):
        for side in ("phi", "psi"):
            slice_npy(os.path.join(tmp, "data", side + ".npy"),
                      os.path.join(tmp, "data", "%s_%d.npy" % (side, i)), cuts[i], cuts[i + 1])
    shards = dict(base, phi=["data/phi_%d.npy" % i for i in range(5)],
                  psi=["data/psi_%d.npy" % i for i in range(5)])
    rc3, r3, _, err3, _ = run(tmp, shards, "shards1")
    t.ok(rc3 == 0 and r3.get("n") == 6000, "a list of shards in one process: their rows",
         err3[-800:])
    same_stats(tmp, "one", "shards1", "shards without MPI")
    rc4, r4, _, err4, _ = run(tmp, shards, "shards2", np=2)
    t.ok(rc4 == 0 and r4.get("n") == 6000 and r4.get("kept") == r1.get("kept"),
         "shards over 2 ranks: FINISHED, n 6000, the same kept count", err4[-800:])
    same_stats(tmp, "one", "shards2", "shards over 2 ranks")
    rc5, _, _, err5, _ = run(tmp, shards, "shards3", np=3)
    same_stats(tmp, "one", "shards3", "shards over 3 ranks") if rc5 == 0 else \
        t.ok(False, "shards over 3 ranks", err5[-800:])

    # The synthetic problem: rows are a function of (seed, row).
    gen = dict(base, generate={"n": 5001, "k": 32, "d": 3, "seed": 2}, bias=[0.5, 0, -0.5])
    del gen["phi"], gen["psi"]
    run(tmp, gen, "gen1")
    rc6, _, _, err6, _ = run(tmp, gen, "gen2", np=2)
    same_stats(tmp, "gen1", "gen2", "the synthetic problem over 2 ranks") if rc6 == 0 else \
        t.ok(False, "the synthetic problem over 2 ranks", err6[-800:])

    # One rank under mpirun is one process.
    rc7, r7, _, err7, _ = run(tmp, base, "np1", np=1)
    t.ok(rc7 == 0 and r7.get("state") == "FINISHED" and "ranks" not in r7,
         "mpirun -np 1: FINISHED as one process", err7[-800:])
    same_stats(tmp, "one", "np1", "mpirun -np 1")


def nccl_cases(tmp):
    """The CUDA backend under mpirun: G and Bt summed between the GPUs with
    NCCL before they come back to the host, here on the CUDA emulator and its
    emulated NCCL (tests/gpu/emu; each process's emulated GPU is its own)."""
    drv, nccl = os.environ.get("VV_TEST_CUDA_EMULATOR"), os.environ.get("VV_TEST_NCCL_EMULATOR")
    if not drv or not nccl:
        t.ok(True, "# SKIP sums between GPUs: no CUDA or NCCL emulator (vvd without CUDA or NCCL)")
        return
    env = {"VVD_CUDA_DRIVER": drv, "VVD_CUBLAS": drv, "VVD_NCCL": nccl}
    base = {"kind": "lasso", "phi": "data/phi.npy", "psi": "data/psi.npy", "lambda_ratio": 0.1,
            "bias": [0.1, -0.2, 0.3, 0, 0.5, -1], "tol": 1e-9, "metrics_every": 1,
            "save_stats": True}
    dev = ("--device", "cuda:0")
    rc, r, _, err, _ = run(tmp, base, "nccl2", np=2, env=env, args=dev)
    summed = "G and Bt summed between the GPUs with NCCL (2 ranks"
    if not t.ok(rc == 0 and r.get("state") == "FINISHED" and r.get("ranks") == 2 and
                summed in err and "summed on the host" not in err,
                "cuda:0 on 2 ranks: G and Bt summed between the GPUs with NCCL", err[-1500:]):
        return
    same_stats(tmp, "one", "nccl2", "NCCL sums over 2 ranks")
    rc, r2, _, err, _ = run(tmp, base, "nccl2host", np=2, env=dict(env, VV_NO_NCCL="1"),
                            args=dev)
    t.ok(rc == 0 and "G and Bt summed on the host (MPI_Allreduce, 2 ranks)" in err and
         "NCCL" not in err, "VV_NO_NCCL=1: the sums go through the host", err[-1500:])
    same_stats(tmp, "nccl2", "nccl2host", "NCCL and host sums")
    v1 = read_npy(os.path.join(tmp, "nccl2", "V.npy"))[1]
    v2 = read_npy(os.path.join(tmp, "nccl2host", "V.npy"))[1]
    v0 = read_npy(os.path.join(tmp, "one", "V.npy"))[1]
    t.ok(v1 == v2 and r.get("iterations") == r2.get("iterations") and
         read_npy(os.path.join(tmp, "nccl2", "kept.npy"))[1] ==
         read_npy(os.path.join(tmp, "one", "kept.npy"))[1] and rel(v1, v0) <= 1e-5,
         "the solution is the same: V identical to the host sums', to %.1e of one CPU process's"
         % rel(v1, v0))
    # Two ranks on one GPU: NCCL refuses that, so the sums stay on the host.
    rc, _, _, err, _ = run(tmp, base, "nccl2dup", np=2,
                           env=dict(env, VV_EMU_PCI_BUS_ID="0000:17:00.0"), args=dev)
    t.ok(rc == 0 and "ranks 0 and 1 share the GPU" in err and
         "summed on the host (MPI_Allreduce" in err and "nccl emulator" not in err,
         "2 ranks on one GPU: the sums go through the host", err[-1500:])
    same_stats(tmp, "one", "nccl2dup", "ranks sharing a GPU")
    # 1500 rows are 2 chunks for 3 ranks: the third brings zeros to the sums.
    gen = dict(base, generate={"n": 1500, "k": 40, "d": 3, "seed": 5}, bias=[0.5, 0, -0.5])
    del gen["phi"], gen["psi"]
    run(tmp, gen, "ngen1")
    rc, _, _, err, _ = run(tmp, gen, "ngen3", np=3, env=env, args=dev)
    t.ok(rc == 0 and "with NCCL (3 ranks" in err, "3 ranks, one with no rows: NCCL sums",
         err[-1500:])
    same_stats(tmp, "ngen1", "ngen3", "NCCL sums over 3 ranks, one empty")
    # Rank 1 failing during its pass (a NaN in its last shard): rank 0, at
    # the checkpoint before the sums, ends with its message; nobody hangs.
    with open(os.path.join(tmp, "data", "psi_4.npy"), "rb") as f:
        data = bytearray(f.read())
    data[-8:] = struct.pack("<d", float("nan"))
    with open(os.path.join(tmp, "data", "psi_nan.npy"), "wb") as f:
        f.write(data)
    bad = dict(base, phi=["data/phi_%d.npy" % i for i in range(5)],
               psi=["data/psi_%d.npy" % i for i in range(4)] + ["data/psi_nan.npy"])
    rc, r, _, err, secs = run(tmp, bad, "nccl2nan", np=2, env=env, args=dev, timeout=120)
    d = r.get("error", {}).get("detail", "")
    t.ok(rc not in (0, -9) and d.startswith("rank 1: ") and "psi_nan.npy" in d and
         len([x for x in err.splitlines() if "ERROR" in x and "rank 1: " in x]) == 2,
         "a rank failing during its pass on the GPU ends both: %s (%.1f s)" % (d, secs),
         err[-1500:])


def failure_cases(tmp):
    spec = {"kind": "lasso", "phi": ["data/phi_0.npy", "data/phi_1.npy", "data/phi_2.npy",
                                     "data/phi_3.npy", "data/phi_gone.npy"],
            "psi": ["data/psi_%d.npy" % i for i in range(5)], "lambda_ratio": 0.1}
    rc, r, ev, err, secs = run(tmp, spec, "missing", np=2, timeout=120)
    e = r.get("error", {})
    t.ok(rc not in (0, -9) and e.get("error_code") == "FILE_NOT_FOUND" and
         e.get("detail", "").startswith("rank 1: ") and "phi_gone.npy" in e.get("detail", "") and
         e.get("field") == "/phi/4",
         "a shard missing on rank 1 fails the job: exit %d, %s (field %s), in %.1f s"
         % (rc, e.get("detail"), e.get("field"), secs), err[-1500:])
    lines = [x for x in err.splitlines() if "ERROR" in x and "rank 1: " in x]
    t.ok(len(lines) == 2 and all("phi_gone.npy: no such file" in x for x in lines),
         "both ranks log rank 1's message", err[-1500:])
    t.ok([x.get("event") for x in ev] == ["result"] and not os.path.exists(
        os.path.join(tmp, "missing", "V.npy")), "nothing was solved or written")
    t.ok(not left_running(tmp), "mpirun returned and no rank is left running",
         left_running(tmp))

    # Rank 0 failing after its share (its output folder cannot be made):
    # rank 1, waiting to sum, ends with rank 0's message.
    bad = dict(spec, phi=spec["phi"][:4] + ["data/phi_4.npy"])
    path = os.path.join(tmp, "nodir.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    p = subprocess.run([MPIRUN, "-np", "2", "--oversubscribe", VVD, "run", path, "--out",
                        "/proc/vvd-none/out"], capture_output=True, text=True, timeout=120,
                       env=ENV, cwd=tmp)
    lines = [x for x in p.stderr.splitlines() if "ERROR" in x and "rank 0: " in x]
    t.ok(p.returncode != 0 and len(lines) == 2 and "/proc/vvd-none" in lines[0],
         "rank 0 failing after the pass ends rank 1 too, with rank 0's message", p.stderr[-1500:])

    # Fewer shards than ranks, and kinds that do not share a pass.
    rc, r, _, _, _ = run(tmp, dict(spec, phi=spec["phi"][:1], psi=spec["psi"][:1]), "toofew",
                         np=2, timeout=120)
    t.ok(rc != 0 and "1 shards for 2 ranks" in r.get("error", {}).get("detail", ""),
         "fewer shards than ranks is refused", r)
    rc, r, _, _, _ = run(tmp, {"kind": "bounds_study", "figure": "fig3"}, "kind", np=2,
                         timeout=120)
    t.ok(rc != 0 and "runs in one process" in r.get("error", {}).get("detail", ""),
         "a kind without a statistics pass is refused under mpirun", r)


def one_and_two(tmp, spec, name):
    """spec run by one process (name1) and by 2 ranks (name2): both ran,
    their results, kept.json of each, each layer's (lambda_max, lambda_max)
    and the stderr tail."""
    rc1, r1, _, err1, _ = run(tmp, spec, name + "1")
    rc2, r2, _, err2, _ = run(tmp, spec, name + "2", np=2)
    ok = rc1 == 0 and rc2 == 0
    kept = [json.load(open(os.path.join(tmp, name + s, "kept.json"))) if ok else {s: 0}
            for s in ("1", "2")]
    lm = [(a["lambda_max"], b["lambda_max"]) for a, b in zip(r1["layers"], r2["layers"])] \
        if ok else [(1, 0)]
    return ok, r1, r2, kept[0], kept[1], lm, (err1 + err2)[-1500:]


def compress_case(tmp):
    if not os.path.exists(os.path.join(FMNIST, "train-images-idx3-ubyte.gz")):
        t.ok(False, "Fashion-MNIST is installed (dataset-fashion-mnist) at " + FMNIST)
        return
    weights = os.path.join(FIX, "fmnist", "mlp_128_64.safetensors")
    spec = {"kind": "compress",
            "model": {"arch": "mlp", "input": [1, 28, 28], "sizes": [784, 128, 64, 10],
                      "weights": weights, "preprocess": {"mean": [0.286], "std": [0.353]}},
            "layers": ["fc2", "fc3"], "lambda_ratio": 0.05, "metrics_every": 1,
            "data": {"format": "fashion-mnist", "max_train": 3001, "max_test": 1000},
            "finetune": {"epochs": 1}}
    rc1, r1, _, err1, _ = run(tmp, spec, "c1")
    rc2, r2, _, err2, _ = run(tmp, spec, "c2", np=2)
    if not t.ok(rc1 == 0 and rc2 == 0 and r2.get("state") == "FINISHED",
                "compress (sequential, refit, baseline, fine-tuning) on 2 ranks: FINISHED",
                (err1 + err2)[-1500:]):
        return
    kept1 = json.load(open(os.path.join(tmp, "c1", "kept.json")))
    kept2 = json.load(open(os.path.join(tmp, "c2", "kept.json")))
    t.ok(kept1 == kept2 and [l["kept"] for l in r1["layers"]] == [l["kept"] for l in r2["layers"]],
         "the same neurons are kept: %s" % {k: len(v) for k, v in kept2.items()})
    diffs = []
    for stage in r1["stages"]:
        for key in ("train_acc", "test_acc", "train_loss", "test_loss"):
            a, b = r1["stages"][stage].get(key), r2["stages"][stage].get(key)
            if a is not None and abs(a - b) > 1e-6:
                diffs.append((stage, key, a, b))
    for key in ("pruned", "refit", "finetuned"):
        a, b = r1["baseline"][key]["test_acc"], r2["baseline"][key]["test_acc"]
        if abs(a - b) > 1e-6:
            diffs.append(("baseline " + key, "test_acc", a, b))
    t.ok(not diffs and sorted(r1["stages"]) == sorted(r2["stages"]),
         "every stage's accuracies and losses equal to 1e-6 (%s)" % ", ".join(sorted(r2["stages"])),
         diffs)
    t.ok(all(abs(a["lambda_max"] - b["lambda_max"]) <= 1e-12 * a["lambda_max"]
             for a, b in zip(r1["layers"], r2["layers"])),
         "each layer's lambda_max (from the summed statistics) equal to 1e-12",
         [(a["lambda_max"], b["lambda_max"]) for a, b in zip(r1["layers"], r2["layers"])])

    # Channels: conv layers' rows are sampled positions, drawn per image by
    # the seed, so the ranks' shares add up to one process's rows.
    cnn = {"kind": "compress",
           "model": {"arch": "fmnist_cnn", "width_div": 4, "seed": 3,
                     "preprocess": {"mean": [0.286], "std": [0.353]}},
           "layers": "all", "lambda_ratio": 0.05, "positions_per_image": 8,
           "data": {"format": "fashion-mnist", "max_train": 1001, "max_test": 200},
           "finetune": False, "baseline": False}
    ok, r1, r2, kept1, kept2, lm, err = one_and_two(tmp, cnn, "cnn")
    # The first layer's statistics are the original network's; later ones
    # come from a network changed by solves certified to rel_gap 1e-6, whose
    # iterates differ with the sums' rounding.
    t.ok(ok and kept1 == kept2 and abs(lm[0][0] - lm[0][1]) <= 1e-12 * lm[0][0] and
         all(abs(a - b) <= 1e-6 * a for a, b in lm),
         "channel pruning on 2 ranks: the same channels kept (%s), the first layer's lambda_max "
         "equal to 1e-12, the others to 1e-6" % {k: len(v) for k, v in kept1.items()},
         (lm, err))
    # Independent layers: all of them from the original network, in one
    # pass whose batches the ranks share.
    ok, r1, r2, kept1, kept2, lm, err = one_and_two(tmp, dict(cnn, sequential=False), "ind")
    n = len(lm)
    t.ok(ok and kept1 == kept2 and n >= 4 and all(abs(a - b) <= 1e-12 * a for a, b in lm) and
         all(l["stats_pass_layers"] == n for l in r1["layers"] + r2["layers"]),
         "independent layers on 2 ranks: the %d layers' statistics in one shared pass, the same "
         "channels kept, every lambda_max equal to 1e-12" % n, (lm, err))

    # A trunk (a narrow VGG-19's convolutions, below classifier.1): the ranks
    # split its images, each then holds all of it, and the statistics passes
    # of every rank start from it (sequential, with the baseline: 3 passes).
    cdir = os.path.join(tmp, "cifar")
    write_cifar10(cdir, 60, 30, seed=6)
    vgg = {"kind": "compress",
           "model": {"arch": "vgg19_cifar", "width_div": 16, "seed": 2,
                     "preprocess": {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}},
           "layers": "all_linear", "lambda_ratio": 0.3, "batch_size": 64,
           "data": {"format": "cifar10", "dir": cdir}, "finetune": False}
    ok, r1, r2, _, _, lm, err = one_and_two(tmp, vgg, "vgg")
    tr1, tr2 = (r1.get("trunk", {}), r2.get("trunk", {})) if ok else ({}, {})
    t.ok(ok and tr1.get("ranks") == 1 and tr2.get("ranks") == 2 and
         tr2.get("train_rows") == 300 and tr2.get("statistics_passes") == 3 and
         tr1.get("statistics_passes") == 3,
         "a trunk split between 2 ranks (300 images in batches of 64), every statistics pass "
         "from it", (tr1, tr2, err))
    # The ranks' forward passes split a batch between fewer threads than
    # one process does (BLAS's float32 rounding depends on it).
    t.ok(ok and [l["kept"] for l in r1["layers"]] == [l["kept"] for l in r2["layers"]] and
         all(abs(a - b) <= 1e-6 * a for a, b in lm) and
         all(abs(r1["stages"][s][q] - r2["stages"][s][q]) <= 1e-6 for s in r1["stages"]
             for q in ("train_acc", "test_acc", "train_loss", "test_loss")),
         "with the split trunk: the same neurons kept, lambda_max to 1e-6, every stage's "
         "accuracies and losses to 1e-6", lm)


if __name__ == "__main__":
    sys.exit(main())
