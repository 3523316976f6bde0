/* SPDX-License-Identifier: MIT */
/*
 * test-queue-store.c - the spool (src/lib/queue-store.c), on temporary spool directories
 *
 * Covers: directories made at open (0700); new files under temporary names, invisible to scans
 * until committed; commits of 1..8 files with the number of syncs each takes (fsync per file
 * below QUEUE_STORE_GROUP_COMMIT_MIN, one syncfs from it on, plus the directory fsync); IDs
 * unique over a burst of 3000; a failed commit leaves nothing (failure injected before the
 * renames by putting a pipe where a file's descriptor was, so that its fsync fails EINVAL, and
 * during the renames by a file already holding the second ID, so that rename fails EEXIST after
 * the first file went in); not-ready files (-EAGAIN), symlinks (-ELOOP); marking done, durable
 * and seen by a re-open; garbled, empty and torn files (-EBADMSG with a reason) and their move to
 * corrupt; moves with and without times; hashing at depth 0, 1 and 2 and a change of depth
 * (the scan finds and re-homes files); request bits; stale temporary files removed at open;
 * defer/bounce logs byte for byte against golden/queue-store-log.ref, read back, and a file as
 * Postfix writes it; path safety (IDs with '/', "..", too long; bad log names).
 *
 * Limits: a real ENOSPC is shown by tests/queue/full-disk.sh (root, tmpfs in a private mount
 * namespace); crash safety by tests/queue/crash-test.sh. Power loss is not simulated.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "queue-sample.h"
#include "queue-store.h"
#include "test-util.h"

#ifndef TERN_SOURCE_ROOT
#error "TERN_SOURCE_ROOT must be defined"
#endif

static char *const default_hash[] = { (char *) "deferred", (char *) "defer", NULL };
static const char *const two_rcpts[] = { "a@example.com", "b@example.com" };

typedef struct Spool {
        char dir[64];
        size_t fds;
} Spool;

static int rm_rf(const char *path)
{
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
        return system(cmd);
}

static int setup(void **state)
{
        Spool *sp = calloc(1, sizeof(*sp));

        assert_non_null(sp);
        strcpy(sp->dir, "/tmp/test-queue-store-XXXXXX");
        assert_non_null(mkdtemp(sp->dir));
        sp->fds = count_open_fds();
        *state = sp;
        return 0;
}

static int teardown(void **state)
{
        Spool *sp = *state;
        size_t fds = sp->fds;

        rm_rf(sp->dir);
        free(sp);
        assert_int_equal(count_open_fds(), fds);        /* nothing leaked */
        return 0;
}

static QueueStore *open_store(Spool *sp, unsigned depth, char *const *hash)
{
        QueueStore *s = NULL;
        int r = queue_store_open(sp->dir, hash, depth, &s);

        if (r < 0)
                fail_msg("queue_store_open(%s, depth %u): %s", sp->dir, depth, strerror(-r));
        return s;
}

/* write_sample - the sample file for N's ID into N's descriptor */
static void write_sample(QueueNew *n, const char *const *rcpts, size_t n_rcpts)
{
        QueueBuf b = {};

        assert_int_equal(queue_sample_build(&b, queue_new_id(n), rcpts, n_rcpts, 3), 0);
        assert_int_equal(write(queue_new_fd(n), b.data, b.size), (ssize_t) b.size);
        queue_buf_done(&b);
}

/* spool_exists - does DIR/REL exist (lstat)? */
static bool spool_exists(Spool *sp, const char *rel)
{
        char p[1024];
        struct stat st;

        snprintf(p, sizeof(p), "%s/%s", sp->dir, rel);
        return lstat(p, &st) == 0;
}

/* count_entries - names in DIR/REL other than . and .., and how many of them hold a '.' */
static size_t count_entries(Spool *sp, const char *rel, size_t *ret_dotted)
{
        char p[1024];
        struct dirent *de;
        size_t n = 0, dotted = 0;
        DIR *d;

        snprintf(p, sizeof(p), "%s/%s", sp->dir, rel);
        d = opendir(p);
        assert_non_null(d);
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                n++;
                if (strchr(de->d_name, '.'))
                        dotted++;
        }
        closedir(d);
        if (ret_dotted)
                *ret_dotted = dotted;
        return n;
}

typedef struct Seen {
        char (*ids)[QUEUE_ID_MAX];
        size_t n, max;
        int stop_after;
} Seen;

static int collect(QueueStore *s, QueueName q, const char *id, const struct stat *st, void *userdata)
{
        Seen *seen = userdata;

        assert_true(S_ISREG(st->st_mode));
        assert_true(seen->n < seen->max);
        strcpy(seen->ids[seen->n++], id);
        if (seen->stop_after > 0 && (int) seen->n >= seen->stop_after)
                return -ECANCELED;
        return 0;
}

static size_t scan_count(QueueStore *s, QueueName q)
{
        char ids[64][QUEUE_ID_MAX];
        Seen seen = { .ids = ids, .max = 64 };

        assert_int_equal(queue_store_scan(s, q, collect, &seen), 0);
        return seen.n;
}

