#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks tfprof-report --svg against the report's own JSON for the same profiles (see
make_profiles.c) and against profiles built here byte by byte.

usage: check_svg.py CASE REPORT_BIN MAKE_PROFILES_BIN WORKDIR

CASE xml: the chart parses as XML; one panel per host; one host bar and one busy bar per step,
their heights proportional to the JSON's wall and busy times on the y axis's own ms scale, the
same scale in every panel; mean lines; 10,000 steps drawn as buckets in a small file; a hostile
host name escaped; no steps, unwritable outputs and bad option mixes fail with one line and the
right exit code, leaving no file behind.
CASE chromium: headless Chromium parses and renders the charts (no parsererror, the svg element
in the DOM, a screenshot with bar-coloured pixels). Exit 77 (skipped) when no Chromium is
installed (Debian package chromium; CHROMIUM names another binary)."""
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

import report_check
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import xspace_pb  # noqa: E402
from report_check import WORK, check, fresh, main, make

SVG = "{http://www.w3.org/2000/svg}"
WALL_RGB, BUSY_RGB = (0x4E, 0x79, 0xA7), (0xF2, 0x8E, 0x2B)


def run(*args, expect=0):
    """tfprof-report ARGS in WORKDIR, output kept as bytes (the chart may go to stdout)."""
    return report_check.run(*args, expect=expect, text=False, cwd=WORK)


def one_line(p, label, start="tfprof-report: "):
    err = p.stderr_text
    check(err.count("\n") == 1 and err.endswith("\n") and err.startswith(start) and len(err) > 30,
          f"{label}: one line on stderr that says what to do: {err!r}")
    return err


# ---- XSpace bytes, written here so that step counts and names are whatever a case needs -------
# (with the writer side of tests/interop/xspace_pb.py)

_int = _bytes = xspace_pb.encode_field


def _plane(name, stat_names, event_names, lines):
    """lines: [(id, name, timestamp_ns, [(metadata_id, offset_ps, duration_ps, {stat_id: int})])]"""
    b = _bytes(2, name)
    for lid, lname, ts, events in lines:
        lb = _int(1, lid) + _bytes(2, lname) + _int(3, ts)
        for meta, off, dur, stats in events:
            eb = _int(1, meta) + _int(2, off) + _int(3, dur)
            for k, v in stats.items():
                eb += _bytes(4, _int(1, k) + _int(4, v))
            lb += _bytes(4, eb)
        b += _bytes(3, lb)
    for i, n in event_names.items():
        b += _bytes(4, _int(1, i) + _bytes(2, _int(1, i) + _bytes(2, n)))
    for i, n in stat_names.items():
        b += _bytes(5, _int(1, i) + _bytes(2, _int(1, i) + _bytes(2, n)))
    return b


def write_space(path, planes):
    with open(path, "wb") as fh:
        fh.write(b"".join(_bytes(1, p) for p in planes))


def many_steps(path, n, straggler):
    """n steps back to back; step i takes 500 + 50 * (i % 7) us on the host (straggler: 9 ms)
    and runs one kernel of 200 + 20 * (i % 5) us, tagged with its step_num."""
    host, dev, t = [], [], 0
    for i in range(n):
        wall = 9_000_000_000 if i == straggler else (500 + 50 * (i % 7)) * 1_000_000
        host.append((1, t, wall, {1: i, 2: 1}))
        dev.append((1, t + 10_000_000, (200 + 20 * (i % 5)) * 1_000_000, {1: i}))
        t += wall
    write_space(path, [
        _plane("/host:CPU", {1: "step_num", 2: "_r"}, {1: "train"}, [(1, "python", 0, host)]),
        _plane("/device:GPU:0", {1: "step_num"}, {1: "_Z6kernelv"}, [(7, "Stream #7(Compute)", 0, dev)])])


def no_steps(path):
    write_space(path, [_plane("/host:CPU", {}, {1: "work"}, [(1, "main", 0, [(1, 0, 5_000_000, {})])])])


# ---- reading the chart back -------------------------------------------------------------------

def parse(path, label):
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        check(False, f"{label}: the SVG parses as XML: {e}")
        return None, data
    check(root.tag == SVG + "svg", f"{label}: root element {root.tag}")
    check(not re.search(rb"(?<![A-Za-z])-?(nan|inf)(?![A-Za-z])", data, re.I), f"{label}: no NaN or infinity")
    for el in root.iter():
        for a in ("x", "y", "width", "height", "x1", "x2", "y1", "y2", "data-ms"):
            v = el.get(a)
            if v is None or v.endswith("%"):
                continue
            try:
                ok = math.isfinite(float(v)) and (float(v) >= 0 or a not in ("width", "height"))
            except ValueError:
                ok = False
            check(ok, f"{label}: {el.tag} {a}={v!r} is a finite number, not negative for a size")
    return root, data


def y_scale(panel, label):
    """(y of 0 ms, px per ms, [tick values]) from the panel's y axis: its grid lines and labels."""
    ticks = []
    for g in panel.iter(SVG + "g"):
        if g.get("class") == "ytick":
            m = re.fullmatch(r"([0-9.]+) ms", g.find(SVG + "text").text)
            check(m, f"{label}: tick label {g.find(SVG + 'text').text!r} is a number of ms")
            ticks.append((float(m.group(1)), float(g.find(SVG + "line").get("y1"))))
    check(len(ticks) >= 3 and ticks[0][0] == 0, f"{label}: y axis from 0 with ticks: {ticks}")
    y0 = ticks[0][1]
    scales = [(y0 - y) / v for v, y in ticks[1:]]
    check(max(scales) - min(scales) < 1e-3 * max(scales), f"{label}: evenly spaced ticks {ticks}")
    return y0, scales[-1], [v for v, _ in ticks]


