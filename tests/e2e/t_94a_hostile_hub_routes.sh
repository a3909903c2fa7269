#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A hostile hub pushes routes (see hostile-hub.sh for how each case is
# checked): default routes of both families; 0.0.0.0/1 and 128.0.0.0/1; a
# /32 to the hub's endpoint and a /24 around it; a route around the exit
# peer's endpoint; loopback, multicast and link-local prefixes, 8000::/1
# (which covers fe80::) and 0.0.0.0/8; the exit peer's own allowed-IPs.
# Each is refused with one log line, and the good routes of the same
# response are still installed. Then 32 identical route= lines followed by
# that route and 31 new ones (a sequence that once overflowed the client's
# list of the routes it had added), 33 routes, and a route with host bits
# set. First, the good lease itself: its routes carry the client's
# rtnetlink protocol number (87), and go into the hub peer's allowed-IPs.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=hostile-hub.sh
. "$(dirname "$0")/hostile-hub.sh"

e2e_init t_94a_hostile_hub_routes
hh_setup

check_eq "the good lease: hook reason" BOUND "$(sed -n 's/^reason=//p' "$HOOK_LOG" | head -n 1)"
check "the good lease: resolvconf got the search domain" grep -qx "search good.example" "$RC_LOG"
# shellcheck disable=SC2086 # the routes are words
check_eq "the good lease: the hub peer's allowed-IPs" "$(lines fe80::/128 $GOOD_ROUTES | sort)" "$B_HUB"
proto87=$({ ip -n "$NS" -4 route show proto 87 dev "$IF"; ip -n "$NS" -6 route show proto 87 dev "$IF"; } |
	awk '{ print $1 }')
for r in $GOOD_ROUTES; do
	check "the good lease: route $r carries the client's protocol number (87)" \
		grep -qxF "$r" <<<"$proto87"
done

hh_new route-default taken "default routes of both families are refused"
C_RESP=$(good_lines; lines route=0.0.0.0/0 route=::/0)
refused route 0.0.0.0/0
refused route ::/0
hh_run

hh_new route-halves taken "0.0.0.0/1 and 128.0.0.0/1, each covering a peer's endpoint, are refused"
C_RESP=$(good_lines; lines route=0.0.0.0/1 route=128.0.0.0/1)
refused route 0.0.0.0/1
refused route 128.0.0.0/1
hh_run

hh_new route-hub-endpoint taken "a /32 route to the hub's endpoint $HUB_EP is refused"
C_RESP=$(good_lines; lines "route=$HUB_EP/32")
refused route "$HUB_EP/32"
hh_run

hh_new route-hub-endpoint-24 taken "a /24 covering the hub's endpoint is refused"
C_RESP=$(good_lines; lines "route=${HUB_EP%.*}.0/24")
refused route "${HUB_EP%.*}.0/24"
hh_run

hh_new route-exit-endpoint taken "a route covering the exit peer's endpoint $EXIT_ENDPOINT is refused"
C_RESP=$(good_lines; lines route=100.64.0.0/10)
refused route 100.64.0.0/10
hh_run

hh_new route-loopback taken "loopback routes are refused"
C_RESP=$(good_lines; lines route=127.0.0.0/8 route=::1/128)
refused route 127.0.0.0/8
refused route ::1/128
hh_run

hh_new route-multicast taken "multicast routes are refused"
C_RESP=$(good_lines; lines route=224.0.0.0/4 route=ff00::/8)
refused route 224.0.0.0/4
refused route ff00::/8
hh_run

hh_new route-link-local taken "link-local routes are refused"
C_RESP=$(good_lines; lines route=169.254.0.0/16 route=fe80::/10 route=fe80::/64)
refused route 169.254.0.0/16
refused route fe80::/10
refused route fe80::/64
hh_run

hh_new route-covers-fe80 taken "8000::/1, which covers fe80::, is refused"
C_RESP=$(good_lines; lines route=8000::/1)
refused route 8000::/1
hh_run

hh_new route-this-network taken "0.0.0.0/8 is refused"
C_RESP=$(good_lines; lines route=0.0.0.0/8)
refused route 0.0.0.0/8
hh_run

hh_new route-exit-allowed taken "routes equal to the exit peer's allowed-IPs are refused"
C_RESP=$(good_lines; lines route=10.200.0.0/16 route=fd20::/48)
refused route 10.200.0.0/16
refused route fd20::/48
hh_run

# The same route 32 times, then it and 31 new ones: the sequence that once
# overflowed the client's list of the routes it had put in place.
SAME32=$(for _ in $(seq 32); do lines route=10.95.0.0/24; done)
NEW31=()
for i in $(seq 1 31); do
	NEW31+=("10.95.$i.0/24")
done
hh_new route-32-same taken "32 identical route= lines install the route once"
C_RESP=$(good_lines route; printf '%s\n' "$SAME32")
C_ALLOW_ROUTES=(10.95.0.0/24)
extra_32_same() {
	[ "$(grep -c '^10\.95\.0\.0/24$' <<<"$(st_aips "$HUB_PUB")")" -eq 1 ] ||
		prob "10.95.0.0/24 is not once in the hub peer's allowed-IPs"
	client_has_route 1 10.95.0.0/24 || prob "route 10.95.0.0/24 missing"
}
C_EXTRA=extra_32_same
# The next case follows without the good response in between, so that the
# two responses meet in the client's lists.
C_KEEP=1
hh_run

hh_new route-32-then-31-new taken "then that route and 31 new ones: all 32 installed, nothing overflows"
C_RESP=$(good_lines route; lines route=10.95.0.0/24; printf 'route=%s\n' "${NEW31[@]}")
C_ALLOW_ROUTES=(10.95.0.0/24 "${NEW31[@]}")
extra_32_new() {
	local r hub
	hub=$(st_aips "$HUB_PUB")
	for r in 10.95.0.0/24 "${NEW31[@]}"; do
		client_has_route 1 "$r" || prob "route $r missing"
		grep -qxF "$r" <<<"$hub" || prob "$r missing from the hub peer's allowed-IPs"
	done
}
C_EXTRA=extra_32_new
hh_run

hh_new route-33 failed "33 routes: the response is refused whole"
C_RESP=$(good_lines route; printf 'route=10.96.%d.0/24\n' $(seq 0 32))
C_LOGANY=("$LOG_BAD")
hh_run

hh_new route-host-bits failed "a route with host bits set: the response is refused whole"
C_RESP=$(good_lines; lines route=10.94.7.1/24)
C_LOGANY=("$LOG_BAD")
hh_run

hh_finish
