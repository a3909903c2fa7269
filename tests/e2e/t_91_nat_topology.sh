#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The NAT test bench itself (natlib.sh), without the daemons: plain
# WireGuard peers, set up by hand with wg(8), reach each other directly
# exactly where the NATs should let them and nowhere else. Each client
# first shakes hands with the hub, which learns its public endpoint; then
# pairs of clients add each other with the endpoint the hub saw:
#   easy <-> easy      both send at once: the handshake completes;
#   hard <-> easy      the hard NAT maps each destination to a new port:
#                      nothing arrives either way;
#   hard  -> public    the public side answers the hard NAT's new port;
#   shared pair        over the LAN yes, over the public address no
#                      (no hairpin);
#   dual-stack pair    over IPv6 through the stateful firewalls; nothing
#                      unsolicited reaches them from the internet;
# and a NAT that changes its public address shows up at the hub. The mesh
# tests stand on this: when it fails, they cannot mean anything.
# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=natlib.sh
. "$(dirname "$0")/natlib.sh"

# A failed attempt must have had time for WireGuard's retry, 5 s after
# the first initiation.
NEGATIVE_S=6

e2e_init t_91_nat_topology

e2e_before_cleanup() {
	[ "$E2E_FAILS" -eq 0 ] || nat_dump
}

nat_hub_create
nat_site_easy 1
nat_site_easy 2
nat_site_hard 3
nat_site_easy 4
nat_site_public 5
nat_site_shared 6 7
nat_site_dual 8
nat_site_dual 9

declare -a EP=() PORT=()
for n in 1 2 3 4 5 6 7 8 9; do
	nat_hub_join "$n"
	EP[n]=$(nat_hub_endpoint "$n")
	PORT[n]=$(nat_listen_port "$n")
	# Direct tunnels use 10.77.0.N; the hub routes none of it, so a
	# ping that gets through went directly.
	ip -n "${CLIENT_NS[$n]}" addr add "10.77.0.$n/24" dev "${CLIENT_IF[$n]}" ||
		die "cannot add 10.77.0.$n to client $n"
	say "client $n (${NAT_TYPE[$n]}): listens on ${PORT[$n]}, the hub sees ${EP[$n]}"
done

# What the hub sees is what each NAT should make of it.
for n in 1 2 4 6 7; do
	check_eq "easy NAT: the hub sees client $n at its router's address, its port kept" \
		"${NAT_PUB4[$n]}:${PORT[$n]}" "${EP[$n]}"
done
check_eq "public: the hub sees client 5 at its own address" \
	"${NAT_PUB4[5]}:${PORT[5]}" "${EP[5]}"
for n in 3 8 9; do
	check_eq "hard NAT: the hub sees client $n at its router's address" \
		"${NAT_PUB4[$n]}" "$(nat_ep_addr "${EP[$n]}")"
	check "hard NAT: client $n's port ${PORT[$n]} became another" \
		test "$(nat_ep_port "${EP[$n]}")" != "${PORT[$n]}"
done

# direct A B ENDPOINT: A adds B as a peer at ENDPOINT with B's tunnel
# address; the keepalive makes A send a handshake initiation at once.
direct() {
	ip netns exec "${CLIENT_NS[$1]}" wg set "${CLIENT_IF[$1]}" peer "${CLIENT_PUB[$2]}" \
		endpoint "$3" allowed-ips "10.77.0.$2/32" persistent-keepalive 1 ||
		die "cannot add client $2 as a peer of client $1"
}

undirect() {
	ip netns exec "${CLIENT_NS[$1]}" wg set "${CLIENT_IF[$1]}" peer "${CLIENT_PUB[$2]}" remove ||
		die "cannot remove client $2 from client $1"
}

# pair A B ENDPOINT_OF_B ENDPOINT_OF_A: both sides at once.
pair() {
	direct "$1" "$2" "$3"
	direct "$2" "$1" "$4"
}

both_handshook() {
	nat_handshook "$1" "$2" && nat_handshook "$2" "$1"
}

any_handshook() {
	local p
	for p in "$@"; do
		# shellcheck disable=SC2086 # "A B"
		nat_handshook $p && return 0
	done
	return 1
}

# attempted_only A B: A sent B initiations and received nothing from B.
attempted_only() {
	[ "$(nat_tx "$1" "$2")" -gt 0 ] && [ "$(nat_rx "$1" "$2")" -eq 0 ]
}

# All attempts start together, so the failing ones wait out their time
# side by side.
start=$SECONDS
pair 1 2 "${EP[2]}" "${EP[1]}"
pair 3 4 "${EP[4]}" "${EP[3]}"
pair 3 5 "${EP[5]}" "${EP[3]}"
pair 6 7 "${EP[7]}" "${EP[6]}"
pair 8 9 "[${NAT_PUB6[9]}]:${PORT[9]}" "[${NAT_PUB6[8]}]:${PORT[8]}"