/* commit_one - a committed sample message in incoming; its ID into ID */
static void commit_one(QueueStore *s, const char *const *rcpts, size_t n_rcpts, char id[static QUEUE_ID_MAX])
{
        QueueNew *n = NULL;

        assert_int_equal(queue_new(s, &n), 0);
        write_sample(n, rcpts, n_rcpts);
        assert_int_equal(queue_store_commit(s, &n, 1, NULL), 0);
        strcpy(id, queue_new_id(n));
        queue_new_free(n);
}

static void test_names(void **state)
{
        for (QueueName q = 0; q < _QUEUE_MAX; q++)
                assert_int_equal(queue_name_from_string(queue_name_to_string(q)), q);
        assert_string_equal(queue_name_to_string(QUEUE_DEFERRED), "deferred");
        assert_int_equal(queue_name_from_string("defer"), QUEUE_INVALID);
        assert_int_equal(queue_name_from_string(NULL), QUEUE_INVALID);
        assert_null(queue_name_to_string(_QUEUE_MAX));
}

static void test_open_creates_dirs(void **state)
{
        Spool *sp = *state;
        static const char *const dirs[] = { "incoming", "active", "deferred", "hold", "corrupt", "defer",
                                            "bounce" };
        QueueStore *s = open_store(sp, 1, default_hash);

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char p[512];
                struct stat st;

                snprintf(p, sizeof(p), "%s/%s", sp->dir, dirs[i]);
                assert_int_equal(stat(p, &st), 0);
                assert_true(S_ISDIR(st.st_mode));
                if ((st.st_mode & 0777) != 0700)
                        fail_msg("%s: mode %o, expected 0700", dirs[i], st.st_mode & 0777);
        }
        assert_true(queue_store_dirfd(s) >= 0);
        queue_store_free(s);
        /* opening again over existing directories works */
        queue_store_free(open_store(sp, 1, default_hash));
        assert_int_equal(queue_store_open("/nonexistent/spool", default_hash, 1, &s), -ENOENT);
        assert_int_equal(queue_store_open(sp->dir, default_hash, QUEUE_HASH_DEPTH_MAX + 1, &s), -EINVAL);
}

static void test_commit_single(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        QueueMessage *m = NULL;
        QueueNew *n = NULL;
        char id[QUEUE_ID_MAX], path[128];
        size_t dotted;
        unsigned syncs = 99;
        struct stat st;

        assert_int_equal(queue_new(s, &n), 0);
        assert_true(queue_id_valid(queue_new_id(n)));
        strcpy(id, queue_new_id(n));
        write_sample(n, two_rcpts, 2);

        /* before the commit: one temporary name, 0600, that no scan reports */
        assert_int_equal(count_entries(sp, "incoming", &dotted), 1);
        assert_int_equal(dotted, 1);
        assert_int_equal(fstat(queue_new_fd(n), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(scan_count(s, QUEUE_INCOMING), 0);
        assert_int_equal(queue_store_stat(s, QUEUE_INCOMING, id, &st), -ENOENT);

        assert_int_equal(queue_store_commit(s, &n, 1, &syncs), 0);
        assert_int_equal(syncs, 2);     /* the file, then the directory */
        assert_string_equal(queue_new_id(n), id);
        queue_new_free(n);      /* committed: stays */

        assert_int_equal(count_entries(sp, "incoming", &dotted), 1);
        assert_int_equal(dotted, 0);
        snprintf(path, sizeof(path), "incoming/%s", id);
        assert_true(spool_exists(sp, path));
        assert_int_equal(queue_store_stat(s, QUEUE_INCOMING, id, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(scan_count(s, QUEUE_INCOMING), 1);

        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, id, &m, NULL), 0);
        assert_string_equal(m->id, id);
        assert_int_equal(m->queue, QUEUE_INCOMING);
        assert_int_equal(m->envelope.n_rcpts, 2);
        assert_string_equal(m->envelope.rcpts[0].address, "a@example.com");
        assert_string_equal(m->envelope.rcpts[1].address, "b@example.com");
        assert_string_equal(m->envelope.sender, "sender@example.org");
        assert_true(memmem(m->map, m->size, id, strlen(id)) != NULL);   /* the ID is in the content */
        queue_message_free(m);

        /* an aborted file leaves nothing */
        assert_int_equal(queue_new(s, &n), 0);
        write_sample(n, two_rcpts, 1);
        queue_new_free(n);
        assert_int_equal(count_entries(sp, "incoming", NULL), 1);
        queue_store_free(s);
}

static void test_commit_batches(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        size_t total = 0;

        for (size_t k = 1; k <= 8; k++) {
                QueueNew *v[8] = {};
                unsigned syncs = 0;

                for (size_t i = 0; i < k; i++) {
                        assert_int_equal(queue_new(s, &v[i]), 0);
                        write_sample(v[i], two_rcpts, 2);
                }
                assert_int_equal(queue_store_commit(s, v, k, &syncs), 0);
                /* below 3 (QUEUE_STORE_GROUP_COMMIT_MIN): one fsync each; from 3 on one syncfs;
                 * plus the one incoming directory */
                if (syncs != (k < 3 ? k : 1) + 1)
                        fail_msg("batch of %zu: %u syncs", k, syncs);
                for (size_t i = 0; i < k; i++) {
                        QueueMessage *m = NULL;

                        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, queue_new_id(v[i]), &m, NULL),
                                         0);
                        queue_message_free(m);
                        queue_new_free(v[i]);
                }
                total += k;
                assert_int_equal(scan_count(s, QUEUE_INCOMING), total);
        }
        /* the empty batch does nothing */
        unsigned syncs = 7;
        assert_int_equal(queue_store_commit(s, NULL, 0, &syncs), 0);
        assert_int_equal(syncs, 0);
        queue_store_free(s);
}

