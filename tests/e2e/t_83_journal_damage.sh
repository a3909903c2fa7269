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
# Then records no server would write are appended to the three, as a damaged
# journal could hold them (written by the journal-record helper):
#   (f) a later grant of client 1's IPv4 to client 3 (with client 3's own
#       IPv6): two live leases claim one address. The server restores newest
#       first: client 3 keeps the IPv4 and client 1 only its IPv6, with a
#       warning naming client 1; on the hub's device the IPv4 moves from
#       client 1's peer to client 3's;
#   (g) a grant of a free IPv4 to client 1 that had run out long before the
#       start, then a live grant of that address to client 2: the run-out
#       grant holds no address, so there is no warning, client 1 counts as
#       expired and client 2 holds the address, on the hub's device too,
#       while client 1's peer there loses its old addresses: those of the
#       lease the run-out grant replaced are gone as well as that grant's.
# Leases are read from `wg-dynamic-server show IFACE`.
#
# Log lines this test reads (server/restore.c):
#   "journal PATH: dropped N bytes of a torn or corrupt tail after N valid
#    records"
#   "journal PATH: restored N leases, dropped N expired, N addresses in
#    quarantine"
#   "PATH is not a lease journal this server can read (bad header); it is
#    left untouched: move it aside to start afresh"
#   "journal: peer KEY: an address was leased twice; kept the other family"
#    (or "dropped the lease")

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

JREC=$(dirname "$0")/journal-record

e2e_init t_83_journal_damage
[ -x "$JREC" ] || die "$JREC is missing: run make e2e"
topology_create 3
server_start "${SERVER_OPTS[@]}"
for n in 1 2 3; do
	client_start "$n"
