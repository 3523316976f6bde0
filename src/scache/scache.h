/* SPDX-License-Identifier: MIT */
/* scache.h - tern-scache's state, shared by scache.c (life, timers, logging) and scache-varlink.c */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "event.h"
#include "scache-store.h"

/* Labels: Postfix's endpoint and destination labels are a few fields joined by newlines, with
 * base64 for odd ones; 1 KiB is several times the longest. */
#define SCACHE_LABEL_MAX 1024U
/* Properties: name=value lines, a serialized TLS context at most: 64 KiB. */
#define SCACHE_PROPS_MAX (64U * 1024U)
/* Sessions one process caches: a relay keeps a few per busy destination for 2 s. Above this
 * (or above what RLIMIT_NOFILE leaves after SCACHE_FD_RESERVE), the oldest session goes. */
#define SCACHE_SESSIONS_MAX 50000U
/* Descriptors kept free for client connections, the journal and the event loop. */
#define SCACHE_FD_RESERVE 1024U

typedef struct Scache {
        Service *service;
        sd_event *event;
        ScacheStore *store;
        uint64_t ttl_limit;             /* usec: connection_cache_ttl_limit */
        uint64_t status_interval;       /* usec: connection_cache_status_update_time */
        size_t max_sessions;
        sd_event_source *expire_timer;
        sd_event_source *status_timer;
        uint64_t evicted;               /* sessions closed to make room, this interval */
} Scache;

/* scache_changed - after the store changed: re-arm the expiry timer; warn once per interval when full */
void scache_changed(Scache *c, bool evicted);
/* scache_log_statistics - Postfix's statistics lines, then a new interval */
void scache_log_statistics(Scache *c);
uint64_t scache_now(Scache *c);         /* CLOCK_MONOTONIC usec of this loop iteration */
