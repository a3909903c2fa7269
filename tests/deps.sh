#!/bin/sh
# Installs the Debian packages that building and testing need, when missing.
# With arguments, checks those packages instead (make fuzz and make analyze
# ask for their tools this way, so that make check does not need them).
set -eu

if [ "$#" -gt 0 ]; then
	pkgs="$*"
else
	pkgs="build-essential pkg-config libmnl-dev libsodium-dev check wireguard-go
wireguard-tools iproute2 iputils-ping procps psmisc"
fi

missing=
for p in $pkgs; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing; install them as root: apt-get install$missing" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
