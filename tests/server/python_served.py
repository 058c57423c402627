# SPDX-License-Identifier: Apache-2.0
"""A Python training loop that serves captures (tf.profiler.experimental.server.start): run by
capture_test.py, which captures it with xprof's client. Prints "port N" once it listens."""

import time

import tfprof.experimental as profiler


def main():
    port = profiler.server.start(0)
    print(f"port {port}", flush=True)
    deadline = time.monotonic() + 120
    step = 0
    while time.monotonic() < deadline:
        with profiler.Trace("Train", step_num=step, _r=1):
            with profiler.Trace("Forward"):
                sum(i * i for i in range(2000))
            with profiler.Trace("Backward"):
                sum(i * i for i in range(4000))
        step += 1


if __name__ == "__main__":
    main()
