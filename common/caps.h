/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_CAPS_H
#define WGD_CAPS_H

#include <stdint.h>
#include <sys/types.h>

/* A capability set as a bit mask: CAP_BIT(CAP_NET_ADMIN) | ... */
#define CAP_BIT(cap) (UINT64_C(1) << (cap))

/*
 * Keeps only the capabilities in keep, effective and permitted, drops every
 * other from the bounding set, and sets no_new_privs, so that nothing this
 * process runs can gain any back. The user stays what it is. 0 or -errno.
 */
int caps_limit(uint64_t keep);

/*
 * Becomes uid/gid with no supplementary groups, no capabilities at all and
 * no_new_privs. Must run as root. 0 or -errno.
 */
int caps_become_user(uid_t uid, gid_t gid);

/* The effective capabilities of this process, for checks and tests. */
uint64_t caps_effective(void);

#endif
