# SPDX-License-Identifier: Apache-2.0
"""Writes a real JAX profile for tfprof-report's tests: five jitted training steps on the CPU, each
inside jax.profiler.StepTraceAnnotation("train", step_num=i), traced by JAX's own profiler into
LOGDIR/plugins/profile/<run>/<host>.xplane.pb (and JAX's Chrome trace beside it, the truth the
test compares against).

usage: jax_steps.py LOGDIR
"""
import sys

import jax
import jax.numpy as jnp

STEPS = 5


@jax.jit
def train_step(w, x):
    y = jnp.tanh(x @ w)
    grad = x.T @ (1 - y * y) / x.shape[0]
    return w - 0.01 * grad


def main():
    logdir = sys.argv[1]
    w = jnp.ones((256, 256), jnp.float32)
    x = jnp.ones((512, 256), jnp.float32)
    # Compiled before tracing, so that each traced step is one run of the compiled program.
    w = train_step(w, x).block_until_ready()
    jax.profiler.start_trace(logdir)
    for i in range(STEPS):
        with jax.profiler.StepTraceAnnotation("train", step_num=i):
            w = train_step(w, x)
            w.block_until_ready()
    jax.profiler.stop_trace()


if __name__ == "__main__":
    main()
