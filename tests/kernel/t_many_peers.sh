#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The server's allowed-IPs edits on a hub with 1,000 more peers touch
# nothing but the leases. Besides the two clients, the hub has 1,000 peers
# with allowed-IPs of both families outside the pools, some with endpoints
# and preshared keys, one with 1,000 allowed-IPs (more than one dump message
# holds), and client 1's peer has 250 extra allowed-IPs (more than one set
# message holds, when a kernel without per-entry removal makes the server
# rewrite the list). While the allowed-IPs of one more peer keep changing,
# so that now and then the kernel flags one of the server's dumps of the
# device as interrupted (NLM_F_DUMP_INTR) and the server reads it again,
# both clients lease and renew, and client 1 releases. Then `wg show dump`
# must be what it was before the server started, byte for byte, less the
# leased entries.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"

POOL4=10.88.0.0/24
POOL6=fd88::/64
PEERS=1000
# The peer whose allowed-IPs keep changing.
CHURN_KEY=wgdManyPeersChurningPeerForTheKernelTest00A=

e2e_init t_many_peers
topology_create 2
hub_route "$POOL4" "$POOL6"

# Any 32 bytes make a valid peer key, so keys are built from the peer's
# number: base64 digits, the last one with its two padding bits clear.
# Client 1's peer is listed again, with its link-local first, as wg(8)
# replaces the allowed-IPs of the peers a configuration names.
awk -v n="$PEERS" -v c1="${CLIENT_PUB[1]}" -v ll1="${CLIENT_LL[1]}/128" -v churn="$CHURN_KEY" '
function digits(i, b64) {
	return substr(b64, int(i / 4096) % 64 + 1, 1) substr(b64, int(i / 64) % 64 + 1, 1) \
		substr(b64, i % 64 + 1, 1)
}
BEGIN {
	b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	print "[Interface]"
	for (i = 1; i <= n; i++) {
		print "[Peer]"
		printf "PublicKey = wgdManyPeersPublicKeysForTheKernelTest0%sA=\n", digits(i, b64)
		if (i % 100 == 0)
			printf "PresharedKey = wgdManyPeersPresharedKeysForTheKernelT0%sA=\n", digits(i, b64)
		if (i % 50 == 0)
			printf "Endpoint = 192.0.2.%d:%d\n", 200 + i / 50, 10000 + i
		aips = sprintf("10.201.%d.%d/32, fd01::%x/128", int(i / 256), i % 256, i)
		if (i % 10 == 0)
			aips = aips sprintf(", 10.203.%d.0/24, fd03:%x::/64", i / 10, i)
		if (i == n / 2)
			for (j = 1; j <= 1000; j++)
				aips = aips sprintf(", fd05::%x/128", j)
		print "AllowedIPs = " aips
	}
	print "[Peer]"
	print "PublicKey = " c1
	aips = ll1
	for (j = 1; j <= 250; j++)
		aips = aips sprintf(", fd06::%x/128", j)
	print "AllowedIPs = " aips
	print "[Peer]"
	print "PublicKey = " churn
	print "AllowedIPs = 10.204.0.1/32"
}' >"$E2E_TMP/peers.conf"
ip netns exec "$HUB_NS" wg addconf "$HUB_IF" "$E2E_TMP/peers.conf" ||
	die "cannot add $PEERS peers to $HUB_IF"

hub_dump() {
	ip netns exec "$HUB_NS" wg show "$HUB_IF" dump
}
hub_dump >"$E2E_TMP/before.dump" || die "cannot read $HUB_IF"
check_eq "the hub has $PEERS peers besides the clients and the changing one" $((PEERS + 3)) \
	"$(($(wc -l <"$E2E_TMP/before.dump") - 1))"

