/* SPDX-License-Identifier: MIT */
/*
 * test-qmgr-sched.c - the queue manager's scheduler with its real code: qmgr-transport.c
 * (transports, destination queues, entries, round robin, feedback, dead destinations and
 * transports), qmgr-message.c (routing a message's recipients into entries, deferring),
 * qmgr-scan.c (the import loop: incoming/deferred fairness, the leaky bucket), over a real
 * sd_event, a real QueueStore in a temporary directory and a Conf from conf_load_string()
 * (postfix-semantics.md §3.3-§3.10).
 *
 * Everything of qmgr is linked except qmgr.c, whose two definitions the others need are here:
 * qmgr_global() (the test's own Qmgr, set up as qmgr_setup() does), qmgr_now_usec() (a clock the
 * tests set and advance). No agent socket exists: the tests play the
 * delivery agent's part themselves, by selecting entries (qmgr_transport_select,
 * qmgr_entry_select) and ending them as on_reply() does (qmgr_message_apply, then
 * qmgr_queue_done_entry). The import tests run the real import source through sd_event_run();
 * there the drain is held (q->drain_source is the test's own defer source, which
 * qmgr_schedule_drain() then only enables) so that entries stay where the import put them.
 *
 * Log lines are caught with log_set_sink(): "ID: from=<...> (queue active)" gives the import
 * order. Nothing sleeps; every test runs in milliseconds.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"
#include "macro.h"
#include "qmgr.h"
#include "queue-sample.h"
#include "queue-store.h"

/* ---- what qmgr.c defines for the other qmgr sources */

static Qmgr test_qmgr = { .inotify_fd = -EBADF };
static int64_t test_clock_usec;         /* 0: the real clock */

Qmgr *qmgr_global(void)
{
        return &test_qmgr;
}

