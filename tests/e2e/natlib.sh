# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The NAT_ variables are set for the tests to read.
# shellcheck disable=SC2034
#
# A NAT test bench for the mesh tests: real NAT routers in network
# namespaces, an "internet" between them, and the hub on it. Source this
# file after lib.sh, call e2e_init, then nat_hub_create and the sites.
# Every name carries lib.sh's run id, and lib.sh's trap tears everything
# down: namespaces go through netns_add, wireguard-go through
# wg_iface_start.
#
# The internet is one namespace, wgd-ID-inet, routing between uplinks.
# Uplink S joins it to one namespace by a veth pair (vethIDiS on the
# internet's side, vethIDwS on the other): 198.51.100.(4S+1)/30 and
# 2001:db8:S::1/64 on the internet's side, .(4S+2)/30 and 2001:db8:S::2/64
# on the other, which routes everything there. Uplink 0 is the hub's:
# lib.sh's hub, WireGuard on port 51820, at 198.51.100.2 and 2001:db8::2.
#
# A site holds client N, made as lib.sh's client_create makes it (namespace
# wgd-ID-cN, interface wgdIDcN, the hub as its only peer, fe80::1:N/128 as
# its peer's allowed-IP on the hub), so that client_start N and the other
# client helpers work. The hub's endpoint on the client is NAT_HUB4:51820.
# Behind a NAT, the router is wgd-ID-rN on uplink N, and its LAN is
# 192.168.N.0/24 on a bridge: the router at .1, client M at .(100+M).
#
#   nat_site_public N     client N on uplink N itself, IPv4 and IPv6
#   nat_site_easy N       masquerade, which keeps the source port when it
#                         can: one mapping for every destination
#   nat_site_hard N       masquerade fully-random: a new port for every
#                         destination (a symmetric NAT)
#   nat_site_shared N M   clients N and M on one LAN behind one easy NAT
#                         (router rN), without hairpin: what the LAN sends
#                         to the router's public address ends in the router
#   nat_site_dual N       a hard IPv4 NAT, and IPv6 routed to the client
#                         (LAN 2001:db8:N:1::/64, client at ::(100+N))
#                         through a stateful firewall
#
# Every router drops what comes from its WAN unsolicited, in input as in
# forward: only ct state established,related passes (and neighbour
# discovery). The drop in input matters: without it, a hole-punching
# packet that arrives before the client behind sent its own leaves a
# conntrack entry for exactly the ports the client then sends from, and
# the NAT gives the client's packet another source port. Two easy NATs
# would then act as hard ones. Real home routers drop such packets too.
#
# What the tests read, by client number:
#   NAT_TYPE[N]    public, easy, hard, shared or dual
#   NAT_ROUTER[N]  the number of its router, or empty (public)
#   NAT_PUB4[N]    the IPv4 address its packets come from on the internet
#   NAT_PUB6[N]    its global IPv6 address (public and dual), or empty
#   NAT_LAN4[N]    the IPv4 address on its own uplink or LAN interface
#   NAT_ROUTER_NS[R] the namespace of router R
# and NAT_INET_NS, NAT_HUB4, NAT_HUB6.
#
# Changes: nat_move R moves router R's NAT to another public address;
# nat_break A B drops UDP from A's public address to B's at the internet
# (A and B are client numbers or "hub"), nat_repair A B lets it through
# again. Reading: nat_transfer, nat_rx, nat_tx, nat_endpoint,
# nat_handshook, nat_hub_endpoint, nat_hub_bytes, nat_listen_port (see
# each). nat_dump prints the routers' rules and conntrack tables and
# every WireGuard interface, for a failed test's e2e_before_cleanup.

NAT_INET_NS=
NAT_HUB4=198.51.100.2
NAT_HUB6=2001:db8::2
NAT_TYPE=()
NAT_ROUTER=()
NAT_PUB4=()
NAT_PUB6=()
NAT_LAN4=()
NAT_ROUTER_NS=()
# By router number: its kind (easy, hard, dual) and the address it maps to.
NAT_KIND=()
NAT_SNAT=()
# nat_break's set elements, by "A>B", for nat_repair to remove.
declare -A NAT_BROKEN=()

