# SPDX-License-Identifier: Apache-2.0
"""A Python training loop run under tfprof-start by test_start.py: it calls start()/stop() itself,
as a program written for TensorFlow's profiler does, and drives the simulated GPU after
"initializing CUDA" the way the CUDA driver does under tfprof-start (dlopen of
CUDA_INJECTION64_PATH, InitializeInjection). Prints what the test checks as one JSON object.
    usage: start_prog.py LOGDIR SIMULATOR"""

import ctypes
import json
import os
import sys
import warnings

import tfprof
from tfprof import _tfprof

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sim_gpu import SimGpu  # noqa: E402

gpu = SimGpu(sys.argv[2])
init = ctypes.CDLL(os.environ["CUDA_INJECTION64_PATH"]).InitializeInjection
init.restype = ctypes.c_int
injected = init()

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    tfprof.experimental.start(sys.argv[1])
    for step in range(4):
        with tfprof.experimental.Trace("Train", step_num=step):
            with tfprof.experimental.Trace("Load") as tm:
                tm.set_metadata(in_cache=step % 2 == 1)
            with tfprof.experimental.Trace("Forward"):
                gpu.launch("_Z4gemmPfS_S_i")
            gpu.synchronize()
    tfprof.experimental.stop()

maps = {line.split()[-1] for line in open("/proc/self/maps") if "/libtfprof.so" in line}
print(json.dumps({
    "injected": injected,
    "library": _tfprof.library_path(),
    "preload": os.environ.get("LD_PRELOAD", ""),
    "mapped": sorted(maps),
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    "last_output": tfprof.last_output(),
    "pid": os.getpid(),
}))
