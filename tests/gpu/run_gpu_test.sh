#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the CUDA training loop under tfprof on a real GPU and checks its profile: every kernel and
# memcpy present, each correlated to exactly one launch, inside its step within the clock
# alignment error. Then prints the tracing overhead (traced against untraced loops, interleaved).
# Without a GPU it says so and exits 77, which CTest shows as skipped, never as passed.
# With TFPROF_START and NVTX_CUDA_LOOP it also profiles that unmodified program (no tfprof, NVTX
# step ranges) through tfprof-start and checks its profile the same way: the CUDA injection and
# the NVTX tool on a real driver. With TFPROF_REPORT too, and a python3 that has PyTorch with
# CUDA, it runs a PyTorch loop (torch_loop.py) under tfprof-start and checks with tfprof-report
# that every step is there with its kernels. With PY_VENV too (the venv in which the Python
# tests installed tfprof, built for this machine's python3) and CuPy in python3, it runs examples/python/train_loop.py on the GPU with tfprof's Python API and checks
# its profile the same way.
#   usage: run_gpu_test.sh CUDA_TRAIN_LOOP CHECK_GPU_PROFILE [TFPROF_START NVTX_CUDA_LOOP [TFPROF_REPORT [PY_VENV]]]
set -euo pipefail
prog=$1 checker=$2 start=${3:-} plain=${4:-} report=${5:-} pyvenv=${6:-}
pysite=$(ls -d "$pyvenv"/lib/python3*/site-packages 2>/dev/null | head -n 1 || true)
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
if ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; } && [[ ! -e /dev/nvidia0 ]]; then
	echo "SKIPPED: no NVIDIA GPU here (nvidia-smi finds none, no /dev/nvidia0); run tests/gpu on a GPU machine"
	exit 77
fi
nvidia-smi -L || true
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
steps=50
out=$("$prog" "$logdir" "$steps")
profile=$(head -n 1 <<<"$out")
echo "profile: $profile"
"$checker" "$profile" --steps "$steps" --kernels 5 --memcpys 2 --memsets 1 --window --allocs-per-step 1 --frees-per-step 1

if [[ -n $start && -n $plain ]]; then
	echo "unmodified CUDA program under tfprof-start:"
	"$start" --logdir "$logdir/start" --run plain -- "$plain" "$steps"
	profile=$(find "$logdir/start/plugins/profile/plain" -name '*.xplane.pb' | head -n 1)
	[[ -n $profile ]] || { echo "tfprof-start wrote no profile for $plain" >&2; exit 1; }
	echo "profile: $profile"
	"$checker" "$profile" --steps "$steps" --kernels 5 --memcpys 2 --memsets 1 --window
fi

if [[ -n $start && -n $report ]]; then
	if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
		echo "PyTorch loop under tfprof-start:"
		"$start" --logdir "$logdir/torch" --run torch -- python3 "$here/torch_loop.py" 20
		"$report" --json "$logdir/torch" | python3 "$here/check_torch_report.py" 20
	else
		echo "PyTorch loop skipped: python3 has no PyTorch with CUDA"
	fi
fi

if [[ -n $report && -n $pyvenv ]]; then
	if PYTHONPATH=$pysite python3 -c 'import tfprof, cupy; cupy.zeros(1)' 2>/dev/null; then
		echo "Python loop on CuPy (tfprof.experimental):"
		PYTHONPATH=$pysite python3 "$here/../../examples/python/train_loop.py" --device gpu --steps 20 \
			--logdir "$logdir/cupy"
		"$report" --json "$logdir/cupy" | python3 "$here/check_torch_report.py" 20
	else
		echo "Python CuPy loop skipped: python3 cannot import tfprof (from ${pysite:-$pyvenv}) and cupy"
	fi
fi

# Overhead: alternate untraced and traced runs so drifts hit both; report the medians.
traced=() untraced=()
for _ in 1 2 3 4 5; do
	untraced+=("$("$prog" "$logdir" 200 --untraced | tail -n 1 | sed 's/.*"step_us":\([0-9.]*\).*/\1/')")
	traced+=("$("$prog" "$logdir" 200 | tail -n 1 | sed 's/.*"step_us":\([0-9.]*\).*/\1/')")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 3p; }
t=$(median "${traced[@]}") u=$(median "${untraced[@]}")
awk -v t="$t" -v u="$u" 'BEGIN { printf "{\"gpu_overhead\":true,\"traced_step_us\":%s,\"untraced_step_us\":%s,\"ratio\":%.3f}\n", t, u, t / u }'
