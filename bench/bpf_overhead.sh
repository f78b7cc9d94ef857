#!/bin/bash
# bpf_overhead.sh - per-CPU vs atomic counters, and the overhead of Pacer's accounting at
# all: runs bench/bpf_overhead.c in modes none / percpu / atomic / host (programs loaded,
# workload outside any task cgroup), ROUNDS times each
# (interleaved, so drift hits every mode alike) and prints the median of each figure; then
# one more pass per mode with the kernel's run-time stats on, for the ns per program run.
# Usage: bench/bpf_overhead.sh /abs/build/dir [SECONDS per workload] [ROUNDS]  (root)
set -euo pipefail

build=${1:?usage: bench/bpf_overhead.sh /abs/build/dir [seconds] [rounds]}
secs=${2:-2}
rounds=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=$build/bench/bpf_overhead
mkdir -p "$build/bench"
${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I"$root" -I"$build" \
	"$here/bpf_overhead.c" -o "$bin" "$build/libagent.a" "$build/libpacer.a" \
	-lbpf -lelf -lz -ljansson -lpthread -lm
out=$build/bench/bpf_overhead.jsonl
: >"$out"
for r in $(seq "$rounds"); do
	for m in none percpu atomic host; do
		"$bin" "$m" "$secs" | tee -a "$out"
	done
done
stats=$build/bench/bpf_overhead_stats.jsonl
: >"$stats"
for r in $(seq "$rounds"); do
	for m in percpu atomic; do
		"$bin" "$m" 1 stats | tee -a "$stats"
	done
done
/usr/bin/python3 - "$out" "$stats" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
srows = [json.loads(l) for l in open(sys.argv[2])]
base = {}
print("%-7s %10s %8s %10s %8s %11s %8s" % ("mode", "tcp Gb/s", "vs none", "conn/s", "vs none", "write Mop/s", "vs none"))
for m in ("none", "percpu", "atomic", "host"):
    med = {k: statistics.median(r[k] for r in rows if r["mode"] == m) for k in ("tcp_gbps", "conn_per_s", "write_mops")}
    base.setdefault("x", med)
    b = base["x"]
    print("%-7s %10.2f %+7.1f%% %10.0f %+7.1f%% %11.3f %+7.1f%%" % (m,
          med["tcp_gbps"], 100 * (med["tcp_gbps"] / b["tcp_gbps"] - 1),
          med["conn_per_s"], 100 * (med["conn_per_s"] / b["conn_per_s"] - 1),
          med["write_mops"], 100 * (med["write_mops"] / b["write_mops"] - 1)))
print()
print("ns per program run (kernel run-time stats, median over rounds):")
rows = srows
progs = sorted({p for r in rows for p in r.get("ns_per_run", {})})
print("%-20s %10s %10s" % ("program", "percpu", "atomic"))
for p in progs:
    v = [statistics.median([r["ns_per_run"][p] for r in rows if r["mode"] == m and p in r.get("ns_per_run", {})] or [float("nan")]) for m in ("percpu", "atomic")]
    print("%-20s %10.1f %10.1f" % (p, v[0], v[1]))
PY
