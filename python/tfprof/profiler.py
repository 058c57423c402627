# SPDX-License-Identifier: Apache-2.0
"""tfprof.profiler.experimental is tfprof.experimental, so that TensorFlow code runs unchanged
after `import tfprof as tf`: tf.profiler.experimental.start(...), .Trace(...), .stop()."""

from tfprof import experimental

__all__ = ["experimental"]
