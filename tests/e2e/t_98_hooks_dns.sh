#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# The client's script, DNS, MTU and show. The server pushes DNS servers,
# search domains and an MTU; the client hands DNS to resolvconf (a stand-in
# here that records what it gets), sets the MTU, and runs its --script on
# every change of state with the documented environment. A script that
# hangs is killed at its time limit and never stalls the lease.

# shellcheck disable=SC2317
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

e2e_init t_98_hooks_dns
topology_create 1

mkdir -p "$E2E_TMP/bin"
cat >"$E2E_TMP/bin/resolvconf" <<RC
#!/bin/sh
echo "\$*" >>"$E2E_TMP/resolvconf.args"
cat >>"$E2E_TMP/resolvconf.input"
RC
HOOK_LOG=$E2E_TMP/hook.log
cat >"$E2E_TMP/hook" <<HOOK
#!/bin/sh
echo "\$reason|\$interface|\$new_ip4|\$new_ip6|\$old_ip4|\$routes|\$lease_time|\$dns|\$dns_search" >>"$HOOK_LOG"
# The second renewal hangs: it must be killed, and the lease go on.
if [ "\$reason" = RENEW ] && [ ! -e "$E2E_TMP/hung" ]; then
	touch "$E2E_TMP/hung"
	sleep 60
fi
HOOK
chmod +x "$E2E_TMP/bin/resolvconf" "$E2E_TMP/hook"

server_start --pool 10.98.0.0/24 --pool fd98::/64 --lease-time 10 --dns 192.0.2.53 \
	--dns fd98::53 --dns-search example.net,example.org --mtu 1380
PATH="$E2E_TMP/bin:$PATH" client_start 1 --script "$E2E_TMP/hook" --script-timeout 2
client_wait_lease 1 || die "client 1 got no lease"
a4=$(client_addr4 1)

renewals() {
	grep -c '^RENEW|' "$HOOK_LOG" 2>/dev/null
}
renewed_twice() {
	[ "$(renewals)" -ge 2 ]
}
check "the lease renews past a hanging script" wait_for -t 20 renewed_twice
check "the script saw BOUND with the lease" \
	grep -q "^BOUND|${CLIENT_IF[1]}|${a4%/32}|fd98:.*||10.98.0.0/24 fd98::/64|10|192.0.2.53 fd98::53|example.net,example.org\$" "$HOOK_LOG"
check "the hanging script was killed at its limit" \
	wait_for -t 5 grep -q "did not finish within 2s; killed it" "${CLIENT_LOG[1]}"
check "resolvconf got the interface's record" \
	grep -qx -- "-a ${CLIENT_IF[1]} -m 0 -x" "$E2E_TMP/resolvconf.args"
check "resolvconf got the servers and search domains" \
	grep -qx "search example.net example.org" "$E2E_TMP/resolvconf.input"
check "resolvconf got both name servers" \
	test "$(grep -c '^nameserver ' "$E2E_TMP/resolvconf.input")" -ge 2
check_eq "the pushed MTU is on the interface" 1380 \
	"$(cat "/sys/class/net/${CLIENT_IF[1]}/mtu" 2>/dev/null || ip netns exec "${CLIENT_NS[1]}" cat "/sys/class/net/${CLIENT_IF[1]}/mtu")"

shown=$(ip netns exec "${CLIENT_NS[1]}" "$CLIENT_BIN" show "${CLIENT_IF[1]}" \
	--state-dir "$E2E_TMP/client1-state")
say "$shown"
check "show: the client is running" grep -q "client: running" <<<"$shown"
check "show: the leased IPv4 address" grep -q "ipv4: ${a4%/32}\$" <<<"$shown"
check "show: the DNS search domains" grep -q "dns search: example.net,example.org" <<<"$shown"

client_stop 1 || fail "client 1 did not stop"
check "the script saw RELEASE" wait_for -t 5 grep -q "^RELEASE|" "$HOOK_LOG"
check "resolvconf was told to drop the record" \
	grep -qx -- "-d ${CLIENT_IF[1]} -f" "$E2E_TMP/resolvconf.args"
e2e_finish
