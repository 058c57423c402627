#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest python_pytest (and python_pytest_debian): builds the tfprof Python package from this tree
# with `pip install ./python` (scikit-build-core running the project's CMake) into a virtual
# environment under the build folder, then runs the pytest suite in tests/python with that
# environment's interpreter. The environment (pytest, scikit-build-core, NumPy, pinned) is made
# once from PyPI; without PyPI it is skipped (exit 77), never passed. The package itself is
# rebuilt every run, incrementally, so the tests always see this tree's code.
# usage: run.sh PYTHON VENV BUILD_DIR [PYTEST_ARGS...]   (environment from CMakeLists.txt:
# TFPROF_START_EXE, TFPROF_REPORT_EXE, TFPROF_CUPTI_SIM, the pinned versions)
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
src=$(readlink -f "$here/../..")
py=$1 venv=$2 build=$3
shift 3

if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
	echo "python: $py is missing or older than 3.10; the tfprof package needs CPython >= 3.10" >&2
	exit 1
fi

# shellcheck source=../support/pip_venv.sh
source "$here/../support/pip_venv.sh"
pip_venv "$py" "$venv" pytest "$TFPROF_PYTEST_VERSION" \
	"scikit-build-core==$TFPROF_SKBUILD_VERSION" "numpy==$TFPROF_NUMPY_VERSION" \
	"nvtx==$TFPROF_PYNVTX_VERSION"

# No build isolation: the build backend comes from the environment above, so a machine that
# made it once builds offline after.
mkdir -p "$build"
log="$build/pip-install.log"
if ! CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} "$venv/bin/pip" install \
	--disable-pip-version-check --no-input --no-build-isolation --no-deps --force-reinstall \
	--config-settings=build-dir="$build/skbuild" "$src/python" >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	echo "python: pip install ./python failed (log: $log)" >&2
	exit 1
fi

cd "$here"
# -p no:cacheprovider: nothing is written into the source tree.
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q -ra --basetemp="$build/pytest" "$@"