# ---- the internet and the hub ----

# nat_slot6 S: the /64 prefix of uplink S, without the host part.
nat_slot6() {
	if [ "$1" -eq 0 ]; then
		printf '2001:db8::\n'
	else
		printf '2001:db8:%s::\n' "$1"
	fi
}

# nat_inet_create: the internet namespace, which forwards both families and
# holds the sets nat_break fills. Called by nat_hub_create.
nat_inet_create() {
	local tool

	[ -z "$NAT_INET_NS" ] || return 0
	for tool in nft conntrack; do
		command -v "$tool" >/dev/null 2>&1 ||
			die "'$tool' is missing; the NAT tests need it (run: make deps)"
	done
	NAT_INET_NS=wgd-$E2E_ID-inet
	netns_add "$NAT_INET_NS"
	ip netns exec "$NAT_INET_NS" sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 >/dev/null ||
		die "cannot turn on forwarding in $NAT_INET_NS"
	ip netns exec "$NAT_INET_NS" nft -f - <<-EOF || die "cannot load the internet's nftables rules"
		table inet wgdinet {
			set broken4 { type ipv4_addr . ipv4_addr; }
			set broken6 { type ipv6_addr . ipv6_addr; }
			chain forward {
				type filter hook forward priority filter; policy accept;
				meta l4proto udp ip saddr . ip daddr @broken4 drop
				meta l4proto udp ip6 saddr . ip6 daddr @broken6 drop
			}
		}
	EOF
}

# nat_link_up NS IFACE: brings up one of the bench's links, without
# duplicate address detection: it finds nothing on a veth, and until the
# link-local addresses along a path leave the tentative state (a second or
# two), the first IPv6 packets across the routers are lost, which would
# make the first handshakes depend on timing.
nat_link_up() {
	ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.accept_dad=0" >/dev/null &&
		ip -n "$1" link set "$2" up
}

# nat_uplink NS S: joins NS to the internet on uplink S and routes all of
# NS's traffic there.
nat_uplink() {
	local ns=$1 s=$2 inet_if=veth${E2E_ID}i$2 wan_if=veth${E2E_ID}w$2 p6
	p6=$(nat_slot6 "$s")

	ip -n "$NAT_INET_NS" link add "$inet_if" type veth peer name "$wan_if" netns "$ns" ||
		die "cannot create the veth pair of uplink $s"
	{
		ip -n "$NAT_INET_NS" addr add "198.51.100.$((4 * s + 1))/30" dev "$inet_if" &&
			ip -n "$NAT_INET_NS" addr add "${p6}1/64" dev "$inet_if" nodad &&
			nat_link_up "$NAT_INET_NS" "$inet_if" &&
			ip -n "$ns" addr add "198.51.100.$((4 * s + 2))/30" dev "$wan_if" &&
			ip -n "$ns" addr add "${p6}2/64" dev "$wan_if" nodad &&
			nat_link_up "$ns" "$wan_if" &&
			ip -n "$ns" route add default via "198.51.100.$((4 * s + 1))" &&
			ip -n "$ns" -6 route add default via "${p6}1"
	} || die "cannot address and route uplink $s of $ns"
}

# nat_hub_create: the internet and lib.sh's hub on uplink 0.
nat_hub_create() {
	nat_inet_create
	hub_create
	nat_uplink "$HUB_NS" 0
}

# nat_wg_start NS IFACE KEYNAME [PORT]: wireguard-go for IFACE in NS (see
# wg_iface_start) with the private key $E2E_TMP/KEYNAME.key (wg_key makes
# it) and listen port PORT, or one the kernel picks. The interface stays
# down.
nat_wg_start() {
	local -a port=()

	[ -n "${4:-}" ] && port=(listen-port "$4")
	wg_iface_start "$1" "$2"
	ip netns exec "$1" wg set "$2" private-key "$E2E_TMP/$3.key" "${port[@]}" ||
		die "cannot set the key of $2"
}

