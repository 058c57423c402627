#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks tfprof-report against profiles whose truth is known (see make_profiles.c).

usage: check_report.py CASE REPORT_BIN MAKE_PROFILES_BIN WORKDIR

Each CASE is one ctest test. Numbers from the simulator are exact up to the clock mapping, which
scales device durations by (1 +- a few 1e-6), hence the small relative tolerance."""
import csv
import io
import json
import os
import subprocess
import tempfile
import threading
import time

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


def case_tfepochs():
    """Two epochs restarting step_num in TensorFlow's layout (make_profiles.c, tfepochs): every
    occurrence is a step of its own, in time order, with its own device work."""
    fresh()
    path = os.path.join(WORK, "tf.xplane.pb")
    make("tfepochs", path)
    h = report_json(path)["hosts"][0]
    got = [(s["step"], s["occurrence"], s["start_ns"], s["wall_ns"]) for s in h["steps"]]
    check(got == [(0, 0, 0, 4_000_000), (1, 0, 4_000_000, 4_000_000), (0, 1, 10_000_000, 8_000_000),
                  (1, 1, 18_000_000, 8_000_000)], f"steps per occurrence, nested marker not a step: {got}")
    check(h["step_nums_repeat"] is True, "step_nums_repeat")
    busy = [s["device_busy_ns"] for s in h["steps"]]
    check(busy == [1_000_000, 1_000_000, 3_500_000, 3_500_000], f"device busy per occurrence {busy}")
    check([s["kernels"] for s in h["steps"]] == [1, 1, 2, 2], "kernels per occurrence")
    check([s["device_idle_ns"] for s in h["steps"]] == [3_000_000, 3_000_000, 4_500_000, 4_500_000],
          "device idle per occurrence")
    a = h["attribution"]
    check(a == {"by_step_num_stat": 1, "by_launch_scope": 4, "by_launch_time": 1, "unattributed": 0},
          f"attribution {a}")
    sm = h["summary"]
    check(sm["steps"] == 4 and sm["median_ns"] == 6_000_000 and sm["max_ns"] == 8_000_000, f"summary {sm}")
    # Text and CSV say which occurrence each row is.
    out = text_fits(path)
    rows = [l.split()[:2] for l in out.splitlines() if len(l.split()) == 11 and ":" in l.split()[0]]
    check(rows == [["0:0", "4.000"], ["0:1", "4.000"], ["1:0", "8.000"], ["1:1", "8.000"]],
          f"text rows occ:step, wall: {rows}")
    check("occ = how many earlier steps" in words(out), "text explains occ")
    import csv, io
    c = list(csv.DictReader(io.StringIO(run("--csv", "--only", "steps", path).stdout)))
    check([(r["step"], r["occurrence"]) for r in c] == [("0", "0"), ("1", "0"), ("0", "1"), ("1", "1")],
          "CSV occurrence column")


def case_epochs():
    """A tfprof session on the simulator: 2 epochs x 3 steps restarting step_num, each step two
    nested micro-step scopes (gradient accumulation) launching a kernel of (epoch + 1) ms."""
    fresh()
    make("epochs", WORK)
    h = report_json(WORK)["hosts"][0]
    steps = h["steps"]
    check([(s["step"], s["occurrence"]) for s in steps] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)],
          f"6 steps in time order {[(s['step'], s['occurrence']) for s in steps]}")
    check(all(steps[i]["start_ns"] < steps[i + 1]["start_ns"] for i in range(len(steps) - 1)), "time order")
    for s in steps:
        e = s["occurrence"]
        check(s["kernels"] == 2 and near(s["device_busy_ns"], 2_000_000 * (e + 1)),
              f"step {s['step']} occ {e}: kernels {s['kernels']} busy {s['device_busy_ns']}")
        # The host works 4 ms per step in epoch 0 and 8 ms in epoch 1 (sleeps only overshoot).
        check(s["wall_ns"] >= 4_000_000 * (e + 1), f"step {s['step']} occ {e} wall {s['wall_ns']}")
    check(h["attribution"]["unattributed"] == 0 and h["attribution"]["by_launch_scope"] == 12,
          f"every kernel through its launch's step scope: {h['attribution']}")
    check(h["kernels"]["rows"][0]["count"] == 12, "12 kernels")


def case_multiepochs():
    """Two hosts, 2 epochs x 2 steps each: hosts are compared occurrence by occurrence."""
    fresh()
    make("multiepochs", WORK)
    r = report_json(WORK)
    x = r["cross_host"]["steps"]
    check([(s["step"], s["occurrence"], s["hosts"]) for s in x] == [(0, 0, 2), (1, 0, 2), (0, 1, 2), (1, 1, 2)],
          f"compared per occurrence {[(s['step'], s['occurrence']) for s in x]}")
    walls = {h["host"]: {(s["step"], s["occurrence"]): s["wall_ns"] for s in h["steps"]} for h in r["hosts"]}
    for s in x:
        key = (s["step"], s["occurrence"])
        w = {host: v[key] for host, v in walls.items()}
        check(s["fastest_ns"] == min(w.values()) and s["slowest_ns"] == max(w.values()),
              f"step {key}: {s} vs {w}")
    out = words(text_fits(WORK))
    check("matched by step_num and occurrence" in out, "text says how hosts are matched")


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


def run_measured(*args, timeout=60, stdin=subprocess.DEVNULL):
    """tfprof-report ARGS as a child of its own: (exit code, stderr, peak RSS in bytes, seconds).
    The peak is the child's own (wait4's ru_maxrss), so this process's memory is not in it; a run
    that outlives TIMEOUT is killed and counts as a hang."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen([REPORT, *args], stdin=stdin, stdout=subprocess.DEVNULL, stderr=err)
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        _, status, ru = os.wait4(p.pid, 0)
        killer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    secs = time.monotonic() - t0
    check(secs < timeout, f"tfprof-report {' '.join(args)}: still running after {timeout} s (a hang)")
    return p.returncode, text, ru.ru_maxrss * 1024, secs


