#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# A hostile hub grants bad addresses, lease times and MTUs (see
# hostile-hub.sh for how each case is checked). Addresses: loopback,
# multicast, link-local, the client's own link-local, an address the
# administrator configured on the interface, the hub's endpoint: each is
# refused with one log line while the other family's lease is taken, and
# the configured addresses keep their infinite lifetimes. 0.0.0.0 and ::
# together leave no usable address: a failed request. Two ip= lines of a
# family, none, or a /24 are refused whole. Lease times of 0 and 1 count as
# 10 s; 2^32-1, 58 days and lease starts far in the past or future give
# finite lifetimes and no request loop. MTUs of 100, 1279, 70000 and 2^32-1
# are refused, 1280 is taken, 0 changes nothing. Last, after a restart, a
# hub that refuses the remembered addresses (errno=3) makes the client ask
# for any address at once.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=hostile-hub.sh
. "$(dirname "$0")/hostile-hub.sh"

e2e_init t_94b_hostile_hub_leases
hh_setup

# ---- addresses ----

# addr_case TAG FAMILY ADDR DESCRIPTION: the hub grants ADDR in place of the
# good address of its family; the other family's lease is still taken.
addr_case() {
	local drop=ip=$A4/32 len=32
	[ "$2" = 6 ] && drop=ip=$A6/128 len=128
	hh_new "$1" taken "$4"
	C_RESP=$(good_lines | grep -vxF "$drop"; lines "ip=$3/$len")
	refused ip "$3"
	hh_run
}
addr_case ip-loopback4 4 127.0.0.1 "ip=127.0.0.1 is refused, the IPv6 lease taken"
addr_case ip-loopback6 6 ::1 "ip=::1 is refused, the IPv4 lease taken"
addr_case ip-multicast4 4 224.0.0.1 "ip=224.0.0.1 is refused"
addr_case ip-multicast6 6 ff02::1 "ip=ff02::1 is refused"
addr_case ip-link-local4 4 169.254.1.1 "ip=169.254.1.1 is refused"
addr_case ip-link-local6 6 fe80::99 "ip=fe80::99 is refused"
addr_case ip-own-link-local 6 "${CLIENT_LL[1]}" "ip= the client's own link-local is refused"
addr_case ip-configured 4 "${ADMIN_ADDR%/*}" "ip= an address configured on the interface is refused"
addr_case ip-hub-endpoint 4 "$HUB_EP" "ip= the hub's endpoint address is refused"

hh_new ip-unspecified failed "ip=0.0.0.0 and ip=::: no usable address, a failed request"
C_RESP=$(good_lines ip; lines ip=0.0.0.0/32 ip=::/128)
refused ip 0.0.0.0
refused ip ::
hh_run

hh_new ip-twice failed "two ip= lines of one family: the response is refused whole"
C_RESP=$(good_lines; lines ip=10.94.0.3/32)
C_LOGANY=("$LOG_BAD")
hh_run

hh_new ip-none failed "errno=0 and no address: a failed request"
C_RESP=$(good_lines ip)
C_LOGANY=("$LOG_NOADDR")
hh_run

hh_new ip-not-host failed "ip=10.94.0.2/24: the response is refused whole"
C_RESP=$(good_lines | grep -vxF "ip=$A4/32"; lines ip=10.94.0.2/24)
C_LOGANY=("$LOG_BAD")
hh_run

# ---- lease times ----

# The address's valid lifetime, in seconds; "forever" when infinite.
valid_lft() {
	ip -n "$NS" -o addr show dev "$IF" | awk -v a="$1" '$4 == a {
		for (i = 1; i < NF; i++)
			if ($i == "valid_lft") { sub(/sec$/, "", $(i + 1)); print $(i + 1) }
	}'
}

# lifetime_at_most N: both leased addresses expire within N seconds.
LIFE_MAX=
lifetime_at_most() {
	local a l
	for a in "$A4/32" "$A6/128"; do
		l=$(valid_lft "$a")
		case $l in
		'') prob "$a is gone" ;;
		forever) prob "$a has an infinite lifetime" ;;
		*) [ "$l" -le "$LIFE_MAX" ] || prob "$a lives ${l}s, more than ${LIFE_MAX}s" ;;
		esac
	done
}

# Only the request SIGHUP asked for within C_WATCH seconds: no request
# loop, whatever the lease time does to the arithmetic.
one_request() {
	local n
	n=$(fakehub_count "$mf" 1 "$C_TAG")
	[ "$n" -eq 1 ] || prob "$n requests within ${C_WATCH}s of the answer"
}

