# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the tfprof-report test drivers in this folder (check_report.py, check_chrome.py,
check_svg.py): their command line, checks that collect failures, runs of tfprof-report and of
report_make_profiles, a fresh work folder and the final verdict.

Every driver takes the same arguments, read here on import: CASE REPORT_BIN MAKE_PROFILES_BIN
WORKDIR."""
import os
import shutil
import subprocess
import sys

CASE, REPORT, MAKE, WORK = sys.argv[1:5]
failures = []


def check(cond, what):
    """Records WHAT as a failure unless COND holds; returns COND."""
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def run(*args, expect=0, text=True, cwd=None, timeout=120):
    """tfprof-report ARGS, checked to exit with EXPECT. text=False keeps stdout and stderr as bytes
    and adds their decoded forms as stdout_text and stderr_text."""
    p = subprocess.run([REPORT, *args], capture_output=True, text=text, cwd=cwd, timeout=timeout)
    if not text:
        p.stdout_text = p.stdout.decode("utf-8", "replace")
        p.stderr_text = p.stderr.decode("utf-8", "replace")
    err = p.stderr if text else p.stderr_text
    check(p.returncode == expect,
          f"tfprof-report {' '.join(args)}: exit {p.returncode}, want {expect}; stderr: {err!r}")
    return p


def words(text):
    """TEXT with its whitespace runs as single spaces: the text report wraps long lines at word
    boundaries (paths and host names decide where), so phrases are looked for in this form."""
    return " ".join(text.split())


def make(mode, out):
    """report_make_profiles MODE OUT (see make_profiles.c)."""
    subprocess.run([MAKE, mode, out], check=True, capture_output=True, timeout=60)


def fresh():
    """An empty WORKDIR."""
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)


def main(cases):
    """Runs the case CASE names in CASES (name -> function) and exits 1 if any check failed."""
    cases[CASE]()
    if failures:
        print(f"{len(failures)} check(s) failed in case {CASE}")
        sys.exit(1)
    print(f"case {CASE}: all checks passed")
