# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
#
# Network namespace helpers shared by the end-to-end tests and the demo.
# Source this file from bash, then call e2e_init.
#
# The topology is a star. A hub namespace is joined to each client namespace
# N (1..62) by a veth pair: 192.0.2.(4N+1)/30 on the hub side, .(4N+2)/30 on
# the client side. Every namespace runs its own wireguard-go. The hub's
# WireGuard interface carries fe80::/64, forwards IPv4 and IPv6 so clients
# reach each other through it, and has every client as a peer. Each client
# has the hub as its only peer, with allowed-IPs fe80::/128 and an endpoint.
#
# Every namespace and interface name carries a random run id. Namespaces
# share nothing, except /var/run/wireguard: wireguard-go puts its UAPI socket
# there from any namespace, so two interfaces must never share a name.
#
# The EXIT trap calls e2e_before_cleanup when the script defines one, stops
# the clients (so that they release while the server runs, even a server
# restarted after them), then by PID every other process started here,
# newest first (so the daemons go before the wireguard-go they use), deletes
# the namespaces and removes stale UAPI sockets. HUP, INT, PIPE and TERM
# lead to it too: Ctrl-C, timeout(1) or a closed pipe leave nothing behind.
# When a script fails, the trap first prints the hub's allowed-IPs, the
# clients' addresses and routes, and the daemons' logs.
#
# Knobs from the environment: E2E_KEEP=1 keeps the logs and keys directory;
# SERVER_BIN and CLIENT_BIN point at other daemon binaries, FAKEHUB_BIN at
# another build of the stand-in hub (tests/e2e/fakehub); WAIT_TIMEOUT is
# wait_for's default limit in seconds; WGD_E2E_ID forces the run id;
# KERNEL_WG=1 makes the WireGuard interfaces created from then on kernel ones
# (ip link add IF type wireguard) instead of wireguard-go, so the daemons
# take the generic netlink path (tests/kernel/ runs the tests that way).

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_TOP=$(cd "$E2E_DIR/../.." && pwd)
SERVER_BIN=${SERVER_BIN:-$E2E_TOP/server/wg-dynamic-server}
CLIENT_BIN=${CLIENT_BIN:-$E2E_TOP/client/wg-dynamic-client}
FAKEHUB_BIN=${FAKEHUB_BIN:-$E2E_DIR/fakehub}
WG_SOCK_DIR=/var/run/wireguard
HUB_PORT=51820
# Seconds wait_for waits unless told otherwise.
WAIT_TIMEOUT=${WAIT_TIMEOUT:-10}
# Read by wg_iface_start at each call, so a test may switch it in between.
KERNEL_WG=${KERNEL_WG:-0}

E2E_NAME=
E2E_ID=
E2E_TMP=
E2E_FAILS=0
E2E_CHECKS=0

# What the trap tears down, in the order things were started.
E2E_PIDS=()
E2E_NETNS=()
E2E_WG_IFS=()

HUB_NS=
HUB_IF=
HUB_PUB=
# The hub's wireguard-go, for tests that delete and recreate the interface;
# empty when the hub's interface is a kernel one.
HUB_WG_PID=
SERVER_PID=
SERVER_LOG=
# The stand-in hub, when a test runs it instead of the server: its scripts
# directory and its log of requests (see fakehub_start).
FAKEHUB_PID=
FAKEHUB_DIR=
FAKEHUB_LOG=
# Indexed by client number.
CLIENT_NS=()
CLIENT_IF=()
CLIENT_PUB=()
CLIENT_LL=()
CLIENT_PID=()
CLIENT_LOG=()

# ---- reporting ----

say() {
	printf '%s\n' "$*"
}

pass() {
	E2E_CHECKS=$((E2E_CHECKS + 1))
	printf '  ok    %s\n' "$*"
}

fail() {
	E2E_CHECKS=$((E2E_CHECKS + 1))
	E2E_FAILS=$((E2E_FAILS + 1))
	printf '  FAIL  %s\n' "$*"
}

