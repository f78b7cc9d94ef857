#!/bin/bash
# placement.sh - `make bench-placement`: builds the baseline master (the tree at a given
# commit, via git archive into <build>/baseline, read-only for the repo) and runs
# bench/placement for every case. Usage:
#   bench/placement.sh /abs/build COMMIT "N:M ..." "baseline N:M ..." "reference N:M ..."
# Results: a table on stdout and <build>/bench/placement.json.
set -euo pipefail

build=${1:?usage: bench/placement.sh /abs/build commit cases baseline-cases ref-cases}
commit=${2:?commit}
cases=${3:-}
bcases=${4:-}
rcases=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "bench-placement: must run as root (it makes its own network namespace)" >&2
	exit 1
fi
args=(--master "$build/pacer-master" --ref-master "$build/bench/placement_master")
for c in $rcases; do args+=(--ref-case "$c"); done
for c in $cases; do args+=(--case "$c"); done
if [ -n "$bcases" ]; then
	base="$build/baseline"
	if [ ! -x "$base/build/pacer-master" ]; then
		rm -rf "$base" && mkdir -p "$base"
		git -C "$repo" archive "$commit" | tar -x -C "$base"
		make -C "$base" BUILD=build -j2 build/pacer-master >"$build/bench/baseline-build.log" 2>&1
	fi
	args+=(--baseline "$base/build/pacer-master")
	for c in $bcases; do args+=(--baseline-case "$c"); done
fi
# Each case has its own deadline (--timeout); this is the backstop for the whole run.
exec timeout --signal=INT --kill-after=30 3600 \
	"$build/bench/placement" "${args[@]}" --timeout 600 --json "$build/bench/placement.json"
