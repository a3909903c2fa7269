#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# wg-quick with `auto' in Address, through wg-quick.patch applied to a copy
# of the installed wg-quick. A client namespace has only its veth to the hub;
# wg-quick makes the WireGuard interface there (wireguard-go, as without the
# kernel module) from a config file whose hub peer has AllowedIPs fe80::/128.
# The hub pushes a DNS server and an MTU. Twice: with a configured
# link-local and `auto', taking the hub's DNS; and with `auto' alone (the
# client adds its derived link-local) and a DNS and an MTU of its own, which
# win. Each time: up starts the client, which leases an IPv4 and an IPv6
# address; save keeps `auto' and leaves the lease out; strip gives what wg
# setconf accepts; down stops the client, which releases the lease, and the
# interface and wireguard-go go; the saved file comes up again. The hub runs
# its mesh, with a second client (lib.sh's client 2) in it: the wg-quick
# client learns it as a peer, and save leaves that peer out. Then a client
# that refuses to start fails wg-quick up, which undoes everything.
#
# wg-quick starts wg-dynamic-client without --state-dir, so the client keeps
# IFACE.lease and IFACE.lock in /var/lib/wg-dynamic; they are removed at the
# end. wireguard-go and the client detach from wg-quick: whatever is left in
# the client namespace at the end is stopped by PID. A stand-in resolvconf
# beside the patched wg-quick keeps its records in the test's directory.

# Functions below run through check and wait_for, which shellcheck cannot see.
# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

POOL4=10.97.0.0/24
POOL6=fd97::/64
HUB_DNS=192.0.2.53
HUB_MTU=1380
STATE_DIR=/var/lib/wg-dynamic
WG_QUICK_SRC=/usr/bin/wg-quick

e2e_init t_96_wg_quick
command -v patch >/dev/null 2>&1 || die "'patch' is missing (apt-get install patch)"
[ -f "$WG_QUICK_SRC" ] || die "$WG_QUICK_SRC is missing (apt-get install wireguard-tools)"
[ -x "$CLIENT_BIN" ] || die "$CLIENT_BIN is missing: run make"

NS=wgd-$E2E_ID-q
BIN=$E2E_TMP/bin
CONF_DIR=$E2E_TMP/wireguard
WGQ_LOG=$E2E_TMP/wg-quick.log
RESOLV_DIR=$E2E_TMP/resolvconf
# Every interface wg-quick may have made, for the cleanup.
WGQ_IFS=()
state_dir_existed=0
if [ -d "$STATE_DIR" ]; then
	state_dir_existed=1
fi

# ---- helpers ----

# wgq ARGS...: the patched wg-quick in the client namespace, its output
# appended to the log. wg-quick finds wg-dynamic-client beside itself.
wgq() {
	say "# wg-quick $*" >>"$WGQ_LOG"
	ip netns exec "$NS" env WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go \
		"$BIN/wg-quick" "$@" >>"$WGQ_LOG" 2>&1
}

ns_pids() {
	ip netns pids "$NS" 2>/dev/null
}

ns_empty() {
	[ -z "$(ns_pids)" ]
}

# client_cmdlines IFACE: the command lines of the wg-dynamic-client
# processes for IFACE, one a line.
client_cmdlines() {
	local pid cmdline
	for pid in $(ns_pids); do
		cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
		case $cmdline in
		"wg-dynamic-client "*" $1 " | "wg-dynamic-client $1 ") printf '%s\n' "${cmdline% }" ;;
		esac
	done
	return 0
}

iface_exists() {
	ip -n "$NS" link show dev "$1" >/dev/null 2>&1
}

# stop_ns_procs: SIGTERM, then SIGKILL, to every process in the client
# namespace; all of them were started by this test.
stop_ns_procs() {
	local pid
	ns_empty && return 0
	for pid in $(ns_pids); do
		kill -TERM "$pid" 2>/dev/null
	done
	wait_for -t 3 ns_empty && return 0
	for pid in $(ns_pids); do
		kill -KILL "$pid" 2>/dev/null
	done
	wait_for -t 3 ns_empty
}