# ---- sites ----

# nat_client_ns N: claims client number N and makes its namespace.
nat_client_ns() {
	local n=$1

	if [ "$n" -lt 1 ] || [ "$n" -gt 62 ]; then
		die "client number $n is out of range (1..62)"
	fi
	[ -z "${CLIENT_NS[$n]:-}" ] || die "client $n already exists"
	CLIENT_NS[n]=wgd-$E2E_ID-c$n
	netns_add "${CLIENT_NS[$n]}"
}

# nat_client_wg N: client N's WireGuard interface with the hub as peer, and
# its peer on the hub, as lib.sh's client_create makes them; up.
nat_client_wg() {
	local n=$1 ns=${CLIENT_NS[$1]} ifname=wgd${E2E_ID}c$1 pub

	CLIENT_IF[n]=$ifname
	wg_key "client$n" pub
	CLIENT_PUB[n]=$pub
	nat_wg_start "$ns" "$ifname" "client$n"
	ip netns exec "$ns" wg set "$ifname" peer "$HUB_PUB" allowed-ips fe80::/128 \
		endpoint "$NAT_HUB4:$HUB_PORT" || die "cannot add the hub as a peer of $ifname"
	CLIENT_LL[n]=fe80::1:$n
	ip -n "$ns" addr add "fe80::1:$n/128" dev "$ifname" nodad ||
		die "cannot add fe80::1:$n/128 to $ifname"
	ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "$pub" allowed-ips "fe80::1:$n/128" ||
		die "cannot add client $n as a peer of the hub"
	ip -n "$ns" link set "$ifname" up || die "cannot bring $ifname up"
}

# nat_router_create R KIND: router R on uplink R with its LAN bridge and
# its rules; KIND is easy, hard or dual.
nat_router_create() {
	local r=$1 kind=$2 ns=wgd-$E2E_ID-r$1 wan=veth${E2E_ID}w$1 br=br${E2E_ID}r$1
	local random='' fwd6=0

	if [ "$r" -lt 1 ] || [ "$r" -gt 62 ]; then
		die "router number $r is out of range (1..62)"
	fi
	[ -z "${NAT_ROUTER_NS[$r]:-}" ] || die "router $r already exists"
	case $kind in
	easy) ;;
	hard) random=fully-random ;;
	dual) random=fully-random fwd6=1 ;;
	*) die "nat_router_create: unknown kind $kind" ;;
	esac
	NAT_ROUTER_NS[r]=$ns
	NAT_KIND[r]=$kind
	NAT_SNAT[r]=198.51.100.$((4 * r + 2))
	netns_add "$ns"
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 \
		"net.ipv6.conf.all.forwarding=$fwd6" >/dev/null ||
		die "cannot set forwarding in $ns"
	nat_uplink "$ns" "$r"
	{
		ip -n "$ns" link add "$br" type bridge &&
			ip -n "$ns" addr add "192.168.$r.1/24" dev "$br" &&
			nat_link_up "$ns" "$br"
	} || die "cannot create the LAN bridge of router $r"
	if [ "$kind" = dual ]; then
		{
			ip -n "$ns" addr add "2001:db8:$r:1::1/64" dev "$br" nodad &&
				ip -n "$NAT_INET_NS" -6 route add "2001:db8:$r:1::/64" \
					via "$(nat_slot6 "$r")2"
		} || die "cannot route the IPv6 LAN of router $r"
	fi
	# The NAT in an inet table, so that the same input and forward chains
	# guard both families; IPv6 is routed, never translated.
	ip netns exec "$ns" nft -f - <<-EOF || die "cannot load the nftables rules of router $r"
		table inet wgdnat {
			chain input {
				type filter hook input priority filter; policy accept;
				iifname "$wan" ct state established,related counter accept
				iifname "$wan" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
				iifname "$wan" counter drop
			}
			chain forward {
				type filter hook forward priority filter; policy accept;
				iifname "$wan" ct state established,related counter accept
				iifname "$wan" counter drop
			}
			chain post {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "$wan" meta nfproto ipv4 masquerade $random
			}
		}
	EOF
}

