/* SPDX-License-Identifier: MIT */
/*
 * smtpd.c - tern-smtpd: the SMTP server (Postfix's smtpd(8)): receives mail into the queue and
 * answers ETRN through tern-flush
 *
 * Process model: one process serves every session from one sd-event loop. Postfix runs a
 * process per session, each fsync'ing its own file; here every message that ends while others
 * are being received joins one group commit (queue-commit.h), which is what takes tern past the
 * disk's per-file fsync rate, and a session costs a few kilobytes instead of a process. The
 * only blocking step of a session, the client's host name lookup, runs in a thread
 * (smtpd-peer.c); an ETRN's call to tern-flush is asynchronous. At most default_process_limit
 * sessions are served at once; further clients wait in the listen backlog.
 *
 * Sockets: under systemd, every stream socket tern-smtpd.socket passes (ListenStream= lines);
 * run by hand, each smtpd_listen entry ("127.0.0.1:2525", "[::1]:2525", ":2525"), or
 * inet_interfaces on port 25 when smtpd_listen is empty.
 *
 * Configuration problems (a bad mynetworks entry, an unknown restriction, an unreadable access
 * table) stop the daemon at start with the parameter's name. See man/tern-smtpd.8.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "event.h"
#include "log.h"
#include "smtpd.h"

static Smtpd server;

/* ---- listening ---------------------------------------------------------------------------- */

static void set_accepting(Smtpd *d, bool on)
{
        if (d->accepting == on)
                return;
        d->accepting = on;
        for (size_t i = 0; i < d->n_listeners; i++)
                (void) sd_event_source_set_enabled(d->listeners[i], on ? SD_EVENT_ON : SD_EVENT_OFF);
}

static void on_session_ended(Smtpd *d)
{
        if (d->n_sessions < d->session_limit)
                set_accepting(d, true);
}

static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        Smtpd *d = userdata;

        /* a few per wakeup, so that a connection storm does not starve the sessions */
        for (unsigned i = 0; i < 16 && d->n_sessions < d->session_limit; i++) {
                struct sockaddr_storage peer;
                socklen_t len = sizeof(peer);
                int cfd = accept4(fd, (struct sockaddr *) &peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE)
                                log_warning("accept: %s", strerror(errno));
                        break;
                }
                d->n_connections++;
                (void) smtpd_session_start(d, cfd, &peer, len);
        }
        if (d->n_sessions >= d->session_limit)
                set_accepting(d, false);
        return 0;
}

static int add_listener(Smtpd *d, int fd)
{
        sd_event_source **v = reallocarray(d->listeners, d->n_listeners + 1, sizeof(*v));
        int r;

        if (!v)
                return -ENOMEM;
        d->listeners = v;
        r = sd_event_add_io(d->event, &d->listeners[d->n_listeners], fd, EPOLLIN, on_accept, d);
        if (r < 0)
                return r;
        (void) sd_event_source_set_io_fd_own(d->listeners[d->n_listeners], true);
        d->n_listeners++;
        return 0;
}

/* bind_one - listen on SPEC: "host:port", "[v6]:port", ":port" (every address) or "host"
 * (port 25); "all" is every address */
static int bind_one(Smtpd *d, const char *spec, char *desc, size_t desc_size)
{
        _cleanup_(freep) char *copy = strdup(spec);
        const char *host, *port = "25";
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST },
                        *res = NULL;
        char *colon;
        int r;

        if (!copy)
                return -ENOMEM;
        host = copy;
        if (copy[0] == '[') {
                char *end = strchr(copy, ']');
                if (!end || (end[1] != '\0' && end[1] != ':'))
                        return log_error_errno(EINVAL, "smtpd_listen: bad address \"%s\"", spec);
                *end = '\0';
                host = copy + 1;
                if (end[1] == ':')
                        port = end + 2;
        } else if ((colon = strrchr(copy, ':')) && strchr(copy, ':') == colon) {
                *colon = '\0';
                port = colon + 1;
        }
        if (*host == '\0' || strcasecmp(host, "all") == 0) {
                /* every address: dual-stack IPv6 (IPv4 clients arrive mapped), or IPv4 alone on a
                 * kernel without IPv6 */
                int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

                hints.ai_family = probe >= 0 ? AF_INET6 : AF_INET;
                safe_close(probe);
                host = NULL;
        }
        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0)
                return log_error_errno(EINVAL, "smtpd_listen: bad address \"%s\": %s", spec, gai_strerror(r));
        for (struct addrinfo *a = res; a; a = a->ai_next) {
                int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1, zero = 0;

                if (fd < 0) {
                        r = -errno;
                        break;
                }
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (a->ai_family == AF_INET6 && !host)
                        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
                        r = log_error_errno(errno, "smtpd_listen: cannot listen on %s: %m", spec);
                        safe_close(fd);
                        break;
                }
                r = add_listener(d, fd);
                if (r < 0) {
                        safe_close(fd);
                        break;
                }
        }
        freeaddrinfo(res);
        if (r >= 0)
                snprintf(desc + strlen(desc), desc_size - strlen(desc), "%s%s", *desc ? " " : "", spec);
        return r;
}

