# SPDX-License-Identifier: Apache-2.0
"""Opens tfprof's profiles with xprof, the real viewer, and checks what its tools show against what
the files say (read independently by xspace_pb.py).

  usage: check.py LOGDIR

LOGDIR holds three logdirs written by run.sh: host/ (train_loop, host only), gpu/ (sim_train_loop,
host + simulated GPU; may be absent) and multi/ (two hosts in one run directory). Each check prints
PASS or FAIL with what it compared; the exit status is 1 when any check failed.

Which xprof behaviour the checks rely on (xprof 2.24, see the notes at each check):
- the converter is xprof.convert.raw_to_tool_data (it wraps _pywrap_profiler_plugin
  .xspace_to_tools_data); tool "trace_viewer" gives Chrome JSON with all args, "trace_viewer@"
  the JSON the web app loads (flows as bind_id + flow_in/flow_out, args only group_id/uid);
- step roots (events with _r and step_num) are renamed "<name> <step_num>" in the trace viewer;
- the overview page's step time is the host step marker's duration on a host-only profile; with a
  GPU it is the longest run of consecutive device events (all streams, by start time) of that step,
  whether or not the host step encloses it (measured with this version; see expected_step_times_us).
"""

import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import xspace_pb

from xprof.convert import raw_to_tool_data as r2t

FAILED = []
INTERNAL_STATS = {"_pt", "_p", "_ct", "_c", "_r", "flops"}
# Lines xprof derives itself; they are not in our files.
DERIVED_LINES = {"Steps", "Launch Stats", "XLA Ops", "XLA Modules", "Framework Ops", "Framework Name Scope",
                 "Source code", "XLA TraceMe", "TensorFlow Ops", "TensorFlow Name Scope"}
# Events the trace viewer hides by design (xplane_schema IsInternalEvent): the allocator events
# that only xprof's Memory Profile reads. The _counters_ line becomes counter tracks, no thread.
HIDDEN_EVENTS = {"MemoryAllocation", "MemoryDeallocation"}
COUNTER_LINE = "_counters_"
DERIVED_PREFIXES = ("Framework Ops", "Framework Name Scope", "TensorFlow Ops", "TensorFlow Name Scope")


def derived(line_name):
    # The legacy trace_viewer tool (xla's converter) shows the counter line as a thread of
    # instant events; the web app's (trace_viewer@) as counter tracks. Either is expected.
    return line_name in DERIVED_LINES or line_name == COUNTER_LINE or line_name.startswith(DERIVED_PREFIXES)
TS_TOL_US = 0.0015  # the viewer rounds to nanoseconds


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail else ""), flush=True)
    if not ok:
        FAILED.append(name)
    return ok


def tool(paths, name, params=None):
    data, _ = r2t.xspace_to_tool_data(paths, name, params or {})
    if data is None:
        return None
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data)


# ---- What the file says ---------------------------------------------------------------------------

class Ev:
    def __init__(self, plane, line, e):
        self.plane, self.line = plane, line
        self.raw_name = plane.event_name(e)
        self.start_ps = line.timestamp_ns * 1000 + e.offset_ps
        self.dur_ps = e.duration_ps
        self.stats = plane.stats_dict(e.stats)
        self.kinds = {plane.stat_metadata[s.metadata_id].name: s.kind for s in e.stats}
        # Stats on the name's metadata (device_id, context_id, mangled_name of device events):
        # the trace viewer shows them beside the event's own, which win on a clash.
        meta = plane.event_metadata[e.metadata_id].stats
        self.meta_stats = {k: v for k, v in plane.stats_dict(meta).items() if k not in self.stats}
        self.meta_kinds = {plane.stat_metadata[s.metadata_id].name: s.kind for s in meta}

    @property
    def ts_us(self):
        return self.start_ps / 1e6

    @property
    def dur_us(self):
        return self.dur_ps / 1e6

    @property
    def shown_name(self):
        """The name xprof's trace viewer shows: step roots get their step number."""
        if "_r" in self.stats and "step_num" in self.stats:
            return f"{self.raw_name} {self.stats['step_num']}"
        return self.raw_name


def events(space, plane_name):
    pl = space.plane(plane_name)
    if not pl:
        return []
    return [Ev(pl, l, e) for l in pl.lines for e in l.events]


