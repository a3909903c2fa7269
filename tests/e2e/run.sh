#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Runs the end-to-end tests, tests/e2e/t_*.sh, in order (or those named on
# the command line), each under a time limit. A failed test's output is
# shown in full. The last line reads "N passed, N failed"; the exit status
# is 1 when any test failed.
#
#   tests/e2e/run.sh [t_NN_name ...]
#
# E2E_TEST_TIMEOUT sets the limit per test in seconds (default 120);
# E2E_KEEP=1 keeps each test's logs (see lib.sh).
set -u

dir=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$dir/../.." && pwd)
limit=${E2E_TEST_TIMEOUT:-120}

if [ "$(id -u)" -ne 0 ]; then
	echo "e2e: the end-to-end tests create network namespaces: run them as root" >&2
	exit 1
fi
if ! command -v wireguard-go >/dev/null 2>&1; then
	echo "e2e: wireguard-go is not installed; the tests run WireGuard in userspace" \
		"(apt-get install wireguard-go, or: make deps)" >&2
	exit 1
fi
for tool in wg ip ping ss b2sum timeout; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "e2e: '$tool' is missing (make deps installs what the tests need)" >&2
		exit 1
	fi
done
for bin in server/wg-dynamic-server client/wg-dynamic-client tests/e2e/connect; do
	if [ ! -x "$top/$bin" ]; then
		echo "e2e: $bin is not built: run make e2e" >&2
		exit 1
	fi
done

if [ "$#" -gt 0 ]; then
	tests=()
	for name in "$@"; do
		name=${name##*/}
		tests+=("$dir/${name%.sh}.sh")
	done
else
	tests=("$dir"/t_*.sh)
fi

# What a test with run id $1 left behind: every name it creates has the id.
leftovers() {
	local sock
	ip netns list 2>/dev/null | awk -v p="wgd-$1-" 'index($1, p) == 1 { print "netns " $1 }'
	pgrep -a -f "wgd$1" 2>/dev/null | sed 's/^/process /'
	for sock in /var/run/wireguard/wgd"$1"*.sock; do
		[ -e "$sock" ] && echo "socket $sock"
	done
}

out=$(mktemp "${TMPDIR:-/tmp}/wgd-e2e-run.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT

passed=0
failed=0
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	if [ ! -f "$t" ]; then
		printf 'e2e: %-22s FAILED (no such test)\n' "$name"
		failed=$((failed + 1))
		continue
	fi
	id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	start=$SECONDS
	WGD_E2E_ID=$id timeout -k 10 "$limit" bash "$t" >"$out" 2>&1
	rc=$?
	took=$((SECONDS - start))
	leaked=$(leftovers "$id")
	if [ "$rc" -eq 0 ] && [ -z "$leaked" ]; then
		printf 'e2e: %-22s ok (%ds)\n' "$name" "$took"
		passed=$((passed + 1))
		continue
	fi
	failed=$((failed + 1))
	if [ "$rc" -eq 124 ]; then
		printf 'e2e: %-22s FAILED: timed out after %ds\n' "$name" "$limit"
	elif [ "$rc" -ne 0 ]; then
		printf 'e2e: %-22s FAILED (%ds)\n' "$name" "$took"
	else
		printf 'e2e: %-22s FAILED: left behind: %s\n' "$name" "$(tr '\n' ' ' <<<"$leaked")"
	fi
	sed 's/^/    /' "$out"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
