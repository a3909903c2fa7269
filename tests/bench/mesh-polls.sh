#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
#
# Mesh long polls at scale: wg-dynamic-server --mesh holding N directory
# polls, and how long it takes to answer them all when one more peer joins.
#
#   tests/bench/mesh-polls.sh
#
# As in throughput.sh, N + 1 simulated clients are link-local /128
# addresses on the hub's own interface, each the only allowed-IP of a peer
# (tests/bench/loadgen.c), which take a lease each; then
# tests/bench/pollstorm.c makes N of them join and hold a poll, and the
# last one join. Prints, for each N of MESH_POLLS_SIZES (default
# "100 1000"), the time to the first, the median and the last answer, and
# the CPU time the server's engine spent answering, per poll. Figures, not
# pass or fail; the exit status is 1 when a run failed.

# Functions below run through wait_for and the EXIT trap, which shellcheck
# cannot see.
# shellcheck disable=SC2317
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$BENCH_DIR/../e2e/lib.sh"

LOADGEN=$BENCH_DIR/loadgen
POLLSTORM=$BENCH_DIR/pollstorm
SIZES=${MESH_POLLS_SIZES:-100 1000}
[ "${BENCH_SMOKE:-0}" = 1 ] && SIZES=20
POOL4=10.0.0.0/16
POOL6=fd00::/64
CLK_TCK=$(getconf CLK_TCK)

e2e_before_cleanup() {
	# The hub's allowed-IPs would be thousands of lines: not worth a dump.
	HUB_NS=
}

cpu_ticks() {
	local stat
	local -a f
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	read -r -a f <<<"${stat##*) }"
	echo $((f[11] + f[12]))
}

e2e_init mesh-polls
for bin in "$LOADGEN" "$POLLSTORM" "$SERVER_BIN"; do
	[ -x "$bin" ] || die "$bin is missing: run make $bin"
done
printf '%-7s %-9s %-9s %-9s %-9s %s\n' polls first_ms p50_ms last_ms answered engine_us/poll
rc=0
for n in $SIZES; do
	HUB_NS=wgd-$E2E_ID-mesh$n
	HUB_IF=wgm${E2E_ID}$((n % 10000))
	netns_add "$HUB_NS"
	wg_iface_start "$HUB_NS" "$HUB_IF"
	HUB_WG_PID=$WG_IFACE_PID
	"$LOADGEN" setup $((n + 1)) "$HUB_IF" "$E2E_TMP/peers.conf" "$E2E_TMP/addrs.batch" ||
		die "loadgen setup failed"
	ip netns exec "$HUB_NS" wg setconf "$HUB_IF" "$E2E_TMP/peers.conf" || die "wg setconf failed"
	ip -n "$HUB_NS" -batch "$E2E_TMP/addrs.batch" || die "cannot add the clients' addresses"
	ip -n "$HUB_NS" addr add fe80::/64 dev "$HUB_IF" || die "cannot add fe80::/64"
	ip -n "$HUB_NS" link set "$HUB_IF" up || die "cannot bring $HUB_IF up"
	# Without -v: a debug line per device read is not what is measured.
	SERVER_LOG=$E2E_TMP/server-$n.log
	ip netns exec "$HUB_NS" "$SERVER_BIN" --state-dir "$E2E_TMP/state-$n" --mesh \
		--pool "$POOL4" --pool "$POOL6" "$HUB_IF" >>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	E2E_PIDS+=("$SERVER_PID")
	wait_for -t 30 server_ready 0 || die "wg-dynamic-server is not serving on port 970"
	ip netns exec "$HUB_NS" "$LOADGEN" grant "$HUB_IF" $((n + 1)) 64 "$E2E_TMP/leases" \
		>/dev/null || die "loadgen grant failed"
	engine=$(pgrep -P "$SERVER_PID" | head -n 1)
	t0=$(cpu_ticks "$engine")
	line=$(ip netns exec "$HUB_NS" "$POLLSTORM" "$HUB_IF" "$n") || rc=1
	t1=$(cpu_ticks "$engine")
	declare -A R=()
	for kv in $line; do
		R[${kv%%=*}]=${kv#*=}
	done
	# The engine's time covers the joins and the polls taken to hold them
	# too: an upper bound on what answering costs.
	printf '%-7s %-9s %-9s %-9s %-9s %s\n' "$n" "${R[first_ms]:--}" "${R[p50_ms]:--}" \
		"${R[last_ms]:--}" "${R[answered]:--}/${R[with_line]:--}" \
		"$(awk -v t=$((t1 - t0)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }')"
	stop_pid "$SERVER_PID"
	stop_pid "$HUB_WG_PID"
	ip netns del "$HUB_NS" 2>/dev/null
	rm -f "$WG_SOCK_DIR/$HUB_IF.sock"
	unset R
done
exit "$rc"
