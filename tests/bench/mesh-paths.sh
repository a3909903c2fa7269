#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
#
# Mesh paths through real NATs: how fast two clients behind easy NATs go
# direct, what the mesh costs a ping that runs meanwhile, how fast a broken
# path falls back to the hub and comes back, how fast a path follows a NAT
# that moves, and what a change costs on the wire.
#
#   tests/bench/mesh-paths.sh [DIR]
#
# The bench is tests/e2e/natlib.sh's: a hub on the internet running
# wg-dynamic-server --mesh, clients 1 and 2 each behind an easy NAT (a
# masquerade that drops unsolicited input, as home routers do), both
# running wg-dynamic-client over wireguard-go with a persistent keepalive
# of 1 s on their hub peer, so that the hub sees a moved NAT within a
# second. Client 1 pings client 2's leased IPv4 address 40 times a second
# (ping -i 0.025) throughout; every reply and every missing one carries a
# timestamp (ping -D -O). Each run, in this order:
#
#   join      client 2 stops (SIGTERM: it releases its lease and removes
#             its mesh peers, and client 1 drops it once it leaves the
#             directory) and starts again. From its lease (its IPv4
#             address on its interface, polled every 10 ms) to both sides
#             holding the other's /32 in allowed-IPs (polled every 10 ms).
#             Target: 1 s at p95. Loss: pings lost from the first reply
#             after the lease (the relay works) to 1 s after both are
#             direct. Target: none.
#   restart   client 2's daemon is killed (SIGKILL: no release, its peers
#             stay) and started again: at start it removes the peers an
#             earlier run left, which takes its side off the direct path
#             while client 1's stays on it, then probes again. The one way
#             to make a side fall back to the hub while the path works.
#             Loss: from the kill to 1 s after both are direct again.
#   break     the internet drops UDP between the two NATs both ways
#             (nat_break): time from the break until the pings get answers
#             again, through the hub, and the pings lost meanwhile.
#             Target: 3 s.
#   repair    the drop ends (nat_repair): time until both are direct again,
#             and the pings lost from the repair to 1 s after. Targets:
#             10 s, and no loss.
#   move      client 2 restarts (as in join, a second sample of it), then
#             router 2's NAT moves to another public address (nat_move):
#             time from the hub seeing client 2's new endpoint (wg show on
#             the hub, polled every 10 ms) to both being direct again with
#             client 1 sending to the new address. Router 1 first forgets
#             any mapping to that address (nat_move goes back and forth
#             between two). Target: 5 s.
#
# Then signalling: client 3, on a public address, takes a lease and holds
# a directory long poll (tests/e2e/meshpoll) without a daemon, while client
# 2 restarts a few more times; every answer it gets is counted: bytes per
# answer, and bytes per peer= or gone= line, the cost of one peer's change.
# Target: 150 bytes per peer per change.
#
# Each figure is given as its median (p50), p95 and slowest. Figures, not
# pass or fail: the exit status is 1 only when the set-up fails. Files go
# under DIR (default: TMPDIR, else /tmp), removed afterwards.
#
# Knobs: MESH_PATHS_RUNS (default 20; 2 with BENCH_SMOKE=1) runs;
# MESH_PATHS_VERBOSE=1 prints each run's figures; E2E_KEEP=1 keeps the logs.
# About 6 minutes at the default.

# Functions below run through wait_for and the EXIT trap, which shellcheck
# cannot see.
# shellcheck disable=SC2317
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$BENCH_DIR/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../e2e/natlib.sh
. "$BENCH_DIR/../e2e/natlib.sh"

if [ "${BENCH_SMOKE:-0}" = 1 ]; then
	RUNS=${MESH_PATHS_RUNS:-2}
else
	RUNS=${MESH_PATHS_RUNS:-20}
