/* SPDX-License-Identifier: MIT */
/*
 * test-util.h - helpers the cmocka suites share
 *
 * count_open_fds(): descriptors this process holds, for "nothing leaked" checks around code
 * that receives, passes or closes descriptors (varlink, scache, submit).
 * read_file(): a whole file, NUL-terminated, for golden-file comparisons; fails the test when
 * the file cannot be read. test_conf_from_text(): a Conf loaded (for the flush program) from
 * a main.cf holding TEXT in a temporary directory. heap_in_use(): bytes malloc'ed and not freed,
 * for "memory stays bounded" checks of parsers fed without end. Include after <cmocka.h>.
 */
#pragma once

#include <dirent.h>
#include <malloc.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "macro.h"

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

/* test_conf_from_text - C loaded from a main.cf holding TEXT in a temporary directory */
static inline Conf *test_conf_from_text(const char *text)
{
        char dir[] = "/tmp/tern-test-conf.XXXXXX", path[sizeof(dir) + 16];
        _cleanup_(freep) char *error = NULL;
        Conf *c = NULL;
        FILE *f;
        int r;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/main.cf", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);

        r = conf_load(path, "flush", &c, &error);
        if (r < 0)
                fail_msg("conf_load(%s): %d %s", text, r, strempty(error));
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
        return c;
}

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifdef TEST_ASAN
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* heap_in_use - bytes malloc'ed and not freed, by AddressSanitizer's count or glibc's (large
 * blocks are mmap'ed: hblkhd) */
static inline size_t heap_in_use(void)
{
#ifdef TEST_ASAN
        return __sanitizer_get_current_allocated_bytes();
#else
        struct mallinfo2 m = mallinfo2();

        return m.uordblks + m.hblkhd;
#endif
}
