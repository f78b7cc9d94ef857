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
#   hooks     (only when named in ACCT_MODES) Pacer's programs attached as in `pacer` but
#             returning at once: the kernel's cost of the attach points, the floor under (b)
# Each trial runs in a fresh network namespace (loopback only; its netfilter state goes with
# it): iperf3 server and client, then bench/acct_overhead.c's connect/accept/close loop,
# all inside the task cgroup. Rounds are interleaved (the mode order rotates each round);
# printed: medians of Gbit/s, connections/s and of the task cgroup's CPU per KB and per
# connection (cpu.stat: stable when other processes share the CPUs), their ratios to `none`,
# and per trial the others' load and other agents' tracing programs. Everything made (cgroups, BPF pins, iptables
# chain, iperf3 server) is removed on exit, Ctrl-C included.
# Usage: bench/acct_overhead.sh /abs/build   (root; the binary: make <build>/bench/acct_overhead)
# Env: ACCT_TASKS ("1 100 1000"), ACCT_ROUNDS (5), ACCT_SECONDS (iperf3 -t, 3),
#      ACCT_CONN_SECONDS (1.5), ACCT_MODES ("none pacer iptables"; `none` must be one). Results: stdout, <build>/bench/acct_overhead.{jsonl,md}.
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

# CPU µs used by the task cgroup so far (cgroup2 cpu.stat exists without the cpu
# controller; usage_usec comes from the scheduler's run time, not from ticks).
task_cpu_us() {
	awk '$1 == "usage_usec" { print $2 }' "$task/cpu.stat"
}

# CPU µs the whole machine was busy so far (/proc/stat, USER_HZ ticks): minus the task's
# own, what other processes took during a trial.
machine_busy_us() {
	awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e6 / hz; exit }' /proc/stat
}

