/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_STRBUF_H
#define WGD_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A text built piece by piece in memory that grows as needed: status
 * output, for show. Start it zeroed, with max set when the text must stay
 * under a size (0: no bound). A failure (out of memory, past max) sticks:
 * the rest is not written, and failed says so. Free p when done.
 */
struct strbuf {
	char *p;              /* NUL-terminated once anything was written */
	size_t len, cap, max;
	bool failed;
};

void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
