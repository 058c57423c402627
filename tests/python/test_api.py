# SPDX-License-Identifier: Apache-2.0
"""tfprof.experimental as a TensorFlow user relies on it: the seed's two examples verbatim (only
the import differs), typed metadata, nesting, thread lines, the options, the errors, and the
written profile read back for each."""

import os
import threading
import time
import warnings

import pytest

import tfprof
import tfprof as tf  # the one line that differs from a TensorFlow program
from conftest import read_profile


def test_seed_example_steps(tmp_path, host_only):
    num_steps = 5
    logdir = str(tmp_path / "logdir")

    def train_fn():
        with tf.profiler.experimental.Trace("Forward"):
            time.sleep(0.001)

    # The seed's first example, verbatim.
    tf.profiler.experimental.start(logdir)
    for step in range(num_steps):
        # Creates a trace event for each training step with the step number.
        with tf.profiler.experimental.Trace("Train", step_num=step):
            train_fn()
    tf.profiler.experimental.stop()

    path = tfprof.last_output()
    assert path.startswith(os.path.join(logdir, "plugins", "profile", ""))
    assert path.endswith(".xplane.pb")
    p = read_profile(path)
    steps = p.named("Train")
    assert [e.stats["step_num"] for e in steps] == list(range(num_steps))
    for e in steps:
        assert e.kinds["step_num"] == "int64"
        assert e.stats["_r"] == 1, "a step marker gets _r=1 so that xprof finds the steps"
        assert e.line == "MainThread"
    forwards = p.named("Forward")
    assert len(forwards) == num_steps
    for s, f in zip(steps, forwards):
        assert s.contains(f), f"{f} is not inside {s}"
        assert f.end - f.start >= 1_000_000_000 * 0.001 * 1000 * 0.9  # slept 1 ms
    assert p.space.warnings == []


def test_seed_example_set_metadata(tmp_path, host_only):
    class Function:
        def __init__(self, name):
            self.name = name

    compiled = set()

    def jit_compile(function):
        in_cache = function.name in compiled
        compiled.add(function.name)
        return b"binary:" + function.name.encode(), in_cache

    def execute(binary):
        with tf.profiler.experimental.Trace("execute", size=len(binary)):
            pass

    # The seed's second example, verbatim.
    def call(function):
        with tf.profiler.experimental.Trace("call",
                                            function_name=function.name) as tm:
            binary, in_cache = jit_compile(function)
            tm.set_metadata(in_cache=in_cache)
            execute(binary)

    tf.profiler.experimental.start(str(tmp_path))
    for name in ["matmul", "relu", "matmul"]:
        call(Function(name))
    tf.profiler.experimental.stop()

    p = read_profile(tfprof.last_output())
    calls = p.named("call")
    assert [(c.stats["function_name"], c.stats["in_cache"]) for c in calls] == [
        ("matmul", 0), ("relu", 0), ("matmul", 1)]
    assert all(c.kinds["function_name"] in ("str", "ref") for c in calls)
    assert all(c.kinds["in_cache"] == "int64" for c in calls), "a bool is a BOOL (0/1) stat"
    executes = p.named("execute")
    assert len(executes) == 3
    for c, x in zip(calls, executes):
        assert c.contains(x)
        assert x.stats["size"] == len(b"binary:") + len(c.stats["function_name"])


def test_typed_stats_and_last_value_wins(tmp_path, host_only):
    np = pytest.importorskip("numpy")

    class Custom:
        def __str__(self):
            return "custom!"

    tfprof.start(str(tmp_path))
    with tfprof.Trace("typed", b=True, i=-7, u=2**64 - 1, huge=2**70, neg_huge=-2**70, f=0.25,
                      s="text", o=Custom(), lst=[1, 2], npi=np.int64(3), npf=np.float64(1.5),
                      again=1) as tm:
        tm.set_metadata(again="last", later=2.5)
    tfprof.stop()

    e = read_profile(tfprof.last_output()).named("typed")[0]
    expect = {
        "b": (1, "int64"), "i": (-7, "int64"), "u": (2**64 - 1, "uint64"),
        "huge": (str(2**70), None), "neg_huge": (str(-2**70), None), "f": (0.25, "double"),
        "s": ("text", None), "o": ("custom!", None), "lst": ("[1, 2]", None),
        "npi": (3, "int64"), "npf": (1.5, "double"), "again": ("last", None),
        "later": (2.5, "double"),
    }
    for k, (v, kind) in expect.items():
        assert e.stats[k] == v, k
        assert e.kinds[k] == (kind or e.kinds[k]) and (kind or e.kinds[k] in ("str", "ref")), k
    assert len(e.stats) == len(expect)


