/* SPDX-License-Identifier: MIT */
/*
 * smtp.h - tern-smtp's parts: configuration, sessions (smtp-session.c), server lookup
 * (smtp-resolve.c), the connection cache (smtp-cache.c) and one delivery (smtp-deliver.c)
 *
 * One process serves one tern-qmgr connection, one delivery at a time, synchronously, as
 * Postfix's smtp(8) does: every wait on the network is bounded by the stage's timeout, so a
 * delivery never takes longer than the sum of its stages' limits.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "delivery-agent.h"
#include "scache-client.h"
#include "smtp-dns.h"
#include "smtp-key.h"
#include "smtp-wire.h"

/* Longest "host[addr]:port" relay text, NUL included. */
#define SMTP_RELAY_MAX (SMTP_DNS_NAME_MAX + INET6_ADDRSTRLEN + 16)

typedef struct SmtpConfig {
        bool lmtp;             /* -t lmtp: LHLO, a reply per recipient after DATA */
        const char *service;   /* the transport name: first field of cache labels */
        const char *helo_name; /* smtp_helo_name (owned by the Conf) */
        uint64_t connect_timeout, helo_timeout, mail_timeout, rcpt_timeout, data_init_timeout,
                data_xfer_timeout, data_done_timeout, rset_timeout, quit_timeout; /* µs; 0 none */
        unsigned mx_address_limit, mx_session_limit;                              /* 0: no limit */
        bool ipv4, ipv6;                                                          /* inet_protocols */
        const char *address_preference; /* smtp_address_preference */
        const char *bind_address, *bind_address6;
        bool skip_5xx_greeting;
        bool defer_if_no_mx_address_found;
        const char *myhostname;          /* names this host as the "server" of a unix: LMTP session */
        char *const *cache_destinations; /* smtp_connection_cache_destinations */
        bool cache_on_demand;
        int64_t cache_time_limit;        /* s: the TTL of a cached session */
        int64_t reuse_time_limit;        /* s: a session is not reused past its start + this */
        int64_t reuse_count_limit;       /* 0: no limit */
        uint64_t cache_protocol_timeout; /* µs */
        char *scache_path;               /* runtime_directory/scache (malloc'ed) */
} SmtpConfig;

int smtp_config_load(const Conf *c, const char *transport, SmtpConfig *ret);
void smtp_config_done(SmtpConfig *cfg);

/* ---- sessions (smtp-session.c) -------------------------------------------------------------- */

/* An SMTP or LMTP session with one server. */
typedef struct SmtpSession {
        int fd;
        char *host;                  /* the server's name as looked up ("mx.example.com"), or its address */
        char addr[INET6_ADDRSTRLEN]; /* "192.0.2.1"; the socket path for unix: */
        uint16_t port;
        char relay[SMTP_RELAY_MAX]; /* "mx.example.com[192.0.2.1]:25", as logged */
        SmtpFeatures features;
        int reuse_count;     /* earlier deliveries over this session */
        int64_t expire_time; /* epoch s: not reused after this */
        bool broken;         /* lost, timed out or out of step: never reused */
        SmtpReplyParser *parser;
        char *in; /* bytes read and not yet parsed */
        size_t in_start, in_end, in_alloc;
        char *out; /* commands waiting to be written */
        size_t out_len, out_alloc;
} SmtpSession;

/* Why a step failed, for the delivery log: the text in parentheses and its enhanced code. */
typedef struct SmtpWhy {
        char dsn[16];
        char text[1024];
} SmtpWhy;

void smtp_why_set(SmtpWhy *w, const char *dsn, const char *format, ...) _printf_(3, 4);

/*
 * smtp_session_connect - a TCP connection to ADDR:PORT within cfg->connect_timeout, from
 * smtp_bind_address(6) when set. HOST names the server in logs. -errno with WHY set to Postfix's
 * "connect to HOST[ADDR]:PORT: REASON" (4.4.1).
 */
int smtp_session_connect(const SmtpConfig *cfg, const char *host, const SmtpDnsAddr *addr, uint16_t port,
                         SmtpSession **ret, SmtpWhy *why);
/* smtp_session_connect_unix - LMTP over a UNIX-domain socket at PATH; logged as Postfix does,
 * relay=MYHOSTNAME[PATH] */
int smtp_session_connect_unix(const SmtpConfig *cfg, const char *path, SmtpSession **ret, SmtpWhy *why);
/* smtp_session_adopt - a session over FD (from the connection cache); takes FD over */
int smtp_session_adopt(int fd, const char *host, const char *addr, uint16_t port, SmtpSession **ret);
SmtpSession *smtp_session_free(SmtpSession *s);
static inline void smtp_session_freep(SmtpSession **s)
{
        smtp_session_free(*s);
}

