# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The bench of the mesh's event tests (t_88a, t_88b): source it after
# lib.sh and natlib.sh, and after e2e_init.
#
# Clients behind easy NATs, each with a persistent keepalive of 5 s on its
# hub peer, as any WireGuard peer behind a NAT needs so that the hub keeps
# seeing its current endpoint. The server runs --mesh with an IPv4 pool of
# one address per client (10.88.0.N/32, N = 1..EV_POOL_N), so that the
# address the last client to come will get is known before it comes, and
# an IPv6 pool. It pushes 10.88.0.0/24, which the hub routes (a route that
# overlaps the pools is no pool of its own): a pushed route equal to a
# peer's /32 would be the hub peer's allowed-IP on the clients, which the
# mesh never takes over.
#
# The hub counts the packets it relays, those that enter its WireGuard
# interface and leave by it again (ev_relayed): a path between two
# clients is direct when that count stays flat while they talk.
#
# Pings go every 25 ms (some 30 a second, as the timers go), every line
# time-stamped (ev_ping_start), and ev_ping_loss counts, over a window of
# time, the echo requests sent and those never answered.

EV_ROUTE4=10.88.0.0/24
EV_POOL6=fd88::/64
EV_POOL_N=0
# A switch to direct may cost the one packet that is crossing the hub as
# the receiver switches: WireGuard takes a packet from a peer only when its
# source address routes back to that peer, and from that instant the
# sender's address routes to the direct peer, not to the hub. Pings every
# 25 ms rarely lose one; a switch that goes wrong loses many.
# shellcheck disable=SC2034 # read by the tests
EV_SWITCH_LOSS=1

# ev_bench N...: the hub and an easy NAT site for each client N, the
# relay counter on the hub.
ev_bench() {
	local n

	EV_POOL_N=$#
	nat_hub_create
	for n in "$@"; do
		nat_site_easy "$n"
		ip netns exec "${CLIENT_NS[$n]}" wg set "${CLIENT_IF[$n]}" peer "$HUB_PUB" \
			persistent-keepalive 5 || die "cannot set the keepalive of client $n's hub peer"
	done
	hub_route "$EV_ROUTE4" "$EV_POOL6"
	ip netns exec "$HUB_NS" nft -f - <<-EOF || die "cannot count what the hub relays"
		table inet wgdrelay {
			counter relayed { }
			chain forward {
				type filter hook forward priority filter; policy accept;
				iifname "$HUB_IF" oifname "$HUB_IF" counter name "relayed"
			}
		}
	EOF
}

# ev_server_start: the server with --mesh and the bench's pools.
ev_server_start() {
	local n
	local -a pools=()

	for ((n = 1; n <= EV_POOL_N; n++)); do
		pools+=(--pool "10.88.0.$n/32")
	done
	server_start --mesh "${pools[@]}" --pool "$EV_POOL6" --route "$EV_ROUTE4" \
		--route "$EV_POOL6"
}

# ev_free4: the pool's IPv4 address no client holds, when one is left.
ev_free4() {
	local n m taken

	for ((n = 1; n <= EV_POOL_N; n++)); do
		taken=
		for m in "${!CLIENT_NS[@]}"; do
			[ "$(client_addr4 "$m")" = "10.88.0.$n/32" ] && taken=1
		done
		[ -z "$taken" ] && printf '10.88.0.%s\n' "$n" && return 0
	done
	return 1
}

# ev_configured N: client N holds its lease, and can answer through the
# hub: its addresses, its routes, and the routes on its hub peer.
ev_configured() {
	client_has_lease "$1" && client_has_route "$1" "$EV_ROUTE4" &&
		client_hub_peer_has "$1" "$EV_ROUTE4"
}

ev_relayed() {
	ip netns exec "$HUB_NS" nft list counter inet wgdrelay relayed |
		sed -n 's/.*packets \([0-9]*\) bytes.*/\1/p'
}

ev_now() {
	date +%s.%N
}

# ev_since T: seconds from T (an ev_now) to now, with two decimals.
ev_since() {
	awk -v t="$1" -v n="$(ev_now)" 'BEGIN { printf "%.2f\n", n - t }'
}

# ev_between T U: seconds from T to U, with two decimals.
ev_between() {
	awk -v t="$1" -v u="$2" 'BEGIN { printf "%.2f\n", u - t }'
}

# ev_plus T S: the time T plus S seconds (S may be negative).
ev_plus() {
	awk -v t="$1" -v s="$2" 'BEGIN { printf "%.6f\n", t + s }'
}

# ev_le A B: whether the number A is at most B.
ev_le() {
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'
}

# ---- the mesh's paths ----

