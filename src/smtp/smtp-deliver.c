/* SPDX-License-Identifier: MIT */
/*
 * smtp-deliver.c - one delivery request: servers tried in order, the mail transaction, and
 * what becomes of each recipient, as Postfix's smtp_connect.c, smtp_proto.c and smtp_trouble.c
 * decide it
 *
 * The request's nexthop is one destination or a list (tried in order). For each destination:
 * a cached session for it (when caching is on for the request), else its servers (MX order,
 * smtp-resolve.c), each first looked for in the cache by endpoint, else connected to. At most
 * smtp_mx_session_limit sessions and smtp_mx_address_limit addresses are tried per destination.
 *
 * What becomes of a recipient (Postfix's rules):
 *   - 2XX to RCPT and to the end of DATA (LMTP: its own reply after DATA): sent;
 *   - 5XX (to MAIL, RCPT, DATA or the end of DATA): bounced at once, on any server;
 *   - 4XX, or the connection failing, on a server that is not the last one to try: kept for the
 *     next server; on the last one: deferred;
 *   - a greeting or HELO refused, a connection that cannot be made: the next server; when there
 *     is none left, deferred (bounced only for a 5XX HELO on the last server);
 *   - a name that does not exist or a null MX: bounced (5.4.4, 5.1.10); a DNS failure: deferred;
 *   - a message larger than the server's SIZE: bounced (5.3.4) without a transaction.
 * When no server answered a transaction (every failure was a connection or handshake failure or
 * a lookup failure), the reply carries a hop status, so that qmgr throttles the destination.
 *
 * The message: the queue file descriptor is read whole with pread (a short read is a deferral:
 * "error reading message"), its content is sent with CRLF line ends and dot-stuffing whatever
 * the file holds, with SIZE= when the server announced SIZE and BODY=8BITMIME when the content
 * has 8-bit bytes and the server announced 8BITMIME. DSN parameters (RET, ENVID, NOTIFY, ORCPT)
 * go to servers that announced DSN. With PIPELINING, MAIL, every RCPT and DATA go in one write.
 *
 * Limits: no TLS, no SASL, no SMTPUTF8 (non-ASCII addresses are sent as they are); a message is
 * held in memory while it is sent.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "domain-list.h"
#include "log.h"
#include "macro.h"
#include "queue-file.h"
#include "smtp.h"

/* Postfix's DSN bits (global/dsn_mask.h) */
#define DSN_NOTIFY_NEVER (1 << 0)
#define DSN_NOTIFY_SUCCESS (1 << 1)
#define DSN_NOTIFY_DELAY (1 << 2)
#define DSN_NOTIFY_FAILURE (1 << 3)
#define DSN_RET_FULL (1 << 0)
#define DSN_RET_HDRS (1 << 1)

/* Bytes of content encoded and written at a time. */
#define SMTP_DATA_CHUNK 65536U
/* Largest queue file read (a message over message_size_limit never gets here). */
#define SMTP_QUEUE_FILE_MAX ((off_t) 1 << 31)

typedef struct Delivery {
        DeliveryJob *job;
        const DeliveryRequest *req;
        const SmtpConfig *cfg;
        SmtpCache *cache;
        char *content; /* the message as text, "\n" line ends */
        size_t content_len;
        bool eightbit;
        bool *done;   /* per recipient: has its final result */
        size_t left;  /* recipients without a result */
        SmtpWhy last; /* the latest failure, for what is left at the end */
        char last_relay[SMTP_RELAY_MAX];
        bool answered;      /* some server took part in a mail transaction */
        bool local_failure; /* the failure is this host's (the message, the nexthop) */
        bool cache_load, cache_store;
        bool dest_saved;   /* the request's destination is bound in the cache */
        unsigned sessions; /* with the current destination, past the handshake (the limit is
                            * per destination, as Postfix's) */
} Delivery;

static int64_t now_epoch_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the message -------------------------------------------------------------------------- */