int64_t qmgr_now_usec(const Qmgr *q)
{
        struct timespec ts;

        if (test_clock_usec > 0)
                return test_clock_usec;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * (int64_t) USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* ---- fixture */

#define LINES_MAX 512

typedef struct Sched {
        char dir[64];
        Conf *conf;
        char *lines[LINES_MAX];         /* captured log lines */
        size_t n_lines;
        sd_event_source *held_drain;
} Sched;

static Sched sched;

static void capture_sink(int priority, const char *message, const char *const *fields, void *userdata)
{
        Sched *s = userdata;

        if (s->n_lines < LINES_MAX)
                s->lines[s->n_lines++] = strdup(message);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
        return remove(path);
}

/* sched_start - a Qmgr as qmgr_setup() makes it, with main.cf EXTRA appended to the base */
static Qmgr *sched_start(const char *extra)
{
        Qmgr *q = &test_qmgr;
        char *text = NULL, *error = NULL, run[128];
        int r;

        snprintf(sched.dir, sizeof(sched.dir), "/tmp/test-qmgr-sched.XXXXXX");
        assert_non_null(mkdtemp(sched.dir));
        snprintf(run, sizeof(run), "%s/run", sched.dir);
        assert_int_equal(mkdir(run, 0700), 0);
        assert_true(asprintf(&text,
                             "queue_directory = %s\n"
                             "runtime_directory = %s\n"
                             "myhostname = test.example\n"
                             "mydestination = $myhostname\n"
                             /* queue-sample.h files were made in 2023: never expire them here */
                             "maximal_queue_lifetime = 20000d\n"
                             "bounce_queue_lifetime = 20000d\n"
                             "%s\n",
                             sched.dir, run, extra) > 0);
        r = conf_load_string(text, strlen(text), "main.cf", "qmgr", &sched.conf, &error);
        if (r < 0)
                fail_msg("conf_load_string: %d %s\n%s", r, strempty(error), text);
        free(text);

        log_set_sink(capture_sink, &sched);
        test_clock_usec = 0;
        test_clock_usec = qmgr_now_usec(q);

        *q = (Qmgr) { .inotify_fd = -EBADF };
        assert_int_equal(sd_event_new(&q->event), 0);
        assert_int_equal(qmgr_open(q, q->event, sched.conf), 0);
        return q;
}

static int on_held_drain(sd_event_source *s, void *userdata)
{
        return 0;
}

/* hold_drain - qmgr_schedule_drain() enables the test's own source: entries stay todo */
static void hold_drain(Qmgr *q)
{
        assert_null(q->drain_source);
        assert_int_equal(sd_event_add_defer(q->event, &q->drain_source, on_held_drain, q), 0);
        assert_int_equal(sd_event_source_set_enabled(q->drain_source, SD_EVENT_OFF), 0);
}

static int sched_stop(void **state)
{
        Qmgr *q = &test_qmgr;

        qmgr_close(q);
        q->event = sd_event_unref(q->event);
        *q = (Qmgr) { .inotify_fd = -EBADF };

        log_set_sink(NULL, NULL);
        for (size_t i = 0; i < sched.n_lines; i++)
                free(sched.lines[i]);
        sched.n_lines = 0;
        sched.conf = conf_free(sched.conf);
        if (sched.dir[0])
                (void) nftw(sched.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        sched.dir[0] = 0;
        test_clock_usec = 0;
        return 0;
}

/* ---- helpers */

/* enqueue - a whole queue file with RCPTS committed to incoming (and moved to TO, due now) */
static void enqueue(Qmgr *q, QueueName to, const char *const *rcpts, size_t n, char id[QUEUE_ID_MAX])
{
        QueueNew *qn = NULL;
        QueueBuf b = {};

        assert_int_equal(queue_new(q->store, &qn), 0);
        snprintf(id, QUEUE_ID_MAX, "%s", queue_new_id(qn));
        assert_int_equal(queue_sample_build(&b, id, rcpts, n, 1), 0);
        assert_int_equal(write(queue_new_fd(qn), b.data, b.size), (ssize_t) b.size);
        assert_int_equal(queue_store_commit(q->store, &qn, 1, NULL), 0);
        snprintf(id, QUEUE_ID_MAX, "%s", queue_new_id(qn));
        queue_new_free(qn);
        queue_buf_done(&b);
        if (to != QUEUE_INCOMING)
                assert_int_equal(queue_store_move(q->store, QUEUE_INCOMING, id, to,
                                                  qmgr_now_usec(q) / (int64_t) USEC_PER_SEC - 10),
                                 0);
}

/* import - enqueue and take in at once (qmgr_message_import as the scan calls it) */
static QmgrMessage *import(Qmgr *q, const char *const *rcpts, size_t n, char id[QUEUE_ID_MAX])
{
        enqueue(q, QUEUE_INCOMING, rcpts, n, id);
        assert_int_equal(qmgr_message_import(q, QUEUE_INCOMING, id, 0), 0);
        return strmap_get(q->messages, id);
}

#define IMPORT1(q, rcpt, id) import((q), (const char *const[]) { (rcpt) }, 1, (id))

static QmgrQueue *queue_of(Qmgr *q, const char *transport, const char *name)
{
        QmgrTransport *t = qmgr_transport_find(q, transport);

        return t ? strmap_get(t->queues, name) : NULL;
}

/* select_one - what qmgr_drain() does for one hand-off: a transport, then its entry */
static QmgrEntry *select_one(Qmgr *q)
{
        QmgrTransport *t = qmgr_transport_select(q);

        if (!t)
                return NULL;
        return qmgr_entry_select(q, t);
}

/* agent_done - end E as on_reply() does: the agent's outcomes for its recipients (STATUS for
 * all), then the feedback (HOP_DSN non-NULL: the destination failed) */
static void agent_done(Qmgr *q, QmgrEntry *e, DeliveryStatus status, const char *hop_dsn, const char *hop_text)
{
        QmgrOutcome out[64];

        assert_true(e->busy);
        assert_true(e->n_rcpts <= ELEMENTSOF(out));
        for (size_t i = 0; i < e->n_rcpts; i++)
                out[i] = (QmgrOutcome) {
                        .status = status,
                        .dsn = status == DELIVERY_SENT ? "2.0.0" : "4.4.1",
                        .text = status == DELIVERY_SENT ? "250 ok" : "connect refused",
                        .relay = "test",
                        .handoff_usec = qmgr_now_usec(q),
                        .log_line = true,
                };
        assert_int_equal(qmgr_message_apply(e->message, e->rcpts, out, e->n_rcpts), 0);
        qmgr_queue_done_entry(e, hop_dsn, hop_text);
}

/* assert_deferred - ID is back in deferred/ with N defer log entries (DSN, REASON) and none of
 * its recipients marked done */
static void assert_deferred(Qmgr *q, const char *id, size_t n, const char *dsn, const char *reason)
{
        QueueLogEntry *v = NULL;
        size_t k = 0;
        QueueMessage *m = NULL;
        const char *why = NULL;

        assert_null(strmap_get(q->messages, id));
        assert_int_equal(queue_log_read(q->store, "defer", id, &v, &k), 0);
        if (k != n)
                fail_msg("%s: %zu defer log entries, expected %zu", id, k, n);
        for (size_t i = 0; i < k; i++) {
                if (!streq(v[i].status, dsn) || !streq(v[i].reason, reason))
                        fail_msg("%s: defer log entry %zu: %s \"%s\", expected %s \"%s\"", id, i, v[i].status,
                                 v[i].reason, dsn, reason);
                assert_string_equal(v[i].action, "delayed");
        }
        queue_log_entries_free(v, k);

        assert_int_equal(queue_message_open(q->store, QUEUE_DEFERRED, id, &m, &why), 0);
        for (size_t i = 0; i < m->envelope.n_rcpts; i++)
                if (m->envelope.rcpts[i].done)
                        fail_msg("%s: recipient %s marked done", id, m->envelope.rcpts[i].address);
        queue_message_free(m);
}

/* ---- round robin and FIFO */

/* transports are chosen in turn: the list rotates after each pick (§3.6, §3.7 "Round robin") */
static void test_transport_round_robin(void **state)
{
        Qmgr *q = sched_start("[transport]\n"
                              "a.example = alpha:\n"
                              "b.example = beta:\n"
                              "c.example = gamma:\n");
        const char *rcpts[] = { "x@a.example", "y@b.example", "z@c.example" };
        const char *want[] = { "alpha", "beta", "gamma", "alpha", "beta", "gamma" };
        char id[2][QUEUE_ID_MAX];

        assert_non_null(import(q, rcpts, 3, id[0]));
        assert_non_null(import(q, rcpts, 3, id[1]));

        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                QmgrTransport *t = qmgr_transport_select(q);
                QmgrEntry *e;

                assert_non_null(t);
                if (!streq(t->name, want[i]))
                        fail_msg("pick %zu: transport %s, expected %s", i, t->name, want[i]);
                e = qmgr_entry_select(q, t);
                assert_non_null(e);
                /* FIFO in the queue: the first message's entry first */
                assert_string_equal(e->message->id, id[i / 3]);
        }
        assert_null(qmgr_transport_select(q));

        /* transports with nothing to do are passed over: only alpha has new work; it is
         * picked and goes to the tail */
        QmgrMessage *m = IMPORT1(q, "w@a.example", id[0]);
        assert_non_null(m);
        QmgrTransport *t = qmgr_transport_select(q);
        assert_non_null(t);
        assert_string_equal(t->name, "alpha");
        assert_string_equal(q->transport_rr.tail->name, "alpha");
}

/* a transport's destination queues are served in turn, a new destination first (Postfix
 * prepends it to the round-robin list), and each queue's entries in arrival order */
static void test_queue_round_robin_fifo(void **state)
{
        Qmgr *q = sched_start("");
        const char *rcpts[] = { "u@d1.example", "u@d2.example", "u@d3.example" };
        const char *want[] = { "d3.example", "d2.example", "d1.example" };
        char id[3][QUEUE_ID_MAX];

        for (size_t k = 0; k < 3; k++)
                assert_non_null(import(q, rcpts, 3, id[k]));
        assert_int_equal(qmgr_transport_find(q, "smtp")->todo, 9);

        for (size_t i = 0; i < 9; i++) {
                QmgrEntry *e = select_one(q);

                assert_non_null(e);
                assert_string_equal(e->queue->transport->name, "smtp");
                if (!streq(e->queue->name, want[i % 3]) || !streq(e->message->id, id[i / 3]))
                        fail_msg("pick %zu: %s of %s, expected %s of %s", i, e->queue->name, e->message->id,
                                 want[i % 3], id[i / 3]);
                assert_string_equal(e->queue->nexthop, want[i % 3]);
                assert_int_equal(e->n_rcpts, 1);
        }
        assert_null(select_one(q));
        assert_int_equal(qmgr_transport_find(q, "smtp")->todo, 0);
        assert_int_equal(queue_of(q, "smtp", "d1.example")->busy, 3);
}

/* ---- windows and feedback */

/* no more busy entries than the window; a success frees one slot (the limit stops growth) */
static void test_window_limits_busy(void **state)
{
        Qmgr *q = sched_start("initial_destination_concurrency = 2\n"
                              "default_destination_concurrency_limit = 2\n");
        QmgrEntry *busy[4] = {};
        char id[QUEUE_ID_MAX];
        QmgrQueue *queue;

        for (size_t k = 0; k < 4; k++)
                assert_non_null(IMPORT1(q, "u@w.example", id));
        queue = queue_of(q, "smtp", "w.example");
        assert_non_null(queue);
        assert_int_equal(queue->window.window, 2);

        busy[0] = select_one(q);
        busy[1] = select_one(q);
        assert_non_null(busy[0]);
        assert_non_null(busy[1]);
        assert_null(select_one(q));
        assert_null(qmgr_entry_select(q, qmgr_transport_find(q, "smtp")));
        assert_int_equal(queue->busy, 2);
        assert_int_equal(queue->todo.n, 2);

        agent_done(q, busy[0], DELIVERY_SENT, NULL, NULL);
        assert_int_equal(queue->window.window, 2);
        busy[2] = select_one(q);
        assert_non_null(busy[2]);
        assert_null(select_one(q));
        assert_int_equal(queue->busy, 2);
}

/* slow start: a success with the window full adds one, up to busy + init (§3.7) */
static void test_slow_start(void **state)
{
        Qmgr *q = sched_start("initial_destination_concurrency = 2\n"
                              "default_destination_concurrency_limit = 0\n");
        char id[QUEUE_ID_MAX];
        QmgrQueue *queue;
        QmgrEntry *e;
        int expect = 2;

        for (size_t k = 0; k < 12; k++)
                assert_non_null(IMPORT1(q, "u@slow.example", id));
        queue = queue_of(q, "smtp", "slow.example");
        assert_int_equal(queue->window.window, 2);

        for (int round = 0; round < 3; round++) {
                /* fill the window */
                while ((e = select_one(q)))
                        ;
                assert_int_equal(queue->busy, expect);
                /* one success with the rest still busy: busy + init > window, so it grows */
                agent_done(q, queue->busy_list.head, DELIVERY_SENT, NULL, NULL);
                expect++;
                if (queue->window.window != expect)
                        fail_msg("round %d: window %d, expected %d", round, queue->window.window, expect);
        }
        /* without the load to use it, the window stays: successes with busy + init <= window */
        while (queue->busy > 2)
                agent_done(q, queue->busy_list.head, DELIVERY_SENT, NULL, NULL);
        assert_int_equal(queue->window.window, expect);
        assert_true(queue->window.fail_cohorts == 0);
}

/* negative feedback shrinks the window; a whole failed cohort makes the queue dead, and its
 * waiting entries are deferred with "delivery temporarily suspended: ..." (§3.6-§3.8) */
static void test_negative_feedback_dead(void **state)
{
        Qmgr *q = sched_start("");      /* init 5, limit 20, feedback 1, cohort limit 1 */
        char id[8][QUEUE_ID_MAX];
        QmgrEntry *busy[5];
        QmgrQueue *queue;

        for (size_t k = 0; k < 8; k++)
                assert_non_null(IMPORT1(q, "u@down.example", id[k]));
        queue = queue_of(q, "smtp", "down.example");
        for (size_t k = 0; k < 5; k++) {
                busy[k] = select_one(q);
                assert_non_null(busy[k]);
                assert_string_equal(busy[k]->message->id, id[k]);
        }
        assert_null(select_one(q));

        /* Postfix's arithmetic: 5 -> 3 (the reverse hysteresis takes two at first), cohorts 1/5 */
        agent_done(q, busy[0], DELIVERY_DEFERRED, "4.4.1", "connect refused");
        assert_int_equal(queue->window.window, 3);
        assert_false(window_dead(&queue->window));
        assert_int_equal(queue->todo.n, 3);
        assert_null(select_one(q));             /* busy 4 > window 3 */
        assert_deferred(q, id[0], 1, "4.4.1", "connect refused");

        /* 3 -> 2, cohorts 1/5 + 1/3 */
        agent_done(q, busy[1], DELIVERY_DEFERRED, "4.4.1", "connect refused");
        assert_int_equal(queue->window.window, 2);
        assert_int_equal(queue->todo.n, 3);

        /* cohorts + 1/2 >= 1: dead; the three waiting entries are deferred at once */
        agent_done(q, busy[2], DELIVERY_DEFERRED, "4.4.1", "connect refused");
        assert_true(window_dead(&queue->window));
        assert_int_equal(queue->todo.n, 0);
        assert_int_equal(queue->busy, 2);
        assert_string_equal(queue->dsn, "4.4.1");
        assert_string_equal(queue->reason, "delivery temporarily suspended: connect refused");
        assert_non_null(queue->unthrottle_timer);
        assert_int_equal(queue->dead_until,
                         qmgr_now_usec(q) / (int64_t) USEC_PER_SEC + q->minimal_backoff);
        assert_false(queue->conn_load || queue->conn_store);
        for (size_t k = 5; k < 8; k++)
                assert_deferred(q, id[k], 1, "4.4.1", "delivery temporarily suspended: connect refused");
        assert_int_equal(qmgr_transport_find(q, "smtp")->todo, 0);
        assert_null(select_one(q));

        /* the deliveries in flight end; a failure leaves it dead (the dead-destination cache) */
        agent_done(q, busy[3], DELIVERY_DEFERRED, "4.4.1", "connect refused");
        assert_ptr_equal(queue_of(q, "smtp", "down.example"), queue);
        assert_true(window_dead(&queue->window));

        /*
         * Postfix unthrottles the queue after any delivery without a hop failure
         * (qmgr_deliver_update), and qmgr_queue_unthrottle() brings a dead queue back with the
         * window at its busy count, else the initial concurrency (§3.6 "On completion", §3.7
         * "Coming back from dead"): a delivery in flight that succeeds revives the destination.
         */
        agent_done(q, busy[4], DELIVERY_SENT, NULL, NULL);
        assert_null(strmap_get(q->messages, id[4]));
        queue = queue_of(q, "smtp", "down.example");
        /* alive with nothing to do: dropped, or kept with the initial window */
        assert_true(!queue || (!window_dead(&queue->window) && queue->window.window == 5));
}

/* dead_queue - make the queue of NAME dead: one delivery with a hop failure (init 1) */
static QmgrQueue *dead_queue(Qmgr *q, const char *rcpt)
{
        char id[QUEUE_ID_MAX];
        QmgrEntry *e;

        assert_non_null(IMPORT1(q, rcpt, id));
        e = select_one(q);
        assert_non_null(e);
        QmgrQueue *queue = e->queue;
        agent_done(q, e, DELIVERY_DEFERRED, "4.4.2", "lost connection");
        assert_true(window_dead(&queue->window));
        return queue;
}

/* new recipients for a dead destination are deferred at import, through no entry; others of
 * the same message are scheduled; qmgr_enable_all() (flushDead) revives the destination */
static void test_dead_destination_cache(void **state)
{
        Qmgr *q = sched_start("initial_destination_concurrency = 1\n");
        const char *rcpts[] = { "a@dead.example", "b@live.example", "c@dead.example" };
        char id[QUEUE_ID_MAX], id2[QUEUE_ID_MAX];
        QmgrQueue *queue = dead_queue(q, "x@dead.example");
        QmgrMessage *m;

        /* the whole message: two recipients deferred now, one entry for live.example */
        m = import(q, rcpts, 3, id);
        assert_non_null(m);
        assert_int_equal(queue->todo.n, 0);
        assert_int_equal(queue_of(q, "smtp", "live.example")->todo.n, 1);
        assert_true(m->flags & QMGR_MSG_DEFERRED);
        QueueLogEntry *v = NULL;
        size_t n = 0;
        assert_int_equal(queue_log_read(q->store, "defer", id, &v, &n), 0);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(v[i].status, "4.4.2");
                assert_string_equal(v[i].reason, "delivery temporarily suspended: lost connection");
        }
        assert_string_equal(v[0].recipient, "a@dead.example");
        assert_string_equal(v[1].recipient, "c@dead.example");
        queue_log_entries_free(v, n);

        /* a message only for the dead destination goes straight back to deferred/ */
        assert_null(IMPORT1(q, "d@DEAD.example", id2));
        assert_deferred(q, id2, 1, "4.4.2", "delivery temporarily suspended: lost connection");

        /* flushDead: alive again (the initial window), and the next message gets an entry */
        qmgr_enable_all(q);
        queue = queue_of(q, "smtp", "dead.example");
        assert_null(queue);                     /* empty and alive: dropped */
        assert_non_null(IMPORT1(q, "e@dead.example", id2));
        queue = queue_of(q, "smtp", "dead.example");
        assert_non_null(queue);
        assert_false(window_dead(&queue->window));
        assert_int_equal(queue->window.window, 1);
        assert_int_equal(queue->todo.n, 1);
}

