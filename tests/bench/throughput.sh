#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
#
# End-to-end server throughput: wg-dynamic-server's real request path (peer
# lookup, lease, journal with group commit on the disk, allowed-IPs update
# through wireguard-go's UAPI socket) against storms of simulated clients,
# measured against a bare epoll server that only answers (the floor).
#
#   tests/bench/throughput.sh [DIR]
#
# A hub namespace runs wireguard-go. N simulated clients are N link-local
# /128 addresses on the hub's own interface, each the only allowed-IP of a
# peer with a random key (tests/bench/loadgen.c); their connections to
# [fe80::%IFACE]:970 are delivered locally and never reach wireguard-go, so
# what it does is serve the server's device reads and updates.
#
# For each N and each concurrency C, the floor (tests/bench/floor.c) and
# then a server started afresh, with an empty journal and peers reset to
# their link-local allowed-IP, each take two storms:
#   grants:   every client asks once for any IPv4 and IPv6 address;
#   renewals: every client asks again for what it was granted, with its
#             leasestart and leasetime, as a bound client does: the floor
#             right after, the server once every lease is past 40 % of its
#             LEASE seconds (it answers a request before that from the
#             lease as it stands, with no journal record: not a renewal).
# Each row gives the server's leases per second and as a share of the
# floor's for the same storm, latency percentiles (connect to the last byte
# of the response), the CPU time of the server's two processes and of
# wireguard-go per lease (utime + stime from /proc/PID/stat, in steps of
# one clock tick), and errors: responses with a non-zero errno= and
# connections without a whole response. Figures, not pass or fail; the exit
# status is 1 when a storm had errors or the set-up failed.
#
# The journal goes under DIR (default: a temporary directory beside the
# repository, else in /var/tmp, so that fdatasync hits a disk), removed
# afterwards. Each pair of runs is repeated THROUGHPUT_REPEAT times
# (default 3), floor and server in turn, and each row shows the repetition
# whose share of the floor is the median, so that a burst of other work on
# the machine moves no figure on its own. Other knobs: THROUGHPUT_SIZES
# (default "1000 10000") and THROUGHPUT_CONC (default "16 128");
# THROUGHPUT_SERVER_OPTS adds options to the server's command line;
# E2E_KEEP=1 keeps the logs.

# Functions below run through wait_for and the EXIT trap, which shellcheck
# cannot see.
# shellcheck disable=SC2317
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$BENCH_DIR/../e2e/lib.sh"

LOADGEN=$BENCH_DIR/loadgen
FLOOR=$BENCH_DIR/floor
SIZES=${THROUGHPUT_SIZES:-1000 10000}
CONCS=${THROUGHPUT_CONC:-16 128}
REPEAT=${THROUGHPUT_REPEAT:-3}
read -r -a SERVER_OPTS <<<"${THROUGHPUT_SERVER_OPTS:-}"
# The server's lease time, and how long after its grant storm its renewal
# storm starts: past 40 % of the lease, the whole-second clock's second
# included, and with the storms' own time to spare before the leases end.
LEASE=10
RENEW_WAIT=4
# A /16 holds 65534 clients; the IPv6 pool draws at random from a /64.
POOL4=10.0.0.0/16
POOL6=fd00::/64
MAX_CLIENTS=60000
# Targets, as a share of the floor's rate.
TARGET_GRANTS=70
TARGET_RENEWALS=85

CLK_TCK=$(getconf CLK_TCK)
SCRATCH=
OWN_SCRATCH=0
FLOOR_PID=
STORM_ERRORS=0
# Figures by who.storm.figure: server.grants.rate, floor.renewals.p99_us...
declare -A RES=()
R_rate=0 R_p50_us=0 R_p99_us=0 R_answered=0 R_errno=0 R_failed=0 R_changed=0
R_cpu=0 R_wg=0 R_first_error=-
# Notes printed under the table: errors, and leases missing on the device.
NOTES=()

e2e_before_cleanup() {
	# The hub's allowed-IPs would be thousands of lines: not worth a dump.
	HUB_NS=
	if [ "$OWN_SCRATCH" = 1 ] && [ -n "$SCRATCH" ]; then
		rm -rf "$SCRATCH"
	fi
}

# ---- processes and their CPU time ----

# cpu_ticks PID...: utime + stime of the PIDs, in clock ticks. For a
# multi-threaded process (wireguard-go) the kernel sums its threads.
cpu_ticks() {
	local pid stat sum=0
	local -a f

	for pid in "$@"; do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		# After the command name: state, ppid, ... utime is field 14 of
		# the line, stime 15.
		read -r -a f <<<"${stat##*) }"
		sum=$((sum + f[11] + f[12]))
	done
	printf '%s\n' "$sum"
}

# ---- the hub ----

