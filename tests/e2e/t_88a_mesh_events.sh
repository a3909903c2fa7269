#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The mesh through its events, behind real NATs (natlib.sh), part one:
# peers come, go, and the hub's server crashes. Three clients behind easy
# NATs (meshevents.sh has the bench).
#
#   1. A peer joins while another already pings its address: client 1
#      pings the one address of the pool left for client 2 before client 2
#      starts. Once client 2 holds its lease, the pings cross the hub,
#      then the pair goes direct, and no request is lost but, at most, the
#      one crossing the hub at the switch (EV_SWITCH_LOSS).
#   2. A peer leaves: client 3 is stopped (SIGTERM); within 5 s the others
#      have taken it off their devices, and keep each other.
#   3. The hub's server is killed (SIGKILL) while clients 1 and 2 are
#      direct: their pings go on, direct, with no loss and nothing relayed,
#      through the outage and the restart; the restarted server's directory
#      lists both again, and neither dropped the other meanwhile.
#
# Log line this test reads (client/mesh.c): "mesh: the hub answers again".

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=natlib.sh
. "$(dirname "$0")/natlib.sh"
# shellcheck source-path=SCRIPTDIR source=meshevents.sh
. "$(dirname "$0")/meshevents.sh"

e2e_init t_88a_mesh_events

e2e_before_cleanup() {
	[ "$E2E_FAILS" -eq 0 ] || ev_dump
}

ev_bench 1 2 3
ev_server_start
client_start 1
client_start 3
for n in 1 3; do
	client_wait_lease "$n" || die "client $n got no IPv4 and IPv6 lease"
done
wait_for -t 20 ev_pair_direct 1 3 || die "clients 1 and 3 did not go direct"
addr2=$(ev_free4) || die "no address of the pool is left for client 2"

say "1. a peer joins while another pings its address"
ev_ping_start 1 "$addr2"
sleep 0.5
client_start 2
configured_2() {
	[ "$(client_addr4 2)" = "$addr2/32" ] && ev_configured 2
}
check "client 2 gets $addr2" wait_for -t 15 configured_2
t_lease=$(ev_now)
relayed_lease=$(ev_relayed)
check "clients 1 and 2 go direct" wait_for -t 20 ev_pair_direct 1 2
say "  direct $(ev_since "$t_lease") s after client 2's lease"
relayed_direct=$(ev_relayed)
# Client 1's requests and client 2's replies: two packets a ping.
check "the pings crossed the hub before ($((relayed_direct - relayed_lease)) packets relayed)" \
	test "$((relayed_direct - relayed_lease))" -ge 4
sleep 0.5
relayed0=$(ev_relayed) bytes0=$(nat_hub_bytes 1 2)
sleep 2
relayed1=$(ev_relayed) bytes1=$(nat_hub_bytes 1 2)
check "then nothing crosses the hub ($((relayed1 - relayed0)) packets relayed in 2 s)" \
	test "$((relayed1 - relayed0))" -le 2
# A hub keepalive or two may pass; 2 s of pings through the hub are 40 kB.
check "and the hub's WireGuard counters stay flat ($((bytes1 - bytes0)) bytes)" \
	test "$((bytes1 - bytes0))" -lt 2000
t_end=$(ev_now)
ev_ping_stop
# A request that left just before the lease shows up to 25 ms later; the
# last ones may be on their way when the ping stops.
read -r sent lost lo hi <<<"$(ev_ping_loss "$(ev_plus "$t_lease" 0.05)" "$(ev_plus "$t_end" -0.5)")"
check "client 1 pinged client 2 from its lease on ($sent requests)" test "$sent" -ge 50
check "at most $EV_SWITCH_LOSS request lost, at the switch ($lost, between $lo and $hi)" \
	test "$lost" -le "$EV_SWITCH_LOSS"

