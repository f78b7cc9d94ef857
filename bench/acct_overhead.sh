#!/bin/bash
# acct_overhead.sh - `make bench-acct` (also run by `make bench`): what per-task network
# accounting costs a task, with N tasks on the node (issue 4). For each N in ACCT_TASKS:
# N task cgroups under the cgroup2 mount (pacer-bench-acct/<run>/t0001..tN, the depth of the
# agent's pacer/<agent-id>/<task>); the measured task is tN, the others stay idle. Modes:
#   none      no accounting at all
#   pacer     Pacer's accounting (bpf/task_acct.bpf.c loaded by the agent's loader through
#             bench/acct_overhead.c) attached to all N cgroups, as the agent does per task
#   iptables  the same counting with iptables: one `-m cgroup --path <task> -j RETURN` rule
#             per task in a chain jumped to from INPUT and OUTPUT, the measured task's rule
#             the LAST of the N (worst case for a linear rule list)
# Each trial runs in a fresh network namespace (loopback only; its netfilter state goes with
# it): iperf3 server and client, then bench/acct_overhead.c's connect/accept/close loop,
# all inside the task cgroup. Rounds are interleaved (the mode order rotates each round) and
# the medians and ratios to `none` are printed. Everything made (cgroups, BPF pins, iptables
# chain, iperf3 server) is removed on exit, Ctrl-C included.
# Usage: bench/acct_overhead.sh /abs/build   (root; the binary: make <build>/bench/acct_overhead)
# Env: ACCT_TASKS ("1 100 1000"), ACCT_ROUNDS (5), ACCT_SECONDS (iperf3 -t, 3),
#      ACCT_CONN_SECONDS (1.5). Results: stdout, <build>/bench/acct_overhead.{jsonl,md}.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
chain=PACER_ACCT_BENCH
port=5201

# A condition with a deadline: wait_for SECONDS CMD... (polls every 10 ms).
wait_for() {
	local end=$((SECONDS + $1)) ; shift
	until "$@"; do
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}

listening() {
	[ -n "$(ss -Hltn "sport = :$port")" ]
}

# in_task CMD...: CMD in the measured task's cgroup (a subshell moves itself, then execs).
in_task() {
	(echo "$BASHPID" >"$task/cgroup.procs" && exec "$@")
}