def bars(panel, cls):
    return [r for r in panel.iter(SVG + "rect") if r.get("class") == cls]


def panels(root):
    return [g for g in root.iter(SVG + "g") if g.get("class") == "panel"]


def all_text(el):
    return "".join(el.itertext())


def check_against_json(name, path, svg):
    """The chart of PATH against tfprof-report --json PATH: panels, bars, heights, means."""
    p = run("--svg", svg, path)
    one_line(p, f"{name}: --svg", start=f"tfprof-report: wrote {svg}")
    check(p.stdout == b"", f"{name}: nothing on stdout")
    root, data = parse(svg, name)
    if root is None:
        return None
    report = json.loads(run("--json", path).stdout)
    hosts = report["hosts"]
    ps = panels(root)
    check(len(ps) == len(hosts), f"{name}: {len(ps)} panels for {len(hosts)} hosts")
    check(root.get("data-steps-per-bar") == "1", f"{name}: one step per bar")
    scale = None
    for h, panel in zip(hosts, ps):
        label = f"{name} {h['host']}"
        check(panel.get("data-host") == h["host"], f"{label}: panel host {panel.get('data-host')!r}")
        title = [t for t in panel.iter(SVG + "text") if t.get("class") == "panel-title"][0]
        verdict = h["summary"]["verdict"]
        check(all_text(title) == f"{h['host']}: {verdict}", f"{label}: title {all_text(title)!r}")
        y0, px_per_ms, ticks = y_scale(panel, label)
        if scale is None:
            scale = (y0 - ticks[-1] * px_per_ms, px_per_ms, ticks)
        check(abs(px_per_ms - scale[1]) < 1e-6 and ticks == scale[2], f"{label}: the same y scale as the first panel")
        steps = h["steps"]
        walls, busys = bars(panel, "wall"), bars(panel, "busy")
        check(len(walls) == len(steps) and len(busys) == len(steps),
              f"{label}: {len(walls)} host and {len(busys)} busy bars for {len(steps)} steps")
        for s, w, b in zip(steps, walls, busys):
            for rect, ns, what in ((w, s["wall_ns"], "host"), (b, s["device_busy_ns"], "busy")):
                check(rect.get("data-step") == str(s["step"]), f"{label}: bar of step {rect.get('data-step')}")
                want = ns / 1e6 * px_per_ms
                hgt, y = float(rect.get("height")), float(rect.get("y"))
                check(abs(hgt - want) <= 0.02 and abs(y + hgt - y0) <= 0.02,
                      f"{label} step {s['step']}: {what} bar {hgt} px high at y {y}, want {want:.2f} up from {y0}")
            check(float(w.get("x")) < float(b.get("x")), f"{label}: busy bar right of the host bar")
        means = {l.get("class"): float(l.get("y1")) for l in panel.iter(SVG + "line")
                 if (l.get("class") or "").startswith("mean-")}
        summ = h["summary"]
        for cls, ms in (("mean-wall", summ["mean_ns"] / 1e6), ("mean-busy", summ["device_busy_ns"] / 1e6 / len(steps))):
            check(cls in means and abs(y0 - means[cls] - ms * px_per_ms) <= 0.02,
                  f"{label}: {cls} line at {means.get(cls)}, want {ms:.3f} ms")
        xt = [t.text for t in panel.iter(SVG + "text") if t.get("class") == "xtick"]
        check(xt == [str(s["step"]) for s in steps], f"{label}: step labels {xt}")
    return root, hosts, scale


