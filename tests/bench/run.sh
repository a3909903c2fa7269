#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs each benchmark under a heading. bench_journal runs on tmpfs and on
# the disk that holds the repository, in a temporary directory removed
# afterwards. Then, as root with wireguard-go and wg installed, the
# end-to-end throughput benchmark (throughput.sh), with its journal on that
# disk too. Benchmarks print figures; they pass or fail only on errors.
# As root with wireguard-go and wg, also the time from a client's start to
# its addresses (time-to-address.sh).
set -u
cd "$(dirname "$0")/../.." || exit 1

if [ $# -eq 0 ]; then
	for c in tests/bench/bench_*.c; do
		set -- "$@" "${c%.c}"
	done
fi
scratch=
cleanup() { [ -z "$scratch" ] || rm -rf "$scratch"; }
trap cleanup EXIT
trap 'exit 130' HUP INT PIPE TERM

# A directory on the repository's disk: beside the repository when that is
# writable, else /var/tmp.
scratch=$(mktemp -d "$(cd .. && pwd)/wgd-bench.XXXXXX" 2>/dev/null ||
	mktemp -d /var/tmp/wgd-bench.XXXXXX) || { echo "bench: no scratch directory" >&2; exit 1; }

failed=0
for b in "$@"; do
	[ -x "$b" ] || continue
	name=$(basename "$b")
	echo "== $name =="
	case "$name" in
	bench_journal)
		if [ -d /dev/shm ]; then
			"$b" /dev/shm "$scratch" || failed=$((failed + 1))
		else
			"$b" /tmp "$scratch" || failed=$((failed + 1))
		fi
		;;
	*)
		"$b" || failed=$((failed + 1))
		;;
	esac
	echo
done
echo "== throughput =="
if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: it needs root, for network namespaces"
elif ! command -v wireguard-go >/dev/null 2>&1 || ! command -v wg >/dev/null 2>&1; then
	echo "skipped: it needs wireguard-go and wg (make deps installs them)"
else
	tests/bench/throughput.sh "$scratch" || failed=$((failed + 1))
fi
echo
echo "== startup =="
if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: it needs root, for a network namespace"
else
	tests/bench/startup.sh "$scratch" || failed=$((failed + 1))
fi
echo

echo "== time-to-address =="
if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: it needs root, for network namespaces"
elif ! command -v wireguard-go >/dev/null 2>&1 || ! command -v wg >/dev/null 2>&1; then
	echo "skipped: it needs wireguard-go and wg (make deps installs them)"
else
	tests/bench/time-to-address.sh "$scratch" || failed=$((failed + 1))
fi
echo

[ "$failed" -eq 0 ] || { echo "bench: $failed benchmark(s) failed" >&2; exit 1; }
