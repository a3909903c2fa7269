#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A hostile hub sends bad strings and bad messages (see hostile-hub.sh for
# how each case is checked). Search domains that a shell would run ($(...),
# backticks, ;, |, >, quotes) are dropped with one log line while the lease
# is taken, and reach neither resolvconf nor the hook; with a blank or a
# carriage return the parser refuses the response whole, which reaches
# nothing either; a good pair of domains is handed on. An errmsg of terminal
# escapes and other control bytes is logged escaped. Unknown keys are
# ignored. Oversized responses and lines, a NUL byte, CR LF, no errno, an
# empty message and binary garbage are refused whole. The hub closes without
# answering, resets, cuts its answer short, answers one byte every 20 ms
# (taken), or stops halfway and says nothing more (the client gives up).

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=hostile-hub.sh
. "$(dirname "$0")/hostile-hub.sh"

e2e_init t_94c_hostile_hub_input
hh_setup

# ---- DNS ----

# dns_case TAG OUTCOME VALUE DESCRIPTION: VALUE (printf %b escapes) as the
# search domain; it must reach neither resolvconf nor the hook.
dns_case() {
	local plain
	plain=$(printf '%b' "$3")
	hh_new "$1" "$2" "$4"
	C_RESP=$(good_lines dns_search; lines "dns_search=$3")
	C_FORBID=("$plain" "touch" "pwned")
	if [ "$2" = taken ]; then
		refused dns_search "$plain"
	else
		C_LOGANY=("dns_search")
	fi
	hh_run
}
dns_case dns-subst taken "\$(touch\${IFS}$PWNED)" "a search domain with \$(...) is dropped, the lease taken"
dns_case dns-backticks taken "\`touch\${IFS}$PWNED\`" "a search domain with backticks is dropped"
dns_case dns-semicolon taken "x.example;touch\${IFS}$PWNED;" "a search domain with ; is dropped"
dns_case dns-pipe taken "x.example|touch\${IFS}$PWNED" "a search domain with | is dropped"
dns_case dns-redirect taken "x.example>$PWNED" "a search domain with > is dropped"
dns_case dns-quotes taken "x'y\"z.example" "a search domain with quotes is dropped"
dns_case dns-blank either "x.example touch" "a search domain with a blank reaches nothing"
dns_case dns-cr either "x.example\rsearch.evil" "a search domain with a carriage return reaches nothing"

hh_new dns-good taken "dns_search=example.com,corp.example is handed on"
C_RESP=$(good_lines dns_search; lines dns_search=example.com,corp.example)
extra_dns_good() {
	tail -c +$((mr + 1)) "$RC_LOG" | grep -qx "search example.com corp.example" ||
		prob "resolvconf did not get 'search example.com corp.example'"
	tail -c +$((mh + 1)) "$HOOK_LOG" | grep -qx "dns_search=example.com,corp.example" ||
		prob "the hook did not get dns_search=example.com,corp.example"
}
C_EXTRA=extra_dns_good
hh_run

# ---- errors and odd responses ----

hh_new errmsg-escapes failed "an errmsg of terminal escapes is logged escaped"
C_RESP=$(lines 'errno=3' 'errmsg=\x1b[2J\x1b]0;owned\x07\x01\x7f\x9b2J\\back')
C_LOGANY=('\\x1[bB]\[2J')
hh_run

hh_new unknown-keys taken "unknown keys are ignored"
# shellcheck disable=SC2016 # a command in a key, for nothing to run
C_RESP=$(good_lines; lines 'colour=blue' 'route6=::/0' 'x-$(touch${IFS}'"$PWNED"')=1' 'ip6=::1/128')
C_FORBID=("touch" "colour")
hh_run

hh_new oversized failed "a response of 9 KiB: refused whole"
C_RESP=$(good_lines; for _ in $(seq 90); do printf 'x=%098d\n' 0; done)
C_LOGANY=("$LOG_BAD")
hh_run

hh_new long-line failed "a line of 2,000 bytes: refused whole"
C_RESP=$(good_lines; printf 'x=%01998d\n' 0)
C_LOGANY=("$LOG_BAD")
hh_run

hh_new nul-byte failed "a NUL byte: refused whole"
C_RESP=$(good_lines | sed 's/^errno=0$/errno=0\\00/')
C_LOGANY=("$LOG_BAD")
hh_run

hh_new crlf failed "CR LF line ends: refused whole"
C_RESP=$(good_lines | sed 's/$/\\r/')
C_LOGANY=("$LOG_BAD")
hh_run

hh_new no-errno failed "a response without errno: refused whole"
C_RESP=$(good_lines errno)
C_LOGANY=("$LOG_BAD")
hh_run

hh_new empty failed "an empty message: refused"
C_RAW=1
C_RESP='\n'
C_LOGANY=("$LOG_BAD")
hh_run

hh_new binary failed "binary garbage: refused"
C_RAW=1
C_RESP='\x80\x81\xfe\xff\x1b[31m\x07junk without an equals sign\n\n'
C_LOGANY=("$LOG_BAD")
hh_run

hh_new close failed "the hub closes without answering"
C_MODE=close
C_LOGANY=("$LOG_GONE")
hh_run

hh_new reset failed "the hub resets the connection"
C_MODE=reset
C_LOGANY=("$LOG_GONE")
hh_run

hh_new cut failed "the hub sends half a response and closes"
C_MODE="cut 40"
C_RESP=$(good_lines)
C_LOGANY=("$LOG_GONE|$LOG_BAD")
hh_run

hh_new slow taken "a response one byte every 20 ms (about 1 s) is taken"
C_MODE="slow 20"
C_RESP=$(lines "ip=$A4/32" "ip=$A6/128" "leasetime=$LEASE" errno=0)
hh_run

hh_new stalled failed "half a response, then silence: the client gives up"
C_MODE="hold 20"
C_RESP=$(good_lines)
C_LOGANY=("$LOG_GONE")
C_WAIT=8
hh_run
hh_finish
