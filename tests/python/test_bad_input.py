# SPDX-License-Identifier: Apache-2.0
"""The issue's bad input, each read back from the written profile: a clear Python exception or
warning where the user erred, nothing lost, never a crash (subprocesses for the cases that end
an interpreter or fork one)."""

import os
import textwrap
import threading

import pytest

import tfprof
from conftest import read_profile, run_python

pytestmark = pytest.mark.usefixtures("host_only")


def session(tmp_path, body):
    tfprof.start(str(tmp_path))
    try:
        body()
    finally:
        tfprof.stop()
    return read_profile(tfprof.last_output())


@pytest.mark.parametrize("name", [1, None, b"bytes", 2.5, ["x"]])
def test_non_string_names(tmp_path, name):
    with pytest.raises(TypeError, match="name must be a str"):
        tfprof.Trace(name)  # no session: still refused
    tfprof.start(str(tmp_path))
    with pytest.raises(TypeError, match="name must be a str"):
        tfprof.Trace(name, step_num=1)
    with pytest.raises(TypeError):
        tfprof.Trace("a", "b")
    with pytest.raises(TypeError):
        tfprof.Trace()
    with tfprof.Trace(name="keyword_name", k=1):
        pass
    tfprof.stop()
    e = read_profile(tfprof.last_output()).named("keyword_name")
    assert len(e) == 1 and e[0].stats == {"k": 1}


def test_name_of_one_megabyte(tmp_path):
    big = "n" * (1 << 20)
    p = session(tmp_path, lambda: tfprof.Trace(big, v="v" * (1 << 20)).__enter__().__exit__(
        None, None, None))
    [e] = p.events
    assert e.name == big and e.stats["v"] == "v" * (1 << 20)


def test_lone_surrogates_are_kept_escaped(tmp_path):
    def body():
        with tfprof.Trace("bad\udc80name", **{"key\ud800": "val\udfff"}) as tm:
            tm.set_metadata(later="x\udc00y")

    [e] = session(tmp_path, body).events
    assert e.name == "bad\\udc80name"
    assert e.stats == {"key\\ud800": "val\\udfff", "later": "x\\udc00y"}


def test_ten_thousand_kwargs(tmp_path):
    kw = {f"k{i}": i for i in range(10_000)}
    p = session(tmp_path, lambda: tfprof.Trace("many", **kw).__enter__().__exit__(None, None, None))
    [e] = p.events
    assert e.stats == kw


def test_exited_twice(tmp_path):
    def body():
        t = tfprof.Trace("twice")
        with t:
            pass
        with pytest.warns(RuntimeWarning, match="exited twice"):
            t.__exit__(None, None, None)

    p = session(tmp_path, body)
    assert len(p.named("twice")) == 1
    assert any("ended twice" in w for w in p.space.warnings), p.space.warnings


def test_exited_on_another_thread(tmp_path):
    def body():
        t = tfprof.Trace("crossed").__enter__()
        caught = []

        def other():
            with pytest.warns(RuntimeWarning, match="another thread") as w:
                t.__exit__(None, None, None)
            caught.extend(w)

        th = threading.Thread(target=other)
        th.start()
        th.join()
        assert len(caught) == 1

    p = session(tmp_path, body)
    [e] = p.named("crossed")
    assert e.line == "MainThread" and e.stats.get("tfprof_open_at_stop") == 1
    assert any("another thread" in w for w in p.space.warnings), p.space.warnings


def test_entered_after_stop(tmp_path):
    tfprof.start(str(tmp_path / "a"))
    t = tfprof.Trace("late", x=1)
    tfprof.stop()
    with t as entered:
        assert entered is t and not t.recording
    assert read_profile(tfprof.last_output()).events == []
    # With nothing recording every Trace is the same inert object: nesting it is harmless.
    with tfprof.Trace("inert") as u, tfprof.Trace("inert too") as w:
        assert u is w and not u.recording and u.name is None
    tfprof.start(str(tmp_path / "b"))
    v = tfprof.Trace("entered_twice")
    with v:
        with pytest.raises(RuntimeError, match="already entered"):
            v.__enter__()
    tfprof.stop()
    assert len(read_profile(tfprof.last_output()).named("entered_twice")) == 1


