#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The hub's interface goes away and comes back, as when its wireguard-go
# dies, or on a reboot. Two clients hold leases (60 s). Stopping the hub's
# wireguard-go deletes the interface: the server exits with status 71. The
# interface is made again, with the same key, port and fe80::/64, and the
# client peers are re-added with their link-local allowed-IPs and endpoints
# only (as a saved configuration would restore them). The restarted server
# puts the leased addresses back into the allowed-IPs from its journal
# before it listens, so the clients, which know nothing of this and renew
# only after 30 s, reach each other again at once.
#
# The re-added peers get a persistent keepalive: the hub then starts the
# handshakes itself, instead of the test waiting about 15 s for the
# clients' wireguard-go to notice that the hub forgot their old keypairs.
#
# Log lines this test reads (server/engine.c, server/restore.c):
#   "interface IFACE was deleted; exiting ..."
#   "journal PATH: restored N leases, ..."
#   "reconcile: peer KEY: re-added ADDR"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.85.0.0/24
POOL6=fd85::/64
SERVER_OPTS=(--pool "$POOL4" --pool "$POOL6" --lease-time 60)

e2e_init t_85_hub_recreate
topology_create 2
hub_route "$POOL4" "$POOL6"
server_start "${SERVER_OPTS[@]}"
client_start 1
client_start 2
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
client_wait_lease 2 || die "client 2 got no IPv4 and IPv6 lease"
a4=$(client_addr4 1)
a6=$(client_addr6 1)
b4=$(client_addr4 2)
b6=$(client_addr6 2)
say "client 1: $a4 $a6, client 2: $b4 $b6"
check "set-up: client 1 pings client 2" ping_from 1 "${b4%/*}"

# The clients' endpoints as the hub saw them, to re-add the peers with.
declare -a endpoint
for n in 1 2; do
	endpoint[n]=$(ip netns exec "$HUB_NS" wg show "$HUB_IF" endpoints |
		awk -v key="${CLIENT_PUB[$n]}" '$1 == key { print $2 }')
	case ${endpoint[n]} in
	*:*) ;;
	*) die "the hub has no endpoint for client $n" ;;
	esac
done

# ---- the interface goes away ----
server_mark=$(log_mark "$SERVER_LOG")
hub_iface_delete
server_wait_exit 5
rc=$?
check_eq "server exits with status 71 when its interface is deleted" 71 "$rc"
check "server logged why it exited" grep -qF "interface $HUB_IF was deleted; exiting" \
	<(log_since "$SERVER_LOG" "$server_mark")

# ---- and comes back, without the leases ----
hub_iface_up
for n in 1 2; do
	ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "${CLIENT_PUB[$n]}" \
		allowed-ips "${CLIENT_LL[$n]}/128" endpoint "${endpoint[n]}" persistent-keepalive 1 ||
		die "cannot re-add client $n as a peer of the hub"
done
hub_route "$POOL4" "$POOL6"
check "set-up: the new interface forwards IPv6, as the first did" \
	test "$(ip netns exec "$HUB_NS" sysctl -n "net.ipv6.conf.$HUB_IF.forwarding")" = 1
for n in 1 2; do
	check_eq "set-up: client $n's peer on the new interface has only its link-local" \
		"${CLIENT_LL[$n]}/128" "$(hub_peer_allowed_ips "$n")"
done

server_mark=$(log_mark "$SERVER_LOG")
server_start "${SERVER_OPTS[@]}"
log=$(log_since "$SERVER_LOG" "$server_mark")
# Read at once: the clients renew only after about half of the 60 s lease.
check "as soon as the server listens, client 1's peer has $a4 and $a6 again" \
	hub_peer_has 1 "$a4" "$a6"
check "as soon as the server listens, client 2's peer has $b4 and $b6 again" \
	hub_peer_has 2 "$b4" "$b6"
check "server restored both leases from its journal" \
	grep -qF "journal $(hub_journal): restored 2 leases" <<<"$log"
for addr in "$a4" "$a6"; do
	check "server logged re-adding $addr to client 1's peer" \
		grep -qF "reconcile: peer ${CLIENT_PUB[1]}: re-added $addr" <<<"$log"
done
for addr in "$b4" "$b6"; do
	check "server logged re-adding $addr to client 2's peer" \
		grep -qF "reconcile: peer ${CLIENT_PUB[2]}: re-added $addr" <<<"$log"
done

check "client 1 pings client 2 at ${b4%/*}" wait_for -t 10 ping_from 1 "${b4%/*}"
check "client 1 pings client 2 at ${b6%/*}" ping_from 1 "${b6%/*}"
check "client 2 pings client 1 at ${a4%/*}" ping_from 2 "${a4%/*}"
check "client 2 pings client 1 at ${a6%/*}" ping_from 2 "${a6%/*}"
log=$(log_since "$SERVER_LOG" "$server_mark")
check "no client renewed meanwhile: the journal alone restored the leases" \
	not grep -qE ': (renewed|granted) ' <<<"$log"
for n in 1 2; do
	check "client $n still runs with its lease" pid_alive "${CLIENT_PID[$n]}"
done
check_eq "client 1 keeps its addresses" "$a4 $a6" "$(client_addr4 1) $(client_addr6 1)"
check_eq "client 2 keeps its addresses" "$b4 $b6" "$(client_addr4 2) $(client_addr6 2)"
e2e_finish