fi
VERBOSE=${MESH_PATHS_VERBOSE:-0}
MESHPOLL=$BENCH_DIR/../e2e/meshpoll
CONNECT=$BENCH_DIR/../e2e/connect
POOL4=10.98.0.0/24
POOL6=fd98::/64
# Signalling: client 2's restarts while client 3 polls.
SIGNAL_RUNS=5
[ "$RUNS" -lt 5 ] && SIGNAL_RUNS=$RUNS

if [ $# -gt 0 ]; then
	[ -d "$1" ] || { echo "mesh-paths: $1 is not a directory" >&2; exit 1; }
	export TMPDIR=$1
fi
case $RUNS in
'' | *[!0-9]* | 0) echo "mesh-paths: MESH_PATHS_RUNS must be a whole number above 0" >&2; exit 1 ;;
esac
for bin in "$MESHPOLL" "$CONNECT"; do
	[ -x "$bin" ] || { echo "mesh-paths: $bin is missing: run make bench" >&2; exit 1; }
done

# Figures by case, milliseconds (or packets, or bytes) separated by spaces.
declare -A FIG=()
MISSED_RUNS=0

add() {
	FIG[$1]="${FIG[$1]:-} $2"
	[ "$VERBOSE" = 0 ] || say "  run $RUN: $1 $2"
}

# ---- time ----

# us: CLOCK_REALTIME in microseconds, the clock of ping -D, in every
# namespace alike.
us() {
	local t=${EPOCHREALTIME/[.,]/}
	printf '%s\n' "$t"
}

# poll_until LIMIT_S CMD...: runs CMD every 10 ms until it succeeds; then
# POLL_START and POLL_END are the microseconds before and after the run of
# CMD that succeeded. Fails after LIMIT_S seconds.
POLL_START=0
POLL_END=0
poll_until() {
	local end=$(($(us) + $1 * 1000000))
	shift
	while :; do
		POLL_START=$(us)
		if "$@"; then
			POLL_END=$(us)
			return 0
		fi
		[ "$POLL_START" -ge "$end" ] && return 1
		sleep 0.01
	done
}

ms_between() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f\n", (b - a) / 1000 }'
}

# ---- the path ----

ADDR4=()

has_lease4() {
	[ -n "$(client_addr4 "$1")" ]
}

# holds A B: client A has client B as a peer with B's /32 in its allowed-IPs.
holds() {
	nat_peer_show "$1" allowed-ips "$2" | grep -qw -- "${ADDR4[$2]}/32"
}

both_direct() {
	holds 1 2 && holds 2 1
}

# direct_to_new: both direct, and client 1 sends to client 2's NAT's
# current address.
direct_to_new() {
	both_direct && [ "$(nat_ep_addr "$(nat_endpoint 1 2)")" = "${NAT_PUB4[2]}" ]
}

hub_sees_2_at() {
	[ "$(nat_ep_addr "$(nat_hub_endpoint 2)")" = "$1" ]
}

# ---- client 2's restarts ----

# restart_2 SIGNAL: client 2 stops with SIGNAL and starts again; prints
# nothing, sets T_LEASE (µs) to its lease and T_DIRECT to both being
# direct; fails when either did not come.
T_LEASE=0
T_DIRECT=0
cleaned_2() {
	log_since "${CLIENT_LOG[2]}" "$1" | grep -q "removed 1 mesh peers an earlier run left"
}

restart_2() {
	local mark

	if [ "$1" = KILL ]; then
		client_kill 2
	else
		client_stop 2 || die "client 2 did not stop on SIGTERM"
		wait_for -t 5 not has_lease4 2 || die "client 2 kept its address after SIGTERM"
		# Client 1 drops client 2 once it leaves the directory: a fresh
		# start on both sides.
		wait_for -t 10 not holds 1 2 || die "client 1 kept client 2 as a direct peer"
	fi
	mark=$(log_mark "${CLIENT_LOG[2]}")
	client_start 2
	if [ "$1" = KILL ]; then
		# Its addresses and peers are still there: what counts is the
		# new run's removal of the peers and its way back.
		wait_for -t 10 cleaned_2 "$mark" || return 1
	fi
	poll_until 15 has_lease4 2 || return 1
	T_LEASE=$POLL_START
	ADDR4[2]=$(client_addr4 2 | cut -d/ -f1)
	poll_until 30 both_direct || return 1
	T_DIRECT=$POLL_END
	[ "$VERBOSE" = 0 ] || say "  run $RUN: client 2's lease at $T_LEASE µs, both direct at $T_DIRECT µs"
}

