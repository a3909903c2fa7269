#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# No file operation of the server can be redirected by another user
# (docs/security.md, "Local users and files"):
#
#  (c) a state directory another user can write, or one below a directory
#      another user can write, is refused with one line and status 73,
#      and nothing is made in it;
#  (b) a client and a server share one state directory, as they do with the
#      defaults: it is root's (0755), the client's lease is saved in it
#      (root's, 0600) and the engine's journal lives in STATE/server, which
#      the engine's user alone can write;
#  (a) a symbolic link planted by the engine's user as its journal, or one
#      (or a hard link) planted at the old place STATE/IFACE.leases in a
#      directory of the old layout, owned by nobody: the server refuses to
#      start with one line and status 72, and the file the link names keeps
#      its owner, mode and content;
#  (d) a state directory of the old layout (owned by nobody, the journal in
#      it) is taken back by root and the journal moved into STATE/server:
#      the restarted server restores the lease and puts its addresses back
#      on the device, and the client keeps them. This start runs with the
#      systemd unit's capability bounding set, without CAP_DAC_OVERRIDE.
#
# Log lines this test reads (server/main.c, server/restore.c):
#   "state directory DIR is writable by user N: make it root's ..."
#   "state directory DIR: PARENT above it is writable by every user: ..."
#   "PATH is a symbolic link, not a lease journal; it is left untouched: ..."
#   "PATH is a symbolic link, not a lease journal to move into DIR/server; ..."
#   "took the state directory DIR back from user N: ..."
#   "moved the lease journal DIR/IFACE.leases to DIR/server/IFACE.leases, ..."
#   "journal PATH: restored N leases, ..."

# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.93.0.0/24
POOL6=fd93::/64
SERVER_OPTS=(--pool "$POOL4" --pool "$POOL6" --lease-time 10)

e2e_init t_93_state_dir
id wg-dynamic >/dev/null 2>&1 || die "no user wg-dynamic: run make deps"
command -v setpriv >/dev/null || die "setpriv is missing (util-linux)"
ENGINE_UID=$(id -u wg-dynamic)
NOBODY_UID=$(id -u nobody)
topology_create 1
STATE=$E2E_TMP/hub-state
J=$HUB_IF.leases

# owner_mode PATH: "UID MODE" of PATH itself, links not followed.
owner_mode() {
	stat -c '%u %a' "$1" 2>/dev/null
}

# as_user USER DIR CMD...: CMD as USER with DIR as its working directory,
# entered as root first: the user need not be able to reach DIR by path.
as_user() {
	local user=$1 dir=$2
	shift 2
	(cd "$dir" && setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups "$@")
}

# refused STATUS PATTERN WHAT [OPTION...]: a server start that must fail.
refused() {
	local want=$1 pattern=$2 what=$3 mark rc
	shift 3
	mark=$(log_mark "$E2E_TMP/server.log")
	server_run -t 5 "${SERVER_OPTS[@]}" "$@"
	rc=$?
	check_eq "$what: the server refuses with status $want" "$want" "$rc"
	# One that started after all would hold port 970 for the next.
	[ "$rc" -ne 124 ] || server_stop 5
	check "$what: it says '$pattern'" grep -qF -- "$pattern" \
		<(log_since "$E2E_TMP/server.log" "$mark")
	say "  $(log_since "$E2E_TMP/server.log" "$mark" | tail -n 1)"
}

# ---- (c) state directories another user can write ----

mkdir -m 0755 "$E2E_TMP/theirs"
chown 1000:1000 "$E2E_TMP/theirs"
refused 73 "state directory $E2E_TMP/theirs is writable by user 1000: make it root's and not group- or world-writable (chown root:root $E2E_TMP/theirs; chmod 755 $E2E_TMP/theirs)" \
	"(c) a directory of uid 1000" --state-dir "$E2E_TMP/theirs"
check "(c) nothing was made in it" test ! -e "$E2E_TMP/theirs/server"
check_eq "(c) it still belongs to uid 1000" "1000 755" "$(owner_mode "$E2E_TMP/theirs")"

