#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
#
# Mesh fan-out: how long one peer's join takes to reach every peer that
# holds a long poll for the directory, and what a join costs the hub.
#
#   tests/bench/mesh-fanout.sh [DIR]
#
# A hub namespace runs wireguard-go and wg-dynamic-server --mesh. N + J
# simulated clients are link-local /128s on the hub's own interface, each
# the only allowed-IP of a peer with a random key, as in throughput.sh
# (tests/bench/loadgen.c sets them up); tests/bench/meshgen.c speaks for
# them. The N pollers each get a lease, join the directory, follow it to
# the end and hold a long poll. Then J more clients join one at a time
# (a lease, then request_peers); for each join, the time from the joiner's
# request (the hub knows the join once it has it: everything shares one
# host) until each poller has read an answer with the joiner's peer= line.
# Every poller asks again at once, and the next join waits until every poll
# is held again.
#
# It prints, over the J joins, the median and 95th percentile of the time
# until the LAST poller had the line (target: at most 100 ms), the median
# poller's, the joiner's own answer time, the bytes of a peer= line and of
# a poll's answer, and the CPU time of the server's two processes per join:
# utime + stime from /proc/PID/stat, in clock ticks, and the scheduler's run
# time, which has no ticks to round to; the run time less what the hub
# spends anyway with the polls held and nothing happening (measured for 2 s
# before the joins: with --mesh it reads the device every second), the
# joiner's lease's share, and wireguard-go's. Figures, not pass or fail; the exit status is
# 1 when the set-up failed or a poller missed a join.
#
# The server's state directory goes under DIR (default: a temporary
# directory beside the repository, else in /var/tmp), removed afterwards.
# Knobs: MESH_PEERS (default 1000) and MESH_JOINS (default 20);
# MESH_SERVER_OPTS adds options to the server's command line; E2E_KEEP=1
# keeps the logs.

# Functions below run through wait_for and the EXIT trap, which shellcheck
# cannot see.
# shellcheck disable=SC2317
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$BENCH_DIR/../e2e/lib.sh"

LOADGEN=$BENCH_DIR/loadgen
MESHGEN=$BENCH_DIR/meshgen
PEERS=${MESH_PEERS:-1000}
JOINS=${MESH_JOINS:-20}
read -r -a SERVER_OPTS <<<"${MESH_SERVER_OPTS:-}"
# Leases outlast the run: a renewal is not what is measured.
LEASE=3600
POOL4=10.0.0.0/16
POOL6=fd00::/64
MAX_CLIENTS=60000
TARGET_MS=100

CLK_TCK=$(getconf CLK_TCK)
SCRATCH=
OWN_SCRATCH=0

e2e_before_cleanup() {
	# The hub's allowed-IPs would be thousands of lines: not worth a dump.
	HUB_NS=
	if [ "$OWN_SCRATCH" = 1 ] && [ -n "$SCRATCH" ]; then
		rm -rf "$SCRATCH"
	fi
}

# hub_setup N: a namespace with wireguard-go, N peers and their N
# link-local addresses, and fe80::/64, up. Forwarding is on, as on a hub
# that relays (the server warns otherwise).
hub_setup() {
	local n=$1

	HUB_NS=wgd-$E2E_ID-mesh
	HUB_IF=wgbm$E2E_ID
	netns_add "$HUB_NS"
	ip netns exec "$HUB_NS" sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 >/dev/null || die "cannot turn on forwarding in $HUB_NS"
	wg_iface_start "$HUB_NS" "$HUB_IF"
	HUB_WG_PID=$WG_IFACE_PID
	"$LOADGEN" setup "$n" "$HUB_IF" "$E2E_TMP/peers.conf" "$E2E_TMP/addrs.batch" ||
		die "loadgen setup failed"
	ip netns exec "$HUB_NS" wg setconf "$HUB_IF" "$E2E_TMP/peers.conf" ||
		die "cannot configure the peers of $HUB_IF"
	ip -n "$HUB_NS" -batch "$E2E_TMP/addrs.batch" || die "cannot add the clients' addresses"
	ip -n "$HUB_NS" addr add fe80::/64 dev "$HUB_IF" || die "cannot add fe80::/64 to $HUB_IF"
	ip -n "$HUB_NS" link set "$HUB_IF" up || die "cannot bring $HUB_IF up"
}

# wg-dynamic-server --mesh, without -v (a debug line per request is not the
# path being measured).
server_start_mesh() {
	SERVER_LOG=$E2E_TMP/server.log
	[ -x "$SERVER_BIN" ] || die "$SERVER_BIN is missing: run make"
	ip netns exec "$HUB_NS" "$SERVER_BIN" --state-dir "$SCRATCH/state" \
		--pool "$POOL4" --pool "$POOL6" --lease-time "$LEASE" --mesh "${SERVER_OPTS[@]}" \
		"$HUB_IF" >>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	E2E_PIDS+=("$SERVER_PID")
	wait_for -t 30 server_ready 0 || die "wg-dynamic-server --mesh is not serving on port 970"
}

# What the server logged while serving, besides grants and joins: the count
# and the first such line, or nothing.
server_other_lines() {
	awk '/^serving / { on = 1; next }
		/^exiting on signal/ { on = 0 }
		on && !/: granted ip4 / && !/: joined the mesh$/ { if (!n++) first = $0 }
		END { if (n) printf "%d other lines, the first: %s\n", n, first }' "$SERVER_LOG"
}

# fig NAME: a figure of meshgen's summary line.
fig() {
	tr ' ' '\n' <<<"$SUMMARY" | awk -F= -v k="$1" '$1 == k { print $2; exit }'
}

