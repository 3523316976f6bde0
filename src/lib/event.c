/* SPDX-License-Identifier: MIT */
/*
 * event.c - the service scaffold (see event.h for what a daemon's life looks like)
 *
 * The idle timer is armed whenever the last client leaves and no background work is held, and
 * disarmed by the next connection; libsystemd 252 has no exit-on-idle of its own. max_use counts
 * accepted connections, as Postfix's servers do.
 *
 * Per-connection services (delivery agents) count uses (Deliver calls), not connections, and
 * idle time between uses; run by hand, a parent accepts and forks. The parent never creates an
 * event loop or a varlink server: a child builds its own from scratch after fork(), since
 * sd-event objects do not survive one, and ends through the ordinary path (leak checks included).
 *
 * Limits: one listening socket name ("varlink"); any other names systemd passes are refused
 * with a warning, so a unit mistake is visible rather than silently ignored. A per-connection
 * service takes exactly one descriptor of any name (systemd names an Accept=yes connection
 * "connection"); SERVICE_CHILDREN_MAX children at once.
 */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "event.h"
#include "log.h"

struct Service {
        const ServiceSpec *spec;
        Conf *conf;
        sd_event *event;
        VarlinkServer *varlink;
        char *socket_path;
        bool socket_activated;
        uint64_t max_idle_usec;
        uint64_t max_use;
        unsigned held;
        bool draining;                  /* max_use reached: exit when the last client is done */
        sd_event_source *idle_timer;
        char *transport;                /* per-connection: -t TRANSPORT */
        uint64_t uses;                  /* per-connection: service_use() calls */
};

sd_event *service_event(Service *s)
{
        return s->event;
}

const Conf *service_conf(Service *s)
{
        return s->conf;
}

VarlinkServer *service_varlink(Service *s)
{
        return s->varlink;
}

const char *service_socket_path(Service *s)
{
        return s->socket_path;
}

int service_set_socket_description(Service *s, const char *text)
{
        char *p = strdup(text);

        if (!p)
                return -ENOMEM;
        free(s->socket_path);
        s->socket_path = p;
        return 0;
}

bool service_socket_activated(Service *s)
{
        return s->socket_activated;
}

const char *service_transport(Service *s)
{
        return s->transport ? s->transport : s->spec->program;
}

bool service_use(Service *s, VarlinkCall *call)
{
        if (!s->spec->per_connection)
                return false;
        s->uses++;
        if (s->max_use == 0 || s->uses < s->max_use || s->draining)
                return false;
        s->draining = true;
        varlink_call_end_connection(call);
        service_status(s, "max_use (%llu) reached, finishing", (unsigned long long) s->max_use);
        return true;
}

void service_status(Service *s, const char *format, ...)
{
        char buf[512];
        va_list ap;

        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        (void) sd_notifyf(false, "STATUS=%s", buf);
        log_debug("status: %s", buf);
}

uint64_t service_raise_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1024;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit want = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
                if (setrlimit(RLIMIT_NOFILE, &want) >= 0)
                        rl = want;
        }
        return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t) rl.rlim_cur;
}

