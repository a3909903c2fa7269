#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The server crashes (SIGKILL, to the server and its engine at once) while
# twenty clients are asking for leases, and is started again. A lease reaches the journal before its answer is
# sent, so whatever a client was told survives the crash: once every client
# is bound and has renewed with the new server, every client that logged a
# binding before the crash still has those addresses, no address is held by
# two peers on the hub nor by two clients, and the restarted server
# restored at least as many leases as clients were bound before the crash.
#
# Starting a client takes a while, so they start one after the other over
# about a second, and each is bound some tens of milliseconds after its
# start. The crash comes as soon as a quarter of them have logged their
# binding: the next ones are then shaking hands or in the middle of a
# request, and the rest start against a dead server.
#
# Log lines this test reads (client/main.c, server/restore.c):
#   client: "bound: ip4 A ip6 B leasetime T leasestart S"
#           "renewed: ip4 A ip6 B leasetime T leasestart S"
#   server: "journal PATH: restored N leases, dropped N expired, N addresses
#            in quarantine"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.81.0.0/24
POOL6=fd81::/64
CLIENTS=20
# The server is killed once this many clients are bound.
CRASH_AFTER=5
SERVER_OPTS=(--pool "$POOL4" --pool "$POOL6" --lease-time 10)

e2e_init t_81_crash
topology_create "$CLIENTS"
server_start "${SERVER_OPTS[@]}"

# The first "bound:" line of client N's log, as "ip4 A ip6 B", or nothing.
first_binding() {
	sed -n 's/^bound: \(ip4 [^ ]* ip6 [^ ]*\) .*/\1/p' "${CLIENT_LOG[$1]}" 2>/dev/null |
		head -n 1
}

# bound_count: sets BOUND to the number of clients that logged a binding.
# Builtins only, so that polling stays fast on a busy machine.
BOUND=0
bound_count() {
	local f line
	BOUND=0
	for f in "$E2E_TMP"/client*.log; do
		[ -f "$f" ] || continue
		while IFS= read -r line; do
			if [[ $line == bound:* ]]; then
				BOUND=$((BOUND + 1))
				break
			fi
		done <"$f"
	done
}

# Runs in the background while the clients start: kills the server (the
# PIDs in crash_pids) once CRASH_AFTER clients are bound. It polls every
# 10 ms, sleeping on a FIFO that nobody writes.
crasher() {
	local end=$((SECONDS + 15))
	mkfifo "$E2E_TMP/tick" && exec 3<>"$E2E_TMP/tick" || exit 1
	bound_count
	while [ "$BOUND" -lt "$CRASH_AFTER" ]; do
		[ "$SECONDS" -lt "$end" ] || exit 1
		read -rt 0.01 -u 3
		bound_count
	done
	kill -KILL "${crash_pids[@]}"
	bound_count
	say "server killed with $BOUND clients bound"
}

# The server and its engine, if it has forked one.
mapfile -t crash_pids < <(printf '%s\n' "$SERVER_PID"; pid_descendants "$SERVER_PID")
crasher &
crasher_pid=$!
E2E_PIDS+=("$crasher_pid")
# The shell would report the killed server on stderr, in the midst of this.
{
	for ((n = 1; n <= CLIENTS; n++)); do
		client_start "$n"
	done
	wait "$crasher_pid" || die "fewer than $CRASH_AFTER clients were bound within 15 s"
	wait "$SERVER_PID"
} 2>/dev/null
for pid in "${crash_pids[@]}"; do
	wait_for -t 3 pid_gone "$pid" || die "process $pid of the server outlived SIGKILL"
done
# Answers sent before the crash may still be on their way to a client's log.
sleep 1

declare -a before mark
bound_before=0
for ((n = 1; n <= CLIENTS; n++)); do
	before[n]=$(first_binding "$n")
	mark[n]=$(log_mark "${CLIENT_LOG[$n]}")
	[ -n "${before[n]}" ] && bound_before=$((bound_before + 1))
done
say "$bound_before of $CLIENTS clients were bound before the crash"

server_mark=$(log_mark "$SERVER_LOG")
server_start "${SERVER_OPTS[@]}"
restored=$(log_since "$SERVER_LOG" "$server_mark" |
	sed -n 's/^journal .*: restored \([0-9]*\) leases.*/\1/p')
say "the restarted server restored ${restored:-no} leases"
check "the restarted server restored at least the $bound_before leases it had answered" \
	test "${restored:-0}" -ge "$bound_before"

# Whether every client is bound and has renewed since the restart.
all_renewed() {
	local n
	for ((n = 1; n <= CLIENTS; n++)); do
		client_has_lease "$n" || return 1
		log_since "${CLIENT_LOG[$n]}" "${mark[n]}" | grep -q '^renewed: ' || return 1
	done
}

check "every client is bound and renewed with the restarted server" \
	wait_for -t 30 all_renewed

lost=
for ((n = 1; n <= CLIENTS; n++)); do
	[ -n "${before[n]}" ] || continue
	a4=$(client_addr4 "$n")
	a6=$(client_addr6 "$n")
	if [ "ip4 ${a4%/*} ip6 ${a6%/*}" != "${before[n]}" ]; then
		lost="$lost client $n was told '${before[n]}' and has '$a4 $a6';"
	elif ! hub_peer_has "$n" "$a4" "$a6"; then
		lost="$lost client $n's peer on the hub lacks $a4 or $a6;"
	fi
done
check_eq "every client bound before the crash keeps the addresses it was told" "" "$lost"

# Lease addresses in the hub's allowed-IPs, one a line with its peer.
hub_leases() {
	hub_allowed_ips | awk '{ for (i = 2; i <= NF; i++)
		if ($i != "(none)" && $i !~ /^fe80:/) print $i, $1 }'
}
twice=$(hub_leases | awk '{ print $1 }' | sort | uniq -d | tr '\n' ' ')
check_eq "no address is in two peers' allowed-IPs on the hub" "" "$twice"
check_eq "the hub's peers hold $((2 * CLIENTS)) lease addresses" \
	$((2 * CLIENTS)) "$(hub_leases | wc -l)"

twice=$(for ((n = 1; n <= CLIENTS; n++)); do
	client_addr4 "$n"
	client_addr6 "$n"
done | sort | uniq -d | tr '\n' ' ')
check_eq "no two clients have the same address" "" "$twice"
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
