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
#include <ifaddrs.h>
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

/* ---- configuration ------------------------------------------------------------------------ */

static int netlist_from_conf(const Conf *c, const char *name, SmtpdNetList *ret)
{
        const char *bad = NULL, *reason = NULL;
        int r = smtpd_netlist_parse(conf_get_list(c, name), ret, &bad, &reason);

        if (r == -EINVAL)
                return log_error_errno(r, "parameter %s: bad entry \"%s\": %s", name, strempty(bad),
                                       strempty(reason));
        if (r < 0)
                return log_error_errno(r, "parameter %s: %m", name);
        return 0;
}

/* local_addresses - this host's addresses (permit_inet_interfaces, local address literals) */
static int local_addresses(SmtpdNetList *ret)
{
        struct ifaddrs *ifa = NULL;
        char **entries = NULL;
        size_t n = 0;
        int r;

        if (getifaddrs(&ifa) < 0)
                ifa = NULL;     /* loopback below still counts */
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
                n++;
        entries = calloc(n + 3, sizeof(char *));
        if (!entries) {
                freeifaddrs(ifa);
                return -ENOMEM;
        }
        n = 0;
        entries[n++] = strdup("127.0.0.1");
        entries[n++] = strdup("[::1]");
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                char text[INET6_ADDRSTRLEN + 2];

                if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
                        continue;
                if (i->ifa_addr->sa_family == AF_INET)
                        inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, text, sizeof(text));
                else {
                        const struct in6_addr *a = &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;
                        if (IN6_IS_ADDR_LINKLOCAL(a))
                                continue;       /* a scope the text form cannot carry */
                        text[0] = '[';
                        inet_ntop(AF_INET6, a, text + 1, sizeof(text) - 2);
                        strcat(text, "]");
                }
                entries[n++] = strdup(text);
        }
        freeifaddrs(ifa);
        r = 0;
        for (size_t i = 0; i < n; i++)
                if (!entries[i])
                        r = -ENOMEM;
        if (r >= 0)
                r = smtpd_netlist_parse(entries, ret, NULL, NULL);
        for (size_t i = 0; i < n; i++)
                free(entries[i]);
        free(entries);
        return r;
}

/* load_tables - every check_*_access table the restriction lists name (texthash:/path) */
static int load_tables(Smtpd *d, char *const *const *lists, size_t n_lists)
{
        size_t n = 0;

        for (size_t i = 0; i < n_lists; i++)
                for (char *const *p = lists[i]; p && *p; p++)
                        n++;
        d->table_names = calloc(n + 1, sizeof(char *));
        d->tables = calloc(n + 1, sizeof(SmtpdAccessTable *));
        if (!d->table_names || !d->tables)
                return -ENOMEM;
        n = 0;
        for (size_t i = 0; i < n_lists; i++)
                for (char *const *p = lists[i]; p && *p; p++) {
                        const char *name = p[1];
                        _cleanup_(freep) char *text = NULL;
                        size_t len = 0, line = 0;
                        const char *reason = NULL;
                        FILE *f;
                        int r;

                        if (strncasecmp(*p, "check_", 6) != 0 || !name)
                                continue;
                        p++;
                        if (conf_list_contains(d->table_names, name))
                                continue;
                        if (strncmp(name, "texthash:", 9) != 0)
                                return log_error_errno(EINVAL, "access table %s: only texthash:/path tables are "
                                                               "supported", name);
                        f = fopen(name + 9, "re");
                        if (!f)
                                return log_error_errno(errno, "access table %s: %m", name);
                        r = -ENOMEM;
                        {
                                char *buf = NULL;
                                size_t cap = 0;
                                ssize_t k;

                                FILE *mem = open_memstream(&buf, &cap);
                                char chunk[4096];
                                if (mem) {
                                        while ((k = (ssize_t) fread(chunk, 1, sizeof(chunk), f)) > 0)
                                                fwrite(chunk, 1, (size_t) k, mem);
                                        fclose(mem);
                                        text = buf;
                                        len = cap;
                                        r = 0;
                                }
                        }
                        fclose(f);
                        if (r < 0)
                                return r;
                        r = smtpd_access_table_parse(text, len, false, &d->tables[n], &line, &reason);
                        if (r < 0)
                                return log_error_errno(r, "access table %s, line %zu: %s", name, line,
                                                       strempty(reason));
                        d->table_names[n] = strdup(name);
                        if (!d->table_names[n])
                                return -ENOMEM;
                        n++;
                }
        return 0;
}

