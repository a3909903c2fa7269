#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The mesh through its events, behind real NATs (natlib.sh), part two:
# the network changes under a direct pair. Two clients behind easy NATs
# (meshevents.sh has the bench), client 1 pinging client 2 every 25 ms
# throughout.
#
#   4. Client 1's NAT moves to another public address (nat_move): the
#      direct path breaks both ways, and client 1 tells the hub at once.
#      Once the hub sees client 1's new address, the pair is direct again
#      within 10 s (the aim is 5 s; tests/bench measures it), and the
#      pings are lost only in the break: from the move until the pair
#      falls back to the hub.
#   5. The path breaks one way (nat_break 1 2: client 1's packets no
#      longer reach client 2, client 2's still reach client 1): both sides
#      fall back to the hub, and stay there without flapping: for 20 s
#      neither holds the other's lease on its peer, show says relay, lost
#      or probing on both, the pings all come back through the hub, whose
#      relay counter moves with them. Repaired, the pair goes direct again
#      within 20 s, losing at most the request crossing the hub at the
#      switch (EV_SWITCH_LOSS).

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=natlib.sh
. "$(dirname "$0")/natlib.sh"
# shellcheck source-path=SCRIPTDIR source=meshevents.sh
. "$(dirname "$0")/meshevents.sh"

# The break lasts until both sides notice the silence: MESH_QUIET_MS
# (2.5 s) after the last read that saw the peer's packets, noticed at a
# read: each read 0.5 s apart. Then some for a busy machine.
BREAK_S=5
# How long a path broken one way is watched for a flap.
WATCH_S=20

e2e_init t_88b_mesh_events

e2e_before_cleanup() {
	[ "$E2E_FAILS" -eq 0 ] || ev_dump
}

# hub_flat WHAT: over 2 s of pings, the hub relays nothing and its
# WireGuard counters for both clients stay flat.
hub_flat() {
	local relayed0 bytes0 relayed1 bytes1

	relayed0=$(ev_relayed) bytes0=$(nat_hub_bytes 1 2)
	sleep 2
	relayed1=$(ev_relayed) bytes1=$(nat_hub_bytes 1 2)
	check "$1: nothing crosses the hub ($((relayed1 - relayed0)) packets relayed in 2 s)" \
		test "$((relayed1 - relayed0))" -le 2
	# A hub keepalive or two may pass; 2 s of pings through it are 40 kB.
	check "$1: the hub's WireGuard counters stay flat ($((bytes1 - bytes0)) bytes)" \
		test "$((bytes1 - bytes0))" -lt 2000
}

ev_bench 1 2
ev_server_start
client_start 1
client_start 2
for n in 1 2; do
	client_wait_lease "$n" || die "client $n got no IPv4 and IPv6 lease"