done
# Each client's addresses, without their prefix lengths.
A4=() A6=()
for n in 1 2 3; do
	client_wait_lease "$n" || die "client $n got no IPv4 and IPv6 lease"
	A4[n]=$(client_addr4 "$n") A6[n]=$(client_addr6 "$n")
	A4[n]=${A4[n]%/*} A6[n]=${A6[n]%/*}
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
# The helper reads what the server wrote as the clients have it, so that
# what it writes for (f) and (g) is read as the server would read its own.
dump=$("$JREC" dump "$COPY" 2>/dev/null) || die "journal-record cannot read $COPY"
dump_has_grant() {
	awk -v k="${CLIENT_PUB[$1]}" -v a4="${A4[$1]}" -v a6="${A6[$1]}" '
		$1 == "grant" && $2 == k && $3 == a4 && $4 == a6 && $6 == 600 { found = 1 }
		END { exit !found }' <<<"$dump"
}
for n in 1 2 3; do
	check "the journal holds client $n's grant" dump_has_grant "$n"
done
# The latest start among them: the grant of (f) must come after it.
newest=$(awk '{ print $5 }' <<<"$dump" | sort -n | tail -n 1)

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

# shown_lease KEY: the lease `show` lists for KEY, "IPV4 IPV6" with - for an
# absent family; nothing when it lists none.
shown_lease() {
	ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF" | awk -v key="$1" '
		/^peer: / { if (found) exit; found = $2 == key; ip4 = ip6 = "-"; next }
		found && $1 == "ipv4:" { ip4 = $2 }
		found && $1 == "ipv6:" { ip6 = $2 }
		END { if (found) print ip4, ip6 }'
}

# append_record ARG...: one record of journal-record ARG... onto the journal.
append_record() {
	"$JREC" "$@" >>"$JOURNAL" || die "journal-record $* failed"
}

later_than() {
	[ "$(date +%s)" -gt "$1" ]
}

# (f) Client 1's IPv4 granted again, later, to client 3.
wait_for -t 3 later_than "$newest" || die "the clock does not move past $newest"
cp "$COPY" "$JOURNAL" || die "cannot copy $COPY"
append_record grant "${CLIENT_PUB[3]}" "${A4[1]}" "${A6[3]}" "$(date +%s)" 600
check_eq "(f) the journal holds four records" $((HEADER + 4 * RECORD)) "$(stat -c %s "$JOURNAL")"
mark=$(log_mark "$SERVER_LOG")
server_start "${SERVER_OPTS[@]}"
log=$(log_since "$SERVER_LOG" "$mark")
check "(f) server warns that client 1's address was leased twice" grep -qF \
	"journal: peer ${CLIENT_PUB[1]}: an address was leased twice; kept the other family" \
	<<<"$log"
check_eq "(f) and of no other peer" 1 "$(grep -c "leased twice" <<<"$log")"
check "(f) server restored the three leases" \
	grep -qF "journal $JOURNAL: restored 3 leases, dropped 0 expired" <<<"$log"
check "(f) server dropped nothing of the file" not grep -qF "bytes of a torn" <<<"$log"
check_eq "(f) client 3 holds client 1's IPv4 and its own IPv6" "${A4[1]} ${A6[3]}" \
	"$(shown_lease "${CLIENT_PUB[3]}")"
check_eq "(f) client 1 holds its IPv6 alone" "- ${A6[1]}" "$(shown_lease "${CLIENT_PUB[1]}")"
check_eq "(f) client 2 keeps its lease" "${A4[2]} ${A6[2]}" "$(shown_lease "${CLIENT_PUB[2]}")"
check "(f) the hub routes ${A4[1]} to client 3" hub_peer_has 3 "${A4[1]}/32"
check "(f) and no longer to client 1" not hub_peer_has 1 "${A4[1]}/32"
check "(f) server serves" server_listening
server_stop 5
check_eq "(f) server exits 0 on SIGTERM" 0 "$?"

# (g) An address granted to client 1 in a lease long run out, then to
# client 2 for now.
free4=
for host in $(seq 200 250); do
	case " ${A4[*]} " in
	*" 10.83.0.$host "*) ;;
	*) free4=10.83.0.$host && break ;;
	esac
done
now=$(date +%s)
cp "$COPY" "$JOURNAL" || die "cannot copy $COPY"
append_record grant "${CLIENT_PUB[1]}" "$free4" - $((now - 100000)) 600
append_record grant "${CLIENT_PUB[2]}" "$free4" "${A6[2]}" "$now" 600
check_eq "(g) the journal holds five records" $((HEADER + 5 * RECORD)) "$(stat -c %s "$JOURNAL")"
mark=$(log_mark "$SERVER_LOG")
server_start "${SERVER_OPTS[@]}"
log=$(log_since "$SERVER_LOG" "$mark")
check "(g) server warns of no address leased twice" not grep -qF "leased twice" <<<"$log"
check "(g) server restored two leases and counted client 1's as expired" grep -qF \
	"journal $JOURNAL: restored 2 leases, dropped 1 expired, 0 addresses in quarantine" \
	<<<"$log"
check_eq "(g) client 2 holds $free4 and its IPv6" "$free4 ${A6[2]}" \
	"$(shown_lease "${CLIENT_PUB[2]}")"
check_eq "(g) client 1 holds no lease" "" "$(shown_lease "${CLIENT_PUB[1]}")"
check_eq "(g) client 3 keeps its lease" "${A4[3]} ${A6[3]}" "$(shown_lease "${CLIENT_PUB[3]}")"
check "(g) the hub routes $free4 to client 2" hub_peer_has 2 "$free4/32"
check "(g) and not to client 1" not hub_peer_has 1 "$free4/32"
check "(g) the hub no longer routes ${A6[1]} to client 1" not hub_peer_has 1 "${A6[1]}/128"
check "(g) nor ${A4[1]}" not hub_peer_has 1 "${A4[1]}/32"
check "(g) server serves" server_listening
server_stop 5
check_eq "(g) server exits 0 on SIGTERM" 0 "$?"
e2e_finish
