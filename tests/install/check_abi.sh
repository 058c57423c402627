#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the exported ABI of an (installed) libtfprof.so against the public header and the version
# script: the library exports exactly the header's TFPROF_API names, each under the version node
# (name@@TFPROF_0), plus the injection entry points the script lists and libc's exec family
# (unversioned: they interpose libc's in programs run by tfprof-start), and nothing else.
#   usage: check_abi.sh LIBTFPROF.so tfprof.h libtfprof.map
set -euo pipefail
lib=$1 header=$2 map=$3
fail() { echo "check_abi: $*" >&2; exit 1; }

# The header's API: every "TFPROF_API <type> [*]name(" or "TFPROF_API extern <type> name;".
api=$(grep -v '^#' "$header" | tr '\n' ' ' | grep -oE 'TFPROF_API [^;(]*[(;]' | sed -E 's/[(;]$//; s/.*[ *]([A-Za-z_0-9]+)$/\1/' | sort -u)
# The version script's names (comments dropped).
listed=$(sed -e 's#/\*.*\*/##g' "$map" | sed -e '/\/\*/,/\*\//d' | grep -oE '^[[:space:]]+[A-Za-z_][A-Za-z_0-9]*;' | tr -d ' \t;' | sort -u)
exec_family=$(printf '%s\n' execl execle execlp execv execve execveat execvp execvpe fexecve | sort)
injection=$(printf '%s\n' InitializeInjection InitializeInjectionNvtx2 | sort)

[[ -n $api ]] || fail "no TFPROF_API declaration found in $header"
missing=$(comm -23 <(echo "$api") <(echo "$listed"))
[[ -z $missing ]] || fail "declared TFPROF_API in the header but not in $map: $missing"
extra=$(comm -13 <(echo "$api") <(echo "$listed") | grep -vxF -f <(echo "$injection") || true)
[[ -z $extra ]] || fail "in $map but not declared TFPROF_API in the header: $extra"

# What the library exports: name@@VERSION, or a bare name when unversioned.
exported=$(readelf --dyn-syms -W "$lib" | awk '$7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") && $8 != "" {print $8}' | sort -u)
versioned=$( (grep '@@TFPROF_0$' <<<"$exported" || true) | sed 's/@@TFPROF_0$//' | sort -u)
bare=$(grep -v '@' <<<"$exported" | grep -vxE 'TFPROF_0' | sort -u || true)
[[ $versioned == "$listed" ]] || fail "exported under TFPROF_0: $(echo $versioned); want the script's: $(echo $listed)"
[[ $bare == "$exec_family" ]] || fail "exported without a version: $(echo $bare); want only libc's exec family"
other=$(grep '@' <<<"$exported" | grep -v '@@TFPROF_0$' || true)
[[ -z $other ]] || fail "exported under another version: $other"
echo "check_abi: $(wc -l <<<"$versioned") symbols under TFPROF_0, $(wc -l <<<"$bare") exec interposers unversioned, nothing else"
