/* SPDX-License-Identifier: MIT */
/*
 * tern-qmgr - the queue manager (Postfix's qmgr(8), oqmgr scheduler): takes messages from the
 * incoming and deferred queues into the active queue, routes their recipients, hands them to
 * delivery agents over io.tern.Delivery with per-destination concurrency and feedback, defers
 * and bounces what cannot be delivered, and serves io.tern.Qmgr (triggers, status) and
 * io.tern.Queue (administration) on runtime_directory/qmgr. See tern-qmgr(8).
 *
 * At start (qmgr_post_init): the configuration is taken in (qmgr-state.c); files left in
 * active/ by a previous run go back to incoming/ with their next attempt now; an incoming and a
 * deferred scan start.
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
        int r;

        r = qmgr_open(q, service_event(s), service_conf(s));
        if (r < 0)
                return r;

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
        /* messages in core stay in active/: the next start moves them back to incoming */
        qmgr_varlink_done();
        qmgr_close(userdata);
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
        qmgr_close(q);          /* also when setup failed half-way */
        return r;
}
