#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# SIGTERM makes a client release its lease: it removes its addresses and
# exits 0, and the hub drops the lease addresses from the client's peer
# while keeping the peer's link-local /128. The other client's lease stays.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.96.0.0/24
POOL6=fd96::/64

e2e_init t_30_release
topology_create 2
server_start --pool "$POOL4" --pool "$POOL6"
client_start 1
client_start 2
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
client_wait_lease 2 || die "client 2 got no IPv4 and IPv6 lease"
a4=$(client_addr4 1)
a6=$(client_addr6 1)
b4=$(client_addr4 2)
b6=$(client_addr6 2)
say "client 1: $a4 $a6, client 2: $b4 $b6"

client_stop 1
rc=$?
check_eq "client 1 exits 0 on SIGTERM" 0 "$rc"

client_has_none() {
	[ -z "$(client_addr4 1)" ] && [ -z "$(client_addr6 1)" ]
}

hub_dropped_lease() {
	! hub_peer_has 1 "$a4" && ! hub_peer_has 1 "$a6"
}

check "client 1's interface has no leased address left" client_has_none
check_eq "no route to the released IPv6 address is left behind" "" \
	"$(ip -n "${CLIENT_NS[1]}" -6 route show table all | grep -F "${a6%/128}")"
check "client 1's interface keeps its link-local ${CLIENT_LL[1]}" \
	ip -n "${CLIENT_NS[1]}" -o addr show dev "${CLIENT_IF[1]}" to "${CLIENT_LL[1]}/128"
check "client 1 took its pushed routes back off the hub peer" \
	test "$(client_hub_allowed_ips 1)" = fe80::/128
check "hub dropped $a4 and $a6 from client 1's peer" wait_for -t 3 hub_dropped_lease
check_eq "client 1's peer on the hub keeps only its link-local" \
	"${CLIENT_LL[1]}/128" "$(hub_peer_allowed_ips 1 | tr '\n' ' ' | sed 's/ $//')"
check "client 2 keeps $b4 and $b6" \
	test "$(client_addr4 2)" = "$b4" -a "$(client_addr6 2)" = "$b6"
check "hub keeps client 2's lease" hub_peer_has 2 "$b4" "$b6"
check "server logged the release" grep -q "peer ${CLIENT_PUB[1]}: released" "$SERVER_LOG"
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
