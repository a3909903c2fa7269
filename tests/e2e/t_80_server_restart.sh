#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Restarting the server between renewals costs the clients nothing. With an
# 8-second lease two clients renew about every 4 seconds. After a first
# renewal the server is stopped (SIGTERM) and started again with the same
# options and state directory; it restores both leases from its journal and
# the clients' next renewals are answered with the same addresses. A
# sampler records every 0.2 s, from before the restart until two renewals
# after it, each client's addresses and its peer's allowed-IPs on the hub:
# every sample must show the two leases, unchanged.
#
# Log lines this test reads (server/restore.c, client/main.c):
#   server: "journal PATH: restored N leases, dropped N expired, N addresses
#            in quarantine"
#   client: "bound: ip4 A ip6 B leasetime T leasestart S"
#           "renewed: ip4 A ip6 B leasetime T leasestart S"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.80.0.0/24
POOL6=fd80::/64
LEASE=10
SERVER_OPTS=(--pool "$POOL4" --pool "$POOL6" --lease-time "$LEASE")

e2e_init t_80_server_restart
topology_create 2
server_start "${SERVER_OPTS[@]}"
client_start 1
client_start 2
client_wait_lease 1 || die "client 1 got no IPv4 and IPv6 lease"
client_wait_lease 2 || die "client 2 got no IPv4 and IPv6 lease"

# Filters "wg show allowed-ips" lines: each peer's allowed-IPs, sorted.
sort_allowed_ips() {
	awk '{
		n = split($0, f, /[ \t]+/)
		for (i = 3; i <= n; i++) {
			v = f[i]
			for (j = i - 1; j >= 2 && f[j] > v; j--)
				f[j + 1] = f[j]
			f[j + 1] = v
		}
		line = f[1]
		for (i = 2; i <= n; i++)
			line = line " " f[i]
		print line
	}'
}

# One sample: each client's global addresses, then the hub's allowed-IPs,
# sorted by peer and within each peer. Few commands, so that samples stay
# frequent on a busy machine.
sample() {
	local n
	for n in 1 2; do
		printf 'c%s ' "$n"
		ip -n "${CLIENT_NS[$n]}" -o addr show dev "${CLIENT_IF[$n]}" scope global |
			awk '{ printf "%s ", $4 }'
	done
	printf 'hub '
	hub_allowed_ips | sort_allowed_ips | sort | tr '\n' ' '
}

# Runs in the background until stopped; the EXIT trap stops it on failure.
sampler() {
	local line
	while :; do
		# One write a sample: stopping the sampler cannot leave half a line.
		line=$(sample)
		printf '%s\n' "$line" >>"$SAMPLES"
		sleep 0.2
	done
}

SAMPLES=$E2E_TMP/samples
expected=$(sample)
say "leases: $expected"
sampler &
SAMPLER_PID=$!
E2E_PIDS+=("$SAMPLER_PID")

# The number of "renewed:" lines client N logged after log mark MARK.
renewals_since() {
	log_since "${CLIENT_LOG[$1]}" "$2" | grep -c '^renewed: '
}

renewed_twice() {
	[ "$(renewals_since 1 "${mark[1]}")" -ge 2 ] && [ "$(renewals_since 2 "${mark[2]}")" -ge 2 ]
}

samples() {
	wc -l <"$SAMPLES"
}

samples_at_least() {
	[ "$(samples)" -ge "$1" ]
}

# Restart just after client 1's first renewal, so that the next ones of both
# clients go to the new server.
wait_for -t 10 grep -q '^renewed: ' "${CLIENT_LOG[1]}" || die "client 1 did not renew"
wait_for -t 10 samples_at_least 3 || die "the sampler took fewer than 3 samples in 10 s"
before=$(samples)
server_stop 5
rc=$?
check_eq "server exits 0 on SIGTERM" 0 "$rc"
declare -a mark
for n in 1 2; do
	mark[n]=$(log_mark "${CLIENT_LOG[$n]}")
done
server_mark=$(log_mark "$SERVER_LOG")
server_start "${SERVER_OPTS[@]}"
say "server restarted"
check "both clients renewed twice with the new server" wait_for -t 20 renewed_twice
stop_pid "$SAMPLER_PID"

total=$(samples)
bad=$(grep -cvxF "$expected" "$SAMPLES")
say "$total samples, $before of them before the restart; $bad differ"
check "the sampler took samples after the restart" test "$((total - before))" -ge 5
check_eq "every sample shows both leases, unchanged, on the clients and the hub" 0 "$bad"
if [ "$bad" -ne 0 ]; then
	say "first differing sample: $(grep -vxF -m 1 "$expected" "$SAMPLES")"
fi

restart_log=$(log_since "$SERVER_LOG" "$server_mark")
check "the restarted server restored both leases from its journal" \
	grep -qF "journal $(hub_journal): restored 2 leases" <<<"$restart_log"
check "the restarted server granted no new lease" \
	not grep -q ': granted ' <<<"$restart_log"
for n in 1 2; do
	a4=$(client_addr4 "$n")
	a6=$(client_addr6 "$n")
	check_eq "client $n: every renewal after the restart has the same addresses" \
		"ip4 ${a4%/*} ip6 ${a6%/*}" \
		"$(log_since "${CLIENT_LOG[$n]}" "${mark[n]}" |
			sed -n 's/^renewed: \(ip4 [^ ]* ip6 [^ ]*\) .*/\1/p' | sort -u)"
	check_eq "client $n: no new binding after the restart" 0 \
		"$(log_since "${CLIENT_LOG[$n]}" "${mark[n]}" | grep -c '^bound: ')"
	check "server: renewed client $n's lease after the restart" \
		grep -qF "peer ${CLIENT_PUB[$n]}: renewed ip4 $a4 ip6 $a6 " <<<"$restart_log"
done
e2e_finish
