/* SPDX-License-Identifier: MIT */
/*
 * scache-varlink.c - io.tern.Scache: requests in, descriptors in and out, through scache-store
 *
 * Each handler decodes its parameters (dispatch table), checks what the store cannot (TTL > 0,
 * label and property lengths, exactly one descriptor and that it is a connected socket), calls one
 * store function, and answers. TTLs are seconds and are capped at connection_cache_ttl_limit, as scache
 * does. A find hands the descriptor out with the reply (SCM_RIGHTS) and the store forgets it. The
 * one exchange Postfix needs extra round trips for (a descriptor after the request) does not
 * exist here: the descriptor travels with the call that refers to it.
 */
#include <sys/socket.h>

#include "json-util.h"
#include "log.h"
#include "scache-varlink.h"
#include "scache.h"
#include "varlink-idl.h"

/* check_label - a label or properties string within LIMIT bytes (NUL cannot occur: dispatch refuses it) */
static bool check_len(const char *s, size_t limit)
{
        return strlen(s) <= limit;
}

static int invalid_request(VarlinkCall *call, const char *parameter)
{
        return varlink_call_error(call, "io.tern.Scache.InvalidRequest",
                                  json_pack("{s:s}", "parameter", parameter));
}

/* ttl_usec - seconds from the client (> 0), capped at connection_cache_ttl_limit; compared in
 * seconds first, since a huge ttl times USEC_PER_SEC would wrap around (to 0, even) */
static uint64_t ttl_usec(const Scache *c, int64_t ttl)
{
        if ((uint64_t) ttl >= c->ttl_limit / USEC_PER_SEC)
                return c->ttl_limit;
        return (uint64_t) ttl * USEC_PER_SEC;
}

/* connected_socket - is FD a socket with a peer? (a listening or unconnected socket is no session;
 * getpeername() fails with ENOTSOCK on anything that is not a socket, so no fstat() is needed) */
static bool connected_socket(int fd)
{
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);

        return getpeername(fd, (struct sockaddr *) &sa, &len) >= 0;
}

/* reply_session - the answer to a find that hit: the store changed, FD (taken over) goes with
 * REPLY (taken over) as its "fd" parameter */
static int reply_session(Scache *c, VarlinkCall *call, int fd, json_t *reply)
{
        int idx;

        scache_changed(c, false);
        idx = varlink_call_push_fd(call, fd);
        if (idx < 0 || !reply || json_object_set_new(reply, "fd", json_integer(idx)) < 0) {
                json_decref(reply);
                return idx < 0 ? idx : -ENOMEM;
        }
        return varlink_call_reply(call, reply);
}

static int method_save_endpoint(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                int64_t ttl;
                const char *endpoint, *properties;
                int fd;
        } p = { .fd = -EBADF };
        static const VarlinkField fields[] = {
                {"ttl", VARLINK_FIELD_INT, offsetof(__typeof__(p), ttl), VARLINK_FIELD_MANDATORY},
                {"endpoint", VARLINK_FIELD_STRING, offsetof(__typeof__(p), endpoint),
                 VARLINK_FIELD_MANDATORY},
                {"properties", VARLINK_FIELD_STRING, offsetof(__typeof__(p), properties),
                 VARLINK_FIELD_MANDATORY},
                {"fd", VARLINK_FIELD_FD, offsetof(__typeof__(p), fd), VARLINK_FIELD_MANDATORY},
                {},
        };
        Scache *c = userdata;
        bool evicted = false;
        int r, fd;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (p.ttl <= 0)
                return invalid_request(call, "ttl");
        if (!check_len(p.endpoint, SCACHE_LABEL_MAX))
                return invalid_request(call, "endpoint");
        if (!check_len(p.properties, SCACHE_PROPS_MAX))
                return invalid_request(call, "properties");
        /* Exactly one descriptor, and a connected socket: anything else would be cached as a connection. */
        if (varlink_call_n_fds(call) != 1 || !connected_socket(p.fd))
                return invalid_request(call, "fd");

        fd = varlink_call_take_fd(call, 0);
        if (fd < 0)
                return invalid_request(call, "fd");
        r = scache_store_save_endpoint(c->store, scache_now(c), ttl_usec(c, p.ttl), p.endpoint, p.properties,
                                       fd, &evicted);
        if (r < 0)
                return r;
        scache_changed(c, evicted);
        return varlink_call_reply(call, NULL);
}

