# SPDX-License-Identifier: Apache-2.0
"""Under tfprof-start the extension binds to the preloaded libtfprof, never to the wheel's copy:
the Python scopes land in the activated session's profile, beside the simulated GPU work, and
the program's own start()/stop() raise nothing (one warning says who owns the session)."""

import glob
import json
import os
import subprocess
import sys

from conftest import HERE, read_profile, tool


def test_python_scopes_land_in_the_activated_session(tmp_path):
    start, sim = tool("TFPROF_START_EXE"), tool("TFPROF_CUPTI_SIM")
    env = dict(os.environ, TFPROF_CUPTI_LIBRARY=sim)
    env.pop("TFPROF_GPU", None)
    logdir = tmp_path / "logdir"
    r = subprocess.run([start, "--logdir", str(logdir), "--run", "py", "--", sys.executable,
                        str(HERE / "start_prog.py"), str(tmp_path / "own_logdir"), sim],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)

    # One libtfprof in the process, the preloaded one, and the extension calls it.
    preloaded = os.path.realpath(out["preload"].split(":")[0])
    assert "libtfprof" in preloaded
    assert [os.path.realpath(m) for m in out["mapped"]] == [preloaded], out
    assert os.path.realpath(out["library"]) == preloaded
    assert out["injected"] == 1

    # start()/stop() raised nothing; one warning, and the program's logdir stays empty.
    assert len(out["warnings"]) == 1 and "tfprof-start" in out["warnings"][0], out["warnings"]
    assert out["last_output"] is None
    assert not (tmp_path / "own_logdir" / "plugins").exists()

    [path] = glob.glob(str(logdir / "plugins" / "profile" / "py" / "*.xplane.pb"))
    assert path.endswith(f".{out['pid']}.xplane.pb")
    p = read_profile(path)
    steps = p.named("Train")
    assert [e.stats["step_num"] for e in steps] == [0, 1, 2, 3]
    assert all(e.stats["_r"] == 1 and e.line == "MainThread" for e in steps)
    assert [e.stats["in_cache"] for e in p.named("Load")] == [0, 1, 0, 1]
    launches = [e for e in p.events if e.stats.get("cuda_api") == "cudaLaunchKernel"]
    forwards = p.named("Forward")
    assert len(launches) == 4 and all(f.contains(l) for f, l in zip(forwards, launches))
    kernels = [d for d in p.device_events() if d[1].startswith("gemm")]
    assert len(kernels) == 4 and all(k[2]["scope_name"] == "Forward" for k in kernels)