# Tracing programs on the tracepoints Pacer's accounting uses that are attached now (other
# agents on this host: each agent attaches its own node-wide copy; the syscall exit
# tracepoints' perf_event links are known by their programs' names). They run in every mode,
# the baseline included, so they are counted and reported.
foreign_tracing() {
	{ bpftool link list -j && bpftool prog show -j; } 2>/dev/null | jq -s '
		([.[1][] | select((.name // "") | test("^acct_(read|write)_exit$")) | .id]) as $exits |
		[.[0][] | select((.type == "raw_tracepoint" and
			((.tp_name // "") | test("^(sched_switch|sys_exit|inet_sock_set_state)$"))) or
			(.type == "perf_event" and (.prog_id as $p | $exits | index($p))))] | length' ||
		echo -1
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
	u0=$(task_cpu_us)
	b0=$(machine_busy_us)
	w0=$(date +%s%N)
	in_task iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J >"$out.iperf.json"
	wait "$srv"
	srv=""
	u1=$(task_cpu_us)
	in_task "$bin" conn "$csecs" >"$out.conn.json"
	u2=$(task_cpu_us)
	b1=$(machine_busy_us)
	w1=$(date +%s%N)
	echo "{\"tcp_cpu_us\":$((u1 - u0)),\"conn_cpu_us\":$((u2 - u1)),\"wall_us\":$(((w1 - w0) / 1000)),"\
		"\"others_cpu_us\":$((b1 - b0 - (u2 - u0)))}" >"$out.cpu.json"
	if [ "$mode" = iptables ]; then
		# Counters of the task's rule (the last of the chain): what (c) counted.
		iptables -nvxL "$chain" | awk 'END { print "{\"packets\":" $1 ",\"bytes\":" $2 "}" }' >"$out.ipt.json"
	fi
}

main() {
build=${1:?usage: bench/acct_overhead.sh /abs/build/dir}
# Backstop for the whole run (each trial is bounded by iperf3 -t and the connection loop's
# seconds); SIGINT lets the traps clean up.
if [ -z "${ACCT_BACKSTOP:-}" ]; then
	ACCT_BACKSTOP=1 exec timeout --signal=INT --kill-after=30 900 "$0" "$@"
fi
bin=$build/bench/acct_overhead
tasks=${ACCT_TASKS:-1 100 1000}
rounds=${ACCT_ROUNDS:-5}
secs=${ACCT_SECONDS:-3}
csecs=${ACCT_CONN_SECONDS:-1.5}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench-acct: must run as root (cgroups, BPF, network namespaces)" >&2
	exit 1
fi
for t in iperf3 iptables iptables-restore ip ss unshare bpftool jq; do
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
read -r -a modes <<<"${ACCT_MODES:-none pacer iptables}"
nmodes=${#modes[@]}
[[ " ${modes[*]} " == *" none "* ]] || { echo "bench-acct: ACCT_MODES must include none" >&2; exit 1; }
for m in "${modes[@]}"; do
	case $m in none|pacer|hooks|iptables) ;; *) echo "bench-acct: unknown mode $m" >&2; exit 1 ;; esac
done
load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$SECONDS
echo "bench-acct: $(nproc) CPUs, kernel $(uname -r), cgroup $layout (cgroup2 at $unified)," \
	"$(iptables --version | sed 's/^iptables //'), iperf3 -t $secs, ${csecs} s of connections;" \
	"tasks: $tasks; $rounds rounds; load average $load0"
echo "bench-acct: iptables: the measured task's rule is the LAST of the N in $chain (worst case)"
for r in $(seq 1 "$rounds"); do
	for n in $tasks; do
		for ((k = 0; k < nmodes; k++)); do
			mode=${modes[$(((k + r - 1) % nmodes))]}
			out=$work/r$r-n$n-$mode
			export out
			foreign=$(foreign_tracing)
			trial_cmd=(unshare --net -- "$here/acct_overhead.sh" --trial "$mode" "$n")
			if [ "$mode" = pacer ]; then
				"$bin" attach "$cgroot" "$n" "$id" -- "${trial_cmd[@]}" >"$out.acct.json"
			elif [ "$mode" = hooks ]; then
				ACCT_HOOKS_ONLY=1 "$bin" attach "$cgroot" "$n" "$id" -- "${trial_cmd[@]}" >/dev/null
			else
				"${trial_cmd[@]}"
			fi
			# Programs attached during the trial count too; our own, just detached, take a
			# moment to be freed: wait (3 s at most) for the count from before.
			f1=$(foreign_tracing)
			for _ in $(seq 30); do
				[ "$f1" -le "$foreign" ] && break
				sleep 0.1
				f1=$(foreign_tracing)
			done
			[ "$f1" -gt "$foreign" ] && foreign=$f1
			/usr/bin/python3 - "$out" "$r" "$rounds" "$n" "$mode" "$foreign" >>"$results" <<'PY'
import json, os, sys
out, r, rounds, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
ip = json.load(open(out + ".iperf.json"))["end"]
row = {"round": r, "tasks": n, "mode": mode,
       "tcp_gbps": ip["sum_received"]["bits_per_second"] / 1e9,
       "tcp_bytes": ip["sum_received"]["bytes"],
       **json.load(open(out + ".conn.json")), **json.load(open(out + ".cpu.json"))}
# CPU the task cgroup (iperf3 client + server, both connection threads) used per unit of work.
row["tcp_cpu_ns_per_kb"] = row["tcp_cpu_us"] * 1e3 / (row["tcp_bytes"] / 1024)
row["conn_cpu_us_per_conn"] = row["conn_cpu_us"] / row["connections"]
# Share of the machine (all CPUs) other processes used during the trial.
row["others_load"] = max(0, row["others_cpu_us"]) / (row["wall_us"] * os.cpu_count())
row["foreign_tracing"] = int(sys.argv[6])
for suffix, key in ((".acct.json", "pacer_counted"), (".ipt.json", "iptables_counted")):
    if os.path.exists(out + suffix):
        row[key] = json.loads(open(out + suffix).read().strip().splitlines()[-1])
print(json.dumps(row))
print("round %d/%s tasks %5d %-8s %7.2f Gbit/s %7.1f CPU ns/KB %8.0f conn/s %7.2f CPU us/conn"
      " (others: %3.0f%% of the CPUs%s)" % (r, rounds, n, mode, row["tcp_gbps"], row["tcp_cpu_ns_per_kb"],
      row["conn_per_s"], row["conn_cpu_us_per_conn"], 100 * row["others_load"],
      ", %d foreign tracing programs" % row["foreign_tracing"] if row["foreign_tracing"] else ""), file=sys.stderr)
PY
		done
	done
done
echo "bench-acct: $((SECONDS - t0)) s; load average before $load0, after $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$results" "$build/bench/acct_overhead.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs) if xs else float("nan")
# (key, higher is better): wall-clock rates, and the task's CPU per unit of work (the
# figure that survives a loaded machine: other processes take wall time, not task CPU).
keys = (("tcp_gbps", True), ("tcp_cpu_ns_per_kb", False), ("conn_per_s", True), ("conn_cpu_us_per_conn", False))
lines = ["| tasks | mode | TCP Gbit/s | x none | CPU ns/KB | x none | conn/s | x none | CPU us/conn | x none | others' load |",
         "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
verdicts = []
def target(name, ratio, higher, limit):
    # ratio = pacer / none of a figure; the cost in percent, positive = pacer is slower.
    cost = (1 / ratio - 1) if higher else (ratio - 1)
    return "%s %+.1f%% (%s)" % (name, 100 * cost, "met" if cost <= limit else
                                "missed by %.1f points" % (100 * (cost - limit)))
for n in sorted({r["tasks"] for r in rows}):
    by = {m: [r for r in rows if r["tasks"] == n and r["mode"] == m]
          for m in ("none", "hooks", "pacer", "iptables") if any(r["mode"] == m for r in rows)}
    base = {k: med([r[k] for r in by["none"]]) for k, _ in keys}
    ratio = {}
    for m, rs in by.items():
        v = {k: med([r[k] for r in rs]) for k, _ in keys}
        ratio[m] = {k: v[k] / base[k] for k, _ in keys}
        cells = []
        for k, _ in keys:
            cells += ["%.2f" % v[k] if v[k] < 1000 else "%.0f" % v[k], "%.3f" % ratio[m][k]]
        lines.append("| %d | %s | %s | %.0f%% |" % (n, m, " | ".join(cells), 100 * med([r["others_load"] for r in rs])))
    for m in ("hooks", "pacer"):
        if m not in ratio:
            continue
        p = ratio[m]
        verdicts.append("tasks %d, %s vs none: %s, %s; %s, %s" % (n, m,
            target("TCP wall", p["tcp_gbps"], True, 0.02), target("TCP CPU/KB", p["tcp_cpu_ns_per_kb"], False, 0.02),
            target("conn wall", p["conn_per_s"], True, 0.03), target("conn CPU/conn", p["conn_cpu_us_per_conn"], False, 0.03)))
    if "pacer" in ratio and "iptables" in ratio:
        p, c = ratio["pacer"], ratio["iptables"]
        ahead = all((p[k] > c[k]) if hi else (p[k] < c[k]) for k, hi in keys)
        verdicts.append("tasks %d, iptables vs none: TCP x%.3f wall, x%.3f CPU/KB; conn x%.3f wall, x%.3f CPU/conn; "
                        "pacer %s iptables on all four" % (n, c["tcp_gbps"], c["tcp_cpu_ns_per_kb"], c["conn_per_s"],
                                                            c["conn_cpu_us_per_conn"], "ahead of" if ahead else "NOT ahead of"))
    # What each counted: the accounting under test must have seen the traffic.
    for r in by.get("pacer", []):
        a = r.get("pacer_counted", {})
        if a.get("tx_bytes", 0) < r["tcp_bytes"] or a.get("tcp_connects", 0) < r["connections"]:
            verdicts.append("  WARNING round %d: pacer counted tx %s B / %s connects, less than the %d B / %d "
                            "connections made" % (r["round"], a.get("tx_bytes"), a.get("tcp_connects"),
                                                  r["tcp_bytes"], r["connections"]))
    for r in by.get("iptables", []):
        a = r.get("iptables_counted", {})
        if a.get("bytes", 0) < r["tcp_bytes"]:
            verdicts.append("  WARNING round %d: the task's iptables rule counted %s B, less than the %d B "
                            "received" % (r["round"], a.get("bytes"), r["tcp_bytes"]))
dirty = [r for r in rows if r.get("foreign_tracing", 0)]
if dirty:
    verdicts.append("NOTE: in %d of %d trials other agents' tracing programs (up to %d) were attached to "
                    "sched_switch / sys_exit / inet_sock_set_state: every mode, `none` included, paid for "
                    "them" % (len(dirty), len(rows), max(r["foreign_tracing"] for r in dirty)))
text = "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n"
print(text, end="")
open(sys.argv[2], "w").write(text)
PY
}

# Functions only above: an expansion error aborts the running command, and then nothing
# else of the script runs (no fall-through from a trial into the main path).
if [ "${1:-}" = "--trial" ]; then
	trial "$2" "$3"
else
	main "$@"
fi
