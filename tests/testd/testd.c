/* SPDX-License-Identifier: MIT */
/*
 * testd.c - tern-testd, a daemon on the service scaffold that serves io.tern.Test
 *
 * It exists so that every property of the scaffold (socket activation, READY/STATUS, idle exit,
 * max_use, the journal, varlink errors, pipelining, "more", descriptor passing) is tested on a
 * real process over a real socket before any mail daemon lands, and so that the benchmark has a
 * trivial method to call. It is built, never installed. The methods are in testd-varlink.c.
 */
#include "event.h"
#include "testd-varlink.h"

static int testd_setup(Service *s, void *userdata)
{
        return varlink_server_add_interface(service_varlink(s), &testd_interface, service_event(s));
}

int main(int argc, char **argv)
{
        static const ServiceSpec spec = {
                .program = "testd",
                .socket = "test",
                .description = "Serve io.tern.Test, the service scaffold's test interface.",
                .setup = testd_setup,
        };

        return service_main(&spec, argc, argv);
}
