#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A client remembers its lease across restarts. Stopped with SIGTERM it
# releases the lease (the server returns the addresses to its pools) but
# keeps the addresses as a hint: started again with the same key, it asks
# for them and gets them back. Killed with SIGKILL it cannot release, and
# started again it takes up the lease that still runs, with the same
# addresses.
#
# Log lines this test reads (client/main.c, server/conn.c):
#   client: "asking for the remembered addresses: ip4 A ip6 B"
#           "remembered lease: ip4 A ip6 B, Ns left"
#           "bound: ip4 A ip6 B leasetime T leasestart S"
#   server: "peer KEY: released"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# Large pools, so that getting the same address again by chance is unlikely.
POOL4=10.82.0.0/16
POOL6=fd82::/64

e2e_init t_82_client_restart
topology_create 1
server_start --pool "$POOL4" --pool "$POOL6" --lease-time 60
client_start 1
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
a4=$(client_addr4 1)
a6=$(client_addr6 1)
say "client 1: $a4 $a6"

hub_has_lease_only() {
	[ "$(hub_peer_allowed_ips 1 | sort)" = "$(printf '%s\n' "$a4" "$a6" "${CLIENT_LL[1]}/128" | sort)" ]
}

# ---- SIGTERM: released, remembered as a hint ----
client_stop 1
rc=$?
check_eq "client 1 exits 0 on SIGTERM" 0 "$rc"
check "server logged the release" \
	wait_for -t 3 grep -q "peer ${CLIENT_PUB[1]}: released" "$SERVER_LOG"
check_eq "client 1's interface has no lease address after the release" "" \
	"$(client_addr4 1)$(client_addr6 1)"

mark=$(log_mark "${CLIENT_LOG[1]}")
client_start 1
client_wait_lease 1 || die "client 1 got no lease after its restart"
check_eq "after a release and restart: the same IPv4 address" "$a4" "$(client_addr4 1)"
check_eq "after a release and restart: the same IPv6 address" "$a6" "$(client_addr6 1)"
check "the hub's peer has the same lease" hub_has_lease_only
check "client 1 asked for the remembered addresses" \
	grep -qF "asking for the remembered addresses: ip4 ${a4%/*} ip6 ${a6%/*}" \
	<(log_since "${CLIENT_LOG[1]}" "$mark")
check "client 1 logged the binding" \
	grep -qF "bound: ip4 ${a4%/*} ip6 ${a6%/*} " <(log_since "${CLIENT_LOG[1]}" "$mark")

# ---- SIGKILL: no release; the lease still runs ----
client_kill 1
server_mark=$(log_mark "$SERVER_LOG")
mark=$(log_mark "${CLIENT_LOG[1]}")

client_renewed() {
	log_since "${CLIENT_LOG[1]}" "$mark" | grep -qE '^(bound|renewed): '
}

client_start 1
check "client 1 took up its lease again" wait_for -t 10 client_renewed
check_eq "after a crash and restart: the same IPv4 address" "$a4" "$(client_addr4 1)"
check_eq "after a crash and restart: the same IPv6 address" "$a6" "$(client_addr6 1)"
check "the hub's peer has the same lease" hub_has_lease_only
check "client 1 logged the remembered lease" \
	grep -qF "remembered lease: ip4 ${a4%/*} ip6 ${a6%/*}, " <(log_since "${CLIENT_LOG[1]}" "$mark")
check "the server renewed the lease rather than granting one" \
	grep -qF "peer ${CLIENT_PUB[1]}: renewed ip4 $a4 ip6 $a6 " <(log_since "$SERVER_LOG" "$server_mark")
check "client 1 still runs" pid_alive "${CLIENT_PID[1]}"
e2e_finish