/* the queue's own timer ends the dead time: unthrottled after minimal_backoff_time */
static void test_dead_queue_unthrottle(void **state)
{
        Qmgr *q = sched_start("initial_destination_concurrency = 1\n");
        QmgrQueue *queue = dead_queue(q, "x@dead.example");
        char id[QUEUE_ID_MAX];

        /* still dead: the unthrottle is what brings it back, with the initial window */
        assert_null(IMPORT1(q, "y@dead.example", id));
        qmgr_queue_unthrottle(queue);
        assert_false(window_dead(&queue->window));
        assert_int_equal(queue->window.window, 1);
        assert_null(queue->dsn);
        assert_null(queue->reason);
        assert_null(queue->unthrottle_timer);
        assert_non_null(IMPORT1(q, "z@dead.example", id));
        assert_int_equal(queue->todo.n, 1);
}

/* a dead transport: its waiting entries deferred, passed over by selection, new recipients
 * deferred at import; any answer from one of its agents (not a crash) revives it (§3.6, §3.7) */
static void test_transport_dead(void **state)
{
        Qmgr *q = sched_start("");
        char id[3][QUEUE_ID_MAX], id2[QUEUE_ID_MAX];
        QmgrTransport *t;
        QmgrEntry *inflight;

        for (size_t k = 0; k < 3; k++)
                assert_non_null(IMPORT1(q, "u@t.example", id[k]));
        t = qmgr_transport_find(q, "smtp");
        inflight = select_one(q);
        assert_non_null(inflight);

        qmgr_transport_throttle(t, "4.3.0", "mail transport unavailable");
        assert_true(t->dead);
        assert_non_null(t->unthrottle_timer);
        assert_int_equal(t->dead_until, qmgr_now_usec(q) / (int64_t) USEC_PER_SEC + q->transport_retry_time);
        assert_int_equal(t->todo, 0);
        for (size_t k = 1; k < 3; k++)
                assert_deferred(q, id[k], 1, "4.3.0", "delivery temporarily suspended: mail transport unavailable");
        assert_null(qmgr_transport_select(q));

        assert_null(IMPORT1(q, "v@other.example", id2));
        assert_deferred(q, id2, 1, "4.3.0", "delivery temporarily suspended: mail transport unavailable");

        /* the delivery in flight answers: the transport is alive again */
        agent_done(q, inflight, DELIVERY_SENT, NULL, NULL);
        assert_false(t->dead);
        assert_null(t->unthrottle_timer);
        assert_non_null(IMPORT1(q, "w@other.example", id2));
        assert_non_null(select_one(q));

        /* and flushDead revives a dead one too */
        qmgr_transport_throttle(t, "4.3.0", "mail transport unavailable");
        assert_true(t->dead);
        qmgr_enable_all(q);
        assert_false(t->dead);
        assert_null(t->dsn);
}

