#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Runs each benchmark under a heading; docs/performance.md shows what they
# print. Benchmarks print figures; they pass or fail only on errors.
#
#   tests/bench/run.sh [tests/bench/bench_NAME ...]
#
# In process: every tests/bench/bench_* given (all by default).
# bench_journal runs on tmpfs and on the disk that holds the repository, in
# a temporary directory removed afterwards. Then, as root with wireguard-go
# and wg installed, the end-to-end ones: server throughput against a bare
# floor (throughput.sh), start-up with a large journal (startup.sh), a
# client's time to its addresses (time-to-address.sh) and a mesh join's
# fan-out to a thousand long polls (mesh-fanout.sh), their files on that
# disk too, and the mesh's paths through NATs (mesh-paths.sh).
#
# BENCH_SMOKE=1 runs everything at small sizes, once: a check that the
# benchmarks still work, in seconds, not figures to quote.
set -u
cd "$(dirname "$0")/../.." || exit 1

if [ $# -eq 0 ]; then
	for c in tests/bench/bench_*.c; do
		set -- "$@" "${c%.c}"
	done
fi
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
	pool_rounds=1
	hashtab_max=10000
	export THROUGHPUT_SIZES=200 THROUGHPUT_CONC=16 THROUGHPUT_REPEAT=1
	export STARTUP_SIZES=20000 STARTUP_RUNS=1
	export TTA_RUNS=2 TTA_LATE_RUNS=1
	export MESH_PEERS=100 MESH_JOINS=3
	export MESH_PATHS_RUNS=1
else
	pool_rounds=20
	hashtab_max=1000000
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
	bench_pool)
		"$b" "$pool_rounds" || failed=$((failed + 1))
		;;
	bench_hashtab)
		"$b" "$hashtab_max" || failed=$((failed + 1))
		;;
	*)
		"$b" || failed=$((failed + 1))
		;;
	esac
	echo
done

# end_to_end NAME SCRIPT: an end-to-end benchmark, when this machine can.
end_to_end() {
	echo "== $1 =="
	if [ "$(id -u)" -ne 0 ]; then
		echo "skipped: it needs root, for network namespaces"
	elif ! command -v wireguard-go >/dev/null 2>&1 || ! command -v wg >/dev/null 2>&1; then
		echo "skipped: it needs wireguard-go and wg (make deps installs them)"
	else
		"$2" "$scratch" || failed=$((failed + 1))
	fi
	echo
}

end_to_end throughput tests/bench/throughput.sh
end_to_end startup tests/bench/startup.sh
end_to_end time-to-address tests/bench/time-to-address.sh
end_to_end mesh-fanout tests/bench/mesh-fanout.sh
end_to_end mesh-paths tests/bench/mesh-paths.sh

[ "$failed" -eq 0 ] || { echo "bench: $failed benchmark(s) failed" >&2; exit 1; }
