#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The hub's side of the mesh: with --mesh, a lease answer says mesh=1, and a
# peer that holds a lease gets the directory of the peers that asked for it,
# with their leased addresses, the endpoint the hub sees and what they
# reported. A request at the current version is held until the directory
# moves (another peer joins, one releases its lease) or 25 seconds pass. A
# peer without a lease is refused with errno=1, and so are a poll past
# --mesh-max-polls and any request_peers to a hub without --mesh. No client daemon runs:
# connect takes the leases, meshpoll asks for the directory, hostile
# releases, each from a client's namespace.
#
# Log line this test reads (server/main.c):
#   "--mesh: IPv4 forwarding is off, so the hub cannot relay ..."

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.90.0.0/24
POOL6=fd90::/64
CONNECT=$E2E_DIR/connect
HOSTILE=$E2E_DIR/hostile
MESHPOLL=$E2E_DIR/meshpoll

e2e_init t_90_mesh_directory
for helper in "$CONNECT" "$HOSTILE" "$MESHPOLL"; do
	[ -x "$helper" ] || die "$helper is missing: run make e2e"
done
topology_create 3
for n in 1 2 3; do
	client_route_hub "$n"
done
# Forwarding off at the start: the server warns, once, naming the sysctl.
ip netns exec "$HUB_NS" sysctl -qw net.ipv4.ip_forward=0 || die "cannot turn forwarding off"
server_start --mesh --pool "$POOL4" --pool "$POOL6"
check "the server warns that IPv4 forwarding is off" \
	grep -q -- "--mesh: IPv4 forwarding is off.*sysctl -w net.ipv4.ip_forward=1" "$SERVER_LOG"
check "and says nothing of IPv6, on" not grep -q -- "--mesh: IPv6 forwarding" "$SERVER_LOG"
ip netns exec "$HUB_NS" sysctl -qw net.ipv4.ip_forward=1 || die "cannot turn forwarding on"

# lease N: a request for any address from client N, answered into lease-N.out.
lease() {
	ip netns exec "${CLIENT_NS[$1]}" "$CONNECT" "${CLIENT_IF[$1]}" "${CLIENT_LL[$1]}" 970 \
		fe80:: 970 >"$E2E_TMP/lease-$1.out" 2>&1
}

# ask N NAME EPOCH SINCE [CANDIDATE...]: client N asks for the directory,
# listening on port 5182N; the answer goes into NAME.out.
ask() {
	local n=$1 name=$2
	shift 2
	ip netns exec "${CLIENT_NS[$n]}" "$MESHPOLL" "${CLIENT_IF[$n]}" "${CLIENT_LL[$n]}" \
		"$1" "$2" "5182$n" "${@:3}" >"$E2E_TMP/$name.out" 2>&1
}

# field NAME KEY: the value of KEY= in NAME.out.
field() {
	sed -n "s/^$2=//p" "$E2E_TMP/$1.out" | head -n 1
}

# peer_line NAME N: the peer= line of client N in NAME.out.
peer_line() {
	grep -F "peer=${CLIENT_PUB[$2]} " "$E2E_TMP/$1.out"
}

bare() {
	printf '%s\n' "${1%/*}"
}

# ---- a lease says mesh=1; a peer without one is refused ----

ask 1 nolease 0 0 || die "client 1's request for the directory got no answer"
check_eq "no lease: errno=1" 1 "$(field nolease errno)"
check "with a reason" grep -qi "lease" <<<"$(field nolease errmsg)"

lease 1 || die "client 1 got no lease"
check "the lease answer says mesh=1" grep -qx "mesh=1" "$E2E_TMP/lease-1.out"
a4=$(bare "$(sed -n 's/^ip=\(.*\.[0-9]*\/32\)$/\1/p' "$E2E_TMP/lease-1.out")")
a6=$(bare "$(sed -n 's/^ip=\(.*:.*\/128\)$/\1/p' "$E2E_TMP/lease-1.out")")
if [ -z "$a4" ] || [ -z "$a6" ]; then
	die "client 1 got no IPv4 and IPv6 lease: $(tr '\n' ' ' <"$E2E_TMP/lease-1.out")"
fi
say "client 1: $a4 $a6"

# ---- joining: the directory lists the asker itself ----

