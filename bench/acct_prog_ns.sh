#!/bin/bash
# acct_prog_ns.sh - ns per run of each of Pacer's accounting programs, and runs per
# connection, on bench/acct_overhead.c's connection loop (issue 4): one task cgroup at the
# agent's depth (pacer-bench-acct/ns-<pid>/t0001), the programs loaded and attached through
# the agent's loader with the kernel's run-time statistics on (BPF_ENABLE_STATS, held as an
# fd: no sysctl change), ROUNDS passes of the full programs and, interleaved, of the same
# programs returning at once (`hooks`: what the statistics and the dispatch cost without a
# body). Statistics add a clock read per run, so the figures are upper bounds; the
# difference full - hooks is what the bodies cost. Then, per round, `acct_overhead
# syscalls` (ns per getppid, per 1-byte write, per UDP datagram to itself) with nothing
# attached, with the programs attached and the loop outside any task (what every process
# on the node pays), inside the task with the programs returning at once (the hooks'
# floor) and inside the task. Prints the medians; raw rows go to
# <build>/bench/acct_prog_ns.jsonl.
# Usage: bench/acct_prog_ns.sh /abs/build [SECONDS per pass, 2] [ROUNDS, 5]   (root)
# Env: ACCT_LOADER=/abs/other/acct_overhead loads and attaches the programs of another
# build (its `attach`; an older build's binary need not know `hooks` or `syscalls`: the
# loops always run from /abs/build).
set -euo pipefail

build=${1:?usage: bench/acct_prog_ns.sh /abs/build [seconds] [rounds]}
secs=${2:-2}
rounds=${3:-5}
bin=$build/bench/acct_overhead
loader=${ACCT_LOADER:-$bin}
[ -x "$bin" ] || { echo "acct_prog_ns: $bin is missing (make $bin)" >&2; exit 1; }
unified=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
base=$unified/pacer-bench-acct
cgroot=$base/ns-$$
id=acctns-$$
out=$build/bench/acct_prog_ns.jsonl

cleanup() {
	local rc=$?
	set +e
	[ -s "$cgroot/t0001/cgroup.procs" ] && echo 1 >"$cgroot/t0001/cgroup.kill"
	rm -rf "/sys/fs/bpf/pacer/$id"
	for _ in $(seq 100); do
		rmdir "$cgroot/t0001" "$cgroot" 2>/dev/null
		[ -e "$cgroot" ] || break
		sleep 0.05
	done
	rmdir "$base" 2>/dev/null
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Tracing programs loaded by anyone else (other agents, other tests): they share the hooks
# and the CPUs; passes that saw any are left out of the medians.
foreign_tracing() {
	bpftool prog show -j | jq '[.[] | select(.type == "tracing" or .type == "raw_tracepoint" or
		.type == "tracepoint")] | length'
}

# The foreign programs of a trial: the larger of the count before it ($1) and the count
# after it. Programs attached during the trial count too; our own, just detached, take a
# moment to be freed: wait (3 s at most) for the count to come back to $1.
foreign_after() {
	local f1
	f1=$(foreign_tracing)
	for _ in $(seq 30); do
		[ "$f1" -le "$1" ] && break
		sleep 0.1
		f1=$(foreign_tracing)
	done
	[ "$f1" -gt "$1" ] && echo "$f1" || echo "$1"
}

