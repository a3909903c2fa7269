// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * The remembered lease, IFACE.lease in the state directory: the hub's
 * public key on the first line, then the lease in the protocol's response
 * format (docs/protocol.md), so that one parser reads both. A lease from
 * another hub is no hint for this one: a client moved to a new hub must not
 * ask it for the old hub's addresses.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../common/clock.h"
#include "../common/key.h"
#include "../common/log.h"
#include "client.h"

#define HUB_PREFIX "hub="

ssize_t leasefile_format(const struct lease_state *ls, const uint8_t hub_key[WG_KEY_LEN],
			 bool ended, char *buf, size_t size)
{
	char key[WG_KEY_B64_LEN];
	struct wgd_msg m;
	ssize_t len;
	int head;

	memset(&m, 0, sizeof(m));
	m.has_ip4 = ls->has_ip4;
	m.has_ip6 = ls->has_ip6;
	m.ip4 = ls->ip4;
	m.ip6 = ls->ip6;
	for (size_t i = 0; i < ls->n_routes && i < WGD_MAX_ROUTES; i++)
		m.routes[m.n_routes++] = ls->routes[i].dst;
	m.n_dns = ls->n_dns <= WGD_MAX_DNS ? ls->n_dns : WGD_MAX_DNS;
	memcpy(m.dns, ls->dns, m.n_dns * sizeof(m.dns[0]));
	memcpy(m.dns_search, ls->dns_search, sizeof(m.dns_search));
	m.has_leasestart = m.has_leasetime = true;
	m.leasestart = ls->leasestart;
	m.leasetime = ended ? 0 : ls->leasetime;
	m.has_errno = true;

	wgkey_to_base64(key, hub_key);
	head = snprintf(buf, size, HUB_PREFIX "%s\n", key);
	if (head < 0 || (size_t)head >= size)
		return -ENOSPC;
	len = wgd_serialize_response(&m, buf + head, size - (size_t)head);
	return len < 0 ? len : len + head;
}

int leasefile_parse(const char *buf, size_t len, const uint8_t *hub_key, uint8_t *hub_out,
		    struct wgd_msg *msg)
{
	const size_t pre = sizeof(HUB_PREFIX) - 1;
	char b64[WG_KEY_B64_LEN];
	uint8_t key[WG_KEY_LEN];
	struct wgd_parser *p;
	const char *nl;
	int ret;

	nl = memchr(buf, '\n', len);
	if (!nl || (size_t)(nl - buf) != pre + WG_KEY_B64_LEN - 1 || memcmp(buf, HUB_PREFIX, pre))
		return -EBADMSG;
	memcpy(b64, buf + pre, WG_KEY_B64_LEN - 1);
	b64[WG_KEY_B64_LEN - 1] = '\0';
	if (wgkey_from_base64(key, b64))
		return -EBADMSG;
	if (hub_out)
		memcpy(hub_out, key, WG_KEY_LEN);

	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	wgd_parser_init(p, WGD_PARSE_RESPONSE);
	len -= (size_t)(nl + 1 - buf);
	if (wgd_parse(p, nl + 1, len) != (ssize_t)len) {
		ret = -EBADMSG;
	} else if (hub_key && sodium_memcmp(key, hub_key, WG_KEY_LEN)) {
		ret = -ESTALE;
	} else {
		*msg = p->msg;
		ret = 0;
	}
	free(p);
	return ret;
}

void leasefile_save(struct client *cl, bool ended)
{
	char buf[WGD_MAX_MESSAGE + WG_KEY_B64_LEN + 8];
	ssize_t len = leasefile_format(&cl->lease, cl->hub_key, ended, buf, sizeof(buf));
	int ret;

	if (len < 0)
		return;
	ret = cl->sys->save(cl, buf, (size_t)len);
	if (ret)
		log_warnx("cannot save the lease in %s/%s: %s", cl->state_dir, cl->state_file,
			  strerror(-ret));
}

/*
 * After a restart or reboot: a lease still running is taken up again (and
 * renewed at once); an ended one says what to ask for (RFC 2131's
 * INIT-REBOOT).
 */
void leasefile_load(struct client *cl, uint32_t now_real_s, uint64_t now_ms)
{
	struct lease_state *ls = &cl->lease;
	char buf[WGD_MAX_MESSAGE + WG_KEY_B64_LEN + 8];
	char b4[WGD_IP_STRLEN] = "-", b6[WGD_IP_STRLEN] = "-";
	ssize_t len = cl->sys->load(cl, buf, sizeof(buf));
	struct wgd_msg *m;
	uint64_t end;
	int ret;

	if (len == -ENOENT)
		return;
	if (len < 0) {
		log_warnx("cannot read %s/%s: %s", cl->state_dir, cl->state_file,
			  strerror((int)-len));
		return;
	}
	m = malloc(sizeof(*m));
	if (!m)
		return;
	ret = leasefile_parse(buf, (size_t)len, cl->hub_key, NULL, m);
	if (ret == -ESTALE) {
		log_info("the remembered lease is another hub's; asking for any address");
		goto out;
	}
	if (ret) {
		log_warnx("%s/%s is not a saved lease; ignoring it", cl->state_dir,
			  cl->state_file);
		goto out;
	}
	cl->has_hint4 = m->has_ip4;
	cl->has_hint6 = m->has_ip6;
	cl->hint4 = m->ip4;
	cl->hint6 = m->ip6;
	if (cl->has_hint4)
		wgd_ip_format_addr(&cl->hint4, b4, sizeof(b4));
	if (cl->has_hint6)
		wgd_ip_format_addr(&cl->hint6, b6, sizeof(b6));

	end = (uint64_t)m->leasestart + m->leasetime;
	if (end > now_real_s && m->leasestart <= now_real_s && (m->has_ip4 || m->has_ip6)) {
		/* Renewed at once: the addresses and routes are only what the
		 * last run left, not yet checked against this run's device. */
		ls->bound = true;
		ls->has_ip4 = m->has_ip4;
		ls->has_ip6 = m->has_ip6;
		ls->ip4 = m->ip4;
		ls->ip6 = m->ip6;
		for (size_t i = 0; i < m->n_routes && i < WGD_MAX_ROUTES; i++)
			ls->routes[ls->n_routes++] = (struct client_route){ .dst = m->routes[i] };
		ls->leasestart = m->leasestart;
		ls->leasetime = m->leasetime;
		/* Renewed at once, whatever T1 was. T1 and T2 come half and an
		 * eighth of the lease before its end, and no earlier than now:
		 * the lease may have started before this boot. */
		uint64_t left_ms = (end - now_real_s) * 1000, lease_ms = (uint64_t)m->leasetime * 1000;

		ls->expires_ms = now_ms + left_ms;
		ls->t1_ms = now_ms + (left_ms > lease_ms / 2 ? left_ms - lease_ms / 2 : 0);
		ls->t2_ms = now_ms + (left_ms > lease_ms / 8 ? left_ms - lease_ms / 8 : 0);
		cl->state = now_ms >= ls->t2_ms ? CLIENT_REBINDING : CLIENT_RENEWING;
		cl->next_try_ms = now_ms;
		log_info("remembered lease: ip4 %s ip6 %s, %us left", b4, b6,
			 (unsigned)(end - now_real_s));
	} else {
		cl->state = cl->has_hint4 || cl->has_hint6 ? CLIENT_REBOOT : CLIENT_INIT;
		log_info("asking for the remembered addresses: ip4 %s ip6 %s", b4, b6);
	}
out:
	free(m);
}
