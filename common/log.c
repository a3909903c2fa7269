// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static const char *log_ident = "wg-dynamic";
static bool log_to_syslog;
static int log_verbose;

void log_init(const char *ident, bool to_syslog, int verbose)
{
	log_ident = ident;
	log_verbose = verbose;
	log_set_syslog(to_syslog);
}

void log_set_syslog(bool to_syslog)
{
	if (to_syslog && !log_to_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_to_syslog = to_syslog;
}

int log_verbosity(void)
{
	return log_verbose;
}

static void (*log_sink)(const char *line, size_t len);

void log_set_sink(void (*sink)(const char *line, size_t len))
{
	log_sink = sink;
}

__attribute__((format(printf, 2, 0)))
static void vlog(int pri, const char *fmt, va_list ap)
{
	if (log_sink) {
		char text[1024];
		int len = vsnprintf(text, sizeof(text), fmt, ap);

		if (len >= 0)
			log_sink(text, (size_t)len < sizeof(text) ? (size_t)len : sizeof(text) - 1);
		return;
	}
	if (log_to_syslog) {
		vsyslog(pri, fmt, ap);
		return;
	}
	/* One write a line: stderr is unbuffered, and a daemon logs a line
	 * per grant. */
	char line[1024];
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* cut, as syslog would */
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
	fflush(stderr);
}

__attribute__((format(printf, 3, 0)))
static void vlog_errno(int pri, int saved_errno, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_sink) {
		char line[1200];
		int len = snprintf(line, sizeof(line), "%s: %s", msg, strerror(saved_errno));

		if (len >= 0)
			log_sink(line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
		return;
	}
	if (log_to_syslog)
		syslog(pri, "%s: %s", msg, strerror(saved_errno));
	else {
		fprintf(stderr, "%s: %s\n", msg, strerror(saved_errno));
		fflush(stderr);
	}
}

void log_warn(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(LOG_WARNING, saved_errno, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(LOG_CRIT, saved_errno, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}


const char *log_escape(const void *s, size_t len, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s;
	size_t o = 0;

	if (!size)
		return "";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		/* Room for this byte's text, and for "..." should more follow. */
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;

		if (o + need + 3 >= size) {
			if (o + 3 < size) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}
