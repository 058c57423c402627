# SPDX-License-Identifier: Apache-2.0
"""What a Python scope costs, measured in one process and one run so the ratios hold on a noisy
machine: `with tfprof.Trace("Train", step_num=i)` with and without a session, PyPI nvtx.annotate
with no NVTX tool attached, TensorFlow's tf.profiler.experimental.Trace when TensorFlow can be
imported, all against the same empty loop; and the slowdown python_tracer_level=1 puts on a
function-call-heavy loop (a recursive fib). Prints one JSON object per line.

Run it by hand inside the test environment (ctest python_pytest makes it):
    build/tests/python/path/venv/bin/python bench/python_trace.py [--reps 9] [--n 200000]
"""

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import tfprof
from tfprof import ProfilerOptions

# The host only: the benchmark measures the Python scope, not CUPTI's start-up.
HOST_ONLY = ProfilerOptions(device_tracer_level=0)


def loop_empty(n):
    t0 = time.perf_counter_ns()
    for i in range(n):
        pass
    return time.perf_counter_ns() - t0


def loop_tfprof(n):
    Trace = tfprof.Trace
    t0 = time.perf_counter_ns()
    for i in range(n):
        with Trace("Train", step_num=i):
            pass
    return time.perf_counter_ns() - t0


def make_loop_nvtx():
    import nvtx
    annotate = nvtx.annotate

    def loop_nvtx(n):
        t0 = time.perf_counter_ns()
        for i in range(n):
            with annotate("Train"):
                pass
        return time.perf_counter_ns() - t0
    return loop_nvtx


def make_loop_tf(tf):
    Trace = tf.profiler.experimental.Trace

    def loop_tf(n):
        t0 = time.perf_counter_ns()
        for i in range(n):
            with Trace("Train", step_num=i):
                pass
        return time.perf_counter_ns() - t0
    return loop_tf


def fib(k):
    return k if k < 2 else fib(k - 1) + fib(k - 2)


def loop_fib(n):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fib(20)
    return time.perf_counter_ns() - t0


class Session:
    """A session around one timed run (start and stop are outside the timing), so that each
    repetition records into fresh buffers and none drops events for want of memory."""

    def __init__(self, kind, options=HOST_ONLY, tf=None):
        self.kind, self.options, self.tf = kind, options, tf

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="tfprof-bench-")
        if self.kind == "tfprof":
            tfprof.start(self.dir, self.options)
        elif self.kind == "tf":
            self.tf.profiler.experimental.start(self.dir, options=self.options)

    def __exit__(self, *exc):
        if self.kind == "tfprof":
            tfprof.stop()
        elif self.kind == "tf":
            self.tf.profiler.experimental.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def import_tensorflow():
    """TensorFlow only if it is already importable here: the benchmark installs nothing."""
    try:
        import tensorflow as tf
    except Exception as e:  # noqa: BLE001: any failure to import means the columns are skipped
        return None, f"tensorflow cannot be imported in {sys.prefix}: {type(e).__name__}: {e}"
    return tf, None


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def measure(cases, n, reps):
    """Runs every case reps times, interleaved (case order rotates each round so that no case
    always follows the same one); returns the median ns per iteration of each."""
    times = {name: [] for name, _, _ in cases}
    gc.disable()
    try:
        for r in range(reps):
            k = r % len(cases)
            for name, fn, session in cases[k:] + cases[:k]:
                with session():
                    times[name].append(fn(n) / n)
    finally:
        gc.enable()
    return {name: statistics.median(v) for name, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="scopes per timed run")
    ap.add_argument("--reps", type=int, default=9, help="interleaved repetitions (median)")
    ap.add_argument("--fib-n", type=int, default=5, help="fib(20) calls per timed run")
    args = ap.parse_args()
    os.environ.setdefault("TFPROF_GPU", "0")

    tf, tf_why = import_tensorflow()
    try:
        loop_nvtx, nvtx_why = make_loop_nvtx(), None
    except ImportError as e:
        loop_nvtx, nvtx_why = None, f"nvtx cannot be imported: {e}"

    print(json.dumps({"bench": "python_trace", "cpu": cpu_model(),
                      "python": platform.python_version(), "tfprof": tfprof.__version__,
                      "n": args.n, "reps": args.reps,
                      "tensorflow": tf.__version__ if tf else None}))

    none = lambda: Session(None)  # noqa: E731
    cases = [("empty", loop_empty, none),
             ("tfprof_disabled", loop_tfprof, none),
             ("tfprof_enabled", loop_tfprof, lambda: Session("tfprof"))]
    if loop_nvtx:
        cases.append(("nvtx_annotate_no_tool", loop_nvtx, none))
    if tf:
        loop_tf = make_loop_tf(tf)
        cases += [("tf_disabled", loop_tf, none),
                  ("tf_enabled", loop_tf, lambda: Session("tf", tf=tf))]
    med = measure(cases, args.n, args.reps)

    empty = med["empty"]
    tf_of = {"tfprof_disabled": "tf_disabled", "tfprof_enabled": "tf_enabled"}
    for name, ns in med.items():
        row = {"case": name, "ns_per_iter": round(ns, 1),
               "ns_over_empty": round(ns - empty, 1), "x_empty": round(ns / empty, 2)}
        if name in tf_of:
            if tf:
                tf_cost = med[tf_of[name]] - empty
                row["x_tf"] = round((ns - empty) / tf_cost, 3) if tf_cost > 0 else None
            else:
                row["x_tf"] = None
        print(json.dumps(row))
    for name, why in [("nvtx_annotate_no_tool", nvtx_why), ("tf_disabled", tf_why),
                      ("tf_enabled", tf_why)]:
        if why:
            print(json.dumps({"case": name, "skipped": why}))

    # python_tracer_level=1 on a loop of function calls: fib(20) is 21,891 calls; measure()
    # divides by fib_n already, so its medians are per fib(20).
    fib_cases = [("fib_no_session", loop_fib, none),
                 ("fib_session", loop_fib, lambda: Session("tfprof")),
                 ("fib_python_tracer", loop_fib,
                  lambda: Session("tfprof", HOST_ONLY._replace(python_tracer_level=1)))]
    if tf:
        tf_traced = tf.profiler.experimental.ProfilerOptions(python_tracer_level=1)
        fib_cases.append(("fib_tf_python_tracer", loop_fib,
                          lambda: Session("tf", tf_traced, tf=tf)))
    fm = measure(fib_cases, args.fib_n, args.reps)
    calls = 21_891
    base = fm["fib_no_session"]
    for name, ns in fm.items():
        row = {"case": name, "ms_per_fib20": round(ns / 1e6, 3),
               "ns_per_call": round(ns / calls, 1), "slowdown": round(ns / base, 2)}
        if name == "fib_python_tracer" and tf:
            tf_extra = fm["fib_tf_python_tracer"] - base
            # TensorFlow 2.20 logs "python_tracer_level expects an i value" for its own
            # ProfilerOptions and then traces nothing: a ratio to that would mean nothing.
            if tf_extra > 0.1 * base:
                row["x_tf"] = round((ns - base) / tf_extra, 3)
            else:
                row["x_tf"] = None
                row["x_tf_why"] = ("TensorFlow's Python tracer added no time (under 10%): it did not "
                                   "run, so there is nothing to compare with")
        print(json.dumps(row))
    if tf_why:
        print(json.dumps({"case": "fib_tf_python_tracer", "skipped": tf_why}))


if __name__ == "__main__":
    main()
