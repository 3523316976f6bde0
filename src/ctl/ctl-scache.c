/* SPDX-License-Identifier: MIT */
/*
 * ctl-scache.c - `ternctl scache`: the operator's view of tern-scache
 *
 *   scache stats              Postfix's "statistics:" lines of the current interval (--json: all
 *                             figures, sessions cached now included)
 *   scache find-dest LABEL    take the oldest session bound to a destination label
 *   scache find-endp LABEL    take the oldest session of an endpoint label
 *
 * A find takes the session out of the cache, as a delivery agent's find does: ternctl prints its
 * properties and the address of the peer it is connected to, then closes it (the peer sees the
 * connection end, as after an expiry). Labels are written as delivery agents make them; "\n" in
 * an argument stands for the newline that separates a label's fields.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "json-util.h"
#include "macro.h"
#include "ternctl.h"

/* unescape_label - "\n" -> newline, "\\" -> backslash */
static char *unescape_label(const char *s)
{
        char *out = malloc(strlen(s) + 1), *o = out;

        if (!out)
                return NULL;
        for (; *s; s++) {
                if (s[0] == '\\' && s[1] == 'n') {
                        *o++ = '\n';
                        s++;
                } else if (s[0] == '\\' && s[1] == '\\') {
                        *o++ = '\\';
                        s++;
                } else
                        *o++ = *s;
        }
        *o = '\0';
        return out;
}

/* peer_name - "127.0.0.1:25", "[::1]:25", "unix:/path" or "?" */
static void peer_name(int fd, char *buf, size_t size)
{
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[INET6_ADDRSTRLEN];

        snprintf(buf, size, "?");
        if (getpeername(fd, (struct sockaddr *) &ss, &sl) < 0)
                return;
        if (ss.ss_family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
        } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
        } else if (ss.ss_family == AF_UNIX)
                snprintf(buf, size, "unix:%s", ((struct sockaddr_un *) &ss)->sun_path);
}

static int scache_find(CtlOptions *o, VarlinkClient *client, bool dest, const char *label_arg)
{
        _cleanup_(freep) char *label = unescape_label(label_arg);
        VarlinkReply reply;
        json_t *idx;
        char peer[160];
        int r, fd = -EBADF;

        if (!label)
                return EX_OSERR_;
        r = ctl_call(o, client, dest ? "io.tern.Scache.FindDestination" : "io.tern.Scache.FindEndpoint",
                     json_pack("{s:s}", dest ? "destination" : "endpoint", label), &reply);
        if (r > 0)
                return r;
        idx = json_object_get(reply.parameters, "fd");
        if (json_is_integer(idx) && json_integer_value(idx) >= 0 &&
            (size_t) json_integer_value(idx) < reply.n_fds)
                fd = reply.fds[json_integer_value(idx)];
        peer_name(fd, peer, sizeof(peer));
        if (o->json) {
                json_object_set_new(reply.parameters, "peer", json_string(peer));
                json_object_del(reply.parameters, "fd");
                ctl_print_json(o, reply.parameters);
        } else {
                json_t *dp = json_object_get(reply.parameters, "destinationProperties");
                json_t *ep = json_object_get(reply.parameters, dest ? "endpointProperties" : "properties");
                printf("peer: %s\n", peer);
                if (json_is_string(dp))
                        printf("destination properties:\n%s\n", json_string_value(dp));
                if (json_is_string(ep))
                        printf("endpoint properties:\n%s\n", json_string_value(ep));
                printf("(the session was taken out of the cache and is now closed)\n");
        }
        varlink_reply_done(&reply);     /* closes the descriptor */
        return 0;
}

int ctl_verb_scache(CtlOptions *o, int argc, char **argv)
{
        _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;
        VarlinkReply reply;
        json_t *lines, *line;
        size_t i;
        int r;

        if (argc < 2 || !((streq(argv[1], "stats") && argc == 2) ||
                          ((streq(argv[1], "find-dest") || streq(argv[1], "find-endp")) && argc == 3))) {
                fprintf(stderr, "Usage: ternctl scache stats | find-dest LABEL | find-endp LABEL\n");
                return EX_USAGE_;
        }
        r = ctl_connect(o, "scache", &client);
        if (r > 0)
                return r;
        if (!streq(argv[1], "stats"))
                return scache_find(o, client, streq(argv[1], "find-dest"), argv[2]);

        r = ctl_call(o, client, "io.tern.Scache.Statistics", NULL, &reply);
        if (r > 0)
                return r;
        if (o->json)
                ctl_print_json(o, reply.parameters);
        else {
                lines = json_object_get(reply.parameters, "lines");
                json_array_foreach(lines, i, line)
                        printf("%s\n", json_string_value(line));
                printf("cached now: sessions=%lld endpoints=%lld destinations=%lld\n",
                       (long long) json_integer_value(json_object_get(reply.parameters, "sessions")),
                       (long long) json_integer_value(json_object_get(reply.parameters, "endpoints")),
                       (long long) json_integer_value(json_object_get(reply.parameters, "destinations")));
        }
        varlink_reply_done(&reply);
        return 0;
}