/* smtp_session_queue - append a command line (CRLF added) to what smtp_session_flush writes */
int smtp_session_queue(SmtpSession *s, const char *format, ...) _printf_(2, 3);
/* smtp_session_queue_raw - append bytes as they are */
int smtp_session_queue_raw(SmtpSession *s, const void *data, size_t len);
/*
 * smtp_session_flush - write everything queued; TIMEOUT (µs) is the longest it may make no
 * progress. What the server sends meanwhile is read and kept for smtp_session_reply (so that
 * a pipelined burst never deadlocks). -ETIMEDOUT, -EPIPE/-ECONNRESET, -ENOBUFS (the server sent
 * more than a session keeps unread).
 */
int smtp_session_flush(SmtpSession *s, uint64_t timeout);
/*
 * smtp_session_reply - the next reply, read within TIMEOUT (µs) in all. -ETIMEDOUT, -ECONNRESET
 * (the server closed the connection: "lost connection"), -EBADMSG (a malformed reply: *ret_reason).
 * Any failure marks the session broken.
 */
int smtp_session_reply(SmtpSession *s, uint64_t timeout, SmtpReply *ret, const char **ret_reason);

/*
 * smtp_session_fail - WHY for an I/O failure R while doing STAGE ("receiving the initial server
 * greeting", "sending RCPT TO", ...): Postfix's "conversation with HOST[ADDR] timed out while
 * STAGE" and "lost connection with HOST[ADDR] while STAGE" (4.4.2), or "HOST[ADDR] sent a
 * malformed reply while STAGE: REASON" (4.5.0). Marks the session broken.
 */
void smtp_session_fail(SmtpSession *s, int r, const char *reason, const char *stage, SmtpWhy *why);

/*
 * smtp_session_hello - read the greeting and send EHLO (LHLO for LMTP), falling back to HELO
 * when EHLO is refused (SMTP only), within cfg->helo_timeout per reply; sets s->features.
 * 0: ready for MAIL. -errno with WHY: a refused greeting or HELO ("host HOST[ADDR] refused to
 * talk to me: REPLY", the reply's code; a 5XX greeting counts as 4XX with smtp_skip_5xx_greeting)
 * or an I/O failure.
 */
int smtp_session_hello(SmtpSession *s, const SmtpConfig *cfg, SmtpWhy *why);

/* smtp_session_rset - RSET and its 250 within cfg->rset_timeout: a cached session's probe */
int smtp_session_rset(SmtpSession *s, const SmtpConfig *cfg);
/* smtp_session_quit - send QUIT without waiting for the reply (Postfix's smtp_skip_quit_response) */
void smtp_session_quit(SmtpSession *s);

/* ---- server lookup (smtp-resolve.c) --------------------------------------------------------- */

/* One server address to try, in order. */
typedef struct SmtpServer {
        char *host; /* the name looked up, or the literal's text */
        SmtpDnsAddr addr;
        uint16_t port;
        uint16_t pref; /* MX preference (0 for A/AAAA and literals) */
} SmtpServer;

/*
 * smtp_resolve - the servers for destination D: its MX hosts in RFC 5321 order (random among
 * equal preference), each host's addresses as smtp_address_preference and inet_protocols say, at
 * most cfg->mx_address_limit in all; a host without MX records is its own server; a literal is
 * itself. -errno with WHY when there is no server: a name that does not exist (5.4.4 "Host or
 * domain name not found. Name service error for name=N type=T: Host not found"), a DNS failure
 * (4.4.3 "... Host not found, try again"), a null MX (5.1.10), a malformed answer or MX records
 * that name no valid host (4.4.3), MX hosts none of which has an address (the last host's 5.4.4,
 * or 4.4.4 with smtp_defer_if_no_mx_address_found).
 */
int smtp_resolve(const SmtpConfig *cfg, const SmtpNexthop *d, SmtpServer **ret, size_t *ret_n, SmtpWhy *why);
void smtp_server_free_array(SmtpServer *a, size_t n);

/* ---- the connection cache (smtp-cache.c) ---------------------------------------------------- */

typedef struct SmtpCache {
        const SmtpConfig *cfg;
        ScacheClient *client; /* made at the first use */
} SmtpCache;

/* smtp_cache_find_dest / _endp - a cached session, probed with RSET; NULL: none usable */
SmtpSession *smtp_cache_find_dest(SmtpCache *c, const char *dest_label);
SmtpSession *smtp_cache_find_endp(SmtpCache *c, const char *endp_label);
/*
 * smtp_cache_save - hand S to tern-scache under its endpoint label, and bind DEST_LABEL (NULL:
 * none; DESTINATION is its text for the properties) to it; S is freed (its descriptor closed
 * here) either way. Sessions that are broken, expired, used up or on a UNIX-domain socket are
 * not saved: they get QUIT. true when S was saved.
 */
bool smtp_cache_save(SmtpCache *c, SmtpSession *s, const char *dest_label, const char *destination);

void smtp_cache_done(SmtpCache *c);

/* ---- one delivery (smtp-deliver.c) ---------------------------------------------------------- */

/* smtp_deliver - deliver JOB's message, answer it (every recipient gets a result) */
void smtp_deliver(DeliveryJob *job, const SmtpConfig *cfg, SmtpCache *cache);
