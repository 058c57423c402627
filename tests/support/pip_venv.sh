# SPDX-License-Identifier: Apache-2.0
# Sourced by test drivers that need a pinned package from PyPI: installs it once into a virtual
# environment under the build folder and reuses it later. When it is not installed yet and the
# package index cannot be reached, the test is skipped (exit 77, shown by ctest), never passed.
# EXTRA requirements ("name==version") are installed beside PACKAGE; changing them makes a new
# environment too.
#   pip_venv PYTHON VENV PACKAGE VERSION [EXTRA...]
pip_venv() {
	local py=$1 venv=$2 pkg=$3 ver=$4
	shift 4
	local extra=("$@")
	local stamp="$venv/.tfprof-$pkg-$ver"
	if ((${#extra[@]})); then
		stamp+="-$(printf '%s\n' "${extra[@]}" | md5sum | cut -c1-8)"
	fi
	[[ -f $stamp ]] && return 0
	# Reach the package index first, so that an offline machine skips in seconds.
	local index why log
	index=${PIP_INDEX_URL:-$("$py" -m pip config get global.index-url 2>/dev/null || true)}
	index=${index:-https://pypi.org/simple}
	if ! why=$("$py" - "$index" "$pkg" <<'PY' 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/" + sys.argv[2] + "/", timeout=20).read(1)
PY
	); then
		echo "SKIPPED: $pkg $ver is not installed in $venv and the package index $index cannot be reached: $(tail -n1 <<<"$why")"
		exit 77
	fi
	# The stamp is written last, so an interrupted install is redone from scratch next time.
	echo "$pkg: installing $pkg $ver into $venv (once)"
	rm -rf "$venv"
	if ! "$py" -m venv "$venv"; then
		echo "$pkg: '$py -m venv' failed; on Debian install python3-venv (scripts/deps does)" >&2
		exit 1
	fi
	log="$venv/install.log"
	if ! "$venv/bin/pip" install --disable-pip-version-check --no-input -q "$pkg==$ver" "${extra[@]}" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "$pkg: pip install $pkg==$ver ${extra[*]} failed (log: $log)" >&2
		exit 1
	fi
	touch "$stamp"
}
