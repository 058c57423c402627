# SPDX-License-Identifier: Apache-2.0
"""tf.profiler.experimental, name for name and default for default, backed by libtfprof.

    import tfprof.experimental as profiler   # instead of: import tensorflow as tf ... tf.profiler.experimental
    profiler.start("logdir")
    for step in range(steps):
        with profiler.Trace("Train", step_num=step):
            with profiler.Trace("Load") as tm:
                tm.set_metadata(in_cache=hit)
    profiler.stop()

The profile is <logdir>/plugins/profile/<run>/<host>.xplane.pb, which TensorBoard's profile
plugin (xprof) opens; tfprof.last_output() says where the last one went.
"""

import collections
import os
import sys
import threading

from tfprof import _tfprof, server
from tfprof._tfprof import AlreadyRunningError, NotRunningError, ProfilerError, Trace

__all__ = ["ProfilerOptions", "Profile", "Trace", "server", "start", "stop"]


class ProfilerOptions(
        collections.namedtuple(
            "ProfilerOptions",
            ["host_tracer_level", "python_tracer_level", "device_tracer_level", "delay_ms"])):
    """Options for start() and Profile(), as tf.profiler.experimental.ProfilerOptions.

    host_tracer_level: 0 records no host scopes (Trace), 1-3 record them.
    python_tracer_level: 0 (default); 1 traces every Python function call on every thread as a
        host event named like TensorFlow's ("$file.py:line function"), nested with the Trace
        scopes and CUDA calls of its thread (Python functions only, not builtins).
    device_tracer_level: 0 turns GPU tracing off, 1 (default) traces the GPU.
    delay_ms: start() returns at once and recording begins this many milliseconds later.
    """

    __slots__ = ()

    def __new__(cls, host_tracer_level=2, python_tracer_level=0, device_tracer_level=1,
                delay_ms=None):
        return super().__new__(cls, host_tracer_level, python_tracer_level, device_tracer_level,
                               delay_ms)


def _level(options, field, top):
    v = getattr(options, field)
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"ProfilerOptions.{field} must be an int, not {type(v).__name__}")
    if not 0 <= v <= top:
        raise ValueError(f"ProfilerOptions.{field} must be between 0 and {top}, not {v}")
    return v


def _checked(options):
    if options is None:
        return ProfilerOptions()
    if not isinstance(options, ProfilerOptions):
        raise TypeError("options must be a tfprof.experimental.ProfilerOptions or None, "
                        f"not {type(options).__name__}")
    _level(options, "host_tracer_level", 3)
    _level(options, "python_tracer_level", 1)
    _level(options, "device_tracer_level", 1)
    d = options.delay_ms
    if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
        raise ValueError(f"ProfilerOptions.delay_ms must be None or an int >= 0, not {d!r}")
    return options


# A start() with delay_ms waits in a thread for its moment; stop() before it cancels it.
_lock = threading.Lock()
_delayed = None


class _DelayedStart(threading.Thread):
    def __init__(self, logdir, options):
        super().__init__(name="tfprof-delayed-start", daemon=True)
        self.logdir, self.options = logdir, options
        self.cancelled = threading.Event()
        self.started_session = False
        self.error = None

    def run(self):
        if self.cancelled.wait(self.options.delay_ms / 1000.0):
            return
        with _lock:
            if self.cancelled.is_set():
                return
            try:
                self.started_session = _start_now(self.logdir, self.options)
            except ProfilerError as e:
                self.error = e


def _start_now(logdir, options):
    return _tfprof.start(logdir, disable_gpu=options.device_tracer_level == 0,
                         record_host=options.host_tracer_level > 0,
                         trace_python=options.python_tracer_level > 0)


def start(logdir, options=None):
    """Starts profiling; the profile goes under logdir when stop() is called.

    Raises AlreadyRunningError ("Another profiler is running.") when a session runs. Under
    tfprof-start, whose session records the whole program, it warns once and returns.
    """
    options = _checked(options)
    logdir = os.fspath(logdir)
    global _delayed
    with _lock:
        if _delayed is not None:
            raise AlreadyRunningError("Another profiler is running.")
        if options.delay_ms:
            if _tfprof.owns_session():
                raise AlreadyRunningError("Another profiler is running.")
            _delayed = _DelayedStart(logdir, options)
            _delayed.start()
            return
        _start_now(logdir, options)


def stop(save=True):
    """Stops profiling and writes the profile (save=False: discards it).

    Releases the GIL while it merges and writes. Raises NotRunningError when no session runs.
    Returns nothing, like TensorFlow; tfprof.last_output() says where the profile went.
    """
    global _delayed
    with _lock:
        pending, _delayed = _delayed, None
        if pending is not None:
            pending.cancelled.set()
            if pending.error is not None:
                raise NotRunningError(f"the delayed start failed: {pending.error}")
            if not pending.started_session:
                # Stopped before the delay ran out: the profile of a session that recorded
                # nothing, so that stop() always leaves a profile as it promises.
                _start_now(pending.logdir, pending.options._replace(delay_ms=None))
    path = _tfprof.stop()
    if not save and path is not None:
        _discard(path)


def _discard(path):
    os.unlink(path)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


class Profile:
    """Context manager that profiles its block: start(logdir, options) ... stop()."""

    def __init__(self, logdir, options=None):
        self._logdir, self._options = logdir, options

    def __enter__(self):
        start(self._logdir, self._options)

    def __exit__(self, typ, value, tb):
        stop()


def _at_exit():
    """A session still running when the interpreter exits is written, or the reason printed."""
    global _delayed
    if _delayed is not None:
        _delayed.cancelled.set()
        _delayed = None
    if not _tfprof.owns_session():
        return
    try:
        path = _tfprof.stop()
    except Exception as e:  # noqa: BLE001: whatever it was, the user must read it
        print(f"tfprof: the session still running at exit could not be written: {e}",
              file=sys.stderr)
        return
    print(f"tfprof: the session still running at exit was stopped; profile: {path}",
          file=sys.stderr)