# ---- the ping ----

PING_LOG=
PING_PID=

ping_start() {
	PING_LOG=$E2E_TMP/ping.log
	ip netns exec "${CLIENT_NS[1]}" ping -D -O -n -i 0.025 "${ADDR4[2]}" >"$PING_LOG" 2>&1 &
	PING_PID=$!
	E2E_PIDS+=("$!")
}

# The ping's log as "SEQ TIME_US REPLIED", one line a sequence number:
# the time a reply came, or for a missing one the time ping gave up on it
# less one interval, about when it was sent.
ping_table() {
	awk '
		match($0, /^\[[0-9.]+\]/) {
			t = substr($0, 2, RLENGTH - 2) * 1000000
			if (!match($0, /icmp_seq=[0-9]+/))
				next
			s = substr($0, RSTART + 9, RLENGTH - 9) + 0
			if ($0 ~ / bytes from /) {
				if (!(s in r)) { r[s] = 1; at[s] = t }
			} else if ($0 ~ /no answer yet/ && !(s in at)) {
				at[s] = t - 25000
			}
			if (s > max) max = s
		}
		END {
			for (s = 1; s <= max; s++)
				if (s in at)
					printf "%d %.0f %d\n", s, at[s], (s in r) ? 1 : 0
		}' "$PING_LOG"
}

# lost_between FROM_US TO_US: pings lost from the first reply at or after
# FROM_US to TO_US.
lost_between() {
	ping_table | awk -v a="$1" -v b="$2" '
		$2 >= a && $3 && !on { on = 1 }
		on && $2 <= b && !$3 { n++ }
		END { print n + 0 }'
}

# outage_after FROM_US: "MS LOST": from FROM_US to the first reply after
# the first missing ping, and the pings missing in between; "0 0" when
# none went missing within 10 s.
outage_after() {
	ping_table | awk -v a="$1" '
		$2 < a { next }
		!$3 && !gap && $2 < a + 10000000 { gap = 1 }
		gap && !$3 { n++ }
		gap && $3 { printf "%.0f %d\n", ($2 - a) / 1000, n; found = 1; exit }
		END { if (!found) print gap ? "-1 " n + 0 : "0 0" }'
}

# ---- signalling ----

POLL_LOOP_PID=

# poll_loop: client 3 asks for the directory, again and again at the
# version it holds, as a client does; each answer goes into
# answers/N.
poll_loop() {
	local epoch=0 since=0 i=0 out e
	mkdir -p "$E2E_TMP/answers"
	while :; do
		out=$E2E_TMP/answers/$i
		ip netns exec "${CLIENT_NS[3]}" "$MESHPOLL" "${CLIENT_IF[3]}" "${CLIENT_LL[3]}" \
			"$epoch" "$since" "$(nat_listen_port 3)" >"$out" 2>&1 || {
			sleep 0.2
			continue
		}
		# epoch= comes only when it is news.
		e=$(sed -n 's/^epoch=//p' "$out")
		epoch=${e:-$epoch}
		since=$(sed -n 's/^version=//p' "$out")
		i=$((i + 1))
	done
}

# ---- figures ----

# stats FIGURE...: "N P50 P95 MAX", nearest rank, or "0".
stats() {
	printf '%s\n' "$@" | sort -g | awk '
		NF { v[n++] = $1 }
		END {
			if (!n) { print 0; exit }
			p50 = v[int((n + 1) * 0.5 + 0.5) - 1]
			i = int(n * 0.95 + 0.999999) - 1
			if (i < 0) i = 0
			printf "%d %s %s %s\n", n, p50, v[i], v[n - 1]
		}'
}

