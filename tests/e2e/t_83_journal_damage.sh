#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A damaged lease journal. Three clients get leases, so the journal holds a
# 32-byte header and three 80-byte records, then zeros written ahead for
# commits to come; the server is stopped and the journal copied. Then, each
# time from that copy (the records alone for a to c):
#   (a) cut in the middle of its last record (a torn write): the server
#       drops those 40 bytes, cuts the file back to its two whole records,
#       restores two leases and serves;
#   (b) one byte flipped inside the last record: the checksum fails, the
#       server drops that record (80 bytes) and carries on;
#   (d) as it was, zeros and all: nothing is dropped, three leases restored;
#   (e) the last record half zeros (torn on its way into the zeros): that
#       record and the zeros are dropped, the file cut to two records;
#   (c) the header overwritten with random bytes: the server refuses the
#       file, exits with status 72 and leaves it byte for byte as it was.
#
# Log lines this test reads (server/restore.c):
#   "journal PATH: dropped N bytes of a torn or corrupt tail after N valid
#    records"
#   "journal PATH: restored N leases, dropped N expired, N addresses in
#    quarantine"
#   "PATH is not a lease journal this server can read (bad header); it is
#    left untouched: move it aside to start afresh"

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.83.0.0/24
POOL6=fd83::/64
HEADER=32
RECORD=80
SERVER_OPTS=(--pool "$POOL4" --pool "$POOL6" --lease-time 600)

e2e_init t_83_journal_damage
topology_create 3
server_start "${SERVER_OPTS[@]}"
for n in 1 2 3; do
	client_start "$n"
done
for n in 1 2 3; do
	client_wait_lease "$n" || die "client $n got no IPv4 and IPv6 lease"
done
server_stop 5 || die "the server did not stop cleanly on SIGTERM"

JOURNAL=$(hub_journal)
ORIG=$E2E_TMP/journal.orig
COPY=$E2E_TMP/journal.copy
cp "$JOURNAL" "$ORIG" || die "cannot copy $JOURNAL"
full=$(stat -c %s "$ORIG")
size=$((HEADER + 3 * RECORD))
say "journal: $full bytes, of which $size are records"
# Commits overwrite zeros written ahead of them (docs/journal.md).
check "the journal is a header and three grant records, then zeros" \
	cmp -s <(tail -c +$((size + 1)) "$ORIG") <(head -c $((full - size)) /dev/zero)
check "zeros were written ahead" test "$full" -gt "$size"
check "the records are not zeros" not cmp -s <(head -c "$size" "$ORIG") \
	<(head -c "$size" /dev/zero)
# The damage cases below start from the records alone.
head -c "$size" "$ORIG" >"$COPY"

# restart_checks CASE DROPPED: starts the server on the damaged journal and
# checks that it dropped DROPPED bytes, kept two records and serves.
restart_checks() {
	local mark log
	mark=$(log_mark "$SERVER_LOG")
	server_start "${SERVER_OPTS[@]}"
	log=$(log_since "$SERVER_LOG" "$mark")
	check "($1) server logged the $2 dropped bytes" grep -qF \
		"journal $JOURNAL: dropped $2 bytes of a torn or corrupt tail after 2 valid records" \
		<<<"$log"
	check "($1) server restored the other two leases" \
		grep -qF "journal $JOURNAL: restored 2 leases, dropped 0 expired" <<<"$log"
	check_eq "($1) the journal was cut back to its two whole records" \
		$((HEADER + 2 * RECORD)) "$(stat -c %s "$JOURNAL")"
	check "($1) server serves" server_listening
	server_stop 5
	check_eq "($1) server exits 0 on SIGTERM" 0 "$?"
}

# (a) A torn last record.
cp "$COPY" "$JOURNAL"
truncate -s $((size - RECORD / 2)) "$JOURNAL" || die "cannot truncate $JOURNAL"
restart_checks a $((RECORD / 2))

# (b) One byte flipped in the body of the last record.
cp "$COPY" "$JOURNAL"
off=$((size - 60))
byte=$(od -An -tu1 -j "$off" -N1 "$JOURNAL" | tr -d ' ')
printf '%b' "\\0$(printf '%03o' $((byte ^ 0xff)))" |
	dd of="$JOURNAL" bs=1 seek="$off" conv=notrunc status=none || die "cannot change $JOURNAL"
check "(b) the byte at $off changed" not cmp -s "$COPY" "$JOURNAL"
restart_checks b "$RECORD"

# (d) Zeros written ahead are free space, not damage.
cp "$ORIG" "$JOURNAL"
mark=$(log_mark "$SERVER_LOG")
server_start "${SERVER_OPTS[@]}"
log=$(log_since "$SERVER_LOG" "$mark")
check "(d) server restored the three leases" \
	grep -qF "journal $JOURNAL: restored 3 leases, dropped 0 expired" <<<"$log"
check "(d) server dropped nothing" not grep -qF "dropped" <(grep -v "dropped 0 expired" <<<"$log")
check_eq "(d) the journal keeps its zeros" "$full" "$(stat -c %s "$JOURNAL")"
server_stop 5

# (e) The last record torn on its way into the zeros: cut, zeros and all.
cp "$ORIG" "$JOURNAL"
dd if=/dev/zero of="$JOURNAL" bs=1 seek=$((size - RECORD / 2)) count=$((RECORD / 2)) \
	conv=notrunc status=none || die "cannot change $JOURNAL"
restart_checks e $((full - HEADER - 2 * RECORD))

# (c) A garbage header.
cp "$COPY" "$JOURNAL"
dd if=/dev/urandom of="$JOURNAL" bs="$HEADER" count=1 conv=notrunc status=none ||
	die "cannot overwrite the header of $JOURNAL"
cp "$JOURNAL" "$E2E_TMP/journal.garbage"
mark=$(log_mark "$SERVER_LOG")
server_run "${SERVER_OPTS[@]}"
rc=$?
check_eq "(c) server exits with status 72" 72 "$rc"
check "(c) server says the file is not a journal and is left untouched" grep -qF \
	"$JOURNAL is not a lease journal this server can read (bad header); it is left untouched" \
	<(log_since "$SERVER_LOG" "$mark")
check "(c) the file is unchanged" cmp "$E2E_TMP/journal.garbage" "$JOURNAL"
check "(c) server did not listen" not grep -q '^serving ' <(log_since "$SERVER_LOG" "$mark")
e2e_finish
