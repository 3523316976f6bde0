/* SPDX-License-Identifier: MIT */
/*
 * queue-commit.h - group commit of new queue files, for every writer of new mail (tern-submit,
 * tern-smtpd)
 *
 * A writer builds its queue file under a temporary name (queue_new, queue_new_write) and joins
 * the pending batch with queue_commit_join(). The batch is committed from an event source at
 * idle priority, so it runs only when nothing else is ready: every message that finished in the
 * meantime joins the same queue_store_commit(), which makes the whole batch durable with as few
 * syncs as it can (what gets past the disk's per-file fsync rate). Nobody hears "queued" before
 * queue_store_commit() has returned for their file (Postfix's rule). After a good batch tern-qmgr
 * is asked, once, to scan incoming (a oneway call; when qmgr is not running the messages wait for
 * its next scan).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "queue-store.h"

typedef struct QueueCommitter QueueCommitter;
typedef struct QueueCommitWaiter QueueCommitWaiter;

/*
 * One message waiting for the commit, embedded in its writer's own state. The writer sets qnew,
 * done and (optionally) alive before joining. done() is called once, from the commit: error 0
 * (the file is durable, queue_new_id(qnew) names it) or -errno (nothing of it is queued; the
 * temporary file is gone); -ECONNRESET when alive() said the client had left. done() may free
 * the writer and its qnew.
 */
struct QueueCommitWaiter {
        QueueCommitWaiter *next;
        QueueNew *qnew;
        void (*done)(QueueCommitWaiter *w, int error);
        bool (*alive)(QueueCommitWaiter *w);    /* is the client still there? NULL: yes */
};

/* queue_committer_new - batches for STORE on EVENT; QMGR_SOCKET is told after each good batch */
int queue_committer_new(sd_event *event, QueueStore *store, const char *qmgr_socket, uint64_t ipc_timeout_usec,
                        QueueCommitter **ret);
/* queue_committer_free - waiters still pending hear nothing: their owners free them */
QueueCommitter *queue_committer_free(QueueCommitter *q);

void queue_commit_join(QueueCommitter *q, QueueCommitWaiter *w);
/* queue_commit_leave - W's client is gone before the commit: out of the batch, no callback */
void queue_commit_leave(QueueCommitter *q, QueueCommitWaiter *w);

/* Messages committed, batches and syncs made: for STATUS= and the benchmarks */
void queue_committer_stats(const QueueCommitter *q, uint64_t *ret_messages, uint64_t *ret_batches,
                           uint64_t *ret_syncs);
