# SPDX-License-Identifier: Apache-2.0
"""A training loop written with the tfprof Python package (tfprof.experimental, the seed's API),
on the CUPTI simulator, for the interop test: xprof must open what Python wrote as it opens the
C examples' profiles (steps on the overview page, Python scopes above the CUDA calls and the GPU
streams in the trace viewer, every kernel in kernel stats).
    usage: python_loop.py LOGDIR SIMULATOR   (run with the interpreter of a venv holding tfprof)"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "python"))

os.environ["TFPROF_CUPTI_LIBRARY"] = sys.argv[2]
os.environ.pop("TFPROF_GPU", None)

import tfprof  # noqa: E402
from sim_gpu import HTOD, SimGpu  # noqa: E402

gpu = SimGpu(sys.argv[2])
tf = tfprof  # the seed's code, with only the import changed
tf.profiler.experimental.start(sys.argv[1])
for step in range(5):
    with tf.profiler.experimental.Trace("Train", step_num=step):
        with tf.profiler.experimental.Trace("Load") as tm:
            gpu.copy(HTOD, 1 << 20, 30000)
            tm.set_metadata(in_cache=step % 2 == 1)
        with tf.profiler.experimental.Trace("Forward"):
            gpu.launch("_Z4gemmPfS_S_i", 200000)
            gpu.launch("_Z4reluPfi", 30000)
        with tf.profiler.experimental.Trace("Backward"):
            gpu.launch("_Z9gemm_gradPfS_S_i", 300000)
        gpu.synchronize()
tf.profiler.experimental.stop()
print(tfprof.last_output())
