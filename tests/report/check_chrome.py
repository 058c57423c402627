#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks tfprof-report --chrome-trace against the profiles it converts, read independently with
tests/interop/xspace_pb.py (a wire-format reader that shares no code with the tool).

usage: check_chrome.py CASE REPORT_BIN MAKE_PROFILES_BIN WORKDIR

CASE json: every event of the host and GPU planes is one complete event with the right process,
thread, name, time (ns precision) and args; one flow per correlated launch; .gz is the same JSON.
CASE errors: unwritable outputs and bad combinations fail with one line and the right exit code.
CASE perfetto (run by run_perfetto.sh inside a venv with the perfetto package): Perfetto's
trace_processor loads the traces and finds the same slice and flow counts. TRACE_PROCESSOR names
its binary."""
import collections
import gzip
import json
import os
import sys

from report_check import WORK, check, fresh, main, make, run

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import xspace_pb  # noqa: E402


def profiles():
    """(name, PATH for tfprof-report, [(host, xplane file)]) for the simulated profiles."""
    make("sim", os.path.join(WORK, "sim"))
    make("multi", os.path.join(WORK, "multi"))
    tf = os.path.join(WORK, "tf.xplane.pb")
    make("tfstyle", tf)
    out = []
    for name, path in (("sim", os.path.join(WORK, "sim/plugins/profile/single")),
                       ("multi", os.path.join(WORK, "multi/plugins/profile/multi"))):
        files = sorted(f for f in os.listdir(path) if f.endswith(".xplane.pb"))
        out.append((name, path, [(f[:-len(".xplane.pb")], os.path.join(path, f)) for f in files]))
    out.append(("tfstyle", tf, [("tf", tf)]))
    return out


def ps_of(line, e):
    return line.timestamp_ns * 1000 + (e.offset_ps or 0)


def expected(hosts):
    """What the trace must hold: slices as comparable tuples, process and thread names, and the
    correlated pairs per host."""
    spaces = [(h, xspace_pb.read(f)) for h, f in hosts]
    several = len(spaces) > 1
    starts = [ps_of(l, e) for _, s in spaces for p in s.planes
              if p.name == "/host:CPU" or p.name.startswith("/device:GPU:") for l in p.lines for e in l.events]
    base = min(starts) // 1000 * 1000
    slices, procs, threads, pairs = [], set(), set(), 0
    for h, s in spaces:
        host_corr, dev_corr = set(), set()
        for p in s.planes:
            gpu = p.name.startswith("/device:GPU:")
            if not (gpu or p.name == "/host:CPU"):
                continue
            pname = f"{h} {p.name}" if several else p.name
            procs.add(pname)
            for l in p.lines:
                tname = l.display_name or l.name
                threads.add((pname, tname))
                for e in l.events:
                    args = p.stats_dict(e.stats)
                    meta = p.event_metadata[e.metadata_id]
                    for k, v in p.stats_dict(meta.stats).items():
                        args.setdefault(k, v)
                    start = ps_of(l, e)
                    slices.append((pname, tname, p.event_name(e), (start - base) // 1000,
                                   (start + e.duration_ps) // 1000 - start // 1000,
                                   json.dumps(args, sort_keys=True)))
                    c = args.get("correlation_id")
                    if c:
                        (dev_corr if gpu else host_corr).add(c)
        pairs += len(host_corr & dev_corr)
    return sorted(slices), procs, threads, pairs


def got(trace):
    ev = trace["traceEvents"]
    pname = {e["pid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "process_name"}
    tname = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    slices = sorted((pname[e["pid"]], tname[(e["pid"], e["tid"])], e["name"], round(e["ts"] * 1000),
                     round(e["dur"] * 1000), json.dumps(e["args"], sort_keys=True))
                    for e in ev if e["ph"] == "X")
    return slices, set(pname.values()), {(pname[p], n) for (p, _), n in tname.items()}, pname


def check_flows(trace, pname, pairs, label):
    ev = trace["traceEvents"]
    s = {(e["name"], e["id"]): e for e in ev if e["ph"] == "s"}
    f = {(e["name"], e["id"]): e for e in ev if e["ph"] == "f"}
    check(len(s) == pairs and len(f) == pairs and set(s) == set(f),
          f"{label}: {len(s)} flow starts, {len(f)} ends, want {pairs} correlated pairs")
    for key, fe in f.items():
        se = s.get(key)
        if not se:
            continue
        check(fe.get("bp") == "e" and fe["cat"] == se["cat"] == "launch", f"{label}: flow {key} shape {fe}")
        check(pname[se["pid"]].endswith("/host:CPU") and "/device:GPU:" in pname[fe["pid"]],
              f"{label}: flow {key} goes from the host to a GPU")
        # Each end sits inside a slice of its thread that carries the same correlation id.
        for e, what in ((se, "start"), (fe, "end")):
            inside = [x for x in ev if x["ph"] == "X" and x["pid"] == e["pid"] and x["tid"] == e["tid"]
                      and x["ts"] <= e["ts"] <= x["ts"] + x["dur"] and x["args"].get("correlation_id") == key[1]]
            check(inside, f"{label}: flow {key} {what} is inside its launch/device slice")
    return len(s)


def case_json():
    fresh()
    for name, path, hosts in profiles():
        out = os.path.join(WORK, f"{name}.json")
        r = run("--chrome-trace", out, path)
        check(r.stdout == "" and r.stderr == "", f"{name}: quiet when stderr is not a terminal: {r.stderr!r}")
        with open(out) as fh:
            trace = json.load(fh)
        run("--chrome-trace", out + ".gz", path)
        with gzip.open(out + ".gz", "rt") as fh:
            check(json.load(fh) == trace, f"{name}: .gz holds the same trace")
        check(trace["displayTimeUnit"] == "ns", f"{name}: displayTimeUnit")
        want, want_procs, want_threads, pairs = expected(hosts)
        have, have_procs, have_threads, pname = got(trace)
        check(len(have) == len(want), f"{name}: {len(have)} slices, profile has {len(want)} events")
        missing = collections.Counter(want) - collections.Counter(have)
        extra = collections.Counter(have) - collections.Counter(want)
        check(not missing and not extra, f"{name}: slices differ: missing {list(missing)[:2]} extra {list(extra)[:2]}")
        check(have_procs == want_procs, f"{name}: processes {sorted(have_procs)}, want {sorted(want_procs)}")
        check(have_threads == want_threads, f"{name}: threads {sorted(have_threads)}")
        check(pairs > 0, f"{name}: the profile has correlated launches")
        check_flows(trace, pname, pairs, name)
        if name == "sim":
            check("/device:GPU:0" in have_procs and "/host:CPU" in have_procs, "sim: plane names")
            k = [x for x in trace["traceEvents"] if x["ph"] == "X" and x["name"] == "kernelA(float*, int)"
                 and "kernel_details" in x["args"]]
            check(len(k) == 4 and all(abs(x["dur"] - 20000) < 1 for x in k), "sim: 4 kernelA of 20 ms")
        if name == "multi":
            check({"hostA /host:CPU", "hostB /host:CPU"} <= have_procs, f"multi: host names {have_procs}")
            check(len({e["pid"] for e in trace["traceEvents"]}) == 4, "multi: 4 processes")
    # Ordered for readers: all metadata of a thread before its events; X events of one thread
    # sorted by start (the profile's lines are).
    ev = trace["traceEvents"]
    check(ev[0]["ph"] == "M" and ev[0]["name"] == "process_name", "starts with a process name")


def case_errors():
    fresh()
    tf = os.path.join(WORK, "tf.xplane.pb")
    make("tfstyle", tf)
    for out in (os.path.join(WORK, "no/such/dir/t.json"), WORK, "/proc/t.json.gz"):
        r = run("--chrome-trace", out, tf, expect=2)
        err = r.stderr.strip("\n")
        check(err.count("\n") == 0 and err.startswith("tfprof-report: cannot write"), f"{out}: one line: {err!r}")
    check(sorted(os.listdir(WORK)) == ["tf.xplane.pb"], f"no temp files left: {os.listdir(WORK)}")
    # A write that fails half way (a full disk) is the tool's failure, not the user's: exit 1.
    if os.path.exists("/dev/full"):
        r = run("--chrome-trace", "/dev/full", tf, expect=1)
        check("cannot write" in r.stderr and r.stderr.count("\n") == 1, f"/dev/full: one line: {r.stderr!r}")
    for args in (["--chrome-trace", "x.json", "--json", tf], ["--chrome-trace", "x.json", "--top", "3", tf],
                 ["--chrome-trace", "", tf], ["--chrome-trace"]):
        r = run(*args, expect=2)
        check(r.stderr.count("\n") == 1 and "--help" in r.stderr, f"{args}: one usage line: {r.stderr!r}")
    bad = os.path.join(WORK, "bad.xplane.pb")
    with open(bad, "wb") as fh:
        fh.write(b"not a profile\n" * 8)
    run("--chrome-trace", os.path.join(WORK, "t.json"), bad, expect=2)
    check(not os.path.exists(os.path.join(WORK, "t.json")), "no trace for bad input")
    check("--chrome-trace" in run("--help").stdout, "--help documents --chrome-trace")
    # An existing trace is replaced whole.
    out = os.path.join(WORK, "t.json")
    with open(out, "w") as fh:
        fh.write("old" * 100000)
    run("--chrome-trace", out, tf)
    with open(out) as fh:
        check(json.load(fh)["traceEvents"], "the old file was replaced")


def case_perfetto():
    from perfetto.trace_processor import TraceProcessor, TraceProcessorConfig
    fresh()
    binary = os.environ["TRACE_PROCESSOR"]
    for name, path, hosts in profiles():
        want, _, want_threads, pairs = expected(hosts)
        for suffix in (".json", ".json.gz"):
            out = os.path.join(WORK, name + suffix)
            run("--chrome-trace", out, path)
            tp = TraceProcessor(trace=out, config=TraceProcessorConfig(bin_path=binary))
            try:
                q = lambda sql: list(tp.query(sql))  # noqa: E731
                slices = q("select count(*) as n from slice")[0].n
                flows = q("select count(*) as n from flow")[0].n
                threads = {r.name for r in q("select name from thread where name is not null")}
                procs = {r.name for r in q("select name from process where name is not null")}
                kernel = q("select dur from slice where name = 'kernelA(float*, int)' and depth = 0 "
                           "and dur > 1000000 limit 1")
            finally:
                tp.close()
            label = f"perfetto {name}{suffix}"
            check(slices == len(want), f"{label}: {slices} slices, profile has {len(want)} events")
            check(flows == pairs, f"{label}: {flows} flows, want {pairs} correlated pairs")
            check({t for _, t in want_threads} <= threads, f"{label}: thread names {sorted(threads)[:6]}")
            check(any(p.endswith("/host:CPU") for p in procs) and any("/device:GPU:" in p for p in procs),
                  f"{label}: process names {sorted(procs)}")
            if name == "sim":
                check(kernel and abs(kernel[0].dur - 20_000_000) < 1000, f"{label}: kernelA lasts 20 ms: {kernel}")
            print(f"{label}: {slices} slices, {flows} flows")


main({"json": case_json, "errors": case_errors, "perfetto": case_perfetto})