static int cmp_id(const void *a, const void *b)
{
        return strcmp(a, b);
}

#define BURST 3000
#define BURST_BATCH 50

static int count_cb(QueueStore *s, QueueName q, const char *id, const struct stat *st, void *userdata)
{
        (*(size_t *) userdata)++;
        return 0;
}

static void test_id_burst(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        char(*ids)[QUEUE_ID_MAX] = calloc(BURST, QUEUE_ID_MAX);
        size_t n_scanned = 0;

        assert_non_null(ids);
        for (size_t b = 0; b < BURST / BURST_BATCH; b++) {
                QueueNew *v[BURST_BATCH];

                for (size_t i = 0; i < BURST_BATCH; i++) {
                        assert_int_equal(queue_new(s, &v[i]), 0);
                        assert_int_equal(write(queue_new_fd(v[i]), "x", 1), 1);
                }
                assert_int_equal(queue_store_commit(s, v, BURST_BATCH, NULL), 0);
                for (size_t i = 0; i < BURST_BATCH; i++) {
                        strcpy(ids[b * BURST_BATCH + i], queue_new_id(v[i]));
                        queue_new_free(v[i]);
                }
        }
        qsort(ids, BURST, QUEUE_ID_MAX, cmp_id);
        for (size_t i = 1; i < BURST; i++)
                if (streq(ids[i - 1], ids[i]))
                        fail_msg("ID %s twice", ids[i]);
        assert_int_equal(queue_store_scan(s, QUEUE_INCOMING, count_cb, &n_scanned), 0);
        assert_int_equal(n_scanned, BURST);
        free(ids);
        queue_store_free(s);
}

/* assert_incoming_empty - no queue file and no temporary name left */
static void assert_incoming_empty(Spool *sp, size_t expected)
{
        size_t dotted, n = count_entries(sp, "incoming", &dotted);

        if (n != expected || dotted != 0)
                fail_msg("incoming: %zu names (%zu temporary), expected %zu and none", n, dotted, expected);
}

static void test_commit_fail_before_rename(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        QueueNew *v[2] = {};
        int pipefd[2];
        unsigned syncs;

        for (size_t i = 0; i < 2; i++) {
                assert_int_equal(queue_new(s, &v[i]), 0);
                write_sample(v[i], two_rcpts, 2);
        }
        /* the second file's descriptor now names a pipe: fsync() fails with EINVAL */
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        assert_true(dup2(pipefd[0], queue_new_fd(v[1])) >= 0);
        safe_close(pipefd[0]);
        safe_close(pipefd[1]);

        assert_int_equal(queue_store_commit(s, v, 2, &syncs), -EINVAL);
        assert_int_equal(syncs, 2);
        assert_incoming_empty(sp, 0);
        for (size_t i = 0; i < 2; i++) {
                struct stat st;

                assert_int_equal(queue_store_stat(s, QUEUE_INCOMING, queue_new_id(v[i]), &st), -ENOENT);
                queue_new_free(v[i]);
        }
        assert_int_equal(scan_count(s, QUEUE_INCOMING), 0);
        queue_store_free(s);
}

static void test_commit_fail_during_rename(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        QueueNew *v[3] = {};
        char decoy[128];
        _cleanup_(closep) int fd = -EBADF;

        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(queue_new(s, &v[i]), 0);
                write_sample(v[i], two_rcpts, 2);
        }
        /* the second ID is already taken: the first file is renamed, then the second fails */
        snprintf(decoy, sizeof(decoy), "%s/incoming/%s", sp->dir, queue_new_id(v[1]));
        fd = open(decoy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);

        assert_int_equal(queue_store_commit(s, v, 3, NULL), -EEXIST);
        assert_incoming_empty(sp, 1);   /* only the decoy */
        assert_true(access(decoy, F_OK) == 0);
        for (size_t i = 0; i < 3; i++)
                queue_new_free(v[i]);
        assert_incoming_empty(sp, 1);
        queue_store_free(s);
}

static void test_not_ready(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        QueueMessage *m = NULL;
        char id[QUEUE_ID_MAX], p[512];
        const char *reason = NULL;

        commit_one(s, two_rcpts, 2, id);
        snprintf(p, sizeof(p), "%s/incoming/%s", sp->dir, id);
        assert_int_equal(chmod(p, 0600), 0);
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, id, &m, &reason), -EAGAIN);
        assert_int_equal(queue_store_set_mode(s, QUEUE_INCOMING, id, QUEUE_MODE_UNTHROTTLE, 0), -EAGAIN);
        assert_int_equal(chmod(p, 0700), 0);
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, id, &m, &reason), 0);
        queue_message_free(m);

        /* a directory under a queue ID's name, a FIFO, a symlink */
        snprintf(p, sizeof(p), "%s/incoming/DirName", sp->dir);
        assert_int_equal(mkdir(p, 0700), 0);
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, "DirName", &m, &reason), -EISDIR);
        snprintf(p, sizeof(p), "%s/incoming/FifoName", sp->dir);
        assert_int_equal(mkfifo(p, 0700), 0);
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, "FifoName", &m, &reason), -EAGAIN);
        snprintf(p, sizeof(p), "%s/incoming/LinkName", sp->dir);
        assert_int_equal(symlink(id, p), 0);
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, "LinkName", &m, &reason), -ELOOP);
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, "Missing", &m, &reason), -ENOENT);
        /* a scan reports only the regular file */
        assert_int_equal(scan_count(s, QUEUE_INCOMING), 1);
        queue_store_free(s);
}

