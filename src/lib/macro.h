/* SPDX-License-Identifier: MIT */
/*
 * macro.h - small helpers every tern source file may use
 *
 * Ownership follows systemd's idiom: a variable declared with _cleanup_(freep) is freed when it
 * goes out of scope; TAKE_PTR()/TAKE_FD() hand ownership on and leave NULL/-EBADF behind, so the
 * cleanup becomes a no-op.
 */
#pragma once

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((__cleanup__(f)))
#define _unused_ __attribute__((__unused__))
#define _printf_(a, b) __attribute__((__format__(printf, a, b)))
#define _noreturn_ __attribute__((__noreturn__))
#define _public_ __attribute__((__visibility__("default")))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
/* container_of - the struct of TYPE whose MEMBER PTR points to */
#define container_of(ptr, type, member) ((type *) (void *) ((char *) (ptr) - offsetof(type, member)))
/* <sys/param.h> (pulled in by <resolv.h>) has its own, to the same effect */
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define TAKE_PTR(p)                            \
        ({                                     \
                __typeof__(p) _ptr_ = (p);     \
                (p) = NULL;                    \
                _ptr_;                         \
        })

#define TAKE_FD(fd)                            \
        ({                                     \
                int _fd_ = (fd);               \
                (fd) = -EBADF;                 \
                _fd_;                          \
        })

#define ASSERT_PTR(p)                          \
        ({                                     \
                __typeof__(p) _p_ = (p);       \
                assert(_p_);                   \
                _p_;                           \
        })

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
#define isempty(s) (!(s) || !*(s))

static inline void freep(void *p)
{
        free(*(void **) p);
}

/* mfree - free P and return NULL, for "p = mfree(p)" */
static inline void *mfree(void *p)
{
        free(p);
        return NULL;
}

/* safe_close - close fd if valid, keep errno, return -EBADF for "fd = safe_close(fd)" */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd)
{
        safe_close(*fd);
}

/* close_many - close an array of descriptors (entries < 0 are skipped) */
static inline void close_many(const int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
}

/* opendir_at - the directory PATH under DIRFD (FLAGS: O_NOFOLLOW, ...) as a DIR, which owns its
 * own descriptor; NULL with errno set */
static inline DIR *opendir_at(int dirfd, const char *path, int flags)
{
        int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
        DIR *d;

        if (fd < 0)
                return NULL;
        d = fdopendir(fd);
        if (!d)
                safe_close(fd);
        return d;
}

static inline const char *strempty(const char *s)
{
        return s ? s : "";
}

static inline const char *strna(const char *s)
{
        return s ? s : "n/a";
}

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)        \
        static inline void func##p(type *p)            \
        {                                              \
                if (*p)                                \
                        func(*p);                      \
        }

#define USEC_PER_SEC ((uint64_t) 1000000ULL)
#define USEC_PER_MSEC ((uint64_t) 1000ULL)
