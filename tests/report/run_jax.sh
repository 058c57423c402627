#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest report_jax: tfprof-report on a profile that JAX wrote. Installs the pinned jax (with
# its CPU jaxlib) from PyPI into a virtual environment under the build folder (once; later runs
# reuse it), runs tests/report/jax_steps.py under JAX's profiler and checks the report against
# JAX's own trace (check_jax.py). Exit 77 (skipped, shown by ctest) when PyPI cannot be reached.
# usage: run_jax.sh REPORT_BIN WORKDIR   (environment from CMakeLists.txt: TFPROF_JAX_VERSION,
# TFPROF_JAX_VENV, TFPROF_JAX_PYTHON)
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
report=$1 work=$2
py=${TFPROF_JAX_PYTHON:-python3}

# shellcheck source=../support/pip_venv.sh
source "$here/../support/pip_venv.sh"
pip_venv "$py" "$TFPROF_JAX_VENV" jax "$TFPROF_JAX_VERSION"

rm -rf "$work"
mkdir -p "$work"
# The CPU only, whatever the machine has: the test is about the file JAX writes, and a GPU
# plugin's absence would otherwise print warnings.
JAX_PLATFORMS=cpu "$TFPROF_JAX_VENV/bin/python" "$here/jax_steps.py" "$work/logdir"
exec python3 "$here/check_jax.py" jax "$report" - "$work"