iptables_rules() {  # the chain, N rules (the task's last), the jumps: one restore
	local rel=${cgroot#"$unified"/} i
	echo '*filter'
	echo ":$chain - [0:0]"
	for ((i = 1; i <= n; i++)); do
		printf -- '-A %s -m cgroup --path %s/t%04d -j RETURN\n' "$chain" "$rel" "$i"
	done
	echo "-I INPUT 1 -j $chain"
	echo "-I OUTPUT 1 -j $chain"
	echo COMMIT
}

# The namespace goes with the trial's last process; the chain is removed first anyway.
trial_cleanup() {
	local rc=$?
	set +e
	[ -n "$srv" ] && kill "$srv" 2>/dev/null
	if iptables -S "$chain" >/dev/null 2>&1; then
		iptables -D INPUT -j "$chain"
		iptables -D OUTPUT -j "$chain"
		iptables -F "$chain"
		iptables -X "$chain"
	fi
	exit "$rc"
}

# --trial MODE N: one measurement, inside its own network namespace (and, for `pacer`,
# under `acct_overhead attach`, which prints the task's counters on stdout afterwards).
trial() {
	local mode=$1
	srv=""
	n=$2
	task=$cgroot/$(printf 't%04d' "$n")
	exec >&2
	trap trial_cleanup EXIT
	ip link set lo up
	if [ "$mode" = iptables ]; then
		iptables_rules | iptables-restore --noflush
		[ "$(iptables -S "$chain" | grep -c -- '-m cgroup')" -eq "$n" ]
	fi
	in_task iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	srv=$!
	wait_for 10 listening || { echo "iperf3 -s did not listen within 10 s" >&2; return 1; }
	in_task iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J >"$out.iperf.json"
	wait "$srv"
	srv=""
	in_task "$bin" conn "$csecs" >"$out.conn.json"
	if [ "$mode" = iptables ]; then
		# Counters of the task's rule (the last of the chain): what (c) counted.
		iptables -nvxL "$chain" | awk 'END { print "{\"packets\":" $1 ",\"bytes\":" $2 "}" }' >"$out.ipt.json"
	fi
}

if [ "${1:-}" = "--trial" ]; then
	trial "$2" "$3"
	exit
fi

build=${1:?usage: bench/acct_overhead.sh /abs/build/dir}
bin=$build/bench/acct_overhead
tasks=${ACCT_TASKS:-1 100 1000}
rounds=${ACCT_ROUNDS:-5}
secs=${ACCT_SECONDS:-3}
csecs=${ACCT_CONN_SECONDS:-1.5}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench-acct: must run as root (cgroups, BPF, network namespaces)" >&2
	exit 1
fi
for t in iperf3 iptables iptables-restore ip ss unshare; do
	command -v "$t" >/dev/null || { echo "bench-acct: $t is missing (make deps)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench-acct: $bin is missing (make $bin)" >&2; exit 1; }

# The cgroup2 mount as the agent finds it (agent/cgroup_layout.c): the first cgroup2 in
# /proc/self/mounts; pure v2 if it has the cpu and memory controllers, else hybrid.
unified=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$unified" ] || { echo "bench-acct: no cgroup2 file system is mounted" >&2; exit 1; }
layout=hybrid
ctrls=" $(cat "$unified/cgroup.controllers") "
[[ $ctrls == *" cpu "* && $ctrls == *" memory "* ]] && layout=v2
bpffs=/sys/fs/bpf
id=acct-$$
base=$unified/pacer-bench-acct
cgroot=$base/$id
work=$build/bench/acct_overhead.d
maxn=0
for n in $tasks; do [ "$n" -gt "$maxn" ] && maxn=$n; done

remove_cgroups() {
	rmdir "$cgroot"/t* 2>/dev/null
	rmdir "$cgroot" 2>/dev/null
}

cleanup() {
	local rc=$? left=""
	set +e
	trap - EXIT INT TERM
	for d in "$cgroot"/t*; do
		[ -d "$d" ] && [ -s "$d/cgroup.procs" ] && echo 1 >"$d/cgroup.kill" 2>/dev/null
	done
	rm -rf "${bpffs:?}/pacer/$id"
	rmdir "$bpffs/pacer" 2>/dev/null
	[ -d "$cgroot" ] && wait_for 5 remove_cgroups
	rmdir "$base" 2>/dev/null
	[ -e "$cgroot" ] && left="$left $cgroot"
	[ -e "$bpffs/pacer/$id" ] && left="$left $bpffs/pacer/$id"
	if [ -n "$left" ]; then
		echo "bench-acct: could not remove:$left" >&2
		[ "$rc" -eq 0 ] && rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A run killed with SIGKILL leaves its cgroups: remove those of runs that are gone.
for d in "$base"/acct-*; do
	[ -d "$d" ] || continue
	p=${d##*/acct-}
	kill -0 "$p" 2>/dev/null || rmdir "$d"/t* "$d" 2>/dev/null || true
done

mkdir -p "$cgroot"
(cd "$cgroot" && seq -f 't%04g' 1 "$maxn" | xargs mkdir)
rm -rf "$work"
mkdir -p "$work"
results=$build/bench/acct_overhead.jsonl
: >"$results"
export unified cgroot bin secs csecs
modes=(none pacer iptables)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$SECONDS
echo "bench-acct: $(nproc) CPUs, kernel $(uname -r), cgroup $layout (cgroup2 at $unified)," \
	"$(iptables --version | sed 's/^iptables //'), iperf3 -t $secs, ${csecs} s of connections;" \
	"tasks: $tasks; $rounds rounds; load average $load0"
echo "bench-acct: iptables: the measured task's rule is the LAST of the N in $chain (worst case)"
for r in $(seq 1 "$rounds"); do
	for n in $tasks; do
		for k in 0 1 2; do
			mode=${modes[$(((k + r - 1) % 3))]}
			out=$work/r$r-n$n-$mode
			export out
			trial_cmd=(unshare --net -- "$here/acct_overhead.sh" --trial "$mode" "$n")
			if [ "$mode" = pacer ]; then
				"$bin" attach "$cgroot" "$n" "$id" -- "${trial_cmd[@]}" >"$out.acct.json"
			else
				"${trial_cmd[@]}"
			fi
			/usr/bin/python3 - "$out" "$r" "$rounds" "$n" "$mode" >>"$results" <<'PY'
import json, os, sys
out, r, rounds, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
ip = json.load(open(out + ".iperf.json"))["end"]
row = {"round": r, "tasks": n, "mode": mode,
       "tcp_gbps": ip["sum_received"]["bits_per_second"] / 1e9,
       "tcp_bytes": ip["sum_sent"]["bytes"],
       **json.load(open(out + ".conn.json"))}
for suffix, key in ((".acct.json", "pacer_counted"), (".ipt.json", "iptables_counted")):
    if os.path.exists(out + suffix):
        row[key] = json.loads(open(out + suffix).read().strip().splitlines()[-1])
print(json.dumps(row))
print("round %d/%s tasks %5d %-8s %7.2f Gbit/s %9.0f conn/s" % (r, rounds, n, mode,
      row["tcp_gbps"], row["conn_per_s"]), file=sys.stderr)
PY
		done
	done
done
echo "bench-acct: $((SECONDS - t0)) s; load average before $load0, after $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$results" "$build/bench/acct_overhead.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs) if xs else float("nan")
lines = ["| tasks | mode | TCP Gbit/s | x none | conn/s | x none | conn/s paired x none |",
         "|---:|---|---:|---:|---:|---:|---:|"]
verdicts = []
for n in sorted({r["tasks"] for r in rows}):
    by = {m: [r for r in rows if r["tasks"] == n and r["mode"] == m] for m in ("none", "pacer", "iptables")}
    base = {k: med([r[k] for r in by["none"]]) for k in ("tcp_gbps", "conn_per_s")}
    ratio = {}
    for m, rs in by.items():
        v = {k: med([r[k] for r in rs]) for k in ("tcp_gbps", "conn_per_s")}
        # The same round's none run is the pair: drift between rounds cancels out.
        none_of = {r["round"]: r for r in by["none"]}
        paired = med([r["conn_per_s"] / none_of[r["round"]]["conn_per_s"] for r in rs if r["round"] in none_of])
        ratio[m] = (v["tcp_gbps"] / base["tcp_gbps"], v["conn_per_s"] / base["conn_per_s"])
        lines.append("| %d | %s | %.2f | %.3f | %.0f | %.3f | %.3f |" % (n, m, v["tcp_gbps"], ratio[m][0],
                     v["conn_per_s"], ratio[m][1], paired))
    verdicts.append("tasks %d: pacer/none TCP %.3f (target >= 0.98), conn/s %.3f (target >= 0.97); "
                    "iptables/none TCP %.3f, conn/s %.3f; pacer %s iptables" % (
                        n, ratio["pacer"][0], ratio["pacer"][1], ratio["iptables"][0], ratio["iptables"][1],
                        "ahead of" if min(a - b for a, b in zip(ratio["pacer"], ratio["iptables"])) > 0 else "NOT ahead of"))
    # What each counted: the accounting under test must have seen the traffic.
    for r in by["pacer"]:
        c = r.get("pacer_counted", {})
        if c.get("tx_bytes", 0) < r["tcp_bytes"] or c.get("tcp_connects", 0) < r["connections"]:
            verdicts.append("  WARNING round %d: pacer counted tx %s B / %s connects, less than the %d B / %d "
                            "connections made" % (r["round"], c.get("tx_bytes"), c.get("tcp_connects"),
                                                  r["tcp_bytes"], r["connections"]))
    for r in by["iptables"]:
        c = r.get("iptables_counted", {})
        if c.get("bytes", 0) < r["tcp_bytes"]:
            verdicts.append("  WARNING round %d: the task's iptables rule counted %s B, less than the %d B "
                            "sent" % (r["round"], c.get("bytes"), r["tcp_bytes"]))
text = "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n"
print(text, end="")
open(sys.argv[2], "w").write(text)
PY