/* read_message - the whole queue file, its envelope parsed and its content as text */
static int read_message(Delivery *d, const char **ret_reason)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        QueueEnvelope e = {};
        struct stat st;
        size_t got = 0;
        bool truncated = false;
        int r;

        if (fstat(d->req->fd, &st) < 0) {
                *ret_reason = strerror(errno);
                return -errno;
        }
        if (st.st_size <= 0 || st.st_size > SMTP_QUEUE_FILE_MAX) {
                *ret_reason = "queue file size out of range";
                return -EBADMSG;
        }
        buf = malloc((size_t) st.st_size);
        if (!buf)
                return -ENOMEM;
        while (got < (size_t) st.st_size) {
                ssize_t n = pread(d->req->fd, buf + got, (size_t) st.st_size - got, (off_t) got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        *ret_reason = strerror(errno);
                        return -errno;
                }
                if (n == 0) {
                        *ret_reason = "premature end of queue file";
                        return -EBADMSG;
                }
                got += (size_t) n;
        }
        r = queue_envelope_parse(buf, got, &e, ret_reason);
        if (r < 0)
                return r;
        r = queue_content_text(buf, got, &e, 0, false, &d->content, &d->content_len, &truncated);
        queue_envelope_done(&e);
        if (r < 0) {
                *ret_reason = r == -ENOMEM ? "out of memory" : "garbled message content";
                return r;
        }
        for (size_t i = 0; i < d->content_len && !d->eightbit; i++)
                d->eightbit = (unsigned char) d->content[i] >= 0x80;
        return 0;
}

/* ---- results ------------------------------------------------------------------------------ */

static void result(Delivery *d, size_t i, DeliveryStatus status, const char *dsn, const char *relay,
                   const char *text)
{
        if (d->done[i])
                return;
        if (delivery_job_result(d->job, i, status, dsn, relay, text) < 0)
                log_warning("%s: cannot record the result for <%s>", d->req->queue_id,
                            d->req->recipients[i].address);
        d->done[i] = true;
        d->left--;
}

/* remember - WHY (at RELAY) is the latest failure: what recipients left at the end get */
static void remember(Delivery *d, const SmtpWhy *why, const char *relay)
{
        d->last = *why;
        snprintf(d->last_relay, sizeof(d->last_relay), "%s", relay);
}

/*
 * fail - recipient I failed with WHY on a server (RELAY): 5XX bounces; 4XX defers on the last
 * server to try (FINAL) and is kept for the next one otherwise
 */
static void fail(Delivery *d, size_t i, const SmtpWhy *why, const char *relay, bool final)
{
        if (why->dsn[0] == '5')
                result(d, i, DELIVERY_BOUNCED, why->dsn, relay, why->text);
        else if (final)
                result(d, i, DELIVERY_DEFERRED, why->dsn, relay, why->text);
        else
                remember(d, why, relay);
}

/* said - WHY for a negative reply: "host H[A] said: REPLY (in reply to COMMAND command)" */
static void said(SmtpWhy *why, const SmtpSession *s, const SmtpReply *reply, const char *command)
{
        smtp_why_set(why, reply->dsn, "host %s[%s] said: %s (in reply to %s command)",
                     s->port ? s->host : s->addr, s->addr, reply->text, command);
}

/* ---- the mail transaction ----------------------------------------------------------------- */

static int queue_mail(Delivery *d, SmtpSession *s)
{
        _cleanup_(freep) char *envid = NULL;
        char size[48] = "", body[24] = "", ret[16] = "";
        const DeliveryRequest *req = d->req;
        bool dsn = s->features.flags & SMTP_FEATURE_DSN;

        if (s->features.flags & SMTP_FEATURE_SIZE)
                snprintf(size, sizeof(size), " SIZE=%" PRId64, req->size);
        if (d->eightbit && (s->features.flags & SMTP_FEATURE_8BITMIME))
                snprintf(body, sizeof(body), " BODY=8BITMIME");
        if (dsn && (req->ret_flags & (DSN_RET_FULL | DSN_RET_HDRS)))
                snprintf(ret, sizeof(ret), " RET=%s", req->ret_flags & DSN_RET_FULL ? "FULL" : "HDRS");
        if (dsn && !isempty(req->envelope_id) && smtp_xtext(req->envelope_id, &envid) < 0)
                return -ENOMEM;
        return smtp_session_queue(s, "MAIL FROM:<%s>%s%s%s%s%s", req->sender, size, body, ret,
                                  envid ? " ENVID=" : "", strempty(envid));
}

