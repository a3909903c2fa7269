/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_LOG_H
#define WGD_LOG_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Logging in the manner of OpenBSD's daemons: to stderr in the foreground,
 * to syslog in the background. log_warn() appends strerror(errno);
 * log_warnx() does not. fatal() and fatalx() log and exit(1).
 */

void log_init(const char *ident, bool to_syslog, int verbose);
void log_set_syslog(bool to_syslog);
int log_verbosity(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Sends every line to sink instead of stderr or syslog (NULL: back to
 * those); for tests that read what would be logged. */
void log_set_sink(void (*sink)(const char *line, size_t len));

/*
 * Text from the network made safe for a log or a terminal: printable ASCII
 * is kept, any other byte and the backslash become \xNN, so that no escape
 * sequence, control byte or forged line reaches the reader. Writes at most
 * size bytes with the NUL, ending in "..." when cut; returns buf.
 */
const char *log_escape(const void *s, size_t len, char *buf, size_t size);
/* A buffer for log_escape() of up to n bytes of input, whole. */
#define LOG_ESCAPED_SIZE(n) (4 * (n) + 4)

#endif
