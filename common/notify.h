/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_NOTIFY_H
#define WGD_NOTIFY_H

/*
 * The service manager's readiness protocol (sd_notify(3)), spoken directly:
 * one datagram to the unix socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name written with a leading '@'). No library is needed.
 *
 * notify_open() connects once, so that a process that later confines
 * itself with chroot can still send; it unsets the variable, so children
 * do not inherit it. Without $NOTIFY_SOCKET both calls do nothing.
 */
int notify_open(void);
int notify_send(const char *state);

#endif