def test_thread_lines_carry_threading_names(tmp_path, host_only):
    tfprof.start(str(tmp_path))
    ready = threading.Barrier(3)

    def worker(i):
        ready.wait()
        for j in range(3):
            with tfprof.Trace("load", batch=j, worker=i):
                pass

    threads = [threading.Thread(target=worker, args=(i,), name=f"loader-{i}") for i in range(2)]
    for t in threads:
        t.start()
    ready.wait()
    with tfprof.Trace("main_scope"):
        pass
    for t in threads:
        t.join()
    tfprof.stop()

    p = read_profile(tfprof.last_output())
    assert p.named("main_scope")[0].line == "MainThread"
    for i in range(2):
        mine = [e for e in p.named("load") if e.stats["worker"] == i]
        assert [e.stats["batch"] for e in mine] == [0, 1, 2]
        assert {e.line for e in mine} == {f"loader-{i}"}
    assert len({e.tid for e in p.named("load")}) == 2


def test_thread_unknown_to_threading_keeps_its_os_name(tmp_path, host_only):
    # A thread that threading never started (C code's, _thread's) is not turned into a
    # threading "Dummy-N" thread by tfprof: that would change what threading reports to the
    # program. Its line keeps the OS name.
    import _thread

    done = threading.Event()

    def foreign():
        with tfprof.Trace("foreign_scope"):
            pass
        done.set()

    tfprof.start(str(tmp_path))
    before = threading.active_count()
    _thread.start_new_thread(foreign, ())
    assert done.wait(10)
    assert threading.active_count() == before
    tfprof.stop()

    line = read_profile(tfprof.last_output()).named("foreign_scope")[0].line
    assert line and not line.startswith("Dummy")


def test_short_names_errors_and_profile(tmp_path, host_only):
    assert tfprof.Trace is tfprof.experimental.Trace is tf.profiler.experimental.Trace
    assert tfprof.start is tfprof.experimental.start and tfprof.stop is tfprof.experimental.stop
    assert issubclass(tfprof.ProfilerError, RuntimeError)
    assert issubclass(tfprof.AlreadyRunningError, tfprof.ProfilerError)
    assert issubclass(tfprof.NotRunningError, tfprof.ProfilerError)

    with pytest.raises(tfprof.NotRunningError):
        tfprof.stop()
    tfprof.start(str(tmp_path / "a"))
    with pytest.raises(tfprof.AlreadyRunningError, match="Another profiler is running."):
        tfprof.start(str(tmp_path / "b"))
    tfprof.stop()
    first = tfprof.last_output()
    with pytest.raises(tfprof.NotRunningError):
        tfprof.stop()
    assert tfprof.last_output() == first

    with tfprof.experimental.Profile(tmp_path / "c"):  # a PathLike logdir works too
        with tfprof.Trace("inside_profile"):
            pass
    p = read_profile(tfprof.last_output())
    assert tfprof.last_output().startswith(str(tmp_path / "c"))
    assert len(p.named("inside_profile")) == 1