def device_planes(space):
    return [p for p in space.planes if p.name.startswith("/device:GPU:")]


def host_steps(space):
    """step_num -> (start_ps, end_ps) of the host step marker."""
    out = {}
    for e in events(space, "/host:CPU"):
        if "step_num" in e.stats and "_r" in e.stats:
            out[e.stats["step_num"]] = (e.start_ps, e.start_ps + e.dur_ps)
    return out


def launch_steps(space):
    """correlation_id -> step_num of the host step marker that encloses the launch (on its line)."""
    out = {}
    host = space.plane("/host:CPU")
    for l in host.lines:
        evs = [Ev(host, l, e) for e in l.events]
        steps = [e for e in evs if "step_num" in e.stats and "_r" in e.stats]
        for e in evs:
            cid = e.stats.get("correlation_id")
            if cid is None:
                continue
            for st in steps:
                if st.start_ps <= e.start_ps and e.start_ps + e.dur_ps <= st.start_ps + st.dur_ps:
                    out[cid] = st.stats["step_num"]
    return out


def device_events_by_step(space):
    """Device events with the step their launch ran in, found by correlation_id (as xprof does)."""
    steps = launch_steps(space)
    out = []
    for pl in device_planes(space):
        for l in pl.lines:
            for e in l.events:
                ev = Ev(pl, l, e)
                cid = ev.stats.get("correlation_id")
                if cid in steps:
                    out.append((steps[cid], ev))
    return out


def expected_step_times_us(space):
    """step_num -> step time in microseconds as xprof defines it (see the module comment)."""
    hs = host_steps(space)
    dev = device_events_by_step(space)
    dev.sort(key=lambda se: (se[1].start_ps, -(se[1].start_ps + se[1].dur_ps)))
    best = {}
    i = 0
    while i < len(dev):
        j, step, end = i, dev[i][0], 0
        while j < len(dev) and dev[j][0] == step:
            end = max(end, dev[j][1].start_ps + dev[j][1].dur_ps)
            j += 1
        span = (dev[i][1].start_ps, end)
        if step not in best or span[1] - span[0] > best[step][1] - best[step][0]:
            best[step] = span
        i = j
    out = {}
    for step, (h0, h1) in hs.items():
        d = best.get(step)
        out[step] = (h1 - h0) / 1e6 if d is None else (d[1] - d[0]) / 1e6
    return out


# ---- Trace viewer ---------------------------------------------------------------------------------

def index_trace(trace):
    """(process name -> pid, (pid, tid) -> thread name, (pid, thread name, name) -> [X events, and
    the instant events that stand for zero-duration ones])."""
    procs, threads, xs = {}, {}, {}
    for e in trace["traceEvents"]:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            procs[e["args"]["name"]] = e["pid"]
        elif e.get("ph") == "M" and e.get("name") == "thread_name":
            threads[(e["pid"], e["tid"])] = e["args"]["name"]
    for e in trace["traceEvents"]:
        # xprof 2.24 shows an event of zero duration (a synchronization that found the stream
        # idle, say) as an instant event ("ph": "i", no dur) rather than a complete one.
        if e.get("ph") == "X" or (e.get("ph") == "i" and "dur" not in e):
            tname = threads.get((e["pid"], e.get("tid")), "")
            xs.setdefault((e["pid"], tname, e["name"]), []).append(e)
    return procs, threads, xs


def find_x(xs, pid, tname, ev):
    for x in xs.get((pid, tname, ev.shown_name), []):
        if abs(x["ts"] - ev.ts_us) < TS_TOL_US and abs(x.get("dur", 0) - ev.dur_us) < TS_TOL_US:
            return x
    return None


def same_value(shown, ours, kind):
    if kind == "double":
        try:
            return abs(float(shown) - ours) <= 1e-5 * max(1.0, abs(ours))
        except ValueError:
            return False
    return str(shown) == str(ours)


