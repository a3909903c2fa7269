/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_KEY_H
#define WGD_KEY_H

#include <stdbool.h>
#include <stdint.h>

#include "../protocol/ipaddr.h"

#define WG_KEY_LEN 32

/* Base64 of a 32-byte key: 44 characters and a NUL. */
#define WG_KEY_B64_LEN 45

void wgkey_to_base64(char out[WG_KEY_B64_LEN], const uint8_t key[WG_KEY_LEN]);
/* Accepts exactly 44 characters of standard padded base64; 0 or -EINVAL. */
int wgkey_from_base64(uint8_t key[WG_KEY_LEN], const char *b64);
bool wgkey_is_zero(const uint8_t key[WG_KEY_LEN]);

/*
 * The link-local /128 derived from a peer's public key: fe80::/64 followed
 * by the first 8 bytes of BLAKE2b-64("wg-dynamic link-local v1" || pubkey).
 * See docs/protocol.md.
 */
void wgkey_derive_linklocal(struct wgd_ip *out, const uint8_t pubkey[WG_KEY_LEN]);

#endif
