# SPDX-License-Identifier: Apache-2.0
"""Checks tfprof-report on a profile that JAX itself wrote (tests/report/jax_steps.py): the steps
it finds and their host times must equal the "train" step events of the Chrome trace that JAX's
profiler wrote beside the XSpace, and the CSV, SVG and Chrome trace conversions must work on it.

usage: check_jax.py jax REPORT_BIN - WORKDIR   (the shared driver arguments of report_check.py;
no profile maker: JAX wrote WORKDIR/logdir)
"""
import glob
import gzip
import json
import os

from report_check import REPORT, WORK, check, main, run, words

LOGDIR = os.path.join(WORK, "logdir")
STEPS = 5


def case_jax():
    pbs = glob.glob(os.path.join(LOGDIR, "plugins", "profile", "*", "*.xplane.pb"))
    traces = glob.glob(os.path.join(LOGDIR, "plugins", "profile", "*", "*.trace.json.gz"))
    if not check(len(pbs) == 1 and len(traces) == 1, f"JAX wrote one XSpace and one trace: {pbs} {traces}"):
        return
    with gzip.open(traces[0]) as fh:
        jax_trace = json.load(fh)
    # JAX's own view of the steps: complete events named "train" with their step_num, in us.
    truth = {}
    for e in jax_trace["traceEvents"]:
        if e.get("ph") == "X" and e.get("name") == "train":
            truth[int(e["args"]["step_num"])] = float(e["dur"]) * 1000.0
    check(sorted(truth) == list(range(STEPS)), f"JAX's trace has steps 0..{STEPS - 1}: {sorted(truth)}")

    # The logdir form, as a user would pass it.
    rep = json.loads(run("--json", LOGDIR).stdout)
    hosts = rep["hosts"]
    if not check(len(hosts) == 1, f"one host: {[h['host'] for h in hosts]}"):
        return
    h = hosts[0]
    check(h["has_host_plane"] and h["gpu_planes"] == 0, "a host plane and no GPU plane (JAX on the CPU)")
    got = {s["step"]: s["wall_ns"] for s in h["steps"]}
    check(sorted(got) == list(range(STEPS)), f"steps 0..{STEPS - 1}: {sorted(got)}")
    for n, want in truth.items():
        # JAX's trace rounds to whole ns (three decimals of us); ours are whole ns too.
        check(n in got and abs(got[n] - want) <= 1.0, f"step {n}: wall {got.get(n)} ns, JAX says {want} ns")
    s = h["summary"]
    check(s["steps"] == STEPS and s["verdict"] == "host only", f"summary: {s}")
    walls = sorted(truth.values())
    check(abs(s["median_ns"] - walls[STEPS // 2]) <= 1.0, f"median {s['median_ns']} vs {walls[STEPS // 2]}")

    text = words(run(pbs[0]).stdout)
    check("5 steps" in text and "verdict: host only" in text, f"text report: {text[:400]!r}")
    csv = run("--csv", "--only", "steps", pbs[0]).stdout.strip().splitlines()
    check(len(csv) == STEPS + 1, f"CSV: a header and {STEPS} rows: {csv}")

    out = os.path.join(LOGDIR, "converted.json")
    run("--chrome-trace", out, pbs[0])
    with open(out) as fh:
        ours = json.load(fh)
    train = sorted(e["dur"] for e in ours["traceEvents"] if e.get("ph") == "X" and e.get("name") == "train")
    want = sorted(v / 1000.0 for v in truth.values())
    check(len(train) == STEPS and all(abs(a - b) <= 0.002 for a, b in zip(train, want)),
          f"the converted trace's train slices {train} match JAX's {want}")
    svg = os.path.join(LOGDIR, "steps.svg")
    run("--svg", svg, pbs[0])
    check(os.path.getsize(svg) > 1000, "the SVG chart was written")


if __name__ == "__main__":
    main({"jax": case_jax})