ask 1 first 0 0 192.168.1.23 2001:db8:1::23 || die "client 1 got no directory"
say "client 1's first answer: $(tr '\n' ' ' <"$E2E_TMP/first.out")"
check_eq "answered with errno=0" 0 "$(field first errno)"
epoch=$(field first epoch)
v1=$(field first version)
check "an epoch, not 0" test -n "$epoch" -a "$epoch" != 0
check "a version, not 0" test -n "$v1" -a "$v1" != 0
line=$(peer_line first 1)
check "client 1 is listed" test -n "$line"
# peer=KEY IP4 IP6 ENDPOINT PORT CAND...
read -r _ f4 f6 fep fport fc1 fc2 <<<"${line#peer=}"
check_eq "with its leased IPv4 address" "$a4" "$f4"
check_eq "with its leased IPv6 address" "$(ip6_expand "$a6")" "$(ip6_expand "$f6")"
check_eq "with its listen port" 51821 "$fport"
check_eq "with its candidates" "192.168.1.23 2001:db8:1::23" "$fc1 $fc2"
# The endpoint is read from the device within a second of the join.
endpoint_seen() {
	ask 1 again 0 0 192.168.1.23 2001:db8:1::23 &&
		read -r _ _ _ fep _ <<<"$(peer_line again 1)" && [ "${fep%:*}" = 192.0.2.6 ]
}
check "with the endpoint the hub sees, 192.0.2.6:PORT" wait_for -t 5 endpoint_seen

# ---- a long poll is held, and answered when a peer joins ----

ask 1 cur "$epoch" 0 192.168.1.23 2001:db8:1::23 || die "client 1 got no directory"
v=$(field cur version)
ask 1 held "$epoch" "$v" 192.168.1.23 2001:db8:1::23 &
held_pid=$!
E2E_PIDS+=("$held_pid")
sleep 1
check "a request at the current version is held" pid_alive "$held_pid"
check_eq "and counted" 1 "$(ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF" --json |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["mesh"]["polls"])')"

lease 2 || die "client 2 got no lease"
b4=$(bare "$(sed -n 's/^ip=\(.*\.[0-9]*\/32\)$/\1/p' "$E2E_TMP/lease-2.out")")
ask 2 join2 0 0 || die "client 2 got no directory"
wait "$held_pid"
check_eq "the held request is answered once client 2 joins" 0 "$?"
say "client 1's held answer: $(tr '\n' ' ' <"$E2E_TMP/held.out")"
check "well before 25 s" test "$(field held elapsed)" -lt 10000
check "with client 2's line" test -n "$(peer_line held 2)"
check "and its address" grep -q "^peer=${CLIENT_PUB[2]} $b4 " "$E2E_TMP/held.out"
check "and no line of client 1, which did not change" test -z "$(peer_line held 1)"
# One answer per join, with the whole entry: not one without the endpoint
# and another with it.
read -r _ _ _ hep _ <<<"$(peer_line held 2)"
check "and client 2's endpoint, in the one answer of the join" test "${hep%:*}" = 192.0.2.10
check "a newer version" test "$(field held version)" -gt "$v"
check "client 2's first answer lists both" \
	test -n "$(peer_line join2 1)" -a -n "$(peer_line join2 2)"
read -r _ _ _ fep _ <<<"$(peer_line join2 2)"
check "with client 2's endpoint" test "${fep%:*}" = 192.0.2.10

# ---- a release leaves a gone= line ----

lease 3 || die "client 3 got no lease"
ask 3 join3 0 0 || die "client 3 got no directory"
read -r _ _ _ fep _ <<<"$(peer_line join3 3)"
check "a new member's first answer has its endpoint" test "${fep%:*}" = 192.0.2.14
ask 1 cur "$epoch" 0 || die "client 1 got no directory"
v=$(field cur version)
ask 1 held "$epoch" "$v" &
held_pid=$!
E2E_PIDS+=("$held_pid")
sleep 0.5
ip netns exec "${CLIENT_NS[3]}" "$HOSTILE" "${CLIENT_IF[3]}" "${CLIENT_LL[3]}" release \
	>"$E2E_TMP/release.out" 2>&1 || die "client 3's release failed"
