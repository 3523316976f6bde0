/* SPDX-License-Identifier: MIT */
/*
 * qmgr-message.c - a message's life in core: import, routing, outcomes, completion
 *
 * Import (qmgr_active_feed + qmgr_message_alloc, postfix-semantics.md §3.3-§3.4): the file moves
 * to active/, is opened read-write and decoded; its mode's request bits become flags (S_IRGRP
 * unthrottle, cleared once read; S_IXGRP force-expire); defer/ID goes (the defer log describes
 * the latest attempt only); "from=<...>, size=, nrcpt= (queue active)" is logged; a batch of
 * recipients not yet done is read and routed: each goes to an entry of its destination queue,
 * or, when it cannot be delivered now, straight to an outcome (dead destination or transport,
 * defer_transports, the double-bounce discard, administrative expiry).
 *
 * Outcomes (qmgr_message_apply): bounced recipients are appended to bounce/ID and deferred ones
 * to defer/ID (each append fsync'ed) before sent and bounced ones are marked done (R -> D in
 * place). The marks are made durable (fdatasync) before the file goes back to deferred/; a
 * message whose every recipient is done is removed instead, and a crash before that removal
 * reaches the disk brings the file back with its recipients to deliver again: delivered twice
 * at most, never lost (DESIGN.md "Files").
 *
 * Completion (qmgr_active_done, §3.10): a bounce notice from bounce/ID; the next recipient batch
 * if the file has more; expiry (maximal_queue_lifetime, bounce_queue_lifetime for the null
 * sender, force-expire) with the defer log returned to the sender; else back to deferred/ with
 * the next attempt at now + the message's age clamped to [minimal_backoff_time,
 * maximal_backoff_time]; or, all done, "removed".
 *
 * Limits: recipients are read QMGR_RECIPIENT_READ_MAX at most at a time and against
 * qmgr_message_recipient_limit; each batch re-reads the file (a message with more recipients
 * than one batch is read once per batch).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "qmgr.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(QueueMessage *, queue_message_free);


Qmgr *qmgr_of_message(const QmgrMessage *m)
{
        return qmgr_global();
}

static void rcpt_done(QmgrRcpt *r)
{
        free(r->address);
        free(r->orig_address);
        free(r->dsn_orig_rcpt);
}

static void message_free_batch(Qmgr *q, QmgrMessage *m)
{
        for (size_t i = 0; i < m->n_rcpts; i++)
                rcpt_done(&m->rcpts[i]);
        q->recipients_in_core -= m->n_rcpts;
        m->rcpts = mfree(m->rcpts);
        m->n_rcpts = 0;
}

static void message_flush_sites_free(QmgrMessage *m)
{
        if (!m->flush_sites)
                return;
        for (char **p = m->flush_sites; *p; p++)
                free(*p);
        m->flush_sites = mfree(m->flush_sites);
}

/* message_flush_site - remember the domain of ADDRESS (deferred) for the fast flush log: Postfix's
 * defer_append() calls flush_add(domain after the last '@', id) per deferred recipient; qmgr
 * sends one Add per domain once the file is back in deferred/ (message_complete), so that a
 * flush can never find the entry before the file it names is there to be moved */
static void message_flush_site(Qmgr *q, QmgrMessage *m, const char *address)
{
        const char *at = strrchr(address, '@');
        size_t n = 0;
        char **v;

        if (!at || !at[1] || !flush_client_eligible(q->flush, at + 1))
                return;
        for (; m->flush_sites && m->flush_sites[n]; n++)
                if (strcasecmp(m->flush_sites[n], at + 1) == 0)
                        return;
        v = reallocarray(m->flush_sites, n + 2, sizeof(char *));
        if (!v)
                return;
        m->flush_sites = v;
        v[n] = strdup(at + 1);
        v[n + 1] = NULL;
}

void qmgr_message_free(QmgrMessage *m)
{
        Qmgr *q;

        if (!m)
                return;
        q = qmgr_of_message(m);
        message_free_batch(q, m);
        strmap_remove(q->messages, m->id);
        LIST_REMOVE(all, q->active, m);
        safe_close(m->fd);
        message_flush_sites_free(m);
        free(m->sender);
        free(m->envelope_id);
        free(m);
        qmgr_schedule_import(q);
}

