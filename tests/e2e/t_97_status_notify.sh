#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Status and readiness. Both daemons tell a service manager READY=1 over
# $NOTIFY_SOCKET (a socket this test owns); the server answers
# `wg-dynamic-server show IFACE` as a table, as JSON and as Prometheus text,
# with every lease, the pools and the counters; the control socket is
# root's alone.

# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NOTIFY_RECV=$E2E_DIR/notify-recv
[ -x "$NOTIFY_RECV" ] || die "$NOTIFY_RECV is missing: run make"

e2e_init t_97_status_notify
topology_create 2

# notify_start NAME: a receiver at $E2E_TMP/NAME.notify, printing to NAME.out.
notify_start() {
	"$NOTIFY_RECV" "$E2E_TMP/$1.notify" 20 >"$E2E_TMP/$1.out" &
	E2E_PIDS+=("$!")
	wait_for -t 5 test -S "$E2E_TMP/$1.notify" || die "no notify socket for $1"
}

notify_start server
NOTIFY_SOCKET=$E2E_TMP/server.notify server_start --pool 10.97.0.0/24 --pool fd97::/64
check "the server says READY=1" wait_for -t 10 grep -q '^READY=1' "$E2E_TMP/server.out"

notify_start client
NOTIFY_SOCKET=$E2E_TMP/client.notify client_start 1
check "the client says READY=1" wait_for -t 10 grep -q '^READY=1' "$E2E_TMP/client.out"
client_start 2
client_wait_lease 1 || die "client 1 got no lease"
client_wait_lease 2 || die "client 2 got no lease"
a1=$(client_addr4 1)
a1=${a1%/32}

show() {
	ip netns exec "$HUB_NS" "$SERVER_BIN" show "$HUB_IF" "$@"
}
table=$(show) || die "show failed"
say "$(head -n 8 <<<"$table")"
check "table: interface line" grep -q "^interface: $HUB_IF" <<<"$table"
check "table: client 1's peer" grep -q "^peer: ${CLIENT_PUB[1]}" <<<"$table"
check "table: client 1's IPv4 lease" grep -q "ipv4: $a1\$" <<<"$table"
check "table: the endpoint the hub sees" grep -q "endpoint: 192.0.2.6:" <<<"$table"
check "table: the pool and its free count" grep -q "pool: 10.97.0.0/24 (254 addresses, 252 free)" <<<"$table"
check "table: two grants counted" grep -q "grants 2 " <<<"$table"

json=$(show --json) || die "show --json failed"
if command -v python3 >/dev/null 2>&1; then
	check "json: valid, two leases, client 1's address" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
leases = {l["peer"]: l for l in d["leases"]}
assert len(leases) == 2
l = leases[sys.argv[2]]
assert l["ipv4"] == sys.argv[3] and l["link_local"] == "fe80::1:1"
assert 0 < l["time_left"] <= 3600 and l["endpoint"].startswith("192.0.2.6:")
assert d["counters"]["grants"] == 2
' "$json" "${CLIENT_PUB[1]}" "$a1"
else
	check "json: client 1's address" grep -q "\"ipv4\": \"$a1\"" <<<"$json"
fi

prom=$(show --prometheus) || die "show --prometheus failed"
check "prometheus: leases gauge" grep -qx "wg_dynamic_leases{interface=\"$HUB_IF\"} 2" <<<"$prom"
check "prometheus: grants counter" grep -qx "wg_dynamic_grants_total{interface=\"$HUB_IF\"} 2" <<<"$prom"
check "prometheus: every sample line is well formed" not grep -vE \
	'^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+\{[^}]*\} [0-9]+)$' <<<"$prom"

sock=/run/wg-dynamic/$HUB_IF.sock
check_eq "the control socket is root's alone" "srw------- root" "$(stat -c '%A %U' "$sock")"
# The socket lives in the file system, so no namespace is needed to reach it.
check "root can query it from anywhere" "$SERVER_BIN" show "$HUB_IF" --json
check "nobody cannot" not setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$SERVER_BIN" show "$HUB_IF"
e2e_finish