wait "$held_pid"
check_eq "the held request is answered once client 3 releases" 0 "$?"
check "with gone= for client 3" grep -qx "gone=${CLIENT_PUB[3]}" "$E2E_TMP/held.out"
check "the server logged client 3 leaving" \
	grep -q "peer ${CLIENT_PUB[3]}: left the mesh: its lease ended" "$SERVER_LOG"
ask 3 gone3 "$epoch" 0 || die "client 3 got no answer"
check_eq "without its lease, client 3 is refused" 1 "$(field gone3 errno)"

# ---- another epoch starts over ----

ask 1 reset "$((epoch ^ 1))" "$v" || die "client 1 got no directory"
check "another epoch gets reset=1" grep -qx "reset=1" "$E2E_TMP/reset.out"
check "and the members" test -n "$(peer_line reset 1)" -a -n "$(peer_line reset 2)"
check "but no gone= line" not grep -q "^gone=" "$E2E_TMP/reset.out"

# ---- show ----

show=$(ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF")
check "show lists client 1 as a mesh peer" grep -q "^mesh peer: ${CLIENT_PUB[1]}" <<<"$show"
check "show counts two members" grep -q "^  mesh: epoch $epoch, .* 2 members, 1 tombstones" \
	<<<"$show"
check "show counts the answers" test "$(sed -n 's/.* mesh_answers \([0-9]*\).*/\1/p' \
	<<<"$show")" -ge 8
prom=$(ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF" --prometheus)
check "prometheus: members gauge" \
	grep -qx "wg_dynamic_mesh_members{interface=\"$HUB_IF\"} 2" <<<"$prom"

# ---- nothing new for 25 s: the same version, no lines ----

ask 2 cur2 "$epoch" 0 || die "client 2 got no directory"
v=$(field cur2 version)
ask 2 idle "$epoch" "$v" || die "client 2's held request got no answer"
say "client 2's idle answer: $(tr '\n' ' ' <"$E2E_TMP/idle.out")"
check "a poll with nothing new is answered after 25 s" \
	test "$(field idle elapsed)" -ge 24000 -a "$(field idle elapsed)" -lt 30000
check_eq "at the same version" "$v" "$(field idle version)"
check "with no lines" not grep -q "^peer=\|^gone=" "$E2E_TMP/idle.out"
check "server still runs" pid_alive "$SERVER_PID"

# ---- a limit of one poll; then a hub without --mesh ----

server_stop 5 || die "the server did not stop on SIGTERM"
server_start --mesh --mesh-max-polls 1 --pool "$POOL4" --pool "$POOL6"
ask 1 restart 0 0 || die "client 1 got no directory after the restart"
check "a restarted server has another epoch" test "$(field restart epoch)" != "$epoch"
ask 1 held "$(field restart epoch)" "$(field restart version)" &
held_pid=$!
E2E_PIDS+=("$held_pid")
sleep 0.5
ask 2 busy 0 0 || die "client 2 got no answer"
check_eq "past --mesh-max-polls, errno=1" 1 "$(field busy errno)"
check "saying why" grep -q "too many long polls" <<<"$(field busy errmsg)"
server_stop 5 || die "the server did not stop on SIGTERM"
wait "$held_pid"

# A million polls take more descriptors than the limit gives: raised as far
# as the hard limit goes, with a warning when that is not far enough.
hard=$(ulimit -Hn)
server_start --mesh --mesh-max-polls 1000000 --pool "$POOL4" --pool "$POOL6"
engine=$(pgrep -P "$SERVER_PID" | head -n 1)
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$engine/limits")
if [ "$hard" = unlimited ] || [ "$hard" -ge 1000320 ]; then
	check_eq "the engine may open a descriptor per poll" 1000320 "$soft"
else
	check_eq "the engine may open as many descriptors as the hard limit" "$hard" "$soft"
	check "and the server says it is not enough" grep -q "raise LimitNOFILE" "$SERVER_LOG"
fi
server_stop 5 || die "the server did not stop on SIGTERM"

server_start --pool "$POOL4" --pool "$POOL6"
lease 1 || die "client 1 got no lease"
check "without --mesh, no mesh=1" not grep -q "^mesh=" "$E2E_TMP/lease-1.out"
ask 1 nomesh 0 0 || die "client 1 got no answer"
check_eq "without --mesh, request_peers gets errno=1" 1 "$(field nomesh errno)"
check "saying why" grep -q -- "--mesh" <<<"$(field nomesh errmsg)"
e2e_finish
