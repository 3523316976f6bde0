/* SPDX-License-Identifier: MIT */
/*
 * qmgr-transport.c - transports, destination queues and entries: selection and throttling
 *
 * What oqmgr's qmgr_transport.c, qmgr_queue.c and qmgr_entry.c do (postfix-semantics.md §3.5-§3.9):
 *   - transports are selected round robin (the list rotates after each pick); one qualifies
 *     when it is alive, not rate-locked, can have one more agent, and one of its queues has
 *     room in its window and an entry to do;
 *   - a transport's queues are selected round robin too, and a queue's entries FIFO;
 *   - a delivery whose destination answered is positive feedback, one with a hop failure is
 *     negative feedback; a queue whose failed cohorts reach the limit is dead for
 *     minimal_backoff_time and its waiting entries are deferred; new recipients for it are
 *     deferred at once while it is dead (the dead-destination cache);
 *   - a transport whose agent cannot be reached or crashed is dead for transport_retry_time;
 *   - destination_rate_delay suspends a queue after each delivery, transport_rate_delay
 *     locks the transport between hand-offs;
 *   - connection cache hints (§3.9): LOAD|STORE when deliveries to the queue come back to back
 *     (the last one ended within a second), STORE dropped again when there is neither
 *     concurrency nor back-to-back delivery.
 * Limits: transports come from the routing of recipients (the [transport] table and main.cf),
 * so they are few; queues are one per destination and message-driven, kept only while they
 * have entries or are dead.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "qmgr.h"

/* int parameter <transport>_<suffix>, else default_<suffix> (or DEFAULT_NAME) */
static int64_t transport_int(const Conf *c, const char *t, const char *suffix, const char *default_name)
{
        int64_t v;

        if (conf_get_transport_int(c, t, suffix, &v) >= 0)
                return v;
        return conf_get_int(c, default_name);
}

static int64_t transport_time(const Conf *c, const char *t, const char *suffix, const char *default_name)
{
        int64_t v;

        if (conf_get_transport_time(c, t, suffix, &v) >= 0)
                return v;
        return conf_get_time(c, default_name);
}

static Feedback transport_feedback(const Conf *c, const char *t, const char *suffix, const char *default_name)
{
        const char *s = NULL;
        Feedback f;

        if (conf_get_transport_string(c, t, suffix, &s) < 0)
                s = conf_get_string(c, default_name);
        if (feedback_parse(s, &f) < 0) {
                log_warning("%s_%s: ignoring malformed or unreasonable feedback: %s", t, suffix, s);
                f = (Feedback) { .value = 1 };
        }
        return f;
}

static bool is_error_transport(const char *name)
{
        return streq(name, "error") || streq(name, "retry");
}

QmgrTransport *qmgr_transport_find(Qmgr *q, const char *name)
{
        QmgrTransport *t;

        LIST_FOREACH(rr, t, q->transport_rr)
                if (streq(t->name, name))
                        return t;
        return NULL;
}

