/* SPDX-License-Identifier: MIT */
/*
 * smtp-cache.c - SMTP sessions shared through tern-scache, as Postfix's smtp_reuse.c and
 * smtp_session.c do it
 *
 * After a delivery a good session is saved under its endpoint label (the descriptor travels to
 * tern-scache) and, for the first good session of a request, the request's destination label is
 * bound to that endpoint. The next delivery, in any tern-smtp process, asks for the destination
 * first and then for each server address's endpoint, and probes what it gets with RSET.
 *
 * Properties (opaque to tern-scache) are Postfix's "name=value\n" lines ending with an empty
 * line. Destination: destination, host_name, host_addr, host_port. Endpoint: reuse_count,
 * endpoint_features, expire_time, and size_limit (the SIZE the server announced, which a reused
 * session cannot ask again).
 *
 * Limits: a session is saved for smtp_connection_cache_time_limit; it is not saved once
 * reused smtp_connection_reuse_count_limit times (0: no limit) or past its start plus
 * smtp_connection_reuse_time_limit. When tern-scache cannot be reached, the client tries twice
 * and then turns caching off for the process (Postfix's warnings are logged).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "smtp.h"

/* ---- properties --------------------------------------------------------------------------- */

/* prop_get - the value of NAME in PROPS ("name=value\n" lines), copied into BUF; false if absent */
static bool prop_get(const char *props, const char *name, char *buf, size_t size)
{
        size_t nl = strlen(name);

        for (const char *p = props; p && *p && *p != '\n';) {
                const char *end = strchr(p, '\n');
                size_t len = end ? (size_t) (end - p) : strlen(p);

                if (len > nl && p[nl] == '=' && strneq(p, name, nl)) {
                        size_t vl = MIN(len - nl - 1, size - 1);

                        memcpy(buf, p + nl + 1, vl);
                        buf[vl] = '\0';
                        return true;
                }
                p = end ? end + 1 : NULL;
        }
        return false;
}

static bool prop_get_int(const char *props, const char *name, int64_t *ret)
{
        char buf[32], *end;
        long long v;

        if (!prop_get(props, name, buf, sizeof(buf)) || !*buf)
                return false;
        errno = 0;
        v = strtoll(buf, &end, 10);
        if (errno || *end)
                return false;
        *ret = v;
        return true;
}

/* ---- the client --------------------------------------------------------------------------- */

static void warn(const char *text, void *userdata)
{
        log_warning("%s", text);
}

static ScacheClient *client(SmtpCache *c)
{
        if (!c->client) {
                if (scache_client_new(c->cfg->scache_path, c->cfg->cache_protocol_timeout, USEC_PER_SEC,
                                      &c->client) < 0)
                        return NULL;
                scache_client_set_warn(c->client, warn, NULL);
                /* a save costs no round trip: nothing waits for tern-scache's answer */
                scache_client_set_oneway_saves(c->client, true);
        }
        return c->client;
}

/*
 * adopt - a session from a cached descriptor and its properties, probed with RSET; NULL when the
 * properties are not ours or the probe fails (the descriptor is closed then)
 */
