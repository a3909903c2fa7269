// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "key.h"

void wgkey_to_base64(char out[WG_KEY_B64_LEN], const uint8_t key[WG_KEY_LEN])
{
	sodium_bin2base64(out, WG_KEY_B64_LEN, key, WG_KEY_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
}

int wgkey_from_base64(uint8_t key[WG_KEY_LEN], const char *b64)
{
	size_t len = strlen(b64), out_len;

	if (len != WG_KEY_B64_LEN - 1 || b64[len - 1] != '=')
		return -EINVAL;
	if (sodium_base642bin(key, WG_KEY_LEN, b64, len, NULL, &out_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) ||
	    out_len != WG_KEY_LEN)
		return -EINVAL;
	return 0;
}

bool wgkey_is_zero(const uint8_t key[WG_KEY_LEN])
{
	return sodium_is_zero(key, WG_KEY_LEN);
}

static const char linklocal_label[] = "wg-dynamic link-local v1";

void wgkey_derive_linklocal(struct wgd_ip *out, const uint8_t pubkey[WG_KEY_LEN])
{
	crypto_generichash_state st;
	uint8_t iid[8];

	crypto_generichash_init(&st, NULL, 0, sizeof(iid));
	crypto_generichash_update(&st, (const uint8_t *)linklocal_label,
				  sizeof(linklocal_label) - 1);
	crypto_generichash_update(&st, pubkey, WG_KEY_LEN);
	crypto_generichash_final(&st, iid, sizeof(iid));

	memset(out, 0, sizeof(*out));
	out->family = AF_INET6;
	out->cidr = 128;
	out->bytes[0] = 0xfe;
	out->bytes[1] = 0x80;
	memcpy(out->bytes + 8, iid, sizeof(iid));
}
