#!/bin/bash
# run.sh - `make bench`: the accounting overhead benchmark (bench/acct_overhead.sh, ~4 min;
# skipped with ACCT_ROUNDS=0), then builds the floor helper into <build>/bench and runs the
# launch-latency benchmark (bench/launch_latency.py) against <build>'s pacer-master and
# pacer-agent. Usage: bench/run.sh /abs/build/dir [launch_latency.py options, e.g. --n 50]
# Results: tables on stdout, <build>/bench/results.{md,json} and acct_overhead.{md,jsonl};
# docs/benchmarks.md records them.
set -euo pipefail

build=${1:?usage: bench/run.sh /abs/build/dir [options]}
shift
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: must run as root (namespaces, cgroups, BPF)" >&2
	exit 1
fi
mkdir -p "$build/bench"
if [ "${ACCT_ROUNDS:-5}" != 0 ]; then
	"$here/acct_overhead.sh" "$build"
fi
# selftest.sh builds <build>/bench/floor and checks it measures what it says it does.
if ! "$here/selftest.sh" "$build" >"$build/bench/selftest.log" 2>&1; then
	cat "$build/bench/selftest.log" >&2
	echo "bench: the floor program failed its self-test" >&2
	exit 1
fi

# The driver has a deadline on every wait; this is the backstop. SIGINT lets it clean up.
exec timeout --signal=INT --kill-after=60 1800 \
	/usr/bin/python3 "$here/launch_latency.py" --build "$build" "$@"
