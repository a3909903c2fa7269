# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
#
# A hostile hub against the real client: what the t_94*_hostile_hub tests
# share. Source it after lib.sh, call e2e_init, then hh_setup.
#
# The hub namespace runs the stand-in hub (tests/e2e/fakehub) instead of the
# server. It answers client 1 over the real tunnel with canned responses:
# the good one (addresses 10.94.0.2 and fd94::2, routes 10.94.0.0/24 and
# fd94::/64, a name server, a search domain, MTU 1380, 600 s), or a hostile
# one per case. Client 1 has a second peer beside the hub, an exit with
# allowed-IPs and an endpoint of its own; an address its administrator
# configured (10.77.0.1/32); no automatic link-local, so that its state is
# the same on wireguard-go and kernel WireGuard; a stand-in resolvconf that
# records its stdin; and a --script hook that records its environment.
#
# A case (hh_new, the C_ variables, then hh_run) serves one response, asked
# for with SIGHUP. Once the client has reacted, further requests are closed
# on until the case is checked:
#   - the client runs;
#   - nothing outside the bounds is installed: no address on the client's
#     interface but those it had; no infinite lifetime but those it had,
#     which stay infinite; no route through the interface, in any table, but
#     those it had and those the case allows; no allowed-IP on the hub peer
#     but fe80::/128, the good routes and those the case allows; the exit
#     peer's allowed-IPs as they were; the MTU as it was, or the one the
#     case accepts;
#   - the lease is taken (renewed or bound) or not, as the case says, and
#     holds what it must;
#   - what the client handed on is clean: neither resolvconf's stdin nor the
#     hook's environment holds a string the case forbids, and the hook sees
#     no route or address but the good ones and those allowed;
#   - the log has each line the case expects, each "refused" line exactly
#     once per response served, and no byte from the hub reaches it raw: no
#     control byte, nothing above 0x7E.
# Then the good response comes back, and the next renewal (SIGHUP again)
# must come through the tunnel and leave the client as it was before the
# case. A case that leaves damage behind fails, and the damage is repaired
# by hand, so that one defect does not hide the next; a client that died is
# started again.
#
# Log lines read here (client/main.c):
#   "bound: ip4 A ip6 B leasetime T leasestart S", "renewed: ..."
#   "from the hub: KEY VALUE: refused: REASON"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
export LC_ALL=C

LEASE=600
A4=10.94.0.2
A6=fd94::2
GOOD_ROUTES="10.94.0.0/24 fd94::/64"
GOOD_MTU=1380
ADMIN_ADDR=10.77.0.1/32
EXIT_ALLOWED=10.200.0.0/16,fd20::/48
EXIT_ENDPOINT=100.64.0.1

# ---- responses ----

lines() {
	printf '%s\n' "$@"
}

# good_lines [KEY...]: the good response's lines, less those of each KEY.
# shellcheck disable=SC2120 # the tests pass keys
good_lines() {
	local drop
	drop=$(IFS='|'; printf '%s' "${*:-@}")
	lines "ip=$A4/32" "ip=$A6/128" "route=10.94.0.0/24" "route=fd94::/64" \
		"dns=10.94.0.53" "dns_search=good.example" "mtu=$GOOD_MTU" \
		"leasestart=${EPOCHREALTIME%.*}" "leasetime=$LEASE" "errno=0" |
		grep -v -E "^($drop)="
}

set_good() {
	fakehub_set default "answer good" "$(good_lines)\n\n"
}

# start_client: client 1 with the hook, and the stand-in resolvconf first
# in its PATH.
start_client() {
	PATH="$E2E_TMP/bin:$PATH" client_start 1 "${CLIENT_ARGS[@]}"
}

# ---- reading the client's state ----

# "ADDR/LEN forever|finite", a line per address on the interface.
st_addrs() {
	ip -n "$NS" -o addr show dev "$IF" | awk '{
		life = "finite"
		for (i = 1; i < NF; i++)
			if ($i == "valid_lft" && $(i + 1) == "forever")
				life = "forever"
		print $4, life
	}' | sort
}