mkdir -p "$cgroot/t0001"
: >"$out"
for r in $(seq "$rounds"); do
	for mode in pacer hooks; do
		hooks=0
		[ "$mode" = hooks ] && hooks=1
		foreign=$(foreign_tracing)
		res=$(ACCT_PROG_STATS=1 ACCT_HOOKS_ONLY=$hooks "$loader" attach "$cgroot" 1 "$id" -- \
			sh -c 'echo $$ >"$0/cgroup.procs" && exec "$1" conn "$2" >"$3"' \
			"$cgroot/t0001" "$bin" "$secs" "$build/bench/acct_prog_ns.conn.json")
		foreign=$(foreign_after "$foreign")
		echo "{\"round\":$r,\"mode\":\"$mode\",\"foreign_progs\":$foreign,\"conn\":$(cat "$build/bench/acct_prog_ns.conn.json"),\"stats\":$(echo "$res" | tail -1)}" >>"$out"
	done
	foreign=$(foreign_tracing)
	sys_none=$("$bin" syscalls)
	# The loop's line comes first, then attach's own counters line.
	sys_host=$("$loader" attach "$cgroot" 1 "$id" -- "$bin" syscalls)
	sys_host=${sys_host%%$'\n'*}
	sys_task=$("$loader" attach "$cgroot" 1 "$id" -- \
		sh -c 'echo $$ >"$0/cgroup.procs" && exec "$1" syscalls' "$cgroot/t0001" "$bin")
	sys_task=${sys_task%%$'\n'*}
	sys_hooks=$(ACCT_HOOKS_ONLY=1 "$loader" attach "$cgroot" 1 "$id" -- \
		sh -c 'echo $$ >"$0/cgroup.procs" && exec "$1" syscalls' "$cgroot/t0001" "$bin")
	sys_hooks=${sys_hooks%%$'\n'*}
	foreign=$(foreign_after "$foreign")
	echo "{\"round\":$r,\"mode\":\"syscalls\",\"foreign_progs\":$foreign,\"none\":$sys_none,\"host\":$sys_host,\"task\":$sys_task,\"task_hooks\":$sys_hooks}" >>"$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
srows = [r for r in rows if r["mode"] == "syscalls"]
rows = [r for r in rows if r["mode"] != "syscalls"]
dirty = [r for r in rows if r["foreign_progs"]]
rows = [r for r in rows if not r["foreign_progs"]]
print("%d of %d passes left out: foreign tracing programs were loaded (up to %d)" %
      (len(dirty), len(dirty) + len(rows), max([r["foreign_progs"] for r in dirty] or [0])))
if not rows:
    sys.exit("acct_prog_ns: no clean pass")
progs = sorted({p for r in rows for p in r["stats"]["prog_stats"]})
print("%-18s %10s %10s %10s %12s %14s" % ("program", "ns/run", "hooks", "body", "runs/conn", "body ns/conn"))
tot = 0
for p in progs:
    def med(mode, f):
        v = [f(r) for r in rows if r["mode"] == mode and p in r["stats"]["prog_stats"]]
        return statistics.median(v) if v else float("nan")
    ns = lambda r: r["stats"]["prog_stats"][p]["ns"] / max(1, r["stats"]["prog_stats"][p]["runs"])
    per = lambda r: r["stats"]["prog_stats"][p]["runs"] / r["conn"]["connections"]
    full, hooks, runs = med("pacer", ns), med("hooks", ns), med("pacer", per)
    tot += (full - hooks) * runs
    print("%-18s %10.1f %10.1f %10.1f %12.2f %14.0f" % (p, full, hooks, full - hooks, runs, (full - hooks) * runs))
print("bodies per connection: %.0f ns; conn/s median pacer %.0f, hooks %.0f" % (tot,
      statistics.median(r["conn"]["conn_per_s"] for r in rows if r["mode"] == "pacer"),
      statistics.median(r["conn"]["conn_per_s"] for r in rows if r["mode"] == "hooks")))
clean = [r for r in srows if not r["foreign_progs"]]
print("syscalls (%d of %d rounds clean), ns per call, median:" % (len(clean), len(srows)))
for k in ("none", "host", "task_hooks", "task"):
    if clean:
        m = lambda f: statistics.median(r[k][f] - r["none"][f] for r in clean)
        print("  %-10s getppid %6.1f (%+5.1f)  write(1 B) %6.1f (%+5.1f)  UDP to self %6.1f (%+5.1f)" % (k,
              statistics.median(r[k]["getppid_ns"] for r in clean), m("getppid_ns"),
              statistics.median(r[k]["write1_ns"] for r in clean), m("write1_ns"),
              statistics.median(r[k]["udp_ns"] for r in clean), m("udp_ns")))
print("  (in brackets: the median of each round's difference to none)")
PY