int service_runtime_path(const Conf *c, const char *name, char **ret)
{
        char *p;

        if (asprintf(&p, "%s/%s", conf_get_string(c, "runtime_directory"), name) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* service_idle_check - arm or disarm the exit timers after a change */
static void service_idle_check(Service *s)
{
        size_t n = varlink_server_connections(s->varlink);
        uint64_t now;

        if (!s->idle_timer)
                return;
        if (s->spec->per_connection) {
                /* One connection per process: its end is ours; idle means no use in progress. */
                if (n == 0) {
                        log_debug("connection closed: exiting");
                        (void) sd_event_exit(s->event, 0);
                        return;
                }
                if (s->held > 0 || s->draining) {
                        (void) sd_event_source_set_enabled(s->idle_timer, SD_EVENT_OFF);
                        return;
                }
                (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                (void) sd_event_source_set_time(s->idle_timer, now + s->max_idle_usec);
                (void) sd_event_source_set_enabled(s->idle_timer, SD_EVENT_ONESHOT);
                return;
        }
        if (n > 0 || s->held > 0) {
                (void) sd_event_source_set_enabled(s->idle_timer, SD_EVENT_OFF);
                return;
        }
        if (s->draining) {
                log_debug("max_use reached and no client left: exiting");
                (void) sd_event_exit(s->event, 0);
                return;
        }
        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(s->idle_timer, now + s->max_idle_usec);
        (void) sd_event_source_set_enabled(s->idle_timer, SD_EVENT_ONESHOT);
}

void service_hold(Service *s)
{
        s->held++;
        service_idle_check(s);
}

void service_release(Service *s)
{
        assert(s->held > 0);
        s->held--;
        service_idle_check(s);
}

static int on_idle(sd_event_source *source, uint64_t usec, void *userdata)
{
        Service *s = userdata;

        log_debug("idle for max_idle: exiting");
        service_status(s, "Idle for %llu s, exiting",
                       (unsigned long long) (s->max_idle_usec / USEC_PER_SEC));
        return sd_event_exit(s->event, 0);
}

static void on_varlink_event(VarlinkServer *v, VarlinkServerEvent event, const struct ucred *peer,
                             const char *detail, void *userdata)
{
        Service *s = userdata;

        switch (event) {
        case VARLINK_SERVER_CONNECT:
                if (s->idle_timer && !s->spec->long_running && !s->spec->no_max_use &&
                    !s->spec->per_connection && s->max_use > 0 &&
                    varlink_server_accepted(v) >= s->max_use && !s->draining) {
                        s->draining = true;
                        (void) varlink_server_set_accepting(v, false);
                        service_status(s, "max_use (%llu) reached, finishing",
                                       (unsigned long long) s->max_use);
                }
                service_idle_check(s);
                break;
        case VARLINK_SERVER_DISCONNECT:
                service_idle_check(s);
                break;
        case VARLINK_SERVER_PROTOCOL_ERROR:
                log_warning("client pid=%d uid=%d: %s", (int) peer->pid, (int) peer->uid, detail);
                break;
        case VARLINK_SERVER_CALL_TIMEOUT:
                log_fatal(
                        "watchdog timeout: call %s from pid=%d has been pending longer than daemon_timeout",
                        detail, (int) peer->pid);
        }
}

/* service_listen - the socket systemd gave us, or our own */
static int service_listen(Service *s)
{
        char **names = NULL;
        int n, r, taken = 0;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "cannot take listening sockets from systemd: %m");
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;

                if (names && names[i] && (streq(names[i], "varlink") || streq(names[i], "unknown") ||
                                          streq(names[i], "connection"))) {
                        if (streq(names[i], "connection"))
                                r = log_error_errno(
                                        EINVAL, "an Accept=yes connection is not a listening socket here");
                        else {
                                struct sockaddr_un sa = {};
                                socklen_t sl = sizeof(sa);

                                /* STATUS= names the socket we really serve, not the configured one. */
                                if (taken == 0 && getsockname(fd, (struct sockaddr *) &sa, &sl) >= 0 &&
                                    sa.sun_family == AF_UNIX && sa.sun_path[0] == '/') {
                                        char *p = strndup(sa.sun_path, sizeof(sa.sun_path));
                                        if (p) {
                                                free(s->socket_path);
                                                s->socket_path = p;
                                        }
                                }
                                r = varlink_server_listen_fd(s->varlink, fd);
                        }
                        if (r < 0)
                                return log_error_errno(r, "cannot serve socket %d: %m", fd);
                        taken++;
                } else {
                        log_warning("ignoring socket %d named \"%s\": expected \"varlink\"", fd,
                                    names && names[i] ? names[i] : "?");
                        safe_close(fd);
                }
        }
        for (int i = 0; names && names[i]; i++)
                free(names[i]);
        free(names);

        if (taken > 0) {
                s->socket_activated = true;
                return 0;
        }
        if (n > 0)
                return log_error_errno(ENOENT, "systemd passed no socket named \"varlink\": %m");

        r = varlink_server_listen_path(s->varlink, s->socket_path,
                                       s->spec->socket_mode ? s->spec->socket_mode : 0660);
        if (r < 0)
                return log_error_errno(r, "cannot listen on %s: %m", s->socket_path);
        return 0;
}

static void usage(const ServiceSpec *spec)
{
        printf("Usage: tern-%s [-c FILE] [-v]%s\n"
               "%s\n\n"
               "  -c FILE     read FILE instead of %s ($TERN_CONFIG)\n"
               "%s"
               "  -v          verbose logging (repeat for more)\n"
               "  -h          this help\n"
               "  --version   print the version\n",
               spec->program, spec->per_connection ? " [-t TRANSPORT]" : "",
               spec->description ? spec->description : "", TERN_CONFIG_FILE,
               spec->per_connection ? "  -t NAME     serve transport NAME: runtime_directory/NAME, [NAME] section\n"
                                    : "");
}

/* transport_name_valid - a transport name is a file name and a section name: [a-z0-9_-], 1-64 */
static bool transport_name_valid(const char *t)
{
        size_t n = strlen(t);

        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_' || t[i] == '-'))
                        return false;
        return true;
}

static Service *service_free(Service *s)
{
        if (!s)
                return NULL;
        /* NULL, not just freed: freeing the server below drops the remaining clients, and each
         * DISCONNECT event comes back to service_idle_check(), which must see no timer. */
        s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
        varlink_server_free(s->varlink);
        sd_event_unref(s->event);
        conf_free(s->conf);
        free(s->socket_path);
        free(s->transport);
        free(s);
        return NULL;
}

/* service_loop_new - the event loop and the varlink server, ready for the daemon's setup() */
static void service_loop_new(Service *s)
{
        const ServiceSpec *spec = s->spec;
        int r;

        /* A loop of our own, not sd_event_default(): libsystemd 252 checks that the default loop runs
         * in the thread that made it with a gettid() system call on every iteration. */
        r = sd_event_new(&s->event);
        if (r < 0)
                log_fatal_errno(r, "cannot create event loop: %m");
        r = sd_event_set_signal_exit(s->event, true);
        if (r < 0)
                log_fatal_errno(r, "cannot install SIGTERM/SIGINT handlers: %m");
        r = sd_event_set_watchdog(s->event, true);
        if (r < 0)
                log_fatal_errno(r, "cannot enable the watchdog: %m");

        r = varlink_server_new(s->event, &s->varlink);
        if (r < 0)
                log_fatal_errno(r, "cannot create varlink server: %m");
        varlink_server_set_info(s->varlink, "tern", spec->program, TERN_VERSION, "man:tern(7)");
        varlink_server_set_event_callback(s->varlink, on_varlink_event, s);
        varlink_server_set_io_timeout(s->varlink,
                                      (uint64_t) conf_get_time(s->conf, "ipc_timeout") * USEC_PER_SEC);
        varlink_server_set_call_timeout(s->varlink,
                                        (uint64_t) conf_get_time(s->conf, "daemon_timeout") * USEC_PER_SEC);

        if (spec->setup) {
                r = spec->setup(s, spec->userdata);
                if (r < 0)
                        log_fatal_errno(r, "setup failed: %m");
        }
}

/* service_run - READY=1, the loop, STOPPING=1, the daemon's shutdown(); the exit status */
static int service_run(Service *s, const char *what)
{
        int r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=%s %s%s", what, s->socket_path,
                          s->socket_activated ? " (socket-activated)" : "");
        log_debug("ready: %s", s->socket_path);

        r = sd_event_loop(s->event);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        if (r < 0)
                log_error_errno(r, "event loop failed: %m");
        if (s->spec->shutdown)
                s->spec->shutdown(s, s->spec->userdata);
        return r < 0 ? EXIT_FAILURE : r;
}

