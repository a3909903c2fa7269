#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A client and a server on one host, both with the default state
# directory, /var/lib/wg-dynamic: neither is given --state-dir. Both run in
# one private mount namespace that holds a fresh tmpfs at that place, so
# that the host's own directory is neither read nor changed. The server
# serves and its journal lives in /var/lib/wg-dynamic/server, the engine's;
# the client gets its lease and saves it in /var/lib/wg-dynamic, root's
# alone; and the host's directory is as it was.
#
# Log lines this test reads (server/engine.c):
#   server: "serving IFACE on [fe80::%IFACE]:970, ..."

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.87.0.0/24
POOL6=fd87::/64
DEFAULT=/var/lib/wg-dynamic

e2e_init t_87_default_state_dir
command -v unshare >/dev/null && command -v nsenter >/dev/null ||
	die "unshare and nsenter are missing (util-linux)"
id -u wg-dynamic >/dev/null 2>&1 || die "no user wg-dynamic: run make deps"
ENGINE_UID=$(id -u wg-dynamic)

# The mount point must exist on the host; one made here goes again.
MADE_DEFAULT=0
if [ ! -d "$DEFAULT" ]; then
	mkdir -p "$DEFAULT" || die "cannot create $DEFAULT"
	MADE_DEFAULT=1
fi
host_before=$(stat -c '%u %g %a' "$DEFAULT"; ls -A "$DEFAULT" | sort)

e2e_before_cleanup() {
	[ "$MADE_DEFAULT" = 1 ] && rmdir "$DEFAULT" 2>/dev/null
	return 0
}

topology_create 1

# The namespace's holder: a tmpfs at the default place, then a sleep that
# keeps the namespace for the daemons started into it.
unshare -m --propagation private sh -c \
	"mount -t tmpfs -o mode=0755 wgd-state $DEFAULT && exec sleep 600" &
HOLDER=$!
E2E_PIDS+=("$HOLDER")
holder_ready() {
	nsenter -t "$HOLDER" -m findmnt -n "$DEFAULT" >/dev/null 2>&1
}
wait_for -t 5 holder_ready || die "no tmpfs at $DEFAULT in the private namespace"

# in_ns CMD...: CMD in the holder's mount namespace. (The daemons start
# with nsenter itself, not through this function, so that $! is theirs.)
in_ns() {
	nsenter -t "$HOLDER" -m "$@"
}

SERVER_LOG=$E2E_TMP/server.log
mark=$(log_mark "$SERVER_LOG")
nsenter -t "$HOLDER" -m ip netns exec "$HUB_NS" "$SERVER_BIN" -v --pool "$POOL4" --pool "$POOL6" "$HUB_IF" \
	>>"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
E2E_PIDS+=("$SERVER_PID")
wait_for -t 10 server_ready "$mark" || die "wg-dynamic-server is not serving with the defaults"

CLIENT_LOG[1]=$E2E_TMP/client1.log
nsenter -t "$HOLDER" -m ip netns exec "${CLIENT_NS[1]}" "$CLIENT_BIN" -f -v "${CLIENT_IF[1]}" \
	>>"${CLIENT_LOG[1]}" 2>&1 &
CLIENT_PID[1]=$!
E2E_PIDS+=("${CLIENT_PID[1]}")
check "the client gets a lease beside the server" client_wait_lease 1

owner_mode() {
	in_ns stat -c '%u %a' "$1" 2>/dev/null
}
check_eq "the state directory is root's, mode 755" "0 755" "$(owner_mode "$DEFAULT")"
check_eq "the engine's directory is wg-dynamic's, mode 700" "$ENGINE_UID 700" \
	"$(owner_mode "$DEFAULT/server")"
check_eq "the journal is in it, the engine's" "$ENGINE_UID 600" \
	"$(owner_mode "$DEFAULT/server/$HUB_IF.leases")"
lease_saved() {
	[ "$(owner_mode "$DEFAULT/${CLIENT_IF[1]}.lease")" = "0 600" ]
}
check "the client saved its lease there, root's, mode 600" wait_for -t 5 lease_saved
check "the saved lease names the hub" \
	in_ns grep -q "^hub=$HUB_PUB\$" "$DEFAULT/${CLIENT_IF[1]}.lease"
check "the client said nothing of its state directory" \
	not grep -q "state directory" "${CLIENT_LOG[1]}"
check "the server still runs" pid_alive "$SERVER_PID"

check_eq "the host's own $DEFAULT is as it was" "$host_before" \
	"$(stat -c '%u %g %a' "$DEFAULT"; ls -A "$DEFAULT" | sort)"

# Done with the namespace: the client releases into it, then it goes.
check "the client releases and exits" client_stop 1
stop_pid "$SERVER_PID"
kill_pid "$HOLDER"
e2e_finish
