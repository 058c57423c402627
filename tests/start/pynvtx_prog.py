# SPDX-License-Identifier: Apache-2.0
"""A Python program annotated with PyPI's nvtx package and nothing of tfprof's: run by
run_pynvtx.sh under tfprof-start. Five steps ("step 0".."step 4"), each with a "fwd" range in
the domain "mymodel" (2 ms) and a start/end "bwd" range (1 ms); a decorated function on a second
thread; and a mark. It prints, as JSON, what it did, for check_pynvtx.py to compare."""
import json
import sys
import threading
import time

import nvtx

STEPS = 5


def step(i):
    with nvtx.annotate(f"step {i}", color="blue"):
        with nvtx.annotate("fwd", domain="mymodel"):
            time.sleep(0.002)
        rng = nvtx.start_range("bwd")
        time.sleep(0.001)
        nvtx.end_range(rng)


@nvtx.annotate("decorated")
def on_thread():
    time.sleep(0.001)


for i in range(STEPS):
    step(i)
t = threading.Thread(target=on_thread)
t.start()
t.join()
nvtx.mark("a mark")
json.dump({"steps": STEPS, "thread_native_id": t.native_id}, sys.stdout)
