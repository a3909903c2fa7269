#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The client's side of the mesh, with no NAT in the way: the hub's
# namespace routes between the clients' links, so each client reaches the
# others at the endpoint the hub sees. Clients 1 and 2 join the hub's mesh
# and end up direct, each with the other as a peer holding its /32 and
# /128, and their pings no longer cross the hub's WireGuard; client 3 runs
# with --no-mesh and stays relayed. The record of added peers, show and
# show --json tell what happened. A peer the administrator put on client 1
# is never touched. Renewals and the release get through while a poll is
# held, and the paths outlive a restart of the hub's server. Killed, client 1 leaves its mesh peer behind, and
# removes it when it starts again; stopped, client 2 removes its peers and
# its record, and client 1 drops client 2.
#
# Log lines this test reads (client/mesh.c):
#   "joining the hub's mesh on IFACE"
#   "removed N mesh peers an earlier run left on IFACE"
#   "mesh: the hub answers again"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.86.0.0/24
POOL6=fd86::/64

e2e_init t_86_mesh_client
topology_create 3
hub_route "$POOL4" "$POOL6"
# The clients' links, each a /30 with the hub, reach each other through
# the hub's namespace: a router, not the hub's WireGuard.
for n in 1 2 3; do
	ip -n "${CLIENT_NS[$n]}" route add 192.0.2.0/24 via "192.0.2.$((4 * n + 1))" ||
		die "cannot route the other clients' links from client $n"
done
# An administrator's peer on client 1, which the mesh never touches.
wg_key admin ADMIN_PUB
ip netns exec "${CLIENT_NS[1]}" wg set "${CLIENT_IF[1]}" peer "$ADMIN_PUB" \
	allowed-ips 10.123.0.0/24 || die "cannot add the administrator's peer to client 1"

server_start --mesh --pool "$POOL4" --pool "$POOL6"
client_start 1
client_start 2
client_start 3 --no-mesh
for n in 1 2 3; do
	client_wait_lease "$n" || die "client $n got no IPv4 and IPv6 lease"
done

# client_allowed_ips N KEY: the allowed-IPs of peer KEY on client N.
client_allowed_ips() {
	ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" allowed-ips |
		awk -v key="$2" '$1 == key { for (i = 2; i <= NF; i++) print $i }'
}

client_has_peer() {
	ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" peers | grep -qxF "$2"
}

# direct A B: client A has client B as a peer, with B's lease on it.
direct() {
	local list
	list=$(client_allowed_ips "$1" "${CLIENT_PUB[$2]}")
	grep -qxF "$(client_addr4 "$2")" <<<"$list" && grep -qxF "$(client_addr6 "$2")" <<<"$list"
}

check "client 1 joined the mesh" grep -q "joining the hub's mesh on ${CLIENT_IF[1]}" \
	"${CLIENT_LOG[1]}"
check "client 1 is direct to client 2" wait_for -t 30 direct 1 2
check "client 2 is direct to client 1" wait_for -t 10 direct 2 1

# The hub's counters for client 1's peer: a few hundred bytes of keepalives
# and long polls may pass, 100 pings of 1000 bytes may not.
hub_rx_1() {
	ip netns exec "$HUB_NS" wg show "$HUB_IF" transfer |
		awk -v key="${CLIENT_PUB[1]}" '$1 == key { print $2 + $3 }'
}
before=$(hub_rx_1)
ip netns exec "${CLIENT_NS[1]}" ping -n -q -c 100 -i 0.01 -s 1000 -W 2 \
	"$(client_addr4 2 | cut -d/ -f1)" >"$E2E_TMP/ping" 2>&1
check "client 1 reaches client 2 directly: all 100 pings answered" \
	grep -q " 100 received" "$E2E_TMP/ping"
after=$(hub_rx_1)
check "the hub's WireGuard carried less than 20000 bytes of it ($((after - before)))" \
	test $((after - before)) -lt 20000

# --no-mesh: client 3 asks for no directory, and so is in none.
check "client 3 has the hub as its only peer" test \
	"$(ip netns exec "${CLIENT_NS[3]}" wg show "${CLIENT_IF[3]}" peers | wc -l)" -eq 1
check "client 1 does not have client 3 as a peer" not client_has_peer 1 "${CLIENT_PUB[3]}"
check "client 3 still reaches client 1 through the hub" \
	ping_from 3 "$(client_addr4 1 | cut -d/ -f1)"

