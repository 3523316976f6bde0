/* SPDX-License-Identifier: MIT */
/* flush-client.c - the delivery path's side of fast flush (see flush-client.h) */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "domain-list.h"
#include "flush-client.h"
#include "flush-site.h"
#include "log.h"
#include "macro.h"
#include "varlink.h"

struct FlushClient {
        sd_event *event;
        DomainList domains;             /* fast_flush_domains */
        char *path;                     /* runtime_directory/flush */
        VarlinkClient *client;          /* NULL: not connected */
        sd_event_source *idle_timer;
        uint64_t last_add_usec;
        uint64_t stalled_since_usec;    /* output still pending at the last idle check, 0: none */
        uint64_t warned_usec;           /* last "flush service failure" */
        unsigned long long suppressed;  /* failures since that warning */
};

FlushClient *flush_client_free(FlushClient *f)
{
        if (!f)
                return NULL;
        f->idle_timer = sd_event_source_disable_unref(f->idle_timer);
        f->client = varlink_client_free(f->client);
        domain_list_done(&f->domains);
        free(f->path);
        sd_event_unref(f->event);
        free(f);
        return NULL;
}

static void flush_client_freep(FlushClient **f)
{
        flush_client_free(*f);
}

static uint64_t now_usec(const FlushClient *f)
{
        uint64_t t = 0;

        (void) sd_event_now(f->event, CLOCK_MONOTONIC, &t);
        return t;
}

static void failure(FlushClient *f, const char *queue_id, int error);

/* on_idle - close a connection that carried no add for FLUSH_CLIENT_IDLE_USEC, once its output
 * is gone (a oneway call still in our buffer would be lost) */
static int on_idle(sd_event_source *s, uint64_t usec, void *userdata)
{
        FlushClient *f = userdata;

        /* a tern-flush that accepts but never reads (hung, or its unit cannot start while
         * systemd holds the socket) would make our output grow without bound: give up on it */
        if (f->client && !varlink_client_idle(f->client)) {
                if (f->stalled_since_usec == 0)
                        f->stalled_since_usec = usec;
                else if (usec >= f->stalled_since_usec + FLUSH_CLIENT_STALL_USEC) {
                        failure(f, "-", -ETIMEDOUT);
                        f->client = varlink_client_free(f->client);
                        f->stalled_since_usec = 0;
                        return sd_event_source_set_enabled(s, SD_EVENT_OFF);
                }
        } else
                f->stalled_since_usec = 0;
        if (f->client && (varlink_client_failed(f->client) ||
                          (usec >= f->last_add_usec + FLUSH_CLIENT_IDLE_USEC && varlink_client_idle(f->client)))) {
                f->client = varlink_client_free(f->client);
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        if (!f->client)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        (void) sd_event_source_set_time(s, MAX(usec + 100000, f->last_add_usec + FLUSH_CLIENT_IDLE_USEC));
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int flush_client_new(const Conf *c, sd_event *event, FlushClient **ret)
{
        _cleanup_(flush_client_freep) FlushClient *f = NULL;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->event = sd_event_ref(event);
        r = flush_domains_from_conf(c, &f->domains);
        if (r < 0)
                return r;
        if (asprintf(&f->path, "%s/flush", conf_get_string(c, "runtime_directory")) < 0) {
                f->path = NULL;
                return -ENOMEM;
        }
        r = sd_event_add_time(event, &f->idle_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_idle, f);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(f->idle_timer, SD_EVENT_OFF);
        *ret = TAKE_PTR(f);
        return 0;
}

/* eligible - SITE's canonical name in CANONICAL, and whether fast_flush_domains lists it */
static bool eligible(const FlushClient *f, const char *site, char canonical[static FLUSH_SITE_MAX])
{
        if (domain_list_empty(&f->domains) || flush_site_canonical(site, canonical) < 0)
                return false;
        return domain_list_match(&f->domains, canonical);
}

bool flush_client_eligible(const FlushClient *f, const char *site)
{
        char canonical[FLUSH_SITE_MAX];

        return eligible(f, site, canonical);
}

/* failure - Postfix's "%s: flush service failure", at most once per FLUSH_CLIENT_WARN_USEC */
static void failure(FlushClient *f, const char *queue_id, int error)
{
        uint64_t now = now_usec(f);

        if (f->warned_usec != 0 && now < f->warned_usec + FLUSH_CLIENT_WARN_USEC) {
                f->suppressed++;
                return;
        }
        if (f->suppressed > 0)
                log_warning("%s: flush service failure: %s: %s (and %llu more since the last warning)",
                            queue_id, f->path, strerror(-error), f->suppressed);
        else
                log_warning("%s: flush service failure: %s: %s", queue_id, f->path, strerror(-error));
        f->warned_usec = now;
        f->suppressed = 0;
}

void flush_client_add(FlushClient *f, const char *site, const char *queue_id)
{
        char canonical[FLUSH_SITE_MAX];
        int r = 0;

        if (!f || !eligible(f, site, canonical))
                return;
        /* a connection that broke is replaced once; what was sent on it before is gone */
        for (int attempt = 0; attempt < 2; attempt++) {
                if (f->client && varlink_client_failed(f->client))
                        f->client = varlink_client_free(f->client);
                if (!f->client) {
                        r = varlink_client_connect_event(f->path, f->event, SD_EVENT_PRIORITY_NORMAL,
                                                         &f->client);
                        if (r < 0)
                                break;
                }
                r = varlink_client_invoke(f->client, "io.tern.Flush.Add",
                                          json_pack("{s:s,s:s}", "site", canonical, "queueId", queue_id), NULL, 0,
                                          VARLINK_CALL_ONEWAY, NULL, NULL);
                if (r != -ENOTCONN)
                        break;
        }
        if (r < 0) {
                failure(f, queue_id, r);
                return;
        }
        f->last_add_usec = now_usec(f);
        if (sd_event_source_get_enabled(f->idle_timer, NULL) == 0) {
                (void) sd_event_source_set_time(f->idle_timer, f->last_add_usec + FLUSH_CLIENT_IDLE_USEC);
                (void) sd_event_source_set_enabled(f->idle_timer, SD_EVENT_ONESHOT);
        }
}
