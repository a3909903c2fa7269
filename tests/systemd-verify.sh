#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# systemd-analyze verify on the units, pointed at the freshly built daemons
# (verify insists that ExecStart exists). Skipped, loudly, without systemd.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-verify: SKIPPED: systemd-analyze is not installed"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in wg-dynamic-server wg-dynamic-client; do
	sed -e "s|/usr/sbin/wg-dynamic-server|$top/server/wg-dynamic-server|" \
	    -e "s|/usr/sbin/wg-dynamic-client|$top/client/wg-dynamic-client|" \
	    "$top/systemd/$unit@.service" >"$tmp/$unit@wg0.service"
done
# verify exits 0 on unknown keys and bad values, saying so: any word from
# it is a failure.
out=$(cd "$tmp" && systemd-analyze verify --man=no ./wg-dynamic-server@wg0.service \
	./wg-dynamic-client@wg0.service 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
	echo "$out"
	echo "systemd-verify: FAILED"
	exit 1
fi
echo "systemd-verify: both units verified"