e2e_before_cleanup() {
	local ifname
	for ifname in "${WGQ_IFS[@]}"; do
		iface_exists "$ifname" && wgq down "$CONF_DIR/$ifname.conf"
	done
	stop_ns_procs
	for ifname in "${WGQ_IFS[@]}"; do
		rm -f "$WG_SOCK_DIR/$ifname.sock" "$STATE_DIR/$ifname.lease" "$STATE_DIR/$ifname.lock" \
			"$STATE_DIR/$ifname.mesh" "$STATE_DIR/$ifname.mesh-status"
	done
	[ "$state_dir_existed" = 1 ] || rmdir "$STATE_DIR" 2>/dev/null
	[ "$E2E_FAILS" -eq 0 ] || { say "---- wg-quick.log ----"; cat "$WGQ_LOG"; }
}

# learned_peer IFACE KEY: whether IFACE has KEY as a peer, in the record of
# the peers the client's mesh added.
learned_peer() {
	ip netns exec "$NS" wg show "$1" peers | grep -qxF "$2" &&
		grep -qxF "$2" "$STATE_DIR/$1.mesh"
}

# write_conf IFACE KEY-NAME ADDRESS ALLOWED-IPS [DNS MTU]: the config file
# of IFACE.
write_conf() {
	{
		printf '[Interface]\nPrivateKey = %s\nAddress = %s\n' "$(cat "$E2E_TMP/$2.key")" "$3"
		[ -z "${5:-}" ] || printf 'DNS = %s\n' "$5"
		[ -z "${6:-}" ] || printf 'MTU = %s\n' "$6"
		printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\nEndpoint = 192.0.2.5:%s\n' \
			"$HUB_PUB" "$4" "$HUB_PORT"
	} | (umask 077 && cat >"$CONF_DIR/$1.conf")
}

# resolv_has IFACE NAMESERVER: the resolvconf record of IFACE names it.
resolv_has() {
	grep -qxF "nameserver $2" "$RESOLV_DIR/$1" 2>/dev/null
}

iface_mtu() {
	ip -n "$NS" -o link show dev "$1" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'
}

conf_has_dns_mtu() {
	conf_has_line "$1" "DNS = $2" && conf_has_line "$1" "MTU = $3"
}

# The Address values of a config file, one a line.
conf_addresses() {
	sed -n 's/^Address *= *//p' "$1" | tr ',' '\n' | tr -d ' '
}

conf_has_line() {
	grep -qxF "$2" "$1"
}

# has_ll128 EXPANDED-ADDR: whether stdin lists that address as a /128.
has_ll128() {
	local ip
	while read -r ip; do
		case $ip in
		*:*/128) [ "$(ip6_expand "$ip")" = "$1" ] && return 0 ;;
		esac
	done
	return 1
}

client_has_ll() {
	ip -n "$NS" -o -6 addr show dev "${CLIENT_IF[1]}" scope link | awk '{ print $4 }' |
		has_ll128 "$1"
}

# addr_has_lifetime ADDR/LEN: the address is on the interface with a finite
# valid lifetime, as the client installs its leases.
addr_has_lifetime() {
	ip -n "$NS" -o addr show dev "${CLIENT_IF[1]}" to "$1" | grep -q 'valid_lft [0-9]*sec'
}

addrs_have_lifetime() {
	addr_has_lifetime "$1" && addr_has_lifetime "$2"
}

hub_peer_has_pools() {
	client_hub_peer_has 1 "$POOL4" && client_hub_peer_has 1 "$POOL6"
}

conf_has_hub() {
	conf_has_line "$1" "PublicKey = $HUB_PUB" &&
		conf_has_line "$1" "Endpoint = 192.0.2.5:$HUB_PORT"
}

# conf_has_ll128 FILE EXPANDED-ADDR: whether FILE's Address lists it.
conf_has_ll128() {
	conf_addresses "$1" | has_ll128 "$2"
}