def check_trace_viewer(label, path, space, prefix=""):
    trace = tool([path], "trace_viewer")
    if not check(f"{label}: trace_viewer converts", trace is not None and "traceEvents" in trace):
        return
    procs, threads, xs = index_trace(trace)
    planes = [space.plane("/host:CPU")] + device_planes(space)
    for pl in planes:
        pid = procs.get(prefix + pl.name)
        if not check(f"{label}: trace_viewer has process {pl.name}", pid is not None,
                     f"processes: {sorted(procs)}"):
            continue
        shown_threads = {n for (p, _), n in threads.items() if p == pid}
        lines = [l for l in pl.lines if l.name != COUNTER_LINE]
        ours = {l.name for l in lines}
        check(f"{label}: {pl.name} threads are our lines", ours <= shown_threads and
              not {t for t in shown_threads - ours if not derived(t)},
              f"ours {sorted(ours)}, shown {sorted(shown_threads)}")
        if pl.name == "/host:CPU":
            tids = {t for (p, t), n in threads.items() if p == pid and n != COUNTER_LINE}
            check(f"{label}: host thread ids are our line ids (tids)",
                  tids == {l.display_id or l.id for l in lines}, f"{sorted(tids)}")
        missing, bad_args, n = [], [], 0
        for l in lines:
            for e in l.events:
                ev = Ev(pl, l, e)
                if ev.raw_name in HIDDEN_EVENTS:
                    continue
                n += 1
                x = find_x(xs, pid, l.name, ev)
                if x is None:
                    missing.append(f"{ev.shown_name}@{ev.ts_us:.3f}us")
                    continue
                args = x.get("args", {})
                for stats, kinds in ((ev.stats, ev.kinds), (ev.meta_stats, ev.meta_kinds)):
                    for k, v in stats.items():
                        if k in INTERNAL_STATS:
                            if k in args:
                                bad_args.append(f"{ev.shown_name}: internal stat {k} shown")
                        elif k not in args or not same_value(args[k], v, kinds[k]):
                            bad_args.append(f"{ev.shown_name}: {k}={v!r} shown as {args.get(k)!r}")
                if pl.name.startswith("/device:GPU:") and "correlation_id" in ev.stats and not (
                        "device_id" in args and "context_id" in args):
                    bad_args.append(f"{ev.shown_name}: device_id/context_id not shown")
        shown_n = sum(len(v) for (p, t, _), v in xs.items() if p == pid and not derived(t))
        check(f"{label}: {pl.name}: all {n} events shown with our names, times and durations",
              not missing and shown_n == n, f"missing {missing[:5]}, shown {shown_n}")
        check(f"{label}: {pl.name}: event args are our stats (typed values, internal ones hidden)",
              not bad_args, "; ".join(bad_args[:5]))


def check_flows(label, path, space):
    """Launch -> kernel flows, which xprof draws from correlation_id (trace_viewer@ = the web app's
    JSON)."""
    trace = tool([path], "trace_viewer@", {"trace_viewer_options": {}, "hosts": []})
    procs, threads, xs = index_trace(trace)
    host = space.plane("/host:CPU")
    hpid = next((p for n, p in procs.items() if n.endswith("/host:CPU")), None)
    launches = {}
    for l in host.lines:
        for e in l.events:
            ev = Ev(host, l, e)
            if "correlation_id" in ev.stats:
                launches[ev.stats["correlation_id"]] = (l.name, ev)
    n, bad = 0, []
    for pl in device_planes(space):
        dpid = next((p for name, p in procs.items() if name.endswith(pl.name)), None)
        for l in pl.lines:
            for e in l.events:
                ev = Ev(pl, l, e)
                cid = ev.stats.get("correlation_id")
                if cid is None or cid not in launches:
                    continue
                n += 1
                dx = find_x(xs, dpid, l.name, ev)
                hl, hev = launches[cid]
                hx = find_x(xs, hpid, hl, hev)
                if not dx or not hx:
                    bad.append(f"correlation {cid}: device {bool(dx)} host {bool(hx)}")
                elif not (dx.get("flow_in") and hx.get("flow_out") and dx.get("bind_id") is not None
                          and dx.get("bind_id") == hx.get("bind_id")):
                    bad.append(f"correlation {cid}: no flow {hev.shown_name} -> {ev.shown_name}")
    bad_steps = [f"{ev.raw_name}@{ev.ts_us:.3f}: step_num {ev.stats.get('step_num')}, launched in step {st}"
                 for st, ev in device_events_by_step(space)
                 if ev.stats.get("step_num", st) != st or ("kernel_details" in ev.stats and "step_num" not in ev.stats)]
    check(f"{label}: device events carry the step_num of the step their launch ran in", not bad_steps,
          "; ".join(bad_steps[:3]))
    check(f"{label}: correlation_id is uint64 on launches and device events",
          all(ev.kinds["correlation_id"] == "uint64" for _, ev in launches.values()))
    check(f"{label}: a launch->device flow for each of the {n} correlated device events",
          n > 0 and not bad, "; ".join(bad[:5]))


