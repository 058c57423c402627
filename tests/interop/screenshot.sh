#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Takes the README's picture of xprof's trace viewer showing a tfprof profile: profiles the
# simulated-GPU training loop, serves it with xprof like a user would, and screenshots the trace
# viewer with headless Chromium into docs/trace_viewer.png. Run it by hand (not part of ctest):
#
#   tests/interop/screenshot.sh [BUILD_DIR] [OUT_PNG]     (defaults: build, docs/trace_viewer.png)
#
# Needs the build's xprof virtual environment (made by the first `ctest -R interop_xprof` run)
# and Debian's chromium package (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.."
build=$(readlink -f "${1:-build}")
out=${2:-docs/trace_viewer.png}
venv=$build/tests/interop/venv
if [[ ! -x $venv/bin/xprof ]]; then
	echo "screenshot.sh: no xprof in $venv; run 'ctest --test-dir $build -R interop_xprof' first" >&2
	exit 1
fi
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z $chrome ]]; then
	echo "screenshot.sh: no Chromium; install it with: apt-get install chromium" >&2
	exit 1
fi
work=$(mktemp -d)
srv=
cleanup() {
	[[ -n $srv ]] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

loop=$build/examples/sim_train_loop
[[ -x $loop ]] || loop=$build/examples/train_loop
"$loop" "$work/logdir" 5 >/dev/null

read -r port grpc_port < <("$venv/bin/python" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
"$venv/bin/xprof" --logdir "$work/logdir" --port "$port" --grpc_port "$grpc_port" >"$work/xprof.log" 2>&1 &
srv=$!
run=
for _ in $(seq 60); do
	run=$(curl -s --compressed "http://localhost:$port/data/plugin/profile/runs" 2>/dev/null |
		"$venv/bin/python" -c 'import json, sys; r = json.load(sys.stdin); print(r[0] if r else "")' 2>/dev/null || true)
	[[ -n $run ]] && break
	sleep 0.5
done
if [[ -z $run ]]; then
	cat "$work/xprof.log" >&2
	echo "screenshot.sh: xprof did not serve the run" >&2
	exit 1
fi
host=$(basename "$(ls "$work"/logdir/plugins/profile/*/*.xplane.pb)" .xplane.pb)
mkdir -p "$(dirname "$out")"
# The trace viewer is a JS app that fetches the trace after load; virtual time lets it finish.
"$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1000 \
	--virtual-time-budget=30000 --screenshot="$work/shot.png" \
	"http://localhost:$port/?run=$run&tool=trace_viewer@&host=$host" >"$work/chromium.log" 2>&1 || {
	cat "$work/chromium.log" >&2
	exit 1
}
# An empty or error page is a few KB; the rendered timeline is tens of KB.
if (($(stat -c %s "$work/shot.png") < 30000)); then
	echo "screenshot.sh: the screenshot looks empty ($(stat -c %s "$work/shot.png") bytes); see $work" >&2
	trap - EXIT
	exit 1
fi
cp "$work/shot.png" "$out"
echo "$out"
