/* SPDX-License-Identifier: MIT */
/*
 * smtpd.h - tern-smtpd's server state: what main.cf says, shared by every session, and the
 * sessions themselves (smtpd-session.c)
 *
 * One process serves every SMTP session from one sd-event loop (see smtpd.c for why). The
 * server owns the listening sockets, the configuration decoded once at start, the queue store
 * and its group commit, and the list of live sessions.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "domain-list.h"
#include "queue-commit.h"
#include "queue-store.h"
#include "smtpd-access.h"

typedef enum SmtpdBareLf {
        SMTPD_BARE_LF_NO,               /* a bare LF ends a line, also the end of DATA */
        SMTPD_BARE_LF_NORMALIZE,        /* ... but only <CR><LF>.<CR><LF> ends DATA (Postfix 3.9) */
        SMTPD_BARE_LF_REJECT,           /* 550 5.5.2 and disconnect */
} SmtpdBareLf;

/* local_header_rewrite_clients: who gets missing headers added */
enum {
        SMTPD_REWRITE_INET_INTERFACES = 1U << 0,
        SMTPD_REWRITE_MYNETWORKS = 1U << 1,
        SMTPD_REWRITE_ALL = 1U << 2,
};

typedef struct SmtpdSession SmtpdSession;

typedef struct Smtpd {
        sd_event *event;
        const Conf *conf;
        QueueStore *store;
        QueueCommitter *committer;
        char *flush_socket;

        /* main.cf, decoded once */
        const char *myhostname, *myorigin, *banner;
        uint64_t timeout_usec, error_sleep_usec, ipc_timeout_usec;
        int64_t delay_warning_time;
        unsigned hard_error_limit, soft_error_limit, junk_command_limit;
        size_t recipient_limit, recipient_overshoot_limit, line_length_limit, session_limit;
        size_t client_connection_limit;
        uint64_t message_size_limit;
        bool helo_required, delay_reject, disable_vrfy, strict_rfc821, peername_lookup, allow_min_user;
        SmtpdBareLf bare_lf;
        unsigned header_rewrite;        /* SMTPD_REWRITE_* */
        SmtpdNetList mynetworks, bare_lf_exclusions, event_limit_exceptions, local_addrs;
        DomainList mydestination, relay_domains;
        SmtpdDomains domains;
        char *const *discard_ehlo_keywords;
        char *const *client_restrictions, *const *helo_restrictions, *const *sender_restrictions;
        char *const *relay_restrictions, *const *recipient_restrictions, *const *etrn_restrictions;
        char **table_names;             /* NULL-terminated: every check_*_access table named */
        SmtpdAccessTable **tables;      /* loaded, in the order of table_names */

        /* live state */
        sd_event_source **listeners;
        size_t n_listeners;
        bool accepting;
        SmtpdSession *sessions;
        size_t n_sessions;
        uint64_t n_connections;
        /* a session went away: the server may accept again (smtpd.c; NULL: nothing to do) */
        void (*session_ended)(struct Smtpd *d);
} Smtpd;

/* smtpd_configure - D from C (main.cf), for sessions on EVENT: -errno after logging what is
 * wrong, naming the parameter (smtpd-config.c) */
int smtpd_configure(Smtpd *d, const Conf *c, sd_event *event);
/* smtpd_done - free what D holds: sessions, listeners, tables, the queue */
void smtpd_done(Smtpd *d);

/* smtpd_session_start - serve the accepted connection FD (taken over) */
int smtpd_session_start(Smtpd *d, int fd, const struct sockaddr_storage *peer, socklen_t peer_len);
/* smtpd_session_free_all - the server is stopping: close every session (nothing half-received
 * is queued; a client waiting for "250 queued" hears nothing, so it keeps its copy) */
void smtpd_session_free_all(Smtpd *d);