/* serve_connection - a per-connection service's whole life on one connected socket FD */
static int serve_connection(Service *s, int fd)
{
        int r;

        service_loop_new(s);
        r = sd_event_add_time(s->event, &s->idle_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_idle, s);
        if (r < 0)
                log_fatal_errno(r, "cannot create idle timer: %m");
        r = varlink_server_add_connection_fd(s->varlink, fd);
        if (r < 0)
                log_fatal_errno(r, "cannot serve the connection: %m");
        service_idle_check(s);
        return service_run(s, "Serving a connection on");
}

/* is_listening - is FD a listening socket (else a connection)? */
static bool is_listening(int fd)
{
        int v = 0;
        socklen_t l = sizeof(v);

        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) >= 0 && v;
}

typedef struct Children {
        pid_t pids[SERVICE_CHILDREN_MAX];
        size_t n;
} Children;

/* children_reap - collect the children that exited; say so when one failed */
static void children_reap(Service *s, Children *c)
{
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);

                if (pid <= 0)
                        return;
                for (size_t i = 0; i < c->n; i++)
                        if (c->pids[i] == pid) {
                                c->pids[i] = c->pids[--c->n];
                                break;
                        }
                if (WIFSIGNALED(status))
                        log_warning("process tern-%s pid %d killed by signal %d", s->spec->program, (int) pid,
                                    WTERMSIG(status));
                else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
                        log_warning("process tern-%s pid %d exit status %d", s->spec->program, (int) pid,
                                    WEXITSTATUS(status));
        }
}