# ev_allowed N M: the allowed-IPs of client M's peer on client N.
ev_allowed() {
	ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" allowed-ips |
		awk -v key="${CLIENT_PUB[$2]}" \
			'$1 == key { for (i = 2; i <= NF; i++) if ($i != "(none)") print $i }'
}

ev_has_peer() {
	ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" peers | grep -qxF "${CLIENT_PUB[$2]}"
}

# ev_direct N M: client N sends client M's lease straight to M.
ev_direct() {
	local list
	list=$(ev_allowed "$1" "$2")
	grep -qxF "$(client_addr4 "$2")" <<<"$list" && grep -qxF "$(client_addr6 "$2")" <<<"$list"
}

ev_pair_direct() {
	ev_direct "$1" "$2" && ev_direct "$2" "$1"
}

# ev_neither_direct N M: neither holds the other's lease on its peer.
ev_neither_direct() {
	[ -z "$(ev_allowed "$1" "$2")" ] && [ -z "$(ev_allowed "$2" "$1")" ]
}

# ev_client_show N [--json]
ev_client_show() {
	local n=$1
	shift
	ip netns exec "${CLIENT_NS[$n]}" "$CLIENT_BIN" show "${CLIENT_IF[$n]}" \
		--state-dir "$E2E_TMP/client$n-state" "$@"
}

# ev_path N M: client M's path on client N as show --json says it
# (relay, probing, direct, lost), or nothing.
ev_path() {
	ev_client_show "$1" --json 2>/dev/null |
		jq -r --arg k "${CLIENT_PUB[$2]}" '.mesh.peers[]? | select(.key == $k) | .path'
}

# ev_server_show [--json]
# shellcheck disable=SC2120 # the tests pass --json
ev_server_show() {
	ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF" "$@"
}

# ev_directory_has N...: the server's show lists every client N as a
# mesh peer.
ev_directory_has() {
	local show n
	show=$(ev_server_show 2>/dev/null) || return 1
	for n in "$@"; do
		grep -q "^mesh peer: ${CLIENT_PUB[$n]}" <<<"$show" || return 1
	done
}

# ---- pings ----

# ev_ping_start N ADDR: client N pings ADDR every 25 ms until
# ev_ping_stop, each line with its time (-D), and a line for each request
# still unanswered when the next goes (-O), so that every request shows.
ev_ping_start() {
	EV_PING_LOG=$E2E_TMP/ping-$1-$2-$SECONDS.log
	ip netns exec "${CLIENT_NS[$1]}" ping -n -D -O -i 0.025 -W 1 "$2" >"$EV_PING_LOG" 2>&1 &
	EV_PING_PID=$!
	E2E_PIDS+=("$EV_PING_PID")
}

ev_ping_stop() {
	own_child_alive "$EV_PING_PID" && kill -INT "$EV_PING_PID"
	wait "$EV_PING_PID" 2>/dev/null
	return 0
}

# ev_ping_loss FROM TO: "SENT LOST FIRST LAST" for the requests the last
# ping sent between the times FROM and TO (ev_now): how many, how many
# never answered, and the times of the first and last of those (0 when
# none). A request shows first at its reply, or when the next one leaves
# unanswered, at most 25 ms after it left: that is its time here.
ev_ping_loss() {
	awk -v from="$1" -v to="$2" '
	/icmp_seq=/ {
		t = substr($1, 2, length($1) - 2) + 0
		match($0, /icmp_seq=[0-9]+/)
		s = substr($0, RSTART + 9, RLENGTH - 9) + 0
		if (!(s in first))
			first[s] = t
		if ($0 ~ / bytes from /)
			got[s] = 1
	}
	END {
		n = 0; lost = 0; lo = 0; hi = 0
		for (s in first) {
			if (first[s] < from || first[s] > to)
				continue
			n++
			if (s in got)
				continue
			lost++
			if (!lo || first[s] < lo)
				lo = first[s]
			if (first[s] > hi)
				hi = first[s]
		}
		printf "%d %d %.3f %.3f\n", n, lost, lo, hi
	}' "$EV_PING_LOG"
}

# ---- diagnosis ----

ev_dump() {
	local n

	nat_dump
	if [ -n "$HUB_NS" ]; then
		say "---- hub: relayed packets ----"
		ev_relayed 2>&1
		say "---- hub: show ----"
		ev_server_show 2>&1
	fi
	for n in "${!CLIENT_LOG[@]}"; do
		say "---- client $n: show ----"
		ev_client_show "$n" 2>&1
		say "---- client $n: log ----"
		cat "${CLIENT_LOG[$n]}"
	done
	if [ -n "${EV_PING_LOG:-}" ] && [ -f "$EV_PING_LOG" ]; then
		say "---- the last ping: unanswered ----"
		grep -v ' bytes from ' "$EV_PING_LOG" | tail -n 60
	fi
}
