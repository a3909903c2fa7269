#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Resource limits of the server against one hostile peer. The server takes
# one connection per (source address, port 970) pair, so client 1's peer on
# the hub gets 500 more link-local /128 allowed-IPs, fe80::5:1 to
# fe80::5:1f4, and client 1's interface the same addresses.
#
# (a) With the default limits, the hostile helper opens 500 silent
#     connections from those addresses, 1000 a second, and holds them for
#     8 s, opening again every one the server closes a second after the
#     close: some 500 connections a second. The server keeps 4 (its limit
#     per peer), closes the others at once, and the 4 at its idle timeout
#     (5 s). Meanwhile a request from client 2 is answered within 1 s, and
#     the real client, started then, is bound within 1 s.
# (b) The server is restarted with --max-connections-per-peer 256
#     --max-connections 256 --idle-timeout 3, and 200 connections each send
#     a request one byte a second. The server closes each without an
#     answer at its idle timeout, give or take a second: none lives to
#     twice the timeout. Client 2 is still answered within 1 s.
# (c) Memory stays flat: the resident size of both server processes is
#     shown before and after (a) and (b), and during (b); the engine's
#     grows by less than 4 MiB over each.
#
# Log lines this test reads (client/main.c):
#   "bound: ip4 A ip6 B leasetime T leasestart S"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.91.0.0/24
POOL6=fd91::/64
EXTRA=500
EXTRA_PREFIX=fe80::5:
HOLD_S=8
TRICKLE=200
TRICKLE_IDLE=3
# Connections opened per second. Beyond the server's listen backlog (128),
# a burst gets SYN cookies, and a handshake whose last ACK is lost then
# looks open from here while the server never saw it.
RATE=1000
# The engine's resident size may grow by this much over one scenario.
RSS_SLACK_KB=4096
HOSTILE=$E2E_DIR/hostile

e2e_init t_91_resources
[ -x "$HOSTILE" ] || die "$HOSTILE is missing: run make e2e"
topology_create 2

# The extra addresses: allowed-IPs of client 1's peer on the hub (the list
# replaces the peer's, so it keeps fe80::1:1), and client 1's own.
list=${CLIENT_LL[1]}/128
: >"$E2E_TMP/addrs.batch"
for ((i = 1; i <= EXTRA; i++)); do
	printf -v a '%s%x' "$EXTRA_PREFIX" "$i"
	list+=",$a/128"
	printf 'addr add %s/128 dev %s nodad\n' "$a" "${CLIENT_IF[1]}" >>"$E2E_TMP/addrs.batch"
done
ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "${CLIENT_PUB[1]}" allowed-ips "$list" ||
	die "cannot give client 1's peer $EXTRA more allowed-IPs"
# In batches of 50: wireguard-go exits when its netlink socket overflows
# ("no buffer space available"), as 500 address events at once can do.
split -l 50 "$E2E_TMP/addrs.batch" "$E2E_TMP/addrs.part."
for f in "$E2E_TMP"/addrs.part.*; do
	ip -n "${CLIENT_NS[1]}" -batch "$f" || die "cannot add $EXTRA addresses to client 1's interface"
	sleep 0.05
done
check_eq "client 1's interface has the $EXTRA addresses" "$EXTRA" \
	"$(ip -n "${CLIENT_NS[1]}" -6 -o addr show dev "${CLIENT_IF[1]}" | grep -c " ${EXTRA_PREFIX}")"
check_eq "client 1's peer on the hub has $((EXTRA + 1)) allowed-IPs" $((EXTRA + 1)) \
	"$(hub_peer_allowed_ips 1 | wc -l)"

# The server's engine: the child of the privileged parent.
engine_pid() {
	pgrep -P "$SERVER_PID" | head -n 1
}

# Whether the engine is still the one seen after the server started.
engine_same() {
	[ -n "$engine" ] && [ "$(engine_pid)" = "$engine" ]
}

rss_kb() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null
}

# rss_report LABEL: shows both processes' resident sizes; sets RSS_PARENT
# and RSS_ENGINE, in KiB.
rss_report() {
	RSS_PARENT=$(rss_kb "$SERVER_PID")
	RSS_ENGINE=$(rss_kb "$(engine_pid)")
	say "RSS $1: parent ${RSS_PARENT:-?} KiB, engine ${RSS_ENGINE:-?} KiB"
}

# timed_request N: one well-formed request from client N's link-local;
# prints the milliseconds it took, or nothing when it was not answered.
timed_request() {
	ip netns exec "${CLIENT_NS[$1]}" "$HOSTILE" "${CLIENT_IF[$1]}" "${CLIENT_LL[$1]}" valid |
		sed -n 's/^valid .* closed (\([0-9]*\) ms): ok$/\1/p'
}

# field NAME LINE: the value of NAME=VALUE in LINE.
field() {
	sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"
}