# nat_lan_attach R N: client N's namespace on router R's LAN.
nat_lan_attach() {
	local r=$1 n=$2 rns=${NAT_ROUTER_NS[$1]} ns bport=veth${E2E_ID}p$2 lan=veth${E2E_ID}l$2
	local a4=192.168.$1.$((100 + $2))

	nat_client_ns "$n"
	ns=${CLIENT_NS[$n]}
	ip -n "$rns" link add "$bport" type veth peer name "$lan" netns "$ns" ||
		die "cannot create the LAN veth pair of client $n"
	{
		ip -n "$rns" link set "$bport" master "br${E2E_ID}r$r" &&
			nat_link_up "$rns" "$bport" &&
			ip -n "$ns" addr add "$a4/24" dev "$lan" &&
			nat_link_up "$ns" "$lan" &&
			ip -n "$ns" route add default via "192.168.$r.1"
	} || die "cannot put client $n on the LAN of router $r"
	NAT_LAN4[n]=$a4
	NAT_PUB4[n]=${NAT_SNAT[$r]}
	NAT_PUB6[n]=
	NAT_ROUTER[n]=$r
	if [ "${NAT_KIND[$r]}" = dual ]; then
		NAT_PUB6[n]=2001:db8:$r:1::$((100 + n))
		{
			ip -n "$ns" addr add "${NAT_PUB6[$n]}/64" dev "$lan" nodad &&
				ip -n "$ns" -6 route add default via "2001:db8:$r:1::1"
		} || die "cannot give client $n its IPv6 address"
	fi
}

nat_site_public() {
	local n=$1
	nat_client_ns "$n"
	nat_uplink "${CLIENT_NS[$n]}" "$n"
	NAT_TYPE[n]=public
	NAT_ROUTER[n]=
	NAT_PUB4[n]=198.51.100.$((4 * n + 2))
	NAT_LAN4[n]=${NAT_PUB4[$n]}
	NAT_PUB6[n]=$(nat_slot6 "$n")2
	nat_client_wg "$n"
}

nat_site_easy() {
	nat_router_create "$1" easy
	nat_lan_attach "$1" "$1"
	NAT_TYPE[$1]=easy
	nat_client_wg "$1"
}

nat_site_hard() {
	nat_router_create "$1" hard
	nat_lan_attach "$1" "$1"
	NAT_TYPE[$1]=hard
	nat_client_wg "$1"
}

nat_site_shared() {
	nat_router_create "$1" easy
	nat_lan_attach "$1" "$1"
	nat_lan_attach "$1" "$2"
	NAT_TYPE[$1]=shared
	NAT_TYPE[$2]=shared
	nat_client_wg "$1"
	nat_client_wg "$2"
}

nat_site_dual() {
	nat_router_create "$1" dual
	nat_lan_attach "$1" "$1"
	NAT_TYPE[$1]=dual
	nat_client_wg "$1"
}

# ---- changes ----

# nat_move R: router R's NAT moves to its other public address, as when a
# provider renumbers: the first move to 203.0.113.R (added to its WAN side
# and routed there by the internet), the next back, and so on. Every
# mapping is forgotten (conntrack -F), so the next packet of each flow
# leaves from the new address.
nat_move() {
	local r=$1 ns=${NAT_ROUTER_NS[$1]:-} wan=veth${E2E_ID}w$1
	local first=198.51.100.$((4 * $1 + 2)) other=203.0.113.$1 to random='' n

	[ -n "$ns" ] || die "nat_move: there is no router $r"
	to=$other
	[ "${NAT_SNAT[$r]}" = "$other" ] && to=$first
	[ "${NAT_KIND[$r]}" = easy ] || random=fully-random
	{
		ip -n "$ns" addr replace "$other/32" dev "$wan" &&
			ip -n "$NAT_INET_NS" route replace "$other/32" via "$first" &&
			ip netns exec "$ns" nft flush chain inet wgdnat post &&
			ip netns exec "$ns" nft add rule inet wgdnat post \
				oifname "$wan" meta nfproto ipv4 snat ip to "$to" $random &&
			ip netns exec "$ns" conntrack -F >/dev/null 2>&1
	} || die "cannot move the NAT of router $r to $to"
	NAT_SNAT[r]=$to
	for n in "${!NAT_ROUTER[@]}"; do
		[ "${NAT_ROUTER[$n]}" = "$r" ] && NAT_PUB4[n]=$to
	done
	return 0
}