/* ---- routing into entries */

/* destination_recipient_limit cuts a message's recipients of one queue into entries */
static void test_recipient_limit_batching(void **state)
{
        Qmgr *q = sched_start("default_destination_recipient_limit = 2\n");
        const char *rcpts[] = { "r1@b.example", "s1@c.example", "r2@b.example", "r3@b.example",
                                "s2@c.example", "r4@b.example", "r5@b.example" };
        const char *want_b[][2] = { { "r1@b.example", "r2@b.example" },
                                    { "r3@b.example", "r4@b.example" },
                                    { "r5@b.example", NULL } };
        char id[QUEUE_ID_MAX];
        QmgrMessage *m = import(q, rcpts, ELEMENTSOF(rcpts), id);
        QmgrQueue *b, *c;
        QmgrEntry *e;
        size_t k = 0;

        assert_non_null(m);
        assert_int_equal(m->n_rcpts, 7);
        b = queue_of(q, "smtp", "b.example");
        c = queue_of(q, "smtp", "c.example");
        assert_int_equal(b->todo.n, 3);
        assert_int_equal(c->todo.n, 1);
        assert_int_equal(m->refcount, 4);
        LIST_FOREACH(queue, e, b->todo) {
                size_t want_n = want_b[k][1] ? 2 : 1;
                assert_ptr_equal(e->message, m);
                assert_int_equal(e->n_rcpts, want_n);
                for (size_t i = 0; i < want_n; i++)
                        assert_string_equal(m->rcpts[e->rcpts[i]].address, want_b[k][i]);
                k++;
        }
        e = c->todo.head;
        assert_int_equal(e->n_rcpts, 2);
        assert_string_equal(m->rcpts[e->rcpts[0]].address, "s1@c.example");
        assert_string_equal(m->rcpts[e->rcpts[1]].address, "s2@c.example");

        /* a per-transport override: no limit would put all five in one entry */
        sched_stop(NULL);
        q = sched_start("default_destination_recipient_limit = 2\nsmtp_destination_recipient_limit = 0\n");
        m = import(q, rcpts, ELEMENTSOF(rcpts), id);
        assert_non_null(m);
        assert_int_equal(queue_of(q, "smtp", "b.example")->todo.n, 1);
        assert_int_equal(queue_of(q, "smtp", "b.example")->todo.head->n_rcpts, 5);
}

