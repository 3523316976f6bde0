/* SPDX-License-Identifier: MIT */
/*
 * error.c - tern-error: Postfix's error(8) delivery agent, for the error and retry transports
 *
 * The transport name decides, as the master.cf service name does for Postfix's error:
 *  - error (the default): every recipient is bounced, default code 5.0.0;
 *  - retry (tern-error -t retry): every recipient is deferred, default code 4.0.0.
 * The reason is the nexthop ("error:5.1.1 mailbox unavailable" logs dsn=5.1.1 and
 * "status=bounced (mailbox unavailable)"); relay=none. A leading code of the wrong class is
 * ignored with Postfix's warning ("bounce_append: ignoring dsn code", "defer_append: ...") and the
 * default is used. The message is not read; the queue file descriptor is only checked to be a
 * readable regular file (delivery-agent.c). Any other transport name is refused at start.
 *
 * Requests: io.tern.Delivery.Deliver (see idl/io.tern.Delivery.varlink). An empty nexthop is
 * refused with InvalidRequest (Postfix's error exits with a fatal error; qmgr defers either way).
 * The hop status is never set: the recipients fail, not the destination. See man/tern-error.8.
 */
#include "delivery-agent.h"
#include "log.h"

typedef struct ErrorMode {
        const char *transport;
        DeliveryStatus status;
        const char *def_dsn;
        const char *postfix_function;   /* whose warning a wrong code gets */
} ErrorMode;

static const ErrorMode modes[] = {
        { "error", DELIVERY_BOUNCED, "5.0.0", "bounce_append" },
        { "retry", DELIVERY_DEFERRED, "4.0.0", "defer_append" },
};

static const char *const transports[] = { "error", "retry", NULL };

static const ErrorMode *mode;

static int error_setup(DeliveryAgent *a, void *userdata)
{
        const char *t = delivery_agent_transport(a);

        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                if (streq(modes[i].transport, t))
                        mode = &modes[i];
        if (!mode) {
                log_error("bad error service name: %s (expected error or retry)", t);
                return -EINVAL;
        }
        return 0;
}

static int error_deliver(DeliveryJob *job, void *userdata)
{
        delivery_job_answer_nexthop(job, mode->status, mode->def_dsn, mode->postfix_function);
        return 0;
}

int main(int argc, char **argv)
{
        static const DeliveryAgentSpec spec = {
                .program = "error",
                .description = "Bounce (error) or defer (-t retry) every recipient with the nexthop as the "
                               "reason (io.tern.Delivery).",
                .transports = transports,
                .setup = error_setup,
                .deliver = error_deliver,
        };

        return delivery_agent_main(&spec, argc, argv);
}