static int queue_rcpt(Delivery *d, SmtpSession *s, const DeliveryRecipient *rc)
{
        _cleanup_(freep) char *orcpt = NULL;
        char notify[48] = "";
        int n = rc->notify_flags;

        if (s->features.flags & SMTP_FEATURE_DSN) {
                if (n & DSN_NOTIFY_NEVER)
                        snprintf(notify, sizeof(notify), " NOTIFY=NEVER");
                else if (n & (DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE))
                        snprintf(notify, sizeof(notify), " NOTIFY=%s%s%s%s%s",
                                 n & DSN_NOTIFY_SUCCESS ? "SUCCESS" : "",
                                 (n & DSN_NOTIFY_SUCCESS) && (n & (DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE))
                                         ? ","
                                         : "",
                                 n & DSN_NOTIFY_DELAY ? "DELAY" : "",
                                 (n & DSN_NOTIFY_DELAY) && (n & DSN_NOTIFY_FAILURE) ? "," : "",
                                 n & DSN_NOTIFY_FAILURE ? "FAILURE" : "");
                if (!isempty(rc->dsn_orig_rcpt)) {
                        const char *semi = strchr(rc->dsn_orig_rcpt, ';');
                        _cleanup_(freep) char *x = NULL;

                        if (smtp_xtext(semi ? semi + 1 : rc->dsn_orig_rcpt, &x) < 0)
                                return -ENOMEM;
                        if (asprintf(&orcpt, " ORCPT=%.*s;%s", semi ? (int) (semi - rc->dsn_orig_rcpt) : 6,
                                     semi ? rc->dsn_orig_rcpt : "rfc822", x) < 0) {
                                orcpt = NULL;
                                return -ENOMEM;
                        }
                }
        }
        return smtp_session_queue(s, "RCPT TO:<%s>%s%s", rc->address, notify, strempty(orcpt));
}

/* send_content - the message between DATA's 354 and the final ".", CRLF and dot-stuffed */
static int send_content(Delivery *d, SmtpSession *s)
{
        _cleanup_(freep) char *out = malloc(2 * SMTP_DATA_CHUNK + 8);
        SmtpDataEncoder e;
        int r;

        if (!out)
                return -ENOMEM;
        smtp_data_encoder_init(&e);
        for (size_t off = 0; off < d->content_len; off += SMTP_DATA_CHUNK) {
                size_t n = MIN((size_t) SMTP_DATA_CHUNK, d->content_len - off);

                r = smtp_session_queue_raw(s, out, smtp_data_encode(&e, d->content + off, n, out));
                if (r >= 0)
                        r = smtp_session_flush(s, d->cfg->data_xfer_timeout);
                if (r < 0)
                        return r;
        }
        r = smtp_session_queue_raw(s, out, smtp_data_finish(&e, out));
        return r < 0 ? r : smtp_session_flush(s, d->cfg->data_xfer_timeout);
}

/* lost - the session failed (R) while STAGE: every recipient of the transaction still open
 * (ACTIVE) fails softly */
static void lost(Delivery *d, SmtpSession *s, int r, const char *reason, const char *stage,
                 const bool *active, bool final)
{
        SmtpWhy why;

        smtp_session_fail(s, r, reason, stage, &why);
        for (size_t i = 0; i < d->req->n_recipients; i++)
                if (active[i] && !d->done[i])
                        fail(d, i, &why, s->relay, final);
        remember(d, &why, s->relay);
}

/*
 * transaction - MAIL, RCPT for every recipient still open, DATA, the content, and the replies,
 * pipelined when the server allows. The session is left ready for another transaction (RSET
 * after a failed one) or marked broken.
 */
