#!/usr/bin/env python3
"""Checks tfprof-report against profiles whose truth is known (see make_profiles.c).

usage: check_report.py CASE REPORT_BIN MAKE_PROFILES_BIN WORKDIR

Each CASE is one ctest test. Numbers from the simulator are exact up to the clock mapping, which
scales device durations by (1 +- a few 1e-6), hence the small relative tolerance."""
import json
import os

from report_check import REPORT, WORK, check, fresh, main, make, run, words


def near(got, want, rel=1e-4, abs_ns=200):
    return abs(got - want) <= max(abs_ns, rel * abs(want))


def report_json(path, *extra):
    p = run("--json", *extra, path)
    return json.loads(p.stdout)


def text_fits(path, *extra):
    p = run(*extra, path)
    lines = p.stdout.splitlines()
    check(len(lines) > 3, "text report has content")
    wide = [l for l in lines if len(l) > 100]
    check(not wide, f"text lines over 100 columns: {wide[:3]}")
    return p.stdout


# Per step in the sim modes: stream A runs 20000 + 50 + 300 + 10 + 20 us back to back.
SIM_BUSY = 20_380_000


def case_sim():
    fresh()
    make("sim", WORK)
    r = report_json(WORK)  # a logdir: the only run is read
    check(r["run_dir"].endswith("plugins/profile/single"), f"run dir {r['run_dir']}")
    (h,) = r["hosts"]
    check(h["host"] == "hostA", "host name from the file name")
    check(h["gpu_planes"] == 1, "one GPU plane")
    steps = h["steps"]
    check([s["step"] for s in steps] == [0, 1, 2, 3], f"steps {[s['step'] for s in steps]}")
    for s in steps:
        check(near(s["device_busy_ns"], SIM_BUSY), f"step {s['step']} busy {s['device_busy_ns']}")
        check(s["kernels"] == 3 and s["memcpys"] == 2 and s["memsets"] == 1, f"step {s['step']} counts")
        check(s["h2d_bytes"] == 1 << 20 and near(s["h2d_ns"], 50_000), f"step {s['step']} H2D")
        check(s["d2h_bytes"] == 4096 and near(s["d2h_ns"], 10_000), f"step {s['step']} D2H")
        # The host sleeps 10 ms in load_batch and 25 ms after the launches (sleeps may overshoot
        # on a loaded machine, so only lower bounds are exact).
        check(s["wall_ns"] >= 35_000_000, f"step {s['step']} wall {s['wall_ns']}")
        check(10_000_000 <= s["input_ns"] < s["wall_ns"] - 25_000_000, f"step {s['step']} input {s['input_ns']}")
        # The device runs only the step's own work, all of it inside the window.
        check(near(s["device_idle_ns"], s["wall_ns"] - SIM_BUSY, abs_ns=300_000),
              f"step {s['step']} idle {s['device_idle_ns']} wall {s['wall_ns']}")
        check(s["launches"] >= 6 and 0 < s["launch_ns"] < s["wall_ns"], f"step {s['step']} launches")
        check(near(s["device_busy_pct"], 100 * SIM_BUSY / s["wall_ns"], rel=1e-3), "busy pct")
    walls = sorted(s["wall_ns"] for s in steps)
    sm = h["summary"]
    check(sm["steps"] == 4 and sm["min_ns"] == walls[0] and sm["max_ns"] == walls[-1], "summary range")
    check(sm["median_ns"] == (walls[1] + walls[2]) // 2, f"median {sm['median_ns']} of {walls}")
    check(sm["p90_ns"] == walls[3], "p90 = nearest rank")
    check(sm["mean_ns"] == sum(walls) // 4 or abs(sm["mean_ns"] - sum(walls) / 4) <= 1, "mean")
    # 10 ms of 35+ ms in load_batch is >= 20%, and the device is busy under 80% (20.4 of 35+).
    check(sm["verdict"] == "input-bound", f"verdict {sm['verdict']}")
    check(h["attribution"]["unattributed"] == 0, "all device work attributed")
    k = {row["name"]: row for row in h["kernels"]["rows"]}
    check(set(k) == {"kernelA(float*, int)", "kernelB(float*, int)", "kernelC(float*, int)"},
          f"demangled kernel names {sorted(k)}")
    for name, dur in (("kernelA(float*, int)", 20_000_000), ("kernelB(float*, int)", 300_000),
                      ("kernelC(float*, int)", 400_000)):
        row = k[name]
        check(row["count"] == 4 and near(row["total_ns"], 4 * dur) and near(row["min_ns"], dur)
              and near(row["max_ns"], dur), f"kernel {name}: {row}")
    rows = h["kernels"]["rows"]
    check(rows[0]["name"] == "kernelA(float*, int)", "kernels sorted by total time")
    check(near(sum(r["time_pct"] for r in rows), 100, abs_ns=0.01), "shares add up to 100%")
    c = {row["kind"]: row for row in h["copies"]}
    check(c["H2D"]["count"] == 4 and c["H2D"]["bytes"] == 4 << 20 and near(c["H2D"]["total_ns"], 200_000),
          f"H2D row {c.get('H2D')}")
    check(c["D2H"]["bytes"] == 4 * 4096 and c["memset"]["bytes"] == 4 << 20, "D2H and memset rows")
    # The same numbers through the run directory and the file itself.
    run_dir = r["run_dir"]
    check(report_json(run_dir)["hosts"][0]["steps"] == steps, "run dir gives the same steps")
    check(report_json(os.path.join(run_dir, "hostA.xplane.pb"))["hosts"][0]["steps"] == steps,
          "file gives the same steps")
    # CSV: the steps section parses and agrees.
    import csv, io
    p = run("--csv", "--only", "steps", WORK)
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    check([int(x["device_busy_ns"]) for x in rows] == [s["device_busy_ns"] for s in steps], "CSV = JSON")
    out = words(text_fits(WORK))
    check("verdict: input-bound" in out and "rule:" in out, "text has the verdict and its rule")


def case_multi():
    fresh()
    make("multi", WORK)
    r = report_json(WORK)
    hosts = [h["host"] for h in r["hosts"]]
    check(hosts == ["hostA", "hostB"], f"hosts {hosts}")
    for h in r["hosts"]:
        check(len(h["steps"]) == 3, f"{h['host']} has 3 steps")
        for s in h["steps"]:
            check(near(s["device_busy_ns"], SIM_BUSY), f"{h['host']} step {s['step']} busy")
        check(h["summary"]["verdict"] == "host/launch-bound", f"{h['host']} verdict {h['summary']['verdict']}")
    x = r["cross_host"]
    check(len(x["steps"]) == 3, "3 steps compared")
    # The comparison is checked against the hosts' own step times in the same report, not against
    # the sleeps that made them: a loaded machine can stretch any step of either host.
    walls = {h["host"]: {s["step"]: s["wall_ns"] for s in h["steps"]} for h in r["hosts"]}
    slowest_count = {}
    for s in x["steps"]:
        w = {host: v[s["step"]] for host, v in walls.items() if s["step"] in v}
        slow = max(w, key=lambda k: w[k])
        slowest_count[slow] = slowest_count.get(slow, 0) + 1
        check(s["hosts"] == 2 and s["slowest_host"] == slow, f"step {s['step']} slowest {s['slowest_host']}, walls {w}")
        check(s["spread_ns"] == max(w.values()) - min(w.values()), f"step {s['step']} spread {s['spread_ns']} vs {w}")
    best = max(slowest_count.values())
    check(x["most_often_slowest"]["steps"] == best and slowest_count[x["most_often_slowest"]["host"]] == best,
          f"most often slowest {x['most_often_slowest']} vs {slowest_count}")
    # hostB sleeps 15 ms longer in each of its 3 steps: over the run it is slower by far.
    check(sum(walls["hostB"].values()) - sum(walls["hostA"].values()) >= 20_000_000, f"hostB slower overall: {walls}")
    out = words(text_fits(WORK))
    check("Across 2 hosts" in out and f"Slowest most often: {x['most_often_slowest']['host']}" in out,
          "text cross-host section")


def case_devbound():
    fresh()
    make("devbound", WORK)
    h = report_json(WORK)["hosts"][0]
    check(h["summary"]["verdict"] == "device-bound", f"verdict {h['summary']['verdict']}")
    for s in h["steps"]:
        check(near(s["device_busy_ns"], 10_000_000), f"step {s['step']} busy {s['device_busy_ns']}")


def case_tfstyle():
    fresh()
    path = os.path.join(WORK, "tf.xplane.pb")
    make("tfstyle", path)
    h = report_json(path)["hosts"][0]
    s0, s1 = h["steps"]
    check(h["gpu_planes"] == 1 and h["device_events"] == 5, f"device events {h['device_events']} (XLA Ops skipped)")
    check((s0["step"], s0["wall_ns"], s1["step"], s1["wall_ns"]) == (0, 10_000_000, 1, 10_000_000),
          "steps from _r roots only")
    check(s0["device_busy_ns"] == 2_400_000 and s0["device_idle_ns"] == 7_600_000, f"step 0 {s0}")
    check(s0["kernels"] == 2 and s0["h2d_bytes"] == 1000 and s0["h2d_ns"] == 500_000, "step 0 work")
    check(s0["launches"] == 3 and s0["launch_ns"] == 30_000, f"step 0 launches {s0['launches']}")
    check(s1["device_busy_ns"] == 1_000_000 and s1["device_idle_ns"] == 8_500_000, f"step 1 {s1}")
    check(s1["kernels"] == 1 and s1["launches"] == 1 and s1["launch_ns"] == 10_000, "step 1 work")
    a = h["attribution"]
    check(a == {"by_step_num_stat": 0, "by_launch_scope": 3, "by_launch_time": 1, "unattributed": 1},
          f"attribution {a}")
    k = {row["name"]: row for row in h["kernels"]["rows"]}
    check(k["foo(float*)"]["count"] == 3 and k["foo(float*)"]["total_ns"] == 2_500_000, f"foo {k.get('foo(float*)')}")
    check(k["bar(float*)"]["count"] == 1 and k["bar(float*)"]["max_ns"] == 1_500_000, "bar")
    check(h["summary"]["median_ns"] == 10_000_000 and h["summary"]["verdict"] == "host/launch-bound",
          "summary")
    text_fits(path)


def case_bad_input():
    fresh()
    make("tfstyle", os.path.join(WORK, "good.xplane.pb"))
    good = open(os.path.join(WORK, "good.xplane.pb"), "rb").read()
    inputs = {
        "truncated.xplane.pb": good[: len(good) // 2],
        "corrupt.xplane.pb": good[:40] + b"\xff" * 64 + good[104:],
        "empty.xplane.pb": b"",
        "text.xplane.pb": b"hello, this is not a profile\n" * 10,
        "trace.json": b'{"traceEvents": []}',
        "image.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "gzip.xplane.pb.gz": b"\x1f\x8b\x08\x00" + b"\x00" * 60,
    }
    for name, data in inputs.items():
        with open(os.path.join(WORK, name), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(WORK, "emptydir"))
    os.makedirs(os.path.join(WORK, "logdir/plugins/profile/run1"))
    # A run directory with one good and one truncated host fails as a whole, naming the bad file.
    os.makedirs(os.path.join(WORK, "mixed"))
    with open(os.path.join(WORK, "mixed/a.xplane.pb"), "wb") as f:
        f.write(good)
    with open(os.path.join(WORK, "mixed/b.xplane.pb"), "wb") as f:
        f.write(good[: len(good) // 3])
    paths = [os.path.join(WORK, n) for n in inputs] + [
        os.path.join(WORK, "emptydir"), os.path.join(WORK, "logdir"),
        os.path.join(WORK, "does-not-exist"), os.path.join(WORK, "mixed")]
    for p in paths:
        for fmt in ([], ["--json"], ["--csv"]):
            r = run(*fmt, p, expect=2)
            err = r.stderr.strip("\n")
            check(r.stdout == "", f"{p}: nothing on stdout")
            check(err.count("\n") == 0 and err.startswith("tfprof-report: "), f"{p}: one line: {err!r}")
            check(len(err) > 30, f"{p}: says what to do: {err!r}")
    check("b.xplane.pb" in run(os.path.join(WORK, "mixed"), expect=2).stderr, "names the bad file")
    check(run(os.path.join(WORK, "good.xplane.pb")).returncode == 0, "the good file still reads")


def run_measured(path, timeout=60):
    """tfprof-report PATH as a child of its own: exit code, stderr, peak RSS in bytes (wait4)."""
    import subprocess
    import time
    p = subprocess.Popen([REPORT, path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            os.wait4(p.pid, 0)
            check(False, f"tfprof-report {path} still ran after {timeout} s")
            return None, "", 0
        time.sleep(0.01)
    err = p.stderr.read().decode("utf-8", "replace")
    return os.waitstatus_to_exitcode(status), err, ru.ru_maxrss * 1024


def case_huge():
    """Files far larger than what can be decoded from them: sparse files of zeros (1 GB, 64 GB)
    are refused from their first bytes; a first field that claims the whole gigabyte ends where
    its bytes stop making sense, having touched a few pages; a FIFO and /dev/zero are refused
    without waiting. Each exits 2 with one line, in bounded memory."""
    fresh()
    make("tfstyle", os.path.join(WORK, "good.xplane.pb"))
    good = open(os.path.join(WORK, "good.xplane.pb"), "rb").read()
    files = {}
    for name, size in (("zeros_1g.xplane.pb", 1 << 30), ("zeros_64g.xplane.pb", 64 << 30)):
        files[name] = os.path.join(WORK, name)
        with open(files[name], "wb") as f:
            f.truncate(size)
    # A planes field (1) whose length is the rest of the gigabyte: a plausible start.
    files["claims_1g.xplane.pb"] = os.path.join(WORK, "claims_1g.xplane.pb")
    n, varint = (1 << 30) - 6, b""
    v = n
    while True:
        varint += bytes([(v & 0x7F) | (0x80 if v > 0x7F else 0)])
        v >>= 7
        if not v:
            break
    with open(files["claims_1g.xplane.pb"], "wb") as f:
        f.write(b"\x0a" + varint)
        f.truncate(1 << 30)
    files["trailing.xplane.pb"] = os.path.join(WORK, "trailing.xplane.pb")
    with open(files["trailing.xplane.pb"], "wb") as f:
        f.write(good + b"\x00" * 4096)
    files["fifo.xplane.pb"] = os.path.join(WORK, "fifo.xplane.pb")
    os.mkfifo(files["fifo.xplane.pb"])
    files["dev_zero"] = "/dev/zero"
    for name, path in files.items():
        code, err, rss = run_measured(path)
        if code is None:
            continue
        print(f"{name}: exit {code}, peak RSS {rss / 1e6:.1f} MB: {err.strip()}")
        check(code == 2, f"{name}: exit {code}, want 2")
        check(err.count("\n") == 1 and err.startswith("tfprof-report: ") and len(err) > 40,
              f"{name}: one line that says what to do: {err!r}")
        # The report's own code and libraries take a few MB; reading the file must not add to it.
        # AddressSanitizer (the sanitized tree) shadows a mapping with an eighth of its size.
        limit = 64 << 20
        if os.environ.get("TFPROF_SANITIZED") and os.path.isfile(path):
            limit += os.path.getsize(path) // 8
        check(rss < limit, f"{name}: peak RSS {rss / 1e6:.0f} MB, want < {limit / 1e6:.0f} MB")
    check(run(os.path.join(WORK, "good.xplane.pb")).returncode == 0, "the good file still reads")


def case_usage():
    fresh()
    for args in (["--bogus", "x"], [], ["--top"], ["--top", "-1", "x"], ["--only", "nope", "x"],
                 ["--csv", "--json", "x"], ["a", "b"], ["--width", "10", "x"]):
        r = run(*args, expect=2)
        check(r.stderr.count("\n") == 1 and "--help" in r.stderr, f"{args}: one line naming --help: {r.stderr!r}")
    h = run("--help")
    for word in ("--csv", "--json", "--top", "--only", "--run", "--width", "Exit status", "verdict",
                 "device-bound", "Input scopes", "PATH"):
        check(word in h.stdout, f"--help documents {word}")
    check(all(len(l) <= 100 for l in h.stdout.splitlines()), "--help fits 100 columns")


def case_width():
    fresh()
    make("sim", WORK)
    make("multi", WORK)
    # Two runs in the logdir: the newest is read unless --run names one, and the text says so.
    out = words(text_fits(WORK))
    check("--run NAME picks another" in out, "text says which run it read")
    r = report_json(WORK, "--run", "single")
    check(r["run_dir"].endswith("single") and len(r["hosts"]) == 1, "--run picks the run")
    run("--run", "nope", WORK, expect=2)
    wide = run("--width", "160", os.path.join(WORK, "plugins/profile/single"))
    check(all(len(l) <= 160 for l in wide.stdout.splitlines()), "--width 160 is honoured")
    for sec in ("steps", "summary", "kernels", "copies", "hosts"):
        text_fits(WORK, "--only", sec)
        json.loads(run("--json", "--only", sec, WORK).stdout)


main({"sim": case_sim, "multi": case_multi, "devbound": case_devbound, "tfstyle": case_tfstyle,
      "bad_input": case_bad_input, "usage": case_usage, "width": case_width, "huge": case_huge})