/*
 * supervise - accept on LISTENER and fork a child per connection. Returns in the parent with its
 * exit status (*ret_child false), or in a child with the connection to serve (*ret_child true).
 */
static int supervise(Service *s, int listener, bool *ret_child)
{
        Children children = {};
        sigset_t mask, old;
        int sfd, r = 0;
        bool stop = false;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
                log_fatal_errno(errno, "cannot block signals: %m");
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                log_fatal_errno(errno, "cannot create signalfd: %m");

        (void) sd_notifyf(false, "READY=1\nSTATUS=Accepting on %s, a process per connection", s->socket_path);
        log_debug("ready: %s (a process per connection)", s->socket_path);

        while (!stop) {
                struct pollfd p[2] = {
                        { .fd = sfd, .events = POLLIN },
                        { .fd = listener, .events = children.n < SERVICE_CHILDREN_MAX ? POLLIN : 0 },
                };
                struct signalfd_siginfo si;
                int cfd;
                pid_t pid;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = log_error_errno(errno, "poll: %m");
                        break;
                }
                while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                        if (si.ssi_signo == SIGCHLD)
                                children_reap(s, &children);
                        else
                                stop = true;
                }
                children_reap(s, &children);
                if (stop || !(p[1].revents & POLLIN))
                        continue;

                cfd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
                if (cfd < 0)
                        continue;       /* EAGAIN, ECONNABORTED, EMFILE: try again */
                pid = fork();
                if (pid < 0) {
                        log_warning_errno(errno, "cannot fork a process for a connection: %m");
                        safe_close(cfd);
                        continue;
                }
                if (pid == 0) {
                        (void) sigprocmask(SIG_SETMASK, &old, NULL);
                        safe_close(sfd);
                        safe_close(listener);
                        /* The parent is the one systemd (if anyone) watches. */
                        (void) unsetenv("NOTIFY_SOCKET");
                        (void) unsetenv("WATCHDOG_USEC");
                        (void) unsetenv("WATCHDOG_PID");
                        *ret_child = true;
                        return cfd;
                }
                safe_close(cfd);
                children.pids[children.n++] = pid;
                service_status(s, "Accepting on %s, %zu connection%s open", s->socket_path, children.n,
                               children.n == 1 ? "" : "s");
        }

        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        for (size_t i = 0; i < children.n; i++)
                (void) kill(children.pids[i], SIGTERM);
        while (children.n > 0) {
                int status;
                pid_t pid = waitpid(-1, &status, 0);

                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (size_t i = 0; i < children.n; i++)
                        if (children.pids[i] == pid) {
                                children.pids[i] = children.pids[--children.n];
                                break;
                        }
        }
        safe_close(sfd);
        safe_close(listener);
        (void) sigprocmask(SIG_SETMASK, &old, NULL);
        *ret_child = false;
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* service_main_per_connection - serve the connection systemd gave us, or accept and fork */
static int service_main_per_connection(Service *s)
{
        int n, fd, r;
        bool child = false;

        n = sd_listen_fds(true);
        if (n < 0)
                log_fatal_errno(n, "cannot take sockets from systemd: %m");
        if (n > 1)
                log_fatal("systemd passed %d sockets: a delivery agent takes one", n);
        if (n == 1 && !is_listening(SD_LISTEN_FDS_START)) {
                s->socket_activated = true;
                return serve_connection(s, SD_LISTEN_FDS_START);
        }
        if (n == 1) {
                s->socket_activated = true;
                fd = SD_LISTEN_FDS_START;
        } else {
                fd = varlink_listen_path(s->socket_path, s->spec->socket_mode ? s->spec->socket_mode : 0660);
                if (fd < 0)
                        log_fatal_errno(fd, "cannot listen on %s: %m", s->socket_path);
        }
        r = supervise(s, fd, &child);
        if (child) {
                /* By hand, only the parent removes the socket it bound. */
                s->socket_activated = true;
                return serve_connection(s, r);
        }
        if (!s->socket_activated)
                (void) unlink(s->socket_path);
        return r;
}