mkdir -m 0777 "$E2E_TMP/everyones"
chmod 0777 "$E2E_TMP/everyones"
refused 73 "state directory $E2E_TMP/everyones is writable by every user" \
	"(c) a world-writable directory" --state-dir "$E2E_TMP/everyones"
check "(c) nothing was made in the world-writable one" test ! -e "$E2E_TMP/everyones/server"
refused 73 "state directory $E2E_TMP/everyones/state: $E2E_TMP/everyones above it is writable by every user" \
	"(c) a directory below a world-writable one" --state-dir "$E2E_TMP/everyones/state"
check "(c) nothing was made below the world-writable one" test ! -e "$E2E_TMP/everyones/state"

# ---- (b) one state directory for a client and a server ----

server_start "${SERVER_OPTS[@]}"
CLIENT_LOG[1]=$E2E_TMP/client1.log
ip netns exec "${CLIENT_NS[1]}" "$CLIENT_BIN" -f -v --state-dir "$STATE" "${CLIENT_IF[1]}" \
	>>"${CLIENT_LOG[1]}" 2>&1 &
CLIENT_PID[1]=$!
E2E_PIDS+=("$!")
client_wait_lease 1 || die "client 1 got no lease"
addr4=$(client_addr4 1)
addr6=$(client_addr6 1)
check_eq "(b) the state directory is root's, mode 755" "0 755" "$(owner_mode "$STATE")"
check_eq "(b) the engine's directory is wg-dynamic's, mode 700" "$ENGINE_UID 700" \
	"$(owner_mode "$STATE/server")"
check_eq "(b) the journal is in the engine's directory, the engine's" "$ENGINE_UID" \
	"$(stat -c %u "$STATE/server/$J" 2>/dev/null)"
check "(b) there is no journal at the old place" test ! -e "$STATE/$J"
check "(b) the client saved its lease there" wait_for -t 5 test -f "$STATE/${CLIENT_IF[1]}.lease"
check_eq "(b) the client's lease is root's, mode 600" "0 600" \
	"$(owner_mode "$STATE/${CLIENT_IF[1]}.lease")"
check "(b) the engine's user cannot write the state directory" \
	not as_user wg-dynamic "$STATE" touch planted
check "(b) nor the client's lease" not as_user wg-dynamic "$STATE" sh -c ": >>${CLIENT_IF[1]}.lease"

# ---- (a) links planted where the journal is looked for ----

VICTIM=$E2E_TMP/victim
printf 'root only\n' >"$VICTIM"
chmod 0600 "$VICTIM"
victim_unchanged() {
	check_eq "$1: the victim keeps its owner and mode" "0 600" "$(owner_mode "$VICTIM")"
	check_eq "$1: the victim keeps its content" "root only" "$(cat "$VICTIM")"
}

server_stop 5 || die "the server did not stop on SIGTERM"
# The engine's user, which a compromised engine runs as, owns its directory.
as_user wg-dynamic "$STATE/server" mv "$J" "$J.saved" || die "cannot move the journal aside"
check "(a) the engine's user can plant a link as its journal" \
	as_user wg-dynamic "$STATE/server" ln -s "$VICTIM" "$J"
refused 72 "$STATE/server/$J is a symbolic link, not a lease journal; it is left untouched" \
	"(a) a link as the journal"
victim_unchanged "(a) a link as the journal"
check "(a) the link is left where it was" test -L "$STATE/server/$J"
as_user wg-dynamic "$STATE/server" mv -f "$J.saved" "$J" || die "cannot put the journal back"

# The old layout: the state directory itself was the engine's user's.
OLD=$E2E_TMP/old-state
mkdir -m 0700 "$OLD"
chown nobody:nogroup "$OLD"
as_user nobody "$OLD" ln -s "$VICTIM" "$J" || die "nobody cannot plant a link in $OLD"
refused 72 "$OLD/$J is a symbolic link, not a lease journal to move into $OLD/server" \
	"(a) a link at the old place" --state-dir "$OLD"
