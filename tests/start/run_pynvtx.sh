#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest start_pynvtx: tfprof-start on a Python program annotated with PyPI's nvtx package (NVTX
# from a third party's C extension, as PyTorch's and Megatron's are). Installs the pinned nvtx
# into a virtual environment under the build folder (once), runs pynvtx_prog.py under
# tfprof-start and checks the profile (check_pynvtx.py). Exit 77 (skipped) without PyPI.
# usage: run_pynvtx.sh TFPROF_START REPORT_BIN WORKDIR   (environment from CMakeLists.txt:
# TFPROF_PYNVTX_VERSION, TFPROF_PYNVTX_VENV, TFPROF_PYNVTX_PYTHON)
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
start=$1 report=$2 work=$3
py=${TFPROF_PYNVTX_PYTHON:-python3}

# shellcheck source=../support/pip_venv.sh
source "$here/../support/pip_venv.sh"
pip_venv "$py" "$TFPROF_PYNVTX_VENV" nvtx "$TFPROF_PYNVTX_VERSION"

rm -rf "$work"
mkdir -p "$work"
"$start" --logdir "$work/logdir" --run py --no-gpu -- \
	"$TFPROF_PYNVTX_VENV/bin/python" "$here/pynvtx_prog.py" >"$work/prog.json"
exec python3 "$here/check_pynvtx.py" "$report" "$work/logdir" "$work/prog.json"
