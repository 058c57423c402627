#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tfprof-capture end to end against capture_fake_server: the request fields each worker gets,
the files, the output lines and the exit statuses. One case per run (ctest runs each as its own
test): python3 check_capture.py CASE --capture BIN --server BIN --tmp DIR.

Timing is checked only with bounds that a loaded machine cannot break: a start timestamp must
lie between "before the tool started" + delay and "after it ended" + delay."""
import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

ARGS = None
PROG = "tfprof-capture: "
# Every server started, so that a failed check does not leave one behind holding ctest's pipes.
SERVERS = []


@atexit.register
def kill_servers():
    for p in SERVERS:
        if p.poll() is None:
            p.kill()
            p.wait()


class Server:
    """One fake server process, listening on 127.0.0.1 on a port of its choosing."""

    def __init__(self, mode, name):
        self.log = os.path.join(ARGS.tmp, name + ".jsonl")
        self.proc = subprocess.Popen(
            [ARGS.server, "--mode", mode, "--log", self.log, "--lifetime", "300"],
            stdout=subprocess.PIPE, text=True)
        SERVERS.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit("fake server did not start: %r" % line)
        self.port = int(line.split()[1])

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def capture(*args):
    """Runs tfprof-capture; returns (rc, stdout lines, stderr lines, t_before_ns, t_after_ns)."""
    before = time.time_ns()
    p = subprocess.run([ARGS.capture, *args], capture_output=True, text=True, timeout=240)
    after = time.time_ns()
    if p.returncode < 0:
        raise SystemExit("tfprof-capture died of signal %d\n%s" % (-p.returncode, p.stderr))
    return p.returncode, p.stdout.splitlines(), p.stderr.splitlines(), before, after


def check(cond, what, *context):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        for c in context:
            print(c, file=sys.stderr)
        raise SystemExit(1)


def logdir():
    d = os.path.join(ARGS.tmp, "logdir")
    return d


def run_dir(run):
    return os.path.join(logdir(), "plugins", "profile", run)


def check_messages(err):
    for line in err:
        check(line.startswith(PROG), "every stderr line starts with the prefix", err)


def free_port():
    """A port nobody listens on (bound then released: nothing else here takes it so quickly)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def capture_from(modes, run, *extra):
    """Starts one fake server per mode, captures 100 ms from all of them (127.0.0.1:PORT each)
    into run, and stops them. Returns (servers, rc, stdout lines, stderr lines)."""
    servers = [Server(m, "%s_%d" % (run, i)) for i, m in enumerate(modes)]
    addrs = ",".join("127.0.0.1:%d" % s.port for s in servers)
    rc, out, err, _, _ = capture(addrs, "--duration", "100ms", "--run", run, "--logdir", logdir(),
                                 *extra)
    for s in servers:
        s.stop()
    return servers, rc, out, err


def check_request(r, run, host, duration_ms, levels=(2, 1, 0)):
    root = os.path.join(logdir(), "plugins", "profile")
    check(r["session_id"] == run and r["opts"]["session_id"] == run, "session_id", r)
    check(r["repository_root"] == root and r["opts"]["repository_path"] == root,
          "repository_root is <abs logdir>/plugins/profile", r)
    check(r["host_name"] == host, "host_name is the address as typed", r)
    check(r["duration_ms"] == duration_ms and r["opts"]["duration_ms"] == duration_ms,
          "both durations", r)
    check(r["max_events"] == 1000000, "max_events", r)
    check(r["n_tools"] == 10, "the tools xprof lists", r)
    o = r["opts"]
    check((o["host_tracer_level"], o["device_tracer_level"], o["python_tracer_level"]) == levels,
          "tracer levels", r)
    check(o["version"] == 1, "opts.version", r)


