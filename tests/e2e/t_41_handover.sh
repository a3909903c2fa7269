#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# An address released by one peer and granted to another in the same
# event-loop round. The IPv4 pool has one address; client 1 holds it.
# Neither client runs a daemon. With the server's engine stopped, client 1
# releases its lease and client 2 asks for any address; the engine, let go,
# takes both requests in one round. The privileged parent never lets an
# address change peers within one batch of changes, so the engine sends the
# release and the grant in two: client 2 gets the address, on the hub too,
# and no change is refused.
#
# Log line this test reads (server/privsep.c), which must not appear:
#   "refused the engine's change to peer KEY: REASON"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.41.0.5/32
POOL6=fd41::/64
CONNECT=$E2E_DIR/connect
HOSTILE=$E2E_DIR/hostile

e2e_init t_41_handover
[ -x "$CONNECT" ] || die "$CONNECT is missing: run make e2e"
[ -x "$HOSTILE" ] || die "$HOSTILE is missing: run make e2e"
topology_create 2
client_route_hub 1
client_route_hub 2
server_start --pool "$POOL4" --pool "$POOL6"
engine=$(pgrep -P "$SERVER_PID" -x wg-dynamic-serv | head -n 1)
[ -n "$engine" ] || die "the server has no engine process"

# ask N: a request for any address from client N, answered into ask-N.out.
ask() {
	ip netns exec "${CLIENT_NS[$1]}" "$CONNECT" "${CLIENT_IF[$1]}" "${CLIENT_LL[$1]}" 970 \
		fe80:: 970 >"$E2E_TMP/ask-$1.out" 2>&1
}

ask 1 || die "client 1 got no answer"
check "client 1 holds the pool's one IPv4 address" grep -qx "ip=$POOL4" "$E2E_TMP/ask-1.out"
check "so does its peer on the hub" hub_peer_has 1 "$POOL4"

# Both requests wait in the listen queue, in this order, until the engine
# runs again; it then accepts and decides both before it commits.
kill -STOP "$engine"
ip netns exec "${CLIENT_NS[1]}" "$HOSTILE" "${CLIENT_IF[1]}" "${CLIENT_LL[1]}" release \
	>"$E2E_TMP/release.out" 2>&1 &
release_pid=$!
E2E_PIDS+=("$release_pid")
sleep 0.5
ask 2 &
ask_pid=$!
E2E_PIDS+=("$ask_pid")
sleep 0.5
kill -CONT "$engine"
wait "$release_pid"
check_eq "client 1's release was answered" 0 "$?"
wait "$ask_pid"
check_eq "client 2's request was answered" 0 "$?"
say "client 2: $(tr '\n' ' ' <"$E2E_TMP/ask-2.out")"
check "client 2 got the released address" grep -qx "ip=$POOL4" "$E2E_TMP/ask-2.out"
check "with no error" grep -qx "errno=0" "$E2E_TMP/ask-2.out"
check "its peer on the hub has it" hub_peer_has 2 "$POOL4"
check "client 1's peer no longer has it" not hub_peer_has 1 "$POOL4"
check "the parent refused no change" not grep -q "refused the engine's change" "$SERVER_LOG"
check "no device update failed" grep -q " errors 0 " \
	<(ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF")
e2e_finish