int qmgr_transport_get(Qmgr *q, const char *name, QmgrTransport **ret)
{
        const Conf *c = q->conf;
        QmgrTransport *t;
        int r;

        t = qmgr_transport_find(q, name);
        if (t) {
                *ret = t;
                return 0;
        }

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->qmgr = q;
        t->name = strdup(name);
        r = strmap_new(&t->queues);
        if (!t->name || r < 0) {
                free(t->name);
                free(t);
                return -ENOMEM;
        }
        t->params.limit = (int) transport_int(c, name, "destination_concurrency_limit",
                                              "default_destination_concurrency_limit");
        t->params.init = (int) transport_int(c, name, "initial_destination_concurrency",
                                             "initial_destination_concurrency");
        t->params.positive = transport_feedback(c, name, "destination_concurrency_positive_feedback",
                                                "default_destination_concurrency_positive_feedback");
        t->params.negative = transport_feedback(c, name, "destination_concurrency_negative_feedback",
                                                "default_destination_concurrency_negative_feedback");
        t->params.cohort_limit = (int) transport_int(c, name, "destination_concurrency_failed_cohort_limit",
                                                     "default_destination_concurrency_failed_cohort_limit");
        t->recipient_limit = (int) transport_int(c, name, "destination_recipient_limit",
                                                 "default_destination_recipient_limit");
        t->rate_delay_usec = transport_time(c, name, "destination_rate_delay",
                                            "default_destination_rate_delay") * (int64_t) USEC_PER_SEC;
        t->transport_rate_delay_usec = transport_time(c, name, "transport_rate_delay",
                                                      "default_transport_rate_delay") * (int64_t) USEC_PER_SEC;
        /* a rate delay means one delivery at a time (qmgr_transport.c) */
        if (t->rate_delay_usec > 0)
                t->params.limit = 1;
        if (t->params.init < 1)
                t->params.init = 1;
        if (t->params.limit > 0 && t->params.init > t->params.limit)
                t->params.init = t->params.limit;
        if (t->recipient_limit < 0)
                t->recipient_limit = 0;
        t->agents_max = QMGR_AGENTS_PER_TRANSPORT_DEFAULT;

        LIST_APPEND(rr, q->transport_rr, t);
        *ret = t;
        return 0;
}

void qmgr_transport_free(QmgrTransport *t)
{
        QmgrAgent *a, *an;

        if (!t)
                return;
        LIST_FOREACH_SAFE(agents, a, an, t->agents)
                qmgr_agent_free(a);
        /* queues must be empty by now; free what is left (dead cache) */
        for (;;) {
                QmgrQueue *queue = t->queue_rr.head;
                if (!queue)
                        break;
                while (queue->todo.head)
                        qmgr_entry_free(queue->todo.head);
                while (queue->busy_list.head)
                        qmgr_entry_free(queue->busy_list.head);
                queue->window.window = 1;
                queue->suspended = false;
                qmgr_queue_maybe_free(queue);
        }
        LIST_REMOVE(rr, t->qmgr->transport_rr, t);
        sd_event_source_disable_unref(t->unthrottle_timer);
        strmap_free(t->queues);
        free(t->dsn);
        free(t->reason);
        free(t->name);
        free(t);
}

