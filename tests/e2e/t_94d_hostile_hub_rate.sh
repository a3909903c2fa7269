#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# How often the client asks a hostile hub. The stand-in hub (see
# hostile-hub.sh) answers five clients at once, each its own way, and
# counts their requests over 10 s:
#   1. leasetime=0 and 2. leasetime=1: counted as 10 s, so a renewal about
#      every 5 s (half the lease, 10 % either way): from the first lease on,
#      at most a handful of requests, never two within 4 s, the first
#      renewal 4 to 6.5 s after the lease, as many hook runs, and the log
#      says the lease time was raised;
#   3. errno=3 and no address, from the start, and 5. a close without an
#      answer: the backoff without a lease, from 0.25 s up by a quarter of
#      the time spent failing: at most 6 requests in any second, at most 20
#      in the 10 s, and no hook run;
#   4. a good 10-second lease, then errno=3 and no address: the backoff of a
#      bound client, from 0.5 s doubling, until the lease ends; then its
#      addresses go.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
export LC_ALL=C
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

WINDOW_MS=10000

e2e_init t_94d_hostile_hub_rate
hub_create
for n in 1 2 3 4 5; do
	client_create "$n"
done
fakehub_start

# grant N LEASETIME: the response granting client N its addresses, for
# fakehub_set.
grant() {
	printf 'ip=10.94.%d.2/32\\nip=fd94::%d:2/128\\nleasestart=%s\\nleasetime=%s\\nerrno=0\\n\\n' \
		"$1" "$1" "${EPOCHREALTIME%.*}" "$2"
}
REFUSAL='errno=3\nerrmsg=Chosen IP(s) unavailable\n\n'
fakehub_set 1 "answer lt0" "$(grant 1 0)"
fakehub_set 2 "answer lt1" "$(grant 2 1)"
fakehub_set 3 "answer refused" "$REFUSAL"
fakehub_set 4 "answer good" "$(grant 4 10)"
fakehub_set 5 "close closed" ""
fakehub_set default "close unknown" ""

for n in 1 2 3 4 5; do
	# shellcheck disable=SC2016 # for the hook to expand
	printf '#!/bin/sh\necho "$reason" >>"%s"\n' "$E2E_TMP/hook$n.log" >"$E2E_TMP/hook$n"
	chmod 0755 "$E2E_TMP/hook$n"
	: >"$E2E_TMP/hook$n.log"
	client_start "$n" --script "$E2E_TMP/hook$n"
done
bound() {
	grep -qE '^(renewed|bound): ' "${CLIENT_LOG[$1]}"
}
for n in 1 2 4; do
	wait_for -t 10 bound "$n" || die "client $n got no lease from the stand-in hub"
done
fakehub_set 4 "answer refused-later" "$REFUSAL"
t0=$(($(printf '%s' "${EPOCHREALTIME/./}") / 1000))
say "counting requests for $((WINDOW_MS / 1000))s"
sleep $((WINDOW_MS / 1000)).5

# times N FROM: the times (ms) of client N's requests in the window of
# WINDOW_MS starting at FROM.
times() {
	fakehub_requests 0 "$1" | awk -v a="$2" -v b="$(($2 + WINDOW_MS))" '$1 >= a && $1 < b { print $1 }'
}

# stats TIMES: "COUNT MAX_PER_SECOND MIN_GAP_MS" of request times, seconds
# counted from the first.
stats() {
	awk 'NR == 1 { first = $1 } {
		n++
		b = int(($1 - first) / 1000)
		if (++per[b] > max) max = per[b]
		if (NR > 1 && (gap == "" || $1 - last < gap)) gap = $1 - last
		last = $1
	} END { printf "%d %d %s\n", n, max, gap == "" ? "-" : gap }' <<<"$1"
}

between() {
	[ "$3" -ge "$1" ] && [ "$3" -le "$2" ]
}

# gap_at_least MS GAP: GAP is "-" (a single request) or at least MS.
gap_at_least() {
	[ "$2" = - ] || [ "$2" -ge "$1" ]
}

for n in 1 2; do
	first=$(fakehub_requests 0 "$n" | awk 'NR == 1 { print $1 }')
	read -r count _ gap <<<"$(stats "$(times "$n" "$first")")"
	second=$(times "$n" "$first" | awk 'NR == 2 { print $1 }')
	runs=$(wc -l <"$E2E_TMP/hook$n.log")
	say "client $n (leasetime $((n - 1))): $count requests from the first on, the closest ${gap} ms apart, $runs hook runs"
	check "client $n runs" pid_alive "${CLIENT_PID[$n]}"
	check "client $n: at most 12 requests in 10 s" test "$count" -le 12
	check "client $n: no two requests within 4 s" gap_at_least 4000 "$gap"
	check "client $n: the first renewal 4 to 6.5 s after the lease" \
		between 4000 6500 "$((${second:-0} - first))"
	check "client $n: at most 12 hook runs" test "$runs" -le 12
	check "client $n: the log says the lease time was raised" \
		grep -q "^from the hub: leasetime $((n - 1)): raised to 10 s" "${CLIENT_LOG[$n]}"
done

for n in 3 5; do
	first=$(fakehub_requests 0 "$n" | awk 'NR == 1 { print $1 }')
	[ -n "$first" ] || die "client $n never asked"
	read -r count max _ <<<"$(stats "$(times "$n" "$first")")"
	late=$(times "$n" "$((first + WINDOW_MS / 2))" | awk -v e="$((first + WINDOW_MS))" '$1 < e' | wc -l)
	say "client $n ($([ "$n" = 3 ] && echo refusals || echo closes)): $count requests, at most $max in a second, $late in the second half"
	check "client $n runs" pid_alive "${CLIENT_PID[$n]}"
	check "client $n: at most 20 requests in 10 s" test "$count" -le 20
	check "client $n: at most 6 requests in any second" test "$max" -le 6
	check "client $n: at most 6 requests in the last 5 s" test "$late" -le 6
	check_eq "client $n: no hook run" 0 "$(wc -l <"$E2E_TMP/hook$n.log")"
done

read -r count max _ <<<"$(stats "$(times 4 "$t0")")"
say "client 4 (bound, then refusals): $count requests, at most $max in a second"
check "client 4 runs" pid_alive "${CLIENT_PID[4]}"
check "client 4: at most 12 requests in 10 s" test "$count" -le 12
check "client 4: at most 4 requests in any second" test "$max" -le 4
gone() {
	[ -z "$(client_addr4 4)" ] && [ -z "$(client_addr6 4)" ]
}
check "client 4: its addresses went with the lease" wait_for -t 5 gone
check "client 4: the hook saw the lease end" wait_for -t 3 grep -qx EXPIRE "$E2E_TMP/hook4.log"
e2e_finish
