#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
#
# Runs each libFuzzer harness for a bounded time, on a copy of its seed
# corpus in a temporary directory (nothing new is written to the
# repository), and fails if any of them finds a crash, a leak, undefined
# behaviour or a timeout.
#
# Usage: tests/fuzz/run.sh SECONDS FUZZER...
# FUZZ_MAX_LEN overrides the longest input tried (default 16384 bytes).
set -u

if [ "$#" -lt 2 ]; then
	echo "usage: $0 SECONDS FUZZER..." >&2
	exit 2
fi
secs=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
max_len=${FUZZ_MAX_LEN:-16384}

work=$(mktemp -d "${TMPDIR:-/tmp}/wgd-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

summary="$work/summary"
failed=0

for bin in "$@"; do
	name=$(basename "$bin")
	short=${name#fuzz_}
	dir="$work/$name"
	mkdir -p "$dir/corpus"
	if [ -d "$here/corpus/$short" ]; then
		cp "$here/corpus/$short"/* "$dir/corpus/" 2>/dev/null
	fi
	# The fuzzer list was expanded when the loop began; "$@" is free now.
	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len="$max_len" -print_final_stats=1 \
		-artifact_prefix="$dir/"
	if [ -f "$here/$name.dict" ]; then
		set -- "$@" -dict="$here/$name.dict"
	fi

	echo "fuzz: $name for ${secs}s"
	"$bin" "$@" "$dir/corpus" >"$dir/log" 2>&1
	rc=$?

	# libFuzzer ends a clean run with "Done N runs in S second(s)".
	runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$dir/log" | tail -n 1)
	took=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$dir/log" | tail -n 1)
	if [ -z "$runs" ]; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$dir/log" | tail -n 1)
		took=$(sed -n 's/^stat::total_time: *\([0-9]*\)/\1/p' "$dir/log" | tail -n 1)
	fi
	runs=${runs:-0}
	took=${took:-0}
	rate=0
	[ "$took" -gt 0 ] && rate=$((runs / took))
	units=$(find "$dir/corpus" -type f | wc -l)

	result=ok
	if [ "$rc" -ne 0 ] || ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* >/dev/null 2>&1; then
		result=FAILED
		failed=$((failed + 1))
		keep=$(mktemp -d "${TMPDIR:-/tmp}/wgd-fuzz-$short.XXXXXX")
		cp "$dir/log" "$keep/"
		for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
			[ -f "$a" ] || continue
			cp "$a" "$keep/"
			# Small enough to paste into a unit test from a CI log.
			if [ "$(wc -c <"$a")" -le 4096 ]; then
				echo "fuzz: $(basename "$a"), base64:"
				base64 "$a"
			fi
		done
		echo "fuzz: $name FAILED (exit $rc); log and inputs kept in $keep" >&2
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*check failed|.*runtime error)' "$dir/log" | head -n 10 >&2
	fi
	echo "fuzz: $name: $runs runs in ${took}s"
	printf '%-16s %-7s %12s %8s %10s %8s\n' "$name" "$result" "$runs" "$took" "$rate" "$units" >>"$summary"
done

echo
printf '%-16s %-7s %12s %8s %10s %8s\n' fuzzer result runs seconds execs/s corpus
cat "$summary"

if [ "$failed" -ne 0 ]; then
	echo "fuzz: $failed fuzzer(s) failed" >&2
	exit 1
fi