# check DESCRIPTION CMD...: passes when CMD succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then
		pass "$desc"
	else
		fail "$desc"
	fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1: expected '$2', got '$3'"
	fi
}

# A setup step failed: nothing after it can be tested.
die() {
	E2E_FAILS=$((E2E_FAILS + 1))
	printf '  FAIL  %s\n' "$*"
	exit 1
}

# Ends the test: exit status 0 when every check passed.
e2e_finish() {
	if [ "$E2E_FAILS" -eq 0 ]; then
		say "$E2E_NAME: all $E2E_CHECKS checks passed"
		exit 0
	fi
	say "$E2E_NAME: $E2E_FAILS of $E2E_CHECKS checks failed"
	exit 1
}

# ---- set-up and tear-down ----

# e2e_init NAME: checks the environment, picks the run id, sets the trap.
e2e_init() {
	local tool

	E2E_NAME=$1
	[ "$(id -u)" -eq 0 ] || { say "$E2E_NAME: must run as root (network namespaces)"; exit 1; }
	for tool in ip wg wireguard-go ping ss b2sum base64; do
		command -v "$tool" >/dev/null 2>&1 ||
			{ say "$E2E_NAME: '$tool' is missing (run: make deps)"; exit 1; }
	done
	[ -c /dev/net/tun ] || { say "$E2E_NAME: /dev/net/tun is missing; wireguard-go needs it"; exit 1; }

	# Six hex digits, so that names stay within IFNAMSIZ: "wgd" + id + "c62".
	# run.sh picks the id to look for leftovers afterwards.
	E2E_ID=${WGD_E2E_ID:-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}
	case $E2E_ID in
	[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) ;;
	*) say "$E2E_NAME: the run id must be six lowercase hex digits"; exit 1 ;;
	esac
	E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/wgd-e2e.XXXXXX") || exit 1
	trap e2e_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 141' PIPE
	trap 'exit 143' TERM
}

# Whether PID is a live process started by this shell. Checking the parent
# keeps a recycled PID from being signalled by mistake.
own_child_alive() {
	local stat
	local -a f
	[ -n "$1" ] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# The fields after the command name start with the state and the ppid.
	read -r -a f <<<"${stat##*) }"
	[ "${f[0]}" != Z ] && [ "${f[1]}" = "$$" ]
}

# pid_alive PID: the same, under the name the tests read best.
pid_alive() {
	own_child_alive "$1"
}

# pid_descendants PID: the PIDs of PID's children, theirs, and so on.
pid_descendants() {
	local child
	pgrep -P "$1" | while read -r child; do
		printf '%s\n' "$child"
		pid_descendants "$child"
	done
}

# pid_gone PID: whether PID has exited (a zombie has), whoever its parent.
pid_gone() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$(cut -d' ' -f1 <<<"${stat##*) }")" = Z ]
}

# kill_pid PID: SIGKILL, for a crash that leaves no time to clean up, then
# reaps the process.
kill_pid() {
	own_child_alive "$1" || return 0
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 3).
stop_pid() {
	local pid=$1 end=$((SECONDS + ${2:-3}))

	own_child_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	while own_child_alive "$pid" && [ "$SECONDS" -lt "$end" ]; do
		sleep 0.1
	done
	if own_child_alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

e2e_dump_logs() {
	local f

	[ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ] || return 0
	for f in "$E2E_TMP"/*.log; do
		[ -s "$f" ] || continue
		say "---- ${f##*/} (last 40 lines) ----"
		tail -n 40 "$f"
	done
}

# Whether the hub's interface is there for wg(8) to read: wireguard-go's by
# its UAPI socket, a kernel one by its link.
hub_iface_readable() {
	if [ -n "$HUB_WG_PID" ]; then
		[ -S "$WG_SOCK_DIR/$HUB_IF.sock" ]
	else
		ip -n "$HUB_NS" link show dev "$HUB_IF" >/dev/null 2>&1
	fi
}