/* map M's file and decode it */
static int message_parse(QmgrMessage *m, void **ret_map, size_t *ret_size, QueueEnvelope *env,
                         const char **ret_reason)
{
        struct stat st;
        void *map;
        int r;

        if (fstat(m->fd, &st) < 0)
                return -errno;
        if (st.st_size <= 0) {
                *ret_reason = "empty file";
                return -EBADMSG;
        }
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, m->fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        r = queue_envelope_parse(map, (size_t) st.st_size, env, ret_reason);
        if (r < 0) {
                munmap(map, (size_t) st.st_size);
                return r == -ENOMEM ? r : -EBADMSG;
        }
        *ret_map = map;
        *ret_size = (size_t) st.st_size;
        return 0;
}

static char *strdup_or_null(const char *s)
{
        return isempty(s) ? NULL : strdup(s);
}

/* read_batch - the next recipients not yet done, from m->rcpt_next on: as many as the limits
 * allow, in an array of exactly their number */
static int read_batch(Qmgr *q, QmgrMessage *m, const QueueEnvelope *env)
{
        int64_t limit = q->message_recipient_limit - (int64_t) q->recipients_in_core;
        size_t n = 0, cap, want = 0;

        if (limit < q->message_recipient_minimum)
                limit = q->message_recipient_minimum;
        if (limit > QMGR_RECIPIENT_READ_MAX)
                limit = QMGR_RECIPIENT_READ_MAX;
        cap = (size_t) limit;

        for (size_t i = m->rcpt_next; i < env->n_rcpts && want < cap; i++)
                if (!env->rcpts[i].done)
                        want++;
        m->rcpts_in_file = env->n_rcpts;
        if (want == 0) {
                m->rcpt_next = env->n_rcpts;
                return 0;
        }
        m->rcpts = calloc(want, sizeof(QmgrRcpt));
        if (!m->rcpts)
                return -ENOMEM;
        for (; m->rcpt_next < env->n_rcpts && n < want; m->rcpt_next++) {
                const QueueRecipient *qr = &env->rcpts[m->rcpt_next];
                QmgrRcpt *r = &m->rcpts[n];
                if (qr->done)
                        continue;
                r->address = strdup(qr->address);
                r->orig_address = strdup_or_null(qr->orig_address);
                r->dsn_orig_rcpt = strdup_or_null(qr->dsn_orig_rcpt);
                r->notify_flags = qr->dsn_notify;
                r->offset = qr->offset;
                n++;
                m->n_rcpts = n;
                q->recipients_in_core++;
                if (!r->address)
                        return -ENOMEM;
        }
        /* done recipients after the last one taken need not be read again */
        while (m->rcpt_next < env->n_rcpts && env->rcpts[m->rcpt_next].done)
                m->rcpt_next++;
        return 0;
}

/* what routing decided for one recipient */
typedef struct Route {
        size_t rcpt;
        QmgrQueue *queue;               /* NULL: an outcome now */
        QmgrOutcome outcome;
        char *text;                     /* owned text for the outcome */
} Route;

static int route_cmp(const void *a, const void *b)
{
        const Route *x = a, *y = b;

        if (x->queue != y->queue)
                return x->queue < y->queue ? -1 : 1;
        return x->rcpt < y->rcpt ? -1 : x->rcpt > y->rcpt;
}

static void route_defer(Route *rt, const char *dsn, const char *text)
{
        rt->queue = NULL;
        rt->outcome = (QmgrOutcome) { .status = DELIVERY_DEFERRED, .dsn = dsn, .relay = "none", .log_line = true };
        rt->text = strdup(text);
        rt->outcome.text = rt->text ? rt->text : "";
}

static bool in_list(char *const *list, const char *s)
{
        for (; list && *list; list++)
                if (streq(*list, s))
                        return true;
        return false;
}

