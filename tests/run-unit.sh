#!/bin/sh
# Runs each unit test binary; Check prints its own summary per suite.
set -u
failed=0
for t in "$@"; do
	if ! "$t"; then
		echo "unit: $t FAILED" >&2
		failed=$((failed + 1))
	fi
done
[ "$failed" -eq 0 ] || { echo "unit: $failed test program(s) failed" >&2; exit 1; }