def case_xml():
    fresh()
    make("sim", os.path.join(WORK, "sim"))
    make("multi", os.path.join(WORK, "multi"))
    make("devbound", os.path.join(WORK, "devbound"))
    tf = os.path.join(WORK, "tf.xplane.pb")
    make("tfstyle", tf)
    for name, path in (("sim", os.path.join(WORK, "sim")), ("devbound", os.path.join(WORK, "devbound")),
                       ("tfstyle", tf)):
        check_against_json(name, path, os.path.join(WORK, name + ".svg"))
    # Two hosts: a panel each on one scale, so hostB's 15 ms longer steps stand out.
    got = check_against_json("multi", os.path.join(WORK, "multi"), os.path.join(WORK, "multi.svg"))
    if got:
        root, hosts, (_, px_per_ms, _) = got
        a, b = (bars(p, "wall") for p in panels(root))
        check([h["host"] for h in hosts] == ["hostA", "hostB"], "multi: hosts in order")
        # Sleeps only overshoot, and on a loaded machine by milliseconds, so the 15 ms are checked
        # on average with room to spare.
        diff = sum(float(y.get("height")) - float(x.get("height")) for x, y in zip(a, b)) / max(len(a), 1)
        check(len(a) == len(b) == 3 and diff > 5 * px_per_ms,
              f"multi: hostB's bars are taller on the shared scale (by {diff / px_per_ms:.1f} ms on average)")
    # devbound: the device outlasts the steps, so busy bars are the taller ones.
    root, _ = parse(os.path.join(WORK, "devbound.svg"), "devbound")
    if root is not None:
        (p,) = panels(root)
        check(all(float(b.get("height")) > float(w.get("height")) for w, b in zip(bars(p, "wall"), bars(p, "busy"))),
              "devbound: busy bars above host bars")
    case_many()
    case_hostile(tf)
    case_errors(tf)


