#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# make demo: a wg-dynamic hub and three clients in throwaway network
# namespaces, over wireguard-go. Shows the leases, the hub's allowed-IPs,
# the mesh: client 1 pinging client 2 directly, with the hub's WireGuard
# counters standing still to prove it, and client 3 (--no-mesh) pinging
# through the hub; then removes everything, also on Ctrl-C.
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.99.0.0/24
POOL6=fd99::/64

heading() {
	printf '\n== %s\n' "$*"
}

# Runs when the demo ends, however it ends.
e2e_before_cleanup() {
	heading "Tearing down: stopping the daemons and wireguard-go, deleting the namespaces"
}

e2e_init demo

heading "Building a hub and three clients in network namespaces"
topology_create 3
hub_route "$POOL4" "$POOL6"
printf '  %-9s %-20s %-14s %s\n' "" namespace interface "link-local" \
	hub "$HUB_NS" "$HUB_IF" "fe80::/64 (forwarding on)" \
	"client 1" "${CLIENT_NS[1]}" "${CLIENT_IF[1]}" "${CLIENT_LL[1]}/128" \
	"client 2" "${CLIENT_NS[2]}" "${CLIENT_IF[2]}" "${CLIENT_LL[2]}/128" \
	"client 3" "${CLIENT_NS[3]}" "${CLIENT_IF[3]}" "${CLIENT_LL[3]}/128"
say "  Each client reaches the hub over a veth pair (192.0.2.0/24) and"
say "  has the hub as its WireGuard peer with allowed-IPs fe80::/128."
say "  The hub's namespace routes between the veth pairs, so the clients"
say "  can also reach each other outside the tunnel, as hosts on the"
say "  internet can."
for n in 1 2 3; do
	ip -n "${CLIENT_NS[$n]}" route add 192.0.2.0/24 via "192.0.2.$((4 * n + 1))" ||
		die "cannot route the other clients' links from client $n"
done

heading "Starting wg-dynamic-server -v --mesh --pool $POOL4 --pool $POOL6 $HUB_IF on the hub"
server_start --mesh --pool "$POOL4" --pool "$POOL6"
say "  listening on [fe80::%$HUB_IF]:970"

heading "Starting wg-dynamic-client -f -v IFACE on clients 1 and 2, with --no-mesh on client 3"
client_start 1
client_start 2
client_start 3 --no-mesh
for n in 1 2 3; do
	client_wait_lease "$n" 20 || die "client $n got no lease"
	printf '  client %s: %s\n' "$n" "$(grep -E '^(bound|renewed): ' "${CLIENT_LOG[$n]}" | tail -n 1)"
done

heading "Leased addresses (ip -br addr show dev IFACE)"
for n in 1 2 3; do
	printf '  client %s: %s\n' "$n" "$(client_addrs "$n" | tr -s ' ')"
done

heading "The hub's allowed-IPs (wg show $HUB_IF allowed-ips)"
hub_allowed_ips | awk -v k1="${CLIENT_PUB[1]}" -v k2="${CLIENT_PUB[2]}" -v k3="${CLIENT_PUB[3]}" '{
	who = $1 == k1 ? "client 1" : $1 == k2 ? "client 2" : $1 == k3 ? "client 3" : $1
	$1 = ""
	printf "  %s:%s\n", who, $0
}'

# hub_bytes N: what the hub's WireGuard carried for client N, both ways.
hub_bytes() {
	ip netns exec "$HUB_NS" wg show "$HUB_IF" transfer |
		awk -v key="${CLIENT_PUB[$1]}" '$1 == key { print $2 + $3 }'
}
# direct N M: whether client N sends to client M directly: M's peer on N
# holds M's leased IPv4.
direct() {
	ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" allowed-ips |
		grep -F "${CLIENT_PUB[$2]}" | grep -qF "$(client_addr4 "$2")"
}
# ping_counted FROM TO-ADDR: 20 pings, and the hub's bytes for client FROM
# before and after.
ping_counted() {
	local before after
	before=$(hub_bytes "$1")
	ip netns exec "${CLIENT_NS[$1]}" ping -n -q -c 20 -i 0.05 -W 2 "$2" | sed 's/^/  /'
	ok=${PIPESTATUS[0]}
	after=$(hub_bytes "$1")
	printf '  the hub carried %s bytes for client %s meanwhile\n' "$((after - before))" "$1"
	return "$ok"
}

heading "The mesh: clients 1 and 2 learn each other from the hub and go direct"
if ! wait_for -t 20 direct 1 2 || ! wait_for -t 10 direct 2 1; then
	die "clients 1 and 2 did not go direct"
fi
sleep 1
ip netns exec "${CLIENT_NS[1]}" "$CLIENT_BIN" show "${CLIENT_IF[1]}" \
	--state-dir "$E2E_TMP/client1-state" | sed 's/^/  /'

peer4=$(client_addr4 2)
peer6=$(client_addr6 2)
heading "Client 1 pings client 2 at ${peer4%/*} directly"
ping_counted 1 "${peer4%/*}"
ok4=$?
heading "Client 1 pings client 2 at ${peer6%/*} directly"
ping_counted 1 "${peer6%/*}"
ok6=$?
heading "Client 3 (--no-mesh) pings client 2 at ${peer4%/*} through the hub"
ping_counted 3 "${peer4%/*}"
ok3=$?

heading "The hub's directory (wg-dynamic-server show)"
ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF" 2>&1 | sed 's/^/  /'

heading "Server log"
sed 's/^/  /' "$SERVER_LOG"

if [ "$ok4" -ne 0 ] || [ "$ok6" -ne 0 ] || [ "$ok3" -ne 0 ]; then
	die "a ping failed"
fi