# patch_single_file FILE: patch(1) given the file to patch, as the README
# says, gives what patch -p1 gave in the source layout.
patch_single_file() {
	patch -s "$1" <"$E2E_TOP/wg-quick.patch" &&
		cmp -s "$1" "$E2E_TMP/wgq/src/wg-quick/linux.bash"
}

scratch_has_hub() {
	ip netns exec "$NS" wg show "$1" peers | grep -qxF "$HUB_PUB"
}

hub_dropped() {
	! hub_peer_has 1 "$1" && ! hub_peer_has 1 "$2"
}

# up_and_lease IFACE CONF WHAT CMDLINE: wg-quick up, one client started as
# CMDLINE, a lease.
up_and_lease() {
	local ifname=$1 conf=$2 what=$3 rc
	wgq up "$conf"
	rc=$?
	check_eq "$what: wg-quick up succeeds" 0 "$rc"
	check "$what: $ifname exists" iface_exists "$ifname"
	check_eq "$what: one wg-dynamic-client runs" "$4" "$(client_cmdlines "$ifname")"
	check "$what: the client leased IPv4 and IPv6 addresses" client_wait_lease 1
	say "  $(client_addrs 1)"
}

# down_and_gone IFACE CONF WHAT A4 A6: wg-quick down leaves nothing.
down_and_gone() {
	local ifname=$1 conf=$2 what=$3 rc
	wgq down "$conf"
	rc=$?
	check_eq "$what: wg-quick down succeeds" 0 "$rc"
	check "$what: $ifname is gone" not iface_exists "$ifname"
	check_eq "$what: no wg-dynamic-client is left for $ifname" "" "$(client_cmdlines "$ifname")"
	check "$what: nothing runs in the namespace any more (wireguard-go exited)" \
		wait_for -t 5 ns_empty
	check "$what: the UAPI socket is gone" wait_for -t 5 not test -e "$WG_SOCK_DIR/$ifname.sock"
	check "$what: the client released $4 and $5 on the hub" wait_for -t 5 hub_dropped "$4" "$5"
	check "$what: no resolvconf record is left" not test -e "$RESOLV_DIR/$ifname"
}