say "1. easy NAT <-> easy NAT"
check "clients 1 and 2 complete a handshake" wait_for -t 8 both_handshook 1 2
before=$(nat_hub_bytes 1 2)
check "client 1 pings client 2 directly" ping_from 1 10.77.0.2
check "client 2 pings client 1 directly" ping_from 2 10.77.0.1
after=$(nat_hub_bytes 1 2)
# At most a passive keepalive of the earlier talk with the hub.
check "the hub's counters for clients 1 and 2 stay flat ($before -> $after)" \
	test "$((after - before))" -lt 100

say "3. hard NAT -> public"
check "clients 3 and 5 complete a handshake" wait_for -t 8 both_handshook 3 5
check "client 3 pings client 5 directly" ping_from 3 10.77.0.5
ep=$(nat_endpoint 5 3)
check_eq "client 5 roamed to client 3's router" "${NAT_PUB4[3]}" "$(nat_ep_addr "$ep")"
check "client 5 answers the hard NAT's new port, not ${EP[3]}" test "$ep" != "${EP[3]}"

say "5. dual-stack pair over IPv6"
check "clients 8 and 9 complete a handshake over IPv6" wait_for -t 8 both_handshook 8 9
check "client 8 pings client 9 directly" ping_from 8 10.77.0.9
check_eq "client 8 reaches client 9 at its IPv6 address" \
	"[${NAT_PUB6[9]}]:${PORT[9]}" "$(nat_endpoint 8 9)"

say "2. hard NAT <-> easy NAT, and 4. shared NAT over its public address"
wait_for -t "$((start + NEGATIVE_S - SECONDS))" any_handshook "3 4" "6 7"
check "clients 3 and 4 complete no handshake in ${NEGATIVE_S} s" not any_handshook "3 4" "4 3"
check "client 3 sent to client 4 and heard nothing" attempted_only 3 4
check "client 4 sent to client 3 and heard nothing" attempted_only 4 3
check "clients 6 and 7 complete no handshake through their router's public address" \
	not any_handshook "6 7" "7 6"
check "client 6 sent to client 7 and heard nothing" attempted_only 6 7
check "client 7 sent to client 6 and heard nothing" attempted_only 7 6

say "4. shared NAT over the LAN"
# Removed and added again: a fresh peer sends its initiation at once.
undirect 6 7
undirect 7 6
pair 6 7 "${NAT_LAN4[7]}:${PORT[7]}" "${NAT_LAN4[6]}:${PORT[6]}"
check "clients 6 and 7 complete a handshake over their LAN" wait_for -t 8 both_handshook 6 7
check "client 6 pings client 7 directly" ping_from 6 10.77.0.7

say "5. nothing unsolicited reaches the dual-stack clients"
ping6_from() {
	ip netns exec "${CLIENT_NS[$1]}" ping -6 -n -q -c 2 -i 0.2 -W 1 "$2" >/dev/null 2>&1
}
check "client 8 pings the public client 5 over IPv6" ping6_from 8 "${NAT_PUB6[5]}"
check "the public client 5 cannot ping client 8 over IPv6" not ping6_from 5 "${NAT_PUB6[8]}"
check "client 1 pings the public client 5" ping_from 1 "${NAT_PUB4[5]}"
check "the public client 5 cannot ping client 1's router" not ping_from 5 "${NAT_PUB4[1]}"

say "nat_break: one way"
nat_break 1 2
rx1=$(nat_rx 1 2) rx2=$(nat_rx 2 1)
check "client 1 cannot ping client 2 with the path broken" not ping_from 1 10.77.0.2
check "client 1 still hears client 2" test "$(nat_rx 1 2)" -gt "$rx1"
# One keepalive may have been under way when the path broke.
check "client 2 hears nothing from client 1" test "$(($(nat_rx 2 1) - rx2))" -le 64
nat_repair 1 2
check "client 1 pings client 2 once repaired" ping_from 1 10.77.0.2

say "6. NAT address change"
old=${NAT_PUB4[1]}
nat_move 1
check "router 1 now maps to another address" test "${NAT_PUB4[1]}" != "$old"
hub_sees_new() {
	nat_ping_hub 1 && [ "$(nat_ep_addr "$(nat_hub_endpoint 1)")" = "${NAT_PUB4[1]}" ]
}
check "the hub sees client 1 at ${NAT_PUB4[1]}" wait_for -t 5 hub_sees_new
nat_move 1
check "and back at $old after the next move" wait_for -t 5 hub_sees_new
e2e_finish