def case_many():
    """10,000 steps: 200 bars of 50-step means, a line to each bucket's slowest step, a small file."""
    path = os.path.join(WORK, "many.xplane.pb")
    many_steps(path, 10_000, straggler=1234)
    svg = os.path.join(WORK, "many.svg")
    run("--svg", svg, path)
    root, data = parse(svg, "many")
    if root is None:
        return
    check(len(data) < 200_000, f"many: {len(data)} bytes, want a small file")
    check(root.get("data-steps-per-bar") == "50", f"many: steps per bar {root.get('data-steps-per-bar')}")
    caption = " ".join(all_text(t) for t in root.iter(SVG + "text") if t.get("class") == "caption")
    check("mean of 50 consecutive steps" in caption, f"many: the caption says bars are bucket means: {caption!r}")
    steps = json.loads(run("--json", "--only", "steps", path).stdout)["hosts"][0]["steps"]
    check(len(steps) == 10_000, f"many: the report finds {len(steps)} steps")
    (panel,) = panels(root)
    y0, px, _ = y_scale(panel, "many")
    walls, busys = bars(panel, "wall"), bars(panel, "busy")
    maxes = [l for l in panel.iter(SVG + "line") if l.get("class") == "wall-max"]
    check(len(walls) == len(busys) == len(maxes) == 200, f"many: {len(walls)}, {len(busys)}, {len(maxes)} bars, want 200")
    for i, (w, b, m) in enumerate(zip(walls, busys, maxes)):
        bucket = steps[50 * i:50 * i + 50]
        wall = sum(s["wall_ns"] for s in bucket) / 50 / 1e6
        busy = sum(s["device_busy_ns"] for s in bucket) / 50 / 1e6
        slowest = max(s["wall_ns"] for s in bucket) / 1e6
        ok = (w.get("data-step") == str(bucket[0]["step"]) and abs(float(w.get("height")) - wall * px) <= 0.02
              and abs(float(b.get("height")) - busy * px) <= 0.02 and abs(y0 - float(m.get("y2")) - slowest * px) <= 0.02)
        if not check(ok, f"many: bucket {i} (steps {bucket[0]['step']}..): bars {w.get('height')}, {b.get('height')}, "
                     f"max line to {m.get('y2')}; want {wall * px:.2f}, {busy * px:.2f}, {slowest * px:.2f}"):
            break
    tallest = min(range(len(maxes)), key=lambda i: float(maxes[i].get("y2")))
    check(tallest == 1234 // 50, f"many: the straggler's bucket has the tallest line ({tallest})")


def case_hostile(tf):
    """A host name with markup, quotes, a control byte and a byte that is not UTF-8."""
    raw = "a<b>&amp;\"'\x01]]>\udcff z"
    d = os.path.join(WORK, "hostile")
    os.makedirs(d)
    shutil.copy(tf, os.path.join(d, raw + ".xplane.pb"))
    shutil.copy(tf, os.path.join(d, "plain.xplane.pb"))
    svg = os.path.join(WORK, "hostile.svg")
    run("--svg", svg, d)
    root, data = parse(svg, "hostile")
    if root is None:
        return
    want = "a<b>&amp;\"'\ufffd]]>\ufffd z"
    hosts = [p.get("data-host") for p in panels(root)]
    check(sorted(hosts) == sorted([want, "plain"]), f"hostile: host names read back {hosts}")
    check(b"<b>" not in data and b"\xff" not in data and b"\x01" not in data, "hostile: nothing raw in the file")
    titles = [all_text(t) for t in root.iter(SVG + "text") if t.get("class") == "panel-title"]
    check(any(t.startswith(want + ": ") for t in titles), f"hostile: the panel title names the host: {titles}")


def case_errors(tf):
    # No steps: exit 2, one line that says how to mark steps, no file.
    ns = os.path.join(WORK, "nosteps.xplane.pb")
    no_steps(ns)
    out = os.path.join(WORK, "nosteps.svg")
    err = one_line(run("--svg", out, ns, expect=2), "no steps")
    check("step" in err and "step_num" in err, f"no steps: says how to mark steps: {err!r}")
    check(not os.path.exists(out), "no steps: no file written")
    # Unwritable outputs: exit 2 (the user picks another path), no file or temp file left.
    d = os.path.join(WORK, "errs")
    os.makedirs(d)
    for out in (os.path.join(d, "no/such/dir/c.svg"), d, "/proc/c.svg"):
        err = one_line(run("--svg", out, tf, expect=2), out)
        check("cannot write" in err and "--svg" in err, f"{out}: names the problem and the option: {err!r}")
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        ro = os.path.join(d, "ro")
        os.makedirs(ro, mode=0o555)
        one_line(run("--svg", os.path.join(ro, "c.svg"), tf, expect=2), "read-only folder")
    check(sorted(os.listdir(d)) in ([], ["ro"]), f"no temp files left: {os.listdir(d)}")
    # A write that fails after the open (a full disk): exit 1, one line.
    if os.path.exists("/dev/full"):
        err = one_line(run("--svg", "/dev/full", tf, expect=1), "/dev/full")
        check("cannot write /dev/full" in err, f"/dev/full: {err!r}")
    # A pipe or device is written in place.
    p = run("--svg", "/dev/stdout", tf)
    try:
        check(ET.fromstring(p.stdout).tag == SVG + "svg", "/dev/stdout: the chart on stdout")
    except ET.ParseError as e:
        check(False, f"/dev/stdout: the chart on stdout parses: {e}")
    # An existing file is replaced whole.
    out = os.path.join(d, "old.svg")
    with open(out, "w") as fh:
        fh.write("old" * 100000)
    run("--svg", out, tf)
    parse(out, "replaced")
    check(sorted(os.listdir(d)) in (["old.svg"], ["old.svg", "ro"]), f"only the chart left: {os.listdir(d)}")
    # Bad option mixes: one usage line naming --help.
    for args in (["--svg", "x.svg", "--json", tf], ["--svg", "x.svg", "--top", "3", tf],
                 ["--svg", "x.svg", "--chrome-trace", "x.json", tf], ["--svg", "", tf], ["--svg"]):
        r = run(*args, expect=2)
        check(r.stderr_text.count("\n") == 1 and "--help" in r.stderr_text, f"{args}: one usage line: {r.stderr_text!r}")
    check(not os.path.exists("x.svg"), "no chart from a bad option mix")
    h = run("--help").stdout_text
    check("--svg OUT.svg" in h and "device busy" in h, "--help documents --svg")
    check(all(len(l) <= 100 for l in h.splitlines()), "--help fits 100 columns")


# ---- Chromium ---------------------------------------------------------------------------------

def chromium_binary():
    for c in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


def run_chromium(binary, home, *args):
    """Headless Chromium in its own process group, killed whole when it hangs."""
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={os.path.join(home, 'profile')}", *args]
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, XDG_CACHE_HOME=home)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        check(False, f"chromium {args}: no answer in 90 s, killed")
        return None, b""
    return p.returncode, out


