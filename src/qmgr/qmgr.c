/* SPDX-License-Identifier: MIT */
/*
 * tern-qmgr - the queue manager (Postfix's qmgr(8), oqmgr scheduler): takes messages from the
 * incoming and deferred queues into the active queue, routes their recipients, hands them to
 * delivery agents over io.tern.Delivery with per-destination concurrency and feedback, defers
 * and bounces what cannot be delivered, and serves io.tern.Qmgr (triggers, status) and
 * io.tern.Queue (administration) on runtime_directory/qmgr. See tern-qmgr(8).
 *
 * At start (qmgr_post_init): qmgr_message_recipient_limit is raised to
 * qmgr_message_active_limit and bounce_queue_lifetime lowered to maximal_queue_lifetime, with a
 * warning, as Postfix does; files left in active/ by a previous run go back to incoming/ with
 * their next attempt now; an incoming and a deferred scan start.
 *
 * The active queue holds each in-core message's file open, so the active limit is also bounded
 * by RLIMIT_NOFILE (raised to its hard limit) less QMGR_FD_RESERVE, with a warning when that
 * lowers qmgr_message_active_limit.
 *
 * Known differences from Postfix: no in_flow_delay (local submission and smtpd commit in
 * groups and are not paced by qmgr); qmgr defers recipients of dead destinations and
 * transports itself (relay=none) rather than through the retry agent; an agent that does not
 * answer within daemon_timeout is given up instead of qmgr exiting; no lock on queue files
 * (agents never open the spool), so an agent of a previous qmgr still delivering when qmgr
 * restarts can deliver a message a second time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "event.h"
#include "qmgr-varlink.h"
#include "qmgr.h"

static Qmgr qmgr_state = { .inotify_fd = -EBADF };

Qmgr *qmgr_global(void)
{
        return &qmgr_state;
}

int64_t qmgr_now_usec(const Qmgr *q)
{
        uint64_t now;

        if (!q->event || sd_event_now(q->event, CLOCK_REALTIME, &now) < 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                return (int64_t) ts.tv_sec * (int64_t) USEC_PER_SEC + ts.tv_nsec / 1000;
        }
        return (int64_t) now;
}

/* recover_active - what a previous run left in active/ goes back to incoming/, due now */
static int recover_active(Qmgr *q)
{
        QmgrIds ids = {};
        int64_t now = qmgr_now_usec(q) / (int64_t) USEC_PER_SEC;
        int r;

        r = qmgr_ids_list(q->store, QUEUE_ACTIVE, &ids);
        for (size_t i = 0; r >= 0 && i < ids.n; i++) {
                int k = queue_store_move(q->store, QUEUE_ACTIVE, ids.v[i], QUEUE_INCOMING, now);
                if (k < 0 && k != -ENOENT)
                        log_warning_errno(k, "%s: cannot move from active to incoming: %m", ids.v[i]);
        }
        if (ids.n > 0)
                log_info("moved %zu messages left in the active queue back to incoming", ids.n);
        qmgr_ids_done(&ids);
        return r;
}

