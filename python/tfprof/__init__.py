# SPDX-License-Identifier: Apache-2.0
"""tfprof: TensorFlow's profiler API (tf.profiler.experimental) for any Python program, backed by
libtfprof: host scopes, CUDA calls and GPU streams in one XSpace that xprof opens.

    import tfprof
    tfprof.start("logdir")
    with tfprof.Trace("Train", step_num=step): ...
    tfprof.stop()
    print(tfprof.last_output())

tfprof.experimental mirrors tf.profiler.experimental name for name.
"""

import atexit

from tfprof import experimental, profiler
from tfprof._tfprof import (AlreadyRunningError, NotRunningError, ProfilerError, Trace,
                            last_output)
from tfprof.experimental import Profile, ProfilerOptions, start, stop

__all__ = [
    "AlreadyRunningError", "NotRunningError", "Profile", "ProfilerError", "ProfilerOptions",
    "Trace", "experimental", "last_output", "profiler", "start", "stop",
]
__version__ = "0.1.0"

atexit.register(experimental._at_exit)