static SmtpSession *adopt(SmtpCache *c, int fd, const char *dest_props, const char *endp_props)
{
        char host[SMTP_DNS_NAME_MAX], addr[INET6_ADDRSTRLEN];
        int64_t port = 0, reuse = 0, features = 0, expire = 0, size_limit = 0;
        SmtpSession *s = NULL;

        if (!prop_get_int(endp_props, "reuse_count", &reuse) ||
            !prop_get_int(endp_props, "expire_time", &expire) ||
            !prop_get_int(endp_props, "endpoint_features", &features)) {
                safe_close(fd);
                return NULL;
        }
        (void) prop_get_int(endp_props, "size_limit", &size_limit);
        /* FindEndpoint gives no destination properties: the host and address come with the
         * endpoint's own (Postfix keeps them in the session it reactivates). */
        if (!prop_get(dest_props ? dest_props : endp_props, "host_name", host, sizeof(host)) ||
            !prop_get(dest_props ? dest_props : endp_props, "host_addr", addr, sizeof(addr)) ||
            !prop_get_int(dest_props ? dest_props : endp_props, "host_port", &port) || port <= 0 ||
            port > 65535) {
                safe_close(fd);
                return NULL;
        }
        if (smtp_session_adopt(fd, host, addr, (uint16_t) port, &s) < 0)
                return NULL;
        s->reuse_count = (int) MAX(reuse, 0);
        s->expire_time = expire;
        s->features =
                (SmtpFeatures){.flags = (unsigned) features, .size_limit = (uint64_t) MAX(size_limit, 0)};
        if (smtp_session_rset(s, c->cfg) < 0) {
                log_debug("cached session with %s failed its RSET probe", s->relay);
                return smtp_session_free(s);
        }
        return s;
}

SmtpSession *smtp_cache_find_dest(SmtpCache *c, const char *dest_label)
{
        ScacheClient *sc = client(c);
        char *dest_props = NULL, *endp_props = NULL;
        SmtpSession *s;
        int fd = -EBADF;

        if (!sc || scache_client_find_destination(sc, dest_label, &dest_props, &endp_props, &fd) < 0)
                return NULL;
        s = adopt(c, fd, dest_props, endp_props);
        free(dest_props);
        free(endp_props);
        return s;
}

SmtpSession *smtp_cache_find_endp(SmtpCache *c, const char *endp_label)
{
        ScacheClient *sc = client(c);
        char *endp_props = NULL;
        SmtpSession *s;
        int fd = -EBADF;

        if (!sc || scache_client_find_endpoint(sc, endp_label, &endp_props, &fd) < 0)
                return NULL;
        s = adopt(c, fd, NULL, endp_props);
        free(endp_props);
        return s;
}

bool smtp_cache_save(SmtpCache *c, SmtpSession *s, const char *dest_label, const char *destination)
{
        _cleanup_(freep) char *endp_label = NULL, *endp_props = NULL, *dest_props = NULL;
        ScacheClient *sc;
        int r;

        if (s->broken || !s->port || time(NULL) >= s->expire_time ||
            (c->cfg->reuse_count_limit > 0 && s->reuse_count >= c->cfg->reuse_count_limit))
                goto quit;
        sc = client(c);
        if (!sc || scache_client_disabled(sc))
                goto quit;
        if (smtp_cache_endp_label(c->cfg->service, s->addr, s->port, &endp_label) < 0)
                goto quit;
        /* The endpoint's own properties carry host and address too: FindEndpoint has no others. */
        if (asprintf(&endp_props,
                     "reuse_count=%d\nendpoint_features=%u\nexpire_time=%" PRId64 "\nsize_limit=%" PRIu64
                     "\nhost_name=%s\nhost_addr=%s\nhost_port=%u\n\n",
                     s->reuse_count + 1, s->features.flags, s->expire_time, s->features.size_limit, s->host,
                     s->addr, s->port) < 0) {
                endp_props = NULL;
                goto quit;
        }
        r = scache_client_save_endpoint(sc, c->cfg->cache_time_limit, endp_label, endp_props, s->fd);
        if (r < 0)
                goto quit;
        if (dest_label) {
                if (asprintf(&dest_props, "destination=%s\nhost_name=%s\nhost_addr=%s\nhost_port=%u\n\n",
                             destination, s->host, s->addr, s->port) < 0)
                        dest_props = NULL;
                else
                        (void) scache_client_save_destination(sc, c->cfg->cache_time_limit, dest_label,
                                                              dest_props, endp_label);
        }
        /* scache has its own copy of the descriptor; ours is closed without QUIT */
        smtp_session_free(s);
        return true;
quit:
        smtp_session_quit(s);
        smtp_session_free(s);
        return false;
}

void smtp_cache_done(SmtpCache *c)
{
        c->client = scache_client_free(c->client);
}