int qmgr_queue_name(const QmgrTransport *t, const char *nexthop, const char *address, char **ret)
{
        char *name;

        if (t->recipient_limit == 1 && !is_error_transport(t->name) && address) {
                const char *at = strrchr(address, '@');
                size_t local = at ? (size_t) (at - address) : strlen(address);
                if (asprintf(&name, "%.*s@%s", (int) local, address, nexthop) < 0)
                        return -ENOMEM;
        } else {
                name = strdup(nexthop);
                if (!name)
                        return -ENOMEM;
        }
        for (char *p = name; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        *ret = name;
        return 0;
}

int qmgr_queue_get(QmgrTransport *t, const char *name, const char *nexthop, QmgrQueue **ret)
{
        QmgrQueue *queue = strmap_get(t->queues, name);
        int r;

        if (queue) {
                *ret = queue;
                return 0;
        }
        queue = calloc(1, sizeof(*queue));
        if (!queue)
                return -ENOMEM;
        queue->transport = t;
        queue->name = strdup(name);
        queue->nexthop = strdup(nexthop);
        if (!queue->name || !queue->nexthop) {
                free(queue->name);
                free(queue->nexthop);
                free(queue);
                return -ENOMEM;
        }
        window_init(&queue->window, &t->params);
        r = strmap_put(t->queues, queue->name, queue);
        if (r < 0) {
                free(queue->name);
                free(queue->nexthop);
                free(queue);
                return r;
        }
        /* Postfix prepends: a new destination gets the next turn */
        LIST_PREPEND(rr, t->queue_rr, queue);
        *ret = queue;
        return 0;
}

/* qmgr_queue_maybe_free - drop a queue with nothing to do that is not remembered as dead */
void qmgr_queue_maybe_free(QmgrQueue *queue)
{
        QmgrTransport *t = queue->transport;

        if (queue->todo.n > 0 || queue->busy_list.n > 0 || window_dead(&queue->window) || queue->suspended)
                return;
        LIST_REMOVE(rr, t->queue_rr, queue);
        strmap_remove(t->queues, queue->name);
        sd_event_source_disable_unref(queue->unthrottle_timer);
        sd_event_source_disable_unref(queue->suspend_timer);
        free(queue->dsn);
        free(queue->reason);
        free(queue->name);
        free(queue->nexthop);
        free(queue);
}

/* queue_clog_warn - qmgr_entry_create's warning when one destination holds more than a fifth
 * of the active queue, at most once per qmgr_clog_warn_time, with Postfix's hints */
static void queue_clog_warn(QmgrQueue *queue)
{
        QmgrTransport *t = queue->transport;
        Qmgr *q = t->qmgr;
        int64_t now = qmgr_now_usec(q) / (int64_t) USEC_PER_SEC;
        size_t entries = queue->todo.n + queue->busy_list.n;

        if (q->clog_warn_time <= 0 || (int64_t) entries <= q->message_active_limit / 5 ||
            queue->clog_warned > now)
                return;
        log_warning("mail for %s is using up %zu of %lld active queue entries", queue->nexthop, entries,
                    (long long) q->message_active_limit);
        log_warning("this may slow down other mail deliveries");
        if (t->params.limit > 0 && t->params.limit <= queue->window.window)
                log_warning("you may need to increase the main.cf %s_destination_concurrency_limit from %d",
                            t->name, t->params.limit);
        else {
                log_warning("you may need to reduce %s connect and helo timeouts", t->name);
                log_warning("so that tern quickly skips unavailable hosts");
                log_warning("you may need to increase the main.cf minimal_backoff_time and maximal_backoff_time");
                log_warning("so that tern wastes less time on undeliverable mail");
        }
        queue->clog_warned = now + q->clog_warn_time;
}

int qmgr_entry_new(QmgrQueue *queue, QmgrMessage *m, size_t limit, QmgrEntry **ret)
{
        QmgrEntry *e = calloc(1, sizeof(*e));

        if (!e)
                return -ENOMEM;
        e->rcpts = calloc(limit ? limit : 1, sizeof(size_t));
        if (!e->rcpts) {
                free(e);
                return -ENOMEM;
        }
        e->message = m;
        e->queue = queue;
        LIST_APPEND(queue, queue->todo, e);
        queue->transport->todo++;
        m->refcount++;
        queue_clog_warn(queue);
        *ret = e;
        return 0;
}

/* qmgr_entry_free - unlink E from its queue (todo or busy) and free it; the message's
 * refcount is the caller's (qmgr_message_entry_done) */
void qmgr_entry_free(QmgrEntry *e)
{
        QmgrQueue *queue;

        if (!e)
                return;
        queue = e->queue;
        if (queue) {
                if (e->busy) {
                        LIST_REMOVE(queue, queue->busy_list, e);
                        queue->busy--;
                } else {
                        LIST_REMOVE(queue, queue->todo, e);
                        queue->transport->todo--;
                }
        }
        free(e->rcpts);
        free(e);
}

static bool queue_ready(const QmgrQueue *queue)
{
        return !window_dead(&queue->window) && !queue->suspended;
}

static bool queue_selectable(const QmgrQueue *queue)
{
        return queue_ready(queue) && queue->window.window > queue->busy && queue->todo.n > 0;
}

static bool transport_selectable(Qmgr *q, QmgrTransport *t)
{
        QmgrQueue *queue;
        QmgrAgent *a;
        bool idle = false;
        size_t n_agents = 0;

        if (t->dead || t->todo == 0)
                return false;
        if (t->rate_locked_until > qmgr_now_usec(q))
                return false;
        LIST_FOREACH(agents, a, t->agents) {
                n_agents++;
                if (!a->entry)
                        idle = true;
        }
        if (!idle && n_agents >= (size_t) t->agents_max)
                return false;
        LIST_FOREACH(rr, queue, t->queue_rr)
                if (queue_selectable(queue))
                        return true;
        return false;
}

QmgrTransport *qmgr_transport_select(Qmgr *q)
{
        QmgrTransport *t;

        LIST_FOREACH(rr, t, q->transport_rr)
                if (transport_selectable(q, t)) {
                        LIST_ROTATE_AFTER(rr, q->transport_rr, t);
                        return t;
                }
        return NULL;
}

QmgrEntry *qmgr_entry_select(Qmgr *q, QmgrTransport *t)
{
        QmgrQueue *queue;
        QmgrEntry *e;
        int64_t now = qmgr_now_usec(q);

        LIST_FOREACH(rr, queue, t->queue_rr)
                if (queue_selectable(queue))
                        break;
        if (!queue)
                return NULL;
        LIST_ROTATE_AFTER(rr, t->queue_rr, queue);

        e = queue->todo.head;
        LIST_REMOVE(queue, queue->todo, e);
        t->todo--;
        LIST_APPEND(queue, queue->busy_list, e);
        e->busy = true;
        queue->busy++;

        /* §3.9: cache connections when deliveries come back to back, use them up otherwise */
        if (!queue->conn_store && queue->last_done_usec + (int64_t) USEC_PER_SEC >= now) {
                queue->conn_load = queue->conn_store = true;
        } else if (queue->conn_store && queue->busy <= 1 &&
                   queue->last_done_usec + (int64_t) USEC_PER_SEC < now) {
                queue->conn_store = false;
        }
        if (t->transport_rate_delay_usec > 0) {
                t->rate_locked_until = now + t->transport_rate_delay_usec;
                qmgr_schedule_drain_at(q, t->rate_locked_until);
        }
        return e;
}

static int on_queue_unthrottle_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        QmgrQueue *queue = userdata;
        Qmgr *q = queue->transport->qmgr;

        queue->unthrottle_timer = sd_event_source_disable_unref(queue->unthrottle_timer);
        qmgr_queue_unthrottle(queue);
        qmgr_queue_maybe_free(queue);
        qmgr_schedule_drain(q);
        return 0;
}