done
wait_for -t 20 ev_pair_direct 1 2 || die "clients 1 and 2 did not go direct"
addr2=$(client_addr4 2)
addr2=${addr2%/*}

say "4. client 1's NAT moves"
ev_ping_start 1 "$addr2"
t_ping=$(ev_now)
sleep 1
old=${NAT_PUB4[1]}
t_move=$(ev_now)
nat_move 1
new=${NAT_PUB4[1]}
# Client 1 reaches the hub at once, as its keepalive may: the hub sees the
# move before either client notices the silence, the harder order, since
# the news then comes while the path still counts as direct.
nat_ping_hub 1 || say "  client 1 did not reach the hub at once"
hub_sees_new() {
	[ "$(nat_ep_addr "$(nat_hub_endpoint 1)")" = "$new" ]
}
check "the hub sees client 1 move from $old to $new" wait_for -t 10 hub_sees_new
t_seen=$(ev_now)
say "  the hub sees it $(ev_since "$t_move") s after the move"
# Client 2 must reach client 1 at its new address: the old path, still on
# the device a moment after the move, does not count.
direct_again() {
	[ "$(nat_ep_addr "$(nat_endpoint 2 1)")" = "$new" ] && ev_pair_direct 1 2
}
check "clients 1 and 2 are direct again within 10 s" wait_for -t 10 direct_again
say "  direct again $(ev_since "$t_seen") s after the hub saw the move," \
	"$(ev_since "$t_move") s after it"
sleep 0.5
hub_flat "direct again"
# Pings for 3 s past the break at least, to count.
while ! ev_le "$(ev_plus "$t_move" $((BREAK_S + 3)))" "$(ev_now)"; do
	sleep 0.2
done
t_end=$(ev_now)
ev_ping_stop
read -r sent lost lo hi <<<"$(ev_ping_loss "$t_ping" "$t_move")"
check_eq "before the move, not one request lost of $sent" 0 "$lost"
read -r sent lost lo hi <<<"$(ev_ping_loss "$t_move" "$(ev_plus "$t_move" "$BREAK_S")")"
if [ "$lost" -gt 0 ]; then
	say "  the break: $lost requests lost of $sent, sent from +$(ev_between "$t_move" "$lo") s" \
		"to +$(ev_between "$t_move" "$hi") s after the move"
fi
read -r sent lost lo hi <<<"$(ev_ping_loss "$(ev_plus "$t_move" "$BREAK_S")" \
	"$(ev_plus "$t_end" -0.5)")"
check "after the break, the pings went on ($sent requests)" test "$sent" -ge 60
check "from $BREAK_S s after the move on, at most $EV_SWITCH_LOSS request lost ($lost, between $lo and $hi)" \
	test "$lost" -le "$EV_SWITCH_LOSS"

say "5. the path breaks one way"
ev_ping_start 1 "$addr2"
sleep 1
t_break=$(ev_now)
nat_break 1 2
check "both sides fall back to the hub" wait_for -t 12 ev_neither_direct 1 2
t_fall=$(ev_now)
say "  both relayed $(ev_since "$t_break") s after the break"
# show follows within a second.
not_direct_shown() {
	[ "$(ev_path 1 2)" != direct ] && [ "$(ev_path 2 1)" != direct ]
}
check "show says so on both sides" wait_for -t 3 not_direct_shown
# Watched for WATCH_S: the allowed-IPs, show on both sides, and the hub's
# relay counter, which must move every 2 s (some 60 pings, 120 packets).
flaps=$E2E_TMP/flaps
: >"$flaps"
declare -A seen=()
relayed_last=$(ev_relayed)
slow_slices=0
end=$((SECONDS + WATCH_S))
next_slice=$((SECONDS + 2))
while [ "$SECONDS" -lt "$end" ]; do
	for pair in "1 2" "2 1"; do
		# shellcheck disable=SC2086 # "N M"
		[ -z "$(ev_allowed $pair)" ] ||
			echo "$(ev_now) client ${pair% *} holds client ${pair#* }'s lease:" \
				"$(ev_allowed $pair | tr '\n' ' ')" >>"$flaps"
	done
	p1=$(ev_path 1 2) p2=$(ev_path 2 1)
	seen["1:$p1"]=1 seen["2:$p2"]=1
	case "$p1 $p2" in
	*direct*) echo "$(ev_now) show: $p1 on client 1, $p2 on client 2" >>"$flaps" ;;
	esac
	if [ "$SECONDS" -ge "$next_slice" ]; then
		relayed=$(ev_relayed)
		[ "$((relayed - relayed_last))" -ge 60 ] || slow_slices=$((slow_slices + 1))
		relayed_last=$relayed
		next_slice=$((SECONDS + 2))
	fi
	sleep 0.3
done
t_watch=$(ev_now)
say "  paths seen in ${WATCH_S} s: ${!seen[*]}"
check "for ${WATCH_S} s, neither client went direct again ($(wc -l <"$flaps") samples did)" \
	test ! -s "$flaps"
[ -s "$flaps" ] && sed -n '1p;$p' "$flaps"
check "show said relay, lost or probing on both sides" \
	not grep -qE '^[12]:(direct|)$' <<<"$(printf '%s\n' "${!seen[@]}")"
check "the hub relayed the pings all along ($slow_slices slices of 2 s without)" \
	test "$slow_slices" -eq 0
read -r sent lost lo hi <<<"$(ev_ping_loss "$(ev_plus "$t_fall" 0.5)" "$t_watch")"
check "the pings went on through the hub ($sent requests)" test "$sent" -ge 400
check_eq "not one lost (between $lo and $hi)" 0 "$lost"

nat_repair 1 2
t_repair=$(ev_now)
check "repaired, the pair goes direct again within 20 s" wait_for -t 20 ev_pair_direct 1 2
say "  direct $(ev_since "$t_repair") s after the repair"
sleep 0.5
hub_flat "repaired"
t_end=$(ev_now)
ev_ping_stop
read -r sent lost lo hi <<<"$(ev_ping_loss "$t_repair" "$(ev_plus "$t_end" -0.5)")"
check "from the repair on, at most $EV_SWITCH_LOSS request lost, at the switch ($lost of $sent, between $lo and $hi)" \
	test "$lost" -le "$EV_SWITCH_LOSS"
e2e_finish