static void transaction(Delivery *d, SmtpSession *s, bool final)
{
        const DeliveryRequest *req = d->req;
        const bool pipelining = s->features.flags & SMTP_FEATURE_PIPELINING;
        _cleanup_(freep) bool *active = calloc(req->n_recipients, sizeof(bool));
        _cleanup_(freep) size_t *accepted = calloc(req->n_recipients, sizeof(size_t));
        size_t n_active = 0, n_accepted = 0;
        SmtpReply reply = {};
        const char *reason = NULL;
        bool mail_ok, aborted = false;
        SmtpWhy why;
        int r;

        if (!active || !accepted) {
                smtp_why_set(&d->last, "4.3.0", "out of memory");
                return;
        }
        if ((s->features.flags & SMTP_FEATURE_SIZE) && s->features.size_limit > 0 &&
            (uint64_t) req->size > s->features.size_limit) {
                smtp_why_set(&why, "5.3.4",
                             "message size %" PRId64 " exceeds size limit %" PRIu64 " of server %s[%s]",
                             req->size, s->features.size_limit, s->port ? s->host : s->addr, s->addr);
                for (size_t i = 0; i < req->n_recipients; i++)
                        fail(d, i, &why, s->relay, final);
                d->answered = true;
                return;
        }
        for (size_t i = 0; i < req->n_recipients; i++)
                if (!d->done[i]) {
                        active[i] = true;
                        n_active++;
                }
        if (n_active == 0)
                return;

        /* MAIL */
        r = queue_mail(d, s);
        if (r >= 0 && !pipelining)
                r = smtp_session_flush(s, d->cfg->mail_timeout);
        if (r >= 0 && !pipelining)
                r = smtp_session_reply(s, d->cfg->mail_timeout, &reply, &reason);
        if (r >= 0 && pipelining) {
                for (size_t i = 0; r >= 0 && i < req->n_recipients; i++)
                        if (active[i])
                                r = queue_rcpt(d, s, &req->recipients[i]);
                if (r >= 0)
                        r = smtp_session_queue(s, "DATA");
                if (r >= 0)
                        r = smtp_session_flush(s, d->cfg->rcpt_timeout);
                if (r >= 0)
                        r = smtp_session_reply(s, d->cfg->mail_timeout, &reply, &reason);
        }
        if (r < 0)
                return lost(d, s, r, reason, "sending MAIL FROM", active, final);
        d->answered = true;
        mail_ok = reply.code / 100 == 2;
        if (!mail_ok) {
                said(&why, s, &reply, "MAIL FROM");
                for (size_t i = 0; i < req->n_recipients; i++)
                        if (active[i])
                                fail(d, i, &why, s->relay, final);
                aborted = true;
        }
        smtp_reply_done(&reply);

        /* RCPT: each reply in turn (sent already when pipelining) */
        for (size_t i = 0; i < req->n_recipients; i++) {
                if (!active[i])
                        continue;
                if (!pipelining) {
                        if (!mail_ok)
                                break;
                        r = queue_rcpt(d, s, &req->recipients[i]);
                        if (r >= 0)
                                r = smtp_session_flush(s, d->cfg->rcpt_timeout);
                }
                if (r >= 0)
                        r = smtp_session_reply(s, d->cfg->rcpt_timeout, &reply, &reason);
                if (r < 0)
                        return lost(d, s, r, reason, "sending RCPT TO", active, final);
                if (mail_ok && reply.code / 100 == 2)
                        accepted[n_accepted++] = i;
                else if (mail_ok) {
                        said(&why, s, &reply, "RCPT TO");
                        fail(d, i, &why, s->relay, final);
                }
                smtp_reply_done(&reply);
        }

        /* DATA (sent already when pipelining, whatever became of MAIL and RCPT) */
        if (pipelining || (mail_ok && n_accepted > 0)) {
                if (!pipelining) {
                        r = smtp_session_queue(s, "DATA");
                        if (r >= 0)
                                r = smtp_session_flush(s, d->cfg->data_init_timeout);
                }
                if (r >= 0)
                        r = smtp_session_reply(s, d->cfg->data_init_timeout, &reply, &reason);
                if (r < 0)
                        return lost(d, s, r, reason, "sending DATA command", active, final);
                if (reply.code == 354 && (!mail_ok || n_accepted == 0)) {
                        /* a server that opens DATA with nobody to deliver to: out of step */
                        smtp_reply_done(&reply);
                        s->broken = true;
                        return;
                }
                if (reply.code != 354 && mail_ok && n_accepted > 0) {
                        said(&why, s, &reply, "DATA");
                        for (size_t k = 0; k < n_accepted; k++)
                                fail(d, accepted[k], &why, s->relay, final);
                        aborted = true;
                }
                smtp_reply_done(&reply);
                if (aborted || !mail_ok || n_accepted == 0)
                        goto reset;

                /* the content and the end of DATA */
                r = send_content(d, s);
                if (r < 0)
                        return lost(d, s, r, reason, "sending message body", active, final);
                for (size_t k = 0; k < (d->cfg->lmtp ? n_accepted : 1); k++) {
                        r = smtp_session_reply(s, d->cfg->data_done_timeout, &reply, &reason);
                        if (r < 0)
                                return lost(d, s, r, reason,
                                            "sending end of data -- message may be sent more than once",
                                            active, final);
                        if (reply.code / 100 == 2) {
                                for (size_t j = d->cfg->lmtp ? k : 0;
                                     j < (d->cfg->lmtp ? k + 1 : n_accepted); j++)
                                        result(d, accepted[j], DELIVERY_SENT, reply.dsn, s->relay,
                                               reply.text);
                        } else {
                                said(&why, s, &reply, "end of DATA");
                                for (size_t j = d->cfg->lmtp ? k : 0;
                                     j < (d->cfg->lmtp ? k + 1 : n_accepted); j++)
                                        fail(d, accepted[j], &why, s->relay, final);
                        }
                        smtp_reply_done(&reply);
                }
                return;
        }
reset:
        /* a transaction that ended early: RSET, so that the session may be used again */
        if (d->cache_store && !s->broken)
                (void) smtp_session_rset(s, d->cfg);
}

