/* SPDX-License-Identifier: MIT */
/*
 * queue-commit.c - the group commit of new queue files (see queue-commit.h)
 */
#include <errno.h>
#include <stdlib.h>

#include "json-util.h"
#include "macro.h"
#include "queue-commit.h"
#include "varlink.h"

/* Batches commit at idle priority: after every other ready event. */
#define QUEUE_COMMIT_PRIORITY SD_EVENT_PRIORITY_IDLE

struct QueueCommitter {
        sd_event *event;
        QueueStore *store;
        char *qmgr_socket;
        uint64_t ipc_timeout_usec;
        QueueCommitWaiter *head, *tail;
        size_t n_pending;
        sd_event_source *commit;
        uint64_t n_messages, n_batches, n_syncs;
};

/* trigger_qmgr - oneway io.tern.Qmgr.Trigger incoming; a missing qmgr is fine */
static void trigger_qmgr(QueueCommitter *q)
{
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;

        if (varlink_client_connect(q->qmgr_socket, &c) < 0)
                return; /* not running: the messages wait in incoming for its next scan */
        varlink_client_set_timeout(c, q->ipc_timeout_usec);
        (void) varlink_client_send(c, "io.tern.Qmgr.Trigger", json_pack("{s:[s]}", "requests", "incoming"),
                                   NULL, 0, VARLINK_CALL_ONEWAY);
}

static int on_commit(sd_event_source *source, void *userdata)
{
        QueueCommitter *q = userdata;
        _cleanup_(freep) QueueNew **batch = NULL;
        _cleanup_(freep) QueueCommitWaiter **waiters = NULL;
        QueueCommitWaiter *w, *next;
        unsigned syncs = 0;
        size_t n = 0;
        int r;

        batch = calloc(q->n_pending, sizeof(QueueNew *));
        waiters = calloc(q->n_pending, sizeof(QueueCommitWaiter *));
        if (!batch || !waiters)
                return 0;       /* try again on the next idle turn */

        /* The batch is taken whole first: a done() callback may join or leave. */
        for (w = q->head; w; w = next) {
                next = w->next;
                w->next = NULL;
                waiters[n++] = w;
        }
        q->head = q->tail = NULL;
        q->n_pending = 0;
        (void) sd_event_source_set_enabled(q->commit, SD_EVENT_OFF);

        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                w = waiters[i];
                if (w->alive && !w->alive(w)) {
                        w->done(w, -ECONNRESET);
                        continue;
                }
                waiters[k] = w;
                batch[k++] = w->qnew;
        }
        if (k == 0)
                return 0;

        r = queue_store_commit(q->store, batch, k, &syncs);
        q->n_batches++;
        q->n_syncs += syncs;
        if (r >= 0)
                q->n_messages += k;
        for (size_t i = 0; i < k; i++)
                waiters[i]->done(waiters[i], r < 0 ? r : 0);
        if (r >= 0)
                trigger_qmgr(q);
        return 0;
}

int queue_committer_new(sd_event *event, QueueStore *store, const char *qmgr_socket, uint64_t ipc_timeout_usec,
                        QueueCommitter **ret)
{
        QueueCommitter *q;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->event = sd_event_ref(event);
        q->store = store;
        q->ipc_timeout_usec = ipc_timeout_usec;
        q->qmgr_socket = strdup(qmgr_socket);
        if (!q->qmgr_socket) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_add_defer(event, &q->commit, on_commit, q);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_priority(q->commit, QUEUE_COMMIT_PRIORITY);
        (void) sd_event_source_set_enabled(q->commit, SD_EVENT_OFF);
        *ret = q;
        return 0;
fail:
        queue_committer_free(q);
        return r;
}

QueueCommitter *queue_committer_free(QueueCommitter *q)
{
        if (!q)
                return NULL;
        sd_event_source_disable_unref(q->commit);
        free(q->qmgr_socket);
        sd_event_unref(q->event);
        free(q);
        return NULL;
}

void queue_commit_join(QueueCommitter *q, QueueCommitWaiter *w)
{
        w->next = NULL;
        if (q->tail)
                q->tail->next = w;
        else
                q->head = w;
        q->tail = w;
        q->n_pending++;
        (void) sd_event_source_set_enabled(q->commit, SD_EVENT_ON);
}

void queue_commit_leave(QueueCommitter *q, QueueCommitWaiter *w)
{
        for (QueueCommitWaiter **p = &q->head, *prev = NULL; *p; prev = *p, p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        if (q->tail == w)
                                q->tail = prev;
                        q->n_pending--;
                        w->next = NULL;
                        return;
                }
}

void queue_committer_stats(const QueueCommitter *q, uint64_t *ret_messages, uint64_t *ret_batches,
                           uint64_t *ret_syncs)
{
        *ret_messages = q->n_messages;
        *ret_batches = q->n_batches;
        *ret_syncs = q->n_syncs;
}