def png_pixels(path):
    """(width, height, set of colours with their counts) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        return w, h, None
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, counts = bytearray(stride), {}
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            px = bytes(line[x:x + 3])
            counts[px] = counts.get(px, 0) + 1
        prev = line
    return w, h, counts


def case_chromium():
    binary = chromium_binary()
    if not binary:
        print("skip: no chromium found (Debian package chromium, or CHROMIUM=/path/to/chrome)")
        sys.exit(77)
    fresh()
    make("multi", os.path.join(WORK, "multi"))
    many = os.path.join(WORK, "many.xplane.pb")
    many_steps(many, 10_000, straggler=1234)
    charts = {"multi": os.path.join(WORK, "multi"), "many": many}
    home = tempfile.mkdtemp(prefix="chromium-home-", dir=WORK)
    for name, path in charts.items():
        svg = os.path.join(WORK, name + ".svg")
        run("--svg", svg, path)
        rc, dom = run_chromium(binary, home, "--dump-dom", "file://" + svg)
        if rc is None:
            continue
        dom = dom.decode("utf-8", "replace")
        check(rc == 0, f"{name}: chromium --dump-dom exit {rc}")
        check("<svg" in dom and "parsererror" not in dom and "This page contains the following errors" not in dom,
              f"{name}: Chromium shows the svg without a parser error: {dom[:300]!r}")
        check(dom.count('class="wall"') == len(bars(ET.parse(svg).getroot(), "wall")) > 0,
              f"{name}: every host bar is in Chromium's DOM")
        png = os.path.join(WORK, name + ".png")
        rc, _ = run_chromium(binary, home, f"--screenshot={png}", "--window-size=1200,900",
                             "--hide-scrollbars", "file://" + svg)
        if rc is None:
            continue
        check(rc == 0 and os.path.exists(png) and os.path.getsize(png) > 0, f"{name}: a non-empty screenshot")
        if not os.path.exists(png):
            continue
        got = png_pixels(png)
        check(got is not None and got[:2] == (1200, 900), f"{name}: a 1200x900 PNG: {got and got[:2]}")
        if got and got[2] is not None:
            wall, busy = got[2].get(bytes(WALL_RGB), 0), got[2].get(bytes(BUSY_RGB), 0)
            check(wall > 500 and busy > 500, f"{name}: bars drawn: {wall} host-bar and {busy} busy-bar pixels")
            print(f"{name}: {wall} host-bar pixels, {busy} busy-bar pixels")
    # The check itself works: a broken SVG shows Chromium's parser error.
    bad = os.path.join(WORK, "bad.svg")
    with open(bad, "w") as fh:
        fh.write('<svg xmlns="http://www.w3.org/2000/svg"><text>a < b</text></svg>')
    rc, dom = run_chromium(binary, home, "--dump-dom", "file://" + bad)
    check(rc is None or b"parsererror" in dom, f"a broken SVG gives a parsererror: {dom[:200]!r}")


main({"xml": case_xml, "chromium": case_chromium})
