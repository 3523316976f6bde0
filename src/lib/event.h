/* SPDX-License-Identifier: MIT */
/*
 * event.h - the service scaffold every tern daemon runs on (sd-event + varlink)
 *
 * service_main() is the run() skeleton of systemd's small daemons with the process-lifetime
 * rules of Postfix's single/multi servers: parse -c/-v, load main.cf (a bad value stops us
 * before anything else happens), open the log, take the listening socket from systemd
 * (LISTEN_FDS, name "varlink") or bind runtime_directory/SOCKET by hand, READY=1 and STATUS=,
 * run, STOPPING=1. SIGTERM and SIGINT end the loop cleanly; WATCHDOG=1 is sent when the unit
 * sets WatchdogSec=.
 *
 * Lifetime (socket-activated only: systemd starts us again on the next connection):
 *  - max_idle: exit after that long with no client connected and no background work;
 *  - max_use: after that many connections stop accepting, exit when the last one is done.
 * Run by hand the daemon serves until it is stopped. A long-running daemon (qmgr) ignores both.
 *
 * Per-connection services (delivery agents: ServiceSpec.per_connection) serve one client per
 * process, as Postfix's single_server did. They take -t TRANSPORT (default: the program name),
 * read the [TRANSPORT] section of main.cf and serve runtime_directory/TRANSPORT; the log
 * identifier stays the program's (tern/error also for -t retry).
 *  - Under systemd with Accept=yes, the one descriptor passed is the connection: serve it, and
 *    exit when the peer hangs up, when the max_use'th use (service_use()) has been answered
 *    (the connection is closed after that reply), or after max_idle with no use in progress
 *    (service_hold()/service_release() bracket a use).
 *  - Run by hand (no LISTEN_FDS), or given a listening socket, the process binds (or takes) the
 *    socket and forks a child per accepted connection, which then lives as above; at most
 *    SERVICE_CHILDREN_MAX children at once (further clients wait in the listen backlog). The
 *    parent reaps them and logs any that died of a signal or failed; SIGTERM stops the parent,
 *    which passes it on to its children and waits for them.
 * ipc_timeout drops a client that stalls inside a message or does not read; daemon_timeout is
 * the most a call may stay pending before the process gives up (Postfix's watchdog).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "macro.h"
#include "varlink.h"

typedef struct Service Service;

typedef struct ServiceSpec {
        const char *program;            /* "flush": log identifier tern/flush, [flush] section */
        const char *socket;             /* file name under runtime_directory; NULL: the program name */
        const char *description;        /* one line for --help */
        bool long_running;              /* max_idle and max_use do not apply (qmgr) */
        bool no_max_use;                /* max_use does not apply (scache: Postfix sets it to 0) */
        mode_t socket_mode;             /* run by hand: the bound socket's mode (0: 0660) */
        bool per_connection;            /* a process per connection, -t TRANSPORT (see above) */
        const char *const *transports;  /* per_connection: the names -t accepts (NULL: any) */
        /* set up interfaces and state; called after configuration and logging, before listening */
        int (*setup)(Service *s, void *userdata);
        /* called once after the loop ended (SIGTERM, idle, max_use), before anything is freed */
        void (*shutdown)(Service *s, void *userdata);
        /* A daemon that serves sockets of its own kind instead of a varlink socket (tern-smtpd:
         * TCP): called after setup() with the number of descriptors systemd passed from
         * SD_LISTEN_FDS_START on (0: run by hand, it binds its own); no varlink socket is bound.
         * It says what it serves with service_set_socket_description() (STATUS=). */
        int (*listen)(Service *s, int n_fds, void *userdata);
        void *userdata;
} ServiceSpec;

/* service_main - the whole life of a daemon; returns the process exit status */
int service_main(const ServiceSpec *spec, int argc, char **argv);

sd_event *service_event(Service *s);
const Conf *service_conf(Service *s);
VarlinkServer *service_varlink(Service *s);
const char *service_socket_path(Service *s);
int service_set_socket_description(Service *s, const char *text);
bool service_socket_activated(Service *s);
/* service_transport - -t TRANSPORT of a per-connection service (else the program name) */
const char *service_transport(Service *s);

/* Children a per-connection service run by hand has at once (Postfix: default_process_limit). */
#define SERVICE_CHILDREN_MAX 100U

/*
 * service_use - count one use (a Deliver call) of a per-connection service; when it is the
 * max_use'th, CALL's connection is closed once CALL's reply is sent, and the process exits.
 * Returns true for that last use. Other services: does nothing, false.
 */
bool service_use(Service *s, VarlinkCall *call);

/* service_status - STATUS= for systemctl status (and a debug line) */
void service_status(Service *s, const char *format, ...) _printf_(2, 3);

/* Background work that must finish before an idle exit (refresh, purge). */
void service_hold(Service *s);
void service_release(Service *s);

/* service_raise_nofile - the soft RLIMIT_NOFILE up to the hard one (daemons that hold many
 * descriptors: scache's sessions, qmgr's active queue); returns the soft limit in force */
uint64_t service_raise_nofile(void);

/* service_runtime_path - runtime_directory/NAME, malloc'ed */
int service_runtime_path(const Conf *c, const char *name, char **ret);
