#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Privilege separation, read from /proc/PID/status: the server's parent
# keeps CAP_NET_ADMIN and CAP_KILL alone; its engine runs as wg-dynamic with
# no capabilities and no_new_privs, confined to its own directory inside the
# state directory; the client keeps CAP_NET_ADMIN and CAP_NET_BIND_SERVICE
# alone. Then a crashed engine takes the whole server down, with a clear
# message and status 74.
#
# Log lines this test reads (server/parent.c, server/privsep.c):
#   "the engine died of signal 11 (Segmentation fault); stopping the server"
#   "refused the engine's change to peer KEY: REASON"
#   "the engine broke the privilege protocol (Protocol error); stopping it"
#
# Last, a compromised engine: the rogue-engine helper stops a new server's
# engine and speaks to the parent in its place. The parent refuses to give
# a peer an address another peer's allowed-IPs hold (a host, or inside a
# subnet in the pool), even in the batch that takes it from that peer; an
# address the pools never lease, the interface's own, one outside them; the
# removal of a peer's link-local; removes nothing from a peer that does not
# hold the address; answers ENOENT for a peer not on the device. It does
# give a free pool address beside an exit peer's 0.0.0.0/0, which holds the
# whole pool. A malformed change makes it stop the engine and exit 74.

# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

ROGUE=$E2E_DIR/rogue-engine

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

# ---- a compromised engine ----
# The rogue-engine helper takes the engine's place towards the parent and
# sends it what an engine an attacker had taken over could. Besides client
# 1's peer P, the hub gets a peer S with a subnet and a host inside the
# IPv4 pool, and an exit peer E with 0.0.0.0/0; the pools are the
# interface's routes, so that neither peer is a --pool misconfiguration.
[ -x "$ROGUE" ] || die "$ROGUE is missing: run make e2e"
wg_key static S_PUB
wg_key exit E_PUB
ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "$S_PUB" allowed-ips 10.92.1.64/28,10.92.1.99/32 \
	peer "$E_PUB" allowed-ips 0.0.0.0/0 || die "cannot add peers S and E"
ip -n "$HUB_NS" addr add 10.92.1.1/24 dev "$HUB_IF" || die "cannot add an IPv4 pool route"
ip -n "$HUB_NS" addr add fd92:1::1/64 dev "$HUB_IF" nodad || die "cannot add an IPv6 pool route"
server_start
engine=$(pgrep -P "$SERVER_PID" -x wg-dynamic-serv | head -n 1)
[ -n "$engine" ] || die "the server has no engine process"
P=${CLIENT_PUB[1]}

# rogue CHANGE...: the parent's answers, one a line, joined with spaces.
rogue() {
	ip netns exec "$HUB_NS" "$ROGUE" "$engine" "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'
}

# peer_has KEY CIDR: whether the hub's peer KEY has the allowed-IP CIDR.
peer_has() {
	hub_allowed_ips | awk -v k="$1" -v c="$2" \
		'$1 == k { for (i = 2; i <= NF; i++) if ($i == c) f = 1 } END { exit !f }'
}

check_eq "no address inside S's subnet for P" EEXIST "$(rogue "$P:+10.92.1.70/32")"
check_eq "nor S's host" EEXIST "$(rogue "$P:+10.92.1.99/32")"
check_eq "nor in the batch that takes it from S" "ok EEXIST" \
	"$(rogue "$S_PUB:-10.92.1.99/32" "$P:+10.92.1.99/32")"
check "P has neither" not peer_has "$P" 10.92.1.99/32
check "S keeps its subnet" peer_has "$S_PUB" 10.92.1.64/28
ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "$S_PUB" allowed-ips 10.92.1.64/28,10.92.1.99/32
check_eq "no address the pools never lease, nor the interface's own, nor outside them" \
	"EPERM EPERM EPERM EPERM EPERM" \
	"$(rogue "$P:+10.92.1.0/32" "$P:+10.92.1.255/32" "$P:+10.92.1.1/32" "$P:+fd92:1::1/128" \
		"$P:+192.0.2.99/32")"
check_eq "no removal of P's link-local" EPERM "$(rogue "$P:-${CLIENT_LL[1]}/128")"
check "P keeps it" peer_has "$P" "${CLIENT_LL[1]}/128"
check_eq "a removal of S's host from P takes nothing" ok "$(rogue "$P:-10.92.1.99/32")"
check "S keeps its host" peer_has "$S_PUB" 10.92.1.99/32
check_eq "a peer not on the device" ENOENT \
	"$(rogue "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=:+10.92.1.50/32")"
# What a compromised engine can still do: any free pool address to any peer.
# E's default route holds the whole pool and blocks nothing.
check_eq "a free pool address beside E's default route" ok "$(rogue "$P:+10.92.1.200/32")"
check "P has it" peer_has "$P" 10.92.1.200/32
check "E keeps its default route" peer_has "$E_PUB" 0.0.0.0/0
check_eq "and it can be taken back" ok "$(rogue "$P:-10.92.1.200/32")"
check "P no longer has it" not peer_has "$P" 10.92.1.200/32
check "the refusals were logged" \
	grep -q "refused the engine's change to peer $P: an address inside another peer's" "$SERVER_LOG"
engine_running() {
	! pid_gone "$engine" && ! grep -q '^State:.*[Tt]' "/proc/$engine/status"
}
check "the engine lived through all of it, and runs on" engine_running

# A malformed change (a subnet) means the engine is not what was started.
check_eq "a malformed change gets no answer" "no answer: ECONNRESET" \
	"$(rogue "$P:-10.92.1.64/28")"
check_eq "the server exits with status 74" 74 "$(server_wait_exit 5; echo $?)"
check "the parent says why" grep -q "the engine broke the privilege protocol" "$SERVER_LOG"
check "S keeps its subnet" peer_has "$S_PUB" 10.92.1.64/28
e2e_finish
