#!/usr/bin/env python3
"""Pretty-prints the NDJSON events of `vvd run` read from standard input."""
import json
import sys

for line in sys.stdin:
    e = json.loads(line)
    ev = e.get("event")
    if ev == "start":
        print("problem: N=%d K=%d D=%d, solver %s, OpenBLAS kernel %s"
              % (e["n"], e["k"], e["d"], e["solver"], e["blas"]))
    elif ev == "stats":
        print("statistics: %.3f s (%.1f GFLOP/s), lambda_max %.4g"
              % (e["seconds"], e["gflops"], e["lambda_max"]))
    elif ev == "metric":
        print("  step %5d  objective %.10g  rel_gap %.2e  active %d"
              % (e["step"], e["objective"], e["rel_gap"], e["active"]))
    elif ev == "point":
        print("  point %d: lambda %.4g  active %d  rel_gap %.2e"
              % (e["index"], e["lambda"], e["active"], e["rel_gap"]))
    elif ev == "result":
        if e["state"] == "FAILED":
            err = e["error"]
            print("FAILED: %s (%s at '%s')" % (err["detail"], err["error_code"], err["field"]))
            sys.exit(1)
        print("%s (%s): %d of %d neurons kept, objective %.10g, rel_gap %.2e, %.2f s in all"
              % (e["state"], e["stop_reason"], e["kept"], e["k"], e["objective"], e["rel_gap"],
                 e["seconds"]))
        if "refit" in e:
            print("refit on the kept neurons: mse %.6g (lasso mse %.6g)" % (e["refit"]["mse"], e["mse"]))
        print("V (D x K float32): %s; kept indices: %s" % (e["outputs"]["V"], e["outputs"]["kept"]))
