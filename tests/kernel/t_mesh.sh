#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The mesh on kernel WireGuard: the hub and clients 1 and 2 on kernel
# WireGuard, client 3 on wireguard-go. The hub runs --mesh; its namespace
# routes between the clients' links, so every client can reach the others
# at the endpoints the hub sees. Every pair ends direct: each client holds
# the others as peers with their /32 and /128, added over generic netlink
# or the UAPI socket, and 100 pings between each pair leave the hub's
# WireGuard counters flat. Stopped, a client removes the peers it added.
# Needs a kernel with WireGuard; tests/kernel/ runs it in a VM.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"

POOL4=10.88.0.0/24
POOL6=fd88::/64

e2e_init t_mesh
KERNEL_WG=1
hub_create
client_create 1
client_create 2
KERNEL_WG=0
client_create 3
hub_route "$POOL4" "$POOL6"
for n in 1 2 3; do
	ip -n "${CLIENT_NS[$n]}" route add 192.0.2.0/24 via "192.0.2.$((4 * n + 1))" ||
		die "cannot route the other clients' links from client $n"
done

server_start --mesh --pool "$POOL4" --pool "$POOL6"
for n in 1 2 3; do
	client_start "$n"
done
for n in 1 2 3; do
	client_wait_lease "$n" || die "client $n got no IPv4 and IPv6 lease"
done

# direct N M: client N holds client M's /32 and /128 on M's peer.
direct() {
	local ips
	ips=$(ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" allowed-ips |
		awk -v key="${CLIENT_PUB[$2]}" '$1 == key { $1 = ""; print }')
	[[ " $ips " == *" $(client_addr4 "$2") "* && " $ips " == *" $(client_addr6 "$2") "* ]]
}
# hub_bytes N: the hub's WireGuard traffic with client N, both ways.
hub_bytes() {
	ip netns exec "$HUB_NS" wg show "$HUB_IF" transfer |
		awk -v key="${CLIENT_PUB[$1]}" '$1 == key { print $2 + $3 }'
}

for pair in "1 2" "1 3" "2 3"; do
	read -r a b <<<"$pair"
	check "client $a is direct to client $b" wait_for -t 30 direct "$a" "$b"
	check "client $b is direct to client $a" wait_for -t 10 direct "$b" "$a"
	before=$(( $(hub_bytes "$a") + $(hub_bytes "$b") ))
	ip netns exec "${CLIENT_NS[$a]}" ping -n -q -c 100 -i 0.01 -s 500 -W 2 \
		"$(client_addr4 "$b" | cut -d/ -f1)" >"$E2E_TMP/ping" 2>&1
	check "client $a pings client $b: all 100 answered" grep -q " 100 received" "$E2E_TMP/ping"
	after=$(( $(hub_bytes "$a") + $(hub_bytes "$b") ))
	# 100 relayed pings of 500 bytes would add some 200 kB; keepalives
	# and long polls add a few hundred bytes.
	check "the hub carried under 5000 bytes of it ($((after - before)))" \
		test $((after - before)) -lt 5000
done

client_stop 3
check_eq "client 3 exits 0 on SIGTERM" 0 "$?"
check_eq "client 3 removed the peers it added: the hub is its only peer" 1 \
	"$(ip netns exec "${CLIENT_NS[3]}" wg show "${CLIENT_IF[3]}" peers | wc -l)"
gone_3() {
	! ip netns exec "${CLIENT_NS[1]}" wg show "${CLIENT_IF[1]}" peers | grep -qxF "${CLIENT_PUB[3]}"
}
check "client 1 (kernel) removed client 3 once it left" wait_for -t 10 gone_3
check "client 1 is still direct to client 2" direct 1 2
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
