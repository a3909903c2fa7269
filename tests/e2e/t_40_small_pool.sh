#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# An IPv4 pool of one address: the first client gets it and an IPv6
# address; the second gets IPv6 only, and its log says the IPv4 address
# was unavailable.
#
# Log line this test reads (client/main.c), with the server's errmsg:
#   "no IPv4 address from the server: No IPv4 address is free"
# (or the protocol's default text for errno 3, "Chosen IP(s) unavailable").

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.98.0.5/32
POOL6=fd98::/64

e2e_init t_40_small_pool
topology_create 2
server_start --pool "$POOL4" --pool "$POOL6"
client_start 1
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
check_eq "client 1 has the pool's only IPv4 address" "$POOL4" "$(client_addr4 1)"
check "client 1 has an IPv6 address from $POOL6" host6_in "$(client_addr6 1)" "$POOL6"

client_has_ip6() {
	[ -n "$(client_addr6 "$1")" ]
}

client_start 2
wait_for -t 15 client_has_ip6 2 || die "client 2 got no IPv6 address"
# Give a wrong IPv4 grant time to show up.
sleep 2
say "client 2: $(client_addrs 2)"
check "client 2 has an IPv6 address from $POOL6" host6_in "$(client_addr6 2)" "$POOL6"
check_eq "client 2 has no IPv4 address" "" "$(client_addr4 2)"
check_eq "hub: client 2's peer has no IPv4 allowed-IP" "" \
	"$(hub_peer_allowed_ips 2 | grep -v :)"
check "hub: client 1's peer keeps $POOL4" hub_peer_has 1 "$POOL4"
check "client 2's log says why it has no IPv4 address" \
	grep -qiE 'no IPv4 address from the server: .*(free|unavailable)' "${CLIENT_LOG[2]}"
check "client 2 keeps running" pid_alive "${CLIENT_PID[2]}"
e2e_finish