# ---- Overview page, kernel stats, framework op stats ----------------------------------------------

def table(overview, first_col):
    return next((t for t in overview if isinstance(t, dict) and t.get("cols") and
                 t["cols"][0]["id"] == first_col), None)


def step_number(v):
    return int(str(v).split()[-1])


def check_overview(label, paths, spaces, multi_host=False):
    ov = tool(paths, "overview_page")
    if not check(f"{label}: overview_page converts", isinstance(ov, list)):
        return
    text = json.dumps(ov)
    check(f"{label}: overview page finds steps (no 'No step marker observed')",
          "No step marker observed" not in text and "no step marker" not in text.lower())
    steps = table(ov, "stepnum")
    rows = {step_number(r["c"][0]["v"]): r["c"][-1]["v"] * 1000 for r in steps["rows"]}
    per_host = [expected_step_times_us(s) for s in spaces]
    ours = set().union(*[set(h) for h in per_host])
    if multi_host:
        # With several hosts xprof shows the intersection of their steps, lined up by time; when the
        # hosts' steps drift apart (a loaded machine), an edge step can fall out of it.
        shown = sorted(rows)
        check(f"{label}: overview steps are our step_nums, at most one edge step dropped by the "
              "hosts' step intersection", shown and set(shown) <= ours and len(shown) >= len(ours) - 1
              and shown == list(range(shown[0], shown[0] + len(shown))),
              f"shown {shown}, ours {sorted(ours)}")
    else:
        check(f"{label}: one overview step per step_num", sorted(rows) == sorted(ours),
              f"shown {sorted(rows)}, ours {sorted(ours)}")
    bad = []
    for step, us in sorted(rows.items()):
        cands = [h[step] for h in per_host if step in h]
        if not any(abs(us - c) <= 1.0 for c in cands):
            bad.append(f"step {step}: shown {us:.3f}us, ours {[round(c, 3) for c in cands]}")
    what = "one host's step time" if multi_host else "ours"
    check(f"{label}: step times equal {what} within 1us", rows and not bad, "; ".join(bad[:5]) or
          ", ".join(f"{s}:{us:.3f}us" for s, us in sorted(rows.items())))
    diag = table(ov, "severity")
    shown = [(r["c"][0]["v"], r["c"][1]["v"]) for r in (diag or {}).get("rows", [])]
    want = [("ERROR", m) for s in spaces for m in s.errors] + [("WARNING", m) for s in spaces for m in s.warnings]
    check(f"{label}: our {len(want)} errors/warnings are the overview page's diagnostics",
          sorted(shown) == sorted(want), f"shown {shown}, ours {want}")
    return ov