static int smtpd_configure(Smtpd *d, Service *svc)
{
        const Conf *c = service_conf(svc);
        static const char *const restriction_params[] = {
                "smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
                "smtpd_relay_restrictions",  "smtpd_recipient_restrictions", "smtpd_etrn_restrictions",
        };
        char *const *lists[ELEMENTSOF(restriction_params)];
        const char *mode, *bad;
        int r;

        d->conf = c;
        d->event = service_event(svc);
        d->myhostname = conf_get_string(c, "myhostname");
        d->myorigin = conf_get_string(c, "myorigin");
        d->banner = conf_get_string(c, "smtpd_banner");
        d->timeout_usec = (uint64_t) conf_get_time(c, "smtpd_timeout") * USEC_PER_SEC;
        d->error_sleep_usec = (uint64_t) conf_get_time(c, "smtpd_error_sleep_time") * USEC_PER_SEC;
        d->ipc_timeout_usec = (uint64_t) conf_get_time(c, "ipc_timeout") * USEC_PER_SEC;
        d->delay_warning_time = conf_get_time(c, "delay_warning_time");
        d->hard_error_limit = (unsigned) conf_get_int(c, "smtpd_hard_error_limit");
        d->soft_error_limit = (unsigned) conf_get_int(c, "smtpd_soft_error_limit");
        d->junk_command_limit = (unsigned) conf_get_int(c, "smtpd_junk_command_limit");
        d->recipient_limit = (size_t) conf_get_int(c, "smtpd_recipient_limit");
        d->line_length_limit = (size_t) conf_get_int(c, "line_length_limit");
        d->session_limit = (size_t) conf_get_int(c, "default_process_limit");
        d->client_connection_limit = (size_t) conf_get_int(c, "smtpd_client_connection_count_limit");
        d->message_size_limit = conf_get_size(c, "message_size_limit");
        d->helo_required = conf_get_bool(c, "smtpd_helo_required");
        d->delay_reject = conf_get_bool(c, "smtpd_delay_reject");
        d->disable_vrfy = conf_get_bool(c, "disable_vrfy_command");
        d->strict_rfc821 = conf_get_bool(c, "strict_rfc821_envelopes");
        d->peername_lookup = conf_get_bool(c, "smtpd_peername_lookup");
        d->allow_min_user = conf_get_bool(c, "allow_min_user");
        d->discard_ehlo_keywords = conf_get_list(c, "smtpd_discard_ehlo_keywords");

        mode = conf_get_string(c, "smtpd_forbid_bare_newline");
        if (strcasecmp(mode, "normalize") == 0 || strcasecmp(mode, "yes") == 0)
                d->bare_lf = SMTPD_BARE_LF_NORMALIZE;
        else if (strcasecmp(mode, "reject") == 0)
                d->bare_lf = SMTPD_BARE_LF_REJECT;
        else if (strcasecmp(mode, "no") == 0)
                d->bare_lf = SMTPD_BARE_LF_NO;
        else
                return log_error_errno(EINVAL, "parameter smtpd_forbid_bare_newline: bad value \"%s\": "
                                               "expected normalize, yes, reject or no", mode);

        for (char *const *p = conf_get_list(c, "local_header_rewrite_clients"); p && *p; p++) {
                if (strcasecmp(*p, "permit_inet_interfaces") == 0)
                        d->header_rewrite |= SMTPD_REWRITE_INET_INTERFACES;
                else if (strcasecmp(*p, "permit_mynetworks") == 0)
                        d->header_rewrite |= SMTPD_REWRITE_MYNETWORKS;
                else if (strcasecmp(*p, "static:all") == 0)
                        d->header_rewrite |= SMTPD_REWRITE_ALL;
                else
                        return log_error_errno(EINVAL, "parameter local_header_rewrite_clients: unsupported "
                                                       "entry \"%s\"", *p);
        }

        if ((r = netlist_from_conf(c, "mynetworks", &d->mynetworks)) < 0 ||
            (r = netlist_from_conf(c, "smtpd_forbid_bare_newline_exclusions", &d->bare_lf_exclusions)) < 0 ||
            (r = netlist_from_conf(c, "smtpd_client_event_limit_exceptions", &d->event_limit_exceptions)) < 0)
                return r;
        r = local_addresses(&d->local_addrs);
        if (r < 0)
                return log_error_errno(r, "cannot list this host's addresses: %m");
        if ((r = domain_list_from_conf(c, "mydestination", &d->mydestination)) < 0 ||
            (r = domain_list_from_conf(c, "relay_domains", &d->relay_domains)) < 0)
                return log_error_errno(r, "cannot read mydestination or relay_domains: %m");
        d->domains = (SmtpdDomains){
                .mydestination = &d->mydestination,
                .relay_domains = &d->relay_domains,
                .local_addrs = &d->local_addrs,
                .allow_percent_hack = conf_get_bool(c, "allow_percent_hack"),
        };

        for (size_t i = 0; i < ELEMENTSOF(restriction_params); i++) {
                lists[i] = conf_get_list(c, restriction_params[i]);
                if (smtpd_restrictions_valid(lists[i], &bad) < 0)
                        return log_error_errno(EINVAL, "parameter %s: unknown restriction \"%s\"",
                                               restriction_params[i], strempty(bad));
        }
        d->client_restrictions = lists[0];
        d->helo_restrictions = lists[1];
        d->sender_restrictions = lists[2];
        d->relay_restrictions = lists[3];
        d->recipient_restrictions = lists[4];
        d->etrn_restrictions = lists[5];
        /* Never an open relay: with both lists empty Postfix refuses to run (it requires one of
         * them to hold reject_unauth_destination or the like); so does tern. */
        if ((!lists[3] || !*lists[3]) && (!lists[4] || !*lists[4]))
                return log_error_errno(EINVAL, "smtpd_relay_restrictions and smtpd_recipient_restrictions "
                                               "are both empty: that would be an open relay");
        return load_tables(d, lists, ELEMENTSOF(lists));
}

