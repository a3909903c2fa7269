#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Leases that run out. Three clients are killed outright, so none can
# release its lease; when the 10-second leases end, the hub takes every
# leased address off the three peers (in one exchange with its parent when
# they end together), keeps their link-locals, and logs each expiry.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.32.0.0/24
POOL6=fd32::/64

e2e_init t_32_expiry
topology_create 3
server_start --pool "$POOL4" --pool "$POOL6" --lease-time 10
for n in 1 2 3; do
	client_start "$n"
done
for n in 1 2 3; do
	client_wait_lease "$n" || die "client $n got no IPv4 and IPv6 lease"
	check "hub holds client $n's lease" hub_peer_has "$n" "$(client_addr4 "$n")" \
		"$(client_addr6 "$n")"
done
for n in 1 2 3; do
	client_kill "$n"
done

hub_dropped_all() {
	local n

	for n in 1 2 3; do
		[ "$(hub_peer_allowed_ips "$n" | tr '\n' ' ' | sed 's/ $//')" = \
			"${CLIENT_LL[$n]}/128" ] || return 1
	done
}

check "the hub took every expired lease's addresses off, keeping the link-locals" \
	wait_for -t 18 hub_dropped_all
for n in 1 2 3; do
	check "server logged client $n's lease expiring" \
		grep -qF "peer ${CLIENT_PUB[$n]}: lease expired" "$SERVER_LOG"
done
check "no removal failed" not grep -q "cannot remove lease addresses" "$SERVER_LOG"
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