# hub_setup N: a namespace with wireguard-go, N peers and their N
# link-local addresses, and fe80::/64, up.
hub_setup() {
	local n=$1

	HUB_NS=wgd-$E2E_ID-bench
	HUB_IF=wgbh$E2E_ID
	netns_add "$HUB_NS"
	wg_iface_start "$HUB_NS" "$HUB_IF"
	HUB_WG_PID=$WG_IFACE_PID
	"$LOADGEN" setup "$n" "$HUB_IF" "$E2E_TMP/peers.conf" "$E2E_TMP/addrs.batch" ||
		die "loadgen setup failed"
	hub_reset_peers
	ip -n "$HUB_NS" -batch "$E2E_TMP/addrs.batch" || die "cannot add the clients' addresses"
	ip -n "$HUB_NS" addr add fe80::/64 dev "$HUB_IF" || die "cannot add fe80::/64 to $HUB_IF"
	ip -n "$HUB_NS" link set "$HUB_IF" up || die "cannot bring $HUB_IF up"
}

# Every peer back to its link-local allowed-IP alone.
hub_reset_peers() {
	ip netns exec "$HUB_NS" wg setconf "$HUB_IF" "$E2E_TMP/peers.conf" ||
		die "cannot configure the peers of $HUB_IF"
}

hub_teardown() {
	stop_pid "$HUB_WG_PID"
	ip netns del "$HUB_NS" 2>/dev/null
	rm -f "$WG_SOCK_DIR/$HUB_IF.sock"
	HUB_NS=
	HUB_WG_PID=
}

# The addresses from the pools on the device: two per lease.
hub_leased_count() {
	ip netns exec "$HUB_NS" wg show "$HUB_IF" allowed-ips |
		awk '{ for (i = 2; i <= NF; i++) if (index($i, "10.0.") == 1 || index($i, "fd00:") == 1) n++ }
			END { print n + 0 }'
}

# ---- the servers ----

floor_listening() {
	own_child_alive "$FLOOR_PID" &&
		ip netns exec "$HUB_NS" ss -Hltn 'sport = :970' 2>/dev/null | grep -q .
}

floor_start() {
	ip netns exec "$HUB_NS" "$FLOOR" "$HUB_IF" "$POOL4" "$POOL6" >>"$E2E_TMP/floor.log" 2>&1 &
	FLOOR_PID=$!
	E2E_PIDS+=("$FLOOR_PID")
	wait_for -t 10 floor_listening || die "the floor server is not listening on port 970"
}

floor_stop() {
	stop_pid "$FLOOR_PID"
	FLOOR_PID=
}

# server_start_fresh TAG: wg-dynamic-server with an empty state directory,
# without -v (a debug line per request is not the path being measured).
server_start_fresh() {
	SERVER_LOG=$E2E_TMP/server-$1.log
	[ -x "$SERVER_BIN" ] || die "$SERVER_BIN is missing: run make"
	rm -rf "$SCRATCH/state"
	ip netns exec "$HUB_NS" "$SERVER_BIN" --state-dir "$SCRATCH/state" \
		--pool "$POOL4" --pool "$POOL6" --lease-time "$LEASE" "${SERVER_OPTS[@]}" "$HUB_IF" \
		>>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	E2E_PIDS+=("$SERVER_PID")
	wait_for -t 30 server_ready 0 || die "wg-dynamic-server is not serving on port 970"
}

# The server's parent and its engine.
server_pids() {
	printf '%s\n' "$SERVER_PID"
	pid_descendants "$SERVER_PID"
}

# What the server logged while serving, besides grants and renewals: the
# count and the first such line, or nothing.
server_other_lines() {
	awk '/^serving / { on = 1; next }
		/^exiting on signal/ { on = 0 }
		on && !/: (granted|renewed) ip4 / { if (!n++) first = $0 }
		END { if (n) printf "%d other lines, the first: %s\n", n, first }' "$SERVER_LOG"
}

# ---- storms ----

# storm KIND N C LEASES PID...: runs loadgen KIND (grant or renew) and sets
# R_<figure> from its line, R_cpu and R_wg to the ticks the PIDs and
# wireguard-go spent during the storm.
storm() {
	local kind=$1 n=$2 c=$3 leases=$4 line kv t0 t1 w0 w1
	shift 4

	t0=$(cpu_ticks "$@")
	w0=$(cpu_ticks "$HUB_WG_PID")
	line=$(ip netns exec "$HUB_NS" "$LOADGEN" "$kind" "$HUB_IF" "$n" "$c" "$leases") ||
		die "loadgen $kind $n $c could not run"
	t1=$(cpu_ticks "$@")
	w1=$(cpu_ticks "$HUB_WG_PID")
	R_cpu=$((t1 - t0))
	R_wg=$((w1 - w0))
	R_answered=0 R_errno=0 R_failed=0 R_changed=0 R_rate=0 R_p50_us=0 R_p99_us=0
	R_first_error=-
	for kv in $line; do
		case ${kv%%=*} in
		answered | errno | failed | changed | rate | p50_us | p99_us | first_error)
			printf -v "R_${kv%%=*}" '%s' "${kv#*=}"
			;;
		esac
	done
}