# run_variant TAG ADDRESS PEER-LL [DNS MTU]: the whole cycle with Address =
# ADDRESS; PEER-LL is the link-local the hub has for this client (empty: the
# derived one); DNS and MTU go into the config file when given.
run_variant() {
	local tag=$1 address=$2 ll=$3 dns=${4:-} mtu=${5:-} ifname=wgd${E2E_ID}$1
	local conf a4 a6 rc derived cmdline

	conf=$CONF_DIR/$ifname.conf
	say "-- Address = $address"
	wg_key "q$tag" "CLIENT_PUB[1]"
	CLIENT_IF[1]=$ifname
	WGQ_IFS+=("$ifname")
	derived=$(derived_ll "${CLIENT_PUB[1]}")
	ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "${CLIENT_PUB[1]}" \
		allowed-ips "${ll:-$derived}/128" || die "cannot add the $tag client to the hub"
	write_conf "$ifname" "q$tag" "$address" fe80::/128 "$dns" "$mtu"
	cmdline="wg-dynamic-client${dns:+ --no-dns}${mtu:+ --no-mtu} $ifname"

	up_and_lease "$ifname" "$conf" "$tag" "$cmdline"
	a4=$(client_addr4 1)
	a6=$(client_addr6 1)
	check "$tag: IPv4 is a /32 from $POOL4" host4_in "$a4" "$POOL4"
	check "$tag: IPv6 is a /128 from $POOL6" host6_in "$a6" "$POOL6"
	check "$tag: $a4 and $a6 carry the lease's lifetime" \
		addrs_have_lifetime "$a4" "$a6"
	if [ -n "$ll" ]; then
		check "$tag: wg-quick added $ll/128" client_has_ll "$(ip6_expand "$ll")"
	else
		check "$tag: the client added its derived link-local" client_has_ll "$derived"
	fi
	check "$tag: the pushed routes reached the hub peer" wait_for -t 5 hub_peer_has_pools
	if [ -n "$dns" ]; then
		check "$tag: the resolvconf record has the configured $dns" resolv_has "$ifname" "$dns"
		check "$tag: and not the hub's $HUB_DNS" not resolv_has "$ifname" "$HUB_DNS"
		check_eq "$tag: the configured MTU stays" "$mtu" "$(iface_mtu "$ifname")"
	else
		check "$tag: the resolvconf record has the hub's $HUB_DNS" \
			wait_for -t 5 resolv_has "$ifname" "$HUB_DNS"
	fi

	# The mesh: client 2 is on the device, learned from the hub.
	check "$tag: the client learned client 2 from the hub's mesh" \
		wait_for -t 10 learned_peer "$ifname" "${CLIENT_PUB[2]}"

	# save: auto stays, the lease and the learned peer do not go into the file.
	wgq save "$conf"
	rc=$?
	check_eq "$tag: wg-quick save succeeds" 0 "$rc"
	check "$tag: saved Address keeps auto" conf_has_line "$conf" "Address = auto"
	check "$tag: saved file has no ${a4%/*}" not grep -qF "${a4%/*}" "$conf"
	check "$tag: saved file has no ${a6%/*}" not grep -qF "${a6%/*}" "$conf"
	check "$tag: saved hub peer has AllowedIPs fe80::/128 alone, no pushed route" \
		conf_has_line "$conf" "AllowedIPs = fe80::/128"
	check "$tag: saved file keeps the hub's key and endpoint" conf_has_hub "$conf"
	check "$tag: saved file has no peer the mesh learned" \
		not grep -qF "${CLIENT_PUB[2]}" "$conf"
	if [ -n "$ll" ]; then
		check "$tag: saved file keeps $ll/128" conf_has_line "$conf" "Address = $ll/128"
	else
		check "$tag: saved file has no derived link-local" \
			not conf_has_ll128 "$conf" "$derived"
	fi
	if [ -n "$dns" ]; then
		check "$tag: saved file keeps DNS = $dns and MTU = $mtu" \
			conf_has_dns_mtu "$conf" "$dns" "$mtu"
	else
		check "$tag: saved file has no DNS and no MTU" not grep -qE '^(DNS|MTU)' "$conf"
	fi
	say "  saved Address: $(conf_addresses "$conf" | tr '\n' ' ')"

	# strip: no Address, and wg setconf takes it (checked on a scratch
	# interface below).
	ip netns exec "$NS" "$BIN/wg-quick" strip "$conf" >"$E2E_TMP/$ifname.stripped" 2>>"$WGQ_LOG"
	check_eq "$tag: wg-quick strip succeeds" 0 "$?"
	check "$tag: stripped config has no Address" not grep -qi '^Address' "$E2E_TMP/$ifname.stripped"

	down_and_gone "$ifname" "$conf" "$tag" "$a4" "$a6"

	# The saved file works as a config.
	up_and_lease "$ifname" "$conf" "$tag, saved file" "$cmdline"
	a4=$(client_addr4 1)
	a6=$(client_addr6 1)
	down_and_gone "$ifname" "$conf" "$tag, saved file" "$a4" "$a6"
}

# ---- set-up ----

mkdir -p "$BIN" "$E2E_TMP/wgq/src/wg-quick" || die "cannot make $BIN"
(umask 077 && mkdir "$CONF_DIR") || die "cannot make $CONF_DIR"
cp "$WG_QUICK_SRC" "$E2E_TMP/wgq/src/wg-quick/linux.bash" || die "cannot copy $WG_QUICK_SRC"
out=$(patch -p1 -d "$E2E_TMP/wgq" <"$E2E_TOP/wg-quick.patch" 2>&1)
rc=$?
say "  patch: $out"
check_eq "wg-quick.patch applies with patch -p1" 0 "$rc"
check "wg-quick.patch applies without offset or fuzz" not grep -q Hunk <<<"$out"
cp "$WG_QUICK_SRC" "$E2E_TMP/wg-quick.single"
check "wg-quick.patch applies to the script itself, with the same result" \
	patch_single_file "$E2E_TMP/wg-quick.single"
