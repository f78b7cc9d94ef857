#!/bin/bash
# run.sh - `make bench`: builds the floor helper into <build>/bench and runs the
# launch-latency benchmark (bench/launch_latency.py) against <build>'s pacer-master and
# pacer-agent. Usage: bench/run.sh /abs/build/dir [launch_latency.py options, e.g. --n 50]
# Results: a table on stdout, <build>/bench/results.{md,json}; docs/benchmarks.md records them.
set -euo pipefail

build=${1:?usage: bench/run.sh /abs/build/dir [options]}
shift
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: must run as root (namespaces, cgroups, BPF)" >&2
	exit 1
fi
mkdir -p "$build/bench"
# selftest.sh builds <build>/bench/floor and checks it measures what it says it does.
if ! "$here/selftest.sh" "$build" >"$build/bench/selftest.log" 2>&1; then
	cat "$build/bench/selftest.log" >&2
	echo "bench: the floor program failed its self-test" >&2
	exit 1
fi

# The driver has a deadline on every wait; this is the backstop. SIGINT lets it clean up.
exec timeout --signal=INT --kill-after=60 1800 \
	/usr/bin/python3 "$here/launch_latency.py" --build "$build" "$@"