# row LABEL CASE UNIT [TARGET]: one line of the table; TARGET is checked
# against p95.
row() {
	local n p50 p95 max verdict=
	# shellcheck disable=SC2086 # a list of figures
	read -r n p50 p95 max <<<"$(stats ${FIG[$2]:-})"
	if [ "$n" -eq 0 ]; then
		printf '  %-52s %4s %8s %8s %8s\n' "$1 ($3)" 0 - - -
		return
	fi
	if [ -n "${4:-}" ]; then
		verdict=$(awk -v p="$p95" -v t="$4" 'BEGIN {
			printf "<= %s: %s", t, p <= t ? "met" : "MISSED" }')
	fi
	printf '  %-52s %4d %8s %8s %8s   %s\n' "$1 ($3)" "$n" "$p50" "$p95" "$max" "$verdict"
}

# ---- the bench ----

e2e_init mesh-paths
e2e_before_cleanup() {
	[ "$E2E_FAILS" -eq 0 ] || nat_dump
}

nat_hub_create
hub_route "$POOL4" "$POOL6"
nat_site_easy 1
nat_site_easy 2
nat_site_public 3
for n in 1 2 3; do
	ip netns exec "${CLIENT_NS[$n]}" wg set "${CLIENT_IF[$n]}" peer "$HUB_PUB" \
		persistent-keepalive 1 || die "cannot set the keepalive of client $n's hub peer"
	nat_hub_join "$n"
done

say "mesh paths: $RUNS runs, two clients behind easy NATs"
server_start --mesh --pool "$POOL4" --pool "$POOL6"
client_start 1
client_start 2
for n in 1 2; do
	client_wait_lease "$n" || die "client $n got no IPv4 and IPv6 lease"
	ADDR4[n]=$(client_addr4 "$n" | cut -d/ -f1)
done
wait_for -t 30 both_direct || die "clients 1 and 2 never went direct"
ping_start
sleep 1

for ((RUN = 1; RUN <= RUNS; RUN++)); do
	# join
	old=${ADDR4[2]}
	if ! restart_2 TERM; then
		MISSED_RUNS=$((MISSED_RUNS + 1))
		say "  run $RUN: client 2 did not go direct after its restart"
		wait_for -t 30 both_direct || die "clients 1 and 2 stay relayed"
		continue
	fi
	[ "${ADDR4[2]}" = "$old" ] || die "client 2's address moved from $old to ${ADDR4[2]}: the ping cannot follow"
	add join "$(ms_between "$T_LEASE" "$T_DIRECT")"
	sleep 1
	add loss_join "$(lost_between "$T_LEASE" "$(($(us)))")"

	# restart without a release
	t=$(us)
	if restart_2 KILL; then
		sleep 1
		add loss_restart "$(lost_between "$t" "$(us)")"
	else
		MISSED_RUNS=$((MISSED_RUNS + 1))
		wait_for -t 30 both_direct || die "clients 1 and 2 stay relayed"
	fi

	# break and repair
	t=$(us)
	nat_break 1 2
	nat_break 2 1
	wait_for -t 10 not both_direct || say "  run $RUN: still direct 10 s after the break"
	sleep 1
	read -r ms lost <<<"$(outage_after "$t")"
	add fallback "$ms"
	add loss_break "$lost"
	t=$(us)
	nat_repair 1 2
	nat_repair 2 1
	if poll_until 40 both_direct; then
		add repair "$(ms_between "$t" "$POLL_END")"
		sleep 1
		add loss_repair "$(lost_between "$t" "$(us)")"
	else
		MISSED_RUNS=$((MISSED_RUNS + 1))
		say "  run $RUN: not direct 40 s after the repair"
	fi

	# a NAT that moves, from a fresh start
	if restart_2 TERM; then
		add join "$(ms_between "$T_LEASE" "$T_DIRECT")"
	else
		wait_for -t 30 both_direct || die "clients 1 and 2 stay relayed"
	fi
	sleep 0.5
	# nat_move goes back and forth between two addresses; router 1 would
	# still map client 1 to the one router 2 had two moves ago, and let
	# client 2's packets from there in at once. A NAT that moves goes to
	# an address nobody sent to: router 1 forgets that mapping.
	to=198.51.100.$((4 * 2 + 2))
	[ "${NAT_PUB4[2]}" = "$to" ] && to=203.0.113.2
	ip netns exec "${NAT_ROUTER_NS[1]}" conntrack -D -d "$to" >/dev/null 2>&1
	nat_move 2
	poll_until 10 hub_sees_2_at "${NAT_PUB4[2]}" || die "the hub never saw router 2's new address"
	t=$POLL_END
	if poll_until 40 direct_to_new; then
		add move "$(ms_between "$t" "$POLL_END")"
	else
		MISSED_RUNS=$((MISSED_RUNS + 1))
		say "  run $RUN: not direct 40 s after the NAT moved"
	fi