[ "$rc" -eq 0 ] || die "cannot test an unpatched wg-quick"
install -m 0755 "$E2E_TMP/wgq/src/wg-quick/linux.bash" "$BIN/wg-quick"
ln -s "$CLIENT_BIN" "$BIN/wg-dynamic-client"
# resolvconf -a NAME (the record on stdin), -d NAME, -l NAME; wg-quick and
# the client find it on the PATH wg-quick starts with its own directory.
mkdir "$RESOLV_DIR"
cat >"$BIN/resolvconf" <<EOF
#!/bin/sh
case \$1 in
-a) cat >"$RESOLV_DIR/\$2" ;;
-d) rm -f "$RESOLV_DIR/\$2" ;;
-l) cat "$RESOLV_DIR/\$2" ;;
*) exit 1 ;;
esac
EOF
chmod 0755 "$BIN/resolvconf"

hub_create
hub_route "$POOL4" "$POOL6"
server_start --mesh --pool "$POOL4" --pool "$POOL6" --dns "$HUB_DNS" --mtu "$HUB_MTU"
# Client 2, in the mesh with every wg-quick client.
client_create 2
client_start 2
client_wait_lease 2 || die "client 2 got no IPv4 and IPv6 lease"

netns_add "$NS"
ip -n "$HUB_NS" link add "veth${E2E_ID}h1" type veth peer name "veth${E2E_ID}c1" netns "$NS" ||
	die "cannot create the veth pair"
ip -n "$HUB_NS" addr add 192.0.2.5/30 dev "veth${E2E_ID}h1"
ip -n "$HUB_NS" link set "veth${E2E_ID}h1" up
ip -n "$NS" addr add 192.0.2.6/30 dev "veth${E2E_ID}c1"
ip -n "$NS" link set "veth${E2E_ID}c1" up
# The lib's helpers read client 1; its interface changes with each run.
CLIENT_NS[1]=$NS

# ---- the two ways to write auto ----

run_variant a "fe80::1:7/128, auto" fe80::1:7
run_variant b auto "" 192.0.2.99 1400
check "auto never reached ip address add" not grep -q 'address add auto' "$WGQ_LOG"

# ---- a client that refuses to start undoes wg-quick up ----

say "-- a client that refuses to start"
ifname=wgd${E2E_ID}f
WGQ_IFS+=("$ifname")
wg_key qf pub
write_conf "$ifname" qf auto 10.254.0.0/24
wgq up "$CONF_DIR/$ifname.conf"
check "wg-quick up fails when the client finds no hub peer" test "$?" -ne 0
check "the client said why" grep -q "no peer of $ifname has exactly fe80::/128" "$WGQ_LOG"
check "$ifname was deleted again" not iface_exists "$ifname"
check "nothing runs in the namespace" wait_for -t 5 ns_empty

# ---- strip's output is a config wg setconf takes ----

scratch=wgd${E2E_ID}s
wg_iface_start "$NS" "$scratch"
for tag in a b; do
	f=$E2E_TMP/wgd${E2E_ID}$tag.stripped
	check "$tag: wg setconf accepts wg-quick strip's output" \
		ip netns exec "$NS" wg setconf "$scratch" "$f"
	check "$tag: and has the hub as its peer" scratch_has_hub "$scratch"
done
stop_pid "$WG_IFACE_PID"
rm -f "$WG_SOCK_DIR/$scratch.sock"

# ---- nothing left ----

check "no process is left in the client namespace" wait_for -t 5 ns_empty
check_eq "the client namespace has only lo and the veth" "lo veth${E2E_ID}c1" \
	"$(ip -n "$NS" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort | tr '\n' ' ' | sed 's/ $//')"
for ifname in "${WGQ_IFS[@]}"; do
	check "no UAPI socket is left for $ifname" not test -e "$WG_SOCK_DIR/$ifname.sock"
done
e2e_finish
