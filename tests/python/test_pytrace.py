# SPDX-License-Identifier: Apache-2.0
"""ProfilerOptions(python_tracer_level=1): every Python function call becomes a host event named
like TensorFlow's Python tracer ("$<file>:<first line> <function>"), nested with the Trace scopes
of its thread, on every thread, exceptions included; level 0 records none, and stop() removes the
hooks. Each test reads the written profile back."""

import os
import sys
import threading

import tfprof
from conftest import read_profile

O = tfprof.experimental.ProfilerOptions
TRACED = O(python_tracer_level=1)


def ev_name(fn):
    """The event name TensorFlow's Python tracer gives a function."""
    code = fn.__code__
    return f"${os.path.basename(code.co_filename)}:{code.co_firstlineno} {code.co_name}"


def leaf():
    return 1


def middle():
    return leaf() + leaf()


def outer():
    with tfprof.Trace("in_outer"):
        return middle()


def thrower():
    raise ValueError("caught by its caller")


def after_catch():
    return 2


def catcher():
    try:
        thrower()
    except ValueError:
        pass
    return after_catch()


def gen():
    yield leaf()
    yield leaf()


def one(p, fn):
    found = p.named(ev_name(fn))
    assert len(found) == 1, f"{ev_name(fn)}: {found}"
    return found[0]


def test_nested_functions_inside_trace_scopes(tmp_path, host_only):
    tfprof.start(str(tmp_path), TRACED)
    for step in range(2):
        with tfprof.Trace("Train", step_num=step):
            outer()
    tfprof.stop()

    p = read_profile(tfprof.last_output())
    steps = p.named("Train")
    outers, scopes = p.named(ev_name(outer)), p.named("in_outer")
    middles, leaves = p.named(ev_name(middle)), p.named(ev_name(leaf))
    assert (len(outers), len(scopes), len(middles), len(leaves)) == (2, 2, 2, 4)
    for i in range(2):
        assert steps[i].contains(outers[i])
        assert outers[i].contains(scopes[i]), "a Trace inside a function nests inside it"
        assert scopes[i].contains(middles[i])
        for lf in leaves[2 * i:2 * i + 2]:
            assert middles[i].contains(lf)
        assert leaves[2 * i].end <= leaves[2 * i + 1].start, "two calls, one after the other"
    assert all(e.line == "MainThread" for e in outers + leaves)
    assert p.space.warnings == [], "calls and returns paired, nothing closed out of order"


def test_exception_unwinds_the_frame(tmp_path, host_only):
    tfprof.start(str(tmp_path), TRACED)
    with tfprof.Trace("scope"):
        catcher()
        list(gen())
    tfprof.stop()

    p = read_profile(tfprof.last_output())
    c, t, a = one(p, catcher), one(p, thrower), one(p, after_catch)
    assert p.named("scope")[0].contains(c)
    assert c.contains(t) and c.contains(a)
    # The raising frame ended when the exception left it: what its caller did after the catch
    # is beside it, not inside it.
    assert t.end <= a.start, (t, a)
    # A generator is an event per run between yields (3 runs: two yields and the end).
    g, leaves = p.named(ev_name(gen)), p.named(ev_name(leaf))
    assert len(g) == 3 and len(leaves) == 2
    assert g[0].contains(leaves[0]) and g[1].contains(leaves[1])
    assert p.space.warnings == []


def test_every_thread(tmp_path, host_only):
    go, started = threading.Event(), threading.Barrier(2)

    def early_worker():
        # Started before the session: its hook is installed from the thread that starts it.
        started.wait()
        go.wait()
        middle()

    def late_worker():
        middle()

    early = threading.Thread(target=early_worker, name="early")
    early.start()
    started.wait()
    tfprof.start(str(tmp_path), TRACED)
    late = threading.Thread(target=late_worker, name="late")
    late.start()
    late.join()
    go.set()
    early.join()
    leaf()
    tfprof.stop()

    p = read_profile(tfprof.last_output())
    middles = p.named(ev_name(middle))
    assert sorted(e.line for e in middles) == ["early", "late"]
    leaves = p.named(ev_name(leaf))
    assert sorted(e.line for e in leaves) == ["MainThread", "early", "early", "late", "late"]
    for m in middles:
        assert sum(m.contains(lf) for lf in leaves) == 2
    assert len(one(p, late_worker).line) and one(p, late_worker).contains(
        [m for m in middles if m.line == "late"][0])


def test_level_zero_and_after_stop_trace_nothing(tmp_path, host_only):
    tfprof.start(str(tmp_path / "zero"))
    with tfprof.Trace("scope"):
        outer()
    tfprof.stop()
    p = read_profile(tfprof.last_output())
    assert len(p.named("in_outer")) == 1
    assert [e for e in p.events if e.name.startswith("$")] == []

    # A traced session, then an untraced one: stop() took the hooks away.
    tfprof.start(str(tmp_path / "one"), TRACED)
    outer()
    tfprof.stop()
    assert len(read_profile(tfprof.last_output()).named(ev_name(outer))) == 1
    assert sys.getprofile() is None and threading.getprofile() is None
    tfprof.start(str(tmp_path / "two"))
    outer()
    tfprof.stop()
    assert [e for e in read_profile(tfprof.last_output()).events if e.name.startswith("$")] == []
