# SPDX-License-Identifier: Apache-2.0
"""Checks tfprof-report --json output for a Python training loop on the GPU (PyTorch under
tfprof-start, or CuPy with tfprof's Python API): every step is there, each with kernels, and the
GPU plane says nothing went wrong.
Usage: check_torch_report.py STEPS < report.json"""
import json
import sys

steps = int(sys.argv[1])
report = json.load(sys.stdin)
hosts = [h for h in report["hosts"] if h["gpu_planes"]]
if len(hosts) != 1:
    sys.exit(f"expected one profile with a GPU plane, found {len(hosts)}")
h = hosts[0]
if h["errors"]:
    sys.exit(f"profile errors: {h['errors']}")
got = h["steps"]
if len(got) != steps:
    sys.exit(f"expected {steps} steps, found {len(got)}")
empty = [s["step"] for s in got if s["kernels"] == 0]
if empty:
    sys.exit(f"steps without kernels: {empty}")
print(json.dumps({"check": "python_gpu_loop", "steps": len(got), "device_events": h["device_events"],
                  "warnings": h["warnings"]}))
