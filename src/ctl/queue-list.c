/* SPDX-License-Identifier: MIT */
/*
 * queue-list.c - the client side of io.tern.Queue.List, shared by ternctl and tern-sendmail
 *
 * List is a streamed call: with "more", tern-qmgr sends one reply per message with
 * "continues": true and ends with a reply without "continues" (and without a message). A
 * final reply that does carry a message is taken too (a server may send its last message with
 * the last reply). Messages go to the caller one at a time, as they arrive, so a long queue is
 * printed while it is read and never held in memory.
 *
 * Limits: the listing is not atomic (as Postfix's showq is not): a message that moves between
 * queues while the daemon scans may be listed twice or not at all.
 */
#include <errno.h>

#include "macro.h"
#include "queue-list.h"

int queue_list(VarlinkClient *c, json_t *filter, QueueListFn fn, void *userdata, VarlinkReply *ret_error)
{
        json_t *params = NULL;
        int r;

        if (filter) {
                params = json_pack("{s:o}", "filter", filter);
                if (!params)
                        return -ENOMEM;
        }
        r = varlink_client_send(c, "io.tern.Queue.List", params, NULL, 0, VARLINK_CALL_MORE);
        if (r < 0)
                return r;

        for (;;) {
                VarlinkReply reply;
                json_t *message;
                bool last;

                r = varlink_client_read(c, &reply);
                if (r < 0)
                        return r;
                if (reply.error) {
                        *ret_error = reply;
                        return 1;
                }
                last = !reply.continues;
                message = json_object_get(reply.parameters, "message");
                if (message && !json_is_null(message)) {
                        r = json_is_object(message) ? fn(message, userdata) : -EBADMSG;
                        if (r < 0) {
                                varlink_reply_done(&reply);
                                return r;
                        }
                } else if (!last) {
                        /* only the last reply may come without a message */
                        varlink_reply_done(&reply);
                        return -EBADMSG;
                }
                varlink_reply_done(&reply);
                if (last)
                        return 0;
        }
}
