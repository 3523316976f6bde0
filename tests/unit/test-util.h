/* SPDX-License-Identifier: MIT */
/*
 * test-util.h - helpers the cmocka suites share
 *
 * count_open_fds(): descriptors this process holds, for "nothing leaked" checks around code
 * that receives, passes or closes descriptors (varlink, scache, submit).
 */
#pragma once

#include <dirent.h>
#include <stddef.h>

/* count_open_fds - entries of /proc/self/fd, less the one opendir() itself uses */
static inline size_t count_open_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        size_t n = 0;

        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;
}
