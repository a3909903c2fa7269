#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The mesh through real NATs (natlib.sh), with the real daemons: the hub
# runs wg-dynamic-server --mesh, every site wg-dynamic-client. One bench
# holds every kind of site at once:
#   public      1, 2   on the internet itself, IPv4 and IPv6
#   easy        3, 4   each behind its own endpoint-independent NAT
#   hard        5, 6   each behind its own NAT with a port per destination
#   shared      7, 8   both behind one easy NAT that does no hairpin
#   dual        9, 10  each behind its own hard IPv4 NAT, IPv6 routed
#                      through a stateful firewall
# Every pair of kinds, and each kind with itself, is then checked for the
# path docs/mesh.md promises: direct wherever one side is public, between
# easy NATs, over the LAN behind one NAT and over IPv6 between dual-stack
# sites; relayed through the hub between a hard NAT and an easy or hard
# one. Whether a path is direct is told by the hub's WireGuard: while one
# client pings the other 100 times, the hub's transfer counters for both
# stay flat when the path is direct, and grow by every ping's four legs
# when the hub relays them; a relayed path must lose none. No path that
# works falls back meanwhile. A matrix of what was seen ends the output.
#
# Log lines this test reads (common/mesh.c):
#   "mesh: KEY went quiet on ENDPOINT: through the hub again, ..."

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=natlib.sh
. "$(dirname "$0")/natlib.sh"

POOL4=10.87.0.0/24
POOL6=fd87::/64
PINGS=100
# What the hub may carry for a direct pair while it pings: keepalives to
# the hub (32 bytes each 5 s) and, now and then, a long poll ending and the
# next one starting (a TCP exchange of a few hundred bytes a packet).
DIRECT_MAX=3000
# What a relayed pair must add at least: each ping and its answer cross
# the hub, so each client's counters carry both, in and out: 2 x 2 x 100
# data messages of 128 bytes (a 84-byte ping padded to 96, a 32-byte
# header and tag), 51200 bytes, less a margin.
RELAY_MIN=$((2 * 2 * PINGS * 100))
# How long a pair may take to settle on its path.
PATH_S=15
# A relayed pair is judged only once every probe had time for WireGuard's
# retry, 5 s after its first initiation.
NEGATIVE_S=8

e2e_init t_87_mesh_nat

e2e_before_cleanup() {
	local n
	[ "$E2E_FAILS" -eq 0 ] && return
	nat_dump
	for n in "${!CLIENT_PID[@]}"; do
		say "---- client $n (${NAT_TYPE[$n]}): show ----"
		show "$n" 2>&1
		say "---- client $n: mesh log ----"
		grep -F 'mesh' "${CLIENT_LOG[$n]}" 2>/dev/null | tail -n 60
	done
}

nat_hub_create
nat_site_public 1
nat_site_public 2
nat_site_easy 3
nat_site_easy 4
nat_site_hard 5
nat_site_hard 6
nat_site_shared 7 8
nat_site_dual 9
nat_site_dual 10
CLIENTS=(1 2 3 4 5 6 7 8 9 10)

# A client behind a NAT must keep its mapping to the hub open: the hub
# relays to it there, and hands that endpoint to the other clients as
# where to punch. Only its own traffic keeps it, hence a persistent
# keepalive on every client's hub peer, as on any WireGuard peer behind a
# NAT (docs/mesh.md, "Running it"). 5 s is well within the routers'
# conntrack timeout for UDP.
for n in "${CLIENTS[@]}"; do
	ip netns exec "${CLIENT_NS[$n]}" wg set "${CLIENT_IF[$n]}" peer "$HUB_PUB" \
		persistent-keepalive 5 || die "cannot set client $n's keepalive to the hub"
done

hub_route "$POOL4" "$POOL6"
server_start --mesh --pool "$POOL4" --pool "$POOL6"
for n in "${CLIENTS[@]}"; do
	client_start "$n"