/* ---- listening ---------------------------------------------------------------------------- */

static void set_accepting(Smtpd *d, bool on)
{
        if (d->accepting == on)
                return;
        d->accepting = on;
        for (size_t i = 0; i < d->n_listeners; i++)
                (void) sd_event_source_set_enabled(d->listeners[i], on ? SD_EVENT_ON : SD_EVENT_OFF);
}

void smtpd_session_ended(Smtpd *d)
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
                if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6) {
                        /* a UNIX socket from a test harness: serve it as a loopback client */
                        struct sockaddr_in *a = (struct sockaddr_in *) &peer;
                        memset(&peer, 0, sizeof(peer));
                        a->sin_family = AF_INET;
                        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                        len = sizeof(*a);
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
                host = NULL;
                hints.ai_family = AF_INET6;     /* dual-stack: IPv4 clients arrive mapped */
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

                        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
                                return log_error_errno(EINVAL, "descriptor %d from systemd is not a listening "
                                                               "stream socket", fd);
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
        Smtpd *d = &server;
        _cleanup_(freep) char *qmgr_socket = NULL;
        const Conf *c = service_conf(svc);
        int r;

        r = smtpd_configure(d, svc);
        if (r < 0)
                return r;
        service_raise_nofile();
        r = queue_store_open(conf_get_string(c, "queue_directory"), conf_get_list(c, "hash_queue_names"),
                             (unsigned) conf_get_int(c, "hash_queue_depth"), &d->store);
        if (r < 0)
                return log_error_errno(r, "cannot open the queue %s: %m", conf_get_string(c, "queue_directory"));
        if ((r = service_runtime_path(c, "qmgr", &qmgr_socket)) < 0 ||
            (r = service_runtime_path(c, "flush", &d->flush_socket)) < 0)
                return r;
        return queue_committer_new(d->event, d->store, qmgr_socket, d->ipc_timeout_usec, &d->committer);
}

static void smtpd_shutdown(Service *svc, void *userdata)
{
        Smtpd *d = &server;

        log_debug("stopping: %zu session%s open, %llu connection%s, %llu message%s queued", d->n_sessions,
                  d->n_sessions == 1 ? "" : "s", (unsigned long long) d->n_connections,
                  d->n_connections == 1 ? "" : "s", (unsigned long long) d->n_queued,
                  d->n_queued == 1 ? "" : "s");
        smtpd_session_free_all(d);
}

static void smtpd_free(Smtpd *d)
{
        for (size_t i = 0; i < d->n_listeners; i++)
                sd_event_source_disable_unref(d->listeners[i]);
        free(d->listeners);
        d->committer = queue_committer_free(d->committer);
        d->store = queue_store_free(d->store);
        free(d->flush_socket);
        for (size_t i = 0; d->table_names && d->table_names[i]; i++) {
                free(d->table_names[i]);
                smtpd_access_table_free(d->tables[i]);
        }
        free(d->table_names);
        free(d->tables);
        smtpd_netlist_done(&d->mynetworks);
        smtpd_netlist_done(&d->bare_lf_exclusions);
        smtpd_netlist_done(&d->event_limit_exceptions);
        smtpd_netlist_done(&d->local_addrs);
        domain_list_done(&d->mydestination);
        domain_list_done(&d->relay_domains);
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
        smtpd_free(&server);
        return r;
}
