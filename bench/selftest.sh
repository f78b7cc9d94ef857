#!/bin/bash
# selftest.sh - checks that bench/floor.c measures what it claims: N samples per mode, the
# ns child really runs as PID 1 of a new PID namespace with its own hostname, /proc and
# IPC namespace, inside the v1 cpu+memory and v2 cgroups with the limits set (or the v2
# cpu+memory controllers on a pure v2 host), a failed exec is an error, and no cgroup is
# left behind. Usage: bench/selftest.sh [/abs/build/dir] (root).
set -euo pipefail

build=${1:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/bench"
floor=$build/bench/floor
${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE "$here/floor.c" -o "$floor"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fails=0
check() { # check NAME CONDITION-STATUS
	if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
leftovers() { find /sys/fs/cgroup -maxdepth 3 -name pacer-bench-floor 2>/dev/null | wc -l; }

lines() { wc -l <"$1"; }
"$floor" fork 20 "$out/f" /bin/true
check "fork: 20 samples" $([ "$(lines "$out/f")" -eq 20 ]; echo $?)
"$floor" ns 20 "$out/n" /bin/true >/dev/null
check "ns: 20 samples" $([ "$(lines "$out/n")" -eq 20 ]; echo $?)
"$floor" -p 5 ns 3 "$out/p" /bin/true >/dev/null
check "ns with -p 5: 3 samples" $([ "$(lines "$out/p")" -eq 3 ]; echo $?)
check "samples are positive and below 1 s" \
	$(awk '$1 <= 0 || $1 >= 1e9 {bad=1} END {exit bad}' "$out/f" "$out/n"; echo $?)

# What the child sees (-w: it runs to the end; the warm-up launches print too).
host_pidns=$(readlink /proc/self/ns/pid) host_ipcns=$(readlink /proc/self/ns/ipc)
"$floor" -w ns 1 "$out/x" /bin/sh -c "
	echo pid=\$\$ host=\$(hostname) pidns=\$(readlink /proc/self/ns/pid) \
		ipcns=\$(readlink /proc/self/ns/ipc)
	echo procs=\$(ls /proc | grep -c '^[0-9]')
	cat /proc/self/cgroup
	cg=\$(sed -n 's/^0:://p' /proc/self/cgroup)
	if [ -d /sys/fs/cgroup/memory ]; then
		mcg=\$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
		ccg=\$(sed -n 's/^[0-9]*:cpu://p' /proc/self/cgroup)
		echo mem=\$(cat /sys/fs/cgroup/memory\$mcg/memory.limit_in_bytes)
		echo quota=\$(cat /sys/fs/cgroup/cpu\$ccg/cpu.cfs_quota_us)
	else
		echo mem=\$(cat /sys/fs/cgroup\$cg/memory.max)
		echo quota=\$(cut -d' ' -f1 /sys/fs/cgroup\$cg/cpu.max)
	fi" >"$out/seen"
seen=$(cat "$out/seen")
check "ns: command is PID 1 with hostname 'floor'" $(grep -q 'pid=1 host=floor' <<<"$seen"; echo $?)
check "ns: new PID namespace" $(! grep -q "pidns=$host_pidns" <<<"$seen"; echo $?)
check "ns: new IPC namespace" $(! grep -q "ipcns=$host_ipcns" <<<"$seen"; echo $?)
check "ns: own /proc (only its own processes)" $(grep -Eq '^procs=[1-4]$' <<<"$seen"; echo $?)
check "ns: in the v2 cgroup" $(grep -q '^0::/pacer-bench-floor/' <<<"$seen"; echo $?)
if [ -d /sys/fs/cgroup/memory ]; then
	check "ns: in the v1 cpu and memory cgroups" \
		$([ "$(grep -Ec ':(cpu|memory):/pacer-bench-floor/' <<<"$seen")" -eq \
		   $((2 * $(grep -c '^pid=' <<<"$seen"))) ]; echo $?)
fi
check "ns: 32 MiB memory limit" $(grep -q '^mem=33554432$' <<<"$seen"; echo $?)
check "ns: 0.1 cpu quota" $(grep -q '^quota=10000$' <<<"$seen"; echo $?)

set +e
"$floor" fork 1 "$out/e" /nonexistent 2>/dev/null; rc=$?
"$floor" ns 1 "$out/e" /nonexistent >/dev/null 2>&1; rc2=$?
"$floor" -x ns 1 "$out/e" /bin/true 2>/dev/null; rc3=$?
set -e
check "a failed exec is an error (fork, ns)" $([ $rc -eq 1 ] && [ $rc2 -eq 1 ]; echo $?)
check "an unknown option is a usage error" $([ $rc3 -eq 2 ]; echo $?)
check "no cgroup left behind" $([ "$(leftovers)" -eq 0 ]; echo $?)
[ $fails -eq 0 ] || { echo "$fails check(s) failed" >&2; cat "$out/seen" >&2; exit 1; }
echo "floor selftest: all checks passed"