# Microseconds of CPU per lease from TICKS over ANSWERED leases.
per_lease_us() {
	awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN {
		if (n > 0) printf "%.0f", t * 1e6 / hz / n; else printf "-" }'
}

ms() {
	awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'
}

# errors_text ERRNO FAILED: "0", or the count with what it is made of.
errors_text() {
	if [ "$1" -eq 0 ] && [ "$2" -eq 0 ]; then
		printf '0'
	else
		printf '%d (%d errno, %d failed)' "$(($1 + $2))" "$1" "$2"
	fi
}

# One format for the header and the rows.
ROW_FORMAT='%6s %5s  %-8s %9s %8s %8s  %-14s %7s %7s %13s %10s %10s  %s %s\n'

print_header() {
	# shellcheck disable=SC2059 # the format is ours
	printf "$ROW_FORMAT" N conc storm leases/s floor/s "of floor" target "p50 ms" "p99 ms" \
		"floor p50/99" "server CPU" "wg-go CPU" "errors: server" "(floor)"
	# shellcheck disable=SC2059
	printf "$ROW_FORMAT" "" "" "" "" "" "" "" "" "" "ms" "us/lease" "us/lease" "" "" | sed 's/ *$//'
}

# print_row N C STORM TARGET: one storm's figures, the server's and the
# floor's.
print_row() {
	local n=$1 c=$2 st=$3 target=$4 pct met sk=server.$3 fk=floor.$3

	pct=$(awk -v a="${RES[$sk.rate]}" -v b="${RES[$fk.rate]}" \
		'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print 0 }')
	met=below
	[ "$pct" -ge "$target" ] && met=met
	# shellcheck disable=SC2059
	printf "$ROW_FORMAT" "$n" "$c" "$st" "${RES[$sk.rate]}" "${RES[$fk.rate]}" "$pct %" \
		">= $target % $met" "$(ms "${RES[$sk.p50_us]}")" "$(ms "${RES[$sk.p99_us]}")" \
		"$(ms "${RES[$fk.p50_us]}")/$(ms "${RES[$fk.p99_us]}")" \
		"$(per_lease_us "${RES[$sk.cpu]}" "${RES[$sk.answered]}")" \
		"$(per_lease_us "${RES[$sk.wg]}" "${RES[$sk.answered]}")" \
		"$(errors_text "${RES[$sk.errno]}" "${RES[$sk.failed]}")" \
		"($(errors_text "${RES[$fk.errno]}" "${RES[$fk.failed]}"))"
}

# save WHO STORM N C: the last storm's figures into RES[WHO.STORM.FIGURE],
# and what went wrong into NOTES.
save() {
	local who=$1 st=$2 n=$3 c=$4 k=$1.$2

	RES[$k.rate]=$R_rate RES[$k.p50_us]=$R_p50_us RES[$k.p99_us]=$R_p99_us
	RES[$k.answered]=$R_answered RES[$k.errno]=$R_errno RES[$k.failed]=$R_failed
	RES[$k.cpu]=$R_cpu RES[$k.wg]=$R_wg
	if [ "$R_errno" -ne 0 ] || [ "$R_failed" -ne 0 ]; then
		STORM_ERRORS=$((STORM_ERRORS + 1))
		NOTES+=("N=$n C=$c $st, $who: $R_errno errno=, $R_failed failed; first: $R_first_error")
	fi
	if [ "$who" = server ] && [ "$R_changed" -ne 0 ]; then
		STORM_ERRORS=$((STORM_ERRORS + 1))
		NOTES+=("N=$n C=$c $st, $who: $R_changed renewals were answered with other addresses")
	fi
}

# run_pair N C: floor and server, each a grant storm and a renewal storm.
run_pair() {
	local n=$1 c=$2 leased spids other

	floor_start
	storm grant "$n" "$c" "$E2E_TMP/floor.leases" "$FLOOR_PID"
	save floor grants "$n" "$c"
	storm renew "$n" "$c" "$E2E_TMP/floor.leases" "$FLOOR_PID"
	save floor renewals "$n" "$c"
	floor_stop

	hub_reset_peers
	server_start_fresh "$n-$c"
	mapfile -t spids < <(server_pids)
	[ "${#spids[@]}" -ge 2 ] || die "wg-dynamic-server did not start its engine"
	storm grant "$n" "$c" "$E2E_TMP/server.leases" "${spids[@]}"
	save server grants "$n" "$c"
	leased=$(hub_leased_count)
	if [ "$leased" -ne $((2 * (R_answered - R_errno))) ]; then
		NOTES+=("N=$n C=$c: the device holds $leased leased addresses after" \
			"$((R_answered - R_errno)) grants")
	fi
	sleep "$RENEW_WAIT"
	storm renew "$n" "$c" "$E2E_TMP/server.leases" "${spids[@]}"
	save server renewals "$n" "$c"
	server_stop 10 || die "wg-dynamic-server did not stop"
	other=$(server_other_lines)
	[ -z "$other" ] || NOTES+=("N=$n C=$c: the server logged $other")
}