/* route_one - §3.4 resolution steps for one recipient */
static int route_one(Qmgr *q, QmgrMessage *m, Route *rt)
{
        QmgrRcpt *r = &m->rcpts[rt->rcpt];
        _cleanup_(freep) char *name = NULL;
        Resolved res = {};
        QmgrTransport *t;
        QmgrQueue *queue;
        const char *transport, *nexthop;
        int rr;

        if ((m->flags & QMGR_MSG_FORCE_EXPIRE)) {
                transport = "retry";
                nexthop = "4.7.0 message is administratively expired";
                res.class = RESOLVE_CLASS_ERROR;
        } else if (r->address[0] == '-' && !q->allow_min_user) {
                transport = "error";
                nexthop = "5.1.3 bad address syntax";
                res.class = RESOLVE_CLASS_ERROR;
        } else {
                rr = resolve_address(q->resolver, r->address, &res);
                if (rr < 0)
                        return rr;
                transport = res.transport;
                nexthop = res.nexthop;
        }

        /* double-bounce discard: undeliverable postmaster notices go nowhere */
        if (res.class == RESOLVE_CLASS_LOCAL) {
                _cleanup_(freep) char *local = NULL;
                if (resolve_local_part(r->address, &local) >= 0 && strcasecmp(local, q->double_bounce_sender) == 0) {
                        rt->queue = NULL;
                        rt->outcome = (QmgrOutcome) { .status = DELIVERY_SENT, .dsn = "2.0.0", .relay = "none",
                                                      .text = "undeliverable postmaster notification discarded",
                                                      .log_line = true };
                        resolved_done(&res);
                        return 0;
                }
        }

        if (!(m->flags & QMGR_MSG_DFXP) && in_list(conf_get_list(q->conf, "defer_transports"), transport)) {
                route_defer(rt, "4.3.2", "deferred transport");
                resolved_done(&res);
                return 0;
        }

        rr = qmgr_transport_get(q, transport, &t);
        if (rr < 0)
                goto finish;
        if (m->flags & QMGR_MSG_FLUSH_EACH)
                qmgr_transport_unthrottle(t);
        if (t->dead) {
                route_defer(rt, t->dsn ? t->dsn : "4.3.0", t->reason ? t->reason : "mail transport unavailable");
                goto finish;
        }
        rr = qmgr_queue_name(t, nexthop, r->address, &name);
        if (rr < 0)
                goto finish;
        rr = qmgr_queue_get(t, name, nexthop, &queue);
        if (rr < 0)
                goto finish;
        if (m->flags & QMGR_MSG_FLUSH_EACH)
                qmgr_queue_unthrottle(queue);
        if (window_dead(&queue->window)) {
                route_defer(rt, queue->dsn ? queue->dsn : "4.4.1",
                            queue->reason ? queue->reason : "delivery temporarily suspended");
                goto finish;
        }
        rt->queue = queue;
        rr = 0;
finish:
        resolved_done(&res);
        return rr;
}

static void routes_free(Route *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i].text);
        free(v);
}

/* route_batch - resolve the batch, make entries (batched per queue), apply immediate outcomes */
static int route_batch(Qmgr *q, QmgrMessage *m)
{
        Route *routes;
        size_t n = m->n_rcpts, n_now = 0;
        QmgrEntry *e = NULL;
        int r = 0;

        if (n == 0)
                return 0;
        routes = calloc(n, sizeof(Route));
        if (!routes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                routes[i].rcpt = i;
                r = route_one(q, m, &routes[i]);
                if (r < 0)
                        goto finish;
        }
        qsort(routes, n, sizeof(Route), route_cmp);

        for (size_t i = 0; i < n; i++) {
                QmgrQueue *queue = routes[i].queue;
                size_t limit;
                if (!queue) {
                        n_now++;
                        continue;
                }
                limit = queue->transport->recipient_limit > 0 ? (size_t) queue->transport->recipient_limit : n;
                if (!e || e->queue != queue || e->n_rcpts >= limit) {
                        r = qmgr_entry_new(queue, m, MIN(limit, n), &e);
                        if (r < 0)
                                goto finish;
                }
                e->rcpts[e->n_rcpts++] = routes[i].rcpt;
        }

        if (n_now > 0) {
                /* routes without a queue sort first (NULL) */
                _cleanup_(freep) size_t *idx = calloc(n_now, sizeof(size_t));
                _cleanup_(freep) QmgrOutcome *out = calloc(n_now, sizeof(QmgrOutcome));
                if (!idx || !out) {
                        r = -ENOMEM;
                        goto finish;
                }
                for (size_t i = 0; i < n_now; i++) {
                        idx[i] = routes[i].rcpt;
                        out[i] = routes[i].outcome;
                }
                /* the refcount keeps the message in core while its outcomes are applied */
                m->refcount++;
                r = qmgr_message_apply(m, idx, out, n_now);
                m->refcount--;
        }
finish:
        routes_free(routes, n);
        return r;
}

