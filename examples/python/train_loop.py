# SPDX-License-Identifier: Apache-2.0
"""A training loop profiled with tfprof's Python API, the seed's two examples in a real program:
every step is a Trace("Train", step_num=step) (a step marker xprof's overview page finds), and the
data loader says with set_metadata(in_cache=...) whether the batch came from its cache. The model
is a two-layer perceptron fitted by mini-batch SGD; it runs on the GPU with CuPy when CuPy finds
one, else on the host with NumPy. With PyPI's nvtx installed, the optimizer step is also an NVTX
range, which tfprof-start records beside the Trace scopes.

    python train_loop.py [--logdir DIR] [--steps N] [--device auto|cpu|gpu]
    tfprof-start -- python train_loop.py        # the whole program, with CUDA calls and GPU work

Then: xprof --logdir DIR (or tfprof-report DIR).
"""

import argparse
import contextlib
import time

import numpy as np

import tfprof.experimental as profiler  # TensorFlow: tf.profiler.experimental

try:
    import nvtx
    optimizer_range = nvtx.annotate
except ImportError:  # nvtx is optional: the Trace scopes carry the same structure
    def optimizer_range(name):
        return contextlib.nullcontext()


def pick_array_module(device):
    """CuPy on a GPU when asked or found, NumPy on the host otherwise."""
    if device != "cpu":
        try:
            import cupy
            if cupy.cuda.runtime.getDeviceCount() > 0:
                return cupy, cupy.cuda.Stream.null.synchronize
        except Exception as e:  # noqa: BLE001: no CuPy, no driver, no device: all mean host
            if device == "gpu":
                raise SystemExit(f"train_loop: --device gpu, but CuPy cannot use a GPU: {e}")
    return np, lambda: None


class Loader:
    """Makes batches of a synthetic regression task; keeps the last `cache_size` batches, so a
    batch asked for again soon is a cache hit and a new one costs generating it."""

    def __init__(self, xp, batch, features, cache_size, seed=0):
        self.xp, self.batch, self.features, self.cache_size = xp, batch, features, cache_size
        self.true_w = np.random.default_rng(seed).standard_normal((features, 1))
        self.cache = {}

    def load(self, index):
        hit = index in self.cache
        if not hit:
            rng = np.random.default_rng(index)
            x = rng.standard_normal((self.batch, self.features))
            y = np.tanh(x @ self.true_w) + 0.01 * rng.standard_normal((self.batch, 1))
            self.cache[index] = (self.xp.asarray(x), self.xp.asarray(y))
            if len(self.cache) > self.cache_size:
                self.cache.pop(next(iter(self.cache)))
        return self.cache[index], hit


def train(xp, sync, steps, batch=256, features=512, hidden=1024, lr=0.005):
    rng = np.random.default_rng(1)
    w1 = xp.asarray(rng.standard_normal((features, hidden)) / np.sqrt(features))
    w2 = xp.asarray(rng.standard_normal((hidden, 1)) / np.sqrt(hidden))
    loader = Loader(xp, batch, features, cache_size=4)
    losses = []
    for step in range(steps):
        with profiler.Trace("Train", step_num=step):
            # The seed's second example: a fact learned inside the scope, set on it.
            with profiler.Trace("Load", batch=batch) as tm:
                (x, y), in_cache = loader.load(step % 3)
                tm.set_metadata(in_cache=in_cache)
            with profiler.Trace("Forward"):
                h = xp.maximum(x @ w1, 0)
                err = h @ w2 - y
                loss = float((err * err).mean())
            with profiler.Trace("Backward"):
                g_out = 2 * err / batch
                g_w2 = h.T @ g_out
                g_w1 = x.T @ ((g_out @ w2.T) * (h > 0))
            with profiler.Trace("Optimizer", lr=lr), optimizer_range("optimizer"):
                w1 -= lr * g_w1
                w2 -= lr * g_w2
            sync()
            losses.append(loss)
    return losses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logdir", default="logdir")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    args = ap.parse_args(argv)
    xp, sync = pick_array_module(args.device)

    # The seed's first example: start, steps marked with step_num, stop.
    t0 = time.perf_counter()
    profiler.start(args.logdir)
    losses = train(xp, sync, args.steps)
    profiler.stop()
    print(f"train_loop: {args.steps} steps on {xp.__name__} in {time.perf_counter() - t0:.2f} s, "
          f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    import tfprof
    print(f"train_loop: profile: {tfprof.last_output() or '(written by tfprof-start at exit)'}")


if __name__ == "__main__":
    main()