e2e_dump_state() {
	local n

	if [ -n "$HUB_NS" ] && hub_iface_readable; then
		say "---- hub allowed-ips ----"
		hub_allowed_ips 2>&1
	fi
	for n in "${!CLIENT_NS[@]}"; do
		say "---- client $n addresses and routes ----"
		ip -n "${CLIENT_NS[$n]}" -br addr show 2>&1
		ip -n "${CLIENT_NS[$n]}" -4 route show 2>&1
		ip -n "${CLIENT_NS[$n]}" -6 route show 2>&1
	done
}

e2e_cleanup() {
	local rc=$? i ns ifname
	local -a clients

	# Finish the teardown whatever happens: a second Ctrl-C, or output
	# into a pipe whose reader is gone (make demo | head).
	trap - EXIT
	trap '' HUP INT PIPE TERM
	set +e
	if declare -F e2e_before_cleanup >/dev/null; then
		e2e_before_cleanup
	fi
	# Ctrl-C (130) needs no diagnosis.
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ]; then
		e2e_dump_state
		e2e_dump_logs
	fi
	# Clients first, so that they release while the server still runs,
	# even one restarted after them. Then the rest in reverse order:
	# daemons were started after the wireguard-go they use.
	clients=("${!CLIENT_PID[@]}")
	for ((i = ${#clients[@]} - 1; i >= 0; i--)); do
		stop_pid "${CLIENT_PID[${clients[$i]}]}"
	done
	for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${E2E_PIDS[$i]}"
	done
	for ns in "${E2E_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	for ifname in "${E2E_WG_IFS[@]}"; do
		# A server killed outright leaves its control socket behind too.
		rm -f "$WG_SOCK_DIR/$ifname.sock" "/run/wg-dynamic/$ifname.sock"
	done
	if [ -n "$E2E_TMP" ] && [ "${E2E_KEEP:-0}" = 1 ]; then
		say "logs kept in $E2E_TMP"
	elif [ -n "$E2E_TMP" ]; then
		rm -rf "$E2E_TMP"
	fi
	exit "$rc"
}

# ---- waiting ----

# wait_for [-t SECONDS] CMD...: runs CMD every 0.1 s until it succeeds;
# fails after SECONDS (default $WAIT_TIMEOUT).
wait_for() {
	local timeout=$WAIT_TIMEOUT end
	if [ "$1" = -t ]; then
		timeout=$2
		shift 2
	fi
	end=$((SECONDS + timeout))
	while :; do
		"$@" && return 0
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# Negates a command, for wait_for and check: not pid_alive 1234.
not() {
	! "$@"
}

# ---- namespaces and WireGuard ----

netns_add() {
	E2E_NETNS+=("$1")
	ip netns add "$1" || die "cannot create namespace $1"
	ip -n "$1" link set lo up
}

# wg_key NAME VAR: writes the private key NAME.key, its public key into VAR.
wg_key() {
	local wg_key_pub
	(umask 077 && wg genkey >"$E2E_TMP/$1.key") || die "wg genkey failed"
	wg_key_pub=$(wg pubkey <"$E2E_TMP/$1.key") || die "wg pubkey failed"
	printf -v "$2" '%s' "$wg_key_pub"
}

# wg_iface_start NS IFACE [no-ll]: starts wireguard-go for IFACE in NS and
# waits for its UAPI socket; WG_IFACE_PID is its PID. With KERNEL_WG=1 it
# creates a kernel WireGuard interface instead, and WG_IFACE_PID is empty.
# With no-ll, the kernel is told not to give the interface an automatic
# link-local address. The interface stays down.
WG_IFACE_PID=
wg_iface_start() {
	local ns=$1 ifname=$2

	[ "${#ifname}" -le 15 ] || die "interface name $ifname is too long"
	[ ! -e "$WG_SOCK_DIR/$ifname.sock" ] || die "$WG_SOCK_DIR/$ifname.sock already exists"
	if [ "$KERNEL_WG" = 1 ]; then
		WG_IFACE_PID=
		ip -n "$ns" link add "$ifname" type wireguard ||
			die "cannot create kernel WireGuard interface $ifname in $ns"
		wg_iface_no_ll "$ns" "$ifname" "${3:-}"
		return
	fi
	E2E_WG_IFS+=("$ifname")
	# The PID of ip(8) is wireguard-go's: ip netns exec execs the command.
	# WG_PROCESS_FOREGROUND=1 silences its banner about kernel WireGuard.
	LOG_LEVEL=error WG_PROCESS_FOREGROUND=1 ip netns exec "$ns" wireguard-go -f "$ifname" \
		>>"$E2E_TMP/wireguard-go-$ifname.log" 2>&1 &
	WG_IFACE_PID=$!
	E2E_PIDS+=("$!")
	wait_for -t 5 test -S "$WG_SOCK_DIR/$ifname.sock" ||
		die "wireguard-go did not create $WG_SOCK_DIR/$ifname.sock"
	wait_for -t 5 ip -n "$ns" link show dev "$ifname" >/dev/null 2>&1 ||
		die "wireguard-go did not create $ifname in $ns"
	wg_iface_no_ll "$ns" "$ifname" "${3:-}"
}

# wg_iface_no_ll NS IFACE MODE: with MODE no-ll, no automatic link-local.
wg_iface_no_ll() {
	if [ "$3" = no-ll ]; then
		ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.addr_gen_mode=1" ||
			die "cannot turn off link-local address generation on $2"
	fi
}

# hub_create: the hub namespace and its WireGuard interface, with fe80::/64
# and forwarding on. The server is not started.
hub_create() {
	HUB_NS=wgd-$E2E_ID-hub
	HUB_IF=wgd${E2E_ID}h
	netns_add "$HUB_NS"
	# Forwarding goes on before the interface exists, so the interface
	# inherits it, as on a real hub; the server turns it off there alone.
	ip netns exec "$HUB_NS" sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 net.ipv4.conf.all.send_redirects=0 >/dev/null ||
		die "cannot turn on forwarding in $HUB_NS"
	wg_key hub HUB_PUB
	hub_iface_up
}

# hub_iface_up: starts the hub's wireguard-go and gives the interface the
# hub's key, its listen port and fe80::/64, then brings it up. No peers.
hub_iface_up() {
	wg_iface_start "$HUB_NS" "$HUB_IF"
	HUB_WG_PID=$WG_IFACE_PID
	ip netns exec "$HUB_NS" wg set "$HUB_IF" private-key "$E2E_TMP/hub.key" \
		listen-port "$HUB_PORT" || die "cannot configure $HUB_IF"
	ip -n "$HUB_NS" addr add fe80::/64 dev "$HUB_IF" || die "cannot add fe80::/64 to $HUB_IF"
	ip -n "$HUB_NS" link set "$HUB_IF" up || die "cannot bring $HUB_IF up"
}

# hub_iface_delete: stops the hub's wireguard-go, which deletes the
# interface, its peers and its UAPI socket; a kernel interface is deleted.
# hub_iface_up makes it again.
hub_iface_delete() {
	if [ -z "$HUB_WG_PID" ]; then
		ip -n "$HUB_NS" link del "$HUB_IF" || die "cannot delete $HUB_IF"
	fi
	stop_pid "$HUB_WG_PID"
	wait_for -t 5 not ip -n "$HUB_NS" link show dev "$HUB_IF" >/dev/null 2>&1 ||
		die "$HUB_IF still exists after its wireguard-go stopped"
	rm -f "$WG_SOCK_DIR/$HUB_IF.sock"
}

# hub_route CIDR...: routes CIDR into the hub's WireGuard interface, so the
# hub relays traffic between clients leased from it.
hub_route() {
	local cidr
	for cidr in "$@"; do
		ip -n "$HUB_NS" route add "$cidr" dev "$HUB_IF" || die "cannot route $cidr on the hub"
	done
}

# client_create N [static|none]: client namespace N, its veth to the hub, its
# WireGuard interface with the hub as peer, and its peer entry on the hub.
#   static (default): the client has fe80::1:N/128, which is the peer's
#       allowed-IP on the hub;
#   none: the client has no link-local address at all (not even the
#       kernel's automatic one) and its peer on the hub no allowed-IPs.
client_create() {
	local n=$1 mode=${2:-static} ns ifname hub_ip cl_ip pub

	if [ "$n" -lt 1 ] || [ "$n" -gt 62 ]; then
		die "client number $n is out of range"
	fi
	ns=wgd-$E2E_ID-c$n
	ifname=wgd${E2E_ID}c$n
	hub_ip=192.0.2.$((4 * n + 1))
	cl_ip=192.0.2.$((4 * n + 2))
	CLIENT_NS[n]=$ns
	CLIENT_IF[n]=$ifname
	netns_add "$ns"

	ip -n "$HUB_NS" link add "veth${E2E_ID}h$n" type veth \
		peer name "veth${E2E_ID}c$n" netns "$ns" || die "cannot create the veth pair of client $n"
	ip -n "$HUB_NS" addr add "$hub_ip/30" dev "veth${E2E_ID}h$n"
	ip -n "$HUB_NS" link set "veth${E2E_ID}h$n" up
	ip -n "$ns" addr add "$cl_ip/30" dev "veth${E2E_ID}c$n"
	ip -n "$ns" link set "veth${E2E_ID}c$n" up

	case $mode in
	static) wg_iface_start "$ns" "$ifname" ;;
	none) wg_iface_start "$ns" "$ifname" no-ll ;;
	*) die "client_create: unknown mode $mode" ;;
	esac
	wg_key "client$n" pub
	CLIENT_PUB[n]=$pub
	ip netns exec "$ns" wg set "$ifname" private-key "$E2E_TMP/client$n.key" \
		peer "$HUB_PUB" allowed-ips fe80::/128 endpoint "$hub_ip:$HUB_PORT" ||
		die "cannot configure $ifname"
	if [ "$mode" = static ]; then
		CLIENT_LL[n]=fe80::1:$n
		ip -n "$ns" addr add "fe80::1:$n/128" dev "$ifname" nodad ||
			die "cannot add fe80::1:$n/128 to $ifname"
		ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "$pub" allowed-ips "fe80::1:$n/128"
	else
		# shellcheck disable=SC2034 # read by the tests
		CLIENT_LL[n]=
		ip netns exec "$HUB_NS" wg set "$HUB_IF" peer "$pub"
	fi || die "cannot add client $n as a peer of the hub"
	ip -n "$ns" link set "$ifname" up || die "cannot bring $ifname up"
}

