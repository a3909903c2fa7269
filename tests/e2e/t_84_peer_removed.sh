#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A peer removed from the hub at run time loses its lease at the server's
# next device read, and its addresses are quarantined: not handed out again
# until the quarantine ends. The IPv4 pool holds one address. Client 1 gets
# it; then its peer is removed from the hub and the client is killed, so it
# cannot release. Client 2 then gets an IPv6 address but not the quarantined
# IPv4 one, for as long as the quarantine (8 s) lasts; once the server logs
# its end, client 2's next request (SIGHUP asks at once) gets it.
#
# Log lines this test reads (server/engine.c):
#   "peer KEY: lease dropped: the peer is gone; its addresses are
#    quarantined for Ns"
#   "quarantine over for N addresses; they return to the pools"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.84.0.7/32
POOL6=fd84::/64
QUARANTINE=8

e2e_init t_84_peer_removed
topology_create 2
server_start --pool "$POOL4" --pool "$POOL6" --lease-time 30 \
	--quarantine "$QUARANTINE" --device-refresh 1
client_start 1
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
check_eq "client 1 has the pool's only IPv4 address" "$POOL4" "$(client_addr4 1)"
old6=$(client_addr6 1)
say "client 1: $POOL4 $old6"

server_logged() {
	grep -qF "$1" "$SERVER_LOG"
}

ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "${CLIENT_PUB[1]}" remove ||
	die "cannot remove client 1's peer from the hub"
client_kill 1
dropped="peer ${CLIENT_PUB[1]}: lease dropped: the peer is gone; its addresses are quarantined for ${QUARANTINE}s"
check "server dropped the lease of the removed peer" wait_for -t 5 server_logged "$dropped"
dropped_at=$SECONDS
check "no peer on the hub holds $POOL4" not grep -qF " $POOL4" <(hub_allowed_ips)

client_has_ip6() {
	[ -n "$(client_addr6 2)" ]
}

client_start 2
wait_for -t 10 client_has_ip6 || die "client 2 got no IPv6 address"
say "client 2: $(client_addrs 2)"
check "client 2 has an IPv6 address from $POOL6" host6_in "$(client_addr6 2)" "$POOL6"
check "client 2's IPv6 address is not client 1's quarantined one" \
	test "$(client_addr6 2)" != "$old6"

# For about 5 s, and within the quarantine: no IPv4 address for client 2.
leaked=
end=$((SECONDS + 5))
while [ "$SECONDS" -lt "$end" ]; do
	[ -n "$(client_addr4 2)" ] && leaked="client 2 has $(client_addr4 2)"
	hub_peer_has 2 "$POOL4" && leaked="the hub gave client 2's peer $POOL4"
	[ -n "$leaked" ] && break
	sleep 0.2
done
check_eq "during the quarantine, $POOL4 is not handed out" "" "$leaked"
check "the quarantine did not end early" \
	not server_logged "quarantine over for"
check "client 2's log says why it has no IPv4 address" \
	grep -qiE 'no IPv4 address from the server: ' "${CLIENT_LOG[2]}"

check "server logged the end of the quarantine" \
	wait_for -t 10 server_logged "quarantine over for 2 addresses; they return to the pools"
waited=$((SECONDS - dropped_at))
check "the quarantine lasted about ${QUARANTINE}s (${waited}s)" \
	test "$waited" -ge $((QUARANTINE - 1))

client_has_pool4() {
	[ "$(client_addr4 2)" = "$POOL4" ]
}

kill -HUP "${CLIENT_PID[2]}"
check "after the quarantine, client 2 gets $POOL4" wait_for -t 5 client_has_pool4
check "hub: client 2's peer has $POOL4" hub_peer_has 2 "$POOL4"
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