static void log_corrupt(const char *id, const char *from, const char *to)
{
        char f[QMGR_ID_FIELD_MAX];

        log_warning_fields(LOG_FIELDS(QMGR_ID_FIELD(f, id)), "saving corrupt file \"%s\" from queue \"%s\" to queue \"%s\"",
                           id, from, to);
}

int qmgr_message_import(Qmgr *q, QueueName from, const char *id, unsigned scan_flags)
{
        _cleanup_(queue_message_freep) QueueMessage *qm = NULL;
        const char *reason = NULL;
        struct stat st;
        QmgrMessage *m;
        char f[QMGR_ID_FIELD_MAX];
        int64_t now = qmgr_now_usec(q);
        int r;

        if (strmap_get(q->messages, id))
                return 1;               /* already in core (a scan saw it twice) */
        r = queue_store_stat(q->store, from, id, &st);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (!S_ISREG(st.st_mode) || (st.st_mode & QUEUE_MODE_READY) != QUEUE_MODE_READY)
                return 1;
        if (!(scan_flags & QMGR_SCAN_ALL) && st.st_mtime > now / (int64_t) USEC_PER_SEC + 1)
                return 1;

        r = queue_store_move(q->store, from, id, QUEUE_ACTIVE, -1);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "%s: cannot move to active: %m", id);

        r = queue_message_open(q->store, QUEUE_ACTIVE, id, &qm, &reason);
        if (r == -EBADMSG) {
                log_corrupt(id, "active", "corrupt");
                (void) queue_store_move(q->store, QUEUE_ACTIVE, id, QUEUE_CORRUPT, -1);
                return 0;
        }
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                log_warning_errno(r, "%s: cannot open queue file: %m", id);
                (void) queue_store_move(q->store, QUEUE_ACTIVE, id, from, now / (int64_t) USEC_PER_SEC + 60);
                return 0;
        }

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        strcpy(m->id, id);
        m->from = from;
        m->fd = TAKE_FD(qm->fd);
        m->active_usec = now;
        m->sender = strdup(qm->envelope.sender);
        m->envelope_id = strdup_or_null(queue_envelope_attr(&qm->envelope, "envelope_id"));
        m->ret_flags = atoi(strempty(queue_envelope_attr(&qm->envelope, "ret_flags")));
        m->sendopts = (int) qm->envelope.size_rec.sendopts;
        m->create_time = qm->envelope.create_time > 0 ? qm->envelope.create_time : qm->envelope.arrival_sec;
        m->arrival_usec = qm->envelope.arrival_sec * (int64_t) USEC_PER_SEC + qm->envelope.arrival_usec;
        m->data_offset = (int64_t) qm->envelope.content_offset;
        m->content_length = qm->envelope.size_rec.content_length;
        m->rcpt_total = (uint64_t) qm->envelope.size_rec.rcpt_count;
        m->warn_time = qm->envelope.warn_time;
        m->warn_offset = qm->envelope.warn_offset;
        if (qm->st.st_mode & QUEUE_MODE_UNTHROTTLE)
                m->flags |= QMGR_MSG_FLUSH_EACH | QMGR_MSG_DFXP;
        if (qm->st.st_mode & QUEUE_MODE_EXPIRE)
                m->flags |= QMGR_MSG_FORCE_EXPIRE;
        if (scan_flags & QMGR_FLUSH_DFXP)
                m->flags |= QMGR_MSG_DFXP;
        if (!m->sender) {
                free(m);
                return -ENOMEM;
        }
        r = strmap_put(q->messages, m->id, m);
        if (r < 0) {
                free(m->sender);
                free(m);
                return r;
        }
        LIST_APPEND(all, q->active, m);

        if (qm->st.st_mode & QUEUE_MODE_UNTHROTTLE)
                (void) queue_store_set_mode(q->store, QUEUE_ACTIVE, id, 0, QUEUE_MODE_UNTHROTTLE);
        (void) queue_log_remove(q->store, "defer", id);

        log_info_fields(LOG_FIELDS(QMGR_ID_FIELD(f, id)), "%s: from=<%s>, size=%" PRId64 ", nrcpt=%" PRIu64 " (queue active)",
                        id, m->sender, m->content_length, m->rcpt_total);

        m->refcount++;          /* held while the batch is routed */
        r = read_batch(q, m, &qm->envelope);
        if (r >= 0)
                r = route_batch(q, m);
        if (r < 0)
                log_error_errno(r, "%s: cannot schedule recipients: %m", id);
        qmgr_message_entry_done(m);     /* completes it now if nothing went to an entry */
        qmgr_schedule_drain(q);
        return 0;
}