def test_options(tmp_path, host_only):
    O = tfprof.experimental.ProfilerOptions
    assert O() == (2, 0, 1, None)
    assert O()._fields == ("host_tracer_level", "python_tracer_level", "device_tracer_level",
                           "delay_ms")
    for bad, exc in [(O(host_tracer_level=4), ValueError), (O(device_tracer_level=-1), ValueError),
                     (O(host_tracer_level="2"), TypeError), (O(delay_ms=-5), ValueError),
                     ({"host_tracer_level": 2}, TypeError)]:
        with pytest.raises(exc):
            tfprof.start(str(tmp_path), bad)

    # python_tracer_level=1 is implemented (test_pytrace.py): it starts without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tfprof.start(str(tmp_path / "py1"), O(python_tracer_level=1))
        tfprof.stop()
    with pytest.raises(ValueError):
        tfprof.start(str(tmp_path), O(python_tracer_level=2))

    # host_tracer_level=0: no host scopes.
    tfprof.start(str(tmp_path / "h0"), O(host_tracer_level=0))
    with tfprof.Trace("not_recorded"):
        pass
    tfprof.stop()
    assert read_profile(tfprof.last_output()).named("not_recorded") == []

    # delay_ms: scopes before the delay ran out are not recorded, those after are.
    tfprof.start(str(tmp_path / "delay"), O(delay_ms=300))
    with tfprof.Trace("before_delay"):
        pass
    time.sleep(0.8)
    with tfprof.Trace("after_delay"):
        pass
    tfprof.stop()
    p = read_profile(tfprof.last_output())
    assert p.named("before_delay") == [] and len(p.named("after_delay")) == 1

    # stop() before the delay ran out still leaves a profile, with nothing recorded.
    tfprof.start(str(tmp_path / "early"), O(delay_ms=60_000))
    with tfprof.Trace("too_early"):
        pass
    tfprof.stop()
    assert tfprof.last_output().startswith(str(tmp_path / "early"))
    assert read_profile(tfprof.last_output()).events == []


def test_save_false_discards(tmp_path, host_only):
    tfprof.start(str(tmp_path))
    with tfprof.Trace("x"):
        pass
    tfprof.stop(save=False)
    assert not any(f.endswith(".xplane.pb") for _, _, fs in os.walk(tmp_path) for f in fs)


def test_unwritable_logdir_falls_back(tmp_path, host_only, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    blocker = tmp_path / "file"
    blocker.write_text("a file where the logdir should be")
    tfprof.start(str(blocker / "logdir"))
    with tfprof.Trace("kept"):
        pass
    with pytest.warns(RuntimeWarning, match="could not be written") as w:
        tfprof.stop()
    path = tfprof.last_output()
    assert path.startswith(str(tmp_path / "tmp")) and path in str(w[0].message)
    assert len(read_profile(path).named("kept")) == 1


def test_stop_releases_the_gil(tmp_path, host_only):
    tfprof.start(str(tmp_path))
    for i in range(100_000):
        with tfprof.Trace("busy", i=i):
            pass
    ticks, done = [], threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0)

    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    tfprof.stop()
    t1 = time.perf_counter()
    done.set()
    t.join()
    # While stop() held the GIL no other thread could take a timestamp: any tick inside the
    # call proves it was released.
    inside = [x for x in ticks if t0 < x < t1]
    assert t1 - t0 > 0.01, "stop() was too quick to tell; record more"
    assert len(inside) > 10, f"{len(inside)} ticks during a {1e3 * (t1 - t0):.0f} ms stop()"
    assert len(read_profile(tfprof.last_output()).named("busy")) == 100_000


def test_gpu_scopes_above_cuda_calls(tmp_path, sim_gpu):
    tfprof.start(str(tmp_path))
    for step in range(3):
        with tfprof.Trace("Train", step_num=step):
            with tfprof.Trace("Forward"):
                sim_gpu.launch("_Z4reluPfi")
            sim_gpu.synchronize()
    tfprof.stop()
    p = read_profile(tfprof.last_output())
    kernels = [d for d in p.device_events() if d[1].startswith("relu")]
    assert len(kernels) == 3, p.device_events()
    assert all(k[2]["scope_name"] == "Forward" for k in kernels), "kernel tied to its scope"
    launches = [e for e in p.events if e.stats.get("cuda_api") == "cudaLaunchKernel"]
    forwards = p.named("Forward")
    assert len(launches) == 3 and len(forwards) == 3
    for f, l in zip(forwards, launches):
        assert f.contains(l), f"the launch {l} is not inside its Python scope {f}"
        assert l.line == "MainThread"

    # device_tracer_level=0: no GPU plane at all.
    tfprof.start(str(tmp_path / "nogpu"),
                 tfprof.experimental.ProfilerOptions(device_tracer_level=0))
    with tfprof.Trace("Forward"):
        sim_gpu.launch("_Z4reluPfi")
    tfprof.stop()
    p = read_profile(tfprof.last_output())
    assert p.gpu_planes() == [] and len(p.named("Forward")) == 1
