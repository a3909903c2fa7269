#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Pools from the hub interface's routes, followed live, and reserved
# addresses. The server gets no --pool: the hub's 10.97.0.1/29 and
# fd97::1/64 make the pools. Of 10.97.0.1-6, .1 is the server's own and
# client 2's peer has the static allowed-IP 10.97.0.2/31, so both leases
# must come from .4, .5 and .6, and differ. A route added while the server
# runs becomes a pool that a client then gets its address from; deleted, it
# takes the pool away, as does the last IPv4 address, which takes the
# routes with it without a notification of their own.
#
# Log lines this test reads (server/engine.c):
#   "pool 10.95.0.0/24 (route)", "pool 10.95.0.0/24 removed with its route"

# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

e2e_init t_45_route_pools
topology_create 2
ip -n "$HUB_NS" addr add 10.97.0.1/29 dev "$HUB_IF" || die "cannot add 10.97.0.1/29"
ip -n "$HUB_NS" addr add fd97::1/64 dev "$HUB_IF" nodad || die "cannot add fd97::1/64"
ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "${CLIENT_PUB[2]}" \
	allowed-ips fe80::1:2/128,10.97.0.2/31 || die "cannot give client 2 a static allowed-IP"

# shellcheck disable=SC2119 # no options: the pools come from routes
server_start
client_start 1
client_start 2
client_wait_lease 1 || die "client 1 got no lease from the route pools"
client_wait_lease 2 || die "client 2 got no lease from the route pools"
a1=$(client_addr4 1)
a2=$(client_addr4 2)
say "client 1: $a1 $(client_addr6 1); client 2: $a2 $(client_addr6 2)"
check "client 1's IPv4 address is neither reserved nor an edge" \
	grep -qxE '10\.97\.0\.[456]/32' <<<"$a1"
check "client 2's IPv4 address is neither reserved nor an edge" \
	grep -qxE '10\.97\.0\.[456]/32' <<<"$a2"
check "the two clients' IPv4 addresses differ" test "$a1" != "$a2"
check "client 1's IPv6 address is from fd97::/64" host6_in "$(client_addr6 1)" fd97::/64
check "hub: client 2 keeps its static 10.97.0.2/31" hub_peer_has 2 10.97.0.2/31

server_logged() {
	grep -qF "$1" "$SERVER_LOG"
}
ip -n "$HUB_NS" route add 10.95.0.0/24 dev "$HUB_IF" || die "cannot add a route"
check "a route added at run time becomes a pool" \
	wait_for -t 5 server_logged "pool 10.95.0.0/24 (route)"

# Leased from at once: the privileged parent, which checks every change
# against the routes as it reads them, must have seen the new route too.
# Client 1 lets its lease go, the /29 goes with the hub's address (a host
# address keeps IPv4 up on the interface), and the client comes back to
# the only IPv4 pool left.
client_stop 1 || die "client 1 did not stop"
ip -n "$HUB_NS" addr add 10.96.0.1/32 dev "$HUB_IF" || die "cannot add 10.96.0.1/32"
ip -n "$HUB_NS" addr del 10.97.0.1/29 dev "$HUB_IF" || die "cannot delete 10.97.0.1/29"
check "the /29 went with its route" \
	wait_for -t 5 server_logged "pool 10.97.0.0/29 removed with its route"
client_start 1
client_wait_lease 1 || die "client 1 got no lease after the pools changed"
check "client 1 now leases from the route added at run time" \
	host4_in "$(client_addr4 1)" 10.95.0.0/24
check "no change was refused by the parent" not server_logged "refused the engine's change"

ip -n "$HUB_NS" route del 10.95.0.0/24 dev "$HUB_IF" || die "cannot delete the route"
check "a route deleted at run time takes its pool away" \
	wait_for -t 5 server_logged "pool 10.95.0.0/24 removed with its route"

# The last IPv4 address takes the interface's IPv4 routes with it, and the
# kernel says nothing of the routes: the server must notice all the same.
ip -n "$HUB_NS" route add 10.93.0.0/24 dev "$HUB_IF" || die "cannot add a route"
check "another route becomes a pool" wait_for -t 5 server_logged "pool 10.93.0.0/24 (route)"
ip -n "$HUB_NS" addr del 10.96.0.1/32 dev "$HUB_IF" || die "cannot delete 10.96.0.1/32"
check "the last IPv4 address going takes the route's pool with it" \
	wait_for -t 5 server_logged "pool 10.93.0.0/24 removed with its route"
e2e_finish