/* destination_recipient_limit 1: one queue per recipient (lower-cased local part @ nexthop),
 * so concurrency is per recipient; not so for error and retry (§3.4 step 8) */
static void test_per_recipient_queues(void **state)
{
        Qmgr *q = sched_start("local_destination_recipient_limit = 1\n"
                              "retry_destination_recipient_limit = 1\n");
        const char *rcpts[] = { "Alice@test.example", "bob", "alice@TEST.example", "carol@test.example" };
        char id[QUEUE_ID_MAX];
        QmgrMessage *m = import(q, rcpts, ELEMENTSOF(rcpts), id);
        QmgrTransport *t = qmgr_transport_find(q, "local");
        QmgrQueue *alice, *bob, *carol;
        char *name = NULL;

        assert_non_null(m);
        assert_non_null(t);
        assert_int_equal(t->recipient_limit, 1);
        assert_int_equal(t->queue_rr.n, 3);
        alice = queue_of(q, "local", "alice@test.example");
        bob = queue_of(q, "local", "bob@test.example");
        carol = queue_of(q, "local", "carol@test.example");
        assert_non_null(alice);
        assert_non_null(bob);
        assert_non_null(carol);
        assert_string_equal(alice->nexthop, "test.example");
        assert_int_equal(alice->todo.n, 2);
        assert_int_equal(alice->todo.head->n_rcpts, 1);
        assert_int_equal(bob->todo.n, 1);
        assert_int_equal(carol->todo.n, 1);
        assert_int_equal(m->refcount, 4);

        /* error and retry keep one queue per nexthop ("<dsn> <text>") */
        QmgrTransport *retry = NULL;
        assert_int_equal(qmgr_transport_get(q, "retry", &retry), 0);
        assert_int_equal(retry->recipient_limit, 1);
        assert_int_equal(qmgr_queue_name(retry, "4.3.2 Deferred Transport", "x@y.example", &name), 0);
        assert_string_equal(name, "4.3.2 deferred transport");
        free(name);
        /* a transport without the limit: the nexthop alone */
        assert_int_equal(qmgr_queue_name(qmgr_transport_find(q, "local"), "Test.Example", NULL, &name), 0);
        assert_string_equal(name, "test.example");
        free(name);
}