int qmgr_message_apply(QmgrMessage *m, const size_t *rcpts, const QmgrOutcome *out, size_t n)
{
        Qmgr *q = qmgr_of_message(m);
        int64_t now = qmgr_now_usec(q);
        int r;

        /* 1. the logs qmgr keeps, durable before any mark */
        for (size_t i = 0; i < n; i++) {
                QmgrRcpt *rc = &m->rcpts[rcpts[i]];
                const char *log;
                if (out[i].status == DELIVERY_BOUNCED)
                        log = "bounce";
                else if (out[i].status == DELIVERY_DEFERRED)
                        log = "defer";
                else
                        continue;
                QueueLogEntry le = {
                        .recipient = rc->address,
                        .original_recipient = rc->orig_address,
                        .offset = (int64_t) rc->offset,
                        .dsn_orig_rcpt = rc->dsn_orig_rcpt,
                        .notify_flags = rc->notify_flags,
                        .status = out[i].dsn,
                        .action = out[i].status == DELIVERY_BOUNCED ? "failed" : "delayed",
                        .reason = out[i].text,
                };
                r = queue_log_append(q->store, log, m->id, &le);
                if (r < 0) {
                        /* a bounce that cannot be recorded is not marked done: it is tried again */
                        log_warning_errno(r, "%s: cannot append to %s log: %m", m->id, log);
                        m->flags |= QMGR_MSG_DEFERRED;
                        if (out[i].status == DELIVERY_BOUNCED) {
                                QmgrOutcome o = out[i];
                                o.status = DELIVERY_DEFERRED;
                                ((QmgrOutcome *) out)[i] = o;
                        }
                }
        }

        /* 2. done marks (made durable before the file goes back to deferred, see above) */
        for (size_t i = 0; i < n; i++) {
                QmgrRcpt *rc = &m->rcpts[rcpts[i]];
                if (out[i].status == DELIVERY_DEFERRED) {
                        m->flags |= QMGR_MSG_DEFERRED;
                        message_flush_site(q, m, rc->address);
                        continue;
                }
                r = queue_file_mark_done(m->fd, rc->offset);
                if (r < 0) {
                        log_warning_errno(r, "%s: cannot mark recipient done: %m", m->id);
                        m->flags |= QMGR_MSG_DEFERRED;
                }
        }

        /* 3. qmgr's own delivery lines */
        for (size_t i = 0; i < n; i++) {
                QmgrRcpt *rc = &m->rcpts[rcpts[i]];
                if (!out[i].log_line)
                        continue;
                DeliveryLog l = {
                        .queue_id = m->id,
                        .recipient = rc->address,
                        .orig_recipient = rc->orig_address,
                        .relay = out[i].relay ? out[i].relay : "none",
                        .arrival_usec = m->arrival_usec,
                        .active_usec = m->active_usec,
                        .handoff_usec = out[i].handoff_usec ? out[i].handoff_usec : now,
                        .now_usec = now,
                        .dsn = out[i].dsn,
                        .status = delivery_status_to_string(out[i].status),
                        .text = out[i].text,
                };
                delivery_log(&l);
        }
        return 0;
}

