#!/usr/bin/env python3
"""Print the CUDA Toolkit root for an nvcc: the directory holding
include/cublas_v2.h.  nvcc is often a wrapper script (e.g. /usr/local/bin/nvcc
exec-ing the real one), so its own path is not enough: ask nvcc where its
toolkit is (`nvcc --dryrun` prints TOP=...), then try the usual places.
Prints nothing when no candidate has the cuBLAS header."""
import os
import re
import subprocess
import sys


def candidates(nvcc):
    yield os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    try:
        out = subprocess.run([nvcc, "--dryrun", "-c", "x.cu"], capture_output=True,
                             text=True, timeout=60).stderr
        m = re.search(r"^#\$ TOP=(.*)$", out, re.M)
        if m:
            yield m.group(1).strip()
    except (OSError, subprocess.SubprocessError):
        pass
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            yield os.environ[var]
    yield "/usr/local/cuda"


for root in candidates(sys.argv[1]):
    root = os.path.realpath(root)
    if os.path.isfile(os.path.join(root, "include", "cublas_v2.h")):
        print(root)
        break