def check_kernel_stats(label, path, space):
    ks = tool([path], "kernel_stats")
    if not check(f"{label}: kernel_stats converts", ks is not None and "rows" in ks):
        return
    cols = [c["id"] for c in ks["cols"]]
    shown = {}  # one row per kernel and op (tf_op); summed per kernel
    for r in ks["rows"]:
        v = dict(zip(cols, (c["v"] for c in r["c"])))
        n, t, _ = shown.get(v["kernel_name"], (0, 0.0, v))
        shown[v["kernel_name"]] = (n + int(v["occurrences"]), t + v["total_duration_us"], v)
    ours = {}
    for pl in device_planes(space):
        for l in pl.lines:
            for e in l.events:
                ev = Ev(pl, l, e)
                if "kernel_details" in ev.stats:
                    n, t = ours.get(ev.raw_name, (0, 0))
                    ours[ev.raw_name] = (n + 1, t + ev.dur_ps)
    check(f"{label}: kernel_stats lists every kernel of the run", set(shown) == set(ours),
          f"shown {sorted(shown)}, ours {sorted(ours)}")
    bad = [f"{k}: shown {shown[k][:2]}, ours ({n}, {t / 1e6})" for k, (n, t) in ours.items()
           if k in shown and (shown[k][0] != n or abs(shown[k][1] - t / 1e6) > 0.001 * n + 0.001)]
    check(f"{label}: kernel counts and total durations match", not bad, "; ".join(bad[:5]))
    # Launch geometry comes from kernel_details.
    bad = []
    for pl in device_planes(space):
        for l in pl.lines:
            for e in l.events:
                ev = Ev(pl, l, e)
                d = ev.stats.get("kernel_details")
                if not d or ev.raw_name not in shown:
                    continue
                kv = dict(p.split(":", 1) for p in d.split())
                v = shown[ev.raw_name][2]
                if v["grid_dim"] != kv["grid"] or v["block_dim"] != kv["block"] or \
                        int(v["registers_per_thread"]) != int(kv["regs"]):
                    bad.append(f"{ev.raw_name}: {d} shown as grid {v['grid_dim']} block {v['block_dim']}")
    check(f"{label}: kernel_stats grid/block/registers come from our kernel_details", not bad,
          "; ".join(sorted(set(bad))[:3]))
    # Theoretical occupancy comes from occ_pct in our kernel_details (percent, as TensorFlow writes
    # it): every row shows the value we wrote for that kernel and launch shape, never 0.
    ours_occ = {}
    for pl in device_planes(space):
        for l in pl.lines:
            for e in l.events:
                ev = Ev(pl, l, e)
                d = ev.stats.get("kernel_details")
                if d:
                    kv = dict(p.split(":", 1) for p in d.split())
                    ours_occ.setdefault((ev.raw_name, kv["grid"], kv["block"]), set()).add(
                        float(kv["occ_pct"]) if "occ_pct" in kv else None)
    bad = []
    for r in ks["rows"]:
        v = dict(zip(cols, (c["v"] for c in r["c"])))
        want = ours_occ.get((v["kernel_name"], v["grid_dim"], v["block_dim"]), {None})
        if None in want or len(want) != 1 or not v["occupancy_pct"] or \
                abs(v["occupancy_pct"] - next(iter(want))) > 1e-6:
            bad.append(f"{v['kernel_name']}: shown {v['occupancy_pct']}, ours {sorted(want, key=str)}")
    occ = {k: v[2]["occupancy_pct"] for k, v in shown.items()}
    check(f"{label}: kernel_stats occupancy is our occ_pct, non-zero", not bad,
          "; ".join(sorted(set(bad))[:3]) or f"{occ}")


def check_framework_op_stats(label, paths):
    fo = tool(paths, "framework_op_stats")
    ok = isinstance(fo, list) and all("cols" in t for t in fo)
    check(f"{label}: framework_op_stats converts", ok)
    if ok:
        rows = [[c["v"] for c in r["c"]] for t in fo for r in t.get("rows", [])]
        ops = sorted({(r[1], r[2], r[3]) for r in rows})
        print(f"NOTE {label}: framework_op_stats rows (host/device, type, name): {ops}")


def check_tools(label, paths, gpu):
    names = r2t.xspace_to_tool_names(paths)
    need = {"trace_viewer@", "overview_page", "framework_op_stats"}
    check(f"{label}: tool list has {sorted(need)}", need <= set(names), f"{names}")
    check(f"{label}: tool list has kernel_stats exactly when a GPU plane exists",
          ("kernel_stats" in names) == gpu, f"{names}")


# ---- The web server, as a user would run it --------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=60) as resp:
        data = resp.read()
        if resp.headers.get("Content-Encoding") == "gzip":
            import gzip
            data = gzip.decompress(data)
        return json.loads(data)


MiB = 1 << 20


