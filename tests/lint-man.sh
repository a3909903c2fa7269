#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Lints the manual pages, docs/*.8, with mandoc -T lint -W warning; any
# message fails. mandoc is installed first when missing (tests/deps.sh).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tests/deps.sh" mandoc

status=0
pages=0
for page in "$top"/docs/*.8; do
	pages=$((pages + 1))
	out=$(mandoc -T lint -W warning "$page" 2>&1) || status=1
	if [ -n "$out" ]; then
		printf '%s\n' "$out"
		status=1
	fi
done
[ "$status" -ne 0 ] || echo "lint-man: $pages pages clean"
exit "$status"
