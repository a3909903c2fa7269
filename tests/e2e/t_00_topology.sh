#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The test bed itself, without the daemons: the hub and two clients shake
# hands over wireguard-go and each client reaches the hub's fe80:: from its
# link-local /128. When this fails, the other tests cannot mean anything.
# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

e2e_init t_00_topology
topology_create 2

check "hub forwards IPv6" \
	test "$(ip netns exec "$HUB_NS" sysctl -n net.ipv6.conf.all.forwarding)" = 1
check "hub forwards IPv4" \
	test "$(ip netns exec "$HUB_NS" sysctl -n net.ipv4.ip_forward)" = 1
hub_has_fe80() {
	ip -n "$HUB_NS" -o -6 addr show dev "$HUB_IF" | grep -q ' fe80::/64 '
}

# ping_hub N: client N pings fe80:: from its own link-local /128.
ping_hub() {
	ip netns exec "${CLIENT_NS[$1]}" ping -n -q -c 2 -i 0.2 -W 2 \
		-I "${CLIENT_LL[$1]}%${CLIENT_IF[$1]}" "fe80::%${CLIENT_IF[$1]}" >/dev/null
}

check "hub interface has fe80::/64" hub_has_fe80
for n in 1 2; do
	check "client $n reaches the hub's fe80:: from ${CLIENT_LL[$n]}" ping_hub "$n"
	check "hub peer of client $n is exactly ${CLIENT_LL[$n]}/128" \
		test "$(hub_peer_allowed_ips "$n")" = "${CLIENT_LL[$n]}/128"
	check "client $n has the hub as peer with fe80::/128" \
		test "$(client_hub_allowed_ips "$n")" = fe80::/128
done
check "each interface has its own UAPI socket" \
	test -S "$WG_SOCK_DIR/$HUB_IF.sock" -a -S "$WG_SOCK_DIR/${CLIENT_IF[1]}.sock" \
	-a -S "$WG_SOCK_DIR/${CLIENT_IF[2]}.sock"
check_eq "ip6_expand spells addresses out" \
	fe80:0000:0000:0000:0000:0000:0001:000a "$(ip6_expand fe80::1:a/128)"
e2e_finish
