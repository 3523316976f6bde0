/* SPDX-License-Identifier: MIT */
/*
 * qmgr-scan.c - the incoming and deferred scans, the import loop, triggers, inotify
 *
 * What qmgr.c's qmgr_loop/qmgr_trigger_event and qmgr_scan.c do (postfix-semantics.md §3.1, §3.3):
 *   - a scan is a snapshot of a queue directory's names, walked in
 *     order; a request to start a scan that is running restarts it when it ends;
 *   - the import loop takes one file at a time, incoming and deferred in turn (fairness), while
 *     the in-core message count is below qmgr_message_active_limit and the in-core recipient
 *     count below qmgr_message_recipient_limit (oqmgr's leaky bucket); when room opens after the
 *     bucket was full, incoming goes first;
 *   - a file whose mtime (its next attempt) is more than a second in the future is skipped unless
 *     the scan has QMGR_SCAN_ALL; one that is not ready (mode) is skipped (qmgr-message.c checks
 *     both when it takes the file; the snapshot holds names only);
 *   - triggers: incoming/wakeup (I, W), deferred (D), the modifiers all (A) and flushDead (F),
 *     which apply to the running scans and the next ones; flushDead also unthrottles every dead
 *     transport and destination at once;
 *   - a deferred scan every queue_run_delay; incoming is also watched with inotify (a file
 *     renamed into it starts an incoming scan), so a lost trigger never strands mail.
 * The loop imports at most QMGR_IMPORT_BATCH files per event-loop pass, so that agents' answers
 * and control calls are served between batches.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "qmgr.h"

/* files examined per event-loop pass before the loop yields to I/O */
#define QMGR_IMPORT_BATCH 64

int qmgr_ids_add(QmgrIds *ids, const char *id)
{
        if (ids->n == ids->alloc) {
                size_t na = ids->alloc ? ids->alloc * 2 : 256;
                void *nv = reallocarray(ids->v, na, QUEUE_ID_MAX);
                if (!nv)
                        return -ENOMEM;
                ids->v = nv;
                ids->alloc = na;
        }
        snprintf(ids->v[ids->n++], QUEUE_ID_MAX, "%s", id);
        return 0;
}

static int ids_add_one(QueueStore *store, QueueName q, const char *id, const struct stat *st, void *userdata)
{
        return qmgr_ids_add(userdata, id);
}

int qmgr_ids_list(QueueStore *s, QueueName q, QmgrIds *ids)
{
        /* names only: whoever takes a file stats it then (a listing's times would be stale) */
        return queue_store_list(s, q, ids_add_one, ids);
}

void qmgr_ids_done(QmgrIds *ids)
{
        ids->v = mfree(ids->v);
        ids->n = ids->alloc = 0;
}

static void scan_clear(QmgrScan *s)
{
        qmgr_ids_done(&s->names);
        s->pos = 0;
        s->running = false;
}

static int scan_start(Qmgr *q, QmgrScan *s, unsigned flags)
{
        int r;

        scan_clear(s);
        r = qmgr_ids_list(q->store, s->queue, &s->names);
        if (r < 0) {
                scan_clear(s);
                return log_error_errno(r, "scan of %s: %m", queue_name_to_string(s->queue));
        }
        s->running = true;
        s->flags = flags & ~QMGR_SCAN_START;
        s->files_seen = s->names.n;
        return 0;
}

/* scan_next - the next file of S, or NULL when S has ended (restarting it if asked) */
static const char *scan_next(Qmgr *q, QmgrScan *s)
{
        for (;;) {
                if (!s->running) {
                        if (!(s->next_flags & QMGR_SCAN_START))
                                return NULL;
                        unsigned f = s->next_flags;
                        s->next_flags = 0;
                        if (scan_start(q, s, f) < 0)
                                return NULL;
                }
                if (s->pos < s->names.n)
                        return s->names.v[s->pos++];
                scan_clear(s);
        }
}

static bool have_room(Qmgr *q)
{
        return (int64_t) q->active.n < q->message_active_limit &&
               (int64_t) q->recipients_in_core < q->message_recipient_limit;
}

