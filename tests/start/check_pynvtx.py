# SPDX-License-Identifier: Apache-2.0
"""Checks the profile that tfprof-start wrote for pynvtx_prog.py (run_pynvtx.sh): every range
and the mark are in it, on the thread that made them, with their domain; the five steps are
steps for tfprof-report; the nested ranges last as long as the program slept in them.
usage: check_pynvtx.py REPORT_BIN LOGDIR PROGRAM_OUTPUT"""
import gzip
import json
import os
import subprocess
import sys

report, logdir, prog_out = sys.argv[1:4]
said = json.load(open(prog_out))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


rep = json.loads(subprocess.run([report, "--json", logdir], check=True, capture_output=True,
                                text=True).stdout)
check(len(rep["hosts"]) == 1, f"one profile: {[h['host'] for h in rep['hosts']]}")
steps = rep["hosts"][0]["steps"]
check([s["step"] for s in steps] == list(range(said["steps"])), f"steps 0..4: {steps}")
# Each step sleeps 3 ms in its two ranges.
check(all(s["wall_ns"] >= 3_000_000 for s in steps), f"step walls >= 3 ms: {steps}")

trace = os.path.join(os.path.dirname(prog_out), "trace.json.gz")
subprocess.run([report, "--chrome-trace", trace, logdir], check=True, capture_output=True)
with gzip.open(trace, "rt") as f:
    events = json.load(f)["traceEvents"]
by_name = {}
for e in events:
    if e.get("ph") == "X":
        by_name.setdefault(e["name"], []).append(e)
main_tid = by_name["step 0"][0]["tid"] if "step 0" in by_name else None
for name, n in (("fwd", 5), ("bwd", 5), ("decorated", 1), ("a mark", 1)):
    check(len(by_name.get(name, [])) == n, f"{n} x {name}: {len(by_name.get(name, []))}")
check(all(e["args"].get("nvtx_domain") == "mymodel" for e in by_name.get("fwd", [])), "fwd in domain mymodel")
check(all(e["dur"] >= 2000 for e in by_name.get("fwd", [])), "fwd lasts >= 2 ms")
check(all(e["dur"] >= 1000 for e in by_name.get("bwd", [])), "bwd lasts >= 1 ms")
check(all(e["tid"] == main_tid for n in ("fwd", "bwd") for e in by_name.get(n, [])), "ranges on the main thread")
check([e["tid"] for e in by_name.get("decorated", [])] == [said["thread_native_id"]],
      "decorated on its own thread, whose line is its tid")
check([e["args"].get("nvtx_mark") for e in by_name.get("a mark", [])] == [1], "the mark has nvtx_mark")
for i in range(said["steps"]):
    s = by_name.get(f"step {i}", [{}])[0]
    inner = [e for n in ("fwd", "bwd") for e in by_name.get(n, [])
             if s and s["ts"] <= e["ts"] and e["ts"] + e["dur"] <= s["ts"] + s["dur"]]
    check(len(inner) == 2, f"step {i} holds its fwd and bwd")
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("pynvtx: all checks passed")