def case_one_worker():
    s = Server("ok", "one")
    addr = "127.0.0.1:%d" % s.port
    rc, out, err, t0, t1 = capture("grpc://" + addr, "--duration", "1500ms", "--delay", "2s",
                                   "--run", "one", "--logdir", logdir())
    s.stop()
    check(rc == 0, "exit 0 when a trace was captured", out, err)
    reqs = s.requests()
    check(len(reqs) == 1, "one request", reqs)
    check_request(reqs[0], "one", addr, 1500)
    ts = reqs[0]["opts"]["start_timestamp_ns"]
    check(t0 + 2 * 10**9 <= ts <= t1 + 2 * 10**9, "start = now + delay", ts, t0, t1)
    path = os.path.join(run_dir("one"), "127.0.0.1_%d.xplane.pb" % s.port)
    check(out == ["%s: %s" % (addr, path), "run: " + run_dir("one")], "output lines", out)
    check(os.path.exists(path), "the profile exists")
    check_messages(err)


def case_options():
    """Levels, --no-gpu, a relative logdir made absolute, and each duration unit."""
    s = Server("ok", "options")
    addr = "localhost:%d" % s.port
    rel = os.path.relpath(logdir())
    units = [("2", 2000), ("1.5s", 1500), ("250ms", 250), ("0.01m", 600)]
    for i, (text, ms) in enumerate(units):
        rc, out, err, _, _ = capture(addr, "--duration", text, "--run", "opt%d" % i,
                                     "--logdir", rel, "--no-gpu", "--host-level", "3",
                                     "--python-level", "1")
        check(rc == 0, "exit 0", out, err)
    s.stop()
    reqs = s.requests()
    check(len(reqs) == len(units), "one request per run", reqs)
    for i, (text, ms) in enumerate(units):
        check_request(reqs[i], "opt%d" % i, addr, ms, levels=(3, 0, 1))
    # The default run name: a local timestamp, %Y_%m_%d_%H_%M_%S.
    s = Server("ok", "default_run")
    rc, out, err, _, _ = capture("localhost:%d" % s.port,
                                 "--duration", "100ms", "--logdir", logdir())
    s.stop()
    check(rc == 0, "exit 0", out, err)
    run = s.requests()[0]["session_id"]
    check(len(run) == 19 and time.strptime(run, "%Y_%m_%d_%H_%M_%S"), "default run name", run)
    check(out[-1] == "run: " + run_dir(run), "run line", out)


def case_two_workers():
    a, b = Server("ok", "two_a"), Server("ok", "two_b")
    addrs = ["127.0.0.1:%d" % a.port, "localhost:%d" % b.port]
    rc, out, err, t0, t1 = capture(",".join(addrs), "--duration", "1s", "--delay", "1s",
                                   "--run", "two", "--logdir", logdir())
    a.stop()
    b.stop()
    check(rc == 0, "exit 0", out, err)
    ra, rb = a.requests(), b.requests()
    check(len(ra) == 1 and len(rb) == 1, "one request each", ra, rb)
    check_request(ra[0], "two", addrs[0], 1000)
    check_request(rb[0], "two", addrs[1], 1000)
    ts = ra[0]["opts"]["start_timestamp_ns"]
    check(ts == rb[0]["opts"]["start_timestamp_ns"], "the same start for every worker", ra, rb)
    check(t0 + 10**9 <= ts <= t1 + 10**9, "start = now + delay", ts, t0, t1)
    for addr in addrs:
        path = os.path.join(run_dir("two"), addr.replace(":", "_") + ".xplane.pb")
        check("%s: %s" % (addr, path) in out, "a line per worker", out)
        check(os.path.exists(path), "each profile exists", path)
    check(out[-1] == "run: " + run_dir("two"), "run line last", out)


def case_mixed():
    """One worker with a trace and one without: still a capture (exit 0)."""
    _, rc, out, err = capture_from(["ok", "empty"], "mixed")
    check(rc == 0, "exit 0 when one worker captured", out, err)
    check(any("no profile" in l and "recorded nothing" in l for l in out), "the empty one", out)