def check_memory_profile(label, path, space, steps):
    """xprof's Memory Profile tool against the truth of sim_train_loop's allocation pattern: 64 MiB
    of weights and a 32 MiB pinned buffer once; per step 256 MiB of activations (cudaMallocAsync)
    and 64 MiB of gradients, freed in the step, and 1 MiB that is never freed. The peak is in the
    last step's backward pass: 64 + 256 + 64 + (steps - 1) MiB, with every live allocation at
    that moment in the table. xprof reads it all from the file's MemoryAllocation events
    (xprof/convert/xplane_to_memory_profile.cc)."""
    mp = tool([path], "memory_profile")
    if not check(f"{label}: memory_profile converts", mp is not None and "memoryProfilePerAllocator" in mp):
        return
    check(f"{label}: memory_profile has one allocator per device and kind",
          sorted(mp.get("memoryIds", [])) == ["GPU_0_device", "GPU_0_pinned"], f"{mp.get('memoryIds')}")
    dev = mp["memoryProfilePerAllocator"].get("GPU_0_device", {})
    summary = dev.get("profileSummary", {})
    want_peak = (64 + 256 + 64 + steps - 1) * MiB
    peak = int(summary.get("peakStats", {}).get("peakBytesInUse", 0))
    check(f"{label}: memory_profile peak is the truth", peak == want_peak, f"shown {peak}, truth {want_peak}")
    # The time of the peak: the last gradient allocation in the file (ps since the session began).
    host = space.plane("/host:CPU")
    allocs = [e for e in events(space, "/host:CPU") if e.raw_name == "MemoryAllocation" and
              e.stats.get("allocator_name") == "GPU_0_device" and e.stats.get("tf_op") == "backward"]
    line_ts = next(l.timestamp_ns for l in host.lines if l.name == "GPU memory")
    peak_ps = int(summary.get("peakStatsTimePs", -1)) + line_ts * 1000
    check(f"{label}: memory_profile peak time is the last step's gradient allocation",
          allocs and peak_ps == allocs[-1].start_ps, f"shown {peak_ps}, ours {allocs[-1].start_ps if allocs else None}")
    snaps = dev.get("memoryProfileSnapshots", [])
    active = sorted(int(snaps[int(a["snapshotIndex"])]["activityMetadata"]["allocationBytes"]) *
                    int(a["numOccurrences"]) for a in dev.get("activeAllocations", []) if int(a["snapshotIndex"]) >= 0)
    want_active = sorted([256 * MiB, 64 * MiB, 64 * MiB, (steps - 1) * MiB])
    check(f"{label}: memory_profile live allocations at the peak are the truth", active == want_active,
          f"shown {active}, truth {want_active}")
    ops = {snaps[int(a["snapshotIndex"])]["activityMetadata"]["tfOpName"] for a in dev.get("activeAllocations", [])
           if int(a["snapshotIndex"]) >= 0}
    check(f"{label}: memory_profile names the scopes that allocated", ops == {"forward", "backward", "init", "optimizer"},
          f"{sorted(ops)}")
    timeline = [int(x["aggregationStats"]["heapAllocatedBytes"]) for x in dev.get("sampledTimelineSnapshots", [])]
    # The truth of the timeline, from the pattern alone.
    use = 64 * MiB
    truth = [use]
    for k in range(steps):
        for d in (256, 64, -256, -64, 1):
            use += d * MiB
            truth.append(use)
    check(f"{label}: memory_profile timeline is the truth", timeline == truth, f"shown {timeline[:8]}..., truth {truth[:8]}...")
    # The trace viewer draws the counter: the web app's data has it as a counter track whose last
    # value is what stayed allocated at stop.
    tv = tool([path], "trace_viewer@", {"trace_viewer_options": {}, "hosts": []})
    evs = tv.get("traceEvents", []) if isinstance(tv, dict) else []
    c = [e for e in evs if e.get("ph") == "C" and e.get("name") == "GPU:0 memory in use (bytes)"]
    last = c[0]["entries"][-1][1:] if c and c[0].get("entries") else None
    check(f"{label}: trace viewer draws the GPU memory counter", last is not None and
          (64 + steps) * MiB in last and 32 * MiB in last, f"last values {last}")