static int smtpd_listen(Service *svc, int n_fds, void *userdata)
{
        Smtpd *d = &server;
        char desc[512] = "";
        int r;

        if (n_fds > 0) {
                for (int i = 0; i < n_fds; i++) {
                        int fd = SD_LISTEN_FDS_START + i;

                        /* TCP only: a client's address decides what it may do (mynetworks) */
                        if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0)
                                return log_error_errno(EINVAL, "descriptor %d from systemd is not a listening "
                                                               "TCP socket", fd);
                        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                        r = add_listener(d, fd);
                        if (r < 0)
                                return log_error_errno(r, "cannot serve socket %d: %m", fd);
                }
                snprintf(desc, sizeof(desc), "%d socket%s from systemd", n_fds, n_fds == 1 ? "" : "s");
        } else {
                char *const *specs = conf_get_list(d->conf, "smtpd_listen");

                if (!specs || !*specs) {
                        /* inet_interfaces, port 25 */
                        for (char *const *p = conf_get_list(d->conf, "inet_interfaces"); p && *p; p++) {
                                char spec[300];

                                if (strchr(*p, ':') && (*p)[0] != '[')
                                        snprintf(spec, sizeof(spec), "[%s]:25", *p);
                                else
                                        snprintf(spec, sizeof(spec), "%s:25", *p);
                                r = bind_one(d, spec, desc, sizeof(desc));
                                if (r < 0)
                                        return r;
                        }
                } else
                        for (char *const *p = specs; *p; p++) {
                                r = bind_one(d, *p, desc, sizeof(desc));
                                if (r < 0)
                                        return r;
                        }
        }
        if (d->n_listeners == 0)
                return log_error_errno(EINVAL, "nothing to listen on: set smtpd_listen or inet_interfaces");
        d->accepting = true;
        return service_set_socket_description(svc, desc);
}

static int smtpd_setup(Service *svc, void *userdata)
{
        service_raise_nofile();
        server.session_ended = on_session_ended;
        return smtpd_configure(&server, service_conf(svc), service_event(svc));
}

static void smtpd_shutdown(Service *svc, void *userdata)
{
        Smtpd *d = &server;
        uint64_t messages, batches, syncs;

        /* what the group commit did, for tuning (smtpd -v, or journalctl -p debug) */
        queue_committer_stats(d->committer, &messages, &batches, &syncs);
        log_debug("stopping: %zu session%s open, %llu connections, %llu messages queued in %llu group "
                  "commits with %llu syncs",
                  d->n_sessions, d->n_sessions == 1 ? "" : "s", (unsigned long long) d->n_connections,
                  (unsigned long long) messages, (unsigned long long) batches, (unsigned long long) syncs);
        smtpd_session_free_all(d);
}

int main(int argc, char **argv)
{
        static const ServiceSpec spec = {
                .program = "smtpd",
                .description = "Receive mail over SMTP into the queue and answer ETRN (Postfix's smtpd).",
                .long_running = true,
                .setup = smtpd_setup,
                .listen = smtpd_listen,
                .shutdown = smtpd_shutdown,
        };
        int r;

        r = service_main(&spec, argc, argv);
        smtpd_done(&server);
        return r;
}
