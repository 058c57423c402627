# SPDX-License-Identifier: Apache-2.0
"""examples/python/train_loop.py, run as a user runs it: on its own (its start/stop write the
profile) and under tfprof-start (one profile with the Python scopes and the NVTX ranges of PyPI's
nvtx, and no exception from the script's own start/stop)."""

import glob
import os
import subprocess
import sys

import pytest

from conftest import HERE, read_profile, tool

EXAMPLE = HERE.parent.parent / "examples" / "python" / "train_loop.py"
STEPS = 8
# Batches cycle through 3 indexes with a cache of 4: the first 3 steps miss, the rest hit.
IN_CACHE = [0, 0, 0, 1, 1, 1, 1, 1]


def check_loop(p):
    steps = p.named("Train")
    assert [e.stats["step_num"] for e in steps] == list(range(STEPS))
    assert all(e.stats["_r"] == 1 and e.line == "MainThread" for e in steps)
    loads = p.named("Load")
    assert [e.stats["in_cache"] for e in loads] == IN_CACHE
    assert all(e.stats["batch"] == 256 for e in loads)
    for name in ["Load", "Forward", "Backward", "Optimizer"]:
        inner = p.named(name)
        assert len(inner) == STEPS, name
        assert all(s.contains(e) for s, e in zip(steps, inner)), name
    return steps


def run(cmd, tmp_path, env=None):
    e = dict(os.environ, **(env or {}))
    r = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return r


def test_example_writes_its_profile(tmp_path):
    r = run([sys.executable, str(EXAMPLE), "--logdir", "logdir", "--steps", str(STEPS),
             "--device", "cpu"], tmp_path)
    path = r.stdout.split("profile: ")[1].strip()
    assert path.startswith("logdir/plugins/profile/")
    check_loop(read_profile(str(tmp_path / path)))


def test_example_under_tfprof_start(tmp_path):
    start = tool("TFPROF_START_EXE")
    pytest.importorskip("nvtx")
    r = run([start, "--logdir", "whole", "--run", "r", "--", sys.executable, str(EXAMPLE),
             "--logdir", "own", "--steps", str(STEPS), "--device", "cpu"], tmp_path)
    assert "written by tfprof-start at exit" in r.stdout
    assert r.stderr.count("runs under tfprof-start") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "own").exists()
    [path] = glob.glob(str(tmp_path / "whole" / "plugins" / "profile" / "r" / "*.xplane.pb"))
    p = read_profile(path)
    check_loop(p)
    # nvtx.annotate("optimizer") from PyPI's nvtx, recorded by libtfprof as the NVTX tool,
    # inside the Trace scope around it.
    ranges = p.named("optimizer")
    assert len(ranges) == STEPS
    assert all(o.contains(r) for o, r in zip(p.named("Optimizer"), ranges))
