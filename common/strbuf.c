// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "strbuf.h"

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = b->p ? vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap) :
			   vsnprintf(NULL, 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		/* Doubling what it takes, so that a long text costs a few
		 * reallocations, not one per line. */
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = !b->max || cap <= b->max ? realloc(b->p, cap) : NULL;

		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}