done
for n in "${CLIENTS[@]}"; do
	client_wait_lease "$n" 20 || die "client $n (${NAT_TYPE[$n]}) got no IPv4 and IPv6 lease"
	ADDR4[n]=$(client_addr4 "$n")
	ADDR4[n]=${ADDR4[$n]%/*}
done

# ---- reading the clients ----

show() {
	ip netns exec "${CLIENT_NS[$1]}" "$CLIENT_BIN" show "${CLIENT_IF[$1]}" \
		--state-dir "$E2E_TMP/client$1-state" "${@:2}"
}

# peer_field A B FIELD: FIELD of client B in client A's show --json.
peer_field() {
	show "$1" --json 2>/dev/null |
		jq -r --arg k "${CLIENT_PUB[$2]}" \
			".mesh.peers[]? | select(.key == \$k) | .$3 // \"\"" 2>/dev/null
}

peer_count() {
	show "$1" --json 2>/dev/null | jq -r '.mesh.peers | length' 2>/dev/null
}

# knows_all N: client N's directory lists every other client.
knows_all() {
	[ "$(peer_count "$1")" = "$((${#CLIENTS[@]} - 1))" ]
}

client_allowed_ips() {
	ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" allowed-ips |
		awk -v key="$2" '$1 == key { for (i = 2; i <= NF; i++) print $i }'
}

# device_direct A B: on client A's device, client B's peer holds B's lease.
device_direct() {
	client_allowed_ips "$1" "${CLIENT_PUB[$2]}" | grep -qxF "${ADDR4[$2]}/32"
}

# is_direct A B: client A says B is direct, and its device agrees.
is_direct() {
	[ "$(peer_field "$1" "$2" path)" = direct ] && device_direct "$1" "$2"
}

both_direct() {
	is_direct "$1" "$2" && is_direct "$2" "$1"
}

# tried A B: client A has put B on its device to punch (or gave up).
tried() {
	case $(peer_field "$1" "$2" path) in
	probing | lost | relay) nat_handshook "$1" "$2" || [ "$(nat_tx "$1" "$2")" -gt 0 ] ;;
	*) return 1 ;;
	esac
}

both_tried() {
	tried "$1" "$2" && tried "$2" "$1"
}

# want_ep A B: the address client A should reach client B at directly:
# its LAN address behind the same NAT, its IPv6 address when both have
# one, else its public IPv4 address.
want_ep() {
	if [ -n "${NAT_ROUTER[$1]}" ] && [ "${NAT_ROUTER[$1]}" = "${NAT_ROUTER[$2]}" ]; then
		printf '%s\n' "${NAT_LAN4[$2]}"
	elif [ -n "${NAT_PUB6[$1]}" ] && [ -n "${NAT_PUB6[$2]}" ]; then
		printf '%s\n' "${NAT_PUB6[$2]}"
	else
		printf '%s\n' "${NAT_PUB4[$2]}"
	fi
}

say "every client learns the nine others"
for n in "${CLIENTS[@]}"; do
	check "client $n (${NAT_TYPE[$n]}) lists every other client" wait_for -t 15 knows_all "$n"
done
DIRECTORY_AT=$SECONDS

# ---- the pairs ----

# pair A B EXPECTED: waits for client A and client B to settle on the
# expected path, pings 100 times from A to B and checks that the hub's
# counters tell the same. One line of the matrix.
MATRIX=()
pair() {
	local a=$1 b=$2 want=$3 what="$1 (${NAT_TYPE[$1]}) <-> $2 (${NAT_TYPE[$2]})"
	local before after delta seen=unclear got ep_ab='-' ep_ba='-' loss

	say "$what: expected $want"
	if [ "$want" = direct ]; then
		check "$what: both settle direct" wait_for -t "$PATH_S" both_direct "$a" "$b"
	else
		# Long enough for a path that should not work to have tried.
		while [ "$((SECONDS - DIRECTORY_AT))" -lt "$NEGATIVE_S" ]; do
			sleep 0.2
		done
		check "$what: both punch" wait_for -t "$PATH_S" both_tried "$a" "$b"
		check "$what: client $a does not take $b direct" not is_direct "$a" "$b"
		check "$what: client $b does not take $a direct" not is_direct "$b" "$a"
	fi

	before=$(nat_hub_bytes "$a" "$b")
	ip netns exec "${CLIENT_NS[$a]}" ping -n -q -c "$PINGS" -i 0.01 -W 2 "${ADDR4[$b]}" \
		>"$E2E_TMP/ping-$a-$b" 2>&1
	after=$(nat_hub_bytes "$a" "$b")
	delta=$((after - before))
	loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$E2E_TMP/ping-$a-$b")
	check_eq "$what: all $PINGS pings answered" 0 "${loss:-?}"
	if [ "$delta" -lt "$DIRECT_MAX" ]; then
		seen=direct
	elif [ "$delta" -ge "$RELAY_MIN" ]; then
		seen=relayed
	fi
	check_eq "$what: the hub's counters moved by $delta bytes" "$want" "$seen"

	if [ "$want" = direct ]; then
		ep_ab=$(peer_field "$a" "$b" endpoint)
		ep_ba=$(peer_field "$b" "$a" endpoint)
		check_eq "$what: client $a reaches $b at $(want_ep "$a" "$b") ($ep_ab)" \
			"$(want_ep "$a" "$b")" "$(nat_ep_addr "$ep_ab")"
		check_eq "$what: client $b reaches $a at $(want_ep "$b" "$a") ($ep_ba)" \
			"$(want_ep "$b" "$a")" "$(nat_ep_addr "$ep_ba")"
	fi
	got="$seen"
	[ "$loss" = 0 ] || got="$seen, ${loss:-?}% lost"
	MATRIX+=("$(printf '%-20s %-8s %-16s %9s  %-32s %s' \
		"${NAT_TYPE[$a]}-${NAT_TYPE[$b]} ($a-$b)" "$want" "$got" "$delta" "$ep_ab" "$ep_ba")")
}

# One client of each kind per pair, both of each kind over the whole.
pair 1 2 direct   # public  public   over IPv6
pair 3 4 direct   # easy    easy     each at the other's NAT mapping
pair 7 8 direct   # shared  shared   over their LAN
pair 9 10 direct  # dual    dual     over IPv6
pair 1 3 direct   # public  easy
pair 2 5 direct   # public  hard     the hard side's handshakes; the public side roams
pair 1 7 direct   # public  shared
pair 2 9 direct   # public  dual     over IPv6
pair 4 7 direct   # easy    shared
pair 5 6 relayed  # hard    hard
pair 3 5 relayed  # easy    hard
pair 3 9 relayed  # easy    dual     the dual site's IPv4 NAT is hard
pair 6 8 relayed  # hard    shared
pair 5 10 relayed # hard    dual
pair 8 10 relayed # shared  dual

# The public side of the hard pair reached its peer only because the hard
# side's handshakes reached it: the hard NAT gave them a port of their
# own, not the one the hub sees, and WireGuard roamed there.
say "public <-> hard: the public side roamed to the hard NAT's new port"
ep=$(nat_endpoint 2 5)
hub_ep=$(nat_hub_endpoint 5)
check_eq "client 2 reaches client 5 at its router" "${NAT_PUB4[5]}" "$(nat_ep_addr "$ep")"
check "client 2 reaches client 5 at $ep, not where the hub sees it ($hub_ep)" \
	test "$ep" != "$hub_ep"

# Every path above works the whole time: none went quiet, wrongly.
for n in "${CLIENTS[@]}"; do
	check "client $n (${NAT_TYPE[$n]}) took no direct path down" \
		not grep -q "went quiet" "${CLIENT_LOG[$n]}"
done

say ""
say "$(printf '%-20s %-8s %-16s %9s  %-32s %s' 'pair (A-B)' expected observed 'hub bytes' \
	'direct: A reaches B at' 'B reaches A at')"
for line in "${MATRIX[@]}"; do
	say "$line"
done
say ""
e2e_finish
