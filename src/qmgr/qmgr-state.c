/* SPDX-License-Identifier: MIT */
/*
 * qmgr-state.c - tern-qmgr's state from its configuration, and back to nothing
 *
 * qmgr_open() reads the parameters once, with Postfix's start-up adjustments
 * (qmgr_post_init): qmgr_message_recipient_limit is raised to qmgr_message_active_limit and
 * bounce_queue_lifetime lowered to maximal_queue_lifetime, each with a warning. The active queue
 * holds each in-core message's file open, so the active limit is also bounded by RLIMIT_NOFILE
 * (raised to its hard limit) less QMGR_FD_RESERVE, with a warning when that lowers it. Then the
 * queue store, the resolver and the message table. qmgr_close() undoes all of it, and what the
 * scans, transports and messages hold; files in active/ stay there (the next start takes them
 * back). Shared by the daemon (qmgr.c) and the scheduler's unit tests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "flush-client.h"
#include "log.h"
#include "macro.h"
#include "qmgr.h"

int qmgr_open(Qmgr *q, sd_event *event, const Conf *c)
{
        uint64_t nofile;
        int r;

        q->event = event;
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
        r = flush_client_new(c, event, &q->flush);
        if (r < 0)
                return log_error_errno(r, "cannot set up the fast flush client: %m");
        r = resolver_new(c, &q->resolver);
        if (r < 0)
                return log_error_errno(r, "cannot set up routing: %m");
        r = strmap_new(&q->messages);
        if (r < 0)
                return log_error_errno(ENOMEM, "out of memory");

        return 0;
}

void qmgr_close(Qmgr *q)
{
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
        q->store = queue_store_free(q->store);
        q->resolver = resolver_free(q->resolver);
        q->flush = flush_client_free(q->flush);
        q->messages = strmap_free(q->messages);
        q->double_bounce_sender = mfree(q->double_bounce_sender);
        q->myhostname = mfree(q->myhostname);
        q->runtime_directory = mfree(q->runtime_directory);
}
