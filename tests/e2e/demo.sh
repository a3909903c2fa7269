#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# make demo: a wg-dynamic hub and two clients in throwaway network
# namespaces, over wireguard-go. Shows the leases, the hub's allowed-IPs and
# client 1 pinging client 2 through the hub, then removes everything, also
# on Ctrl-C.
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

heading "Building a hub and two clients in network namespaces"
topology_create 2
hub_route "$POOL4" "$POOL6"
printf '  %-9s %-20s %-14s %s\n' "" namespace interface "link-local" \
	hub "$HUB_NS" "$HUB_IF" "fe80::/64 (forwarding on)" \
	"client 1" "${CLIENT_NS[1]}" "${CLIENT_IF[1]}" "${CLIENT_LL[1]}/128" \
	"client 2" "${CLIENT_NS[2]}" "${CLIENT_IF[2]}" "${CLIENT_LL[2]}/128"
say "  Each client reaches the hub over a veth pair (192.0.2.0/24) and"
say "  has the hub as its WireGuard peer with allowed-IPs fe80::/128."

heading "Starting wg-dynamic-server -v --pool $POOL4 --pool $POOL6 $HUB_IF on the hub"
server_start --pool "$POOL4" --pool "$POOL6"
say "  listening on [fe80::%$HUB_IF]:970"

heading "Starting wg-dynamic-client -f -v IFACE on both clients"
client_start 1
client_start 2
for n in 1 2; do
	client_wait_lease "$n" 20 || die "client $n got no lease"
	printf '  client %s: %s\n' "$n" "$(grep -E '^(bound|renewed): ' "${CLIENT_LOG[$n]}" | tail -n 1)"
done

heading "Leased addresses (ip -br addr show dev IFACE)"
for n in 1 2; do
	printf '  client %s: %s\n' "$n" "$(client_addrs "$n" | tr -s ' ')"
done

heading "The hub's allowed-IPs (wg show $HUB_IF allowed-ips)"
hub_allowed_ips | awk -v k1="${CLIENT_PUB[1]}" -v k2="${CLIENT_PUB[2]}" '{
	who = $1 == k1 ? "client 1" : $1 == k2 ? "client 2" : $1
	$1 = ""
	printf "  %s:%s\n", who, $0
}'

peer4=$(client_addr4 2)
peer6=$(client_addr6 2)
heading "Client 1 pings client 2 at ${peer4%/*} through the hub"
ip netns exec "${CLIENT_NS[1]}" ping -n -c 3 -i 0.3 -W 2 "${peer4%/*}" | sed 's/^/  /'
ok4=${PIPESTATUS[0]}
heading "Client 1 pings client 2 at ${peer6%/*} through the hub"
ip netns exec "${CLIENT_NS[1]}" ping -n -c 3 -i 0.3 -W 2 "${peer6%/*}" | sed 's/^/  /'
ok6=${PIPESTATUS[0]}

heading "Server log"
sed 's/^/  /' "$SERVER_LOG"

if [ "$ok4" -ne 0 ] || [ "$ok6" -ne 0 ]; then
	die "a ping through the hub failed"
fi