static void test_mark_done(void **state)
{
        Spool *sp = *state;
        static const char *const rcpts[] = { "one@example.com", "two@example.com", "three@example.com" };
        QueueStore *s = open_store(sp, 1, default_hash);
        QueueMessage *m = NULL;
        char id[QUEUE_ID_MAX];
        uint64_t off;
        char c;

        commit_one(s, rcpts, 3, id);
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, id, &m, NULL), 0);
        assert_int_equal(m->envelope.n_rcpts, 3);
        assert_false(m->envelope.rcpts[1].done);
        assert_int_equal(queue_message_mark_done(m, 1), 0);
        assert_true(m->envelope.rcpts[1].done);
        assert_int_equal(queue_message_mark_done(m, 1), 0);     /* twice: no change */
        assert_int_equal(queue_message_mark_done(m, 3), -EINVAL);
        off = m->envelope.rcpts[1].offset;
        assert_int_equal(m->map[off], 'D');                     /* the mapping sees it too */
        queue_message_free(m);

        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, id, &m, NULL), 0);
        assert_false(m->envelope.rcpts[0].done);
        assert_true(m->envelope.rcpts[1].done);
        assert_false(m->envelope.rcpts[2].done);
        /* the byte at a recipient's offset must be R (or D): anything else is refused untouched */
        c = 'w';
        assert_int_equal(pwrite(m->fd, &c, 1, (off_t) m->envelope.rcpts[2].offset), 1);
        assert_int_equal(queue_message_mark_done(m, 2), -EBADMSG);
        assert_int_equal(m->map[m->envelope.rcpts[2].offset], 'w');
        assert_false(m->envelope.rcpts[2].done);
        /* the unsynced form qmgr uses: 1 written, 0 already done, the same refusal */
        assert_int_equal(queue_file_mark_done(m->fd, m->envelope.rcpts[0].offset), 1);
        assert_int_equal(m->map[m->envelope.rcpts[0].offset], 'D');
        assert_int_equal(queue_file_mark_done(m->fd, m->envelope.rcpts[0].offset), 0);
        assert_int_equal(queue_file_mark_done(m->fd, m->envelope.rcpts[2].offset), -EBADMSG);
        assert_int_equal(queue_file_mark_done(m->fd, m->size + 100), -EBADMSG);
        queue_message_free(m);
        queue_store_free(s);
}

/* put_file - DIR/REL with SIZE bytes of DATA and MODE */
static void put_file(Spool *sp, const char *rel, const void *data, size_t size, mode_t mode)
{
        char p[512];
        int fd;

        snprintf(p, sizeof(p), "%s/%s", sp->dir, rel);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, size), (ssize_t) size);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void test_corrupt(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        QueueMessage *m = NULL;
        QueueBuf b = {};
        const char *reason;
        struct stat st;
        struct timespec t[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
        char p[512];

        put_file(sp, "incoming/Garbled", "hello world\n", 12, 0700);
        reason = NULL;
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, "Garbled", &m, &reason), -EBADMSG);
        assert_non_null(reason);

        put_file(sp, "incoming/Empty", "", 0, 0700);
        reason = NULL;
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, "Empty", &m, &reason), -EBADMSG);
        assert_string_equal(reason, "empty file");

        /* every truncation of a whole file is refused, never a crash */
        assert_int_equal(queue_sample_build(&b, "Torn", two_rcpts, 2, 2), 0);
        for (size_t cut = 1; cut < b.size; cut++) {
                put_file(sp, "incoming/Torn", b.data, cut, 0700);
                reason = NULL;
                if (queue_message_open(s, QUEUE_INCOMING, "Torn", &m, &reason) != -EBADMSG)
                        fail_msg("file cut at %zu of %zu bytes not refused", cut, b.size);
                assert_non_null(reason);
        }
        put_file(sp, "incoming/Torn", b.data, b.size, 0700);
        assert_int_equal(queue_message_open(s, QUEUE_INCOMING, "Torn", &m, &reason), 0);
        queue_message_free(m);
        queue_buf_done(&b);

        /* to corrupt: a plain move, times kept */
        snprintf(p, sizeof(p), "%s/incoming/Garbled", sp->dir);
        assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
        assert_int_equal(queue_store_move(s, QUEUE_INCOMING, "Garbled", QUEUE_CORRUPT, -1), 0);
        assert_false(spool_exists(sp, "incoming/Garbled"));
        assert_true(spool_exists(sp, "corrupt/Garbled"));
        assert_int_equal(queue_store_stat(s, QUEUE_CORRUPT, "Garbled", &st), 0);
        assert_int_equal(st.st_mtime, 1000000000);
        assert_int_equal(st.st_size, 12);
        queue_store_free(s);
}

