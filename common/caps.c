// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * Capabilities through the raw capset(2) and prctl(2) interfaces, so that
 * no library beyond libc is needed.
 */

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

static int cap_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capget, &hdr, data) ? -errno : 0;
}

static int cap_set(const struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

uint64_t caps_effective(void)
{
	struct __user_cap_data_struct data[2] = { 0 };

	if (cap_get(data))
		return 0;
	return (uint64_t)data[1].effective << 32 | data[0].effective;
}

int caps_limit(uint64_t keep)
{
	struct __user_cap_data_struct data[2] = { 0 };
	int ret;

	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * goes with the rest below. */
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		/* What the bounding set lacks already needs no CAP_SETPCAP. */
		if ((keep & CAP_BIT(cap)) || prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			return -errno;
	}
	ret = cap_get(data);
	if (ret)
		return ret;
	data[0].effective = data[0].permitted = (uint32_t)keep & data[0].permitted;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32) & data[1].permitted;
	data[0].inheritable = data[1].inheritable = 0;
	ret = cap_set(data);
	if (ret)
		return ret;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return 0;
}

int caps_become_user(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
		return -errno;
	/* Leaving uid 0 clears the capabilities; make sure of it, and that
	 * none can come back through an exec. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (uid != 0 && caps_effective())
		return -EPERM;
	return 0;
}
