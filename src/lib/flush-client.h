/* SPDX-License-Identifier: MIT */
/*
 * flush-client.h - the delivery path's side of fast flush (Postfix's flush_add() in defer.c)
 *
 * Whoever records a deferral (tern-qmgr: it writes every defer log, for its own deferrals and
 * for every delivery agent's) calls flush_client_add(recipient domain, queue ID). The client
 * checks eligibility itself first (fast_flush_domains, as flush_clnt.c does), so that sites
 * without a logfile cost nothing, and sends io.tern.Flush.Add as a oneway call on a connection
 * it keeps while adds keep coming (closed after FLUSH_CLIENT_IDLE_USEC without one, so that
 * tern-flush can exit after max_idle). It never waits: a deferral is never held up by
 * tern-flush. When tern-flush cannot be reached the add is lost (the message stays deferred and
 * is found by the periodic deferred scan; only its fast flush entry is missing) and
 * "flush service failure" is logged, once per FLUSH_CLIENT_WARN_USEC; so is a tern-flush that
 * leaves our output unread for FLUSH_CLIENT_STALL_USEC (the connection is dropped).
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "conf.h"

#define FLUSH_CLIENT_IDLE_USEC (2ULL * 1000000ULL)
#define FLUSH_CLIENT_WARN_USEC (60ULL * 1000000ULL)
/* output that tern-flush has not taken for this long: the connection is given up */
#define FLUSH_CLIENT_STALL_USEC (10ULL * 1000000ULL)

typedef struct FlushClient FlushClient;

/* flush_client_new - fast_flush_domains and runtime_directory/flush from C, on EVENT */
int flush_client_new(const Conf *c, sd_event *event, FlushClient **ret);
FlushClient *flush_client_free(FlushClient *f);
/* flush_client_eligible - does SITE (any form flush_site_canonical() takes) have a logfile? */
bool flush_client_eligible(const FlushClient *f, const char *site);
/* flush_client_add - Add(SITE, QUEUE_ID) if SITE is eligible; never blocks, never fails */
void flush_client_add(FlushClient *f, const char *site, const char *queue_id);
