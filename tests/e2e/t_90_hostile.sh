#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Hostile input against the real server. Client 1 runs no daemon: the
# hostile helper speaks for it, from its link-local fe80::1:1 and port 970,
# and sends some ninety malformed, odd or hostile requests, one connection
# each: overlong lines and messages, NUL bytes, CR LF, bad commands, versions
# and numbers, bad ip= values, repeated keys, pipelined requests, trailing
# garbage, half-closes, silence and trickling, requests for addresses outside
# the pools, leased to client 2, client 2's link-local, the pools' network
# and broadcast addresses. Each gets the answer docs/protocol.md
# gives it (an errno=1 or errno=2 answer for what the parser refuses), or is
# closed: at once after a half-close, at the idle timeout after silence.
#
# Meanwhile client 2 runs the real client with a 10-second lease, the
# shortest, so it renews every 5 seconds. Throughout, sampled every few tenths of a second:
# client 2's addresses never change, on the client or on the hub; client 1's
# peer on the hub holds at most one IPv4 and one IPv6 lease address, inside
# the pools; no address is held by two peers. At the end both processes of
# the server still run and it still answers a well-formed request.
#
# Log lines this test reads (client/main.c, server/conn.c):
#   client: "renewed: ip4 A ip6 B leasetime T leasestart S"
#   server: "bad request from ADDR: REASON", one per 10 s

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.90.0.0/24
POOL6=fd90::/64
IDLE=2
LEASE=10
HOSTILE=$E2E_DIR/hostile
CONNECT=$E2E_DIR/connect

e2e_init t_90_hostile
[ -x "$HOSTILE" ] || die "$HOSTILE is missing: run make e2e"
[ -x "$CONNECT" ] || die "$CONNECT is missing: run make e2e"
topology_create 2
server_start --pool "$POOL4" --pool "$POOL6" --idle-timeout "$IDLE" --lease-time "$LEASE"
client_start 2
client_wait_lease 2 || die "client 2 got no IPv4 and IPv6 lease"
a4=$(client_addr4 2)
a6=$(client_addr6 2)
say "client 2: $a4 $a6"

# The server's engine: the child of the privileged parent.
engine_pid() {
	pgrep -P "$SERVER_PID" | head -n 1
}
engine=$(engine_pid)
[ -n "$engine" ] || die "the server has no engine process"

# Checks one sample of the hub and client 2; prints what is wrong, if any.
# One read of the hub and one of client 2 per sample, so that samples come
# often.
sample_problems() {
	local hub c2 leases a dups

	hub=$(hub_allowed_ips) || { echo "cannot read the hub"; return; }
	c2=$(ip -n "${CLIENT_NS[2]}" -o addr show dev "${CLIENT_IF[2]}" | awk '{ print $4 }')
	grep -qxF "$a4" <<<"$c2" && grep -qxF "$a6" <<<"$c2" ||
		echo "client 2 has $(tr '\n' ' ' <<<"$c2")"
	# Each peer's allowed-IPs, one "KEY ADDR" a line, link-locals left out.
	hub=$(awk '{ for (i = 2; i <= NF; i++) if ($i != "(none)" && $i !~ /^fe80:/) print $1, $i }' \
		<<<"$hub")
	grep -qxF "${CLIENT_PUB[2]} $a4" <<<"$hub" && grep -qxF "${CLIENT_PUB[2]} $a6" <<<"$hub" ||
		echo "client 2's peer on the hub has $(grep -F "${CLIENT_PUB[2]}" <<<"$hub" | tr '\n' ' ')"
	leases=$(grep -F "${CLIENT_PUB[1]} " <<<"$hub" | cut -d' ' -f2)
	[ "$(grep -c '\.' <<<"$leases")" -le 1 ] && [ "$(grep -c ':' <<<"$leases")" -le 1 ] ||
		echo "client 1's peer holds $(tr '\n' ' ' <<<"$leases")"
	for a in $leases; do
		case $a in
		*:*) host6_in "$a" "$POOL6" ;;
		*) host4_in "$a" "$POOL4" ;;
		esac || echo "client 1's peer holds $a, outside the pools"
	done
	# WireGuard keeps allowed-IPs unique, so an address granted twice would
	# rather move from one peer to the other: the checks of client 2 above
	# catch that. This one catches a device that did otherwise.
	dups=$(cut -d' ' -f2 <<<"$hub" | sort | uniq -d)
	[ -z "$dups" ] || echo "held by two peers: $(tr '\n' ' ' <<<"$dups")"
}

