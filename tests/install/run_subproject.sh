#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest test_subproject: configures tests/install/subproject, a parent project that takes tfprof
# with add_subdirectory, where pkg-config sees protobuf-c (which the library needs) but not cmocka
# (which only tfprof's own tests need); builds it, runs its two programs (shared and static
# library) and checks their profiles. Also: none of tfprof's tests, examples or benchmarks are
# targets there, the parent's build type stays its own (empty), and tfprof's warning flags are not
# on the parent's compile lines.
#   usage: run_subproject.sh TFPROF_SOURCE_DIR WORK_DIR CHECKER GENERATOR
set -euo pipefail
src=$1 work=$2 checker=$3 gen=$4
rm -rf "$work"
mkdir -p "$work/pc"
for pkg in libprotobuf-c grpc; do
	d=$(pkg-config --variable=pcfiledir "$pkg" 2>/dev/null) || continue
	# grpc's .pc requires others (absl, openssl, ...): give the parent the whole folder's
	# view for it, minus cmocka.
	for f in "$d"/*.pc; do
		[[ $(basename "$f") == cmocka.pc ]] || ln -sf "$f" "$work/pc/"
	done
done
export PKG_CONFIG_LIBDIR=$work/pc PKG_CONFIG_PATH=
if pkg-config --exists cmocka; then
	echo "run_subproject: cmocka is still visible to pkg-config; the test would prove nothing" >&2
	exit 1
fi
cmake -S "$src/tests/install/subproject" -B "$work/build" -G "$gen" -DTFPROF_SOURCE_DIR="$src" \
	-DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$work/configure.log" 2>&1 || {
	cat "$work/configure.log" >&2
	echo "run_subproject: configuring the parent project failed" >&2
	exit 1
}
cmake --build "$work/build" --target parent_app_shared parent_app_static -j2 >"$work/build.log" 2>&1 || {
	tail -n 30 "$work/build.log" >&2
	echo "run_subproject: building the parent project failed" >&2
	exit 1
}
targets=$(cmake --build "$work/build" --target help)
for t in test_session test_tracer sim_train_loop train_loop scope_overhead; do
	if grep -qw "$t" <<<"$targets"; then
		echo "run_subproject: tfprof's $t is a target of the parent project" >&2
		exit 1
	fi
done
bt=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$work/build/CMakeCache.txt")
[[ -z $bt ]] || { echo "run_subproject: tfprof set the parent's CMAKE_BUILD_TYPE to '$bt'" >&2; exit 1; }
if python3 - "$work/build/compile_commands.json" <<'PY'
import json, sys
cmds = [c for c in json.load(open(sys.argv[1])) if c["file"].endswith("install/consumer.c")]
sys.exit(0 if cmds and not any("-Wall" in c["command"] for c in cmds) else 1)
PY
then :; else
	echo "run_subproject: tfprof's warning flags reached the parent's own files" >&2
	exit 1
fi
for app in parent_app_shared parent_app_static; do
	out=$("$work/build/$app" "$work/logdir-$app")
	"$checker" "$out" >/dev/null
	echo "run_subproject: $app wrote $out"
done
