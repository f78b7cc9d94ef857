#!/usr/bin/env bash
# demo-cluster.sh - `make run`: a local Pacer cluster to play with.
#
#   tools/demo-cluster.sh <absolute build dir>
#
# Makes bridge pacer-br0 (198.18.0.1/24) on the host and three network namespaces
# pacer-demo-1..3 (198.18.0.2-4) joined to it by veths; runs pacer-master on the host (bound
# to the bridge address only) and one pacer-agent in each namespace (racks a, b, c); deploys
# /demo/web (3 python http.server instances, HTTP health-checked) and the group
# /team-b/shop (db, and api depending on it) and prints what to try. On Ctrl-C, SIGTERM, or
# any failure it removes every process, namespace, link, cgroup, BPF pin, mount and file it
# made. Running it again first removes what a killed earlier run left behind.
set -euo pipefail

BUILD=${1:?usage: tools/demo-cluster.sh <absolute build dir>}
DIR=/tmp/pacer-demo
BRIDGE=pacer-br0
NET=198.18.0
MASTER_IP=$NET.1
MASTER_PORT=${PACER_DEMO_PORT:-5050}
MASTER_URL=http://$MASTER_IP:$MASTER_PORT
N_AGENTS=3
RACKS=(a b c)
MASTER_PID=
AGENT_PIDS=()
BPFFS_WAS_MOUNTED=0
mountpoint -q /sys/fs/bpf && BPFFS_WAS_MOUNTED=1

say() { printf '%s\n' "demo: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Sends sig, then SIGKILL if the process is still there after a few seconds.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

kill_netns_procs() {
	local ns=$1 i pids
	for i in $(seq 50); do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -z "$pids" ] && return 0
		kill -KILL $pids 2>/dev/null || true
		sleep 0.1
	done
	say "warning: processes left in $ns: $pids"
}