def case_empty():
    (s,), rc, out, err = capture_from(["empty"], "empty")
    check(rc == 1, "exit 1 when every worker recorded nothing", out, err)
    check(out[0].startswith("127.0.0.1:%d: no profile:" % s.port) and "--delay" in out[0],
          "says what to do", out)
    check(len(s.requests()) == 1, "an empty trace is not retried", s.requests())
    check(len(err) == 1, "one line on stderr", err)
    check_messages(err)


def case_retry_exists():
    (s,), rc, out, err = capture_from(["exists-once"], "exists")
    check(rc == 0, "exit 0 after a retry", out, err)
    reqs = s.requests()
    check(len(reqs) == 2, "two requests", reqs)
    check(reqs[0]["session_id"] == reqs[1]["session_id"] == "exists", "one run", reqs)
    check(any("ALREADY_EXISTS" in l and "trying again" in l for l in err), "says it retries", err)
    check_messages(err)


def case_attempts():
    """--attempts bounds the retries; a server that answers UNAVAILABLE counts as unreachable."""
    (s,), rc, out, err = capture_from(["unavailable"], "unav", "--attempts", "2")
    check(rc == 2, "exit 2", out, err)
    check(len(s.requests()) == 2, "two attempts", s.requests())
    check("UNAVAILABLE" in out[0], "the status in the worker's line", out)
    check_messages(err)


def case_unreachable():
    port = free_port()
    addr = "localhost:%d" % port
    rc, out, err, _, _ = capture(addr, "--duration", "100ms", "--run", "unreach",
                                 "--logdir", logdir())
    check(rc == 2, "exit 2 for an address nobody listens on", out, err)
    check(out[0].startswith(addr + ": no profile: UNAVAILABLE"), "the worker's line", out)
    check(any(l.startswith(PROG + "cannot reach " + addr) and "--server" in l for l in err),
          "says what to do", err)
    check(sum("trying again" in l for l in err) == 2, "three attempts by default", err)
    check_messages(err)
    # One reachable worker beside an unreachable one: the capture still counts.
    s = Server("ok", "half")
    rc, out, err, _, _ = capture("127.0.0.1:%d,%s" % (s.port, addr), "--duration", "100ms",
                                 "--run", "half", "--attempts", "1", "--logdir", logdir())
    s.stop()
    check(rc == 0, "exit 0 when one worker captured", out, err)


def case_error():
    (s,), rc, out, err = capture_from(["error"], "error")
    check(rc == 1, "exit 1 for a server error", out, err)
    check("INTERNAL: the fake profiler failed to start" in out[0], "status and message", out)
    check(len(s.requests()) == 1, "not retried", s.requests())


def case_malformed():
    _, rc, out, err = capture_from(["malformed"], "bad")
    check(rc == 1, "exit 1 for an answer that is not a ProfileResponse", out, err)
    check("not a ProfileResponse" in out[0], "says so", out)


def case_hang():
    s = Server("hang", "hang")
    b = Server("ok", "hang_ok")
    rc, out, err, _, _ = capture("127.0.0.1:%d" % s.port, "--duration", "100ms", "--run", "hang",
                                 "--timeout", "3s", "--logdir", logdir())
    check(rc == 1, "exit 1 when the worker never answers", out, err)
    check("DEADLINE_EXCEEDED" in out[0] and "--timeout" in out[0], "says what to do", out)
    rc, out, err, _, _ = capture("127.0.0.1:%d,127.0.0.1:%d" % (s.port, b.port),
                                 "--duration", "100ms", "--run", "hang2", "--timeout", "3s",
                                 "--logdir", logdir())
    s.stop()
    b.stop()
    check(rc == 0, "a hung worker does not spoil the others", out, err)