/* ---- servers ------------------------------------------------------------------------------ */

/* destination_text - D as a request writes it: "example.com", "[10.0.0.1]:2525", "unix:/path" */
static int destination_text(const Delivery *d, const SmtpNexthop *n, char **ret)
{
        uint16_t def = d->cfg->lmtp ? 24 : 25;
        int k;

        if (n->unix_path)
                k = asprintf(ret, "unix:%s", n->unix_path);
        else if (n->port != def)
                k = asprintf(ret, n->mx ? "%s:%u" : "[%s]:%u", n->host, n->port);
        else
                k = asprintf(ret, n->mx ? "%s" : "[%s]", n->host);
        return k < 0 ? -ENOMEM : 0;
}

/*
 * use_session - deliver over S (connected and greeted, or from the cache), then save it to the
 * cache or end it
 */
static void use_session(Delivery *d, SmtpSession *s, int64_t conn_done, const char *dest_label,
                        const char *destination, bool final)
{
        d->sessions++;
        delivery_job_set_conn(d->job, conn_done, s->reuse_count + 1);
        transaction(d, s, final);
        if (d->cache_store) {
                /* the first good session is bound to the destination; later ones (less preferred
                 * servers) are saved under their endpoint only */
                if (smtp_cache_save(d->cache, s, d->dest_saved ? NULL : dest_label, destination))
                        d->dest_saved = true;
        } else {
                smtp_session_quit(s);
                smtp_session_free(s);
        }
}

/* session_limit_reached - smtp_mx_session_limit sessions were had */
static bool session_limit_reached(const Delivery *d)
{
        return d->cfg->mx_session_limit > 0 && d->sessions >= d->cfg->mx_session_limit;
}

static void try_destination(Delivery *d, const SmtpNexthop *n, bool last_destination)
{
        _cleanup_(freep) char *destination = NULL, *dest_label = NULL;
        SmtpServer *servers = NULL;
        size_t n_servers = 0;
        SmtpSession *s = NULL;
        SmtpWhy why;
        int r;

        if (destination_text(d, n, &destination) < 0 ||
            smtp_cache_dest_label(d->cfg->service, destination, &dest_label) < 0) {
                smtp_why_set(&d->last, "4.3.0", "out of memory");
                return;
        }
        if (n->unix_path) {
                r = smtp_session_connect_unix(d->cfg, n->unix_path, &s, &why);
                if (r >= 0)
                        r = smtp_session_hello(s, d->cfg, &why);
                if (r < 0) {
                        remember(d, &why, s ? s->relay : "none");
                        smtp_session_free(s);
                        return;
                }
                /* never cached: a UNIX-domain session has no endpoint label */
                use_session(d, s, now_epoch_usec(), dest_label, destination, last_destination);
                return;
        }

        /* a session cached for this destination, from any process */
        if (d->cache_load) {
                s = smtp_cache_find_dest(d->cache, dest_label);
                if (s) {
                        use_session(d, s, now_epoch_usec(), dest_label, destination, false);
                        if (d->left == 0 || session_limit_reached(d))
                                return;
                }
        }

        r = smtp_resolve(d->cfg, n, &servers, &n_servers, &why);
        if (r < 0) {
                remember(d, &why, "none");
                return;
        }
        for (size_t j = 0; j < n_servers && d->left > 0 && !session_limit_reached(d); j++) {
                const SmtpServer *sv = &servers[j];
                bool final = last_destination &&
                             (j + 1 == n_servers ||
                              (d->cfg->mx_session_limit > 0 && d->sessions + 1 >= d->cfg->mx_session_limit));
                char addr[INET6_ADDRSTRLEN];

                s = NULL;
                if (d->cache_load && inet_ntop(sv->addr.family, &sv->addr.in6, addr, sizeof(addr))) {
                        _cleanup_(freep) char *endp_label = NULL;

                        if (smtp_cache_endp_label(d->cfg->service, addr, sv->port, &endp_label) >= 0)
                                s = smtp_cache_find_endp(d->cache, endp_label);
                }
                if (s) {
                        use_session(d, s, now_epoch_usec(), dest_label, destination, final);
                        continue;
                }
                r = smtp_session_connect(d->cfg, sv->host, &sv->addr, sv->port, &s, &why);
                if (r < 0) {
                        /* Postfix's info line for a server passed over: "connect to H[A]:P: ..." */
                        if (!final)
                                log_info("%s", why.text);
                        remember(d, &why, "none");
                        continue;
                }
                s->expire_time = time(NULL) + d->cfg->reuse_time_limit;
                r = smtp_session_hello(s, d->cfg, &why);
                if (r < 0) {
                        if (!final) /* "QID: host H[A] refused to talk to me: ..." */
                                log_info("%s: %s", d->req->queue_id, why.text);
                        /* not a session for smtp_mx_session_limit: it never completed its
                         * handshake (Postfix 2.3 and later) */
                        remember(d, &why, s->relay);
                        /* a 5XX HELO on the last server bounces; anything else waits for the next */
                        if (final && why.dsn[0] == '5')
                                for (size_t i = 0; i < d->req->n_recipients; i++)
                                        fail(d, i, &why, s->relay, true);
                        smtp_session_quit(s);
                        smtp_session_free(s);
                        continue;
                }
                use_session(d, s, now_epoch_usec(), dest_label, destination, final);
        }
        smtp_server_free_array(servers, n_servers);
}