void qmgr_queue_unthrottle(QmgrQueue *queue)
{
        const WindowParams *p = &queue->transport->params;

        if (window_dead(&queue->window)) {
                queue->unthrottle_timer = sd_event_source_disable_unref(queue->unthrottle_timer);
                queue->dsn = mfree(queue->dsn);
                queue->reason = mfree(queue->reason);
                queue->dead_until = 0;
        }
        window_unthrottle(&queue->window, p, queue->busy);
}

void qmgr_queue_throttle(QmgrQueue *queue, const char *dsn, const char *text)
{
        QmgrTransport *t = queue->transport;
        Qmgr *q = t->qmgr;

        if (window_dead(&queue->window))
                return;
        if (!window_throttle(&queue->window, &t->params))
                return;

        /* just declared dead: remember why, retry after minimal_backoff_time */
        free(queue->dsn);
        free(queue->reason);
        queue->dsn = strdup(dsn);
        if (asprintf(&queue->reason, "delivery temporarily suspended: %s", text) < 0)
                queue->reason = NULL;
        queue->conn_load = queue->conn_store = false;
        queue->dead_until = qmgr_now_usec(q) / (int64_t) USEC_PER_SEC + q->minimal_backoff;
        sd_event_source_disable_unref(queue->unthrottle_timer);
        queue->unthrottle_timer = NULL;
        (void) sd_event_add_time_relative(q->event, &queue->unthrottle_timer, CLOCK_MONOTONIC,
                                          (uint64_t) q->minimal_backoff * USEC_PER_SEC, USEC_PER_SEC,
                                          on_queue_unthrottle_timer, queue);
        qmgr_defer_queue_todo(queue, dsn, queue->reason ? queue->reason : text);
}

static int on_queue_suspend_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        QmgrQueue *queue = userdata;
        Qmgr *q = queue->transport->qmgr;

        queue->suspend_timer = sd_event_source_disable_unref(queue->suspend_timer);
        queue->suspended = false;
        qmgr_queue_maybe_free(queue);
        qmgr_schedule_drain(q);
        return 0;
}