/* ---- connection cache hints and rate delays, with the test's clock */

/* §3.9: LOAD|STORE when deliveries come back to back (within a second), STORE dropped when
 * there is neither concurrency nor back-to-back delivery */
static void test_conn_cache_flags(void **state)
{
        Qmgr *q = sched_start("");
        char id[QUEUE_ID_MAX];
        QmgrEntry *e;
        QmgrQueue *queue;

        for (size_t k = 0; k < 3; k++)
                assert_non_null(IMPORT1(q, "u@cc.example", id));
        e = select_one(q);
        queue = e->queue;
        assert_false(queue->conn_load || queue->conn_store);
        agent_done(q, e, DELIVERY_SENT, NULL, NULL);

        test_clock_usec += USEC_PER_SEC / 2;    /* the next one half a second later */
        e = select_one(q);
        assert_true(queue->conn_load && queue->conn_store);
        agent_done(q, e, DELIVERY_SENT, NULL, NULL);

        test_clock_usec += 5 * USEC_PER_SEC;    /* not back to back, and alone */
        e = select_one(q);
        assert_non_null(e);
        assert_true(queue->conn_load);
        assert_false(queue->conn_store);
}

/* transport_rate_delay locks the transport between hand-offs until the clock passes it */
static void test_transport_rate_delay(void **state)
{
        Qmgr *q = sched_start("default_transport_rate_delay = 2s\n");
        char id[QUEUE_ID_MAX];
        QmgrTransport *t;

        for (size_t k = 0; k < 2; k++)
                assert_non_null(IMPORT1(q, "u@rate.example", id));
        assert_non_null(select_one(q));
        t = qmgr_transport_find(q, "smtp");
        assert_int_equal(t->rate_locked_until, qmgr_now_usec(q) + 2 * (int64_t) USEC_PER_SEC);
        assert_non_null(q->drain_timer);        /* a drain when the lock ends */
        assert_null(qmgr_transport_select(q));
        test_clock_usec += USEC_PER_SEC;
        assert_null(qmgr_transport_select(q));
        test_clock_usec += USEC_PER_SEC + 1;
        assert_ptr_equal(qmgr_transport_select(q), t);
}

