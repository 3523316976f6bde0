/* SPDX-License-Identifier: MIT */
/*
 * discard.c - tern-discard: Postfix's discard(8) delivery agent
 *
 * Every recipient of a Deliver call is logged and answered as sent, relay=none, with the
 * nexthop as the reason: the transport table entry "example.com discard:silently" logs
 * "status=sent (silently)". The nexthop may start with an enhanced status code ("2.7.0 spam
 * trap"); without one the code is 2.0.0, and a code that is not 2.X.Y is ignored with a warning
 * ("sent: ignoring dsn code"), as Postfix's sent() does. The message is not read: the queue file
 * descriptor is only checked to be a readable regular file (delivery-agent.c).
 *
 * Requests: io.tern.Delivery.Deliver (see idl/io.tern.Delivery.varlink). An empty nexthop is
 * refused with InvalidRequest (Postfix's discard exits with a fatal error; qmgr defers either way).
 * Runs per connection: see man/tern-discard.8.
 */
#include "delivery-agent.h"
#include "log.h"

static int discard_deliver(DeliveryJob *job, void *userdata)
{
        /* Postfix's sent(): "sent: ignoring dsn code" for a code that is not 2.X.Y */
        delivery_job_answer_nexthop(job, DELIVERY_SENT, "2.0.0", "sent");
        return 0;
}

int main(int argc, char **argv)
{
        static const DeliveryAgentSpec spec = {
                .program = "discard",
                .description = "Discard mail: every recipient delivered, the nexthop logged as the reason "
                               "(io.tern.Delivery).",
                .deliver = discard_deliver,
        };

        return delivery_agent_main(&spec, argc, argv);
}