# client_route_hub N: the route to the hub's fe80:: that wg-dynamic-client
# adds at start, for tests that speak for client N without it. A kernel
# WireGuard interface has none of its own; wireguard-go's fe80::/64 is
# still there, and the longer route changes nothing.
client_route_hub() {
	ip -n "${CLIENT_NS[$1]}" -6 route replace fe80::/128 dev "${CLIENT_IF[$1]}" ||
		die "cannot route fe80::/128 on ${CLIENT_IF[$1]}"
}

# topology_create N: the hub and clients 1..N, all in the default mode.
topology_create() {
	local n
	hub_create
	for ((n = 1; n <= $1; n++)); do
		client_create "$n"
	done
}

# ---- the daemons ----

server_listening() {
	pid_alive "$SERVER_PID" &&
		ip netns exec "$HUB_NS" ss -Hltn 'sport = :970' 2>/dev/null | grep -q .
}

# server_ready MARK: listening, and done starting up: the port is bound
# before the journal is read, the "serving" line comes after.
server_ready() {
	server_listening && log_since "$SERVER_LOG" "$1" | grep -q '^serving '
}

# server_start [OPTION...]: runs wg-dynamic-server -v OPTION... on the hub
# and waits until it is ready to serve.
server_start() {
	local mark

	SERVER_LOG=$E2E_TMP/server.log
	[ -x "$SERVER_BIN" ] || die "$SERVER_BIN is missing: run make"
	mark=$(log_mark "$SERVER_LOG")
	ip netns exec "$HUB_NS" "$SERVER_BIN" -v --state-dir "$E2E_TMP/hub-state" "$@" "$HUB_IF" \
		>>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	E2E_PIDS+=("$SERVER_PID")
	wait_for -t 10 server_ready "$mark" || die "wg-dynamic-server is not serving on port 970"
}