# nat_pub4 WHO / nat_pub6 WHO: the public address of client WHO, or of the
# hub for "hub".
nat_pub4() {
	if [ "$1" = hub ]; then
		printf '%s\n' "$NAT_HUB4"
	else
		printf '%s\n' "${NAT_PUB4[$1]:-}"
	fi
}

nat_pub6() {
	if [ "$1" = hub ]; then
		printf '%s\n' "$NAT_HUB6"
	else
		printf '%s\n' "${NAT_PUB6[$1]:-}"
	fi
}

# nat_break A B: the internet drops UDP from A's public addresses to B's
# (IPv4, and IPv6 when both have one), one way: B still reaches A. The
# addresses are those of the moment; nat_repair A B removes exactly what
# this added, even after a nat_move.
nat_break() {
	local key="$1>$2" a4 b4 a6 b6 v4 v6=

	[ -z "${NAT_BROKEN[$key]:-}" ] || die "nat_break: $1 to $2 is broken already"
	a4=$(nat_pub4 "$1") b4=$(nat_pub4 "$2") a6=$(nat_pub6 "$1") b6=$(nat_pub6 "$2")
	if [ -z "$a4" ] || [ -z "$b4" ]; then
		die "nat_break: no public address for $1 or $2"
	fi
	v4="$a4 . $b4"
	ip netns exec "$NAT_INET_NS" nft add element inet wgdinet broken4 "{ $v4 }" ||
		die "cannot break $1 to $2"
	if [ -n "$a6" ] && [ -n "$b6" ]; then
		v6="$a6 . $b6"
		ip netns exec "$NAT_INET_NS" nft add element inet wgdinet broken6 "{ $v6 }" ||
			die "cannot break $1 to $2 over IPv6"
	fi
	NAT_BROKEN[$key]="$v4|$v6"
}

nat_repair() {
	local key="$1>$2" v4 v6

	[ -n "${NAT_BROKEN[$key]:-}" ] || die "nat_repair: $1 to $2 is not broken"
	v4=${NAT_BROKEN[$key]%%|*} v6=${NAT_BROKEN[$key]#*|}
	ip netns exec "$NAT_INET_NS" nft delete element inet wgdinet broken4 "{ $v4 }" ||
		die "cannot repair $1 to $2"
	if [ -n "$v6" ]; then
		ip netns exec "$NAT_INET_NS" nft delete element inet wgdinet broken6 "{ $v6 }" ||
			die "cannot repair $1 to $2 over IPv6"
	fi
	unset "NAT_BROKEN[$key]"
}

# ---- reading WireGuard ----

# nat_wg WHO WHAT: wg show IFACE WHAT, for client WHO's interface or, with
# "hub", the hub's.
nat_wg() {
	if [ "$1" = hub ]; then
		ip netns exec "$HUB_NS" wg show "$HUB_IF" "$2"
	else
		ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" "$2"
	fi
}

# nat_key WHO: the public key of client WHO, or of the hub.
nat_key() {
	if [ "$1" = hub ]; then
		printf '%s\n' "$HUB_PUB"
	else
		printf '%s\n' "${CLIENT_PUB[$1]}"
	fi
}

# nat_peer_show WHO WHAT PEER: the fields after the key of PEER's line in
# wg show WHAT on WHO (both client numbers or "hub"); nothing when WHO has
# no such peer.
nat_peer_show() {
	local key
	key=$(nat_key "$3")
	nat_wg "$1" "$2" 2>/dev/null | awk -v k="$key" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }'
}

