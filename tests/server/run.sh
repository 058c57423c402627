#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest server_capture: runs capture_test.py with the interop test's virtual environment (the
# pinned xprof from PyPI, which brings grpcio), made here too if the interop test has not made it
# yet; skipped (exit 77) when it is not there and PyPI cannot be reached. Environment (from
# CMakeLists.txt): TFPROF_XPROF_VERSION, TFPROF_INTEROP_VENV, TFPROF_SERVER_WORK and the
# programs capture_test.py runs.
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
py=${TFPROF_INTEROP_PYTHON:-python3}
# shellcheck source=../support/pip_venv.sh
source "$here/../support/pip_venv.sh"
pip_venv "$py" "$TFPROF_INTEROP_VENV" xprof "$TFPROF_XPROF_VERSION"
rm -rf "$TFPROF_SERVER_WORK"
mkdir -p "$TFPROF_SERVER_WORK"
cd "$TFPROF_SERVER_WORK"
# xprof's client logs through absl to stderr; keep it for a failure, not in every run's output.
"$TFPROF_INTEROP_VENV/bin/python" "$here/capture_test.py" "$TFPROF_SERVER_WORK" 2>"$TFPROF_SERVER_WORK/stderr.log" || {
	rc=$?
	echo "(stderr of the test and of xprof's client: $TFPROF_SERVER_WORK/stderr.log)"
	tail -n 20 "$TFPROF_SERVER_WORK/stderr.log"
	exit $rc
}