# server_wait_exit [SECONDS]: waits for the server to exit; returns its exit
# status, or 124 when it still runs after SECONDS (default 5).
server_wait_exit() {
	wait_for -t "${1:-5}" not own_child_alive "$SERVER_PID" || return 124
	wait "$SERVER_PID"
}

# server_stop [SECONDS]: SIGTERM to the server; returns as server_wait_exit.
server_stop() {
	own_child_alive "$SERVER_PID" && kill -TERM "$SERVER_PID"
	server_wait_exit "${1:-5}"
}

# server_run [-t SECONDS] [OPTION...]: runs the server as server_start does,
# for a start that is meant to fail: does not wait for it to listen, but for
# it to exit, and returns as server_wait_exit (SECONDS default 10).
server_run() {
	local limit=10
	if [ "${1:-}" = -t ]; then
		limit=$2
		shift 2
	fi
	SERVER_LOG=$E2E_TMP/server.log
	[ -x "$SERVER_BIN" ] || die "$SERVER_BIN is missing: run make"
	ip netns exec "$HUB_NS" "$SERVER_BIN" -v --state-dir "$E2E_TMP/hub-state" "$@" "$HUB_IF" \
		>>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	E2E_PIDS+=("$SERVER_PID")
	server_wait_exit "$limit"
}

