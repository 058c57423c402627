#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest report_chrome_perfetto: opens tfprof-report's Chrome traces with Perfetto's
# trace_processor (the engine behind ui.perfetto.dev) and compares its slice and flow counts with
# the profiles. Installs the pinned `perfetto` Python package from PyPI into a virtual
# environment under the build folder (once; later runs reuse it); the package then fetches the
# trace_processor binary it pins (checked against its SHA-256) into that folder too. Exit 77
# (skipped, shown by ctest) when either cannot be downloaded; TFPROF_TRACE_PROCESSOR may name a
# trace_processor binary instead of the download.
# usage: run_perfetto.sh REPORT_BIN MAKE_PROFILES_BIN WORKDIR   (environment from CMakeLists.txt:
# TFPROF_PERFETTO_VERSION, TFPROF_PERFETTO_VENV)
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
ver=$TFPROF_PERFETTO_VERSION
venv=$TFPROF_PERFETTO_VENV
py=${TFPROF_PERFETTO_PYTHON:-python3}

skip() {
	echo "SKIPPED: $*"
	exit 77
}

# shellcheck source=../support/pip_venv.sh
source "$here/../support/pip_venv.sh"
pip_venv "$py" "$venv" perfetto "$ver"

tp=${TFPROF_TRACE_PROCESSOR:-}
if [[ -z $tp ]]; then
	# The package caches its binary under ~/.local/share/perfetto; HOME points it into the venv so
	# that the test leaves nothing outside the build folder.
	log="$venv/trace_processor-download.log"
	if ! tp=$(HOME="$venv/home" "$venv/bin/python" - 2>"$log" <<'PY'
from perfetto.prebuilts.manifests.trace_processor_shell import TRACE_PROCESSOR_SHELL_MANIFEST
from perfetto.prebuilts.perfetto_prebuilts import get_perfetto_prebuilt
print(get_perfetto_prebuilt(TRACE_PROCESSOR_SHELL_MANIFEST))
PY
	); then
		skip "perfetto $ver could not download its trace_processor binary (log: $log: $(tail -n1 "$log")); set TFPROF_TRACE_PROCESSOR to a trace_processor binary to run this test offline"
	fi
fi
[[ -x $tp ]] || { echo "perfetto: $tp is not an executable trace_processor" >&2; exit 1; }
TRACE_PROCESSOR=$tp exec "$venv/bin/python" "$here/check_chrome.py" perfetto "$@"
