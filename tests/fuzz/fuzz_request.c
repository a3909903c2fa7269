// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The server's request parser, fed as a peer would: in reads of any size,
 * several messages back to back. See fuzz-proto.h.
 */

#include "fuzz-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_proto_one(WGD_PARSE_REQUEST, data, size);
	return 0;
}
