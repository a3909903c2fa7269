#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The server answers only connections from source port 970 (only root can
# bind it). From any other port the connection is closed without an answer
# and the server logs the refusal, once for the peer in 10 s however often
# it comes, and counts each. The same request from port 970 is answered,
# which shows the helper itself works.
#
# Log line this test reads (server/conn.c):
#   "refused connection from [ADDR]:PORT: source port is not 970"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.95.0.0/24
POOL6=fd95::/64
CONNECT=$E2E_DIR/connect

e2e_init t_50_bad_port
[ -x "$CONNECT" ] || die "$CONNECT is missing: run make e2e"
topology_create 1
server_start --pool "$POOL4" --pool "$POOL6"

# connect_from PORT: one request from client 1's link-local and PORT; the
# helper's output goes to $E2E_TMP/connect-PORT.out.
connect_from() {
	ip netns exec "${CLIENT_NS[1]}" "$CONNECT" "${CLIENT_IF[1]}" "${CLIENT_LL[1]}" "$1" \
		fe80:: 970 >"$E2E_TMP/connect-$1.out" 2>&1
}

for port in 971 32970; do
	connect_from "$port"
	rc=$?
	say "from port $port: $(head -n 1 "$E2E_TMP/connect-$port.out")"
	check_eq "from port $port: closed without an answer" 2 "$rc"
done
check "server logged the refusal of port 971" wait_for -t 2 \
	grep -q "refused connection from \[${CLIENT_LL[1]}\]:971: source port" "$SERVER_LOG"
# One line per peer and cause in 10 s: the second refusal is only counted.
check "and held back the next one from the same peer" not \
	grep -q "refused connection from \[${CLIENT_LL[1]}\]:32970: source port" "$SERVER_LOG"
check "both were counted" grep -q " refused_port 2 " \
	<(ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF")
check "hub: client 1's peer got no lease from those" \
	test "$(hub_peer_allowed_ips 1)" = "${CLIENT_LL[1]}/128"

connect_from 970
rc=$?
check_eq "from port 970: answered" 0 "$rc"
check "from port 970: the answer leases an address from $POOL6" \
	grep -q '^ip=fd95::' "$E2E_TMP/connect-970.out"
check "server still runs" pid_alive "$SERVER_PID"
e2e_finish
