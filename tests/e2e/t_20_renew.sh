#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# With a 10-second lease the client renews about every 5 seconds. Over 17
# seconds the addresses never change, on the client or on the hub, the
# server logs renewals, and the client logs each renewal with a later
# leasestart.
#
# Log lines this test reads (server/conn.c, client/main.c):
#   client: "bound: ip4 A ip6 B leasetime T leasestart S"
#           "renewed: ip4 A ip6 B leasetime T leasestart S"
#   server: "peer KEY: renewed ip4 A/32 ip6 B/128 for Ts"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.97.0.0/24
POOL6=fd97::/64
# The shortest lease the client takes as it is (LEASE_MIN_S).
LEASE=10
WATCH=17

e2e_init t_20_renew
topology_create 1
server_start --pool "$POOL4" --pool "$POOL6" --lease-time "$LEASE"
client_start 1
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
a4=$(client_addr4 1)
a6=$(client_addr6 1)
say "client 1: $a4 $a6; watching for $WATCH s"

# valid_lft of a client address, in seconds, or "forever".
valid_lft() {
	ip -n "${CLIENT_NS[1]}" -o addr show dev "${CLIENT_IF[1]}" to "$1" |
		sed -n 's/.*valid_lft \([^ ]*\).*/\1/p' | sed 's/sec$//'
}

changed=
lft_bad=
end=$((SECONDS + WATCH))
while [ "$SECONDS" -lt "$end" ]; do
	now4=$(client_addr4 1)
	now6=$(client_addr6 1)
	if [ "$now4" != "$a4" ] || [ "$now6" != "$a6" ]; then
		changed="${changed:+$changed; }client has '$now4' '$now6'"
	fi
	if ! hub_peer_has 1 "$a4" || ! hub_peer_has 1 "$a6"; then
		changed="${changed:+$changed; }hub has $(hub_peer_allowed_ips 1 | tr '\n' ' ')"
	fi
	for a in "$a4" "$a6"; do
		lft=$(valid_lft "$a")
		case $lft in
		'' | forever) lft_bad="$a valid_lft '$lft'" ;;
		*) [ "$lft" -le "$LEASE" ] || lft_bad="$a valid_lft $lft" ;;
		esac
	done
	sleep 0.5
done
check_eq "addresses and hub allowed-IPs never changed" "" "$changed"
check_eq "addresses carry lifetimes no longer than the lease" "" "$lft_bad"

# The client's lease lines: "bound|renewed: ip4 A ip6 B ... leasestart S".
lease_lines=$(grep -E '^(bound|renewed): ip4 ' "${CLIENT_LOG[1]}")
renewals=$(grep -c '^renewed: ' <<<"$lease_lines")
say "client 1 logged $renewals renewals"
check "client renewed at least 3 times in $WATCH s" test "$renewals" -ge 3
check_eq "client logged one binding" 1 "$(grep -c '^bound: ' <<<"$lease_lines")"
check_eq "every lease line has the same addresses" \
	"ip4 ${a4%/*} ip6 ${a6%/*}" \
	"$(sed -n 's/^[a-z]*: \(ip4 [^ ]* ip6 [^ ]*\) .*/\1/p' <<<"$lease_lines" | sort -u)"
first=$(sed -n 's/.* leasestart \([0-9]*\).*/\1/p' <<<"$lease_lines" | head -n 1)
last=$(sed -n 's/.* leasestart \([0-9]*\).*/\1/p' <<<"$lease_lines" | tail -n 1)
check "the last leasestart ($last) is later than the first ($first)" \
	test "${last:-0}" -gt "${first:-0}"
server_renewals=$(grep -c ": renewed ip4 $a4 ip6 $a6 " "$SERVER_LOG")
check "server logged at least 3 renewals of the same lease" test "$server_renewals" -ge 3
check "server logged no other grant" test "$(grep -c ': granted ' "$SERVER_LOG")" -eq 1
e2e_finish