def case_tool_data():
    (s,), rc, out, err = capture_from(["tool-data"], "tools")
    check(rc == 0, "exit 0", out, err)
    d = run_dir("tools")
    stem = "127.0.0.1_%d" % s.port
    with open(os.path.join(d, stem + ".xplane.pb")) as f:
        check(f.read() == "xplane.pb", "xplane.pb saved from tool_data")
    check(os.path.exists(os.path.join(d, stem + ".trace.json.gz")), "other tools saved")
    check(sorted(os.listdir(d)) == sorted([stem + ".xplane.pb", stem + ".trace.json.gz"]),
          "nothing else in the run directory", os.listdir(d))
    check(not os.path.exists(os.path.join(run_dir(""), "escaped")) and
          not any("escaped" in n for n in os.listdir(os.path.dirname(d))),
          "a name with .. did not escape", os.listdir(os.path.dirname(d)))
    check(sum("ignored tool data" in l for l in err) == 2, "says it ignored two names", err)
    check("also saved: %s.trace.json.gz" % stem in out[0], "lists the other tool files", out)
    check_messages(err)


def case_bad_args():
    bad = [
        ["localhost:1"],                                    # no --duration
        ["localhost:1", "--duration", "0"],
        ["localhost:1", "--duration", "0ms"],
        ["localhost:1", "--duration", "-1s"],
        ["localhost:1", "--duration", "25h"],
        ["localhost:1", "--duration", "86401s"],
        ["localhost:1", "--duration", "abc"],
        ["localhost:1", "--duration", "2x"],
        ["localhost:1", "--duration", " 2s"],
        ["localhost:1", "--duration", "nan"],
        ["localhost:1", "--duration", "1s", "--delay", "-1"],
        ["localhost:1", "--duration", "1s", "--timeout", "0"],
        ["localhost:1", "--duration", "1s", "--host-level", "4"],
        ["localhost:1", "--duration", "1s", "--python-level", "x"],
        ["localhost:1", "--duration", "1s", "--attempts", "0"],
        ["localhost:1", "--duration", "1s", "--run", "../up"],
        ["localhost:1", "--duration", "1s", "--run", "a/b"],
        ["localhost:1", "--duration", "1s", "--bogus"],
        ["localhost:1", "--duration"],
        ["localhost:1", "localhost:2", "--duration", "1s"],
        ["--duration", "1s"],                               # no address
        ["nohost", "--duration", "1s"],
        [":6009", "--duration", "1s"],
        ["localhost:", "--duration", "1s"],
        ["localhost:0", "--duration", "1s"],
        ["localhost:65536", "--duration", "1s"],
        ["localhost:http", "--duration", "1s"],
        ["::1:6009", "--duration", "1s"],
        ["[::1:6009", "--duration", "1s"],
        ["a:1,,b:2", "--duration", "1s"],
        ["a:1,", "--duration", "1s"],
        ["a:1,a:1", "--duration", "1s"],
        ["grpc://", "--duration", "1s"],
        ["http://a:1", "--duration", "1s"],
        ["a b:1", "--duration", "1s"],
    ]
    for args in bad:
        rc, out, err, _, _ = capture(*args, "--logdir", logdir())
        check(rc == 2, "exit 2 for %r" % args, out, err)
        check(len(err) == 1 and err[0].startswith(PROG), "one prefixed line for %r" % args, err)
        check(out == [], "nothing on stdout for %r" % args, out)
    rc, out, err, _, _ = capture("--help")
    check(rc == 0 and any("Exit status" in l for l in out), "--help documents the exit codes", out)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--capture", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--tmp", required=True)
    ARGS = ap.parse_args()
    ARGS.tmp = os.path.join(os.path.abspath(ARGS.tmp), ARGS.case)
    shutil.rmtree(ARGS.tmp, ignore_errors=True)
    os.makedirs(ARGS.tmp)
    os.chdir(ARGS.tmp)
    CASES[ARGS.case]()
    print("ok:", ARGS.case)


if __name__ == "__main__":
    main()
