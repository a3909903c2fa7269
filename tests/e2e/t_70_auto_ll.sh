#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Nobody configures a link-local address: the clients have none, not even
# the kernel's automatic one, and the hub's peers have no allowed-IPs. With
# --auto-ll the server gives each peer the link-local /128 derived from its
# public key, the client adds the same address to itself, and leases work.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.93.0.0/24
POOL6=fd93::/64

e2e_init t_70_auto_ll
hub_create
client_create 1 none
client_create 2 none
hub_route "$POOL4" "$POOL6"

# The link-local addresses of client N's interface, one a line.
client_lls() {
	ip -n "${CLIENT_NS[$1]}" -o -6 addr show dev "${CLIENT_IF[$1]}" scope link |
		awk '{ print $4 }'
}

# has_ll128 EXPANDED-ADDR: whether stdin lists that address as a /128.
has_ll128() {
	local ip
	while read -r ip; do
		case $ip in
		*:*/128) [ "$(ip6_expand "$ip")" = "$1" ] && return 0 ;;
		esac
	done
	return 1
}

hub_peer_has_ll() {
	hub_peer_allowed_ips "$1" | has_ll128 "$2"
}

client_has_ll() {
	client_lls "$1" | has_ll128 "$2"
}

for n in 1 2; do
	check_eq "set-up: client $n has no link-local address" "" "$(client_lls "$n")"
	check_eq "set-up: client $n's peer on the hub has no allowed-IPs" "" \
		"$(hub_peer_allowed_ips "$n")"
done

server_start --auto-ll --pool "$POOL4" --pool "$POOL6"
for n in 1 2; do
	ll=$(derived_ll "${CLIENT_PUB[$n]}")
	check "server gave client $n's peer its derived link-local $ll" \
		wait_for -t 5 hub_peer_has_ll "$n" "$ll"
done

client_start 1
client_start 2
for n in 1 2; do
	ll=$(derived_ll "${CLIENT_PUB[$n]}")
	check "client $n leased IPv4 and IPv6 addresses" client_wait_lease "$n"
	say "client $n: $(client_addrs "$n")"
	check "client $n added its derived link-local $ll" client_has_ll "$n" "$ll"
	check "client $n: IPv4 is a /32 from $POOL4" host4_in "$(client_addr4 "$n")" "$POOL4"
	check "client $n: IPv6 is a /128 from $POOL6" host6_in "$(client_addr6 "$n")" "$POOL6"
	check "hub: client $n's peer has both lease addresses" \
		hub_peer_has "$n" "$(client_addr4 "$n")" "$(client_addr6 "$n")"
done
peer4=$(client_addr4 2)
peer6=$(client_addr6 2)
check "client 1 pings client 2 at ${peer4%/*} through the hub" ping_from 1 "${peer4%/*}"
check "client 1 pings client 2 at ${peer6%/*} through the hub" ping_from 1 "${peer6%/*}"
e2e_finish
