/* SPDX-License-Identifier: MIT */
/*
 * queue-store.c - the spool: durable creation, opening, marking, moves, scans, per-message logs
 *
 * Every path is relative to one directory descriptor on queue_directory and is built here from a
 * queue (or log) name and an ID that passed queue_id_valid(): [A-Za-z0-9_] only, so no '/', no
 * "..", nothing longer than QUEUE_ID_MAX - 1. Existing files are opened with O_NOFOLLOW|O_NONBLOCK
 * (a symlink is refused, a FIFO does not block) and must be regular files.
 *
 * New files. queue_new() creates incoming/<usec>.<pid>.<counter> (0600, O_EXCL): the '.' makes a
 * temporary name that is never a queue ID, so scans skip it and nothing reads it. Its ID comes at
 * once from the creation time and the inode (queue_id_make). queue_store_commit() then, per batch:
 *   1. fchmod 0700 (ready) on each file;
 *   2. makes data and mode durable: fsync() per file, or a single syncfs() when the batch has at
 *      least QUEUE_STORE_GROUP_COMMIT_MIN files;
 *   3. renameat2(RENAME_NOREPLACE) each temporary name to incoming/<hash>/<ID>;
 *   4. fsync()s each directory a rename went into (and the parents of hash directories it made).
 * Why a crash never leaves a half-visible message: the only name a reader ever looks at is the
 * ID, and step 3 binds it to an inode whose data and ready mode step 2 already made durable.
 * Killed in 1-2: a temporary name (partial or whole, 0600 or 0700): invisible, removed by
 * queue_store_open() once older than QUEUE_STORE_STALE_TEMP_SEC; the client was not told
 * "queued" and tries again. Killed in 3-4 (or power lost before 4 finished): each file is either
 * still under its temporary name or, whole and ready, under its ID; the client was not told, so
 * at worst a retry queues it twice (Postfix's "at worst delivered twice"), never half.
 * A failure before any rename unlinks every temporary file of the batch. A failure at or after
 * a rename (a directory that cannot grow: -ENOSPC; -EEXIST, see below; a failed directory fsync)
 * unlinks the names already given, then the temporary files: nothing of the batch stays visible,
 * though a scan that ran in that instant may have seen a file (it is whole; at worst a duplicate).
 *
 * -EEXIST at the rename means a file of the same ID is already in incoming: (seconds,
 * microseconds, inode) of a live file cannot repeat, so only a clock set back onto a queue carried
 * over from another file system could do it. The writer has already put the ID into the headers,
 * so the file cannot be renamed to another ID: the batch fails and the client tries again.
 *
 * Hashing. The queues and logs named in hash_queue_names live in hash_depth levels of
 * one-character subdirectories (queue-id.h), created on demand (0700) when a rename or create
 * meets ENOENT. queue_store_scan() descends into every one-character subdirectory (up to
 * QUEUE_HASH_DEPTH_MAX levels) of every queue, hashed or not, so that it also finds files that
 * sit where an older hash_queue_names/hash_queue_depth put them; it renames such a file to where
 * it belongs now (as Postfix's postsuper does at start-up) before reporting it, so that the other
 * functions, which only look where an ID belongs, find it.
 *
 * Moves, mode changes and removals are not fsync'ed (as in Postfix): a crash may undo one, which
 * at worst repeats a delivery attempt (active files return to incoming), never loses a message.
 *
 * Per-message logs (defer/, bounce/): Postfix's bounce_append_service() layout, byte for byte,
 * with backwards_bounce_logfile_compatibility = yes: "\n<rcpt>: reason\n" then name=value lines
 * then "\n". Addresses are written RFC 822-quoted (quote_822_local) and read back unquoted.
 *
 * Limits and known bugs:
 *  - A QueueStore is not thread-safe (the temporary-name counter), and must outlive every
 *    QueueNew made from it.
 *  - A queue file is mapped MAP_SHARED: another process truncating it under us would SIGBUS the
 *    reader. Only tern writes the spool, and it never truncates queue files.
 *  - syncfs() reports write-back errors only since Linux 5.8; on older kernels a group commit
 *    could miss an I/O error that fsync() would have returned.
 *  - syncfs() also writes out other programs' dirty data on that file system; that is why it is
 *    used only for batches large enough to pay for it.
 *  - A file found misplaced by a scan whose proper place is already taken is left where it is
 *    and not reported (two files with one ID: an operator's problem, as in Postfix).
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "queue-store.h"

/*
 * From this many files on, one syncfs() is cheaper than one fsync() per file. Measured on the
 * development machine (ext4 on virtio, 2 KiB files, fchmod then sync): fsync each 0.41 ms/file,
 * syncfs for the batch 0.56 ms at 1 file, 0.56-0.6 ms at 2, 0.65-0.77 ms at 3 (fsync: 1.07 ms),
 * 0.83 ms at 4 (fsync: 1.36 ms). syncfs() wins from 2-3 files; 3 leaves margin for the other
 * dirty data a syncfs() of a busy file system has to write.
 */
#define QUEUE_STORE_GROUP_COMMIT_MIN 3

/* "<usec>.<pid>.<counter>" with a 64-bit counter, and the NUL */
#define QUEUE_TEMP_NAME_MAX 48
/* "<queue or log name>/" + hash path + ID: the longest name is "incoming", "deferred" (8) */
#define QUEUE_PATH_MAX (16 + 2 * QUEUE_HASH_DEPTH_MAX + 1 + QUEUE_ID_MAX)
/* How often queue_new() tries another temporary name when one exists (a dead writer's pid). */
#define QUEUE_NEW_TRIES 16