int service_main(const ServiceSpec *spec, int argc, char **argv)
{
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "transport", required_argument, NULL, 't' },
                {},
        };
        const char *config_arg = NULL, *transport_arg = NULL;
        _cleanup_(freep) char *error = NULL;
        Service *s;
        int c, r, verbose = 0;

        log_open("tern", spec->program, LOG_TARGET_AUTO);
        while ((c = getopt_long(argc, argv, spec->per_connection ? "c:vht:" : "c:vh", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_arg = optarg;
                        break;
                case 't':
                        if (!spec->per_connection) {
                                log_error("-t applies to delivery agents only");
                                return 64;
                        }
                        if (!transport_name_valid(optarg)) {
                                log_error("bad transport name \"%s\": expected [a-z0-9_-], at most 64", optarg);
                                return 64;
                        }
                        transport_arg = optarg;
                        break;
                case 'v':
                        verbose++;
                        break;
                case 'h':
                        usage(spec);
                        return EXIT_SUCCESS;
                case 'V':
                        printf("tern %s\n", TERN_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return 64;      /* EX_USAGE */
                }
        }
        if (optind < argc) {
                log_error("unexpected argument: %s", argv[optind]);
                return 64;
        }
        log_set_verbose(verbose);

        s = calloc(1, sizeof(*s));
        if (!s)
                log_fatal("out of memory");
        s->spec = spec;
        if (spec->per_connection) {
                bool known = !spec->transports;

                s->transport = strdup(transport_arg ? transport_arg : spec->program);
                if (!s->transport)
                        log_fatal("out of memory");
                for (const char *const *t = spec->transports; t && *t; t++)
                        known = known || streq(*t, s->transport);
                if (!known) {
                        log_error("tern-%s does not serve transport \"%s\"", spec->program, s->transport);
                        free(s->transport);
                        free(s);
                        return 64;
                }
        }

        /* Configuration first: a broken main.cf never starts a daemon half-configured. A delivery
         * agent reads its transport's section: [retry] for tern-error -t retry. */
        r = conf_load(conf_path(config_arg), service_transport(s), &s->conf, &error);
        if (r < 0) {
                (void) sd_notifyf(false, "STATUS=Bad configuration: %s", error ? error : strerror(-r));
                log_fatal("%s", error ? error : strerror(-r));
        }
        log_open(conf_get_string(s->conf, "syslog_name"), spec->program, LOG_TARGET_AUTO);
        if (log_set_facility(conf_get_string(s->conf, "syslog_facility")) < 0)
                log_fatal("parameter syslog_facility: unknown facility \"%s\"",
                          conf_get_string(s->conf, "syslog_facility"));
        {
                const char *const *w;
                size_t n = conf_warnings(s->conf, &w);
                for (size_t i = 0; i < n; i++)
                        log_warning("%s", w[i]);
        }

        s->max_idle_usec = (uint64_t) conf_get_time(s->conf, "max_idle") * USEC_PER_SEC;
        s->max_use = (uint64_t) conf_get_int(s->conf, "max_use");
        r = service_runtime_path(s->conf, spec->socket ? spec->socket : service_transport(s), &s->socket_path);
        if (r < 0)
                log_fatal("out of memory");

        if (spec->per_connection) {
                r = service_main_per_connection(s);
                service_free(s);
                return r;
        }

        service_loop_new(s);

        if (spec->listen) {
                /* The daemon serves sockets of its own kind (tern-smtpd: TCP). */
                int n = sd_listen_fds(true);

                if (n < 0)
                        log_fatal_errno(n, "cannot take listening sockets from systemd: %m");
                s->socket_activated = n > 0;
                if (spec->listen(s, n, spec->userdata) < 0)
                        log_fatal("cannot listen");
        } else if (service_listen(s) < 0)
                log_fatal("cannot listen");

        if (s->socket_activated && !spec->long_running) {
                r = sd_event_add_time(s->event, &s->idle_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_idle, s);
                if (r < 0)
                        log_fatal_errno(r, "cannot create idle timer: %m");
                service_idle_check(s);
        }

        r = service_run(s, "Serving on");

        /* By hand we bound the socket ourselves: take it away again. */
        if (!s->socket_activated && !spec->listen)
                (void) unlink(s->socket_path);
        service_free(s);
        return r;
}