static int on_import(sd_event_source *source, void *userdata)
{
        Qmgr *q = userdata;
        unsigned budget = QMGR_IMPORT_BATCH;

        while (budget > 0) {
                const char *n;
                QmgrScan *s;

                if (!have_room(q)) {
                        q->next_scan = QMGR_SCAN_INCOMING;      /* incoming first when room opens */
                        (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
                        return 0;
                }
                /* one pass: the next file of the scan whose turn it is; if that one is not
                 * taken (gone, not ready, not due), the other scan's next file */
                bool examined = false, taken = false;
                for (unsigned k = 0; k < _QMGR_SCAN_MAX && !taken; k++) {
                        char id[QUEUE_ID_MAX];
                        int r;

                        s = &q->scans[(q->next_scan + k) % _QMGR_SCAN_MAX];
                        n = scan_next(q, s);
                        if (!n)
                                continue;
                        examined = true;
                        snprintf(id, sizeof(id), "%s", n);
                        r = qmgr_message_import(q, s->queue, id, s->flags);
                        if (r == -ENOMEM)
                                log_error("out of memory importing %s", id);
                        taken = r == 0;
                }
                if (!examined) {
                        (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
                        return 0;
                }
                /* the other queue's turn next (fairness, one message at a time) */
                q->next_scan = (QmgrScanKind) ((q->next_scan + 1) % _QMGR_SCAN_MAX);
                budget--;
        }
        /* more to do: stay enabled, after the I/O of this pass */
        (void) sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        return 0;
}

void qmgr_schedule_import(Qmgr *q)
{
        if (!q->import_source)
                return;
        (void) sd_event_source_set_enabled(q->import_source, SD_EVENT_ONESHOT);
}

void qmgr_scan_request(Qmgr *q, QmgrScanKind kind, unsigned flags)
{
        QmgrScan *s = &q->scans[kind];

        /* modifiers apply to the running scan and to the next one */
        if (s->running)
                s->flags |= flags & (QMGR_SCAN_ALL | QMGR_FLUSH_DFXP);
        s->next_flags |= flags;
        if (flags & QMGR_SCAN_START)
                qmgr_schedule_import(q);
}

int qmgr_trigger(Qmgr *q, const char *const *requests, size_t n, const char **ret_bad)
{
        unsigned mods = 0;
        bool in = false, def = false, flush = false;

        for (size_t i = 0; i < n; i++) {
                const char *r = requests[i];
                if (streq(r, "incoming") || streq(r, "wakeup"))
                        in = true;
                else if (streq(r, "deferred"))
                        def = true;
                else if (streq(r, "all"))
                        mods |= QMGR_SCAN_ALL;
                else if (streq(r, "flushDead")) {
                        mods |= QMGR_FLUSH_DFXP;
                        flush = true;
                } else {
                        if (ret_bad)
                                *ret_bad = r;
                        return -EINVAL;
                }
        }
        if (flush)
                qmgr_enable_all(q);
        qmgr_scan_request(q, QMGR_SCAN_INCOMING, mods | (in ? QMGR_SCAN_START : 0));
        qmgr_scan_request(q, QMGR_SCAN_DEFERRED, mods | (def ? QMGR_SCAN_START : 0));
        return 0;
}

static int on_deferred_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Qmgr *q = userdata;

        qmgr_scan_request(q, QMGR_SCAN_DEFERRED, QMGR_SCAN_START);
        (void) sd_event_source_set_time_relative(s, (uint64_t) q->queue_run_delay * USEC_PER_SEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Qmgr *q = userdata;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        /* what arrived does not matter, only that something did */
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        qmgr_scan_request(q, QMGR_SCAN_INCOMING, QMGR_SCAN_START);
        return 0;
}

int qmgr_scan_setup(Qmgr *q)
{
        char path[PATH_MAX];
        int r;

        q->scans[QMGR_SCAN_INCOMING] = (QmgrScan) { .kind = QMGR_SCAN_INCOMING, .queue = QUEUE_INCOMING };
        q->scans[QMGR_SCAN_DEFERRED] = (QmgrScan) { .kind = QMGR_SCAN_DEFERRED, .queue = QUEUE_DEFERRED };
        q->inotify_fd = -EBADF;

        r = sd_event_add_defer(q->event, &q->import_source, on_import, q);
        if (r < 0)
                return r;
        /* below agents' answers and control calls: those are served between batches */
        (void) sd_event_source_set_priority(q->import_source, SD_EVENT_PRIORITY_NORMAL + 10);
        (void) sd_event_source_set_enabled(q->import_source, SD_EVENT_OFF);

        r = sd_event_add_time_relative(q->event, &q->deferred_timer, CLOCK_MONOTONIC,
                                       (uint64_t) q->queue_run_delay * USEC_PER_SEC, USEC_PER_SEC,
                                       on_deferred_timer, q);
        if (r < 0)
                return r;

        q->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (q->inotify_fd < 0)
                return -errno;
        snprintf(path, sizeof(path), "%s/incoming", conf_get_string(q->conf, "queue_directory"));
        if (inotify_add_watch(q->inotify_fd, path, IN_MOVED_TO | IN_ONLYDIR) < 0)
                return log_error_errno(errno, "inotify on %s: %m", path);
        r = sd_event_add_io(q->event, &q->inotify_source, q->inotify_fd, EPOLLIN, on_inotify, q);
        if (r < 0)
                return r;
        (void) sd_event_source_set_priority(q->inotify_source, SD_EVENT_PRIORITY_NORMAL + 5);

        /* at start: an incoming scan and a deferred run, as qmgr_post_init does */
        qmgr_scan_request(q, QMGR_SCAN_INCOMING, QMGR_SCAN_START);
        qmgr_scan_request(q, QMGR_SCAN_DEFERRED, QMGR_SCAN_START);
        return 0;
}

void qmgr_scan_done(Qmgr *q)
{
        for (unsigned k = 0; k < _QMGR_SCAN_MAX; k++)
                scan_clear(&q->scans[k]);
        q->import_source = sd_event_source_disable_unref(q->import_source);
        q->deferred_timer = sd_event_source_disable_unref(q->deferred_timer);
        q->inotify_source = sd_event_source_disable_unref(q->inotify_source);
        q->inotify_fd = safe_close(q->inotify_fd);
}