# The server's lease journal, in the engine's directory inside the state
# directory server_start gives it.
hub_journal() {
	printf '%s\n' "$E2E_TMP/hub-state/server/$HUB_IF.leases"
}

# client_start N [OPTION...]: runs wg-dynamic-client -f -v OPTION... in
# client namespace N, in the background.
client_start() {
	local n=$1
	shift
	[ -x "$CLIENT_BIN" ] || die "$CLIENT_BIN is missing: run make"
	CLIENT_LOG[n]=$E2E_TMP/client$n.log
	ip netns exec "${CLIENT_NS[$n]}" "$CLIENT_BIN" -f -v --state-dir "$E2E_TMP/client$n-state" \
		"$@" "${CLIENT_IF[$n]}" >>"${CLIENT_LOG[$n]}" 2>&1 &
	CLIENT_PID[n]=$!
	E2E_PIDS+=("$!")
}

# client_stop N [SECONDS]: SIGTERM to client N; returns its exit status, or
# 124 when it is still running after SECONDS (default 5).
client_stop() {
	local pid=${CLIENT_PID[$1]}

	own_child_alive "$pid" && kill -TERM "$pid"
	wait_for -t "${2:-5}" not own_child_alive "$pid" || return 124
	wait "$pid"
}

# client_kill N: SIGKILL to client N, which then cannot release its lease.
client_kill() {
	kill_pid "${CLIENT_PID[$1]}"
}

# ---- the stand-in hub ----

# fakehub_start: runs tests/e2e/fakehub on the hub's interface instead of
# the server, and waits until it listens on port 970. It answers each
# request with the script fakehub_set last wrote, and logs every request
# to $FAKEHUB_LOG, one line each: "MS ADDR TAG ACTION SENT REQUEST" (see
# fakehub.c).
fakehub_start() {
	FAKEHUB_DIR=$E2E_TMP/fakehub
	FAKEHUB_LOG=$E2E_TMP/fakehub.requests
	[ -x "$FAKEHUB_BIN" ] || die "$FAKEHUB_BIN is missing: run make e2e"
	mkdir -p "$FAKEHUB_DIR" || die "cannot create $FAKEHUB_DIR"
	: >>"$FAKEHUB_LOG"
	ip netns exec "$HUB_NS" "$FAKEHUB_BIN" "$HUB_IF" "$FAKEHUB_DIR" \
		>>"$FAKEHUB_LOG" 2>>"$E2E_TMP/fakehub.log" &
	FAKEHUB_PID=$!
	E2E_PIDS+=("$FAKEHUB_PID")
	wait_for -t 10 fakehub_listening || die "fakehub is not listening on port 970"
}

