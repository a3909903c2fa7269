// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/* wg-dynamic-server: fatal errors, each with its exit status. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "server.h"

/*
 * fatal() and fatalx() exit 1, a status the server promises for nothing:
 * these exit with the status docs/errors.md gives the case instead.
 */
void fatal_status(int status, const char *fmt, ...)
{
	int saved_errno = errno;
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", line, strerror(saved_errno));
	exit(status);
}

void fatalx_status(int status, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warnx("%s", line);
	exit(status);
}