static const char *const queue_names[_QUEUE_MAX] = {
        [QUEUE_INCOMING] = "incoming",
        [QUEUE_ACTIVE] = "active",
        [QUEUE_DEFERRED] = "deferred",
        [QUEUE_HOLD] = "hold",
        [QUEUE_CORRUPT] = "corrupt",
};

/* The per-message logs this module writes. */
static const char *const log_names[] = { "defer", "bounce" };

struct QueueStore {
        int dirfd;              /* queue_directory, O_RDONLY|O_DIRECTORY */
        int incoming_fd;        /* incoming: temporary files live at its top */
        unsigned hash_depth;
        char **hash_names;      /* NULL-terminated copy of hash_queue_names */
        uint64_t temp_counter;
};

struct QueueNew {
        QueueStore *store;
        int fd;
        char temp[QUEUE_TEMP_NAME_MAX]; /* "" once gone */
        char id[QUEUE_ID_MAX];
        bool committed;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(QueueStore *, queue_store_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QueueNew *, queue_new_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QueueMessage *, queue_message_free);

/* queue_name_to_string - "incoming", ... */
const char *queue_name_to_string(QueueName q)
{
        if (q < 0 || q >= _QUEUE_MAX)
                return NULL;
        return queue_names[q];
}

/* queue_name_from_string - the inverse; QUEUE_INVALID for anything else */
QueueName queue_name_from_string(const char *s)
{
        if (!s)
                return QUEUE_INVALID;
        for (QueueName q = 0; q < _QUEUE_MAX; q++)
                if (streq(s, queue_names[q]))
                        return q;
        return QUEUE_INVALID;
}

/* queue_temp_name_is - "<digits>.<digits>[.<digits>...]": tern's and Postfix's temporary names */
static bool queue_temp_name_is(const char *name)
{
        bool digit = false;
        unsigned dots = 0;

        for (const char *p = name; *p; p++) {
                if (*p >= '0' && *p <= '9')
                        digit = true;
                else if (*p == '.' && digit) {
                        dots++;
                        digit = false;
                } else
                        return false;
        }
        return digit && dots > 0;
}

/* queue_store_hashed - is the queue or log NAME in hash_queue_names? */
static bool queue_store_hashed(const QueueStore *s, const char *name)
{
        if (s->hash_depth == 0)
                return false;
        for (char **p = s->hash_names; p && *p; p++)
                if (streq(*p, name))
                        return true;
        return false;
}

/* name_plain - a queue or log directory name: [a-z] only, so never "..", "/" or "" */
static bool name_plain(const char *name)
{
        if (isempty(name) || strlen(name) > 16)
                return false;
        for (const char *p = name; *p; p++)
                if (*p < 'a' || *p > 'z')
                        return false;
        return true;
}

/* queue_store_path - "deferred/6/ID" (hashed) or "active/ID", relative to queue_directory */
int queue_store_path(const QueueStore *s, const char *queue_or_log, const char *id, char *ret, size_t size)
{
        char hash[2 * QUEUE_HASH_DEPTH_MAX + 1] = "";
        int r, n;

        if (!s || !name_plain(queue_or_log) || !queue_id_valid(id) || !ret)
                return -EINVAL;
        if (queue_store_hashed(s, queue_or_log)) {
                r = queue_id_hash_path(id, s->hash_depth, hash, sizeof(hash));
                if (r < 0)
                        return r;
        }
        n = snprintf(ret, size, "%s/%s%s", queue_or_log, hash, id);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

/* queue_path - queue_store_path() for a QueueName */
static int queue_path(const QueueStore *s, QueueName q, const char *id, char ret[static QUEUE_PATH_MAX])
{
        const char *name = queue_name_to_string(q);

        if (!name)
                return -EINVAL;
        return queue_store_path(s, name, id, ret, QUEUE_PATH_MAX);
}

/* mkdir_parents - create the directories of PATH's hash levels (not the first component, not
 * the last), 0700; *ret_made (may be NULL) set when one was created */
static int mkdir_parents(int dirfd, const char *path, bool *ret_made)
{
        char buf[QUEUE_PATH_MAX];
        const char *first = strchr(path, '/');
        bool made = false;

        if (!first || strlen(path) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, path);
        for (char *p = buf + (first - path) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                if (mkdirat(dirfd, buf, 0700) < 0) {
                        if (errno != EEXIST)
                                return -errno;
                } else
                        made = true;
                *p = '/';
        }
        if (ret_made)
                *ret_made |= made;
        return 0;
}

/* rename_noreplace - renameat2(RENAME_NOREPLACE), with link+unlink where the file system lacks it */
static int rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
        if (renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE) >= 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        if (linkat(olddirfd, oldpath, newdirfd, newpath, 0) < 0)
                return -errno;
        if (unlinkat(olddirfd, oldpath, 0) < 0)
                return -errno;
        return 0;
}

/* rename_into - rename_noreplace() that creates NEWPATH's hash directories on ENOENT */
static int rename_into(int dirfd, const char *oldpath, const char *newpath, bool *ret_made_dirs)
{
        int r;

        r = rename_noreplace(dirfd, oldpath, dirfd, newpath);
        if (r != -ENOENT)
                return r;
        r = mkdir_parents(dirfd, newpath, ret_made_dirs);
        if (r < 0)
                return r;
        return rename_noreplace(dirfd, oldpath, dirfd, newpath);
}

/* remove_stale_temps - unlink temporary files in incoming older than QUEUE_STORE_STALE_TEMP_SEC */
static int remove_stale_temps(QueueStore *s)
{
        struct timespec now;
        struct dirent *de;
        DIR *d;

        d = opendir_at(s->incoming_fd, ".", 0);
        if (!d)
                return -errno;
        clock_gettime(CLOCK_REALTIME, &now);
        while ((de = readdir(d))) {
                struct stat st;

                if (!queue_temp_name_is(de->d_name))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (st.st_mtime > now.tv_sec - QUEUE_STORE_STALE_TEMP_SEC)
                        continue;
                (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
        return 0;
}

/* queue_store_open - see queue-store.h */
int queue_store_open(const char *queue_directory, char *const *hash_queue_names, unsigned hash_depth,
                     QueueStore **ret)
{
        _cleanup_(queue_store_freep) QueueStore *s = NULL;
        size_t n = 0;
        int r;

        if (isempty(queue_directory) || !ret || hash_depth > QUEUE_HASH_DEPTH_MAX)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dirfd = s->incoming_fd = -EBADF;
        s->hash_depth = hash_depth;

        for (char *const *p = hash_queue_names; p && *p; p++)
                n++;
        s->hash_names = calloc(n + 1, sizeof(char *));
        if (!s->hash_names)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                s->hash_names[i] = strdup(hash_queue_names[i]);
                if (!s->hash_names[i])
                        return -ENOMEM;
        }

        s->dirfd = open(queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dirfd < 0)
                return -errno;

        for (size_t i = 0; i < _QUEUE_MAX; i++)
                if (mkdirat(s->dirfd, queue_names[i], 0700) < 0 && errno != EEXIST)
                        return -errno;
        for (size_t i = 0; i < ELEMENTSOF(log_names); i++)
                if (mkdirat(s->dirfd, log_names[i], 0700) < 0 && errno != EEXIST)
                        return -errno;

        s->incoming_fd = openat(s->dirfd, "incoming", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s->incoming_fd < 0)
                return -errno;

        r = remove_stale_temps(s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

/* queue_store_free - close the spool; NULL in, NULL out */
QueueStore *queue_store_free(QueueStore *s)
{
        if (!s)
                return NULL;
        safe_close(s->incoming_fd);
        safe_close(s->dirfd);
        for (char **p = s->hash_names; p && *p; p++)
                free(*p);
        free(s->hash_names);
        free(s);
        return NULL;
}

/* queue_store_dirfd - the descriptor of queue_directory */
int queue_store_dirfd(const QueueStore *s)
{
        return s ? s->dirfd : -EBADF;
}

/* ---- new messages */

/* queue_new - see queue-store.h */
int queue_new(QueueStore *s, QueueNew **ret)
{
        _cleanup_(queue_new_freep) QueueNew *n = NULL;
        struct timespec ts;
        struct stat st;
        int r;

        if (!s || !ret)
                return -EINVAL;
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->store = s;
        n->fd = -EBADF;

        for (unsigned i = 0;; i++) {
                if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                        return -errno;
                snprintf(n->temp, sizeof(n->temp), "%ld.%ld.%" PRIu64, (long) (ts.tv_nsec / 1000),
                         (long) getpid(), s->temp_counter++);
                n->fd = openat(s->incoming_fd, n->temp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                               0600);
                if (n->fd >= 0)
                        break;
                r = -errno;
                n->temp[0] = '\0';
                if (r != -EEXIST || i + 1 >= QUEUE_NEW_TRIES)
                        return r;
        }

        if (fstat(n->fd, &st) < 0)
                return -errno;
        r = queue_id_make((uint64_t) ts.tv_sec, (uint32_t) (ts.tv_nsec / 1000), (uint64_t) st.st_ino, n->id);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(n);
        return 0;
}

/* write_all - the whole buffer, or -errno */
static int write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* queue_new_fd - where the writer writes the queue file */
int queue_new_fd(const QueueNew *n)
{
        return n ? n->fd : -EBADF;
}

/* queue_new_write - all of DATA to N's file, or -errno (-ENOSPC on a full disk) */
int queue_new_write(QueueNew *n, const void *data, size_t size)
{
        if (!n)
                return -EINVAL;
        return write_all(queue_new_fd(n), data, size);
}

/* queue_new_id - the ID the file gets at commit */
const char *queue_new_id(const QueueNew *n)
{
        return n ? n->id : NULL;
}

/* queue_new_unlink_temp - remove the temporary name, once */
static void queue_new_unlink_temp(QueueNew *n)
{
        if (n->temp[0]) {
                (void) unlinkat(n->store->incoming_fd, n->temp, 0);
                n->temp[0] = '\0';
        }
}

/* queue_new_free - close; an uncommitted file is removed */
QueueNew *queue_new_free(QueueNew *n)
{
        if (!n)
                return NULL;
        if (!n->committed)
                queue_new_unlink_temp(n);
        safe_close(n->fd);
        free(n);
        return NULL;
}

/* commit_fail - undo a batch: unlink the first N_RENAMED files' IDs, then every temporary name */
static int commit_fail(QueueStore *s, QueueNew *const *v, size_t n, size_t n_renamed, int error)
{
        char path[QUEUE_PATH_MAX];

        for (size_t i = 0; i < n_renamed; i++) {
                if (queue_path(s, QUEUE_INCOMING, v[i]->id, path) >= 0)
                        (void) unlinkat(s->dirfd, path, 0);
                v[i]->temp[0] = '\0';   /* its temporary name was renamed away */
        }
        for (size_t i = n_renamed; i < n; i++)
                queue_new_unlink_temp(v[i]);
        return error;
}

/* dir_list_add - remember directory PATH for fsync (no duplicates) */
static int dir_list_add(char ***list, size_t *n, const char *path)
{
        char **l;

        for (size_t i = 0; i < *n; i++)
                if (streq((*list)[i], path))
                        return 0;
        l = reallocarray(*list, *n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        *list = l;
        l[*n] = strdup(path);
        if (!l[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

static void dir_list_free(char **list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(list[i]);
        free(list);
}

/* dir_list_add_parents - every directory of PATH from its first component on ("incoming",
 * "incoming/6", ...); ALL: all of them, else only the one holding the file */
static int dir_list_add_parents(char ***list, size_t *n, const char *path, bool all)
{
        char buf[QUEUE_PATH_MAX];
        char *slash;
        int r;

        if (strlen(path) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, path);
        slash = strrchr(buf, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        r = dir_list_add(list, n, buf);
        if (r < 0 || !all)
                return r;
        while ((slash = strrchr(buf, '/'))) {
                *slash = '\0';
                r = dir_list_add(list, n, buf);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* fsync_dir - open PATH (relative to DIRFD) and fsync it */
static int fsync_dir(int dirfd, const char *path)
{
        _cleanup_(closep) int fd = -EBADF;

        fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

/* queue_store_commit - see queue-store.h and the top of this file */
int queue_store_commit(QueueStore *s, QueueNew *const *v, size_t n, unsigned *ret_syncs)
{
        char **dirs = NULL;
        size_t n_dirs = 0, n_renamed = 0;
        unsigned syncs = 0;
        int r = 0;

        if (!s || (n > 0 && !v))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!v[i] || v[i]->store != s || v[i]->committed || !v[i]->temp[0] || v[i]->fd < 0)
                        return -EINVAL;
        if (n == 0)
                goto finish;

        /* 1. ready */
        for (size_t i = 0; i < n; i++)
                if (fchmod(v[i]->fd, QUEUE_MODE_READY) < 0) {
                        r = commit_fail(s, v, n, 0, -errno);
                        goto finish;
                }

        /* 2. data and mode durable before any name is */
        if (n >= QUEUE_STORE_GROUP_COMMIT_MIN) {
                syncs++;
                if (syncfs(s->incoming_fd) < 0) {
                        r = commit_fail(s, v, n, 0, -errno);
                        goto finish;
                }
        } else
                for (size_t i = 0; i < n; i++) {
                        syncs++;
                        if (fsync(v[i]->fd) < 0) {
                                r = commit_fail(s, v, n, 0, -errno);
                                goto finish;
                        }
                }

        /* 3. visible */
        for (size_t i = 0; i < n; i++) {
                char path[QUEUE_PATH_MAX], temp[sizeof("incoming/") + QUEUE_TEMP_NAME_MAX];
                bool made = false;

                r = queue_path(s, QUEUE_INCOMING, v[i]->id, path);
                if (r < 0) {
                        r = commit_fail(s, v, n, n_renamed, r);
                        goto finish;
                }
                snprintf(temp, sizeof(temp), "incoming/%s", v[i]->temp);
                r = rename_into(s->dirfd, temp, path, &made);
                if (r < 0) {
                        r = commit_fail(s, v, n, n_renamed, r);
                        goto finish;
                }
                n_renamed++;
                r = dir_list_add_parents(&dirs, &n_dirs, path, made);
                if (r < 0) {
                        r = commit_fail(s, v, n, n_renamed, r);
                        goto finish;
                }
        }

        /* 4. names durable, deepest directories first (they were added before their parents) */
        for (size_t i = 0; i < n_dirs; i++) {
                syncs++;
                r = fsync_dir(s->dirfd, dirs[i]);
                if (r < 0) {
                        r = commit_fail(s, v, n, n_renamed, r);
                        goto finish;
                }
        }

        for (size_t i = 0; i < n; i++) {
                v[i]->committed = true;
                v[i]->temp[0] = '\0';
        }
        r = 0;

finish:
        dir_list_free(dirs, n_dirs);
        if (ret_syncs)
                *ret_syncs = syncs;
        return r;
}

/* ---- existing messages */

/* open_existing - open queue file ID in Q with FLAGS; a symlink is -ELOOP, a FIFO does not block */
static int open_existing(QueueStore *s, QueueName q, const char *id, int flags)
{
        char path[QUEUE_PATH_MAX];
        int r, fd;

        if (!s || !queue_id_valid(id))
                return -EINVAL;
        r = queue_path(s, q, id, path);
        if (r < 0)
                return r;
        fd = openat(s->dirfd, path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fd;
}

/* queue_message_open - see queue-store.h */
int queue_message_open(QueueStore *s, QueueName q, const char *id, QueueMessage **ret,
                       const char **ret_reason)
{
        _cleanup_(queue_message_freep) QueueMessage *m = NULL;
        const char *reason = NULL;
        void *map;
        int r;

        if (!s || !ret || !queue_id_valid(id) || !queue_name_to_string(q))
                return -EINVAL;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->fd = -EBADF;
        m->queue = q;
        strcpy(m->id, id);

        m->fd = open_existing(s, q, id, O_RDWR);
        if (m->fd < 0)
                return m->fd;
        if (fstat(m->fd, &m->st) < 0)
                return -errno;
        if (!S_ISREG(m->st.st_mode) || (m->st.st_mode & QUEUE_MODE_READY) != QUEUE_MODE_READY)
                return -EAGAIN;
        if (m->st.st_size == 0) {
                if (ret_reason)
                        *ret_reason = "empty file";
                return -EBADMSG;
        }
        if ((uint64_t) m->st.st_size > SIZE_MAX)
                return -EFBIG;

        map = mmap(NULL, (size_t) m->st.st_size, PROT_READ, MAP_SHARED, m->fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        m->map = map;
        m->size = (size_t) m->st.st_size;

        r = queue_envelope_parse(m->map, m->size, &m->envelope, &reason);
        if (r < 0) {
                m->envelope = (QueueEnvelope) {};
                if (ret_reason)
                        *ret_reason = reason ? reason : "unreadable queue file";
                return r == -ENOMEM ? r : -EBADMSG;
        }

        *ret = TAKE_PTR(m);
        return 0;
}

/* queue_message_free - unmap, close, free the envelope; NULL in, NULL out */
QueueMessage *queue_message_free(QueueMessage *m)
{
        if (!m)
                return NULL;
        queue_envelope_done(&m->envelope);
        if (m->map)
                munmap((void *) m->map, m->size);
        safe_close(m->fd);
        free(m);
        return NULL;
}

/* queue_file_mark_done - see queue-store.h */
int queue_file_mark_done(int fd, uint64_t offset)
{
        char c;
        ssize_t k;

        k = pread(fd, &c, 1, (off_t) offset);
        if (k < 0)
                return -errno;
        if (k != 1)
                return -EBADMSG;
        if (c == REC_TYPE_DONE)
                return 0;
        if (c != REC_TYPE_RCPT)
                return -EBADMSG;
        c = REC_TYPE_DONE;
        k = pwrite(fd, &c, 1, (off_t) offset);
        if (k < 0)
                return -errno;
        return k == 1 ? 1 : -EIO;
}

/* queue_message_mark_done - see queue-store.h */
int queue_message_mark_done(QueueMessage *m, size_t i)
{
        QueueRecipient *rcpt;
        int r;

        if (!m || i >= m->envelope.n_rcpts)
                return -EINVAL;
        rcpt = &m->envelope.rcpts[i];
        if (rcpt->offset >= m->size)
                return -EBADMSG;
        r = queue_file_mark_done(m->fd, rcpt->offset);
        if (r < 0)
                return r;
        if (r > 0 && fdatasync(m->fd) < 0)
                return -errno;
        rcpt->done = true;
        return 0;
}

/* queue_store_move - see queue-store.h; -EEXIST if TO already holds ID (never replaced) */
int queue_store_move(QueueStore *s, QueueName from, const char *id, QueueName to, int64_t next_attempt)
{
        char old[QUEUE_PATH_MAX], new[QUEUE_PATH_MAX];
        int r;

        if (!s || !queue_id_valid(id))
                return -EINVAL;
        r = queue_path(s, from, id, old);
        if (r < 0)
                return r;
        r = queue_path(s, to, id, new);
        if (r < 0)
                return r;

        if (next_attempt >= 0) {
                struct timespec t[2] = {
                        { .tv_sec = (time_t) next_attempt },
                        { .tv_sec = (time_t) next_attempt },
                };

                if (utimensat(s->dirfd, old, t, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
        }
        if (streq(old, new))
                return 0;
        return rename_into(s->dirfd, old, new, NULL);
}

/* queue_store_set_mode - see queue-store.h; only the request bits may change, and only on a ready
 * regular file (-EAGAIN otherwise) */
int queue_store_set_mode(QueueStore *s, QueueName q, const char *id, mode_t set, mode_t clear)
{
        _cleanup_(closep) int fd = -EBADF;
        struct stat st;
        mode_t mode;

        if (((set | clear) & ~(mode_t) (QUEUE_MODE_UNTHROTTLE | QUEUE_MODE_EXPIRE)) != 0)
                return -EINVAL;
        fd = open_existing(s, q, id, O_RDONLY);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (st.st_mode & QUEUE_MODE_READY) != QUEUE_MODE_READY)
                return -EAGAIN;
        mode = ((st.st_mode & 07777) & ~clear) | set;
        if (mode != (st.st_mode & 07777) && fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

/* queue_store_remove - unlink ID from Q */
int queue_store_remove(QueueStore *s, QueueName q, const char *id)
{
        char path[QUEUE_PATH_MAX];
        int r;

        if (!s || !queue_id_valid(id))
                return -EINVAL;
        r = queue_path(s, q, id, path);
        if (r < 0)
                return r;
        if (unlinkat(s->dirfd, path, 0) < 0)
                return -errno;
        return 0;
}

/* queue_store_stat - lstat of ID in Q */
int queue_store_stat(QueueStore *s, QueueName q, const char *id, struct stat *ret)
{
        char path[QUEUE_PATH_MAX];
        struct stat st;
        int r;

        if (!s || !ret || !queue_id_valid(id))
                return -EINVAL;
        r = queue_path(s, q, id, path);
        if (r < 0)
                return r;
        if (fstatat(s->dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        *ret = st;
        return 0;
}

/* ---- scans */

/* A file found away from where its ID belongs, re-homed after the walk. */
typedef struct Misplaced {
        char path[QUEUE_PATH_MAX];
        char id[QUEUE_ID_MAX];
} Misplaced;

typedef struct Scan {
        QueueStore *s;
        QueueName q;
        QueueScanFn fn;
        void *userdata;
        Misplaced *misplaced;
        size_t n_misplaced;
        bool names_only;                /* queue_store_list: d_type instead of a stat per file */
} Scan;

/* scan_dir - walk PATH (the queue, or one of its hash directories at LEVEL) */
static int scan_dir(Scan *sc, const char *path, unsigned level)
{
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = opendir_at(sc->s->dirfd, path, O_NOFOLLOW);
        if (!d)
                return level > 0 && errno == ENOENT ? 0 : -errno;

        while ((de = readdir(d))) {
                char sub[QUEUE_PATH_MAX], want[QUEUE_PATH_MAX];
                struct stat st;

                if (!queue_id_valid(de->d_name))
                        continue;       /* ".", "..", temporary names, anything odd */
                if (sc->names_only && (de->d_type == DT_REG || de->d_type == DT_DIR))
                        st = (struct stat) { .st_mode = de->d_type == DT_DIR ? S_IFDIR : S_IFREG };
                else if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;       /* gone meanwhile */
                if ((size_t) snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= sizeof(sub))
                        continue;

                if (S_ISDIR(st.st_mode)) {
                        if (de->d_name[1] != '\0' || level >= QUEUE_HASH_DEPTH_MAX)
                                continue;
                        r = scan_dir(sc, sub, level + 1);
                        if (r < 0)
                                break;
                        continue;
                }
                if (!S_ISREG(st.st_mode))
                        continue;

                if (queue_path(sc->s, sc->q, de->d_name, want) < 0)
                        continue;
                if (!streq(want, sub)) {
                        Misplaced *m = reallocarray(sc->misplaced, sc->n_misplaced + 1, sizeof(Misplaced));

                        if (!m) {
                                r = -ENOMEM;
                                break;
                        }
                        sc->misplaced = m;
                        strcpy(m[sc->n_misplaced].path, sub);
                        strcpy(m[sc->n_misplaced].id, de->d_name);
                        sc->n_misplaced++;
                        continue;
                }
                r = sc->fn(sc->s, sc->q, de->d_name, sc->names_only ? NULL : &st, sc->userdata);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r < 0 ? r : 0;
}

static int scan_queue(Scan *sc);

/* queue_store_scan - see queue-store.h; misplaced files are renamed to where they belong first */
int queue_store_scan(QueueStore *s, QueueName q, QueueScanFn fn, void *userdata)
{
        Scan sc = { .s = s, .q = q, .fn = fn, .userdata = userdata };

        return scan_queue(&sc);
}

/* queue_store_list - see queue-store.h */
int queue_store_list(QueueStore *s, QueueName q, QueueScanFn fn, void *userdata)
{
        Scan sc = { .s = s, .q = q, .fn = fn, .userdata = userdata, .names_only = true };

        return scan_queue(&sc);
}

static int scan_queue(Scan *sc)
{
        QueueStore *s = sc->s;
        QueueName q = sc->q;
        QueueScanFn fn = sc->fn;
        void *userdata = sc->userdata;
        const char *name = queue_name_to_string(q);
        int r;

        if (!s || !fn || !name)
                return -EINVAL;

        r = scan_dir(sc, name, 0);
        for (size_t i = 0; r >= 0 && i < sc->n_misplaced; i++) {
                char want[QUEUE_PATH_MAX];
                struct stat st;

                if (queue_path(s, q, sc->misplaced[i].id, want) < 0 ||
                    rename_into(s->dirfd, sc->misplaced[i].path, want, NULL) < 0 ||
                    fstatat(s->dirfd, want, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                r = fn(s, q, sc->misplaced[i].id, sc->names_only ? NULL : &st, userdata);
        }
        free(sc->misplaced);
        return r < 0 ? r : 0;
}

/* ---- per-message logs */

/* log_name_ok - one of the logs this module keeps */
static bool log_name_ok(const char *log)
{
        if (!log)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(log_names); i++)
                if (streq(log, log_names[i]))
                        return true;
        return false;
}

/* is_822_dot_string - can the local part [P, END) go unquoted (Postfix quote_822_local.c)? */
static bool is_822_dot_string(const char *p, const char *end)
{
        if (p == end || *p == '.' || end[-1] == '.')
                return false;
        for (; p < end; p++) {
                unsigned char ch = (unsigned char) *p;

                if (ch == '.' && p + 1 < end && p[1] == '.')
                        return false;
                if (ch == ' ' || ch < 32 || ch == 127 || strchr("()<>@,;:\\\"[]", ch))
                        return false;
        }
        return true;
}

/* quote_822_local - ADDR with its local part in quotes where RFC 822 needs them, to F */
static void quote_822_local(FILE *f, const char *addr)
{
        const char *at = strrchr(addr, '@');
        const char *end = at ? at : addr + strlen(addr);

        if (is_822_dot_string(addr, end)) {
                fputs(addr, f);
                return;
        }
        fputc('"', f);
        for (const char *p = addr; p < end; p++) {
                if (*p == '"' || *p == '\\' || *p == '\r')
                        fputc('\\', f);
                fputc(*p, f);
        }
        fputc('"', f);
        fputs(end, f);
}

/* unquote_822_local - the inverse: a malloc'ed raw address */
static char *unquote_822_local(const char *s)
{
        const char *at = NULL;
        bool quoted = false;
        char *ret, *o;

        /* the domain starts at the last '@' outside quotes */
        for (const char *p = s; *p; p++) {
                if (*p == '\\' && p[1])
                        p++;
                else if (*p == '"')
                        quoted = !quoted;
                else if (*p == '@' && !quoted)
                        at = p;
        }
        ret = o = malloc(strlen(s) + 1);
        if (!ret)
                return NULL;
        for (const char *p = s; *p && (!at || p < at); p++) {
                if (*p == '\\' && p[1])
                        *o++ = *++p;
                else if (*p != '"')
                        *o++ = *p;
        }
        strcpy(o, at ? at : "");
        return ret;
}

/* log_record_format - one record of bounce_append_service(), into F */
static void log_record_format(FILE *f, const QueueLogEntry *e)
{
#define NOT_NULL_EMPTY(x) ((x) && *(x))
        const char *rcpt = strempty(e->recipient);

        fputs("\n", f);
        /* backwards_bounce_logfile_compatibility = yes */
        fputc('<', f);
        if (*rcpt)
                quote_822_local(f, rcpt);
        fprintf(f, ">: %s\n", strempty(e->reason));

        fputs("recipient=", f);
        if (*rcpt)
                quote_822_local(f, rcpt);
        else
                fputs("<>", f);
        fputc('\n', f);
        if (NOT_NULL_EMPTY(e->original_recipient) && strcasecmp(rcpt, e->original_recipient) != 0) {
                fputs("original_recipient=", f);
                quote_822_local(f, e->original_recipient);
                fputc('\n', f);
        }
        if (e->offset > 0)
                fprintf(f, "offset=%" PRId64 "\n", e->offset);
        if (NOT_NULL_EMPTY(e->dsn_orig_rcpt))
                fprintf(f, "dsn_orig_rcpt=%s\n", e->dsn_orig_rcpt);
        if (e->notify_flags != 0)
                fprintf(f, "notify_flags=%d\n", e->notify_flags);
        if (NOT_NULL_EMPTY(e->status))
                fprintf(f, "status=%s\n", e->status);
        if (NOT_NULL_EMPTY(e->action))
                fprintf(f, "action=%s\n", e->action);
        if (NOT_NULL_EMPTY(e->diag_type) && NOT_NULL_EMPTY(e->diag_text))
                fprintf(f, "diag_type=%s\ndiag_text=%s\n", e->diag_type, e->diag_text);
        if (NOT_NULL_EMPTY(e->mta_type) && NOT_NULL_EMPTY(e->mta_mname))
                fprintf(f, "mta_type=%s\nmta_mname=%s\n", e->mta_type, e->mta_mname);
        if (NOT_NULL_EMPTY(e->reason))
                fprintf(f, "reason=%s\n", e->reason);
        fputs("\n", f);
#undef NOT_NULL_EMPTY
}


/* queue_log_append - see queue-store.h. A newly created log's directory is fsync'ed too, so that
 * a bounce log survives a crash as its queue file does. */
int queue_log_append(QueueStore *s, const char *log, const char *id, const QueueLogEntry *e)
{
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *buf = NULL;
        char path[QUEUE_PATH_MAX];
        size_t size = 0;
        bool created = false;
        struct stat st;
        FILE *f;
        int r;

        if (!s || !e || !log_name_ok(log) || !queue_id_valid(id))
                return -EINVAL;
        r = queue_store_path(s, log, id, path, sizeof(path));
        if (r < 0)
                return r;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        log_record_format(f, e);
        if (fclose(f) != 0)
                return -ENOMEM;

        fd = openat(s->dirfd, path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                r = mkdir_parents(s->dirfd, path, NULL);
                if (r < 0)
                        return r;
                fd = openat(s->dirfd, path,
                            O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
                created = true;
        }
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;

        r = write_all(fd, buf, size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                (void) ftruncate(fd, st.st_size);
                return r;
        }
        if (created) {
                char dir[QUEUE_PATH_MAX];

                strcpy(dir, path);
                *strrchr(dir, '/') = '\0';
                r = fsync_dir(s->dirfd, dir);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* entry_set - replace string *P with a copy of V (unquoted when UNQUOTE) */
static int entry_set(const char **p, const char *v, bool unquote)
{
        char *c = unquote ? unquote_822_local(v) : strdup(v);

        if (!c)
                return -ENOMEM;
        free((char *) *p);
        *p = c;
        return 0;
}

/* entry_done - free one entry's strings */
static void entry_done(QueueLogEntry *e)
{
        free((char *) e->recipient);
        free((char *) e->original_recipient);
        free((char *) e->dsn_orig_rcpt);
        free((char *) e->status);
        free((char *) e->action);
        free((char *) e->diag_type);
        free((char *) e->diag_text);
        free((char *) e->mta_type);
        free((char *) e->mta_mname);
        free((char *) e->reason);
        *e = (QueueLogEntry) { .offset = -1 };
}

/* log_entry_line - one "name=value" (or old-style "<rcpt>: reason") line into E */
static int log_entry_line(QueueLogEntry *e, const char *line)
{
        static const struct {
                const char *name;
                size_t offset;
                bool unquote;
        } fields[] = {
                { "recipient", offsetof(QueueLogEntry, recipient), true },
                { "original_recipient", offsetof(QueueLogEntry, original_recipient), true },
                { "dsn_orig_rcpt", offsetof(QueueLogEntry, dsn_orig_rcpt), false },
                { "status", offsetof(QueueLogEntry, status), false },
                { "action", offsetof(QueueLogEntry, action), false },
                { "diag_type", offsetof(QueueLogEntry, diag_type), false },
                { "diag_text", offsetof(QueueLogEntry, diag_text), false },
                { "mta_type", offsetof(QueueLogEntry, mta_type), false },
                { "mta_mname", offsetof(QueueLogEntry, mta_mname), false },
                { "reason", offsetof(QueueLogEntry, reason), false },
        };
        const char *eq;
        size_t len;

        if (line[0] == '<') {
                /* old style: kept only for files that have no name=value lines (Postfix < 2.3) */
                const char *close = strstr(line, ">: ");
                int r;

                if (!close)
                        return 0;
                if (!e->recipient) {
                        _cleanup_(freep) char *q = strndup(line + 1, close - line - 1);

                        if (!q)
                                return -ENOMEM;
                        r = entry_set(&e->recipient, q, true);
                        if (r < 0)
                                return r;
                }
                if (!e->reason)
                        return entry_set(&e->reason, close + 3, false);
                return 0;
        }

        eq = strchr(line, '=');
        if (!eq)
                return 0;       /* garbage: Postfix's reader skips it too */
        len = eq - line;
        if (len == strlen("offset") && strneq(line, "offset", len)) {
                e->offset = strtoll(eq + 1, NULL, 10);
                return 0;
        }
        if (len == strlen("notify_flags") && strneq(line, "notify_flags", len)) {
                e->notify_flags = (int) strtol(eq + 1, NULL, 10);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (strlen(fields[i].name) == len && strneq(line, fields[i].name, len)) {
                        const char **p = (const char **) ((char *) e + fields[i].offset);

                        if (fields[i].unquote && streq(eq + 1, "<>"))
                                return entry_set(p, "", false);
                        return entry_set(p, eq + 1, fields[i].unquote);
                }
        return 0;       /* a name this version does not know */
}

/* queue_log_read - see queue-store.h; -ENOENT when there is no log. A record is the lines
 * between empty lines; one without a recipient is dropped. */
int queue_log_read(QueueStore *s, const char *log, const char *id, QueueLogEntry **ret, size_t *ret_n)
{
        _cleanup_(freep) char *line = NULL;
        char path[QUEUE_PATH_MAX];
        QueueLogEntry *v = NULL, cur = { .offset = -1 };
        bool new_style = false;
        size_t n = 0, alloc = 0;
        FILE *f = NULL;
        int fd, r = 0;

        if (!s || !ret || !ret_n || !log_name_ok(log) || !queue_id_valid(id))
                return -EINVAL;
        r = queue_store_path(s, log, id, path, sizeof(path));
        if (r < 0)
                return r;
        fd = openat(s->dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "r");
        if (!f) {
                r = -errno;
                safe_close(fd);
                return r;
        }

        for (;;) {
                ssize_t k = getline(&line, &alloc, f);
                bool eof = k < 0;

                if (!eof && k > 0 && line[k - 1] == '\n')
                        line[--k] = '\0';
                if (eof || k == 0) {
                        /* the end of a record */
                        if (cur.recipient) {
                                QueueLogEntry *nv = reallocarray(v, n + 1, sizeof(*v));

                                if (!nv) {
                                        r = -ENOMEM;
                                        break;
                                }
                                v = nv;
                                v[n++] = cur;
                                cur = (QueueLogEntry) { .offset = -1 };
                        } else
                                entry_done(&cur);
                        new_style = false;
                        if (eof)
                                break;
                        continue;
                }
                if (line[0] == '<' && new_style)
                        continue;
                if (line[0] != '<' && !new_style && strchr(line, '=')) {
                        /* name=value lines win over the old-style line of the same record */
                        new_style = true;
                        entry_done(&cur);
                }
                r = log_entry_line(&cur, line);
                if (r < 0)
                        break;
        }
        if (r >= 0 && ferror(f))
                r = -EIO;
        fclose(f);
        entry_done(&cur);
        if (r < 0) {
                queue_log_entries_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* queue_log_entries_free - free what queue_log_read() returned */
void queue_log_entries_free(QueueLogEntry *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                entry_done(&v[i]);
        free(v);
}

/* queue_log_remove - unlink LOG's file for ID; -ENOENT if there is none */
int queue_log_remove(QueueStore *s, const char *log, const char *id)
{
        char path[QUEUE_PATH_MAX];
        int r;

        if (!s || !log_name_ok(log) || !queue_id_valid(id))
                return -EINVAL;
        r = queue_store_path(s, log, id, path, sizeof(path));
        if (r < 0)
                return r;
        if (unlinkat(s->dirfd, path, 0) < 0)
                return -errno;
        return 0;
}
