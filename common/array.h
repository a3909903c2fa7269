/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_ARRAY_H
#define WGD_ARRAY_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Makes room for one more element in *arr, an array of *cap elements of
 * size elem holding n: the capacity doubles, starting at min. 0 or -ENOMEM,
 * with the array untouched on failure.
 */
static inline int array_reserve(void *arr, size_t *cap, size_t n, size_t elem, size_t min)
{
	void **p = arr, *grown;
	size_t want;

	if (n < *cap)
		return 0;
	want = *cap ? *cap * 2 : min;
	if (want > SIZE_MAX / elem)
		return -ENOMEM;
	grown = realloc(*p, want * elem);
	if (!grown)
		return -ENOMEM;
	*p = grown;
	*cap = want;
	return 0;
}

#endif
