#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The client's routes beside an administrator's, and how it finds its hub
# among other peers, against the real server pushing three routes.
#
# Client 1: the administrator routes 10.55.0.0/24 and fd55::/64 into the
# interface before the client starts. The client adds only what is missing
# (10.56.0.0/24), with its own rtnetlink protocol number (87), says once of
# each of the others that the interface already has it, leaves them as they
# are through a renewal, and takes away only its own when it releases.
#
# Client 2 has an exit peer with allowed-IPs 0.0.0.0/0 and ::/0 beside the
# hub peer, whose allowed-IPs hold fe80::/128 exactly. The client takes the
# hub peer for its hub, not the exit that also covers fe80::: it leases, the
# pushed routes go into the hub peer's allowed-IPs, and the exit peer's stay
# as they were.
#
# Client 3 has no peer whose allowed-IPs hold fe80::/128 exactly: an exit
# with ::/0, or the hub with fe80::/64. The client refuses to start, with a
# nonzero exit status and one line that names the fix. Two peers can never
# hold fe80::/128 both: WireGuard moves an allowed-IP to the peer it is
# given last, which this test checks, so that the client's rule (exactly
# one peer holds it) stays complete.
#
# Log line this test reads (client/main.c):
#   "... route R: not added: the interface already has it"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
export LC_ALL=C
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.89.0.0/24
POOL6=fd89::/64

e2e_init t_89_client_routes
topology_create 3

# client_routes N PREFIX: client N's routes to PREFIX through its interface,
# in the main table, as "PREFIX proto PROTO", one a line.
client_routes() {
	local family=-4
	case $2 in *:*) family=-6 ;; esac
	ip -n "${CLIENT_NS[$1]}" "$family" route show "$2" dev "${CLIENT_IF[$1]}" 2>/dev/null |
		awk '{ p = "boot"; for (i = 2; i < NF; i++) if ($i == "proto") p = $(i + 1); print $1, "proto", p }'
}

# peer_aips N KEY: the allowed-IPs of peer KEY on client N, sorted, on a line.
peer_aips() {
	ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" allowed-ips |
		awk -v k="$2" '$1 == k { for (i = 2; i <= NF; i++) if ($i != "(none)") print $i }' |
		sort | tr '\n' ' ' | sed 's/ $//'
}

# ---- client 1: the administrator's routes ----

# An IPv4 address of the administrator's too: when an interface loses its
# last IPv4 address, as it does when the lease's goes, the kernel flushes
# every IPv4 route through it, whoever added them.
ip -n "${CLIENT_NS[1]}" addr add 10.77.0.1/32 dev "${CLIENT_IF[1]}" ||
	die "cannot add 10.77.0.1/32 to client 1's interface"
for r in 10.55.0.0/24 fd55::/64; do
	ip -n "${CLIENT_NS[1]}" route add "$r" dev "${CLIENT_IF[1]}" ||
		die "cannot route $r into client 1's interface"
done
server_start --pool "$POOL4" --pool "$POOL6" --route 10.55.0.0/24 --route fd55::/64 \
	--route 10.56.0.0/24
client_start 1
client_wait_lease 1 || die "client 1 got no lease"

check_eq "client 1: the administrator's 10.55.0.0/24 is untouched" "10.55.0.0/24 proto boot" \
	"$(client_routes 1 10.55.0.0/24)"
check_eq "client 1: the administrator's fd55::/64 is untouched" "fd55::/64 proto boot" \
	"$(client_routes 1 fd55::/64)"
check_eq "client 1: the client added 10.56.0.0/24 with protocol 87" "10.56.0.0/24 proto 87" \
	"$(client_routes 1 10.56.0.0/24)"
for r in 10.55.0.0/24 fd55::/64; do
	re="route ${r//./\\.}: not added: the interface already has it"
	check_eq "client 1: logged once that the interface already has $r" 1 \
		"$(grep -cE "$re" "${CLIENT_LOG[1]}")"
done
check_eq "client 1: the hub peer holds fe80::/128 and the pushed routes" \
	"10.55.0.0/24 10.56.0.0/24 fd55::/64 fe80::/128" "$(peer_aips 1 "$HUB_PUB")"

