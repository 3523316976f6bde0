/* SPDX-License-Identifier: MIT */
/*
 * queue-store.h - the spool: queues, durable creation, moves, scans, per-message logs
 *
 * queue_directory holds the queues incoming, active, deferred, hold, corrupt (queue files) and
 * the per-message logs defer, bounce; the queues in hash_queue_names have hash_queue_depth levels
 * of one-character subdirectories (queue-id.h). Postfix's file-state conventions hold:
 *   - a queue file may be opened only when its mode has all of 0700 (ready); tern writes new
 *     files 0600 and makes them 0700 only once they are whole;
 *   - the group bits carry requests: S_IRGRP unthrottle, S_IXGRP force-expire;
 *   - a file's mtime is the earliest time of its next attempt;
 *   - moves between queues are renames, and keep the file's times unless told otherwise.
 *
 * Durability (what makes "queued" true): a new file is written under a temporary name in
 * incoming, fsync'ed, made ready, renamed to its queue ID and the directory fsync'ed, in that
 * order, before queue_store_commit() returns. queue_store_commit() takes a batch: the data of all
 * its files is made durable with one syncfs() (group commit) when the batch is large enough that
 * this is cheaper than one fsync() per file, and the directory with one fsync(). Nothing is
 * acknowledged before it is durable. A crash at any point leaves either a temporary file (not a
 * queue file: scans skip it, queue_store_open() removes stale ones) or a whole ready queue file.
 *
 * Library code: returns -errno, does not log.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "queue-file.h"
#include "queue-id.h"

typedef enum QueueName {
        QUEUE_INCOMING,
        QUEUE_ACTIVE,
        QUEUE_DEFERRED,
        QUEUE_HOLD,
        QUEUE_CORRUPT,
        _QUEUE_MAX,
        QUEUE_INVALID = -EINVAL,
} QueueName;

const char *queue_name_to_string(QueueName q);
QueueName queue_name_from_string(const char *s);

/* Postfix's request bits in a ready file's mode */
#define QUEUE_MODE_READY 0700
#define QUEUE_MODE_UNTHROTTLE S_IRGRP
#define QUEUE_MODE_EXPIRE S_IXGRP

typedef struct QueueStore QueueStore;

/*
 * queue_store_open - open QUEUE_DIRECTORY, create the queue and log directories that are missing
 * (0700; hashed ones lazily), and remove temporary files older than QUEUE_STORE_STALE_TEMP_SEC
 * left in incoming by a writer that died. HASH_QUEUE_NAMES is a NULL-terminated list of queue or
 * log names ("deferred", "defer").
 */
int queue_store_open(const char *queue_directory, char *const *hash_queue_names, unsigned hash_depth,
                     QueueStore **ret);
QueueStore *queue_store_free(QueueStore *s);
int queue_store_dirfd(const QueueStore *s);

/* A temporary writer older than this has died: its file can go (Postfix: postsuper/cleanup). */
#define QUEUE_STORE_STALE_TEMP_SEC (24 * 3600)

/* ---- new messages */
typedef struct QueueNew QueueNew;

/*
 * queue_new - a temporary file in incoming (mode 0600, O_EXCL), written through queue_new_fd().
 * Its queue ID is known at once (creation time + inode, as Postfix's), so that the writer can
 * put it in the Received: and Message-Id: headers; it names the file only after the commit.
 */
int queue_new(QueueStore *s, QueueNew **ret);
int queue_new_fd(const QueueNew *n);
const char *queue_new_id(const QueueNew *n);
/* queue_new_write - all of DATA to the new file, or -errno (-ENOSPC on a full disk) */
int queue_new_write(QueueNew *n, const void *data, size_t size);
/* queue_new_abort - remove the temporary file; also what queue_new_free() does to an uncommitted one */
QueueNew *queue_new_free(QueueNew *n);

/*
 * queue_store_commit - make the N files of V durable and visible (see above). On success every
 * V[i] has its ID. On failure nothing of the batch is visible and the temporary files are gone
 * (-ENOSPC, -EIO, ...). *ret_syncs (may be NULL): fsync()/syncfs() calls made.
 */
int queue_store_commit(QueueStore *s, QueueNew *const *v, size_t n, unsigned *ret_syncs);