# nat_transfer WHO PEER: "RX TX", the bytes WHO received from and sent to
# PEER; nat_rx and nat_tx: one of them (0 when there is no such peer).
nat_transfer() {
	nat_peer_show "$1" transfer "$2"
}

nat_rx() {
	local rx tx
	read -r rx tx <<<"$(nat_transfer "$1" "$2")"
	printf '%s\n' "${rx:-0}"
}

nat_tx() {
	local rx tx
	read -r rx tx <<<"$(nat_transfer "$1" "$2")"
	printf '%s\n' "${tx:-0}"
}

# nat_endpoint WHO PEER: PEER's endpoint on WHO (1.2.3.4:5, [2001:db8::1]:5
# or "(none)").
nat_endpoint() {
	nat_peer_show "$1" endpoints "$2"
}

# nat_hub_endpoint N: where the hub sees client N.
nat_hub_endpoint() {
	nat_endpoint hub "$1"
}

# nat_ep_addr ENDPOINT / nat_ep_port ENDPOINT: the address without brackets,
# and the port.
nat_ep_addr() {
	local a=${1%:*}
	a=${a#[}
	printf '%s\n' "${a%]}"
}

nat_ep_port() {
	printf '%s\n' "${1##*:}"
}

# nat_handshook WHO PEER: whether WHO completed a handshake with PEER.
nat_handshook() {
	local t
	t=$(nat_peer_show "$1" latest-handshakes "$2")
	[ -n "$t" ] && [ "$t" != 0 ]
}

# nat_listen_port WHO: the port client WHO's interface listens on.
nat_listen_port() {
	nat_wg "$1" listen-port
}

# nat_hub_bytes N...: the bytes the hub received from and sent to clients
# N..., all added up. A path between two clients is direct when this stays
# flat while they talk.
nat_hub_bytes() {
	local n sum=0 rx tx
	for n in "$@"; do
		read -r rx tx <<<"$(nat_transfer hub "$n")"
		sum=$((sum + ${rx:-0} + ${tx:-0}))
	done
	printf '%s\n' "$sum"
}

# nat_ping_hub N: client N pings the hub's fe80:: from its link-local.
nat_ping_hub() {
	ip netns exec "${CLIENT_NS[$1]}" ping -n -q -c 1 -W 1 \
		-I "${CLIENT_LL[$1]}%${CLIENT_IF[$1]}" "fe80::%${CLIENT_IF[$1]}" >/dev/null 2>&1
}

# nat_hub_join N: client N shakes hands with the hub and reaches it, so the
# hub knows its endpoint (nat_hub_endpoint N).
nat_hub_join() {
	wait_for -t 10 nat_ping_hub "$1" || die "client $1 cannot reach the hub through its NAT"
}

# ---- diagnosis ----

nat_dump() {
	local r n

	[ -n "$NAT_INET_NS" ] || return 0
	say "---- internet: nftables ----"
	ip netns exec "$NAT_INET_NS" nft list ruleset 2>&1
	for r in "${!NAT_ROUTER_NS[@]}"; do
		say "---- router $r (${NAT_KIND[$r]}, maps to ${NAT_SNAT[$r]}): nftables and conntrack ----"
		ip netns exec "${NAT_ROUTER_NS[$r]}" nft list ruleset 2>&1
		ip netns exec "${NAT_ROUTER_NS[$r]}" conntrack -L 2>&1
	done
	if [ -n "$HUB_NS" ] && hub_iface_readable; then
		say "---- hub: wg show ----"
		ip netns exec "$HUB_NS" wg show "$HUB_IF" 2>&1
	fi
	for n in "${!CLIENT_IF[@]}"; do
		say "---- client $n (${NAT_TYPE[$n]:-}): wg show ----"
		ip netns exec "${CLIENT_NS[$n]}" wg show "${CLIENT_IF[$n]}" 2>&1
	done
}