static void test_moves(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        char id[QUEUE_ID_MAX], hash[8], p[512];
        struct timespec t[2] = { { .tv_sec = 1200000000 }, { .tv_sec = 1200000000 } };
        struct stat st;

        commit_one(s, two_rcpts, 2, id);
        assert_int_equal(queue_id_hash_path(id, 1, hash, sizeof(hash)), 0);
        snprintf(p, sizeof(p), "%s/incoming/%s", sp->dir, id);
        assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);

        /* without times: kept */
        assert_int_equal(queue_store_move(s, QUEUE_INCOMING, id, QUEUE_ACTIVE, -1), 0);
        assert_int_equal(queue_store_stat(s, QUEUE_ACTIVE, id, &st), 0);
        assert_int_equal(st.st_mtime, 1200000000);
        assert_int_equal(st.st_atime, 1200000000);

        /* with a next attempt: atime and mtime are it; deferred is hashed */
        assert_int_equal(queue_store_move(s, QUEUE_ACTIVE, id, QUEUE_DEFERRED, 1900000000), 0);
        snprintf(p, sizeof(p), "deferred/%s%s", hash, id);
        assert_true(spool_exists(sp, p));
        assert_int_equal(queue_store_stat(s, QUEUE_DEFERRED, id, &st), 0);
        assert_int_equal(st.st_mtime, 1900000000);
        assert_int_equal(st.st_atime, 1900000000);
        assert_int_equal(st.st_mode & 07777, 0700);

        /* hold and back (postsuper -h / -H): times kept */
        assert_int_equal(queue_store_move(s, QUEUE_DEFERRED, id, QUEUE_HOLD, -1), 0);
        assert_int_equal(queue_store_move(s, QUEUE_HOLD, id, QUEUE_DEFERRED, -1), 0);
        assert_int_equal(queue_store_stat(s, QUEUE_DEFERRED, id, &st), 0);
        assert_int_equal(st.st_mtime, 1900000000);

        /* within one queue: only the times */
        assert_int_equal(queue_store_move(s, QUEUE_DEFERRED, id, QUEUE_DEFERRED, 1950000000), 0);
        assert_int_equal(queue_store_stat(s, QUEUE_DEFERRED, id, &st), 0);
        assert_int_equal(st.st_mtime, 1950000000);

        /* gone, taken, bad queue */
        assert_int_equal(queue_store_move(s, QUEUE_ACTIVE, id, QUEUE_DEFERRED, -1), -ENOENT);
        put_file(sp, "active/Other", "x", 1, 0700);
        assert_int_equal(queue_store_move(s, QUEUE_DEFERRED, id, QUEUE_ACTIVE, -1), 0);
        assert_int_equal(queue_store_move(s, QUEUE_INCOMING, id, QUEUE_ACTIVE, -1), -ENOENT);
        put_file(sp, "incoming/Other", "y", 1, 0700);
        assert_int_equal(queue_store_move(s, QUEUE_INCOMING, "Other", QUEUE_ACTIVE, -1), -EEXIST);
        assert_int_equal(queue_store_stat(s, QUEUE_ACTIVE, "Other", &st), 0);
        assert_int_equal(st.st_size, 1);
        assert_int_equal(queue_store_move(s, QUEUE_INCOMING, id, _QUEUE_MAX, -1), -EINVAL);

        /* remove */
        assert_int_equal(queue_store_remove(s, QUEUE_ACTIVE, id), 0);
        assert_int_equal(queue_store_remove(s, QUEUE_ACTIVE, id), -ENOENT);
        queue_store_free(s);
}