# between VALUE MIN MAX: whether MIN <= VALUE <= MAX.
between() {
	[ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# ---- (a) 500 idle connections ----

server_start --pool "$POOL4" --pool "$POOL6"
engine=$(engine_pid)

rss_report "before (a)"
before_parent=$RSS_PARENT
before_engine=$RSS_ENGINE
say "(a) $EXTRA silent connections from client 1, held for ${HOLD_S}s"
ip netns exec "${CLIENT_NS[1]}" "$HOSTILE" --hold "$EXTRA" --from-prefix "$EXTRA_PREFIX" \
	--for "$HOLD_S" --reopen 1000 --rate "$RATE" "${CLIENT_IF[1]}" >"$E2E_TMP/hold.out" 2>&1 &
hold_pid=$!
E2E_PIDS+=("$hold_pid")
wait_for -t 10 grep -q '^up: ' "$E2E_TMP/hold.out" || die "the connections did not come up"
up=$(grep '^up: ' "$E2E_TMP/hold.out")
say "$up"
check_eq "every connection was made" "$EXTRA" "$(field connected "$up")"
check_eq "the server kept 4 of them (its limit per peer)" 4 "$(field open "$up")"
check_eq "and closed the others at once" $((EXTRA - 4)) "$(field refused "$up")"

ms=$(timed_request 2)
say "client 2's request was answered in ${ms:-(no answer)} ms"
check "client 2's request was answered within 1 s" test "${ms:-9999}" -lt 1000

t0=${EPOCHREALTIME/./}
client_start 2
wait_for -t 5 grep -q '^bound: ' "${CLIENT_LOG[2]}"
t1=${EPOCHREALTIME/./}
ms=$(((t1 - t0) / 1000))
say "the real client 2 was bound ${ms} ms after its start"
check "the real client 2 was bound within 1 s" test "$ms" -lt 1000
check "client 2 has both addresses" client_wait_lease 2 2
check "the connections were still held then" own_child_alive "$hold_pid"

wait "$hold_pid"
end=$(grep '^end: ' "$E2E_TMP/hold.out")
say "$end"
check_eq "no silent connection got an answer" 0 "$(field answered "$end")"
check_eq "no connection failed" 0 "$(field failed "$end")"
check_eq "the server closed the 4 it kept" 4 "$(field kept_closed "$end")"
check "at its idle timeout (5 s)" \
	between "$(field kept_life_min_ms "$end")" 4700 6000 &&
	between "$(field kept_life_max_ms "$end")" 4700 6000
rss_report "after (a)"
say "engine grew by $((RSS_ENGINE - before_engine)) KiB, parent by $((RSS_PARENT - before_parent)) KiB"
check "(a): the engine grew by less than $RSS_SLACK_KB KiB" \
	test $((RSS_ENGINE - before_engine)) -lt "$RSS_SLACK_KB"
check "(a): the server's parent still runs" pid_alive "$SERVER_PID"
check "(a): the server's engine still runs" engine_same

# ---- (b) 200 trickling connections ----

server_stop 5 || die "the server did not stop cleanly on SIGTERM"
server_start --pool "$POOL4" --pool "$POOL6" --max-connections-per-peer 256 \
	--max-connections 256 --idle-timeout "$TRICKLE_IDLE"
engine=$(engine_pid)
rss_report "before (b)"
before_parent=$RSS_PARENT
before_engine=$RSS_ENGINE
say "(b) $TRICKLE connections from client 1, a byte a second each, idle timeout ${TRICKLE_IDLE}s"
ip netns exec "${CLIENT_NS[1]}" "$HOSTILE" --trickle "$TRICKLE" --from-prefix "$EXTRA_PREFIX" \
	--idle-timeout "$TRICKLE_IDLE" --rate "$RATE" "${CLIENT_IF[1]}" >"$E2E_TMP/trickle.out" 2>&1 &
trickle_pid=$!
E2E_PIDS+=("$trickle_pid")
sleep 1
ms=$(timed_request 2)
say "client 2's request during the trickle was answered in ${ms:-(no answer)} ms"
check "client 2's request was answered within 1 s" test "${ms:-9999}" -lt 1000
rss_report "during (b)"
wait "$trickle_pid"
rc=$?
end=$(grep '^end: ' "$E2E_TMP/trickle.out")
say "$end"
check_eq "every trickling connection was closed without an answer, within 1 s of the idle timeout" \
	0 "$rc"
check_eq "all $TRICKLE were accepted" "$TRICKLE" "$(field closed "$end")"
check_eq "none outlived twice the idle timeout" 0 "$(field outlived "$end")"
check "the longest lived less than twice the idle timeout" \
	between "$(field life_max_ms "$end")" 0 $((2000 * TRICKLE_IDLE - 1))
rss_report "after (b)"
say "engine grew by $((RSS_ENGINE - before_engine)) KiB, parent by $((RSS_PARENT - before_parent)) KiB"
check "(b): the engine grew by less than $RSS_SLACK_KB KiB" \
	test $((RSS_ENGINE - before_engine)) -lt "$RSS_SLACK_KB"
check "(b): the server's parent still runs" pid_alive "$SERVER_PID"
check "(b): the server's engine still runs" engine_same
e2e_finish
