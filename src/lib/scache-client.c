/* SPDX-License-Identifier: MIT */
/*
 * scache-client.c - tern-scache's client with Postfix's two-tries-then-disable policy (see .h)
 *
 * One connection, made lazily and kept; every request is one varlink call. A transport failure
 * (connect, send, receive, a reply we cannot read) closes the connection; the request is tried
 * again on a new one after retry_delay; a second failure disables caching for good. Error
 * replies (NotFound, InvalidRequest, InvalidParameter) are answers, not failures.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json-util.h"
#include "macro.h"
#include "scache-client.h"
#include "varlink.h"

struct ScacheClient {
        char *path;
        uint64_t timeout_usec, retry_delay_usec;
        VarlinkClient *conn;
        bool disabled;
        bool oneway_saves;
        ScacheWarnFn warn;
        void *warn_userdata;
};

int scache_client_new(const char *socket_path, uint64_t timeout_usec, uint64_t retry_delay_usec,
                      ScacheClient **ret)
{
        ScacheClient *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->path = strdup(socket_path);
        if (!c->path) {
                free(c);
                return -ENOMEM;
        }
        c->timeout_usec = timeout_usec;
        c->retry_delay_usec = retry_delay_usec;
        *ret = c;
        return 0;
}

ScacheClient *scache_client_free(ScacheClient *c)
{
        if (!c)
                return NULL;
        varlink_client_free(c->conn);
        free(c->path);
        free(c);
        return NULL;
}

void scache_client_set_warn(ScacheClient *c, ScacheWarnFn fn, void *userdata)
{
        c->warn = fn;
        c->warn_userdata = userdata;
}

void scache_client_set_oneway_saves(ScacheClient *c, bool b)
{
        c->oneway_saves = b;
}

bool scache_client_disabled(const ScacheClient *c)
{
        return c->disabled;
}

static void warn(ScacheClient *c, const char *format, ...) _printf_(2, 3);
static void warn(ScacheClient *c, const char *format, ...)
{
        char buf[512];
        va_list ap;

        if (!c->warn)
                return;
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        c->warn(buf, c->warn_userdata);
}

/*
 * call - one request with the retry policy; 0 reply (RET NULL: a oneway call, sent), 1 error
 * reply, -errno (-EUNATCH: disabled). With RET NULL the call goes "oneway": no reply is read.
 */
static int call(ScacheClient *c, const char *method, json_t *params, const int *fds, size_t n_fds,
                VarlinkReply *ret)
{
        int r = 0;

        if (c->disabled) {
                json_decref(params);
                return -EUNATCH;
        }
        for (unsigned attempt = 0; attempt < 2; attempt++) {
                if (attempt > 0 && c->retry_delay_usec > 0) {
                        struct timespec ts = {.tv_sec = (time_t) (c->retry_delay_usec / USEC_PER_SEC),
                                              .tv_nsec = (long) (c->retry_delay_usec % USEC_PER_SEC) * 1000};
                        (void) nanosleep(&ts, NULL);
                }
                if (!c->conn) {
                        r = varlink_client_connect(c->path, &c->conn);
                        if (r < 0)
                                goto failed;
                        varlink_client_set_timeout(c->conn, c->timeout_usec);
                }
                if (ret)
                        r = varlink_client_call(c->conn, method, json_incref(params), fds, n_fds, 0, ret);
                else
                        r = varlink_client_send(c->conn, method, json_incref(params), fds, n_fds,
                                                VARLINK_CALL_ONEWAY);
                if (r >= 0) {
                        json_decref(params);
                        return ret ? r : 0;
                }
                c->conn = varlink_client_free(c->conn);
        failed:
                /* Postfix stays quiet about a vanished service on the first try. */
                if (attempt > 0 || (r != -EPIPE && r != -ENOENT && r != -ECONNRESET))
                        warn(c, "problem talking to service %s: %s", c->path, strerror(-r));
        }
        json_decref(params);
        warn(c, "disabling connection caching");
        c->disabled = true;
        return r;
}

/* request - one call; 0 with *ret (a successful reply, to be done with), or -errno: the policy's
 * failures, -ENOENT for NotFound, -EINVAL for any other error reply */