static int method_find_endpoint(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                const char *endpoint;
        } p = {};
        static const VarlinkField fields[] = {
                { "endpoint", VARLINK_FIELD_STRING, 0, VARLINK_FIELD_MANDATORY },
                {},
        };
        Scache *c = userdata;
        _cleanup_(freep) char *props = NULL;
        int r, fd;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!check_len(p.endpoint, SCACHE_LABEL_MAX))
                return invalid_request(call, "endpoint");
        r = scache_store_find_endpoint(c->store, scache_now(c), p.endpoint, &props, &fd);
        if (r == -ENOENT)
                return varlink_call_error(call, "io.tern.Scache.NotFound", NULL);
        if (r < 0)
                return r;
        return reply_session(c, call, fd, json_pack("{s:s}", "properties", props));
}

static int method_save_destination(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                int64_t ttl;
                const char *destination, *properties, *endpoint;
        } p = {};
        static const VarlinkField fields[] = {
                {"ttl", VARLINK_FIELD_INT, offsetof(__typeof__(p), ttl), VARLINK_FIELD_MANDATORY},
                {"destination", VARLINK_FIELD_STRING, offsetof(__typeof__(p), destination),
                 VARLINK_FIELD_MANDATORY},
                {"properties", VARLINK_FIELD_STRING, offsetof(__typeof__(p), properties),
                 VARLINK_FIELD_MANDATORY},
                {"endpoint", VARLINK_FIELD_STRING, offsetof(__typeof__(p), endpoint),
                 VARLINK_FIELD_MANDATORY},
                {},
        };
        Scache *c = userdata;
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (p.ttl <= 0)
                return invalid_request(call, "ttl");
        if (!check_len(p.destination, SCACHE_LABEL_MAX))
                return invalid_request(call, "destination");
        if (!check_len(p.endpoint, SCACHE_LABEL_MAX))
                return invalid_request(call, "endpoint");
        if (!check_len(p.properties, SCACHE_PROPS_MAX))
                return invalid_request(call, "properties");
        r = scache_store_save_destination(c->store, scache_now(c), ttl_usec(c, p.ttl), p.destination,
                                          p.properties, p.endpoint);
        if (r < 0)
                return r;
        scache_changed(c, false);
        return varlink_call_reply(call, NULL);
}

static int method_find_destination(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                const char *destination;
        } p = {};
        static const VarlinkField fields[] = {
                { "destination", VARLINK_FIELD_STRING, 0, VARLINK_FIELD_MANDATORY },
                {},
        };
        Scache *c = userdata;
        _cleanup_(freep) char *dest_props = NULL, *endp_props = NULL;
        int r, fd;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!check_len(p.destination, SCACHE_LABEL_MAX))
                return invalid_request(call, "destination");
        r = scache_store_find_destination(c->store, scache_now(c), p.destination, &dest_props, &endp_props,
                                          &fd);
        if (r == -ENOENT)
                return varlink_call_error(call, "io.tern.Scache.NotFound", NULL);
        if (r < 0)
                return r;
        return reply_session(c, call, fd,
                             json_pack("{s:s,s:s}", "destinationProperties", dest_props,
                                       "endpointProperties", endp_props));
}

static int method_statistics(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        static const VarlinkField fields[] = { {} };
        char lines[4][SCACHE_STATS_LINE_MAX];
        Scache *c = userdata;
        ScacheStats st;
        json_t *list;
        size_t n;
        int r;

        r = varlink_dispatch(call, parameters, fields, NULL);
        if (r < 0)
                return r;
        scache_store_stats(c->store, &st);
        n = scache_stats_format(&st, lines);
        list = json_array();
        for (size_t i = 0; list && i < n; i++)
                json_array_append_new(list, json_string(lines[i]));
        return varlink_call_reply(
                call, json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "lines",
                                list ? list : json_array(), "start", (json_int_t) st.start, "domainHits",
                                (json_int_t) st.dest_hits, "domainMisses", (json_int_t) st.dest_misses,
                                "addressHits", (json_int_t) st.endp_hits, "addressMisses",
                                (json_int_t) st.endp_misses, "maxDomains", (json_int_t) st.max_dests,
                                "maxAddresses", (json_int_t) st.max_endps, "maxConnections",
                                (json_int_t) st.max_sessions, "sessions",
                                (json_int_t) scache_store_n_sessions(c->store), "endpoints",
                                (json_int_t) scache_store_n_endpoints(c->store), "destinations",
                                (json_int_t) scache_store_n_destinations(c->store), "evicted",
                                (json_int_t) c->evicted));
}

const VarlinkInterface scache_interface = {
        .name = "io.tern.Scache",
        .description = varlink_idl_io_tern_Scache,
        .methods = (const VarlinkMethod[]){
                { "SaveEndpoint", method_save_endpoint, VARLINK_METHOD_FDS },
                { "FindEndpoint", method_find_endpoint, 0 },
                { "SaveDestination", method_save_destination, 0 },
                { "FindDestination", method_find_destination, 0 },
                { "Statistics", method_statistics, 0 },
                {},
        },
};