void qmgr_entry_defer(QmgrEntry *e, const char *dsn, const char *text)
{
        QmgrMessage *m = e->message;
        _cleanup_(freep) QmgrOutcome *out = calloc(e->n_rcpts ? e->n_rcpts : 1, sizeof(QmgrOutcome));

        if (out) {
                for (size_t i = 0; i < e->n_rcpts; i++)
                        out[i] = (QmgrOutcome) { .status = DELIVERY_DEFERRED, .dsn = dsn, .text = text,
                                                 .relay = "none", .log_line = true };
                (void) qmgr_message_apply(m, e->rcpts, out, e->n_rcpts);
        } else
                m->flags |= QMGR_MSG_DEFERRED;
        qmgr_entry_free(e);
        qmgr_message_entry_done(m);
}

static void log_removed(const char *id)
{
        char f[QMGR_ID_FIELD_MAX];

        log_info_fields(LOG_FIELDS(QMGR_ID_FIELD(f, id)), "%s: removed", id);
}

/* message_next_batch - read and route the next batches while the file has more; true when
 * entries of a batch are waiting for agents, false when nothing is left to do in core */
static bool message_next_batch(Qmgr *q, QmgrMessage *m)
{
        for (;;) {
                QueueEnvelope env = {};
                const char *reason = NULL;
                void *map = NULL;
                size_t size = 0;
                int r;

                /* the last batch took the file's last recipient: nothing to read again */
                if (m->rcpt_next >= m->rcpts_in_file)
                        return false;
                r = message_parse(m, &map, &size, &env, &reason);
                if (r < 0)
                        return false;
                if (m->rcpt_next >= env.n_rcpts) {
                        queue_envelope_done(&env);
                        munmap(map, size);
                        return false;
                }
                message_free_batch(q, m);
                m->refcount++;
                r = read_batch(q, m, &env);
                queue_envelope_done(&env);
                munmap(map, size);
                if (r >= 0)
                        r = route_batch(q, m);
                if (r < 0)
                        log_error_errno(r, "%s: cannot schedule recipients: %m", m->id);
                m->refcount--;
                if (m->refcount > 0) {
                        qmgr_schedule_drain(q);
                        return true;
                }
                if (r < 0)
                        return false;
                /* every recipient of this batch had its outcome at once: on to the next */
        }
}

/* message_warn_sent - rewrite the W record's data in place: no second delay notice */
static void message_warn_sent(QmgrMessage *m)
{
        uint8_t hdr[QUEUE_FILE_REC_HDR_MAX];
        char data[QUEUE_FILE_WARN_REC_LEN + 1];
        size_t h = rec_header(REC_TYPE_WARN, QUEUE_FILE_WARN_REC_LEN, hdr);

        snprintf(data, sizeof(data), "%15d", -1);
        if (pwrite(m->fd, data, QUEUE_FILE_WARN_REC_LEN, (off_t) (m->warn_offset + h)) != QUEUE_FILE_WARN_REC_LEN)
                log_warning_errno(errno, "%s: cannot mark the delay notice sent: %m", m->id);
        m->warn_time = -1;
}

static bool message_expired(Qmgr *q, const QmgrMessage *m, int64_t now)
{
        int64_t lifetime = isempty(m->sender) ? q->bounce_queue_lifetime : q->maximal_queue_lifetime;

        if (m->flags & QMGR_MSG_FORCE_EXPIRE)
                return true;
        return now >= m->create_time + lifetime;
}