/* cache_policy - Postfix's smtp_cache_policy(): always for smtp_connection_cache_destinations,
 * else as qmgr asks when smtp_connection_cache_on_demand is on */
static void cache_policy(Delivery *d, const SmtpNexthop *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (list[i].host && conf_list_contains(d->cfg->cache_destinations, list[i].host)) {
                        d->cache_load = d->cache_store = true;
                        return;
                }
        if (d->cfg->cache_on_demand) {
                d->cache_load = d->req->conn_cache_load;
                d->cache_store = d->req->conn_cache_store;
        }
}

void smtp_deliver(DeliveryJob *job, const SmtpConfig *cfg, SmtpCache *cache)
{
        const DeliveryRequest *req = delivery_job_request(job);
        Delivery d = {.job = job, .req = req, .cfg = cfg, .cache = cache, .left = req->n_recipients};
        SmtpNexthop *list = NULL;
        size_t n = 0;
        const char *reason = NULL;
        int r;

        d.done = calloc(req->n_recipients, sizeof(bool));
        if (!d.done) {
                (void) delivery_job_result_all(job, DELIVERY_DEFERRED, "4.3.0", "none", "out of memory");
                (void) delivery_job_finish(job);
                return;
        }
        smtp_why_set(&d.last, "4.4.0", "no server was tried");
        snprintf(d.last_relay, sizeof(d.last_relay), "none");

        r = read_message(&d, &reason);
        if (r < 0) {
                smtp_why_set(&d.last, "4.3.0", "error reading message: %s", strna(reason));
                d.local_failure = true;
                log_warning("%s: error reading message: %s", req->queue_id, strna(reason));
                goto done;
        }
        r = smtp_nexthop_parse_list(req->nexthop, cfg->lmtp, &list, &n, &reason);
        if (r < 0) {
                smtp_why_set(&d.last, "4.3.5", "mail system configuration error: bad destination \"%s\": %s",
                             req->nexthop, strna(reason));
                log_warning("%s: bad destination \"%s\": %s", req->queue_id, req->nexthop, strna(reason));
                d.local_failure = true;
                goto done;
        }
        cache_policy(&d, list, n);
        for (size_t i = 0; i < n && d.left > 0; i++) {
                d.sessions = 0; /* Postfix counts sessions per destination */
                try_destination(&d, &list[i], i + 1 == n);
        }

done:
        if (d.left > 0) {
                /* what is left gets the latest failure: a hard one bounces, anything else defers */
                DeliveryStatus st = d.last.dsn[0] == '5' ? DELIVERY_BOUNCED : DELIVERY_DEFERRED;

                for (size_t i = 0; i < req->n_recipients; i++)
                        result(&d, i, st, d.last.dsn, d.last_relay, d.last.text);
                /* the destination itself failed (not this host): qmgr throttles it */
                if (!d.answered && !d.local_failure && d.last.dsn[0] == '4')
                        (void) delivery_job_hop_status(job, d.last.dsn, d.last.text);
        }
        (void) delivery_job_finish(job);
        smtp_nexthop_free_array(list, n);
        free(d.content);
        free(d.done);
}