/* ---- existing messages */
typedef struct QueueMessage {
        QueueName queue;
        char id[QUEUE_ID_MAX];
        int fd;                         /* read-write, so that recipients can be marked done */
        struct stat st;
        const uint8_t *map;             /* the whole file, read-only */
        size_t size;
        QueueEnvelope envelope;
} QueueMessage;

/*
 * queue_message_open - open and decode ID in queue Q. -ENOENT gone, -EAGAIN not ready (mode),
 * -EBADMSG garbled (with *ret_reason): the caller moves it to corrupt with
 * queue_store_move(..., QUEUE_CORRUPT, ...) and logs Postfix's warning.
 */
int queue_message_open(QueueStore *s, QueueName q, const char *id, QueueMessage **ret, const char **ret_reason);
QueueMessage *queue_message_free(QueueMessage *m);
/* queue_message_mark_done - overwrite recipient I's R with D, durably (fdatasync) */
int queue_message_mark_done(QueueMessage *m, size_t i);
/* queue_file_mark_done - overwrite the R record at OFFSET of the queue file FD with D, not
 * synced (the caller syncs once for many): 1 written, 0 already D, -EBADMSG when the byte
 * there is neither (a wrong offset never overwrites anything else) */
int queue_file_mark_done(int fd, uint64_t offset);

/*
 * queue_store_move - rename ID from queue FROM to queue TO (hashed path as TO needs); with
 * NEXT_ATTEMPT >= 0 set atime and mtime to it (deferred: the next attempt), else keep the times.
 */
int queue_store_move(QueueStore *s, QueueName from, const char *id, QueueName to, int64_t next_attempt);
/* queue_store_set_mode - set (SET) and clear (CLEAR) request bits of a ready file */
int queue_store_set_mode(QueueStore *s, QueueName q, const char *id, mode_t set, mode_t clear);
int queue_store_remove(QueueStore *s, QueueName q, const char *id);
int queue_store_stat(QueueStore *s, QueueName q, const char *id, struct stat *ret);
/* queue_store_path - "deferred/6/ID" relative to queue_directory */
int queue_store_path(const QueueStore *s, const char *queue_or_log, const char *id, char *ret, size_t size);

/* ---- scans: every queue file of Q, hashed subdirectories included; temporary names skipped.
 * The callback returns < 0 to stop (that value is returned), else the scan goes on. */
typedef int (*QueueScanFn)(QueueStore *s, QueueName q, const char *id, const struct stat *st, void *userdata);
int queue_store_scan(QueueStore *s, QueueName q, QueueScanFn fn, void *userdata);
/* queue_store_list - the same walk without a stat per file (the directory's d_type says what is
 * a file): FN gets ST NULL. For a scanner that stats what it takes anyway (qmgr). */
int queue_store_list(QueueStore *s, QueueName q, QueueScanFn fn, void *userdata);

/* ---- per-message logs: defer/ID and bounce/ID in Postfix's record layout (§3.11):
 * an empty line, "<rcpt>: reason" (backwards_bounce_logfile_compatibility), name=value lines
 * (recipient, original_recipient, offset, dsn_orig_rcpt, notify_flags, status, action,
 * diag_type/diag_text, mta_type/mta_mname, reason), an empty line. Appended under flock, fsync'ed;
 * a failed append is truncated back. */
typedef struct QueueLogEntry {
        const char *recipient;
        const char *original_recipient;         /* NULL: same */
        int64_t offset;                         /* the recipient's record offset, -1: none */
        const char *dsn_orig_rcpt;
        int notify_flags;                       /* 0: none */
        const char *status;                     /* "4.4.1" */
        const char *action;                     /* "delayed", "failed" */
        const char *diag_type, *diag_text;
        const char *mta_type, *mta_mname;
        const char *reason;
} QueueLogEntry;

int queue_log_append(QueueStore *s, const char *log, const char *id, const QueueLogEntry *e);
/* queue_log_read - every entry of LOG for ID, with strings owned by *ret (free with queue_log_entries_free) */
int queue_log_read(QueueStore *s, const char *log, const char *id, QueueLogEntry **ret, size_t *ret_n);
void queue_log_entries_free(QueueLogEntry *v, size_t n);
int queue_log_remove(QueueStore *s, const char *log, const char *id);