static int qmgr_setup(Service *s, void *userdata)
{
        Qmgr *q = userdata;
        const Conf *c = service_conf(s);
        uint64_t nofile;
        int r;

        q->event = service_event(s);
        q->conf = c;
        q->message_active_limit = conf_get_int(c, "qmgr_message_active_limit");
        q->message_recipient_limit = conf_get_int(c, "qmgr_message_recipient_limit");
        q->message_recipient_minimum = conf_get_int(c, "qmgr_message_recipient_minimum");
        q->minimal_backoff = conf_get_time(c, "minimal_backoff_time");
        q->maximal_backoff = conf_get_time(c, "maximal_backoff_time");
        q->queue_run_delay = conf_get_time(c, "queue_run_delay");
        q->transport_retry_time = conf_get_time(c, "transport_retry_time");
        q->maximal_queue_lifetime = conf_get_time(c, "maximal_queue_lifetime");
        q->bounce_queue_lifetime = conf_get_time(c, "bounce_queue_lifetime");
        q->daemon_timeout = conf_get_time(c, "daemon_timeout");
        q->clog_warn_time = conf_get_time(c, "qmgr_clog_warn_time");
        q->delay_warning_time = conf_get_time(c, "delay_warning_time");
        q->allow_min_user = conf_get_bool(c, "allow_min_user");
        /* agents end connections idle for max_idle; ours stop using them halfway there */
        q->agent_idle_max_usec = conf_get_time(c, "max_idle") * (int64_t) USEC_PER_SEC / 2;
        q->double_bounce_sender = strdup(conf_get_string(c, "double_bounce_sender"));
        q->myhostname = strdup(conf_get_string(c, "myhostname"));
        q->runtime_directory = strdup(conf_get_string(c, "runtime_directory"));
        if (!q->double_bounce_sender || !q->myhostname || !q->runtime_directory)
                return log_error_errno(ENOMEM, "out of memory");

        if (q->message_recipient_limit < q->message_active_limit) {
                log_warning("qmgr_message_recipient_limit is smaller than qmgr_message_active_limit");
                log_warning("raising qmgr_message_recipient_limit to %lld", (long long) q->message_active_limit);
                q->message_recipient_limit = q->message_active_limit;
        }
        if (q->bounce_queue_lifetime > q->maximal_queue_lifetime) {
                log_warning("bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting "
                            "bounce_queue_lifetime");
                q->bounce_queue_lifetime = q->maximal_queue_lifetime;
        }
        if (q->queue_run_delay <= 0)
                q->queue_run_delay = 1;
        nofile = service_raise_nofile();
        if (nofile != UINT64_MAX && (uint64_t) q->message_active_limit + QMGR_FD_RESERVE > nofile) {
                int64_t lim = nofile > 2 * QMGR_FD_RESERVE ? (int64_t) (nofile - QMGR_FD_RESERVE) : (int64_t) nofile / 2;
                log_warning("RLIMIT_NOFILE %llu: lowering qmgr_message_active_limit to %lld",
                            (unsigned long long) nofile, (long long) lim);
                q->message_active_limit = lim;
        }

        r = queue_store_open(conf_get_string(c, "queue_directory"), conf_get_list(c, "hash_queue_names"),
                             (unsigned) conf_get_int(c, "hash_queue_depth"), &q->store);
        if (r < 0)
                return log_error_errno(r, "cannot open the queue %s: %m", conf_get_string(c, "queue_directory"));
        r = resolver_new(c, &q->resolver);
        if (r < 0)
                return log_error_errno(r, "cannot set up routing: %m");
        r = strmap_new(&q->messages);
        if (r < 0)
                return log_error_errno(ENOMEM, "out of memory");

        r = recover_active(q);
        if (r < 0)
                return log_error_errno(r, "cannot scan the active queue: %m");
        r = qmgr_scan_setup(q);
        if (r < 0)
                return log_error_errno(r, "cannot set up queue scans: %m");

        r = varlink_server_add_interface(service_varlink(s), &qmgr_interface, q);
        if (r < 0)
                return r;
        return varlink_server_add_interface(service_varlink(s), &queue_interface, q);
}

static void qmgr_shutdown(Service *s, void *userdata)
{
        Qmgr *q = userdata;

        /* messages in core stay in active/: the next start moves them back to incoming */
        qmgr_varlink_done();
        qmgr_scan_done(q);
        while (q->transport_rr.head)
                qmgr_transport_free(q->transport_rr.head);
        while (q->active.head) {
                QmgrMessage *m = q->active.head;
                m->refcount = 0;
                qmgr_message_free(m);
        }
        q->drain_source = sd_event_source_disable_unref(q->drain_source);
        q->drain_timer = sd_event_source_disable_unref(q->drain_timer);
}

int main(int argc, char **argv)
{
        static const ServiceSpec spec = {
                .program = "qmgr",
                .description = "Schedule queued mail for delivery (io.tern.Qmgr, io.tern.Queue).",
                .long_running = true,
                .setup = qmgr_setup,
                .shutdown = qmgr_shutdown,
                .userdata = &qmgr_state,
        };
        Qmgr *q = &qmgr_state;
        int r;

        r = service_main(&spec, argc, argv);
        qmgr_shutdown(NULL, q);
        q->store = queue_store_free(q->store);
        q->resolver = resolver_free(q->resolver);
        q->messages = strmap_free(q->messages);
        free(q->double_bounce_sender);
        free(q->myhostname);
        free(q->runtime_directory);
        return r;
}
