#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Privilege separation, read from /proc/PID/status: the server's parent
# keeps CAP_NET_ADMIN and CAP_KILL alone; its engine runs as wg-dynamic with
# no capabilities and no_new_privs, confined to its own directory inside the
# state directory; the client keeps CAP_NET_ADMIN and CAP_NET_BIND_SERVICE
# alone. Then a crashed engine takes the whole server down, with a clear
# message and status 74.
#
# Log line this test reads (server/main.c):
#   "the engine died of signal 11 (Segmentation fault); stopping the server"

# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# Capability numbers from linux/capability.h.
CAP_KILL=5
CAP_NET_BIND_SERVICE=10
CAP_NET_ADMIN=12

status_field() {
	awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status"
}

caps_of() {
	printf '%d' "0x$(status_field "$1" CapEff)"
}

e2e_init t_92_privsep
topology_create 1
server_start --pool 10.92.0.0/24 --pool fd92::/64
client_start 1
client_wait_lease 1 || die "client 1 got no lease"

engine=$(pgrep -P "$SERVER_PID" -x wg-dynamic-serv | head -n 1)
[ -n "$engine" ] || die "the server has no engine process"
say "parent $SERVER_PID: uid $(status_field "$SERVER_PID" Uid) CapEff $(status_field "$SERVER_PID" CapEff)"
say "engine $engine: uid $(status_field "$engine" Uid) CapEff $(status_field "$engine" CapEff)"
say "client ${CLIENT_PID[1]}: CapEff $(status_field "${CLIENT_PID[1]}" CapEff)"

check_eq "the parent keeps CAP_NET_ADMIN and CAP_KILL alone" \
	"$(((1 << CAP_NET_ADMIN) | (1 << CAP_KILL)))" "$(caps_of "$SERVER_PID")"
check_eq "the parent cannot gain privileges" 1 "$(status_field "$SERVER_PID" NoNewPrivs)"
check_eq "the engine has no capabilities" 0 "$(caps_of "$engine")"
check_eq "the engine permits itself none" 0000000000000000 "$(status_field "$engine" CapPrm)"
check_eq "the engine runs as wg-dynamic" "$(id -u wg-dynamic)" "$(status_field "$engine" Uid)"
check_eq "the engine cannot gain privileges" 1 "$(status_field "$engine" NoNewPrivs)"
check_eq "the engine is confined to its directory in the state directory" \
	"$(readlink -f "$E2E_TMP/hub-state/server")" "$(readlink "/proc/$engine/root")"
check_eq "the client keeps CAP_NET_ADMIN and CAP_NET_BIND_SERVICE alone" \
	"$(((1 << CAP_NET_ADMIN) | (1 << CAP_NET_BIND_SERVICE)))" "$(caps_of "${CLIENT_PID[1]}")"
check_eq "the client cannot gain privileges" 1 "$(status_field "${CLIENT_PID[1]}" NoNewPrivs)"

kill -SEGV "$engine"
server_gone() {
	! own_child_alive "$SERVER_PID"
}
check "a crashed engine stops the parent too" wait_for -t 5 server_gone
wait "$SERVER_PID"
check_eq "the server exits with status 74" 74 "$?"
check "the server says the engine died" grep -q "the engine died of signal 11" "$SERVER_LOG"
check "no engine is left behind" not pid_alive "$engine"

# The other way round: a parent killed outright takes the engine along.
server_start --pool 10.92.0.0/24 --pool fd92::/64
engine=$(pgrep -P "$SERVER_PID" -x wg-dynamic-serv | head -n 1)
[ -n "$engine" ] || die "the restarted server has no engine process"
kill -KILL "$SERVER_PID"
engine_exited() {
	# Gone, or a zombie waiting for a reaper: either way it stopped.
	[ ! -e "/proc/$engine" ] || grep -q '^State:.*Z' "/proc/$engine/status" 2>/dev/null
}
check "an engine whose parent was killed exits" wait_for -t 5 engine_exited
check "it says why" wait_for -t 2 grep -q "the privileged parent is gone" "$SERVER_LOG"
e2e_finish