def test_exception_inside_the_block(tmp_path):
    class Boom(Exception):
        pass

    def body():
        with pytest.raises(Boom):
            with tfprof.Trace("outer"):
                with tfprof.Trace("inner"):
                    raise Boom()
        with tfprof.Trace("after"):
            pass

    p = session(tmp_path, body)
    [outer], [inner], [after] = p.named("outer"), p.named("inner"), p.named("after")
    assert outer.contains(inner) and after.start >= outer.end
    assert "tfprof_open_at_stop" not in outer.stats and "tfprof_open_at_stop" not in inner.stats
    assert p.space.warnings == []


def test_stop_while_threads_are_inside_scopes(tmp_path):
    tfprof.start(str(tmp_path))
    inside, release = threading.Barrier(4), threading.Event()
    errors = []

    def worker(i):
        try:
            with tfprof.Trace("held", worker=i):
                inside.wait()
                release.wait()
                with tfprof.Trace("after_stop"):
                    pass
        except Exception as e:  # noqa: BLE001: the test reports whatever happened
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,), name=f"w{i}") for i in range(3)]
    for t in threads:
        t.start()
    inside.wait()
    tfprof.stop()
    release.set()
    for t in threads:
        t.join()
    assert errors == []
    p = read_profile(tfprof.last_output())
    held = p.named("held")
    assert sorted(e.stats["worker"] for e in held) == [0, 1, 2]
    assert all(e.stats["tfprof_open_at_stop"] == 1 for e in held)
    assert sorted(e.line for e in held) == ["w0", "w1", "w2"]
    assert p.named("after_stop") == []


def test_interpreter_exit_with_a_session_running(tmp_path):
    code = textwrap.dedent(f"""
        import threading, tfprof
        tfprof.start({str(tmp_path / "logdir")!r})
        with tfprof.Trace("done", step_num=0):
            pass
        # A daemon thread still inside a scope when the interpreter goes away.
        entered = threading.Event()
        def spin():
            with tfprof.Trace("daemon_inside"):
                entered.set()
                threading.Event().wait()
        threading.Thread(target=spin, daemon=True, name="spinner").start()
        entered.wait()
        tfprof.Trace("open_at_exit").__enter__()
    """)
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert "stopped; profile: " in r.stderr, r.stderr
    path = r.stderr.split("stopped; profile: ")[1].strip()
    p = read_profile(path)
    assert len(p.named("done")) == 1
    assert p.named("daemon_inside")[0].stats["tfprof_open_at_stop"] == 1
    assert p.named("daemon_inside")[0].line == "spinner"
    assert p.named("open_at_exit")[0].stats["tfprof_open_at_stop"] == 1


def test_interpreter_exit_when_nothing_can_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = textwrap.dedent(f"""
        import tfprof
        tfprof.start({str(blocker / "logdir")!r})
        with tfprof.Trace("lost"):
            pass
    """)
    r = run_python(code, env={"TMPDIR": str(blocker / "tmp")})
    assert r.returncode == 0, r.stderr
    assert "could not be written" in r.stderr, r.stderr


def test_fork_child_records_nothing_of_the_parents(tmp_path):
    tfprof.start(str(tmp_path / "parent"))
    with tfprof.Trace("before_fork"):
        pass
    pid = os.fork()
    if pid == 0:  # the child: no session of its own, nothing recorded into the parent's
        ok = False
        try:
            with tfprof.Trace("in_child"):
                pass
            try:
                tfprof.stop()
            except tfprof.NotRunningError:
                tfprof.start(str(tmp_path / "child"))
                with tfprof.Trace("child_own"):
                    pass
                tfprof.stop()
                ok = True
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    with tfprof.Trace("after_fork"):
        pass
    tfprof.stop()
    assert os.waitstatus_to_exitcode(status) == 0
    parent = read_profile(tfprof.last_output())
    assert [e.name for e in parent.events] == ["before_fork", "after_fork"]
    child_files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "child") for f in fs]
    assert len(child_files) == 1
    child = read_profile(child_files[0])
    assert [e.name for e in child.events] == ["child_own"]
