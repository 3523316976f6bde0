/* SPDX-License-Identifier: MIT */
/*
 * smtpd-peer.c - the client's verified host name, looked up in a thread (see smtpd-peer.h)
 *
 * Ownership: a lookup has two references, the thread's and the session's. The thread drops its
 * own after it wrote the result and signalled the eventfd; the session drops its own in the
 * callback (or when it abandons the lookup). The last one frees it and closes the eventfd.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>

#include "macro.h"
#include "smtpd-peer.h"

struct SmtpdPeerLookup {
        atomic_int refs;
        int efd;
        sd_event_source *io;
        struct sockaddr_storage addr;
        socklen_t len;
        SmtpdPeerResult result;
        SmtpdPeerDoneFn done;
        void *userdata;
};

static void lookup_unref(SmtpdPeerLookup *l)
{
        if (atomic_fetch_sub(&l->refs, 1) != 1)
                return;
        safe_close(l->efd);
        free(l);
}

/* same_address - is A (from getaddrinfo) the client's address? */
static bool same_address(const struct sockaddr *a, const struct sockaddr_storage *client)
{
        if (a->sa_family != client->ss_family)
                return false;
        if (a->sa_family == AF_INET)
                return memcmp(&((const struct sockaddr_in *) a)->sin_addr,
                              &((const struct sockaddr_in *) client)->sin_addr, sizeof(struct in_addr)) == 0;
        if (a->sa_family == AF_INET6)
                return memcmp(&((const struct sockaddr_in6 *) a)->sin6_addr,
                              &((const struct sockaddr_in6 *) client)->sin6_addr, sizeof(struct in6_addr)) == 0;
        return false;
}

/* resolve - Postfix's smtpd_peer_hostaddr_to_sockaddr + name verification, blocking */
static void resolve(SmtpdPeerLookup *l)
{
        /* a numeric address with a scope: INET6_ADDRSTRLEN and an interface name */
        char name[NI_MAXHOST], numeric[64];
        struct addrinfo hints = { .ai_family = l->addr.ss_family, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        bool found = false;
        int r;

        snprintf(l->result.name, sizeof(l->result.name), "unknown");
        if (getnameinfo((const struct sockaddr *) &l->addr, l->len, numeric, sizeof(numeric), NULL, 0,
                        NI_NUMERICHOST) != 0)
                return;
        if (getnameinfo((const struct sockaddr *) &l->addr, l->len, name, sizeof(name), NULL, 0, NI_NAMEREQD) != 0)
                return; /* no PTR record: "unknown", as Postfix, without a warning */
        if (!valid_hostname(name)) {
                snprintf(l->result.warning, sizeof(l->result.warning), "%s: hostname %.100s is not valid",
                         numeric, name);
                return;
        }
        r = getaddrinfo(name, NULL, &hints, &res);
        if (r != 0) {
                snprintf(l->result.warning, sizeof(l->result.warning),
                         "hostname %.100s does not resolve to address %s: %.100s", name, numeric,
                         gai_strerror(r));
                return;
        }
        for (struct addrinfo *a = res; a && !found; a = a->ai_next)
                found = same_address(a->ai_addr, &l->addr);
        freeaddrinfo(res);
        if (!found) {
                snprintf(l->result.warning, sizeof(l->result.warning),
                         "hostname %.100s does not resolve to address %s", name, numeric);
                return;
        }
        snprintf(l->result.name, sizeof(l->result.name), "%s", lowercase_ascii(name));
}

static void *lookup_thread(void *arg)
{
        SmtpdPeerLookup *l = arg;
        uint64_t one = 1;

        resolve(l);
        (void) !write(l->efd, &one, sizeof(one));
        lookup_unref(l);
        return NULL;
}

static int on_lookup_done(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        SmtpdPeerLookup *l = userdata;
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
        l->io = sd_event_source_disable_unref(l->io);
        l->done(&l->result, l->userdata);
        lookup_unref(l);
        return 0;
}

int smtpd_peer_lookup_start(sd_event *event, const struct sockaddr *addr, socklen_t len, SmtpdPeerDoneFn done,
                            void *userdata, SmtpdPeerLookup **ret)
{
        SmtpdPeerLookup *l;
        pthread_attr_t attr;
        pthread_t thread;
        int r;

        if (len > sizeof(l->addr))
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        atomic_init(&l->refs, 1);
        memcpy(&l->addr, addr, len);
        l->len = len;
        l->done = done;
        l->userdata = userdata;
        l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(event, &l->io, l->efd, EPOLLIN, on_lookup_done, l);
        if (r < 0)
                goto fail;

        atomic_fetch_add(&l->refs, 1); /* the thread's */
        r = -pthread_attr_init(&attr);
        if (r == 0) {
                (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                /* getaddrinfo() needs little; 256 KiB leaves a margin for NSS modules */
                (void) pthread_attr_setstacksize(&attr, 256U * 1024U);
                r = -pthread_create(&thread, &attr, lookup_thread, l);
                (void) pthread_attr_destroy(&attr);
        }
        if (r < 0) {
                atomic_fetch_sub(&l->refs, 1);
                goto fail;
        }
        *ret = l;
        return 0;
fail:
        l->io = sd_event_source_disable_unref(l->io);
        lookup_unref(l);
        return r;
}

void smtpd_peer_lookup_abandon(SmtpdPeerLookup *l)
{
        if (!l)
                return;
        l->io = sd_event_source_disable_unref(l->io);
        lookup_unref(l);
}