fakehub_listening() {
	pid_alive "$FAKEHUB_PID" &&
		ip netns exec "$HUB_NS" ss -Hltn 'sport = :970' 2>/dev/null | grep -q .
}

# fakehub_set WHO DIRECTIVE BODY: what the stand-in hub does with the next
# requests of WHO, a client number, or "default" for every client without
# a script of its own. DIRECTIVE is the script's first line ("answer TAG",
# "slow MS TAG", "hold N TAG", "cut N TAG", "close TAG" or "reset TAG");
# BODY is the response, with printf %b escapes (\n, \r, \x1b, and \00
# for a NUL byte). The file is renamed into place, so that a connection
# never reads half of it.
fakehub_set() {
	local name=$1
	[ "$name" = default ] || name=${CLIENT_LL[$1]}
	if ! { printf '%s\n' "$2"; printf '%b' "$3"; } >"$FAKEHUB_DIR/.new" ||
		! mv -f "$FAKEHUB_DIR/.new" "$FAKEHUB_DIR/$name"; then
		die "cannot write the fakehub script"
	fi
}

# fakehub_requests MARK [N [TAG]]: the request log lines after MARK (a
# log_mark of $FAKEHUB_LOG), of client N and answered with TAG when given.
fakehub_requests() {
	local addr=
	[ -n "${2:-}" ] && addr=${CLIENT_LL[$2]}
	log_since "$FAKEHUB_LOG" "$1" |
		awk -v a="$addr" -v t="${3:-}" '(a == "" || $2 == a) && (t == "" || $3 == t)'
}

# fakehub_count MARK [N [TAG]]: how many of those there are.
fakehub_count() {
	fakehub_requests "$@" | wc -l
}

# ---- reading state ----

# Daemon logs are appended to across restarts. log_mark FILE: the lines
# FILE has now; log_since FILE MARK: the lines it gained after that mark.
log_mark() {
	if [ -f "$1" ]; then
		wc -l <"$1"
	else
		echo 0
	fi
}

log_since() {
	tail -n "+$(($2 + 1))" "$1" 2>/dev/null
}

# The brief address list of client N's WireGuard interface.
client_addrs() {
	ip -n "${CLIENT_NS[$1]}" -br addr show dev "${CLIENT_IF[$1]}"
}

# client_addr4 N / client_addr6 N: the leased address with its prefix length
# (10.99.0.7/32), or nothing. Link-local addresses are not leases.
client_addr4() {
	ip -n "${CLIENT_NS[$1]}" -o -4 addr show dev "${CLIENT_IF[$1]}" 2>/dev/null |
		awk '{ print $4; exit }'
}

client_addr6() {
	ip -n "${CLIENT_NS[$1]}" -o -6 addr show dev "${CLIENT_IF[$1]}" scope global 2>/dev/null |
		awk '{ print $4; exit }'
}

client_has_lease() {
	[ -n "$(client_addr4 "$1")" ] && [ -n "$(client_addr6 "$1")" ]
}

# client_wait_lease N [SECONDS]: waits until client N has both addresses.
client_wait_lease() {
	wait_for -t "${2:-15}" client_has_lease "$1"
}

hub_allowed_ips() {
	ip netns exec "$HUB_NS" wg show "$HUB_IF" allowed-ips
}

# The allowed-IPs of client N's peer on the hub, one a line.
hub_peer_allowed_ips() {
	hub_allowed_ips | awk -v key="${CLIENT_PUB[$1]}" \
		'$1 == key { for (i = 2; i <= NF; i++) if ($i != "(none)") print $i }'
}

# hub_peer_has N CIDR...: whether client N's peer on the hub has every CIDR.
hub_peer_has() {
	local list cidr
	list=$(hub_peer_allowed_ips "$1")
	shift
	for cidr in "$@"; do
		grep -qxF "$cidr" <<<"$list" || return 1
	done
}

