/* SPDX-License-Identifier: MIT */
/*
 * flush-log.c - the per-site logfiles under queue_directory/flush, and the queue files they name
 *
 * Postfix's flush_add_path(), flush_send_path(), flush_one_file() and flush_refresh_service()
 * (postfix-semantics.md §1.4-§1.7), with these guarantees:
 *   - every logfile operation holds an exclusive flock() on the file, and after taking it
 *     checks that the file it holds is still the one under that name: a logfile removed by a
 *     purge (or replaced by an operator) while an add waited for the lock is opened again, so
 *     an entry is never appended to a file that nobody will read;
 *   - a purge removes a logfile only if it is empty while the lock is held (Postfix decided
 *     from a stat() taken before the lock, so an add in between could be lost);
 *   - names come from flush_site_file_name() or are checked with flush_file_name_valid(), and
 *     every open is relative to the flush/ directory with O_NOFOLLOW: no path leaves flush/;
 *   - queue IDs come from the logfile through flush_lines_feed() and name files only through
 *     queue-store.c, which checks them again.
 * Reading a logfile to count its entries (List) does not change its access time, which is the
 * "last read" that refresh goes by.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flush.h"
#include "log.h"
#include "macro.h"

#define FLUSH_READ_CHUNK (64U * 1024U)

/* still_named - is the open file FD the one that NAME is now? */
static bool still_named(Flush *f, const char *name, int fd)
{
        struct stat a, b;

        if (fstat(fd, &a) < 0 || a.st_nlink == 0)
                return false;
        if (fstatat(f->dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
                return false;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* open_logfile - NAME in flush/ opened with FLAGS (created 0600 with O_CREAT), never through a
 * symlink, and only if it is a regular file (-EISDIR otherwise); its stat in *RET_ST */
static int open_logfile(Flush *f, const char *name, int flags, struct stat *ret_st)
{
        _cleanup_(closep) int fd = -EBADF;

        fd = openat(f->dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (fstat(fd, ret_st) < 0)
                return -errno;
        if (!S_ISREG(ret_st->st_mode))
                return -EISDIR;
        return TAKE_FD(fd);
}

/* open_locked - NAME opened with FLAGS and exclusively locked; -ENOENT if it does not exist
 * (and FLAGS has no O_CREAT) */
static int open_locked(Flush *f, const char *name, int flags)
{
        for (int attempt = 0; attempt < 8; attempt++) {
                _cleanup_(closep) int fd = -EBADF;
                struct stat st;

                fd = open_logfile(f, name, flags, &st);
                if (fd < 0)
                        return fd;
                while (flock(fd, LOCK_EX) < 0)
                        if (errno != EINTR)
                                return -errno;
                if (still_named(f, name, fd))
                        return TAKE_FD(fd);
                /* removed or replaced while we waited: take the file that is there now */
        }
        return -EAGAIN;
}

int flush_log_add(Flush *f, const char *name, const char *id)
{
        _cleanup_(closep) int fd = -EBADF;
        char line[QUEUE_ID_MAX + 1];
        size_t len = strlen(id);
        ssize_t n;

        if (!flush_file_name_valid(name) || !queue_id_valid(id))
                return -EINVAL;
        fd = open_locked(f, name, O_WRONLY | O_APPEND | O_CREAT);
        if (fd < 0) {
                log_error_errno(fd, "flush_add_path: open fast flush logfile %s: %m", name);
                return fd;
        }
        memcpy(line, id, len);
        line[len++] = '\n';
        n = write(fd, line, len);
        if (n != (ssize_t) len) {
                int r = n < 0 ? -errno : -ENOSPC;
                /* a partial line is cut off again, so that the next entry starts a line */
                if (n > 0) {
                        off_t end = lseek(fd, 0, SEEK_CUR);
                        if (end >= n)
                                (void) ftruncate(fd, end - n);
                }
                log_warning_errno(r, "append queue id %s to fast flush logfile %s: %m", id, name);
                return r;
        }
        return 0;
}

/* flush_one_file - §1.5 step 5: the file's times to NOW, deferred -> incoming. 1 moved, 0
 * touched in incoming (another flush moved it) or not found (active, delivered, deleted) */
static int flush_one_file(Flush *f, const char *id, int64_t now, bool *ret_found)
{
        int r;

        *ret_found = true;
        r = queue_store_move(f->store, QUEUE_DEFERRED, id, QUEUE_INCOMING, now);
        if (r >= 0)
                return 1;
        if (r == -ENOENT) {
                r = queue_store_move(f->store, QUEUE_INCOMING, id, QUEUE_INCOMING, now);
                if (r >= 0)
                        return 0;
        }
        *ret_found = false;
        if (r != -ENOENT)
                log_warning_errno(r, "flush_one_file: update %s time stamps: %m", id);
        return 0;
}

typedef struct SendState {
        Flush *f;
        const char *name;
        int64_t now;
        FlushDupFilter dups;
        uint64_t lines, moved, touched;
} SendState;

static int send_line(const char *line, bool valid, void *userdata)
{
        SendState *st = userdata;
        bool found;
        int r;

        st->lines++;
        if (!valid) {
                log_warning("bad queue id \"%s...\" in fast flush logfile %s", line, st->name);
                return 0;
        }
        r = flush_dup_filter_check(&st->dups, line);
        if (r <= 0)
                return r;
        r = flush_one_file(st->f, line, st->now, &found);
        st->moved += r;
        if (found)
                st->touched++;
        return 0;
}

/* read_lines - every line of the logfile FD, from its start, to FN; -errno of a read, or FN's
 * error */
static int read_lines(int fd, FlushLineFn fn, void *userdata)
{
        _cleanup_(freep) char *buf = malloc(FLUSH_READ_CHUNK);
        FlushLines lines = {};
        off_t off = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = pread(fd, buf, FLUSH_READ_CHUNK, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                off += n;
                r = flush_lines_feed(&lines, buf, (size_t) n, fn, userdata);
                if (r < 0)
                        return r;
        }
        return flush_lines_end(&lines, fn, userdata);
}

/* send_locked - §1.5 steps 3-8 on the locked logfile FD (closed here, which unlocks it) */
static int send_locked(Flush *f, int fd_locked, const char *name, FlushHow how, uint64_t *ret_moved)
{
        _cleanup_(closep) int fd = fd_locked;
        SendState st = { .f = f, .name = name, .now = flush_now() };
        int r;

        if (how == FLUSH_SEND_SITE)
                flush_trigger_qmgr(f, (const char *[]){ "flushDead" }, 1);

        r = flush_dup_filter_init(&st.dups, FLUSH_DUP_FILTER_SIZE);
        if (r < 0)
                return r;
        r = read_lines(fd, send_line, &st);
        if (r < 0) {
                if (r != -ENOMEM)
                        log_error_errno(r, "read fast flush logfile %s: %m", name);
                goto out;
        }

        /* emptied even when no queue file was found: the entries are used up */
        if (st.lines > 0 && ftruncate(fd, 0) < 0) {
                r = -errno;
                log_error_errno(r, "flush_send_path: truncate fast flush logfile %s: %m", name);
                goto out;
        }
        /* "read" now, also on noatime mounts (refresh goes by the access time) */
        if (futimens(fd, NULL) < 0)
                log_warning_errno(errno, "update time stamps of fast flush logfile %s: %m", name);
        r = 0;
out:
        flush_dup_filter_done(&st.dups);
        if (st.lines > 0)
                flush_trigger_qmgr(f, (const char *[]){ "incoming" }, 1);
        if (ret_moved)
                *ret_moved = st.moved;
        log_debug("%s: %" PRIu64 " entries, %" PRIu64 " moved to incoming, %" PRIu64 " found", name, st.lines,
                  st.moved, st.touched);
        return r;
}

int flush_log_send(Flush *f, const char *name, FlushHow how, uint64_t *ret_moved)
{
        int fd;

        *ret_moved = 0;
        if (!flush_file_name_valid(name))
                return -EINVAL;
        fd = open_locked(f, name, O_RDWR);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0) {
                log_error_errno(fd, "flush_send_path: open fast flush logfile %s: %m", name);
                return fd;
        }
        return send_locked(f, fd, name, how, ret_moved);
}

int flush_log_send_file(Flush *f, const char *id)
{
        bool found;
        int r;

        if (!queue_id_valid(id))
                return -EINVAL;
        /* the unthrottle bit: qmgr unthrottles the message's destinations and ignores
         * defer_transports when it reads the file (Postfix's UNTHROTTLE_AFTER) */
        r = queue_store_set_mode(f->store, QUEUE_DEFERRED, id, QUEUE_MODE_UNTHROTTLE, 0);
        if (r == -ENOENT)
                r = queue_store_set_mode(f->store, QUEUE_INCOMING, id, QUEUE_MODE_UNTHROTTLE, 0);
        if (r < 0 && r != -ENOENT && r != -EAGAIN)
                log_warning_errno(r, "%s: set the unthrottle bit: %m", id);
        (void) flush_one_file(f, id, flush_now(), &found);
        if (found)
                flush_trigger_qmgr(f, (const char *[]){ "incoming" }, 1);
        return found ? 1 : 0;
}

int flush_log_refresh_one(Flush *f, const char *name, int64_t max_age)
{
        _cleanup_(closep) int fd = -EBADF;
        struct stat st;
        uint64_t moved;

        fd = open_locked(f, name, O_RDWR);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0) {
                log_warning_errno(fd, "flush_refresh: open fast flush logfile %s: %m", name);
                return fd;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        switch (flush_refresh_action((uint64_t) st.st_size, st.st_atim.tv_sec, st.st_mtim.tv_sec, flush_now(),
                                     max_age, f->purge_time)) {
        case FLUSH_REFRESH_KEEP:
                return 0;
        case FLUSH_REFRESH_PURGE:
                /* empty under the lock: no add can be lost (it would wait, then see the file gone) */
                if (unlinkat(f->dirfd, name, 0) < 0 && errno != ENOENT) {
                        log_warning_errno(errno, "remove logfile %s: %m", name);
                        return -errno;
                }
                log_debug("%s: empty since %lld: removed", name, (long long) st.st_mtim.tv_sec);
                return 1;
        case FLUSH_REFRESH_SEND:
                return send_locked(f, TAKE_FD(fd), name, FLUSH_REFRESH_ONLY, &moved);
        }
        return 0;
}

static int count_line(const char *line, bool valid, void *userdata)
{
        if (valid)
                (*(uint64_t *) userdata)++;
        return 0;
}

int flush_log_stat(Flush *f, const char *name, void **ret_json)
{
        _cleanup_(closep) int fd = -EBADF;
        uint64_t entries = 0;
        bool restore = false;
        int r;
        struct stat st;
        json_t *o;

        if (!flush_file_name_valid(name))
                return -EINVAL;
        /* counting is not reading: the access time says when the site was last flushed */
        fd = open_logfile(f, name, O_RDONLY | O_NOATIME, &st);
        if (fd == -EPERM) {
                fd = open_logfile(f, name, O_RDONLY, &st);
                restore = true;
        }
        if (fd < 0)
                return fd;
        r = read_lines(fd, count_line, &entries);
        if (r < 0)
                return r;
        if (restore) {
                struct timespec t[2] = { st.st_atim, { .tv_nsec = UTIME_OMIT } };
                (void) futimens(fd, t);
        }
        o = json_pack("{s:s,s:I,s:I,s:I,s:I}", "name", name, "entries", (json_int_t) entries, "size",
                      (json_int_t) st.st_size, "read", (json_int_t) st.st_atim.tv_sec, "updated",
                      (json_int_t) st.st_mtim.tv_sec);
        if (!o)
                return -ENOMEM;
        *ret_json = o;
        return 0;
}

void flush_names_free(char **names)
{
        if (!names)
                return;
        for (char **p = names; *p; p++)
                free(*p);
        free(names);
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int flush_log_names(Flush *f, char ***ret)
{
        char **v = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *de;
        DIR *d;

        d = opendir_at(f->dirfd, ".", 0);
        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
                        continue;
                if (!flush_file_name_valid(de->d_name))
                        continue;
                if (n + 2 > alloc) {
                        size_t na = alloc ? alloc * 2 : 64;
                        char **nv = reallocarray(v, na, sizeof(char *));
                        if (!nv)
                                goto nomem;
                        v = nv;
                        alloc = na;
                }
                v[n] = strdup(de->d_name);
                if (!v[n])
                        goto nomem;
                v[++n] = NULL;
        }
        closedir(d);
        if (!v) {
                v = calloc(1, sizeof(char *));
                if (!v)
                        return -ENOMEM;
        }
        qsort(v, n, sizeof(char *), name_cmp);
        *ret = v;
        return 0;
nomem:
        closedir(d);
        flush_names_free(v);
        return -ENOMEM;
}