done

# ---- signalling ----

client_route_hub 3
ip netns exec "${CLIENT_NS[3]}" "$CONNECT" "${CLIENT_IF[3]}" "${CLIENT_LL[3]}" 970 fe80:: 970 \
	>"$E2E_TMP/lease-3.out" 2>&1 || die "client 3 got no lease"
poll_loop &
POLL_LOOP_PID=$!
E2E_PIDS+=("$!")
sleep 2
first=$(find "$E2E_TMP/answers" -type f | wc -l)
for ((RUN = 1; RUN <= SIGNAL_RUNS; RUN++)); do
	restart_2 TERM || say "  signalling run $RUN: client 2 did not go direct"
	sleep 1.5
done
sleep 1
stop_pid "$POLL_LOOP_PID"
# The answers after the first ones (client 3's own join and the full
# directory), each with its bytes (the protocol's, without meshpoll's
# elapsed= line): those with one gone= line, client 2's leaving, and those
# with one peer= line, its join or a change of its entry (its endpoint,
# which the hub may read from its device only after the join). Answers
# with more lines are counted by line.
peer_answers=0
for ((i = first; ; i++)); do
	f=$E2E_TMP/answers/$i
	[ -f "$f" ] || break
	grep -q '^errno=0$' "$f" || continue
	peers=$(grep -c '^peer=' "$f")
	gones=$(grep -c '^gone=' "$f")
	[ $((peers + gones)) -gt 0 ] || continue
	bytes=$(grep -v '^elapsed=' "$f" | wc -c)
	peer_answers=$((peer_answers + (peers > 0)))
	if [ "$peers" -eq 1 ] && [ "$gones" -eq 0 ]; then
		add peer_answer "$bytes"
	elif [ "$peers" -eq 0 ] && [ "$gones" -eq 1 ]; then
		add gone_answer "$bytes"
	fi
	while read -r l; do
		add peer_line "$((${#l} + 1))"
	done < <(grep '^peer=' "$f")
	while read -r l; do
		add gone_line "$((${#l} + 1))"
	done < <(grep '^gone=' "$f")
done

stop_pid "$PING_PID"

say ""
say "  mesh paths through easy NATs                         runs      p50      p95      max   target"
row "lease to direct both ways" join ms 1000
row "join: pings lost (40 Hz)" loss_join packets 0
row "restart without release: pings lost" loss_restart packets
row "break both ways to pings answered again" fallback ms 3000
row "break: pings lost until then" loss_break packets
row "repair to direct both ways" repair ms 10000
row "repair: pings lost" loss_repair packets 0
row "hub sees a moved NAT to direct again" move ms 5000
row "signalling: a peer= line" peer_line bytes 150
row "signalling: an answer of one peer= line" peer_answer bytes 150
row "signalling: a gone= line" gone_line bytes
row "signalling: an answer of one gone= line" gone_answer bytes
say "  signalling: $peer_answers answers with peer= lines for $SIGNAL_RUNS joins"

[ "$MISSED_RUNS" -eq 0 ] || say "  $MISSED_RUNS step(s) never reached their end state (see above)"
exit 0