def one_line(err, what):
    """Checks that ERR is tfprof-report's single line of error that says what to do."""
    e = err.strip("\n")
    return check(e.count("\n") == 0 and e.startswith("tfprof-report: ") and len(e) > 40,
                 f"{what}: one line that says what to do: {err!r}")


def varint(v):
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def sparse(name, size, head=b""):
    """A file of SIZE bytes that holds HEAD and then zeros, without the zeros on disk."""
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(head)
    os.truncate(path, size)
    return path


# Memory a refused file may take: the program and its libraries, nothing in proportion to the file.
REFUSED_RSS = 64 << 20


def case_huge_input():
    """Files far larger than anything tfprof-report should read into memory, and paths that are
    not files: each is refused with one line and exit code 2, quickly, in bounded memory, never a
    hang. (Reading the whole file first took 1.05 GB for the 1 GB file and ended in "out of
    memory", exit 1, for the 64 GB ones.)"""
    fresh()
    gib = 1 << 30
    plane_hdr = b"\x0a"  # field 1 (planes), length-delimited
    cases = [
        # A sparse file of zeros: no field has number 0.
        ("zeros 1 GB", sparse("zeros1g.xplane.pb", gib), "never written"),
        ("zeros 64 GB", sparse("zeros64g.xplane.pb", 64 * gib), "never written"),
        # A plane that claims all of a 64 GB file, and the zeros inside it.
        ("plane of zeros 64 GB", sparse("plane64g.xplane.pb", 64 * gib,
                                        plane_hdr + varint(64 * gib - 1 - len(varint(64 * gib)))),
         "not a readable XSpace"),
        ("plane of zeros 1 GB", sparse("plane1g.xplane.pb", gib,
                                       plane_hdr + varint(gib - 1 - len(varint(gib)))),
         "not a readable XSpace"),
        # A plane that claims more than the file holds: a file cut short.
        ("cut 64 GB", sparse("cut64g.xplane.pb", 64 * gib, plane_hdr + varint(100 * gib)), "cut short"),
    ]
    for what, path, phrase in cases:
        rc, err, rss, secs = run_measured(path)
        check(rc == 2, f"{what}: exit {rc}, want 2; stderr {err!r}")
        one_line(err, what)
        check(phrase in err, f"{what}: says {phrase!r}: {err!r}")
        check(rss < REFUSED_RSS, f"{what}: peak RSS {rss >> 20} MiB, want < {REFUSED_RSS >> 20} MiB")
        check(secs < 10, f"{what}: took {secs:.1f} s, want a refusal at once")
        print(f"{what}: exit {rc}, peak RSS {rss >> 20} MiB, {secs:.2f} s")

    # A real profile, then bytes that are not part of one: refused at the byte where they start.
    make("tfstyle", os.path.join(WORK, "good.xplane.pb"))
    good = open(os.path.join(WORK, "good.xplane.pb"), "rb").read()
    for name, tail, phrase in (("zeros", b"\0" * 4096, f"corrupt from byte {len(good)} "),
                               ("text", b"trailing text\n", f"corrupt from byte {len(good)} "),
                               ("cut field", plane_hdr + varint(1000) + b"x" * 10,
                                f"990 bytes before the end of the part that starts at byte {len(good)};")):
        path = os.path.join(WORK, f"good+{name}.xplane.pb")
        with open(path, "wb") as f:
            f.write(good + tail)
        rc, err, _, _ = run_measured(path)
        check(rc == 2, f"profile + {name}: exit {rc}, want 2")
        one_line(err, f"profile + {name}")
        check(phrase in err, f"profile + {name}: says {phrase!r}: {err!r}")
    # A valid first field, cut short (in the middle of the first plane, or of a later one): says
    # so, where the part that was cut starts and how much of it is missing.
    first_len, i = 0, 1
    while True:
        first_len |= (good[i] & 0x7F) << (7 * (i - 1))
        i += 1
        if not good[i - 1] & 0x80:
            break
    first_end = i + first_len
    for cut, start in ((first_end // 2, 0), ((first_end + len(good)) // 2, first_end)):
        path = os.path.join(WORK, f"cut{cut}.xplane.pb")
        with open(path, "wb") as f:
            f.write(good[:cut])
        rc, err, _, _ = run_measured(path)
        check(rc == 2 and "cut short" in err, f"profile cut at {cut}: {rc} {err!r}")
        if start == 0:
            want = f"{first_end - cut} bytes before the end of the part that starts at byte 0;"
        else:
            want = f"bytes before the end of the part that starts at byte {start};"
        check(want in err, f"profile cut at {cut}: says {want!r}: {err!r}")
        one_line(err, f"profile cut at {cut}")
    # The same profile followed by zeros in a 1 GB sparse file: the zeros are never read whole.
    path = sparse("good+1g.xplane.pb", gib, good)
    rc, err, rss, secs = run_measured(path)
    check(rc == 2 and f"corrupt from byte {len(good)} " in err, f"profile + 1 GB of zeros: {rc} {err!r}")
    check(rss < REFUSED_RSS, f"profile + 1 GB of zeros: peak RSS {rss >> 20} MiB")

    # Paths that are not files: a FIFO nobody writes to (opening it must not wait for a writer),
    # the same FIFO as a host of a run directory, a device, a directory without profiles, and a
    # pipe on stdin.
    fifo = os.path.join(WORK, "fifo.xplane.pb")
    os.mkfifo(fifo)
    rundir = os.path.join(WORK, "run_with_fifo")
    os.makedirs(rundir)
    os.mkfifo(os.path.join(rundir, "host.xplane.pb"))
    os.makedirs(os.path.join(WORK, "emptydir"))
    for what, path, phrase in (("FIFO", fifo, "pipe"), ("FIFO in a run", rundir, "pipe"),
                               ("/dev/zero", "/dev/zero", "device"),
                               ("directory", os.path.join(WORK, "emptydir"), "no profile")):
        rc, err, _, secs = run_measured(path, timeout=20)
        check(rc == 2, f"{what}: exit {rc}, want 2; stderr {err!r}")
        one_line(err, what)
        check(phrase in err, f"{what}: says {phrase!r}: {err!r}")
    with open(os.path.join(WORK, "good.xplane.pb"), "rb") as f:
        piped = subprocess.run(f"cat {f.name} | {REPORT} /dev/stdin", shell=True, capture_output=True,
                               text=True, timeout=20)
    check(piped.returncode == 2 and "pipe" in piped.stderr, f"a pipe on stdin: {piped.returncode} {piped.stderr!r}")
    one_line(piped.stderr, "a pipe on stdin")
    # Stdin redirected from a file is a file: it reads as the file itself does.
    good_path = os.path.join(WORK, "good.xplane.pb")
    with open(good_path, "rb") as f:
        r = subprocess.run([REPORT, "--json", "/dev/stdin"], stdin=f, capture_output=True, text=True,
                           timeout=60)
    check(r.returncode == 0, f"stdin from a file reads: {r.returncode} {r.stderr!r}")
    if r.returncode == 0:
        (got,), (want,) = json.loads(r.stdout)["hosts"], report_json(good_path)["hosts"]
        check(got["steps"] == want["steps"] and got["summary"] == want["summary"],
              "stdin from a file: the same steps and summary as the file")


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


# ---- GPU memory (make_profiles.c: mem_session and tfmemory hold the patterns) ----------------

MIB = 1 << 20


def mem_truth(steps, leak):
    """Per step of mem_session: (peak, allocated, freed, in use at end) in bytes, from its pattern:
    64 MiB weights, then per step 128 + 32 MiB allocated and freed, then leak MiB kept."""
    return [((224 + leak * s) * MIB, (160 + leak) * MIB, 160 * MIB, (64 + leak * (s + 1)) * MIB)
            for s in range(steps)]


def csv_sections(text):
    """The CSV report's sections as name -> list of row dicts."""
    out, name, rows = {}, None, []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        name = lines[0][2:]
        out[name] = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    return out


def check_mem_host(h, steps, leak):
    truth = mem_truth(steps, leak)
    got = [(s["mem_peak_bytes"], s["mem_allocated_bytes"], s["mem_freed_bytes"], s["mem_end_in_use_bytes"])
           for s in h["steps"]]
    check(got == truth, f"{h['host']}: per-step peak, allocated, freed, at end {got} want {truth}")
    m = h["memory"]
    check(m["allocations"] == 2 + 3 * steps and m["releases"] == 1 + 2 * steps,
          f"{h['host']}: allocation and release counts {m['allocations']}, {m['releases']}")
    check(m["unmatched_releases"] == 1 and m["corrupt_values"] == 0, f"{h['host']}: one unmatched release")
    check(m["peak_bytes"] == truth[-1][0], f"{h['host']}: run peak {m['peak_bytes']}")
    check(abs(m["growth_bytes_per_step"] - leak * MIB) < 1, f"{h['host']}: growth {m['growth_bytes_per_step']}")
    # At the peak (the last step's backward pass): activations, weights, workspace, the earlier leaks.
    want = [(128 * MIB, "forward", "device/stream-ordered"), (64 * MIB, "init", "device"),
            (32 * MIB, "backward", "device")] + [(leak * MIB, "optimizer", "device")] * (steps - 1)
    rows = m["live_at_peak"]["rows"]
    check([(r["bytes"], r["scope"], r["region"]) for r in rows] == want,
          f"{h['host']}: live at peak {[(r['bytes'], r['scope'], r['region']) for r in rows]}")
    check(all(r["allocator"] == "GPU_0_device" for r in rows), "live at peak: device allocator")
    check(m["live_at_peak"]["bytes"] == m["peak_bytes"], "live at peak adds up to the peak")
    check(len({r["address"] for r in rows}) == len(rows), "live at peak: distinct addresses")
    stop = m["live_at_stop"]
    check(stop["count"] == 2 + steps and stop["bytes"] == (72 + leak * steps) * MIB,
          f"{h['host']}: live at stop {stop['count']} / {stop['bytes']}")
    pinned = [r for r in stop["rows"] if r["allocator"] == "GPU_0_pinned"]
    check(len(pinned) == 1 and pinned[0]["bytes"] == 8 * MIB and pinned[0]["scope"] == "init",
          f"the pinned staging buffer is live at stop: {pinned}")


def case_memory():
    fresh()
    make("memory", WORK)
    r = report_json(WORK)
    (h,) = r["hosts"]
    check(len(h["steps"]) == 6, "6 steps")
    check_mem_host(h, 6, 1)
    # --top limits the rows, not the counts.
    m = report_json(WORK, "--top", "2")["hosts"][0]["memory"]
    check(len(m["live_at_peak"]["rows"]) == 2 and m["live_at_peak"]["count"] == 8, "--top 2 rows at peak")
    text = text_fits(WORK)
    t = words(text)
    check("in use at step end grows by 1.000 MiB per step (least-squares slope over 6 steps)" in t,
          "text states the growth")
    check("peak device memory in use 229.000 MiB" in t, "text states the run's peak")
    check("Live at stop: 8 allocations, 78.000 MiB" in t, "text states live at stop")
    check("1 release without an allocation in the profile" in t, "text counts the unmatched release")
    rows = [l.split() for l in text.split("GPU memory per step")[1].splitlines()[2:8]]
    check([[float(x) for x in r[1:]] for r in rows] ==
          [[p / MIB, a / MIB, f / MIB, e / MIB] for p, a, f, e in mem_truth(6, 1)],
          f"text per-step memory rows {rows}")
    c = csv_sections(run("--csv", WORK).stdout)
    got = [(int(s["mem_peak_bytes"]), int(s["mem_allocated_bytes"]), int(s["mem_freed_bytes"]),
            int(s["mem_end_in_use_bytes"])) for s in c["steps"]]
    check(got == mem_truth(6, 1), f"CSV per-step memory {got}")
    check(int(c["memory"][0]["peak_bytes"]) == 229 * MIB and c["memory"][0]["unmatched_releases"] == "1",
          "CSV memory summary")
    at_peak = [x for x in c["memory_live"] if x["when"] == "at_peak"]
    check([int(x["bytes"]) for x in at_peak] == [128 * MIB, 64 * MIB, 32 * MIB] + [MIB] * 5, "CSV live at peak")


def case_memmulti():
    fresh()
    make("memmulti", WORK)
    r = report_json(WORK)
    a, b = r["hosts"]
    check_mem_host(a, 6, 1)
    check_mem_host(b, 6, 3)
    for s in r["cross_host"]["steps"]:
        n = s["step"]
        check(s["mem_peak_min_bytes"] == (224 + n) * MIB and s["mem_peak_max_bytes"] == (224 + 3 * n) * MIB,
              f"cross-host step {n} peaks {s['mem_peak_min_bytes']} {s['mem_peak_max_bytes']}")
        if n:
            check(s["mem_peak_max_host"] == "hostB", f"step {n}: hostB peaks highest")
    t = words(text_fits(WORK, "--only", "hosts"))
    check("peak lo / hi" in t, "cross-host text has the peak columns")


def case_tfmemory():
    fresh()
    path = os.path.join(WORK, "mem.xplane.pb")
    make("tfmemory", path)
    h = report_json(path)["hosts"][0]
    got = [(s["mem_peak_bytes"], s["mem_allocated_bytes"], s["mem_freed_bytes"], s["mem_end_in_use_bytes"])
           for s in h["steps"]]
    check(got == [(4000, 4000, 0, 4000), (4000, 0, 3000, 1000)], f"tfmemory per step {got}")
    m = h["memory"]
    check(m["unmatched_releases"] == 2 and m["corrupt_values"] == 2, f"unmatched and corrupt counted: {m}")
    check(m["peak_bytes"] == 4000 and m["peak_ns"] == 2_000_000, f"peak {m['peak_bytes']} at {m['peak_ns']}")
    check(m["growth_bytes_per_step"] == -3000, f"growth {m['growth_bytes_per_step']}")
    check([(x["address"], x["bytes"], x["scope"]) for x in m["live_at_peak"]["rows"]] ==
          [("0x300", 3000, "b"), ("0x100", 1000, "a")], f"live at peak {m['live_at_peak']}")
    check([(x["address"], x["bytes"], x["allocator"]) for x in m["live_at_stop"]["rows"]] ==
          [("0x200", 5000, "gpu_host_bfc"), ("0x100", 1000, "GPU_0_bfc"), ("0x400", 0, "GPU_0_bfc")],
          f"live at stop {m['live_at_stop']}")
    text_fits(path)
    # Sizes near 2^63: saturated, never negative, never a crash, in every format.
    huge = os.path.join(WORK, "huge.xplane.pb")
    make("tfmemhuge", huge)
    hh = report_json(huge)["hosts"][0]
    vals = [v for s in hh["steps"] for k, v in s.items() if k.startswith("mem_")]
    vals += [hh["memory"]["peak_bytes"]] + [x["bytes"] for x in hh["memory"]["live_at_stop"]["rows"]]
    check(len(vals) > 4 and all(v >= 0 for v in vals), f"huge sizes stay non-negative: {vals}")
    check(hh["memory"]["corrupt_values"] == 2, "INT64_MIN sizes are counted as corrupt")
    run(huge)
    run("--csv", huge)
    # A profile without memory events: no memory key, columns or text, and no error.
    plain = os.path.join(WORK, "plain.xplane.pb")
    make("tfstyle", plain)
    h = report_json(plain)["hosts"][0]
    check("memory" not in h and all("mem_peak_bytes" not in s for s in h["steps"]), "no memory in JSON")
    check("GPU memory" not in run(plain).stdout, "no memory in text")
    check("mem_peak_bytes" not in run("--csv", plain).stdout, "no memory columns in CSV")


main({"memory": case_memory, "memmulti": case_memmulti, "tfmemory": case_tfmemory,
      "tfepochs": case_tfepochs, "epochs": case_epochs, "multiepochs": case_multiepochs, "sim": case_sim, "multi": case_multi, "devbound": case_devbound, "tfstyle": case_tfstyle,
      "bad_input": case_bad_input, "huge_input": case_huge_input, "usage": case_usage, "width": case_width})
