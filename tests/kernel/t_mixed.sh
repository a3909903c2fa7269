#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A mixed setup: the hub and client 1 on kernel WireGuard, client 2 on
# wireguard-go. Both clients lease, the hub's allowed-IPs carry both leases,
# the clients reach each other through the hub, and both release on
# SIGTERM. Needs a kernel with WireGuard; tests/kernel/ runs it in a VM.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"

POOL4=10.89.0.0/24
POOL6=fd89::/64

e2e_init t_mixed
KERNEL_WG=1
hub_create
client_create 1
KERNEL_WG=0
client_create 2
hub_route "$POOL4" "$POOL6"

# kind N: "kernel" or "userspace", by how client N's interface is driven.
kind() {
	if [ -S "$WG_SOCK_DIR/${CLIENT_IF[$1]}.sock" ]; then
		echo userspace
	elif ip -n "${CLIENT_NS[$1]}" -d link show dev "${CLIENT_IF[$1]}" | grep -qw wireguard; then
		echo kernel
	fi
}
check_eq "the hub's interface is a kernel one" wireguard \
	"$(ip -n "$HUB_NS" -d link show dev "$HUB_IF" | grep -ow wireguard | head -n 1)"
check_eq "client 1's interface is a kernel one" kernel "$(kind 1)"
check_eq "client 2's interface is wireguard-go's" userspace "$(kind 2)"

server_start --pool "$POOL4" --pool "$POOL6"
check "server drives the hub through the kernel" \
	grep -q "kernel WireGuard" "$SERVER_LOG"
client_start 1
client_start 2
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
client_wait_lease 2 || die "client 2 got no IPv4 and IPv6 lease"

for n in 1 2; do
	a4=$(client_addr4 "$n")
	a6=$(client_addr6 "$n")
	say "client $n ($(kind "$n")): $(client_addrs "$n")"
	check "client $n: IPv4 $a4 is a /32 from $POOL4" host4_in "$a4" "$POOL4"
	check "client $n: IPv6 $a6 is a /128 from $POOL6" host6_in "$a6" "$POOL6"
	check "hub: peer of client $n has $a4 and $a6" hub_peer_has "$n" "$a4" "$a6"
	check "hub: peer of client $n keeps its link-local" \
		hub_peer_has "$n" "${CLIENT_LL[$n]}/128"
	check "client $n: pushed route $POOL4 in the hub peer's allowed-IPs" \
		client_hub_peer_has "$n" "$POOL4"
done

# hub_peer_lacks N CIDR...: whether client N's peer on the hub has no CIDR.
hub_peer_lacks() {
	local n=$1 cidr
	shift
	for cidr in "$@"; do
		! hub_peer_has "$n" "$cidr" || return 1
	done
}

for pair in "1 2" "2 1"; do
	read -r from to <<<"$pair"
	b4=$(client_addr4 "$to")
	b6=$(client_addr6 "$to")
	check "client $from pings client $to at ${b4%/*}" ping_from "$from" "${b4%/*}"
	check "client $from pings client $to at ${b6%/*}" ping_from "$from" "${b6%/*}"
done

for n in 2 1; do
	a4=$(client_addr4 "$n")
	a6=$(client_addr6 "$n")
	client_stop "$n"
	check_eq "client $n exits 0 on SIGTERM" 0 "$?"
	check "hub dropped $a4 and $a6 from client $n's peer" \
		wait_for -t 5 hub_peer_lacks "$n" "$a4" "$a6"
	check "hub keeps only client $n's link-local" test \
		"$(hub_peer_allowed_ips "$n" | tr '\n' ' ')" = "${CLIENT_LL[$n]}/128 "
done
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
