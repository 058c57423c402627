# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the tfprof Python package's tests: where the build's tools are, and the
written profile read back as plain events. The profile is parsed by tests/interop/xspace_pb.py,
a small reader of the protobuf wire format that shares no code with tfprof or xprof, so a test
checks what the file says rather than what tfprof meant to write."""

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "interop"))
import xspace_pb  # noqa: E402


class Ev:
    """One host event: its line (thread), name, stats and times in picoseconds."""

    def __init__(self, line, plane, e):
        self.line, self.tid = line.name, line.id
        self.name = plane.event_name(e)
        self.stats = plane.stats_dict(e.stats)
        self.kinds = {plane.stat_metadata[s.metadata_id].name: s.kind for s in e.stats}
        self.start = line.timestamp_ns * 1000 + e.offset_ps
        self.end = self.start + e.duration_ps

    def contains(self, other):
        return self.tid == other.tid and self.start <= other.start and other.end <= self.end

    def __repr__(self):
        return f"Ev({self.line}:{self.name} {self.stats})"


class Profile:
    def __init__(self, path):
        self.path = path
        self.space = xspace_pb.read(path)
        self.host = self.space.plane("/host:CPU")
        assert self.host is not None, f"{path} has no /host:CPU plane"
        self.events = [Ev(l, self.host, e) for l in self.host.lines for e in l.events]
        self.lines = {l.name: l for l in self.host.lines}

    def named(self, name):
        return [e for e in self.events if e.name == name]

    def gpu_planes(self):
        return [p for p in self.space.planes if p.name.startswith("/device:GPU:")]

    def device_events(self):
        out = []
        for p in self.gpu_planes():
            for l in p.lines:
                out.extend((l.name, p.event_name(e), p.stats_dict(e.stats)) for e in l.events)
        return out


def read_profile(path):
    assert path and os.path.isfile(path), f"no profile at {path!r}"
    return Profile(path)


def tool(name):
    """A program from the build (TFPROF_START_EXE...); the test skips loudly without it."""
    p = os.environ.get(name)
    if not p or not os.path.exists(p):
        pytest.skip(f"{name} is not set to a built program (run the suite through ctest)")
    return p


@pytest.fixture
def host_only(monkeypatch):
    """Sessions trace the host only (ctest sets TFPROF_GPU=0 too; this keeps it so by hand)."""
    monkeypatch.setenv("TFPROF_GPU", "0")


@pytest.fixture
def sim_gpu(monkeypatch):
    """GPU tracing on the CUPTI simulator: tfprof loads it as its libcupti."""
    path = tool("TFPROF_CUPTI_SIM")
    monkeypatch.setenv("TFPROF_CUPTI_LIBRARY", path)
    monkeypatch.delenv("TFPROF_GPU", raising=False)
    from sim_gpu import SimGpu
    return SimGpu(path)


@pytest.fixture(autouse=True)
def no_session_left():
    """Every test starts and ends with no session: one test's failure must not leak into the
    next one's profile."""
    import tfprof
    from tfprof import _tfprof
    assert not _tfprof.owns_session()
    yield
    if _tfprof.owns_session():
        tfprof.stop()
        pytest.fail("the test left its session running")


def run_python(code, env=None, timeout=120, **kw):
    """Runs code in a fresh interpreter of this environment; returns the CompletedProcess."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,
                          timeout=timeout, **kw)