/* ---- the import loop */

/* run - dispatch what is pending until nothing is */
static void run(Qmgr *q)
{
        for (unsigned i = 0; i < 1000; i++) {
                int r = sd_event_run(q->event, 0);
                assert_true(r >= 0);
                if (r == 0)
                        return;
        }
        fail_msg("the event loop does not settle");
}

/* imported - the queue IDs of "(queue active)" lines, in order */
static size_t imported(char ids[][QUEUE_ID_MAX], size_t max)
{
        size_t n = 0;

        for (size_t i = 0; i < sched.n_lines && n < max; i++) {
                const char *colon = strchr(sched.lines[i], ':');
                if (!colon || !strstr(sched.lines[i], "(queue active)"))
                        continue;
                snprintf(ids[n++], QUEUE_ID_MAX, "%.*s", (int) (colon - sched.lines[i]), sched.lines[i]);
        }
        return n;
}

static char which(const char *id, char in[][QUEUE_ID_MAX], char def[][QUEUE_ID_MAX], size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (streq(id, in[i]))
                        return 'I';
                if (streq(id, def[i]))
                        return 'D';
        }
        return '?';
}

/* import_pattern - "IDID...": the queue each imported message came from, in import order */
static void import_pattern(char in[][QUEUE_ID_MAX], char def[][QUEUE_ID_MAX], size_t n, char *buf, size_t size)
{
        char ids[16][QUEUE_ID_MAX];
        size_t k = imported(ids, 16);

        assert_true(k < size);
        for (size_t i = 0; i < k; i++)
                buf[i] = which(ids[i], in, def, n);
        buf[k] = 0;
}

/* incoming and deferred take turns, one message at a time (§3.3); when one runs out the other
 * goes on alone */