def check_server(logdir, expect):
    """expect: run name -> (host names, planes, {host: space})."""
    port, grpc_port = free_port(), free_port()
    xprof = os.path.join(os.path.dirname(sys.executable), "xprof")
    log = open(os.path.join(logdir, "..", "xprof-server.log"), "w")
    srv = subprocess.Popen([xprof, "--logdir", logdir, "--port", str(port), "--grpc_port", str(grpc_port)],
                           stdout=log, stderr=subprocess.STDOUT)
    base = f"http://localhost:{port}/data/plugin/profile"
    try:
        runs = None
        for _ in range(120):
            if srv.poll() is not None:
                break
            try:
                runs = get(base, "/runs")
                if len(runs) >= len(expect):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if not check("server: xprof --logdir --port serves the run list", runs is not None and
                     sorted(runs) == sorted(expect), f"runs {runs}, expected {sorted(expect)}"):
            return
        for run, (hosts, gpu, spaces) in expect.items():
            q = urllib.parse.quote(run)
            tools = get(base, f"/run_tools?run={q}")
            check(f"server {run}: run_tools", "trace_viewer@" in tools and
                  ("kernel_stats" in tools) == gpu, f"{tools}")
            shown_hosts = [h["hostname"] for h in get(base, f"/hosts?run={q}&tag=trace_viewer@")]
            check(f"server {run}: hosts are our file names", set(hosts) <= set(shown_hosts),
                  f"{shown_hosts}")
            for host in hosts:
                trace = get(base, f"/data?run={q}&tag=trace_viewer@&host={urllib.parse.quote(host)}")
                procs, threads, xs = index_trace(trace)
                space = spaces[host]
                n = bad = 0
                for pname in ["/host:CPU"] + [p.name for p in device_planes(space)]:
                    pid = next((p for name, p in procs.items() if name.endswith(pname)), None)
                    for ev in events(space, pname):
                        if ev.raw_name in HIDDEN_EVENTS or ev.line.name == COUNTER_LINE:
                            continue
                        n += 1
                        if pid is None or not find_x(xs, pid, ev.line.name, ev):
                            bad += 1
                check(f"server {run} host {host}: trace data over HTTP shows our {n} events",
                      n > 0 and bad == 0, f"{bad} missing; processes {sorted(procs)}")
                if gpu:
                    nflow = sum(1 for v in xs.values() for x in v if x.get("flow_in"))
                    check(f"server {run} host {host}: flows over HTTP", nflow > 0, f"{nflow} flow ends")
            ov = get(base, f"/data?run={q}&tag=overview_page&host={urllib.parse.quote(hosts[0])}")
            check(f"server {run}: overview page over HTTP has steps",
                  bool(table(ov, "stepnum")["rows"]) and "No step marker observed" not in json.dumps(ov))
            if gpu:
                ks = get(base, f"/data?run={q}&tag=kernel_stats&host={urllib.parse.quote(hosts[0])}")
                check(f"server {run}: kernel_stats over HTTP", len(ks.get("rows", [])) > 0)
    finally:
        srv.terminate()
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
        log.close()


def main():
    logdir = sys.argv[1]
    profiles = {}  # label -> paths
    for label in ("host", "gpu", "multi", "python"):
        paths = sorted(glob.glob(os.path.join(logdir, label, "plugins/profile/*/*.xplane.pb")))
        if paths:
            profiles[label] = paths
    check("profiles written: host, multi (two files)", "host" in profiles and len(profiles.get("multi", [])) == 2,
          f"{ {k: len(v) for k, v in profiles.items()} }")
    if "gpu" not in profiles:
        print("NOTE gpu: no simulated-GPU profile (sim_train_loop not built); GPU checks not run")
    if "python" in profiles:
        spaces = [xspace_pb.read(p) for p in profiles["python"]]
        check("python: one profile, with a GPU plane", len(spaces) == 1 and bool(device_planes(spaces[0])))
    expect = {}
    for label, paths in profiles.items():
        spaces = [xspace_pb.read(p) for p in paths]
        gpu = any(device_planes(s) for s in spaces)
        hosts = [os.path.basename(p)[:-len(".xplane.pb")] for p in paths]
        check(f"{label}: hostnames[0] is the file's host name",
              [s.hostnames[:1] for s in spaces] == [[h] for h in hosts], f"{[s.hostnames for s in spaces]}")
        check_tools(label, paths, gpu)
        if label == "multi":
            for p, s, h in zip(paths, spaces, hosts):
                check_trace_viewer(f"{label}/{h}", p, s)
        else:
            check_trace_viewer(label, paths[0], spaces[0])
        if gpu:
            check_flows(label, paths[0], spaces[0])
            check_kernel_stats(label, paths[0], spaces[0])
        if label == "gpu":
            check_memory_profile(label, paths[0], spaces[0], len(host_steps(spaces[0])))
        check_overview(label, paths, spaces, multi_host=len(paths) > 1)
        check_framework_op_stats(label, paths)
        run = os.path.relpath(os.path.dirname(paths[0]), os.path.join(logdir))
        run = run.replace(os.sep + "plugins" + os.sep + "profile" + os.sep, "/")
        expect[run] = (hosts, gpu, dict(zip(hosts, spaces)))
    check_server(logdir, expect)
    print(f"{len(FAILED)} checks failed" if FAILED else "all checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
