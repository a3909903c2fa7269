#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Two clients each lease an IPv4 and an IPv6 address from the server's
# pools. The addresses are on the clients' interfaces and in the hub's
# allowed-IPs for their peers, and the clients reach each other through the
# hub over both families.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.99.0.0/24
POOL6=fd99::/64

e2e_init t_10_lease
topology_create 2
hub_route "$POOL4" "$POOL6"
server_start --pool "$POOL4" --pool "$POOL6"

# A forwarding interface would make fe80:: anycast, which TCP cannot reach.
check "server turned IPv6 forwarding off on $HUB_IF alone" test \
	"$(ip netns exec "$HUB_NS" sysctl -n "net.ipv6.conf.$HUB_IF.forwarding" \
		net.ipv6.conf.all.forwarding | tr '\n' ' ')" = "0 1 "
check "server logged that it did" grep -q "forwarding off on $HUB_IF" "$SERVER_LOG"

client_start 1
client_start 2
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
client_wait_lease 2 || die "client 2 got no IPv4 and IPv6 lease"

for n in 1 2; do
	a4=$(client_addr4 "$n")
	a6=$(client_addr6 "$n")
	say "client $n: $(client_addrs "$n")"
	check "client $n: IPv4 $a4 is a /32 from $POOL4" host4_in "$a4" "$POOL4"
	check "client $n: IPv6 $a6 is a /128 from $POOL6" host6_in "$a6" "$POOL6"
	check "hub: peer of client $n has $a4" hub_peer_has "$n" "$a4"
	check "hub: peer of client $n has $a6" hub_peer_has "$n" "$a6"
	check "hub: peer of client $n keeps its link-local" \
		hub_peer_has "$n" "${CLIENT_LL[$n]}/128"
	# Without --route the server pushes its pools as routes.
	for r in "$POOL4" "$POOL6"; do
		check "client $n: pushed route $r on its interface" client_has_route "$n" "$r"
		check "client $n: pushed route $r in the hub peer's allowed-IPs" \
			client_hub_peer_has "$n" "$r"
	done
done
check "the clients' IPv4 addresses differ" \
	test "$(client_addr4 1)" != "$(client_addr4 2)"
check "the clients' IPv6 addresses differ" \
	test "$(client_addr6 1)" != "$(client_addr6 2)"

peer4=$(client_addr4 2)
peer6=$(client_addr6 2)
check "client 1 pings client 2 at ${peer4%/*} through the hub" ping_from 1 "${peer4%/*}"
check "client 1 pings client 2 at ${peer6%/*} through the hub" ping_from 1 "${peer6%/*}"
peer4=$(client_addr4 1)
peer6=$(client_addr6 1)
check "client 2 pings client 1 at ${peer4%/*} through the hub" ping_from 2 "${peer4%/*}"
check "client 2 pings client 1 at ${peer6%/*} through the hub" ping_from 2 "${peer6%/*}"
check "server logged both grants" test "$(grep -c ': granted ip4 ' "$SERVER_LOG")" -ge 2
e2e_finish