check "the administrator's peer on client 1 is untouched" test \
	"$(client_allowed_ips 1 "$ADMIN_PUB")" = 10.123.0.0/24
check "client 1's record holds client 2's key" \
	grep -qxF "${CLIENT_PUB[2]}" "$E2E_TMP/client1-state/${CLIENT_IF[1]}.mesh"
check "client 1's record does not hold the administrator's key" \
	not grep -qxF "$ADMIN_PUB" "$E2E_TMP/client1-state/${CLIENT_IF[1]}.mesh"

# show, within the second it takes the status file to follow.
show_1() {
	ip netns exec "${CLIENT_NS[1]}" "$CLIENT_BIN" show "${CLIENT_IF[1]}" \
		--state-dir "$E2E_TMP/client1-state" "$@"
}
shows_direct() {
	show_1 | grep -A3 -F "mesh peer: ${CLIENT_PUB[2]}" | grep -q "path: direct via 192.0.2.10:"
}
check "show lists client 2 as direct via its link's address" wait_for -t 3 shows_direct
show_1 --json >"$E2E_TMP/show.json"
check "show --json is JSON" jq -e . "$E2E_TMP/show.json" >/dev/null
check_eq "show --json: client 2's path" direct \
	"$(jq -r --arg k "${CLIENT_PUB[2]}" '.mesh.peers[] | select(.key == $k) | .path' \
		"$E2E_TMP/show.json")"

# ---- the lease and the poll take turns on the one address pair ----
mark=$(log_mark "${CLIENT_LOG[1]}")
renewed_1() {
	log_since "${CLIENT_LOG[1]}" "$mark" | grep -q '^renewed: '
}
kill -HUP "${CLIENT_PID[1]}"
check "client 1 renews while it holds a poll" wait_for -t 5 renewed_1
check "client 1 is still direct to client 2" direct 1 2

# ---- the hub's server restarts: the paths stay, the polls come back ----
mark=$(log_mark "${CLIENT_LOG[1]}")
server_stop 5 || die "the server did not stop"
sleep 2
check "with the hub's server down, client 1 is still direct to client 2" direct 1 2
server_start --mesh --pool "$POOL4" --pool "$POOL6"
answers_again_1() {
	log_since "${CLIENT_LOG[1]}" "$mark" | grep -q "mesh: the hub answers again"
}
check "client 1 polls the restarted hub" wait_for -t 40 answers_again_1
check "client 1 is still direct to client 2" direct 1 2

# ---- killed: the peer it added stays, and goes when it starts again ----
client_kill 1
check "killed, client 1 left client 2 as a peer" client_has_peer 1 "${CLIENT_PUB[2]}"
mark=$(log_mark "${CLIENT_LOG[1]}")
client_start 1
cleaned_1() {
	log_since "${CLIENT_LOG[1]}" "$mark" |
		grep -q "removed 1 mesh peers an earlier run left on ${CLIENT_IF[1]}"
}
check "started again, client 1 removed what it left" wait_for -t 5 cleaned_1
check "client 1 is direct to client 2 again" wait_for -t 30 direct 1 2
check "the administrator's peer on client 1 is still untouched" test \
	"$(client_allowed_ips 1 "$ADMIN_PUB")" = 10.123.0.0/24

# ---- stopped: its peers and its record go ----
client_stop 2
rc=$?
check_eq "client 2 exits 0 on SIGTERM" 0 "$rc"
check "client 2 told the hub of its release" \
	wait_for -t 3 grep -q "peer ${CLIENT_PUB[2]}: released" "$SERVER_LOG"
check "client 2 removed client 1 from its device" not client_has_peer 2 "${CLIENT_PUB[1]}"
check "client 2 removed its record" test ! -e "$E2E_TMP/client2-state/${CLIENT_IF[2]}.mesh"
check "client 2 removed its status file" \
	test ! -e "$E2E_TMP/client2-state/${CLIENT_IF[2]}.mesh-status"
check "client 1 dropped client 2 once it left the directory" \
	wait_for -t 10 not client_has_peer 1 "${CLIENT_PUB[2]}"
check "client 1 keeps its hub and the administrator's peer" test \
	"$(ip netns exec "${CLIENT_NS[1]}" wg show "${CLIENT_IF[1]}" peers | wc -l)" -eq 2
e2e_finish
