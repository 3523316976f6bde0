/* SPDX-License-Identifier: MIT */
/*
 * test-util.h - helpers the cmocka suites share
 *
 * count_open_fds(): descriptors this process holds, for "nothing leaked" checks around code
 * that receives, passes or closes descriptors (varlink, scache, submit).
 * read_file(): a whole file, NUL-terminated, for golden-file comparisons; fails the test when
 * the file cannot be read. Include after <cmocka.h>.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* read_file - PATH's contents, malloc'ed and NUL-terminated */
static inline char *read_file(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf;
        long size;

        if (!f)
                fail_msg("cannot open %s: %s", path, strerror(errno));
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        size = ftell(f);
        assert_true(size >= 0);
        rewind(f);
        buf = calloc(1, (size_t) size + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) size, f), (size_t) size);
        fclose(f);
        return buf;
}