lease_extra() {
	lifetime_at_most
	one_request
}

# lease_case TAG LEASESTART LEASETIME LIFE_MAX DESCRIPTION [LOG_RE]:
# LEASESTART "now" is the time of the response.
C_OUTCOME=taken
lease_case() {
	local start=$2
	[ "$start" = now ] && start=${EPOCHREALTIME%.*}
	hh_new "$1" "$C_OUTCOME" "$5"
	C_RESP=$(good_lines leasestart leasetime; lines "leasestart=$start" "leasetime=$3")
	[ -z "${6:-}" ] || C_LOG+=("$6")
	LIFE_MAX=$4
	C_WATCH=1
	C_EXTRA=lease_extra
	hh_run
}
lease_case lease-0 now 0 10 "leasetime=0 counts as 10 s" \
	'^from the hub: leasetime 0: raised to 10 s'
lease_case lease-1 now 1 10 "leasetime=1 counts as 10 s" \
	'^from the hub: leasetime 1: raised to 10 s'
lease_case lease-max now 4294967295 4294967294 "leasetime=4294967295: a finite lifetime"
lease_case lease-58-days now 5011200 5011200 \
	"leasetime=5011200 (58 days): taken and logged as it came, no request loop" \
	"^(renewed|bound): ip4 $A4 ip6 $A6 leasetime 5011200 "
# What to make of a lease start far off is the client's to choose (today
# it counts from now): either way, nothing lives longer than the lease, and
# no request loop.
C_OUTCOME=either
lease_case start-past 1 "$LEASE" "$LEASE" "leasestart=1 (1970): no longer than the lease"
lease_case start-future 4294967295 "$LEASE" "$LEASE" "leasestart=4294967295 (2106): no longer than the lease"
lease_case start-end-max 4294967295 4294967295 4294967294 \
	"leasestart and leasetime 2^32-1, whose end overflows 32 bits: a finite lifetime"

# ---- MTU ----

mtu_case() {
	hh_new "$1" taken "$3"
	C_RESP=$(good_lines mtu; lines "mtu=$2")
	if [ -n "${4:-}" ]; then
		C_MTU=$4
	else
		refused mtu "$2"
	fi
	hh_run
}
mtu_case mtu-100 100 "mtu=100 is refused"
mtu_case mtu-1279 1279 "mtu=1279, below IPv6's minimum, is refused"
# The link's maximum: 65535 for wireguard-go's TUN device, far more for
# kernel WireGuard (0 is none at all).
max_mtu=$(ip -n "$NS" -d link show dev "$IF" | sed -n 's/.* maxmtu \([0-9]*\).*/\1/p')
if [ "${max_mtu:-65535}" -ne 0 ] && [ "${max_mtu:-65535}" -lt 70000 ]; then
	mtu_case mtu-70000 70000 "mtu=70000, above the link's maximum ($max_mtu), is refused"
else
	mtu_case mtu-70000 70000 "mtu=70000, within the link's maximum ($max_mtu), is accepted" 70000
fi
mtu_case mtu-max 4294967295 "mtu=4294967295 is refused"
mtu_case mtu-1280 1280 "mtu=1280 is accepted" 1280
hh_new mtu-0 taken "mtu=0 means no MTU: the MTU is left as it is"
C_RESP=$(good_lines mtu; lines mtu=0)
hh_run

# ---- a refused remembered address ----

say "restart: the hub refuses the remembered addresses"
client_stop 1
check_eq "the client stops with status 0" 0 "$?"
fakehub_set default "answer refused" "errno=3\nerrmsg=Chosen IP(s) unavailable\n\n"
mf=$(log_mark "$FAKEHUB_LOG")
start_client
two_refusals() {
	[ "$(fakehub_count "$mf" 1 refused)" -ge 2 ]
}
check "the client asks again after the refusal" wait_for -t 5 two_refusals
reqs=$(fakehub_requests "$mf" 1 refused | awk '{ print $6 }')
check "the first request asks for the remembered addresses" \
	grep -q "ip=$A4/32;ip=$A6/128;" <<<"$(sed -n 1p <<<"$reqs")"
check "the next one asks for any address (0.0.0.0/32 and ::/128)" \
	grep -q "ip=0.0.0.0/32;ip=::/128;" <<<"$(sed -n 2p <<<"$reqs")"
check "the client runs" pid_alive "${CLIENT_PID[1]}"
set_good
m=$(log_mark "${CLIENT_LOG[1]}")
check "it binds once the hub grants again" wait_for -t 30 client_renewed_since "$m"
check_eq "and the state is as before" "" "$(state_diff)"

hh_finish