ms() {
	awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'
}

machine() {
	local cpu wgv

	cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	wgv=$(wireguard-go --version 2>/dev/null | awk 'NF { print $2; exit }')
	say "machine: ${cpu:-unknown CPU}, $(nproc) CPUs; $(uname -sr); wireguard-go ${wgv:-unknown}"
	say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# ---- main ----

e2e_init mesh-fanout
for bin in "$LOADGEN" "$MESHGEN" "$SERVER_BIN"; do
	[ -x "$bin" ] || die "$bin is not built: run make bench"
done
for v in "$PEERS" "$JOINS"; do
	case $v in
	'' | *[!0-9]* | 0) die "MESH_PEERS and MESH_JOINS must be whole numbers above 0" ;;
	esac
done
[ $((PEERS + JOINS)) -le "$MAX_CLIENTS" ] || die "MESH_PEERS + MESH_JOINS is above $MAX_CLIENTS"
if [ $# -gt 0 ]; then
	SCRATCH=$(mktemp -d "$1/mesh-fanout.XXXXXX") || die "cannot make a directory in $1"
else
	SCRATCH=$(mktemp -d "$(cd "$E2E_TOP/.." && pwd)/wgd-mesh-fanout.XXXXXX" 2>/dev/null ||
		mktemp -d /var/tmp/wgd-mesh-fanout.XXXXXX) || die "no scratch directory"
fi
OWN_SCRATCH=1

machine
hub_setup $((PEERS + JOINS))
server_start_mesh
mapfile -t SPIDS < <(printf '%s\n' "$SERVER_PID"; pid_descendants "$SERVER_PID")
[ "${#SPIDS[@]}" -ge 2 ] || die "wg-dynamic-server did not start its engine"
hub_pids=$(IFS=,; printf '%s' "${SPIDS[*]}")

start=$SECONDS
ip netns exec "$HUB_NS" "$MESHGEN" "$HUB_IF" "$E2E_TMP/peers.conf" "$PEERS" "$JOINS" \
	"$hub_pids" "$HUB_WG_PID" >"$E2E_TMP/meshgen.out" 2>"$E2E_TMP/meshgen.log"
rc=$?
SUMMARY=$(grep '^peers=' "$E2E_TMP/meshgen.out")
if [ -z "$SUMMARY" ]; then
	cat "$E2E_TMP/meshgen.log"
	die "meshgen could not run the benchmark (exit status $rc)"
fi

say "$PEERS pollers, each holding a long poll; $JOINS joins, one at a time;" \
	"set-up (leases, joins, whole directories) $(fig sync_s) s"
say
say "each join, from the joiner's request: its own answer, the first, the median and"
say "the last poller to have its line; early: pollers that had it before the joiner"
printf '%5s %10s %10s %10s %10s %6s %8s\n' join "answer ms" "first ms" "median ms" "last ms" \
	early missing
awk '/^join=/ {
	for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	printf "%5d %10.1f %10.1f %10.1f %10.1f %6d %8d\n", f["join"], f["request_us"] / 1000,
		f["first_us"] / 1000, f["median_us"] / 1000, f["last_us"] / 1000, f["early"],
		f["missing"] }' "$E2E_TMP/meshgen.out"
say
p95=$(fig last_p95_us)
met=missed
[ "$p95" -le $((TARGET_MS * 1000)) ] && met=met
say "to the last poller:     p50 $(ms "$(fig last_p50_us)") ms, p95 $(ms "$p95") ms," \
	"max $(ms "$(fig last_max_us)") ms (target: p95 <= $TARGET_MS ms: $met)"
say "to the median poller:   p50 $(ms "$(fig median_p50_us)") ms"
say "the joiner's own answer: p50 $(ms "$(fig request_p50_us)") ms"
say "bytes: $(fig line_bytes) per peer= line, $(fig answer_bytes) per poll answer"
say "hub CPU per join:       $(fig hub_cpu_us) us utime+stime (ticks of" \
	"$((1000 / CLK_TCK)) ms: +-$(awk -v j="$JOINS" -v hz="$CLK_TCK" \
		'BEGIN { printf "%.0f", 1e6 / hz / j }') us); run time $(fig hub_run_us) us,"
say "                        $(fig hub_net_us) us without the idle hub's share," \
	"the joiner's lease $(fig grant_run_us) us of it; wireguard-go $(fig wg_cpu_us) us"
say "idle hub, the polls held: $(fig idle_hub_run_us_per_s) us per second" \
	"(the device read every second); the joins took $(fig joins_s) s"
say "poll requests without an answer, asked again: $(fig poll_failures);" \
	"resets: $(fig resets); lines of unknown keys: $(fig unknown_lines)"
if [ "$(fig missing)" != 0 ] || [ "$(fig first_error)" != - ]; then
	say "missed: $(fig missing) poller answers; first error: $(fig first_error)"
fi
# The server's own count of what it refused and sent, from show.
counters=$(ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF" 2>/dev/null |
	awk '$1 == "counters:" { for (i = 2; i < NF; i += 2)
		if ($i ~ /^(refused_busy|mesh_answers|mesh_bytes)$/) printf " %s %s", $i, $(i + 1); exit }')
[ -z "$counters" ] || say "server counters, set-up included:$counters"
server_stop 10 || die "wg-dynamic-server did not stop"
other=$(server_other_lines)
[ -z "$other" ] || say "the server logged $other"
say "$((SECONDS - start)) s"
if [ "$rc" -ne 0 ]; then
	cat "$E2E_TMP/meshgen.log"
	exit 1
fi
exit 0
