/* SPDX-License-Identifier: MIT */
#ifndef WGD_LOG_H
#define WGD_LOG_H

#include <stdbool.h>

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

#endif