FIGURES="rate p50_us p99_us answered errno failed cpu wg"

# keep REP STORM: files the current figures of STORM as repetition REP's.
keep() {
	local f who

	for who in server floor; do
		for f in $FIGURES; do
			RES[$1.$who.$2.$f]=${RES[$who.$2.$f]}
		done
	done
}

# median STORM: puts back the figures of the repetition whose share of the
# floor for STORM is the median.
median() {
	local r f who pick

	pick=$(for ((r = 1; r <= REPEAT; r++)); do
		awk -v r="$r" -v a="${RES[$r.server.$1.rate]}" -v b="${RES[$r.floor.$1.rate]}" \
			'BEGIN { printf "%s %f\n", r, (b > 0 ? a / b : 0) }'
	done | sort -k2 -g | awk -v m=$(((REPEAT + 1) / 2)) 'NR == m { print $1 }')
	for who in server floor; do
		for f in $FIGURES; do
			RES[$who.$1.$f]=${RES[$pick.$who.$1.$f]}
		done
	done
}

# run_pairs N C: REPEAT pairs, then the median rows.
run_pairs() {
	local r

	for ((r = 1; r <= REPEAT; r++)); do
		run_pair "$1" "$2"
		keep "$r" grants
		keep "$r" renewals
	done
	median grants
	median renewals
	print_row "$1" "$2" grants "$TARGET_GRANTS"
	print_row "$1" "$2" renewals "$TARGET_RENEWALS"
}

machine() {
	local cpu wgv

	cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	wgv=$(wireguard-go --version 2>/dev/null | awk 'NF { print $2; exit }')
	say "machine: ${cpu:-unknown CPU}, $(nproc) CPUs; $(uname -sr); wireguard-go ${wgv:-unknown}"
	say "journal on $(findmnt -n -o FSTYPE -T "$SCRATCH" 2>/dev/null || stat -f -c %T "$SCRATCH") ($SCRATCH); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# ---- main ----

e2e_init throughput
for bin in "$LOADGEN" "$FLOOR" "$SERVER_BIN"; do
	[ -x "$bin" ] || die "$bin is not built: run make bench"
done
case $REPEAT in
'' | *[!0-9]* | 0) die "THROUGHPUT_REPEAT: $REPEAT is not a number from 1" ;;
esac
for n in $SIZES; do
	case $n in
	'' | *[!0-9]*) die "THROUGHPUT_SIZES: $n is not a number" ;;
	esac
	if [ "$n" -lt 1 ] || [ "$n" -gt "$MAX_CLIENTS" ]; then
		die "THROUGHPUT_SIZES: $n is not from 1 to $MAX_CLIENTS"
	fi
done
if [ $# -gt 0 ]; then
	SCRATCH=$(mktemp -d "$1/throughput.XXXXXX") || die "cannot make a directory in $1"
else
	SCRATCH=$(mktemp -d "$(cd "$E2E_TOP/.." && pwd)/wgd-throughput.XXXXXX" 2>/dev/null ||
		mktemp -d /var/tmp/wgd-throughput.XXXXXX) || die "no scratch directory"
fi
OWN_SCRATCH=1

machine
say "pools $POOL4 and $POOL6; each row: floor, then a fresh server; grants, then renewals;"
say "the median share of the floor of $REPEAT such pairs"
say "targets: grants >= $TARGET_GRANTS % of the floor, renewals >= $TARGET_RENEWALS %"
say "CPU is counted in clock ticks of $((1000 / CLK_TCK)) ms:$(for n in $SIZES; do
	awk -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf " +-%.1f us/lease at N=%d;", 1e6 / hz / n, n }'
done | sed 's/;$//')"
say
print_header
for n in $SIZES; do
	start=$SECONDS
	hub_setup "$n"
	for c in $CONCS; do
		run_pairs "$n" "$c"
	done
	hub_teardown
	NOTES+=("N=$n: $((SECONDS - start)) s with set-up")
done
say
for note in "${NOTES[@]}"; do
	say "$note"
done
if [ "$STORM_ERRORS" -gt 0 ]; then
	say "throughput: $STORM_ERRORS storm(s) had errors"
	exit 1
fi
exit 0
