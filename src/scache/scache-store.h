/* SPDX-License-Identifier: MIT */
/*
 * scache-store.h - scache(8)'s data model, pure: destinations, endpoints, sessions, TTLs, FIFO
 *
 * Postfix global/scache_multi.c, exactly (reference §2.4):
 *   - destination label -> list of bindings (endpoint label, destination properties), each with
 *     its own expiry; endpoint label -> list of sessions (descriptor, endpoint properties), each
 *     with its own expiry. Many-to-many: a binding may name an endpoint that has no session.
 *   - save_endpoint appends a session at the tail; find_endpoint takes the head (the OLDEST
 *     session, FIFO), removes it from the store and hands its descriptor to the caller.
 *   - save_destination with the same endpoint label AND properties as an existing binding only
 *     refreshes that binding's expiry (it keeps its place); otherwise it appends a binding.
 *   - find_destination walks the bindings oldest first and returns the first endpoint that still
 *     has a session (the same FIFO pop), with that binding's destination properties. Statistics
 *     count it as one domain hit or miss; its inner endpoint lookup is not an address lookup.
 *   - every item expires on its own; an expired session's descriptor is closed; empty lists go.
 * Times are CLOCK_MONOTONIC microseconds given by the caller ("now"), so tests inject the clock.
 * The store owns every cached descriptor and closes each exactly once (expiry, eviction, free).
 *
 * Unlike Postfix's, the store is bounded: at most max_sessions sessions; saving one more evicts
 * the oldest session of all (its descriptor closed) and says so, so the daemon can warn.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ScacheStore ScacheStore;

typedef struct ScacheStats {
        uint64_t dest_hits, dest_misses;        /* find_destination */
        uint64_t endp_hits, endp_misses;        /* find_endpoint */
        size_t max_dests, max_endps, max_sessions;      /* peaks since the last reset, sampled after saves */
        int64_t start;                          /* CLOCK_REALTIME seconds of the last reset */
} ScacheStats;

int scache_store_new(size_t max_sessions, ScacheStore **ret);
ScacheStore *scache_store_free(ScacheStore *s);       /* closes every cached descriptor */

/*
 * scache_store_save_endpoint - take over FD (also on failure: then it is closed) as a session of
 * ENDPOINT with PROPS, expiring at NOW + TTL. *ret_evicted (may be NULL) is set when the store
 * was full and the oldest session was closed to make room.
 */
int scache_store_save_endpoint(ScacheStore *s, uint64_t now, uint64_t ttl, const char *endpoint,
                               const char *props, int fd, bool *ret_evicted);
/* -ENOENT when ENDPOINT has no session; else the oldest session's props (malloc'ed) and fd (owned by the caller) */
int scache_store_find_endpoint(ScacheStore *s, uint64_t now, const char *endpoint, char **ret_props, int *ret_fd);
int scache_store_save_destination(ScacheStore *s, uint64_t now, uint64_t ttl, const char *destination,
                                  const char *dest_props, const char *endpoint);
/* -ENOENT on a miss; else the binding's props, the endpoint session's props and its fd */
int scache_store_find_destination(ScacheStore *s, uint64_t now, const char *destination, char **ret_dest_props,
                                  char **ret_endp_props, int *ret_fd);

/* scache_store_expire - drop what expired at NOW (closing descriptors); returns how many items went */
size_t scache_store_expire(ScacheStore *s, uint64_t now);
/* the earliest expiry of any item, UINT64_MAX when the store is empty */
uint64_t scache_store_next_expiry(const ScacheStore *s);

size_t scache_store_n_sessions(const ScacheStore *s);
size_t scache_store_n_endpoints(const ScacheStore *s);
size_t scache_store_n_destinations(const ScacheStore *s);

void scache_store_stats(const ScacheStore *s, ScacheStats *ret);
/* start a new statistics interval at REALTIME_NOW (seconds) */
void scache_store_stats_reset(ScacheStore *s, int64_t realtime_now);

/*
 * scache_stats_format - Postfix's statistics lines (scache_status_dump), each only when its
 * counters are non-zero:
 *   statistics: start interval %.15s          (ctime(start) + 4, e.g. "Mar  3 10:15:04")
 *   statistics: domain lookup hits=%d miss=%d success=%d%%
 *   statistics: address lookup hits=%d miss=%d success=%d%%
 *   statistics: max simultaneous domains=%d addresses=%d connection=%d
 * Writes up to 4 NUL-terminated lines into LINES; returns how many. The time is formatted in
 * local time as ctime() does.
 */
#define SCACHE_STATS_LINE_MAX 160
size_t scache_stats_format(const ScacheStats *st, char lines[4][SCACHE_STATS_LINE_MAX]);
