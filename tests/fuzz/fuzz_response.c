// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The client's response parser, which also reads the client's saved lease
 * file. See fuzz-proto.h.
 */

#include "fuzz-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_proto_one(WGD_PARSE_RESPONSE, data, size);
	return 0;
}
