#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
#
# Start-up time: how long wg-dynamic-server takes from exec to READY=1 with
# a journal of N live leases whose N peers the device already carries, as
# after a restart on a busy hub.
#
#   tests/bench/startup.sh [DIR]
#
# The journal is written under DIR (default: a temporary directory beside
# the repository, else in /var/tmp, so that it is read from a disk) by
# startup-rig, which also answers the UAPI socket for a device of the same N
# peers (wireguard-go would need tens of kilobytes per peer). The server
# runs on a veth interface in a namespace of its own, with that socket; its
# -v log gives the time of each start-up phase. Each N runs RUNS times (the
# page cache warm after the first); the table shows each run. Knobs:
# STARTUP_SIZES (default "100000 1000000"), STARTUP_RUNS (default 3).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
SIZES=${STARTUP_SIZES:-100000 1000000}
RUNS=${STARTUP_RUNS:-3}
RIG=$top/tests/bench/startup-rig
SERVER=$top/server/wg-dynamic-server
NOTIFY=$top/tests/e2e/notify-recv

for bin in "$RIG" "$SERVER" "$NOTIFY"; do
	[ -x "$bin" ] || { echo "startup: ${bin#"$top"/} is not built: run make bench" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "startup: needs root, for a network namespace" >&2; exit 1; }

ns=wgdsu$$
ifc=wgsu$$
sock=/var/run/wireguard/$ifc.sock
rig_pid=
srv_pid=
scratch=
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
	[ -n "$rig_pid" ] && kill "$rig_pid" 2>/dev/null
	wait 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -f "$sock"
	[ -n "$scratch" ] && rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' HUP INT PIPE TERM

base=${1:-}
if [ -z "$base" ]; then
	base=$(cd "$top/.." && pwd)
	[ -w "$base" ] || base=/var/tmp
fi
scratch=$(mktemp -d "$base/wgd-startup.XXXXXX") || exit 1

ip netns add "$ns" || exit 1
ip -n "$ns" link set lo up
ip -n "$ns" link add "$ifc" type veth peer name "${ifc}p" || exit 1
ip -n "$ns" link set "${ifc}p" up
ip -n "$ns" link set "$ifc" up
mkdir -p /var/run/wireguard

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs; Linux $(uname -r)"
echo "journal on $(findmnt -n -o FSTYPE -T "$scratch" 2>/dev/null || stat -f -c %T "$scratch"); each lease: one IPv4 and one IPv6 address; target: ready under 2 s at 1,000,000"
echo
printf '%9s %4s %9s %8s %8s %8s %10s %10s\n' leases run "ready ms" journal settle device "index and" "engine RSS"
printf '%9s %4s %9s %8s %8s %8s %10s %10s\n' "" "" "" ms ms ms "reconcile" MiB
printf '%9s %4s %9s %8s %8s %8s %10s %10s\n' "" "" "" "" "" "" ms ""
failed=0
for n in $SIZES; do
	rm -f "$sock"
	ip netns exec "$ns" "$RIG" serve "$sock" "$n" >"$scratch/rig.out" &
	rig_pid=$!
	for _ in $(seq 600); do
		grep -q ready "$scratch/rig.out" 2>/dev/null && break
		sleep 0.1
	done
	for run in $(seq "$RUNS"); do
		state=$scratch/state
		rm -rf "$state"
		# The engine's directory: made by root, it is handed to the
		# engine's user with the journal in it at the server's start.
		mkdir -p "$state/server"
		"$RIG" journal "$state/server" "$ifc" "$n" || { failed=1; break; }
		ip -n "$ns" addr flush dev "$ifc" 2>/dev/null
		sync
		t0=$(date +%s%N)
		NOTIFY_SOCKET=$scratch/notify ip netns exec "$ns" "$SERVER" -v \
			--pool 10.0.0.0/8 --pool fd00::/64 --state-dir "$state" "$ifc" \
			>"$scratch/server.log" 2>&1 &
		srv_pid=$!
		if ! "$NOTIFY" "$scratch/notify" 120 >/dev/null; then
			echo "startup: the server did not become ready with $n leases:" >&2
			tail -n 5 "$scratch/server.log" >&2
			failed=1
			break
		fi
		ready=$(ms_since "$t0")
		engine=$(pgrep -P "$srv_pid" -f wg-dynamic-server | head -n 1)
		rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$engine/status" 2>/dev/null)
		phases=$(sed -n 's/.*start-up: journal replay \([0-9]*\) ms, settle \([0-9]*\) ms, device read \([0-9]*\) ms, index and reconcile \([0-9]*\) ms.*/\1 \2 \3 \4/p' "$scratch/server.log")
		grep -q "restored $n leases" "$scratch/server.log" || { echo "startup: not every lease was restored" >&2; failed=1; }
		# shellcheck disable=SC2086
		printf '%9s %4s %9s %8s %8s %8s %10s %10s\n' "$n" "$run" "$ready" $phases "${rss:-?}"
		kill "$srv_pid"
		wait "$srv_pid" 2>/dev/null
		srv_pid=
	done
	kill "$rig_pid"
	wait "$rig_pid" 2>/dev/null
	rig_pid=
done
echo
echo "ready ms runs from exec to READY=1; the parent reads the device while the engine reads the journal"
exit "$failed"