static void test_import_fairness(void **state)
{
        Qmgr *q = sched_start("");
        char in[4][QUEUE_ID_MAX] = {}, def[4][QUEUE_ID_MAX] = {}, pattern[16];

        hold_drain(q);
        for (size_t k = 0; k < 3; k++)
                enqueue(q, QUEUE_INCOMING, (const char *const[]) { "u@in.example" }, 1, in[k]);
        for (size_t k = 0; k < 4; k++)
                enqueue(q, QUEUE_DEFERRED, (const char *const[]) { "u@def.example" }, 1, def[k]);
        assert_int_equal(qmgr_scan_setup(q), 0);
        run(q);
        import_pattern(in, def, 4, pattern, sizeof(pattern));
        assert_string_equal(pattern, "IDIDIDD");
        assert_int_equal(q->active.n, 7);

        /* a deferred file whose next attempt is in the future is not taken (a scan that meets
         * it goes on to the other queue's next file in the same pass) */
        char later[QUEUE_ID_MAX];
        enqueue(q, QUEUE_INCOMING, (const char *const[]) { "u@def.example" }, 1, later);
        assert_int_equal(queue_store_move(q->store, QUEUE_INCOMING, later, QUEUE_DEFERRED,
                                          qmgr_now_usec(q) / (int64_t) USEC_PER_SEC + 3600),
                         0);
        qmgr_scan_request(q, QMGR_SCAN_DEFERRED, QMGR_SCAN_START);
        run(q);
        assert_int_equal(q->active.n, 7);
        assert_null(strmap_get(q->messages, later));
        assert_int_equal(queue_of(q, "smtp", "in.example")->todo.n, 3);
        assert_int_equal(queue_of(q, "smtp", "def.example")->todo.n, 4);
}

/* the leaky bucket: no import while qmgr_message_active_limit messages are in core; when room
 * opens, incoming goes first, even if it was deferred's turn (§3.3) */
static void test_import_bucket(void **state)
{
        Qmgr *q = sched_start("qmgr_message_active_limit = 3\n");
        char in[3][QUEUE_ID_MAX] = {}, def[3][QUEUE_ID_MAX] = {}, pattern[16];
        QmgrMessage *m;

        hold_drain(q);
        for (size_t k = 0; k < 3; k++) {
                enqueue(q, QUEUE_INCOMING, (const char *const[]) { "u@in.example" }, 1, in[k]);
                enqueue(q, QUEUE_DEFERRED, (const char *const[]) { "u@def.example" }, 1, def[k]);
        }
        assert_int_equal(qmgr_scan_setup(q), 0);
        run(q);
        import_pattern(in, def, 3, pattern, sizeof(pattern));
        assert_string_equal(pattern, "IDI");    /* full, with deferred's turn next */
        assert_int_equal(q->active.n, 3);
        assert_int_equal(q->next_scan, QMGR_SCAN_INCOMING);

        /* nothing moves while full */
        qmgr_schedule_import(q);
        run(q);
        assert_int_equal(q->active.n, 3);

        /* one leaves (its entry deferred, as a dead destination would): incoming first */
        m = q->active.head->all_next;           /* the deferred one */
        assert_int_equal(which(m->id, in, def, 3), 'D');
        qmgr_entry_defer(queue_of(q, "smtp", "def.example")->todo.head, "4.4.1", "test");
        assert_int_equal(q->active.n, 2);
        run(q);
        import_pattern(in, def, 3, pattern, sizeof(pattern));
        assert_string_equal(pattern, "IDII");
        assert_int_equal(q->active.n, 3);

        /* the recipient count is a bucket too (oqmgr): with two messages allowed in core but
         * two recipients at most, the first two-recipient message fills it */
        sched_stop(NULL);
        q = sched_start("qmgr_message_active_limit = 2\nqmgr_message_recipient_limit = 2\n");
        hold_drain(q);
        enqueue(q, QUEUE_INCOMING, (const char *const[]) { "a@in.example", "b@in.example" }, 2, in[0]);
        enqueue(q, QUEUE_INCOMING, (const char *const[]) { "c@in.example", "d@in.example" }, 2, in[1]);
        assert_int_equal(qmgr_scan_setup(q), 0);
        run(q);
        assert_int_equal(q->active.n, 1);
        assert_int_equal(q->recipients_in_core, 2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_transport_round_robin, sched_stop),
                cmocka_unit_test_teardown(test_queue_round_robin_fifo, sched_stop),
                cmocka_unit_test_teardown(test_window_limits_busy, sched_stop),
                cmocka_unit_test_teardown(test_slow_start, sched_stop),
                cmocka_unit_test_teardown(test_negative_feedback_dead, sched_stop),
                cmocka_unit_test_teardown(test_dead_destination_cache, sched_stop),
                cmocka_unit_test_teardown(test_dead_queue_unthrottle, sched_stop),
                cmocka_unit_test_teardown(test_transport_dead, sched_stop),
                cmocka_unit_test_teardown(test_recipient_limit_batching, sched_stop),
                cmocka_unit_test_teardown(test_per_recipient_queues, sched_stop),
                cmocka_unit_test_teardown(test_conn_cache_flags, sched_stop),
                cmocka_unit_test_teardown(test_transport_rate_delay, sched_stop),
                cmocka_unit_test_teardown(test_import_fairness, sched_stop),
                cmocka_unit_test_teardown(test_import_bucket, sched_stop),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
