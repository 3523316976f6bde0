/* SPDX-License-Identifier: MIT */
/*
 * queue-list.h - io.tern.Queue.List as a loop over messages, for ternctl and tern-sendmail -bp
 */
#pragma once

#include <jansson.h>

#include "varlink.h"

/* Called for each message (borrowed); a negative return stops the listing with that value. */
typedef int (*QueueListFn)(json_t *message, void *userdata);

/*
 * queue_list - call io.tern.Queue.List with "more" and FILTER (taken over; NULL: every message)
 * and hand each message to FN. Returns 0 at the end of the list; 1 with the error reply in
 * *RET_ERROR (the caller calls varlink_reply_done on it); -errno when the connection fails
 * (-ETIMEDOUT, -ECONNRESET), -EBADMSG for a reply that is not a listing, or FN's negative value.
 */
int queue_list(VarlinkClient *c, json_t *filter, QueueListFn fn, void *userdata, VarlinkReply *ret_error);
