#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Every start-up error of both daemons, triggered for real: each ends with
# its own exit status and a message that names the problem and the fix
# (docs/errors.md lists them). Nothing here may leave a daemon running.

# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

e2e_init t_95_misconfig
topology_create 1
VETH=veth${E2E_ID}h1

# expect_exit WHAT STATUS PATTERN NS BINARY ARGS...: runs a daemon that
# must refuse to start, and checks its status and its last message.
expect_exit() {
	local what=$1 want=$2 pattern=$3 ns=$4 out status
	shift 4
	out=$(timeout 10 ip netns exec "$ns" "$@" 2>&1)
	status=$?
	check_eq "$what: exit status" "$want" "$status"
	check "$what: says '$pattern'" grep -q -- "$pattern" <<<"$out"
	say "  $(tail -n 1 <<<"$out")"
}

srv() {
	expect_exit "server: $1" "$2" "$3" "$HUB_NS" "$SERVER_BIN" --state-dir "$E2E_TMP/s-$2" "${@:4}"
}

srv "no interface given" 64 "Usage" --pool 10.95.0.0/24
srv "no such interface" 65 "no interface wgdnope" --pool 10.95.0.0/24 wgdnope
srv "not WireGuard" 66 "is not a WireGuard interface" --pool 10.95.0.0/24 "$VETH"
srv "no pool" 67 "no pool to lease from: give --pool" "$HUB_IF"
ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "${CLIENT_PUB[1]}" \
	allowed-ips fe80::1:1/128,10.95.0.0/28 || die "cannot give client 1 a static subnet"
srv "pool overlaps a peer's subnet" 69 "overlaps allowed-IP 10.95.0.0/28" \
	--pool 10.95.0.0/24 "$HUB_IF"
ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "${CLIENT_PUB[1]}" allowed-ips fe80::1:1/128
expect_exit "server: state directory unwritable" 73 "is not writable" "$HUB_NS" \
	"$SERVER_BIN" --state-dir /proc/wgd-nope --pool 10.95.0.0/24 "$HUB_IF"
srv "unknown user" 75 "no user wgd-nouser" --user wgd-nouser --pool 10.95.0.0/24 "$HUB_IF"
srv "bad lease time" 64 "give whole seconds" --lease-time 1 --pool 10.95.0.0/24 "$HUB_IF"
srv "bad pool" 64 "not a prefix" --pool 10.95.0.1/24 "$HUB_IF"

server_start --pool 10.95.0.0/24 --pool fd95::/64
srv "port 970 in use" 68 "port 970 on $HUB_IF is in use" --pool 10.95.0.0/24 "$HUB_IF"
check "the running server is unharmed" pid_alive "$SERVER_PID"

NS=${CLIENT_NS[1]}
cli() {
	expect_exit "client: $1" "$2" "$3" "$NS" "$CLIENT_BIN" -f --state-dir "$E2E_TMP/c-$2" "${@:4}"
}
cli "no interface given" 64 "Usage"
cli "no such interface" 65 "no interface wgdnope" wgdnope
cli "not WireGuard" 66 "is not a WireGuard interface" "veth${E2E_ID}c1"
# A WireGuard interface with no peers, then with a peer that is no hub.
IF2=wgd${E2E_ID}x
wg_iface_start "$NS" "$IF2" no-ll
ip -n "$NS" link set "$IF2" up
cli "no peers" 71 "has no peers" "$IF2"
ip netns exec "$NS" wg set "$IF2" peer "$HUB_PUB" allowed-ips 10.0.0.0/8
cli "no hub peer" 67 "has exactly fe80::/128 in its allowed-IPs" "$IF2"
# An exit peer's ::/0 covers fe80:: but does not make it the hub.
ip netns exec "$NS" wg set "$IF2" peer "$HUB_PUB" allowed-ips ::/0
cli "an exit peer is no hub peer" 67 "has exactly fe80::/128 in its allowed-IPs" "$IF2"
# (Two peers with fe80::/128 cannot be: WireGuard gives an allowed-IP to
# one peer only. The unit tests cover the client's refusal all the same.)
ip netns exec "$NS" wg set "$IF2" peer "$HUB_PUB" allowed-ips fe80::/128
cli "no link-local and no key" 68 "no private key to derive one from" "$IF2"
expect_exit "client: state directory unwritable" 69 "is not writable" "$NS" \
	"$CLIENT_BIN" -f --state-dir /proc/wgd-nope "${CLIENT_IF[1]}"
# A directory another user could write: the client's files would be theirs
# to replace.
OPEN_DIR=$E2E_TMP/client-open
mkdir -p "$OPEN_DIR"
chown 65534 "$OPEN_DIR"
expect_exit "client: state directory of another user" 69 "is writable by" "$NS" \
	"$CLIENT_BIN" -f --state-dir "$OPEN_DIR" "${CLIENT_IF[1]}"
chown 0 "$OPEN_DIR"
chmod 777 "$OPEN_DIR"
expect_exit "client: world-writable state directory" 69 "writable by" "$NS" \
	"$CLIENT_BIN" -f --state-dir "$OPEN_DIR" "${CLIENT_IF[1]}"

# Out of descriptors (the loader needs one), its second socket fails: a
# failed system call has a status of its own, not the 1 of a bare exit.
expect_exit "client: a system call fails" 70 "rtnetlink: Too many open files" "$NS" \
	prlimit --nofile=4 "$CLIENT_BIN" -f --state-dir "$E2E_TMP/c-70" "${CLIENT_IF[1]}"

client_start 1
client_wait_lease 1 || die "client 1 got no lease"
expect_exit "client: already running" 72 "already runs on ${CLIENT_IF[1]}" "$NS" \
	"$CLIENT_BIN" -f --state-dir "$E2E_TMP/client1-state" "${CLIENT_IF[1]}"
check "the running client is unharmed" pid_alive "${CLIENT_PID[1]}"
e2e_finish