/* message_complete - §3.10, once every entry of the batch is done */
static void message_complete(Qmgr *q, QmgrMessage *m)
{
        int64_t now = qmgr_now_usec(q) / (int64_t) USEC_PER_SEC;
        char f[QMGR_ID_FIELD_MAX];
        bool notice_pending = false;
        int r;

        /* administrative requests that waited for deliveries in flight */
        if (m->flags & QMGR_MSG_DELETE) {
                (void) queue_store_remove(q->store, QUEUE_ACTIVE, m->id);
                (void) queue_log_remove(q->store, "defer", m->id);
                (void) queue_log_remove(q->store, "bounce", m->id);
                log_removed(m->id);
                qmgr_message_free(m);
                return;
        }

        /* 1. a bounce notice for what bounced (bounce/ID); one that cannot be sent keeps the
         * message queued, whatever its age, until it can */
        r = qmgr_notify_bounce(q, m, false);
        if (r < 0) {
                notice_pending = true;
                m->flags |= QMGR_MSG_DEFERRED;
        }

        /* 2. more recipients in the file */
        if (!(m->flags & (QMGR_MSG_HOLD | QMGR_MSG_REQUEUE)) && message_next_batch(q, m))
                return;

        if (m->flags & QMGR_MSG_HOLD) {
                (void) fdatasync(m->fd);
                (void) queue_store_move(q->store, QUEUE_ACTIVE, m->id, QUEUE_HOLD, -1);
                log_info_fields(LOG_FIELDS(QMGR_ID_FIELD(f, m->id)), "%s: placed on hold", m->id);
                qmgr_message_free(m);
                return;
        }
        if (m->flags & QMGR_MSG_REQUEUE) {
                (void) fdatasync(m->fd);
                (void) queue_store_move(q->store, QUEUE_ACTIVE, m->id, QUEUE_INCOMING, now);
                log_info_fields(LOG_FIELDS(QMGR_ID_FIELD(f, m->id)), "%s: requeued", m->id);
                qmgr_message_free(m);
                qmgr_scan_request(q, QMGR_SCAN_INCOMING, QMGR_SCAN_START);
                return;
        }

        /* 3. deferred recipients: expire, or back to deferred/ */
        if (m->flags & QMGR_MSG_DEFERRED) {
                if (!notice_pending && message_expired(q, m, now)) {
                        log_info_fields(LOG_FIELDS(QMGR_ID_FIELD(f, m->id)), "%s: from=<%s>, status=%s, returned to sender",
                                        m->id, m->sender,
                                        (m->flags & QMGR_MSG_FORCE_EXPIRE) ? "force-expired" : "expired");
                        if (qmgr_notify_bounce(q, m, true) >= 0)
                                goto removed;
                }
                /* delay_warning_time: one sender delay notice, then W is rewritten to -1 */
                if (m->warn_time > 0 && m->warn_offset > 0 && now >= m->warn_time &&
                    qmgr_notify_delay(q, m) >= 0)
                        message_warn_sent(m);
                if (fdatasync(m->fd) < 0)
                        log_warning_errno(errno, "%s: cannot sync queue file: %m", m->id);
                r = queue_store_move(q->store, QUEUE_ACTIVE, m->id, QUEUE_DEFERRED,
                                     now + backoff_next_delay(m->create_time > 0 ? now - m->create_time : -1,
                                                              q->minimal_backoff, q->maximal_backoff));
                if (r < 0)
                        log_error_errno(r, "%s: cannot move to deferred: %m", m->id);
                else
                        for (char **p = m->flush_sites; p && *p; p++)
                                flush_client_add(q->flush, *p, m->id);
                qmgr_message_free(m);
                return;
        }

removed:
        r = queue_store_remove(q->store, QUEUE_ACTIVE, m->id);
        if (r < 0 && r != -ENOENT)
                log_error_errno(r, "%s: cannot remove queue file: %m", m->id);
        /* the import removed an older defer log: only this pass can have written one */
        if (m->flags & QMGR_MSG_DEFERRED)
                (void) queue_log_remove(q->store, "defer", m->id);
        log_removed(m->id);
        qmgr_message_free(m);
}

void qmgr_message_entry_done(QmgrMessage *m)
{
        Qmgr *q = qmgr_of_message(m);

        assert(m->refcount > 0);
        if (--m->refcount > 0)
                return;
        message_complete(q, m);
}