# "TYPE DST TABLE", a line per route through the interface, in any table.
st_routes() {
	{
		ip -n "$NS" -4 route show table all dev "$IF"
		ip -n "$NS" -6 route show table all dev "$IF"
	} 2>/dev/null | awk '{
		t = "unicast"; i = 1
		if ($1 ~ /^(unicast|local|broadcast|multicast|anycast|unreachable|prohibit|blackhole|throw|nat)$/) {
			t = $1; i = 2
		}
		tb = "main"
		for (j = i + 1; j < NF; j++)
			if ($j == "table")
				tb = $(j + 1)
		print t, $i, tb
	}' | sort -u
}

# route_key PREFIX: the st_routes line of a pushed route.
route_key() {
	local p=$1
	case $p in
	0.0.0.0/0 | ::/0) p=default ;;
	*/32 | */128) p=${p%/*} ;;
	esac
	printf 'unicast %s main\n' "$p"
}

# st_aips KEY: the allowed-IPs of peer KEY on the client, a line each.
st_aips() {
	ip netns exec "$NS" wg show "$IF" allowed-ips |
		awk -v k="$1" '$1 == k { for (i = 2; i <= NF; i++) if ($i != "(none)") print $i }' | sort
}

st_mtu() {
	ip -n "$NS" -o link show dev "$IF" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'
}

# extras A B: the lines of A that are not in B.
extras() {
	comm -23 <(printf '%s\n' "$1" | sed '/^$/d' | sort -u) <(printf '%s\n' "$2" | sed '/^$/d' | sort -u)
}

bytes() {
	wc -c <"$1"
}

# ERE for a literal string.
re_escape() {
	printf '%s' "$1" | sed 's/[][\.^$*+?(){}|]/\\&/g'
}

# ---- the cases ----

P=()
prob() {
	P+=("$*")
}

# hh_new TAG OUTCOME DESCRIPTION: starts a case. OUTCOME is "taken" (the
# client takes the lease, less what it refuses), "failed" (the response
# counts as a failed request: the lease held stays as it is) or "either".
# The case is then described in the C_ variables and run by hh_run.
hh_new() {
	C_TAG=$1
	C_OUT=$2
	C_DESC=$3
	C_RESP=
	C_RAW=0
	C_MODE=answer
	C_LOG=()
	C_LOGANY=()
	C_ALLOW_ROUTES=()
	C_MTU=$GOOD_MTU
	C_FORBID=()
	C_EXTRA=
	C_WATCH=0
	C_WAIT=5
	C_KEEP=0
}

# refused KEY VALUE: the log must say once per response that VALUE of KEY
# was refused. Addresses may be written with or without their length,
# search domains with or without quotes.
refused() {
	local v
	v=$(re_escape "$2")
	case $1 in
	ip) C_LOG+=("^from the hub: ip $v(/32|/128)?: refused: ") ;;
	dns_search) C_LOG+=("^from the hub: dns_search \"?$v\"?: refused: ") ;;
	*) C_LOG+=("^from the hub: $1 $v: refused: ") ;;
	esac
}

# What a response the client refuses as a whole, or a failed exchange, is
# logged as: some line that says so (beside debug lines about the same).
# shellcheck disable=SC2034 # for the tests
{
	LOG_BAD='(bad|invalid|malformed|refused|too long|too many|unparsable).*(response|message|hub|server)|(response|message).*(bad|invalid|malformed|refused)'
	LOG_GONE='closed|reset|timed out|timeout|no answer|did not answer|gave up|too slow'
	LOG_NOADDR='no address|no usable address|without an address|gave no address'
}
# Bytes that must reach the log escaped: controls but tab, DEL, and all
# above 0x7F.
RAW_BYTES=$(printf '[\001-\010\013-\037\177-\377]')

log_since_case() {
	log_since "${CLIENT_LOG[1]}" "$mc"
}

# Whether the client took a lease since the case began.
took_lease() {
	log_since_case | grep -qE '^(renewed|bound): '
}

# Whether the log has every line the case expects.
logged_all() {
	local re since
	since=$(log_since_case)
	for re in "${C_LOG[@]}" "${C_LOGANY[@]}"; do
		grep -qE -- "$re" <<<"$since" || return 1
	done
}

served() {
	[ "$(fakehub_count "$mf" 1 "$C_TAG")" -ge 1 ]
}

hook_ran() {
	[ "$(bytes "$HOOK_LOG")" -gt "$mh" ]
}

# hup_until CMD...: SIGHUP to the client until CMD succeeds, a second
# apart, five times at most. A signal that comes while a request is under
# way may be taken for that request.
hup_until() {
	local _
	for _ in 1 2 3 4 5; do
		kill -HUP "${CLIENT_PID[1]}" 2>/dev/null
		wait_for -t 1 "$@" && return 0
	done
	return 1
}

# Whether the log has as many lines of each expected kind as responses of
# this case were served.
log_counts_match() {
	local re since served
	since=$(log_since_case)
	served=$(fakehub_count "$mf" 1 "$C_TAG")
	for re in "${C_LOG[@]}"; do
		[ "$(grep -cE -- "$re" <<<"$since")" -eq "$served" ] || return 1
	done
}

# The items of the good response that the client must hold after the case.
needed() {
	local l
	if [ "$C_OUT" != taken ]; then
		lines "addr $A4/32" "addr $A6/128"
		for l in $GOOD_ROUTES; do
			lines "route $l"
		done
		return
	fi
	while read -r l; do
		case $l in
		"ip=$A4/32" | "ip=$A6/128") lines "addr ${l#ip=}" ;;
		route=*)
			case " $GOOD_ROUTES ${C_ALLOW_ROUTES[*]} " in
			*" ${l#route=} "*) lines "route ${l#route=}" ;;
			esac
			;;
		esac
	done <<<"$C_RESP"
}

# Checks the client's state after a case; adds what is wrong to P.
hh_check_state() {
	local addrs routes hub ex x what arg allowed_routes s r f word since

	pid_alive "${CLIENT_PID[1]}" || { prob "the client died"; return; }
	addrs=$(st_addrs)
	routes=$(st_routes)
	hub=$(st_aips "$HUB_PUB")

	x=$(extras "$(cut -d' ' -f1 <<<"$addrs")" "$(cut -d' ' -f1 <<<"$B_ADDRS")")
	[ -z "$x" ] || prob "addresses installed: $(tr '\n' ' ' <<<"$x")"
	x=$(extras "$(grep ' forever$' <<<"$addrs")" "$B_PERM")
	[ -z "$x" ] || prob "infinite lifetimes: $(cut -d' ' -f1 <<<"$x" | tr '\n' ' ')"
	x=$(extras "$B_PERM" "$addrs")
	[ -z "$x" ] || prob "configured addresses changed or gone: $(cut -d' ' -f1 <<<"$x" | tr '\n' ' ')"

	allowed_routes=$B_ROUTES
	for r in "${C_ALLOW_ROUTES[@]}"; do
		allowed_routes+=$'\n'$(route_key "$r")
	done
	x=$(extras "$routes" "$allowed_routes")
	[ -z "$x" ] || prob "routes installed: $(tr '\n' ',' <<<"$x" | sed 's/,$//')"
	x=$(extras "$hub" "$B_HUB$(printf '\n%s' "${C_ALLOW_ROUTES[@]}")")
	[ -z "$x" ] || prob "hub peer allowed-IPs added: $(tr '\n' ' ' <<<"$x")"
	ex=$(st_aips "$EXIT_PUB")
	[ "$ex" = "$B_EXIT" ] || prob "exit peer allowed-IPs now: $(tr '\n' ' ' <<<"$ex")"
	s=$(st_mtu)
	[ "$s" = "$C_MTU" ] || prob "MTU $s, not $C_MTU"

	while read -r what arg; do
		case $what in
		addr) grep -q "^$(re_escape "$arg") " <<<"$addrs" || prob "lease address $arg missing" ;;
		route)
			grep -qxF "$(route_key "$arg")" <<<"$routes" || prob "route $arg missing"
			grep -qxF "$arg" <<<"$hub" || prob "$arg missing from the hub peer's allowed-IPs"
			;;
		esac
	done < <(needed)

	# What the client handed on.
	[ ! -e "$PWNED" ] || prob "a search domain ran a command ($PWNED exists)"
	for f in "${C_FORBID[@]}"; do
		if tail -c +$((mr + 1)) "$RC_LOG" | grep -qF -- "$f"; then
			prob "resolvconf got '$f'"
		fi
		if tail -c +$((mh + 1)) "$HOOK_LOG" | grep -qF -- "$f"; then
			prob "the hook got '$f'"
		fi
	done
	for word in $(tail -c +$((mh + 1)) "$HOOK_LOG" | sed -n 's/^routes=//p'); do
		case " $GOOD_ROUTES ${C_ALLOW_ROUTES[*]} " in
		*" $word "*) ;;
		*) prob "the hook got route $word" ;;
		esac
	done
	for word in $(tail -c +$((mh + 1)) "$HOOK_LOG" | sed -n 's/^new_ip[46]=//p'); do
		[ "$word" = "$A4" ] || [ "$word" = "$A6" ] || prob "the hook got address $word"
	done

	# What the client logged.
	since=$(log_since_case)
	for r in "${C_LOG[@]}" "${C_LOGANY[@]}"; do
		grep -qE -- "$r" <<<"$since" || prob "no log line /$r/"
	done
	wait_for -t 2 log_counts_match ||
		prob "not one log line per refused item and response ($(fakehub_count "$mf" 1 "$C_TAG") served)"
	if grep -q "$RAW_BYTES" <<<"$since"; then
		prob "raw bytes in the log: $(grep "$RAW_BYTES" <<<"$since" |
			head -n 1 | od -An -c | tr -s ' \n' ' ' | cut -c1-120)"
	fi
	case $C_OUT in
	taken)
		grep -qE '^(renewed|bound): ' <<<"$since" || prob "the lease was not taken"
		;;
	failed)
		! grep -qE '^(renewed|bound): ' <<<"$since" || prob "the response was taken as a lease"
		;;
	esac
}

# hh_run: runs the case described in the C_ variables.
hh_run() {
	local body rc_since
	P=()
	mc=$(log_mark "${CLIENT_LOG[1]}")
	mf=$(log_mark "$FAKEHUB_LOG")
	mr=$(bytes "$RC_LOG")
	mh=$(bytes "$HOOK_LOG")
	if [ "$C_RAW" = 1 ]; then
		body=$C_RESP
	else
		body="$C_RESP\n\n"
	fi
	fakehub_set default "$C_MODE $C_TAG" "$body"
	hup_until served || prob "the client asked for no lease after SIGHUP"
	case $C_OUT in
	taken)
		wait_for -t "$C_WAIT" took_lease
		wait_for -t 1 logged_all
		;;
	either)
		wait_for -t 1 took_lease
		wait_for -t "$C_WAIT" logged_all
		;;
	*) wait_for -t "$C_WAIT" logged_all ;;
	esac
	[ "$C_WATCH" = 0 ] || sleep "$C_WATCH"
	# Requests from now on are closed on: the state stays this case's.
	fakehub_set default "close between" ""
	if [ "$C_OUT" = taken ]; then
		wait_for -t 2 hook_ran || prob "the hook did not run"
	fi
	hh_check_state
	[ -z "$C_EXTRA" ] || "$C_EXTRA"
	rc_since=$(IFS=';'; printf '%s' "${P[*]}")
	check_eq "$C_TAG: $C_DESC" "" "$rc_since"
	[ "$C_KEEP" = 1 ] || hh_restore
}

# hh_restore: the good response again, a renewal through the tunnel, and
# the state as it was before the case. Damage is repaired by hand.
hh_restore() {
	local m diff
	set_good
	if ! pid_alive "${CLIENT_PID[1]}"; then
		fail "$C_TAG: the client died; starting it again"
		m=$(log_mark "${CLIENT_LOG[1]}")
		start_client
		wait_for -t 10 client_renewed_since "$m"
	fi
	m=$(log_mark "${CLIENT_LOG[1]}")
	if ! hup_until client_renewed_since "$m"; then
		fail "$C_TAG: the next renewal did not come through the tunnel"
	fi
	diff=$(state_diff)
	if [ -n "$diff" ]; then
		fail "$C_TAG: the good lease did not restore the state: $diff"
		repair
	fi
}

client_renewed_since() {
	log_since "${CLIENT_LOG[1]}" "$1" | grep -qE '^(renewed|bound): '
}

# Differences from the baseline, on one line; empty when there are none.
state_diff() {
	local d=() x
	x=$(extras "$(cut -d' ' -f1 <<<"$(st_addrs)")" "$(cut -d' ' -f1 <<<"$B_ADDRS")")
	[ -z "$x" ] || d+=("extra addresses $(tr '\n' ' ' <<<"$x")")
	x=$(extras "$(cut -d' ' -f1 <<<"$B_ADDRS")" "$(cut -d' ' -f1 <<<"$(st_addrs)")")
	[ -z "$x" ] || d+=("missing addresses $(tr '\n' ' ' <<<"$x")")
	x=$(extras "$B_PERM" "$(st_addrs)")
	[ -z "$x" ] || d+=("configured addresses changed $(cut -d' ' -f1 <<<"$x" | tr '\n' ' ')")
	x=$(extras "$(st_routes)" "$B_ROUTES")
	[ -z "$x" ] || d+=("extra routes $(tr '\n' ',' <<<"$x")")
	x=$(extras "$B_ROUTES" "$(st_routes)")
	[ -z "$x" ] || d+=("missing routes $(tr '\n' ',' <<<"$x")")
	[ "$(st_aips "$HUB_PUB")" = "$B_HUB" ] || d+=("hub peer allowed-IPs $(st_aips "$HUB_PUB" | tr '\n' ' ')")
	[ "$(st_aips "$EXIT_PUB")" = "$B_EXIT" ] || d+=("exit peer allowed-IPs $(st_aips "$EXIT_PUB" | tr '\n' ' ')")
	[ "$(st_mtu)" = "$B_MTU" ] || d+=("MTU $(st_mtu)")
	(IFS=';'; printf '%s' "${d[*]}")
}

# Puts the baseline back by hand, then has the client renew.
repair() {
	local t d tb a m
	# An MTU below 1280 takes IPv6 off the interface, addresses and all.
	ip -n "$NS" link set "$IF" mtu "$B_MTU"
	while read -r a; do
		ip -n "$NS" addr del "$a" dev "$IF" 2>/dev/null
	done < <(extras "$(cut -d' ' -f1 <<<"$(st_addrs)")" "$(cut -d' ' -f1 <<<"$B_ADDRS")")
	while read -r a _; do
		ip -n "$NS" addr del "$a" dev "$IF" 2>/dev/null
		ip -n "$NS" addr add "$a" dev "$IF" nodad 2>/dev/null ||
			ip -n "$NS" addr add "$a" dev "$IF" 2>/dev/null
	done < <(extras "$B_PERM" "$(st_addrs)")
	while read -r t d tb; do
		[ "$t" = unicast ] && ip -n "$NS" route del "$d" dev "$IF" table "$tb" 2>/dev/null
	done < <(extras "$(st_routes)" "$B_ROUTES")
	while read -r t d tb; do
		[ "$t" = unicast ] && ip -n "$NS" route add "$d" dev "$IF" table "$tb" 2>/dev/null
	done < <(extras "$B_ROUTES" "$(st_routes)")
	ip netns exec "$NS" wg set "$IF" peer "$HUB_PUB" allowed-ips "$(tr '\n' , <<<"$B_HUB" | sed 's/,$//')"
	ip netns exec "$NS" wg set "$IF" peer "$EXIT_PUB" allowed-ips "$(tr '\n' , <<<"$B_EXIT" | sed 's/,$//')"
	m=$(log_mark "${CLIENT_LOG[1]}")
	hup_until client_renewed_since "$m"
	d=$(state_diff)
	[ -z "$d" ] || say "  (repair left: $d)"
}

# ---- set-up and end ----

# hh_setup: the hub with the stand-in hub, client 1 with its exit peer and
# recorders, its first lease, and the state it is in then, which every case
# must leave behind: B_ADDRS, B_PERM (the addresses that live forever),
# B_ROUTES, B_HUB and B_EXIT (the peers' allowed-IPs) and B_MTU.
hh_setup() {
	hub_create
	client_create 1
	NS=${CLIENT_NS[1]}
	IF=${CLIENT_IF[1]}
	PWNED=$E2E_TMP/pwned
	RC_LOG=$E2E_TMP/resolvconf.rec
	HOOK_LOG=$E2E_TMP/hook.env
	CLIENT_ARGS=(--script "$E2E_TMP/hook" --script-timeout 2)

	# The kernel's own link-local goes: kernel WireGuard makes none, and
	# one made anew after a change of MTU would differ.
	ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$IF.addr_gen_mode=1" ||
		die "cannot turn off link-local address generation on $IF"
	ip -n "$NS" -6 addr flush dev "$IF" scope link
	ip -n "$NS" addr add "${CLIENT_LL[1]}/128" dev "$IF" nodad ||
		die "cannot add ${CLIENT_LL[1]}/128 to $IF"
	wg_key exit EXIT_PUB
	ip netns exec "$NS" wg set "$IF" peer "$EXIT_PUB" allowed-ips "$EXIT_ALLOWED" \
		endpoint "$EXIT_ENDPOINT:51820" || die "cannot add the exit peer"
	ip -n "$NS" addr add "$ADMIN_ADDR" dev "$IF" || die "cannot add $ADMIN_ADDR"
	HUB_EP=$(ip netns exec "$NS" wg show "$IF" endpoints |
		awk -v k="$HUB_PUB" '$1 == k { sub(/:[0-9]+$/, "", $2); print $2 }')
	[ -n "$HUB_EP" ] || die "the hub peer has no endpoint"

	# resolvconf records each call, its stdin after its arguments; the hook
	# its whole environment (the client gives it a clean one), then "--".
	mkdir -p "$E2E_TMP/bin"
	printf '#!/bin/sh\necho "---- resolvconf $*" >>"%s"\ncat >>"%s"\n' \
		"$RC_LOG" "$RC_LOG" >"$E2E_TMP/bin/resolvconf"
	printf '#!/bin/sh\n{ env; echo --; } >>"%s"\n' "$HOOK_LOG" >"$E2E_TMP/hook"
	chmod 0755 "$E2E_TMP/bin/resolvconf" "$E2E_TMP/hook"
	: >"$RC_LOG"
	: >"$HOOK_LOG"

	fakehub_start
	set_good
	start_client
	wait_for -t 10 client_renewed_since 0 || die "the client got no lease from the stand-in hub"
	wait_for -t 3 test -s "$HOOK_LOG" || die "the hook did not run at the first lease"
	B_ADDRS=$(st_addrs)
	B_PERM=$(grep ' forever$' <<<"$B_ADDRS")
	B_ROUTES=$(st_routes)
	B_HUB=$(st_aips "$HUB_PUB")
	B_EXIT=$(st_aips "$EXIT_PUB")
	B_MTU=$(st_mtu)
	say "client 1: $(cut -d' ' -f1 <<<"$B_ADDRS" | tr '\n' ' ')"
	[ "$B_MTU" = "$GOOD_MTU" ] || die "the first lease did not set MTU $GOOD_MTU"
	if ! grep -qx "$A4/32 finite" <<<"$B_ADDRS" || ! grep -qx "$A6/128 finite" <<<"$B_ADDRS"; then
		die "the first lease did not put $A4 and $A6 in place"
	fi
	HH_START=$SECONDS
}

# hh_finish: the log over all the cases, then the release: the client
# stops, and takes away what it put in place and nothing else. Ends the
# test.
hh_finish() {
	say "the cases took $((SECONDS - HH_START))s"
	check_eq "the log never held a raw control or non-ASCII byte" 0 \
		"$(grep -c "$RAW_BYTES" "${CLIENT_LOG[1]}")"
	check "no search domain ran a command" not test -e "$PWNED"
	client_stop 1
	check_eq "the client stops with status 0" 0 "$?"
	check "$ADMIN_ADDR is still configured for good" \
		grep -qx "$ADMIN_ADDR forever" <<<"$(st_addrs)"
	check "the client's link-local is still there" \
		grep -qx "${CLIENT_LL[1]}/128 forever" <<<"$(st_addrs)"
	check_eq "no route of the client's protocol (87) is left" "" \
		"$(ip -n "$NS" route show proto 87; ip -n "$NS" -6 route show proto 87)"
	check_eq "the hub peer has fe80::/128 alone again" "fe80::/128" "$(st_aips "$HUB_PUB")"
	check_eq "the exit peer's allowed-IPs are as they were" "$B_EXIT" "$(st_aips "$EXIT_PUB")"
	e2e_finish
}