# client_hub_allowed_ips N: the hub peer's allowed-IPs on client N.
client_hub_allowed_ips() {
	ip netns exec "${CLIENT_NS[$1]}" wg show "${CLIENT_IF[$1]}" allowed-ips |
		awk '{ for (i = 2; i <= NF; i++) if ($i != "(none)") print $i }'
}

# client_hub_peer_has N CIDR: whether the hub peer on client N has CIDR.
client_hub_peer_has() {
	client_hub_allowed_ips "$1" | grep -qxF "$2"
}

# client_has_route N CIDR: whether client N routes CIDR into its interface.
client_has_route() {
	local family=-4
	case $2 in *:*) family=-6 ;; esac
	ip -n "${CLIENT_NS[$1]}" "$family" route show "$2" dev "${CLIENT_IF[$1]}" 2>/dev/null |
		grep -q .
}

# ping_from N ADDRESS: client N pings ADDRESS; succeeds on any reply. The
# first packet may wait for a handshake, hence several.
ping_from() {
	ip netns exec "${CLIENT_NS[$1]}" ping -n -q -c 3 -i 0.2 -W 2 "$2" >/dev/null 2>&1
}

# ---- addresses ----

# ip6_expand ADDR[/LEN]: the address in full, eight four-digit groups, so
# that two spellings compare equal.
ip6_expand() {
	local addr=${1%%/*} head tail i missing g
	local -a h=() t=() groups=()

	case $addr in
	*::*) head=${addr%%::*} tail=${addr#*::} ;;
	*) head=$addr tail= ;;
	esac
	[ -n "$head" ] && IFS=: read -ra h <<<"$head"
	[ -n "$tail" ] && IFS=: read -ra t <<<"$tail"
	missing=$((8 - ${#h[@]} - ${#t[@]}))
	groups=("${h[@]}")
	for ((i = 0; i < missing; i++)); do
		groups+=(0)
	done
	groups+=("${t[@]}")
	for ((i = 0; i < 8; i++)); do
		g=${groups[$i]}
		printf '%04x' "$((16#$g))"
		[ "$i" -lt 7 ] && printf ':'
	done
	printf '\n'
}

# derived_ll PUBKEY: the link-local address derived from a public key, fully
# expanded: fe80::/64 and the first 8 bytes of
# BLAKE2b-64("wg-dynamic link-local v1" || key). Computed here apart from
# the C code, so that a test can catch a wrong derivation.
derived_ll() {
	local hex
	hex=$({ printf 'wg-dynamic link-local v1'; printf '%s' "$1" | base64 -d; } |
		b2sum -l 64 | cut -d' ' -f1)
	printf 'fe80:0000:0000:0000:%s:%s:%s:%s\n' \
		"${hex:0:4}" "${hex:4:4}" "${hex:8:4}" "${hex:12:4}"
}

# in_prefix4 ADDR PREFIX/LEN: whether an IPv4 address lies in a prefix.
in_prefix4() {
	local a=${1%%/*} p=${2%%/*} len=${2##*/} ai pi mask
	ai=$(ip4_to_int "$a") pi=$(ip4_to_int "$p")
	mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
	[ $((ai & mask)) -eq $((pi & mask)) ]
}

ip4_to_int() {
	local IFS=. o1 o2 o3 o4
	read -r o1 o2 o3 o4 <<<"$1"
	printf '%d\n' "$(((o1 << 24) | (o2 << 16) | (o3 << 8) | o4))"
}

# host4_in ADDR/32 PREFIX/LEN: a host address inside a prefix.
host4_in() {
	[ "${1#*/}" = 32 ] && in_prefix4 "$1" "$2"
}

# host6_in ADDR/128 PREFIX/64
host6_in() {
	[ "${1#*/}" = 128 ] && in_prefix6_64 "$1" "$2"
}

# in_prefix6_64 ADDR PREFIX: whether an IPv6 address lies in a /64.
in_prefix6_64() {
	local a p
	a=$(ip6_expand "$1") p=$(ip6_expand "$2")
	[ "${a:0:19}" = "${p:0:19}" ]
}
