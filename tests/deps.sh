#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Installs the Debian packages that building and testing need, when missing.
# With arguments, checks those packages instead (make fuzz and make analyze
# ask for their tools this way, so that make check does not need them).
set -eu

if [ "$#" -gt 0 ]; then
	pkgs="$*"
else
	pkgs="build-essential pkg-config libmnl-dev libsodium-dev check wireguard-go
wireguard-tools iproute2 iputils-ping procps psmisc nftables conntrack"
fi

missing=
for p in $pkgs; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done

# The server's engine runs as this system user by default, and the tests
# run the server with the defaults; make install creates it the same way.
user=
if [ "$#" -eq 0 ] && ! getent passwd wg-dynamic >/dev/null; then
	user=wg-dynamic
fi

[ -z "$missing" ] && [ -z "$user" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	[ -z "$missing" ] ||
		echo "deps: missing packages:$missing; install them as root: apt-get install$missing" >&2
	[ -z "$user" ] ||
		echo "deps: missing user $user; create it as root: useradd --system --no-create-home" \
			"--home-dir /nonexistent --shell /usr/sbin/nologin --user-group $user" >&2
	exit 1
fi
if [ -n "$missing" ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ -n "$user" ]; then
	echo "deps: creating the system user $user"
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
		--user-group "$user"
fi
echo "deps: done"
