#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A script that heeds no SIGTERM and starts a child that heeds none either.
# The lease renews regardless; at its limit the whole process group of each
# run of the script is killed, the child with it; hooks run one at a time;
# and once the client has stopped, no process of any hook is left.

# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

e2e_init t_99_hook_sigterm
topology_create 1

# Each run writes: reason, its pid, its process group, its child's pid and
# when it started, in milliseconds.
HOOK_LOG=$E2E_TMP/hook.log
cat >"$E2E_TMP/hook" <<HOOK
#!/bin/sh
trap '' TERM
sleep 300 &
echo "\$reason \$\$ \$(cut -d' ' -f5 /proc/\$\$/stat) \$! \$((\$(date +%s%N) / 1000000))" \
	>>"$HOOK_LOG"
wait
HOOK
chmod +x "$E2E_TMP/hook"

# hook_process PID: whether PID runs the script or the sleep it starts.
hook_process() {
	local cmd
	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
	case $cmd in
	"/bin/sh $E2E_TMP/hook "* | "sleep 300 ") return 0 ;;
	esac
	return 1
}

# Whatever a failed check leaves running goes with the test.
e2e_before_cleanup() {
	local reason pid pgid child p
	[ -f "$HOOK_LOG" ] || return 0
	while read -r reason pid pgid child _; do
		for p in $(pgrep -g "$pgid"); do
			hook_process "$p" && kill -KILL "$p" 2>/dev/null
		done
	done <"$HOOK_LOG"
	return 0
}

hook_field() { # hook_field N FIELD: field FIELD of the Nth run
	sed -n "${1}p" "$HOOK_LOG" 2>/dev/null | cut -d' ' -f"$2"
}

# group_gone PGID: whether no process of the script's is left in PGID.
group_gone() {
	local p
	[ -n "$1" ] || return 1
	for p in $(pgrep -g "$1"); do
		hook_process "$p" && return 1
	done
	return 0
}

renewals() {
	grep -c 'renewed: ' "${CLIENT_LOG[1]}" 2>/dev/null
}

renewed_thrice() {
	[ "$(renewals)" -ge 3 ]
}

runs() {
	[ -f "$HOOK_LOG" ] && wc -l <"$HOOK_LOG" || echo 0
}

server_start --pool 10.99.0.0/24 --pool fd99::/64 --lease-time 10
client_start 1 --script "$E2E_TMP/hook" --script-timeout 2
client_wait_lease 1 || die "client 1 got no lease"
wait_for -t 5 test -s "$HOOK_LOG" || die "the script did not run"

pid=$(hook_field 1 2)
pgid=$(hook_field 1 3)
child=$(hook_field 1 4)
check_eq "the script ran for BOUND" BOUND "$(hook_field 1 1)"
check_eq "the script leads its own process group" "$pid" "$pgid"
check "the lease renews while the script hangs" wait_for -t 25 renewed_thrice
check "the script's process group is gone after its limit" wait_for -t 2 group_gone "$pgid"
check "its child, which ignores SIGTERM, is gone too" pid_gone "$child"
check "the kill was logged" \
	grep -q "(BOUND) did not finish within 2s; killed it and its process group" \
	"${CLIENT_LOG[1]}"

# Each run hangs until killed at 2 s: the next may start only after that.
n=$(runs)
check "the script ran again after BOUND" test "$n" -ge 2
overlap=
for ((i = 2; i <= n; i++)); do
	gap=$(($(hook_field "$i" 5) - $(hook_field $((i - 1)) 5)))
	[ "$gap" -ge 1900 ] || overlap+=" run $i started ${gap}ms after run $((i - 1))"
done
check_eq "one run at a time, each after the one before was killed" "" "$overlap"

client_stop 1 40 || fail "client 1 did not stop"
check "the script saw RELEASE before the client exited" grep -q '^RELEASE ' "$HOOK_LOG"
left=
while read -r reason pid pgid child _; do
	group_gone "$pgid" || left+=" $reason:$pgid"
	pid_gone "$child" || left+=" $reason:child:$child"
done <"$HOOK_LOG"
check_eq "no process of any run is left after the client stopped" "" "$left"
e2e_finish