victim_unchanged "(a) a link at the old place"
check "(a) the link at the old place is left where it was" test -L "$OLD/$J"
check_eq "(a) the old state directory is root's now" "0 755" "$(owner_mode "$OLD")"
rm -f "$OLD/$J"
# A hard link names the victim itself; fs.protected_hardlinks keeps nobody
# from making one, so root plays the part of an older kernel.
ln "$VICTIM" "$OLD/$J"
refused 72 "$OLD/$J is a file with other names (hard links), not a lease journal to move" \
	"(a) a hard link at the old place" --state-dir "$OLD"
victim_unchanged "(a) a hard link at the old place"

# ---- (d) a state directory of the old layout ----

# The start-up the systemd unit allows: its bounding set, nothing more.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$E2E_TOP/systemd/wg-dynamic-server@.service" |
	tr 'A-Z' 'a-z' | sed -e 's/cap_/+/g' -e 's/ /,/g')
[ -n "$caps" ] || die "no CapabilityBoundingSet in the server's unit"
printf '#!/bin/sh\nexec setpriv --bounding-set=-all,%s %s "$@"\n' "$caps" "$SERVER_BIN" \
	>"$E2E_TMP/server-unit-caps"
chmod 0755 "$E2E_TMP/server-unit-caps"
say "(d) bounding set: $caps"

# Back to how servers before the engine's directory left things: the
# journal in the state directory, which belongs to nobody, mode 700.
mv "$STATE/server/$J" "$STATE/$J" && rmdir "$STATE/server" &&
	chown -R nobody:nogroup "$STATE" && chmod 0700 "$STATE" ||
	die "cannot make an old-layout state directory"
# Only the journal knows the lease now: its addresses leave the device.
ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "${CLIENT_PUB[1]}" allowed-ips "fe80::1:1/128" ||
	die "cannot take client 1's addresses off the hub"
mark=$(log_mark "$SERVER_LOG")
cmark=$(log_mark "${CLIENT_LOG[1]}")
SERVER_BIN=$E2E_TMP/server-unit-caps server_start "${SERVER_OPTS[@]}"
log=$(log_since "$SERVER_LOG" "$mark")
check "(d) the server took the state directory back from nobody" \
	grep -qF "took the state directory $STATE back from user $NOBODY_UID" <<<"$log"
check "(d) and moved the journal into the engine's directory" \
	grep -qF "moved the lease journal $STATE/$J to $STATE/server/$J" <<<"$log"
check "(d) the journal's lease is restored" \
	grep -qF "journal $STATE/server/$J: restored 1 leases" <<<"$log"
check_eq "(d) the state directory is root's, mode 755" "0 755" "$(owner_mode "$STATE")"
check_eq "(d) the engine's directory is wg-dynamic's, mode 700" "$ENGINE_UID 700" \
	"$(owner_mode "$STATE/server")"
check_eq "(d) the journal is the engine's" "$ENGINE_UID" "$(stat -c %u "$STATE/server/$J")"
check "(d) nothing is left at the old place" test ! -e "$STATE/$J"
check "(d) the lease's addresses are back on the hub" hub_peer_has 1 "$addr4" "$addr6"
renewed_since_restart() {
	log_since "${CLIENT_LOG[1]}" "$cmark" | grep -q '^renewed: '
}
check "(d) the client renewed with the restarted server" wait_for -t 15 renewed_since_restart
check "(d) the server granted nothing new" \
	not grep -q ': granted ' <(log_since "$SERVER_LOG" "$mark")
check_eq "(d) the client kept its addresses" "$addr4 $addr6" \
	"$(client_addr4 1) $(client_addr6 1)"
engine=$(pgrep -P "$SERVER_PID" | head -n 1)
check_eq "(d) the engine is confined to its directory" "$(readlink -f "$STATE/server")" \
	"$(readlink "/proc/$engine/root" 2>/dev/null)"
e2e_finish
