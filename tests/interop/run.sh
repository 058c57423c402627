#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The interop test (ctest: interop_xprof): installs a pinned xprof from PyPI into a virtual
# environment under the build folder (once; later runs reuse it), writes profiles with the
# examples and tests/interop/two_hosts.c, and runs check.py, which opens them with xprof's
# converter and its web server. Exit 77 (skipped, shown by ctest) when PyPI cannot be reached and
# xprof is not installed yet. Environment (set by CMakeLists.txt): TFPROF_XPROF_VERSION,
# TFPROF_INTEROP_VENV, TFPROF_INTEROP_WORK, TFPROF_TRAIN_LOOP, TFPROF_TWO_HOSTS and, when the CUPTI
# simulator is built, TFPROF_SIM_TRAIN_LOOP, TFPROF_CUPTI_SIM and TFPROF_PY_VENV (the virtual
# environment in which the Python package's tests installed tfprof: a profile written from Python
# is checked too when it is there).
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
ver=$TFPROF_XPROF_VERSION
venv=$TFPROF_INTEROP_VENV
work=$TFPROF_INTEROP_WORK

# xprof 2.24 wheels need CPython >= 3.10.
py=${TFPROF_INTEROP_PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
	echo "interop: $py is missing or older than 3.10; xprof $ver needs Python >= 3.10" >&2
	exit 1
fi

# shellcheck source=../support/pip_venv.sh
source "$here/../support/pip_venv.sh"
pip_venv "$py" "$venv" xprof "$ver"

# Fresh profiles every run: host only, host + simulated GPU, and two hosts in one run directory.
rm -rf "$work"
mkdir -p "$work/logs"
"$TFPROF_TRAIN_LOOP" "$work/logs/host" 5 >/dev/null
if [[ -n ${TFPROF_SIM_TRAIN_LOOP:-} ]]; then
	"$TFPROF_SIM_TRAIN_LOOP" "$work/logs/gpu" 5 >/dev/null
fi
"$TFPROF_TWO_HOSTS" "$work/logs/multi" two_hosts 4 >/dev/null
pyvenv=${TFPROF_PY_VENV:-}
if [[ -n ${TFPROF_CUPTI_SIM:-} && -x $pyvenv/bin/python ]] && "$pyvenv/bin/python" -c 'import tfprof' 2>/dev/null; then
	"$pyvenv/bin/python" "$here/python_loop.py" "$work/logs/python" "$TFPROF_CUPTI_SIM" >/dev/null
else
	echo "NOTE python: the tfprof package is not installed in ${pyvenv:-(no venv)} (ctest python_pytest makes it); the profile written from Python is not checked"
fi

cd "$here"
# xprof's C++ logs (absl) go to stderr; keep them out of the test output unless asked.
if [[ ${TFPROF_INTEROP_VERBOSE:-0} == 1 ]]; then
	exec "$venv/bin/python" check.py "$work/logs"
fi
"$venv/bin/python" check.py "$work/logs" 2>"$work/xprof-stderr.log" || {
	rc=$?
	echo "(xprof's own log: $work/xprof-stderr.log)"
	exit $rc
}