# Kills what is left in cgroups pacer/<agent-id> of every hierarchy and removes them.
remove_cgroups() {
	local id=$1 root base i
	for root in $(awk '$9 == "cgroup" || $9 == "cgroup2" { print $5 }' /proc/self/mountinfo | sort -u); do
		base=$root/pacer/$id
		[ -d "$base" ] || continue
		for i in $(seq 50); do
			local procs
			procs=$(find "$base" -name cgroup.procs -exec cat {} + 2>/dev/null || true)
			[ -z "$procs" ] && break
			kill -KILL $procs 2>/dev/null || true
			sleep 0.1
		done
		# deepest first; cgroup dirs are removed with rmdir, their files go with them
		find "$base" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		[ -d "$base" ] && say "warning: could not remove $base"
		rmdir "$root/pacer" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$? pid ns i id f
	# Finish the clean-up whatever happens: a second Ctrl-C, or a closed terminal/pipe.
	trap '' INT TERM PIPE HUP
	trap - EXIT
	set +e
	say "cleaning up"
	for pid in "${AGENT_PIDS[@]}"; do stop_pid "$pid"; done
	# an earlier run's agents, if it was killed hard: anything still in our namespaces
	for i in $(seq $N_AGENTS); do
		ns=pacer-demo-$i
		[ -e /run/netns/$ns ] && kill_netns_procs "$ns"
	done
	# (agent_id files have no trailing newline: read them one by one)
	for f in "$DIR"/agent-*/agent_id; do
		[ -f "$f" ] || continue
		id=$(cat "$f")
		remove_cgroups "$id"
		rm -rf "/sys/fs/bpf/pacer/$id"
	done
	rmdir /sys/fs/bpf/pacer 2>/dev/null || true
	[ -n "$MASTER_PID" ] && stop_pid "$MASTER_PID"
	if [ -f "$DIR/master.pid" ]; then
		pid=$(cat "$DIR/master.pid")
		[ "$(cat /proc/$pid/comm 2>/dev/null)" = pacer-master ] && stop_pid "$pid"
	fi
	for i in $(seq $N_AGENTS); do
		ip netns del pacer-demo-$i 2>/dev/null || true
		ip link del pacer-d$i 2>/dev/null || true
	done
	ip link del $BRIDGE 2>/dev/null || true
	awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m" || true; done
	if [ $BPFFS_WAS_MOUNTED = 0 ] && mountpoint -q /sys/fs/bpf &&
	   [ -z "$(ls -A /sys/fs/bpf)" ]; then
		umount /sys/fs/bpf || true
	fi
	if [ $rc -ne 0 ] && [ -d "$DIR" ]; then
		say "logs of this run (last lines):"
		for f in "$DIR"/*.log; do echo "--- $f"; tail -n 20 "$f"; done >&2
	fi
	rm -rf "$DIR"
	say "done"
	exit $rc
}

make_network() {
	local i ns ip
	ip link add $BRIDGE type bridge
	ip addr add $MASTER_IP/24 dev $BRIDGE
	ip link set $BRIDGE up
	for i in $(seq $N_AGENTS); do
		ns=pacer-demo-$i
		ip=$NET.$((i + 1))
		ip netns add $ns
		ip link add pacer-d$i type veth peer name pacer-d${i}n
		ip link set pacer-d$i master $BRIDGE
		ip link set pacer-d$i up
		ip link set pacer-d${i}n netns $ns
		nsenter --net=/run/netns/$ns ip link set pacer-d${i}n name eth0
		nsenter --net=/run/netns/$ns ip addr add $ip/24 dev eth0
		nsenter --net=/run/netns/$ns ip link set eth0 up
		nsenter --net=/run/netns/$ns ip link set lo up
	done
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && die "timed out after ${secs}s waiting for $what"
		[ -n "$MASTER_PID" ] && ! kill -0 "$MASTER_PID" 2>/dev/null &&
			die "pacer-master exited (see $DIR/master.log)"
		sleep 0.2
	done
}

agents_registered() {
	local n code
	code=$(curl -s -o "$DIR/agents.json" -w '%{http_code}' "$MASTER_URL/v1/agents")
	if [ "$code" = 404 ]; then
		# a master without GET /v1/agents: count the registrations it logged
		n=$(grep -oE 'event=agent_(re)?registered id=[^ ]+' "$DIR/master.log" | sort -u | wc -l)
	else
		n=$(jq '[.agents[] | select(.active != false)] | length' "$DIR/agents.json")
	fi
	[ "${n:-0}" -ge $N_AGENTS ]
}

web_running() {
	[ "$(curl -sf "$MASTER_URL/v2/apps/demo/web" | jq '.app.tasksHealthy')" -ge 3 ]
}

shop_running() {
	[ "$(curl -sf "$MASTER_URL/v2/apps/team-b/shop/api" | jq '.app.tasksHealthy')" -ge 2 ]
}

main() {
	local i ns ip
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces, cgroups, BPF)"
	for p in pacer-master pacer-agent pacer-executor pacerctl; do
		[ -x "$BUILD/$p" ] || die "$BUILD/$p is not built"
	done
	for t in curl jq nsenter ip; do
		command -v $t >/dev/null || die "$t is missing (make deps installs it)"
	done
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP

	if [ -f "$DIR/demo.pid" ] && kill -0 "$(cat "$DIR/demo.pid")" 2>/dev/null &&
	   grep -q demo-cluster "/proc/$(cat "$DIR/demo.pid")/cmdline" 2>/dev/null; then
		trap - EXIT
		die "another demo cluster is running (pid $(cat "$DIR/demo.pid")); stop it first"
	fi
	if ip link show $BRIDGE >/dev/null 2>&1 || [ -e /run/netns/pacer-demo-1 ] || [ -d "$DIR" ]; then
		say "removing what an earlier demo left behind"
		(cleanup) || true
	fi
	mkdir -p "$DIR"
	echo $$ >"$DIR/demo.pid"
	make_network

	say "starting pacer-master on $MASTER_URL"
	setsid "$BUILD/pacer-master" --port "$MASTER_PORT" --bind $MASTER_IP \
		--work-dir "$DIR/master" --agent-timeout 15 </dev/null >"$DIR/master.log" 2>&1 &
	MASTER_PID=$!
	echo $MASTER_PID >"$DIR/master.pid"
	wait_for 20 "the master to answer /ping" curl -sf "$MASTER_URL/ping"

	for i in $(seq $N_AGENTS); do
		ns=pacer-demo-$i
		ip=$NET.$((i + 1))
		say "starting pacer-agent in $ns ($ip, rack ${RACKS[$((i - 1))]})"
		# nsenter enters only the network namespace: the agent still sees the host's
		# cgroup and bpf file systems (ip netns exec would remount /sys).
		setsid nsenter --net=/run/netns/$ns "$BUILD/pacer-agent" \
			--master "$MASTER_URL" --work-dir "$DIR/agent-$i" \
			--resources 'cpus:2;mem:4096;disk:20000;ports:[31000-32000]' \
			--attributes "rack:${RACKS[$((i - 1))]}" --ip "$ip" --port 5051 \
			--hostname "$ns" --executor "$BUILD/pacer-executor" \
			</dev/null >"$DIR/agent-$i.log" 2>&1 &
		AGENT_PIDS+=($!)
	done
	wait_for 30 "$N_AGENTS agents to register" agents_registered
	say "all $N_AGENTS agents registered"

	curl -sf -X POST -H 'Content-Type: application/json' "$MASTER_URL/v2/apps" -d '{
		"id": "/demo/web",
		"cmd": "exec python3 -m http.server $PORT0",
		"cpus": 0.1, "mem": 64, "instances": 3,
		"portDefinitions": [{"port": 0, "name": "http"}],
		"healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
				  "gracePeriodSeconds": 10, "intervalSeconds": 2}],
		"labels": {"demo": "true"}
	}' >/dev/null || die "could not create /demo/web"
	# A second tenant: a group whose api starts once its db is healthy.
	curl -sf -X POST -H 'Content-Type: application/json' "$MASTER_URL/v2/groups" -d '{
		"id": "/team-b/shop",
		"apps": [
			{"id": "db", "cmd": "exec python3 -m http.server $PORT0", "cpus": 0.1, "mem": 64,
			 "healthChecks": [{"protocol": "TCP", "intervalSeconds": 2}]},
			{"id": "api", "cmd": "exec python3 -m http.server $PORT0", "cpus": 0.1, "mem": 64,
			 "instances": 2, "dependencies": ["db"],
			 "healthChecks": [{"protocol": "HTTP", "path": "/", "intervalSeconds": 2}]}
		]
	}' >/dev/null || die "could not create the group /team-b/shop"
	wait_for 60 "/demo/web to run 3 healthy tasks" web_running
	wait_for 90 "/team-b/shop (db, then api) to be healthy" shop_running

	local ctl="$BUILD/pacerctl --master $MASTER_URL"
	cat <<EOF

Pacer demo cluster is up: master $MASTER_URL, agents in netns pacer-demo-1..3.
Logs and work dirs: $DIR

/demo/web answers on:
$(curl -sf "$MASTER_URL/v2/apps/demo/web/tasks" |
	jq -r '.tasks[] | "\(.host) \(.ports[0])"' |
	while read -r host port; do
		n=${host##*-}; [[ $n =~ ^[0-9]+$ ]] && host=$NET.$((n + 1))
		echo "  http://$host:$port/"
	done)

Try:
  export PACER_MASTER=$MASTER_URL
  $ctl agents list
  $ctl apps list
  $ctl tasks list
  $ctl apps scale /demo/web 5
  $ctl apps show /demo/web
  $ctl usage --tenant team-b
  curl $MASTER_URL/v2/apps/demo/web          # tasksHealthy, healthCheckResults
  curl $MASTER_URL/v2/groups/team-b          # the group, its apps and dependencies
  curl $MASTER_URL/metrics                   # per-tenant usage for Prometheus
  curl -N $MASTER_URL/v2/events

Ctrl-C stops the cluster and removes everything it made.
EOF
	while kill -0 "$MASTER_PID" 2>/dev/null; do
		sleep 1 & wait $!
	done
	die "pacer-master exited (see $DIR/master.log)"
}

main "$@"