say "2. a peer leaves"
check "client 1 has client 3 as a peer" ev_has_peer 1 3
check "client 2 has client 3 as a peer" wait_for -t 10 ev_has_peer 2 3
t_stop=$(ev_now)
client_stop 3
rc=$?
check_eq "client 3 exits 0 on SIGTERM" 0 "$rc"
gone_3() {
	! ev_has_peer 1 3 && ! ev_has_peer 2 3
}
check "clients 1 and 2 take client 3 off their devices within 5 s" wait_for -t 5 gone_3
say "  gone from both $(ev_since "$t_stop") s after the SIGTERM"
check "clients 1 and 2 are still direct" ev_pair_direct 1 2
check "client 1 keeps its hub and client 2" test \
	"$(ip netns exec "${CLIENT_NS[1]}" wg show "${CLIENT_IF[1]}" peers | wc -l)" -eq 2

say "3. the hub's server is killed and restarted"
mark=$(log_mark "${CLIENT_LOG[1]}")
ev_ping_start 1 "$addr2"
sleep 1
relayed0=$(ev_relayed) bytes0=$(nat_hub_bytes 1 2)
# A sampler notes every moment either client holds the other's lease off
# its peer.
(
	while :; do
		ev_pair_direct 1 2 || echo "$(ev_now) not direct"
		sleep 0.2
	done
) >"$E2E_TMP/sampler" 2>&1 &
sampler=$!
E2E_PIDS+=("$sampler")
# The server and its engine at once, as a crash takes them.
mapfile -t crash_pids < <(printf '%s\n' "$SERVER_PID"; pid_descendants "$SERVER_PID")
t_kill=$(ev_now)
kill -KILL "${crash_pids[@]}"
wait "$SERVER_PID" 2>/dev/null
for pid in "${crash_pids[@]}"; do
	wait_for -t 3 pid_gone "$pid" || die "process $pid of the server outlived SIGKILL"
done
sleep 4
relayed1=$(ev_relayed) bytes1=$(nat_hub_bytes 1 2)
check "with the server down, nothing crosses the hub ($((relayed1 - relayed0)) packets)" \
	test "$((relayed1 - relayed0))" -le 2
# The clients' polls find the port closed, a few hundred bytes each.
check "and the hub's WireGuard counters stay flat ($((bytes1 - bytes0)) bytes)" \
	test "$((bytes1 - bytes0))" -lt 8000
ev_server_start
t_restart=$(ev_now)
check "the restarted server's directory lists clients 1 and 2" \
	wait_for -t 30 ev_directory_has 1 2
say "  both listed $(ev_since "$t_restart") s after the restart"
answers_again_1() {
	log_since "${CLIENT_LOG[1]}" "$mark" | grep -q "mesh: the hub answers again"
}
check "client 1 polls the restarted hub" wait_for -t 5 answers_again_1
# The clients hold the new directory up to its latest version: each has
# the other's entry from the restarted server, and keeps it past the
# grace a reset gives.
dir_of() {
	jq -r '.mesh | "\(.epoch) \(.version)"'
}
clients_current() {
	local hub
	hub=$(ev_server_show --json | dir_of)
	[ "$(ev_client_show 1 --json | dir_of)" = "$hub" ] &&
		[ "$(ev_client_show 2 --json | dir_of)" = "$hub" ]
}
check "both clients hold the restarted server's directory" wait_for -t 5 clients_current
sleep 1
relayed2=$(ev_relayed)
stop_pid "$sampler"
t_end=$(ev_now)
ev_ping_stop
check "nothing crossed the hub all along ($((relayed2 - relayed0)) packets)" \
	test "$((relayed2 - relayed0))" -le 4
check "clients 1 and 2 stayed direct all along" test ! -s "$E2E_TMP/sampler"
read -r sent lost lo hi <<<"$(ev_ping_loss "$t_kill" "$(ev_plus "$t_end" -0.5)")"
check "client 1 pinged client 2 through it ($sent requests)" test "$sent" -ge 150
check_eq "not one request lost (between $lo and $hi)" 0 "$lost"
check "client 1 still lists client 2 as direct" test "$(ev_path 1 2)" = direct
check "client 2 still lists client 1 as direct" test "$(ev_path 2 1)" = direct
e2e_finish
