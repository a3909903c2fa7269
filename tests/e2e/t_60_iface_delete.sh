#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Deleting a client's WireGuard interface makes the client exit within a few
# seconds; the server and the other client carry on.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.94.0.0/24
POOL6=fd94::/64

e2e_init t_60_iface_delete
topology_create 2
server_start --pool "$POOL4" --pool "$POOL6"
client_start 1
client_start 2
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
client_wait_lease 2 || die "client 2 got no IPv4 and IPv6 lease"

ip -n "${CLIENT_NS[1]}" link del "${CLIENT_IF[1]}" || die "cannot delete ${CLIENT_IF[1]}"
check "client 1 exits within 5 s of its interface's deletion" \
	wait_for -t 5 not pid_alive "${CLIENT_PID[1]}"
if ! pid_alive "${CLIENT_PID[1]}"; then
	wait "${CLIENT_PID[1]}"
	say "client 1 exited with status $?"
fi
check "client 1 logged why it exited" grep -q "is gone" "${CLIENT_LOG[1]}"
check "client 2 still runs" pid_alive "${CLIENT_PID[2]}"
check "client 2 keeps its lease" client_has_lease 2
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