mark=$(log_mark "${CLIENT_LOG[1]}")
kill -HUP "${CLIENT_PID[1]}"
renewed() {
	log_since "${CLIENT_LOG[1]}" "$mark" | grep -q '^renewed: '
}
check "client 1 renews" wait_for -t 5 renewed
check_eq "client 1: after the renewal 10.55.0.0/24 is still the administrator's" \
	"10.55.0.0/24 proto boot" "$(client_routes 1 10.55.0.0/24)"
check_eq "client 1: and fd55::/64" "fd55::/64 proto boot" "$(client_routes 1 fd55::/64)"

client_stop 1
check_eq "client 1 exits 0 on SIGTERM" 0 "$?"
check_eq "client 1: after the release 10.55.0.0/24 is still there" "10.55.0.0/24 proto boot" \
	"$(client_routes 1 10.55.0.0/24)"
check_eq "client 1: and fd55::/64" "fd55::/64 proto boot" "$(client_routes 1 fd55::/64)"
check_eq "client 1: its own 10.56.0.0/24 is gone" "" "$(client_routes 1 10.56.0.0/24)"
check_eq "client 1: no route of protocol 87 is left" "" \
	"$(ip -n "${CLIENT_NS[1]}" route show proto 87; ip -n "${CLIENT_NS[1]}" -6 route show proto 87)"

# ---- client 2: an exit peer that covers fe80:: too ----

wg_key exit2 EXIT2_PUB
ip netns exec "${CLIENT_NS[2]}" wg set "${CLIENT_IF[2]}" peer "$EXIT2_PUB" \
	allowed-ips 0.0.0.0/0,::/0 endpoint 100.64.0.2:51820 || die "cannot add client 2's exit peer"
client_start 2
check "client 2 leases beside an exit peer with 0.0.0.0/0 and ::/0" client_wait_lease 2
check_eq "client 2: the hub peer got the pushed routes" \
	"10.55.0.0/24 10.56.0.0/24 fd55::/64 fe80::/128" "$(peer_aips 2 "$HUB_PUB")"
check_eq "client 2: the exit peer kept its allowed-IPs" "0.0.0.0/0 ::/0" "$(peer_aips 2 "$EXIT2_PUB")"
client_stop 2
check_eq "client 2 exits 0 on SIGTERM" 0 "$?"
check_eq "client 2: the exit peer still has its allowed-IPs" "0.0.0.0/0 ::/0" \
	"$(peer_aips 2 "$EXIT2_PUB")"

# ---- client 3: no peer holds fe80::/128 exactly ----

# refuses WHAT: client 3, not in the background nor verbose, must exit
# nonzero within 5 s with one line naming fe80::/128.
refuses() {
	local out rc
	out=$(timeout 5 ip netns exec "${CLIENT_NS[3]}" "$CLIENT_BIN" -f \
		--state-dir "$E2E_TMP/client3-state" "${CLIENT_IF[3]}" 2>&1)
	rc=$?
	say "    client 3 ($1): exit status $rc: $out"
	check "client 3 refuses to start $1" test "$rc" -ne 0 -a "$rc" -ne 124
	check_eq "client 3: one line, naming fe80::/128 ($1)" "1 1" \
		"$(printf '%s\n' "$out" | sed '/^$/d' | wc -l) $(grep -c 'fe80::/128' <<<"$out")"
}

ns3=${CLIENT_NS[3]}
if3=${CLIENT_IF[3]}
wg_key exit3 EXIT3_PUB
ip netns exec "$ns3" wg set "$if3" peer "$HUB_PUB" remove \
	peer "$EXIT3_PUB" allowed-ips ::/0 endpoint 100.64.0.3:51820 || die "cannot set client 3's peers"
refuses "with only an exit peer holding ::/0"
ip netns exec "$ns3" wg set "$if3" peer "$HUB_PUB" allowed-ips fe80::/64 \
	endpoint "192.0.2.$((4 * 3 + 1)):$HUB_PORT" || die "cannot set client 3's hub peer"
refuses "with the hub peer holding fe80::/64 and the exit ::/0"

ip netns exec "$ns3" wg set "$if3" peer "$HUB_PUB" allowed-ips fe80::/128 \
	peer "$EXIT3_PUB" allowed-ips fe80::/128,::/0 || die "cannot set client 3's peers"
check_eq "WireGuard gives fe80::/128 to one peer only, the last it was given to" \
	"$EXIT3_PUB" "$(ip netns exec "$ns3" wg show "$if3" allowed-ips |
		awk '{ for (i = 2; i <= NF; i++) if ($i == "fe80::/128") print $1 }')"
e2e_finish