# The changing peer gains an allowed-IP and loses it again, every 0.1 s
# until told to stop, so it ends as it began. The loop runs in the hub's
# namespace: ip netns exec for each change would slow it down.
# shellcheck disable=SC2016 # expanded by the inner shell
ip netns exec "$HUB_NS" bash -c '
	rounds=0
	while [ ! -e "$1/churn.stop" ]; do
		wg set "$2" peer "$3" allowed-ips 10.204.0.1/32,10.204.0.2/32
		sleep 0.05
		wg set "$2" peer "$3" allowed-ips 10.204.0.1/32
		sleep 0.05
		rounds=$((rounds + 1))
	done
	echo "$rounds" >"$1/churn.rounds"' churn "$E2E_TMP" "$HUB_IF" "$CHURN_KEY" &
churn_pid=$!
E2E_PIDS+=("$churn_pid")

server_start --pool "$POOL4" --pool "$POOL6" --lease-time 10
client_start 1
client_start 2
client_wait_lease 1 30 || die "client 1 got no IPv4 and IPv6 lease"
client_wait_lease 2 30 || die "client 2 got no IPv4 and IPv6 lease"
leased=()
for n in 1 2; do
	a4=$(client_addr4 "$n")
	a6=$(client_addr6 "$n")
	say "client $n: $a4 $a6"
	check "hub: peer of client $n has $a4 and $a6" hub_peer_has "$n" "$a4" "$a6"
	leased+=("$a4" "$a6")
done

renewed() {
	[ "$(grep -c ': renewed ip4 ' "$SERVER_LOG")" -ge 2 ]
}
check "server renewed both leases" wait_for -t 20 renewed

a4=$(client_addr4 1)
a6=$(client_addr6 1)
client_stop 1
check_eq "client 1 exits 0 on SIGTERM" 0 "$?"
released() {
	! hub_peer_has 1 "$a4" && ! hub_peer_has 1 "$a6"
}
check "hub dropped client 1's lease" wait_for -t 10 released
touch "$E2E_TMP/churn.stop"
wait "$churn_pid"
say "a peer's allowed-IPs changed $(cat "$E2E_TMP/churn.rounds" 2>/dev/null) times over meanwhile"
hub_dump >"$E2E_TMP/after.dump" || die "cannot read $HUB_IF"

# The dump less the clients' handshake, endpoint and transfer columns, which
# traffic changes, and less the leased entries in their allowed-IPs; sorted,
# as wireguard-go lists peers in no fixed order (the kernel does).
normalize() {
	awk -v c1="${CLIENT_PUB[1]}" -v c2="${CLIENT_PUB[2]}" -v leased="${leased[*]}" '
	BEGIN {
		FS = OFS = "\t"
		split(leased, l, " ")
		for (i in l)
			skip[l[i]] = 1
	}
	NR > 1 && ($1 == c1 || $1 == c2) {
		n = split($4, a, ",")
		$4 = ""
		for (i = 1; i <= n; i++)
			if (!(a[i] in skip))
				$4 = $4 ($4 == "" ? "" : ",") a[i]
		if ($4 == "")
			$4 = "(none)"
		$3 = $5 = $6 = $7 = "-"
	}
	{ print }' "$1" | sort
}
normalize "$E2E_TMP/before.dump" >"$E2E_TMP/before.norm"
normalize "$E2E_TMP/after.dump" >"$E2E_TMP/after.norm"
if cmp -s "$E2E_TMP/before.norm" "$E2E_TMP/after.norm"; then
	pass "every other allowed-IP on the hub is unchanged, byte for byte"
else
	fail "the hub's peers changed beyond the leases:"
	diff "$E2E_TMP/before.norm" "$E2E_TMP/after.norm" | head -n 20
fi
check "client 1's peer keeps its 250 extra allowed-IPs" test \
	"$(hub_peer_allowed_ips 1 | grep -c '^fd06::')" -eq 250
check "client 2's peer still has its lease" hub_peer_has 2 "$(client_addr4 2)" "$(client_addr6 2)"
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
