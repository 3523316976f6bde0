/* SPDX-License-Identifier: MIT */
/*
 * flush-request.h - postqueue -s/-i and sendmail -qR/-qI: one io.tern.Flush request with
 * Postfix's messages and exit codes (postfix-semantics.md §1.10), shared by ternctl and
 * tern-sendmail:
 *   ok            -> 0
 *   InvalidSite / InvalidQueueId -> Invalid request: "ARG"                         (64)
 *   NotEligible   -> Flush service is not configured for destination "ARG"         (69)
 *   NotAuthorized -> User NAME(UID) is not allowed to flush the mail queue         (77)
 *   Failed, no service, a broken connection -> Cannot flush mail queue - mail system is down (69)
 *   anything else -> Unexpected flush server reply ERROR                           (70)
 */
#pragma once

#include <jansson.h>

#include "conf.h"

/*
 * flush_request - connect to runtime_directory/flush of C and call METHOD ("SendSite",
 * "SendFile", ...) with PARAMS (taken over); ARG names the site or queue ID in messages, which
 * start with "PROGRAM: ". On success *ret_reply (may be NULL) gets the reply's parameters
 * (a new reference). Returns the exit status.
 */
int flush_request(const Conf *c, const char *program, const char *method, json_t *params, const char *arg,
                  uint64_t timeout_usec, json_t **ret_reply);
