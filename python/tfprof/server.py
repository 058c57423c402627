# SPDX-License-Identifier: Apache-2.0
"""tf.profiler.experimental.server, backed by libtfprof's profiler server: the program answers
TensorFlow's ProfilerService, so xprof's "Capture Profile" button (or tfprof-capture) profiles
it while it runs.

    import tfprof.experimental as profiler
    profiler.server.start(6009)      # then in xprof: Capture Profile, localhost:6009

Unlike TensorFlow's, it listens on 127.0.0.1 unless given an address: start("0.0.0.0:6009")
exposes it to other machines. A capture records host scopes, CUDA calls and GPU streams (and,
with python_tracer_level 1, every Python call) for the asked duration and writes
<logdir>/plugins/profile/<run>/<host>.xplane.pb where the client said.
"""

import atexit

from tfprof import _tfprof

__all__ = ["start", "stop", "port"]

_registered = False


def start(port):
    """Starts the profiler server on port (an int), or on an address "HOST:PORT" (a str).
    Port 0 picks a free one; returns the port it listens on. Raises tfprof.ProfilerError when it
    cannot (the port is taken, gRPC is not installed), AlreadyRunningError when one runs."""
    global _registered
    if isinstance(port, bool) or not isinstance(port, (int, str)):
        raise TypeError(f"server.start(port): port must be an int or a \"HOST:PORT\" str, not {type(port).__name__}")
    if isinstance(port, int) and not 0 <= port <= 65535:
        raise ValueError(f"server.start(port): port must be between 0 and 65535, not {port}")
    bound = _tfprof.server_start(str(port))
    if not _registered:
        # Before the interpreter finalizes: a capture in progress is written, and its hooks
        # still find Python alive.
        atexit.register(_tfprof.server_stop)
        _registered = True
    return bound


def stop():
    """Stops the server; a capture in progress is written first. False when none ran."""
    return _tfprof.server_stop()


def port():
    """The port the server listens on, 0 when none runs."""
    return _tfprof.server_port()
