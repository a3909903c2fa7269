// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <string.h>

#include "ratelimit.h"

_Static_assert((RATELIMIT_SLOTS & (RATELIMIT_SLOTS - 1)) == 0 &&
	       RATELIMIT_SLOTS % RATELIMIT_WAYS == 0, "slots must split into buckets");

void ratelimit_init(struct ratelimit *rl, uint64_t interval_ms)
{
	memset(rl, 0, sizeof(*rl));
	rl->interval_ms = interval_ms;
	crypto_shorthash_keygen(rl->hash_key);
}

static uint64_t pair_tag(const struct ratelimit *rl, const void *key, size_t len, unsigned cause)
{
	uint8_t in[RATELIMIT_KEY_MAX + 1 + sizeof(uint32_t)] = { 0 };
	uint32_t c = cause;
	uint64_t h;

	if (len > RATELIMIT_KEY_MAX)
		len = RATELIMIT_KEY_MAX;
	if (len)
		memcpy(in, key, len);
	/* The length too, so that a key and its zero-padded extension differ. */
	in[RATELIMIT_KEY_MAX] = (uint8_t)len;
	memcpy(in + RATELIMIT_KEY_MAX + 1, &c, sizeof(c));
	crypto_shorthash((uint8_t *)&h, in, sizeof(in), rl->hash_key);
	/* 0 marks a free slot. */
	return h ? h : 1;
}

bool ratelimit_pass(struct ratelimit *rl, const void *key, size_t len, unsigned cause,
		    uint64_t now_ms, uint32_t *suppressed)
{
	uint64_t tag = pair_tag(rl, key, len, cause);
	size_t first = (size_t)(tag >> 32) % (RATELIMIT_SLOTS / RATELIMIT_WAYS) * RATELIMIT_WAYS;
	struct ratelimit_slot *s = NULL, *victim = &rl->slots[first];

	*suppressed = 0;
	for (size_t i = first; i < first + RATELIMIT_WAYS; i++) {
		if (rl->slots[i].tag == tag) {
			s = &rl->slots[i];
			break;
		}
		/* A free slot has until_ms 0, so it is taken first. */
		if (rl->slots[i].until_ms < victim->until_ms)
			victim = &rl->slots[i];
	}
	if (!s) {
		victim->tag = tag;
		victim->until_ms = now_ms + rl->interval_ms;
		victim->suppressed = 0;
		return true;
	}
	if (now_ms < s->until_ms) {
		if (s->suppressed < UINT32_MAX)
			s->suppressed++;
		return false;
	}
	*suppressed = s->suppressed;
	s->suppressed = 0;
	s->until_ms = now_ms + rl->interval_ms;
	return true;
}
