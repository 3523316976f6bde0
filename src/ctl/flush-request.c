/* SPDX-License-Identifier: MIT */
/* flush-request.c - one io.tern.Flush request with postqueue's messages (see flush-request.h) */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "flush-request.h"
#include "macro.h"
#include "varlink.h"

static int mail_system_down(const char *program, const char *why)
{
        fprintf(stderr, "%s: fatal: Cannot flush mail queue - mail system is down%s%s\n", program,
                why ? ": " : "", strempty(why));
        return 69;
}

int flush_request(const Conf *c, const char *program, const char *method, json_t *params, const char *arg,
                  uint64_t timeout_usec, json_t **ret_reply)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        _cleanup_(freep) char *path = NULL, *full = NULL;
        VarlinkReply reply = {};
        const char *e;
        int r;

        if (asprintf(&path, "%s/flush", conf_get_string(c, "runtime_directory")) < 0 ||
            asprintf(&full, "io.tern.Flush.%s", method) < 0) {
                json_decref(params);
                return 71;
        }
        r = varlink_client_connect(path, &client);
        if (r < 0) {
                json_decref(params);
                fprintf(stderr, "%s: warning: tern-flush is not running: %s: %s\n", program, path, strerror(-r));
                return mail_system_down(program, NULL);
        }
        varlink_client_set_timeout(client, timeout_usec);
        r = varlink_client_call(client, full, params, NULL, 0, 0, &reply);
        if (r < 0)
                return mail_system_down(program, strerror(-r));
        if (r == 0) {
                if (ret_reply)
                        *ret_reply = json_incref(reply.parameters);
                varlink_reply_done(&reply);
                return 0;
        }
        e = reply.error;
        if (streq(e, "io.tern.Flush.InvalidSite") || streq(e, "io.tern.Flush.InvalidQueueId") ||
            streq(e, "org.varlink.service.InvalidParameter")) {
                json_t *id = json_object_get(reply.parameters, "queueId");
                /* the argument that was refused (ternctl flush add has two) */
                fprintf(stderr, "%s: fatal: Invalid request: \"%s\"\n", program,
                        json_is_string(id) ? json_string_value(id) : arg);
                r = 64;
        } else if (streq(e, "io.tern.Flush.NotEligible")) {
                fprintf(stderr, "%s: fatal: Flush service is not configured for destination \"%s\"\n", program,
                        arg);
                r = 69;
        } else if (streq(e, "io.tern.Flush.NotAuthorized")) {
                json_t *user = json_object_get(reply.parameters, "user");
                fprintf(stderr, "%s: fatal: User %s(%ld) is not allowed to flush the mail queue\n", program,
                        json_is_string(user) ? json_string_value(user) : "?", (long) getuid());
                r = 77;
        } else if (streq(e, "io.tern.Flush.Failed")) {
                json_t *why = json_object_get(reply.parameters, "reason");
                r = mail_system_down(program, json_is_string(why) ? json_string_value(why) : NULL);
        } else {
                fprintf(stderr, "%s: fatal: Unexpected flush server reply %s\n", program, e);
                r = 70;
        }
        varlink_reply_done(&reply);
        return r;
}
