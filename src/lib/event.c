/* SPDX-License-Identifier: MIT */
/*
 * event.c - the service scaffold (see event.h for what a daemon's life looks like)
 *
 * The idle timer is armed whenever the last client leaves and no background work is held, and
 * disarmed by the next connection; libsystemd 252 has no exit-on-idle of its own. max_use counts
 * accepted connections, as Postfix's servers do.
 *
 * Limits: one listening socket name ("varlink"); any other names systemd passes are refused
 * with a warning, so a unit mistake is visible rather than silently ignored.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
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

bool service_socket_activated(Service *s)
{
        return s->socket_activated;
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
                if (s->idle_timer && !s->spec->long_running && !s->spec->no_max_use && s->max_use > 0 &&
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
        printf("Usage: tern-%s [-c FILE] [-v]\n"
               "%s\n\n"
               "  -c FILE     read FILE instead of %s ($TERN_CONFIG)\n"
               "  -v          verbose logging (repeat for more)\n"
               "  -h          this help\n"
               "  --version   print the version\n",
               spec->program, spec->description ? spec->description : "", TERN_CONFIG_FILE);
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
        free(s);
        return NULL;
}

int service_main(const ServiceSpec *spec, int argc, char **argv)
{
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        const char *config_arg = NULL;
        _cleanup_(freep) char *error = NULL;
        Service *s;
        int c, r, verbose = 0;

        log_open("tern", spec->program, LOG_TARGET_AUTO);
        while ((c = getopt_long(argc, argv, "c:vh", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_arg = optarg;
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

        /* Configuration first: a broken main.cf never starts a daemon half-configured. */
        r = conf_load(conf_path(config_arg), spec->program, &s->conf, &error);
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
        r = service_runtime_path(s->conf, spec->socket ? spec->socket : spec->program, &s->socket_path);
        if (r < 0)
                log_fatal("out of memory");

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

        if (service_listen(s) < 0)
                log_fatal("cannot listen");

        if (s->socket_activated && !spec->long_running) {
                r = sd_event_add_time(s->event, &s->idle_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_idle, s);
                if (r < 0)
                        log_fatal_errno(r, "cannot create idle timer: %m");
                service_idle_check(s);
        }

        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving on %s%s", s->socket_path,
                          s->socket_activated ? " (socket-activated)" : "");
        log_debug("ready: %s", s->socket_path);

        r = sd_event_loop(s->event);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        if (r < 0)
                log_error_errno(r, "event loop failed: %m");
        if (spec->shutdown)
                spec->shutdown(s, spec->userdata);

        /* By hand we bound the socket ourselves: take it away again. */
        if (!s->socket_activated)
                (void) unlink(s->socket_path);
        service_free(s);
        return r < 0 ? EXIT_FAILURE : r;
}