static void test_set_mode(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        char id[QUEUE_ID_MAX];
        struct stat st;

        commit_one(s, two_rcpts, 1, id);
        assert_int_equal(queue_store_set_mode(s, QUEUE_INCOMING, id, QUEUE_MODE_UNTHROTTLE, 0), 0);
        assert_int_equal(queue_store_stat(s, QUEUE_INCOMING, id, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0740);
        assert_int_equal(
                queue_store_set_mode(s, QUEUE_INCOMING, id, QUEUE_MODE_EXPIRE, QUEUE_MODE_UNTHROTTLE), 0);
        assert_int_equal(queue_store_stat(s, QUEUE_INCOMING, id, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0710);
        /* only the request bits */
        assert_int_equal(queue_store_set_mode(s, QUEUE_INCOMING, id, 0, S_IXUSR), -EINVAL);
        assert_int_equal(queue_store_set_mode(s, QUEUE_INCOMING, id, S_IROTH, 0), -EINVAL);
        assert_int_equal(queue_store_set_mode(s, QUEUE_INCOMING, "Missing", QUEUE_MODE_EXPIRE, 0), -ENOENT);
        queue_store_free(s);
}

static void test_hash_depths(void **state)
{
        Spool *sp = *state;

        for (unsigned depth = 0; depth <= 2; depth++) {
                QueueStore *s = open_store(sp, depth, default_hash);
                char id[QUEUE_ID_MAX], hash[8], want[128], got[128];

                commit_one(s, two_rcpts, 1, id);
                assert_int_equal(queue_id_hash_path(id, depth, hash, sizeof(hash)), 0);
                assert_int_equal(strlen(hash), 2 * depth);
                assert_int_equal(queue_store_move(s, QUEUE_INCOMING, id, QUEUE_DEFERRED, -1), 0);
                snprintf(want, sizeof(want), "deferred/%s%s", hash, id);
                assert_int_equal(queue_store_path(s, "deferred", id, got, sizeof(got)), 0);
                assert_string_equal(got, want);
                assert_true(spool_exists(sp, want));
                /* unhashed queues and logs stay flat */
                assert_int_equal(queue_store_path(s, "active", id, got, sizeof(got)), 0);
                snprintf(want, sizeof(want), "active/%s", id);
                assert_string_equal(got, want);
                assert_int_equal(queue_store_path(s, "bounce", id, got, sizeof(got)), 0);
                snprintf(want, sizeof(want), "bounce/%s", id);
                assert_string_equal(got, want);
                assert_int_equal(queue_store_path(s, "defer", id, got, sizeof(got)), 0);
                snprintf(want, sizeof(want), "defer/%s%s", hash, id);
                assert_string_equal(got, want);
                /* a short buffer */
                assert_int_equal(queue_store_path(s, "defer", id, got, 8), -ENAMETOOLONG);
                assert_int_equal(queue_store_remove(s, QUEUE_DEFERRED, id), 0);
                queue_store_free(s);
        }
        /* hashed incoming: commit puts the file in its hash directory (made on demand) */
        {
                char *const all[] = { (char *) "incoming", (char *) "deferred", NULL };
                QueueStore *s = open_store(sp, 2, all);
                char id[QUEUE_ID_MAX], hash[8], want[128];
                QueueMessage *m = NULL;

                commit_one(s, two_rcpts, 1, id);
                assert_int_equal(queue_id_hash_path(id, 2, hash, sizeof(hash)), 0);
                snprintf(want, sizeof(want), "incoming/%s%s", hash, id);
                assert_true(spool_exists(sp, want));
                assert_int_equal(queue_message_open(s, QUEUE_INCOMING, id, &m, NULL), 0);
                queue_message_free(m);
                assert_int_equal(scan_count(s, QUEUE_INCOMING), 1);
                queue_store_free(s);
        }
}

static void test_depth_change(void **state)
{
        Spool *sp = *state;
        char ids[6][QUEUE_ID_MAX];
        QueueStore *s = open_store(sp, 2, default_hash);
        struct stat st;

        for (size_t i = 0; i < 6; i++) {
                commit_one(s, two_rcpts, 1, ids[i]);
                assert_int_equal(queue_store_move(s, QUEUE_INCOMING, ids[i], QUEUE_DEFERRED, -1), 0);
        }
        queue_store_free(s);

        /* depth 2 -> 1 -> 0 -> 2: before a scan the files are not where their IDs say; a scan finds
         * every one once and moves it there */
        static const unsigned depths[] = { 1, 0, 2 };
        for (size_t k = 0; k < ELEMENTSOF(depths); k++) {
                char found[16][QUEUE_ID_MAX];
                Seen seen = { .ids = found, .max = 16 };

                s = open_store(sp, depths[k], default_hash);
                assert_int_equal(queue_store_stat(s, QUEUE_DEFERRED, ids[0], &st), -ENOENT);
                assert_int_equal(queue_store_scan(s, QUEUE_DEFERRED, collect, &seen), 0);
                assert_int_equal(seen.n, 6);
                qsort(found, seen.n, QUEUE_ID_MAX, cmp_id);
                for (size_t i = 1; i < seen.n; i++)
                        assert_string_not_equal(found[i - 1], found[i]);
                for (size_t i = 0; i < 6; i++)
                        assert_int_equal(queue_store_stat(s, QUEUE_DEFERRED, ids[i], &st), 0);
                assert_int_equal(scan_count(s, QUEUE_DEFERRED), 6);
                queue_store_free(s);
        }
}

static void test_scan(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        char found[16][QUEUE_ID_MAX], id[QUEUE_ID_MAX], p[512];
        Seen seen = { .ids = found, .max = 16, .stop_after = 2 };
        QueueNew *n = NULL;

        for (size_t i = 0; i < 4; i++)
                commit_one(s, two_rcpts, 1, id);
        /* not queue files: a temporary writer, Postfix's temporary name, a dot file, a
         * directory with a long name, a symlink, a FIFO */
        assert_int_equal(queue_new(s, &n), 0);
        put_file(sp, "incoming/123456.789", "x", 1, 0700);
        put_file(sp, "incoming/.hidden", "x", 1, 0700);
        snprintf(p, sizeof(p), "%s/incoming/LongDir", sp->dir);
        assert_int_equal(mkdir(p, 0700), 0);
        put_file(sp, "incoming/LongDir/Inside", "x", 1, 0700);
        snprintf(p, sizeof(p), "%s/incoming/Link", sp->dir);
        assert_int_equal(symlink(id, p), 0);
        snprintf(p, sizeof(p), "%s/incoming/Fifo", sp->dir);
        assert_int_equal(mkfifo(p, 0700), 0);
        assert_int_equal(scan_count(s, QUEUE_INCOMING), 4);

        /* a callback's negative return stops the scan and is returned */
        assert_int_equal(queue_store_scan(s, QUEUE_INCOMING, collect, &seen), -ECANCELED);
        assert_int_equal(seen.n, 2);
        assert_int_equal(queue_store_scan(s, _QUEUE_MAX, collect, &seen), -EINVAL);
        queue_new_free(n);
        queue_store_free(s);
}

static void test_stale_temps(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        char p[512];

        put_file(sp, "incoming/111.222.3", "x", 1, 0600);       /* tern's, stale */
        put_file(sp, "incoming/444.555", "x", 1, 0700);         /* Postfix's, stale */
        put_file(sp, "incoming/666.777.8", "x", 1, 0600);       /* fresh: a live writer */
        put_file(sp, "incoming/notes.txt", "x", 1, 0600);       /* not a temporary name */
        for (size_t i = 0; i < 3; i++) {
                static const char *const names[] = { "111.222.3", "444.555", "notes.txt" };
                struct timespec t[2] = {
                        { .tv_sec = time(NULL) - QUEUE_STORE_STALE_TEMP_SEC - 60 },
                        { .tv_sec = time(NULL) - QUEUE_STORE_STALE_TEMP_SEC - 60 },
                };

                snprintf(p, sizeof(p), "%s/incoming/%s", sp->dir, names[i]);
                assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
        }
        queue_store_free(s);
        s = open_store(sp, 1, default_hash);
        assert_false(spool_exists(sp, "incoming/111.222.3"));
        assert_false(spool_exists(sp, "incoming/444.555"));
        assert_true(spool_exists(sp, "incoming/666.777.8"));
        assert_true(spool_exists(sp, "incoming/notes.txt"));
        queue_store_free(s);
}

static const QueueLogEntry log_entries[] = {
        {
                .recipient = "user@example.com",
                .original_recipient = "alias@example.com",
                .offset = 250,
                .status = "4.4.1",
                .action = "delayed",
                .reason = "connect to mx.example.com[192.0.2.1]:25: Connection refused",
        },
        {
                .recipient = "john doe@example.com",
                .offset = -1,
                .dsn_orig_rcpt = "rfc822;john.doe@example.com",
                .notify_flags = 6,
                .status = "5.1.1",
                .action = "failed",
                .diag_type = "smtp",
                .diag_text = "550 5.1.1 User unknown",
                .mta_type = "dns",
                .mta_mname = "mx.example.com",
                .reason = "host mx.example.com[192.0.2.1] said: 550 5.1.1 User unknown "
                          "(in reply to RCPT TO command)",
        },
        {
                .recipient = "",
                .original_recipient = "",
                .offset = -1,
                .status = "4.3.0",
                .action = "delayed",
                .diag_type = "smtp",    /* without diag_text: the pair is left out */
                .reason = "delivery temporarily suspended",
        },
};

/* read_all - a whole file, malloc'ed and NUL-terminated */
static char *read_all(const char *path, size_t *ret_size)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;
        FILE *o;
        int c;

        if (!f)
                fail_msg("%s: %s", path, strerror(errno));
        o = open_memstream(&buf, &size);
        assert_non_null(o);
        while ((c = fgetc(f)) != EOF)
                fputc(c, o);
        fclose(o);
        fclose(f);
        *ret_size = size;
        return buf;
}

static void assert_str_eq(const char *got, const char *want, const char *what)
{
        if (!want || !*want) {
                if (got && *got)
                        fail_msg("%s: got \"%s\", expected none", what, got);
                return;
        }
        if (!got || !streq(got, want))
                fail_msg("%s: got \"%s\", expected \"%s\"", what, strna(got), want);
}

static void test_log_golden(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        QueueLogEntry *v = NULL;
        _cleanup_(freep) char *want = NULL, *got = NULL;
        size_t n = 0, want_size, got_size;
        const char *const logs[] = { "defer", "bounce" };
        char rel[128], p[512];

        want = read_all(TERN_SOURCE_ROOT "/tests/unit/lib/golden/queue-store-log.ref", &want_size);
        for (size_t l = 0; l < ELEMENTSOF(logs); l++) {
                for (size_t i = 0; i < ELEMENTSOF(log_entries); i++)
                        assert_int_equal(queue_log_append(s, logs[l], "LogId123", &log_entries[i]), 0);
                assert_int_equal(queue_store_path(s, logs[l], "LogId123", rel, sizeof(rel)), 0);
                snprintf(p, sizeof(p), "%s/%s", sp->dir, rel);
                free(got);
                got = read_all(p, &got_size);
                if (got_size != want_size || memcmp(got, want, want_size) != 0)
                        fail_msg("%s differs from golden/queue-store-log.ref:\n%s", rel, got);

                assert_int_equal(queue_log_read(s, logs[l], "LogId123", &v, &n), 0);
                assert_int_equal(n, ELEMENTSOF(log_entries));
                for (size_t i = 0; i < n; i++) {
                        const QueueLogEntry *e = &log_entries[i];

                        assert_str_eq(v[i].recipient, e->recipient, "recipient");
                        assert_true(v[i].recipient != NULL);
                        assert_str_eq(v[i].original_recipient, i == 0 ? e->original_recipient : NULL,
                                      "original_recipient");
                        assert_int_equal(v[i].offset, e->offset);
                        assert_str_eq(v[i].dsn_orig_rcpt, e->dsn_orig_rcpt, "dsn_orig_rcpt");
                        assert_int_equal(v[i].notify_flags, e->notify_flags);
                        assert_str_eq(v[i].status, e->status, "status");
                        assert_str_eq(v[i].action, e->action, "action");
                        assert_str_eq(v[i].diag_type, e->diag_text ? e->diag_type : NULL, "diag_type");
                        assert_str_eq(v[i].diag_text, e->diag_text, "diag_text");
                        assert_str_eq(v[i].mta_type, e->mta_type, "mta_type");
                        assert_str_eq(v[i].mta_mname, e->mta_mname, "mta_mname");
                        assert_str_eq(v[i].reason, e->reason, "reason");
                }
                queue_log_entries_free(v, n);
                assert_int_equal(queue_log_remove(s, logs[l], "LogId123"), 0);
                assert_int_equal(queue_log_remove(s, logs[l], "LogId123"), -ENOENT);
                assert_int_equal(queue_log_read(s, logs[l], "LogId123", &v, &n), -ENOENT);
        }
        queue_store_free(s);
}

static void test_log_postfix(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 0, default_hash);
        QueueLogEntry *v = NULL;
        size_t n = 0;
        /* as Postfix writes it, plus what a reader must survive: a record with an attribute this
         * version does not know, a garbage line, an old-style record alone (Postfix < 2.3), extra
         * empty lines, and a last record without its closing empty line */
        static const char text[] = "\n"
                                   "<x@example.com>: old text\n"
                                   "recipient=x@example.com\n"
                                   "orig_rcpt_future=1\n"
                                   "status=4.0.0\n"
                                   "garbage line\n"
                                   "reason=new text\n"
                                   "\n"
                                   "\n"
                                   "<\"q r\"@example.com>: only old style\n"
                                   "\n"
                                   "\n"
                                   "recipient=last@example.com\n"
                                   "offset=99\n"
                                   "reason=cut";

        put_file(sp, "bounce/PfxLog", text, strlen(text), 0600);
        assert_int_equal(queue_log_read(s, "bounce", "PfxLog", &v, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(v[0].recipient, "x@example.com");
        assert_string_equal(v[0].status, "4.0.0");
        assert_string_equal(v[0].reason, "new text");
        assert_string_equal(v[1].recipient, "q r@example.com");
        assert_string_equal(v[1].reason, "only old style");
        assert_null(v[1].status);
        assert_string_equal(v[2].recipient, "last@example.com");
        assert_int_equal(v[2].offset, 99);
        assert_string_equal(v[2].reason, "cut");
        queue_log_entries_free(v, n);
        queue_store_free(s);
}

static void test_path_safety(void **state)
{
        Spool *sp = *state;
        QueueStore *s = open_store(sp, 1, default_hash);
        static const char *const bad[] = { "a/b", "..", ".", "", "../incoming/x", "a.b", "a b",
                                           "0123456789012345678901234567890123" };
        QueueLogEntry e = { .recipient = "a@b", .offset = -1 };
        QueueMessage *m = NULL;
        struct stat st;
        char buf[128];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *id = bad[i];

                assert_int_equal(queue_store_path(s, "deferred", id, buf, sizeof(buf)), -EINVAL);
                assert_int_equal(queue_message_open(s, QUEUE_INCOMING, id, &m, NULL), -EINVAL);
                assert_int_equal(queue_store_move(s, QUEUE_INCOMING, id, QUEUE_ACTIVE, -1), -EINVAL);
                assert_int_equal(queue_store_set_mode(s, QUEUE_INCOMING, id, QUEUE_MODE_EXPIRE, 0), -EINVAL);
                assert_int_equal(queue_store_remove(s, QUEUE_INCOMING, id), -EINVAL);
                assert_int_equal(queue_store_stat(s, QUEUE_INCOMING, id, &st), -EINVAL);
                assert_int_equal(queue_log_append(s, "defer", id, &e), -EINVAL);
                assert_int_equal(queue_log_remove(s, "defer", id), -EINVAL);
        }
        assert_int_equal(queue_store_stat(s, QUEUE_INCOMING, NULL, &st), -EINVAL);
        /* the longest valid ID is fine */
        assert_int_equal(queue_store_path(s, "active", "012345678901234567890123456789A", buf, sizeof(buf)),
                         0);
        /* log and queue names: only plain names, only the known logs */
        assert_int_equal(queue_store_path(s, "../etc", "Abc", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(queue_store_path(s, "", "Abc", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(queue_log_append(s, "flush", "Abc", &e), -EINVAL);
        assert_int_equal(queue_log_append(s, "../defer", "Abc", &e), -EINVAL);
        assert_int_equal(queue_store_move(s, QUEUE_INVALID, "Abc", QUEUE_ACTIVE, -1), -EINVAL);
        queue_store_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test_setup_teardown(test_open_creates_dirs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_single, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_batches, setup, teardown),
                cmocka_unit_test_setup_teardown(test_id_burst, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_fail_before_rename, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_fail_during_rename, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_ready, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mark_done, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_moves, setup, teardown),
                cmocka_unit_test_setup_teardown(test_set_mode, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hash_depths, setup, teardown),
                cmocka_unit_test_setup_teardown(test_depth_change, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_temps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log_golden, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log_postfix, setup, teardown),
                cmocka_unit_test_setup_teardown(test_path_safety, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
