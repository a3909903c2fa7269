#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Runs each unit test binary; Check prints its own summary per suite.
#
# A test that needs what the machine may lack (root, a network namespace,
# wireguard-go) runs without it all the same, and says in one line of its
# output, with the word "skip" in it, what it left out and why. Those lines
# are repeated at the end, so that a run that tested less says so.
set -u
out=$(mktemp "${TMPDIR:-/tmp}/wgd-unit.XXXXXX") || exit 1
trap 'rm -f "$out" "$out.rc"' EXIT
trap 'exit 130' HUP INT TERM

failed=0
skips=
for t in "$@"; do
	{ "$t" 2>&1; echo "$?" >"$out.rc"; } | tee "$out"
	if [ "$(cat "$out.rc")" != 0 ]; then
		echo "unit: $t FAILED" >&2
		failed=$((failed + 1))
	fi
	# Whole words only: test names such as parse_unknown_attrs_skipped are
	# not skips.
	s=$(grep -E '(^|[^A-Za-z_])([Ss]kip|SKIP)(ped|PED|ping)?([^A-Za-z_]|$)' "$out")
	[ -z "$s" ] || skips="$skips$s
"
done
if [ -n "$skips" ]; then
	echo "unit: some tests did not run all their cases:"
	printf '%s' "$skips" | sed 's/^/  /'
fi
[ "$failed" -eq 0 ] || { echo "unit: $failed test program(s) failed" >&2; exit 1; }
