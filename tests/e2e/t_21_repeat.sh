#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Load from one peer. Client 1 runs no daemon: the connect helper asks for
# any IPv4 and IPv6 address from its link-local and port 970, eight times
# in a row. The first request is a grant; the seven after it, long before
# T1, get the same lease back, ending when it did, at no cost: the journal
# gets one record (the grant) and nothing else changes, on the hub or in
# the journal file. Then thirty malformed requests from the same peer:
# the server answers each, logs the first, and holds the others back.
#
# Log line this test reads (server/conn.c):
#   "bad request from ADDR: REASON"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.21.0.0/24
POOL6=fd21::/64
LEASE=600
REPEATS=7
BAD=30
CONNECT=$E2E_DIR/connect
HOSTILE=$E2E_DIR/hostile

e2e_init t_21_repeat
[ -x "$CONNECT" ] || die "$CONNECT is missing: run make e2e"
[ -x "$HOSTILE" ] || die "$HOSTILE is missing: run make e2e"
topology_create 1
client_route_hub 1
server_start --pool "$POOL4" --pool "$POOL6" --lease-time "$LEASE"

# ask N: one request from client 1; its answer goes to $E2E_TMP/ask-N.out.
ask() {
	ip netns exec "${CLIENT_NS[1]}" "$CONNECT" "${CLIENT_IF[1]}" "${CLIENT_LL[1]}" 970 \
		fe80:: 970 >"$E2E_TMP/ask-$1.out" 2>&1
}

# field KEY N: the value of KEY= in answer N (the first, for ip).
field() {
	sed -n "s/^$1=//p" "$E2E_TMP/ask-$2.out" | head -n 1
}

# counter NAME: a counter of the server's status.
counter() {
	ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF" |
		sed -n "s/.* $1 \([0-9]*\).*/\1/p"
}

ask 0 || die "the first request got no answer"
lease=$(grep '^ip=' "$E2E_TMP/ask-0.out" | sort | tr '\n' ' ')
start0=$(field leasestart 0)
say "granted: $lease leasestart $start0 leasetime $(field leasetime 0)"
check_eq "the grant is for the lease time" "$LEASE" "$(field leasetime 0)"
check_eq "one journal record for the grant" 1 "$(counter journal_records)"
allowed=$(hub_peer_allowed_ips 1 | sort | tr '\n' ' ')
journal_sum=$(b2sum "$(hub_journal)" | cut -d ' ' -f 1)

sleep 1.1
ends=
for ((i = 1; i <= REPEATS; i++)); do
	ask "$i" || die "request $i got no answer"
	[ "$(grep '^ip=' "$E2E_TMP/ask-$i.out" | sort | tr '\n' ' ')" = "$lease" ] ||
		die "request $i got another lease: $(tr '\n' ' ' <"$E2E_TMP/ask-$i.out")"
	ends+=" $(($(field leasestart "$i") + $(field leasetime "$i") - start0 - LEASE))"
done
say "each answer's end, against the grant's: $ends"
# The lease runs on the boot clock in whole seconds, the answers on the
# wall clock: the two seconds tick apart, hence a second either way.
check_eq "every repeat ends the lease when the grant did, give or take a second" "" \
	"$(tr ' ' '\n' <<<"$ends" | grep -vx -e '' -e 0 -e -1 -e 1)"
check "the repeats count from now, with what is left" \
	test "$(field leasetime "$REPEATS")" -lt "$LEASE"
check_eq "the repeats were counted" "$REPEATS" "$(counter repeats)"
check_eq "no journal record for any of them" 1 "$(counter journal_records)"
check_eq "the journal file did not change" "$journal_sum" \
	"$(b2sum "$(hub_journal)" | cut -d ' ' -f 1)"
check_eq "the hub's allowed-IPs did not change" "$allowed" \
	"$(hub_peer_allowed_ips 1 | sort | tr '\n' ' ')"
check_eq "no device update failed" 0 "$(counter errors)"

mark=$(log_mark "$SERVER_LOG")
cases=()
for ((i = 0; i < BAD; i++)); do
	cases+=(lone_eq)
done
ip netns exec "${CLIENT_NS[1]}" "$HOSTILE" "${CLIENT_IF[1]}" "${CLIENT_LL[1]}" "${cases[@]}" \
	>"$E2E_TMP/hostile.out" 2>&1
check_eq "each of the $BAD malformed requests was answered" 0 "$?"
check_eq "they were counted" "$BAD" "$(counter invalid)"
check_eq "one line was logged for them" 1 \
	"$(log_since "$SERVER_LOG" "$mark" | grep -c "bad request from ${CLIENT_LL[1]}: ")"
check "the server still runs" pid_alive "$SERVER_PID"
e2e_finish
