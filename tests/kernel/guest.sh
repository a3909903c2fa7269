#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Runs inside the test VM (see tests/kernel/init): the kernel scenarios,
# each under a time limit, with KERNEL_WG=1 so that every WireGuard
# interface the end-to-end library creates is a kernel one. A failed
# scenario's output is shown, less its middle when it is long. The last
# line reads "N passed, N failed"; the exit status is 1 when any failed.
#
#   guest.sh [NAME,NAME...]
#
# NAME is a scenario's file name without .sh: one in tests/kernel/ or, any
# end-to-end test, in tests/e2e/. Without names, SCENARIOS below run.
set -u

dir=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$dir/../.." && pwd)
# Seconds each scenario may take.
limit=180

# The core scenario is the end-to-end suite's own: leases for two clients,
# the hub's allowed-IPs and client-to-client pings, renewal, release on
# SIGTERM, and a client's exit when its interface is deleted. Then the
# client's routes beside an administrator's and beside other peers, and a
# hostile hub's routes, addresses, lease times and MTUs: the client checks
# them against the device it reads over generic netlink, and kernel
# WireGuard allows MTUs far above wireguard-go's 65535. (The hostile hub's
# strings and bad messages, and the request rates, do not depend on the
# device: t_94c and t_94d run in the end-to-end suite only.) Then the
# server's side of the hardening: an early repeat that changes nothing on
# the device, a release and a grant of one address in one round, and the
# privileged parent's rules against a rogue engine, each checked against
# what kernel WireGuard holds. Then a hub with clients of both kinds, and a
# hub with a thousand more peers.
SCENARIOS=(
	"$top/tests/e2e/t_10_lease.sh"
	"$top/tests/e2e/t_20_renew.sh"
	"$top/tests/e2e/t_30_release.sh"
	"$top/tests/e2e/t_60_iface_delete.sh"
	"$top/tests/e2e/t_89_client_routes.sh"
	"$top/tests/e2e/t_94a_hostile_hub_routes.sh"
	"$top/tests/e2e/t_94b_hostile_hub_leases.sh"
	"$top/tests/e2e/t_21_repeat.sh"
	"$top/tests/e2e/t_41_handover.sh"
	"$top/tests/e2e/t_92_privsep.sh"
	"$dir/t_mixed.sh"
	"$dir/t_many_peers.sh"
	"$dir/t_mesh.sh"
)

tests=()
if [ -n "${1:-}" ]; then
	IFS=, read -ra names <<<"$1"
	for name in "${names[@]}"; do
		name=${name%.sh}
		if [ -f "$dir/$name.sh" ]; then
			tests+=("$dir/$name.sh")
		elif [ -f "$top/tests/e2e/$name.sh" ]; then
			tests+=("$top/tests/e2e/$name.sh")
		else
			echo "kernel: no scenario $name"
			exit 1
		fi
	done
else
	tests=("${SCENARIOS[@]}")
fi

export KERNEL_WG=1
# The daemons and the stand-in hub come in the initramfs, built on the host.
export SERVER_BIN=/opt/wgd/wg-dynamic-server CLIENT_BIN=/opt/wgd/wg-dynamic-client
export FAKEHUB_BIN=/opt/wgd/fakehub
# Everything runs slower under emulation.
export WAIT_TIMEOUT=20

out=$(mktemp) || exit 1
passed=0
failed=0
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	start=$SECONDS
	timeout -k 10 "$limit" bash "$t" >"$out" 2>&1
	rc=$?
	took=$((SECONDS - start))
	if [ "$rc" -eq 0 ]; then
		printf 'kernel: %-22s ok (%ds)\n' "$name" "$took"
		passed=$((passed + 1))
		continue
	fi
	failed=$((failed + 1))
	if [ "$rc" -eq 124 ]; then
		printf 'kernel: %-22s FAILED: timed out after %ds\n' "$name" "$limit"
	else
		printf 'kernel: %-22s FAILED (%ds)\n' "$name" "$took"
	fi
	# A hub with a thousand peers makes for long state dumps: keep the
	# head and the tail, where the daemons' logs are.
	lines=$(wc -l <"$out")
	if [ "$lines" -gt 400 ]; then
		head -n 150 "$out" | sed 's/^/    /'
		echo "    ... $((lines - 350)) lines left out ..."
		tail -n 200 "$out" | sed 's/^/    /'
	else
		sed 's/^/    /' "$out"
	fi
done
rm -f "$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