say "hostile cases from client 1 (fe80::1:1, port 970), idle timeout ${IDLE}s"
mark2=$(log_mark "${CLIENT_LOG[2]}")
ip netns exec "${CLIENT_NS[1]}" "$HOSTILE" --idle-timeout "$IDLE" \
	--pool "$POOL4" --pool "$POOL6" \
	--taken "${a4%/*}" --taken "${a6%/*}" --taken "${CLIENT_LL[2]}" \
	"${CLIENT_IF[1]}" "${CLIENT_LL[1]}" >"$E2E_TMP/hostile.out" 2>&1 &
hostile_pid=$!
E2E_PIDS+=("$hostile_pid")
start=$SECONDS
problems=
samples=0
while own_child_alive "$hostile_pid"; do
	p=$(sample_problems)
	samples=$((samples + 1))
	[ -z "$p" ] || problems="${problems:+$problems; }$p"
	sleep 0.2
done
wait "$hostile_pid"
rc=$?
took=$((SECONDS - start))
sed 's/^/    /' "$E2E_TMP/hostile.out"
check_eq "every hostile case got the outcome expected" 0 "$rc"
check "at least 40 cases ran" test "$(grep -c -E ' (ok|FAIL)(,|$)' "$E2E_TMP/hostile.out")" -ge 40
check "the hub and client 2 were sampled throughout ($samples samples in ${took}s)" \
	test "$samples" -ge 5
check_eq "client 2 kept its addresses, client 1 held at most one lease per family in the pools, no address was held twice" \
	"" "$problems"
p=$(sample_problems)
check_eq "the same holds at the end" "" "$p"

renewals=$(log_since "${CLIENT_LOG[2]}" "$mark2" | grep -c '^renewed: ')
say "client 2 renewed $renewals times in ${took}s"
# T1 is half the lease, with 10 % jitter: a renewal every 5.5 s at most.
check "client 2 kept renewing during the run (at least one renewal per 6 s)" \
	test "$renewals" -ge $((took / 6))
check_eq "client 2's renewals kept its addresses" "ip4 ${a4%/*} ip6 ${a6%/*}" \
	"$(log_since "${CLIENT_LOG[2]}" "$mark2" |
		sed -n 's/^renewed: \(ip4 [^ ]* ip6 [^ ]*\) .*/\1/p' | sort -u)"

# One line per peer and cause every 10 s, the next one telling how many
# were held back: dozens of bad requests cost a few lines.
bad_lines=$(grep -c "bad request from ${CLIENT_LL[1]}: " "$SERVER_LOG")
say "the server logged $bad_lines lines of bad requests in ${took}s"
check "the server logged the refused requests, at most one line per 10 s" \
	test "$bad_lines" -ge 1 -a "$bad_lines" -le $((took / 10 + 2))
check "the server's parent still runs" pid_alive "$SERVER_PID"
check "the server's engine still runs" test "$(engine_pid)" = "$engine"
ip netns exec "${CLIENT_NS[1]}" "$CONNECT" "${CLIENT_IF[1]}" "${CLIENT_LL[1]}" 970 \
	fe80:: 970 >"$E2E_TMP/connect.out" 2>&1
check_eq "the server still answers client 1" 0 "$?"
check "and grants it an address from $POOL6" grep -q '^ip=fd90::' "$E2E_TMP/connect.out"
e2e_finish
