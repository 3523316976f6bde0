/* SPDX-License-Identifier: MIT */
/*
 * submit.c - tern-submit: local mail submission (Postfix's postdrop + pickup + cleanup)
 *
 * Socket-activated on runtime_directory/submit (mode 0666: any local user may submit, subject to
 * authorized_submit_users), io.tern.Submit. The caller passes the message as a descriptor;
 * tern-submit reads it, applies cleanup's rules, writes the queue file durably into incoming,
 * answers with the queue ID, logs "ID: uid=N from=<sender>", and asks tern-qmgr to scan incoming
 * (a oneway call; when qmgr is not running the message waits for its next scan). No set-gid
 * program and no world-writable maildrop directory: the socket and SO_PEERCRED replace them.
 * Exits after max_idle with no client, like every socket-activated tern daemon. See
 * man/tern-submit.8.
 */
#include "event.h"
#include "log.h"
#include "submit-varlink.h"

static SubmitContext context;

static int submit_setup(Service *s, void *userdata)
{
        const Conf *c = service_conf(s);
        int r;

        r = submitter_new(service_event(s), c, &context.submitter);
        if (r < 0)
                return log_error_errno(r, "cannot open the queue %s: %m",
                                       conf_get_string(c, "queue_directory"));
        context.authorized_users = conf_get_list(c, "authorized_submit_users");
        context.message_size_limit = conf_get_size(c, "message_size_limit");
        context.recipient_limit = (uint64_t) conf_get_int(c, "smtpd_recipient_limit");
        return varlink_server_add_interface(service_varlink(s), &submit_interface, &context);
}

int main(int argc, char **argv)
{
        static const ServiceSpec spec = {
                .program = "submit",
                .description = "Queue locally submitted mail (io.tern.Submit).",
                .socket_mode = 0666,
                .setup = submit_setup,
        };
        int r;

        r = service_main(&spec, argc, argv);
        context.submitter = submitter_free(context.submitter);
        return r;
}