static int request(ScacheClient *c, const char *method, json_t *params, const int *fds, size_t n_fds,
                   VarlinkReply *ret)
{
        int r;

        r = call(c, method, params, fds, n_fds, ret);
        if (r <= 0)
                return r;
        r = streq(ret->error, "io.tern.Scache.NotFound") ? -ENOENT : -EINVAL;
        varlink_reply_done(ret);
        return r;
}

int scache_client_save_endpoint(ScacheClient *c, int64_t ttl, const char *endpoint, const char *props,
                                int fd)
{
        VarlinkReply reply = {};
        int r;

        json_t *params = json_pack("{s:I,s:s,s:s,s:i}", "ttl", (json_int_t) ttl, "endpoint", endpoint,
                                   "properties", props, "fd", 0);

        if (c->oneway_saves)
                return call(c, "io.tern.Scache.SaveEndpoint", params, &fd, 1, NULL);
        r = request(c, "io.tern.Scache.SaveEndpoint", params, &fd, 1, &reply);
        if (r < 0)
                return r;
        varlink_reply_done(&reply);
        return 0;
}

int scache_client_save_destination(ScacheClient *c, int64_t ttl, const char *destination, const char *props,
                                   const char *endpoint)
{
        VarlinkReply reply = {};
        int r;

        json_t *params = json_pack("{s:I,s:s,s:s,s:s}", "ttl", (json_int_t) ttl, "destination", destination,
                                   "properties", props, "endpoint", endpoint);

        if (c->oneway_saves)
                return call(c, "io.tern.Scache.SaveDestination", params, NULL, 0, NULL);
        r = request(c, "io.tern.Scache.SaveDestination", params, NULL, 0, &reply);
        if (r < 0)
                return r;
        varlink_reply_done(&reply);
        return 0;
}

/*
 * find - a Find* call: on a hit, the N string parameters NAMES copied into RETS (malloc'ed) and the
 * descriptor the reply names in *ret_fd (owned by the caller); nothing is written on failure
 */
static int find(ScacheClient *c, const char *method, json_t *params, const char *const *names, char **rets,
                size_t n, int *ret_fd)
{
        char *copies[2] = {};
        VarlinkReply reply = {};
        json_t *idx;
        json_int_t i;
        int r;

        assert(n <= ELEMENTSOF(copies));
        r = request(c, method, params, NULL, 0, &reply);
        if (r < 0)
                return r;
        for (size_t k = 0; r >= 0 && k < n; k++) {
                json_t *v = json_object_get(reply.parameters, names[k]);
                if (!json_is_string(v))
                        r = -EBADMSG;
                else if (!(copies[k] = strdup(json_string_value(v))))
                        r = -ENOMEM;
        }
        idx = json_object_get(reply.parameters, "fd");
        i = json_is_integer(idx) ? json_integer_value(idx) : -1;
        if (r >= 0 && (i < 0 || (size_t) i >= reply.n_fds || reply.fds[i] < 0))
                r = -EBADMSG;
        if (r < 0) {
                for (size_t k = 0; k < n; k++)
                        free(copies[k]);
                varlink_reply_done(&reply);
                return r;
        }
        *ret_fd = TAKE_FD(reply.fds[i]);
        for (size_t k = 0; k < n; k++)
                rets[k] = copies[k];
        varlink_reply_done(&reply);
        return 0;
}

int scache_client_find_endpoint(ScacheClient *c, const char *endpoint, char **ret_props, int *ret_fd)
{
        static const char *const names[] = { "properties" };

        return find(c, "io.tern.Scache.FindEndpoint", json_pack("{s:s}", "endpoint", endpoint), names,
                    ret_props, 1, ret_fd);
}

int scache_client_find_destination(ScacheClient *c, const char *destination, char **ret_dest_props,
                                   char **ret_endp_props, int *ret_fd)
{
        static const char *const names[] = { "destinationProperties", "endpointProperties" };
        char *rets[2];
        int r;

        r = find(c, "io.tern.Scache.FindDestination", json_pack("{s:s}", "destination", destination), names,
                 rets, 2, ret_fd);
        if (r < 0)
                return r;
        *ret_dest_props = rets[0];
        *ret_endp_props = rets[1];
        return 0;
}
