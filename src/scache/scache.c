/* SPDX-License-Identifier: MIT */
/*
 * scache.c - tern-scache: the shared connection cache (Postfix's scache(8))
 *
 * Socket-activated on runtime_directory/scache (io.tern.Scache). Delivery agents save open SMTP
 * sessions here as descriptors, bound to endpoint and destination labels; another delivery agent
 * process finds and reuses them. The data model is scache-store.c's; this file runs the process:
 * the expiry timer (re-armed at the store's next expiry after every change), the statistics
 * every connection_cache_status_update_time and at exit (Postfix's exact lines), and the bound
 * on what one process holds (SCACHE_SESSIONS_MAX and RLIMIT_NOFILE less SCACHE_FD_RESERVE).
 * As scache does, it exits after max_idle with no client connected: cached descriptors are then
 * closed without a QUIT (the peers see the connection end). max_use does not apply (Postfix sets
 * it to 0 for scache). See man/tern-scache.8.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "log.h"
#include "scache-varlink.h"
#include "scache.h"

static Scache scache;

uint64_t scache_now(Scache *c)
{
        uint64_t now;

        (void) sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        return now;
}

static int on_expire(sd_event_source *source, uint64_t usec, void *userdata)
{
        Scache *c = userdata;

        (void) scache_store_expire(c->store, scache_now(c));
        if (scache_store_next_expiry(c->store) == UINT64_MAX)
                (void) sd_event_source_set_enabled(c->expire_timer, SD_EVENT_OFF);
        else
                scache_changed(c, false);
        return 0;
}

void scache_changed(Scache *c, bool evicted)
{
        uint64_t next = scache_store_next_expiry(c->store);

        /* An emptied store leaves the timer as it is: disarming and re-arming the timerfd around
         * every save+find pair would cost two system calls a pair; a timer that fires on an empty
         * store just turns itself off (on_expire). */
        if (next != UINT64_MAX) {
                (void) sd_event_source_set_time(c->expire_timer, next);
                (void) sd_event_source_set_enabled(c->expire_timer, SD_EVENT_ONESHOT);
        }
        if (evicted) {
                if (c->evicted == 0)
                        log_warning("connection cache full (%zu sessions): closing the oldest session to "
                                    "make room; "
                                    "this is said once per connection_cache_status_update_time",
                                    c->max_sessions);
                c->evicted++;
        }
}

void scache_log_statistics(Scache *c)
{
        char lines[4][SCACHE_STATS_LINE_MAX];
        ScacheStats st;
        size_t n;

        scache_store_stats(c->store, &st);
        n = scache_stats_format(&st, lines);
        for (size_t i = 0; i < n; i++)
                log_info("%s", lines[i]);
        scache_store_stats_reset(c->store, (int64_t) time(NULL));
        c->evicted = 0;
}

static int on_status(sd_event_source *source, uint64_t usec, void *userdata)
{
        Scache *c = userdata;

        scache_log_statistics(c);
        (void) sd_event_source_set_time(source, usec + c->status_interval);
        return 0;
}

static int scache_setup(Service *s, void *userdata)
{
        Scache *c = userdata;
        const Conf *conf = service_conf(s);
        uint64_t nofile;
        int r;

        c->service = s;
        c->event = service_event(s);
        c->ttl_limit = (uint64_t) conf_get_time(conf, "connection_cache_ttl_limit") * USEC_PER_SEC;
        c->status_interval =
                (uint64_t) conf_get_time(conf, "connection_cache_status_update_time") * USEC_PER_SEC;

        nofile = service_raise_nofile();
        c->max_sessions = SCACHE_SESSIONS_MAX;
        if (nofile < (uint64_t) SCACHE_FD_RESERVE * 2)
                c->max_sessions = MIN(c->max_sessions, (size_t) (nofile / 2));
        else
                c->max_sessions = MIN(c->max_sessions, (size_t) (nofile - SCACHE_FD_RESERVE));

        r = scache_store_new(c->max_sessions, &c->store);
        if (r < 0)
                return r;
        scache_store_stats_reset(c->store, (int64_t) time(NULL));
        r = sd_event_add_time(c->event, &c->expire_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_expire, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(c->expire_timer, SD_EVENT_OFF);
        if (c->status_interval > 0) {
                r = sd_event_add_time(c->event, &c->status_timer, CLOCK_MONOTONIC,
                                      scache_now(c) + c->status_interval, 0, on_status, c);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_enabled(c->status_timer, SD_EVENT_ON);
        }
        log_debug("caching at most %zu sessions (RLIMIT_NOFILE %llu)", c->max_sessions,
                  (unsigned long long) nofile);
        return varlink_server_add_interface(service_varlink(s), &scache_interface, c);
}

static void scache_shutdown(Service *s, void *userdata)
{
        Scache *c = userdata;

        /* Postfix's scache logs its statistics when it exits. */
        if (c->store)
                scache_log_statistics(c);
}

int main(int argc, char **argv)
{
        static const ServiceSpec spec = {
                .program = "scache",
                .description = "Share open SMTP connections between delivery agents (io.tern.Scache).",
                .no_max_use = true,
                .setup = scache_setup,
                .shutdown = scache_shutdown,
                .userdata = &scache,
        };
        int r;

        r = service_main(&spec, argc, argv);
        scache.expire_timer = sd_event_source_disable_unref(scache.expire_timer);
        scache.status_timer = sd_event_source_disable_unref(scache.status_timer);
        scache.store = scache_store_free(scache.store);        /* closes what is still cached */
        return r;
}