void qmgr_queue_done_entry(QmgrEntry *e, const char *hop_dsn, const char *hop_text)
{
        QmgrQueue *queue = e->queue;
        QmgrTransport *t = queue->transport;
        Qmgr *q = t->qmgr;
        QmgrMessage *m = e->message;

        queue->last_done_usec = qmgr_now_usec(q);
        qmgr_entry_free(e);

        if (hop_dsn)
                qmgr_queue_throttle(queue, hop_dsn, hop_text ? hop_text : "");
        qmgr_transport_unthrottle(t);
        /* the destination answered: positive feedback, and a dead one is back (qmgr_deliver_update) */
        if (!hop_dsn)
                qmgr_queue_unthrottle(queue);

        if (t->rate_delay_usec > 0 && !window_dead(&queue->window) && !queue->suspend_timer) {
                queue->suspended = true;
                if (sd_event_add_time_relative(q->event, &queue->suspend_timer, CLOCK_MONOTONIC,
                                               (uint64_t) t->rate_delay_usec, 0, on_queue_suspend_timer,
                                               queue) < 0)
                        queue->suspended = false;
        }
        qmgr_queue_maybe_free(queue);
        qmgr_message_entry_done(m);
        qmgr_schedule_drain(q);
}

static int on_transport_unthrottle_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        QmgrTransport *t = userdata;

        qmgr_transport_unthrottle(t);
        qmgr_schedule_drain(t->qmgr);
        return 0;
}

void qmgr_transport_unthrottle(QmgrTransport *t)
{
        if (!t->dead)
                return;
        t->dead = false;
        t->dsn = mfree(t->dsn);
        t->reason = mfree(t->reason);
        t->dead_until = 0;
        t->unthrottle_timer = sd_event_source_disable_unref(t->unthrottle_timer);
}

void qmgr_transport_throttle(QmgrTransport *t, const char *dsn, const char *text)
{
        Qmgr *q = t->qmgr;

        if (!t->dead) {
                t->dead = true;
                free(t->dsn);
                free(t->reason);
                t->dsn = strdup(dsn);
                if (asprintf(&t->reason, "delivery temporarily suspended: %s", text) < 0)
                        t->reason = NULL;
                t->dead_until = qmgr_now_usec(q) / (int64_t) USEC_PER_SEC + q->transport_retry_time;
                (void) sd_event_add_time_relative(q->event, &t->unthrottle_timer, CLOCK_MONOTONIC,
                                                  (uint64_t) q->transport_retry_time * USEC_PER_SEC,
                                                  USEC_PER_SEC, on_transport_unthrottle_timer, t);
        }
        qmgr_defer_transport_todo(t, dsn, t->reason ? t->reason : text);
}

void qmgr_enable_all(Qmgr *q)
{
        QmgrTransport *t;
        QmgrQueue *queue, *n;

        LIST_FOREACH(rr, t, q->transport_rr) {
                qmgr_transport_unthrottle(t);
                LIST_FOREACH_SAFE(rr, queue, n, t->queue_rr)
                        if (window_dead(&queue->window)) {
                                qmgr_queue_unthrottle(queue);
                                qmgr_queue_maybe_free(queue);
                        }
        }
        qmgr_schedule_drain(q);
}

void qmgr_defer_queue_todo(QmgrQueue *queue, const char *dsn, const char *text)
{
        while (queue->todo.head) {
                QmgrEntry *e = queue->todo.head;
                qmgr_entry_defer(e, dsn, text);         /* frees e */
        }
}

void qmgr_defer_transport_todo(QmgrTransport *t, const char *dsn, const char *text)
{
        QmgrQueue *queue, *n;

        LIST_FOREACH_SAFE(rr, queue, n, t->queue_rr) {
                qmgr_defer_queue_todo(queue, dsn, text);
                qmgr_queue_maybe_free(queue);
        }
}
