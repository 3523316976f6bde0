/* SPDX-License-Identifier: MIT */
/*
 * smtpd-session.c - one SMTP session: the dialogue of Postfix's smtpd(8), event-driven
 *
 * A session is a small state machine on the server's event loop:
 *   LOOKUP  the client's name is being looked up (smtpd-peer.c); nothing is read yet
 *   COMMAND commands, pipelined or not
 *   DATA    message content, line by line into cleanup (src/lib/cleanup.c)
 *   WAIT    our own work: the group commit of a message, an ETRN's call to tern-flush, or the
 *           pause after too many errors; input stays unread in the buffer until it is done
 *   CLOSING the last reply is being written; then the session ends
 * Replies to pipelined commands are collected and written when the input buffer is drained
 * (Postfix's smtp_flush rule), or before the session waits. A client that does not read its
 * replies stops being read (SMTPD_OUTPUT_MAX); smtpd_timeout bounds every wait for the client.
 *
 * Durability: the queue file is created at the first accepted RCPT (its ID goes into the log's
 * "ID: client=" line, as Postfix's cleanup is opened then), written at the end of DATA, and the
 * 250 is sent only after the group commit (queue-commit.h) made it durable. A session that ends
 * any other way leaves no file behind.
 *
 * Log lines are Postfix's (smtpd.c, smtpd_check.c): connect from, ID: client=, NOQUEUE: reject:,
 * lost connection / timeout / too many errors after X from, disconnect from ... commands=N.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "cleanup.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "smtpd-peer.h"
#include "smtpd-proto.h"
#include "smtpd.h"
#include "varlink.h"

/* One read from the client. */
#define SMTPD_READ_CHUNK (64U * 1024U)
/* Replies not yet taken by the client before we stop reading its commands. */
#define SMTPD_OUTPUT_MAX (256U * 1024U)
/* The longest command argument kept (an ESMTP MAIL line is at most 512 + parameters). */
#define SMTPD_ARG_MAX 4096U

typedef enum SessionState {
        ST_LOOKUP,
        ST_COMMAND,
        ST_DATA,
        ST_WAIT,
        ST_CLOSING,
} SessionState;

/* smtpd_forbid_bare_newline = reject (smtpd.c's "550 5.5.2 Error: bare <LF> received") */
static const SmtpdReply bare_lf_reply = { .code = 550, .dsn = "5.5.2", .text = "Error: bare <LF> received" };

/* Postfix's command table order, for the disconnect line */
static const SmtpdVerb stats_order[] = {
        SMTPD_HELO, SMTPD_EHLO, SMTPD_MAIL, SMTPD_RCPT, SMTPD_DATA, SMTPD_RSET, SMTPD_NOOP,
        SMTPD_VRFY, SMTPD_ETRN, SMTPD_HELP, SMTPD_QUIT, SMTPD_UNKNOWN,
};

/* what "after X" names in the log: Postfix's command names */
static const char *const verb_where[] = {
        [SMTPD_HELO] = "HELO", [SMTPD_EHLO] = "EHLO", [SMTPD_MAIL] = "MAIL", [SMTPD_RCPT] = "RCPT",
        [SMTPD_DATA] = "DATA", [SMTPD_RSET] = "RSET", [SMTPD_NOOP] = "NOOP", [SMTPD_QUIT] = "QUIT",
        [SMTPD_VRFY] = "VRFY", [SMTPD_HELP] = "HELP", [SMTPD_ETRN] = "ETRN", [SMTPD_UNKNOWN] = "UNKNOWN",
};

struct SmtpdSession {
        Smtpd *d;
        SmtpdSession *prev, *next;
        int fd;
        sd_event_source *io, *timer, *resume;
        uint32_t io_events;
        SessionState state;
        SmtpdPeerLookup *lookup;

        /* the client */
        int family;
        uint8_t addr[16];
        char addr_text[INET6_ADDRSTRLEN];
        char name[DOMAIN_NAME_MAX + 1];
        char namaddr[DOMAIN_NAME_MAX + INET6_ADDRSTRLEN + 4];
        bool in_mynetworks, bare_lf_excluded, rewrite_headers;
        char *helo;
        const char *protocol;           /* "SMTP", "ESMTP" */

        /* input */
        SmtpdLineReader *reader;
        char *in;
        size_t in_start, in_end;
        bool eof;

        /* output */
        char *out;
        size_t out_len, out_alloc, out_sent;

        /* the transaction */
        bool in_mail;
        char *sender;
        size_t n_rcpt;
        Cleanup *cleanup;
        QueueNew *qnew;
        QueueCommitWaiter waiter;
        bool committing;
        bool data_in_piece;             /* the last DATA line was a piece: the next continues it */
        bool data_prev_crlf;            /* the last DATA line ended with CRLF (the end needs it) */
        bool data_bare_lf;              /* smtpd_forbid_bare_newline = reject saw one */
        int data_error;                 /* content refused: answered at the end of DATA */
        uint64_t data_bytes;

        /* ETRN: the call to tern-flush under way (its callback ignores any other client) */
        VarlinkClient *flush;
        char etrn_site[DOMAIN_NAME_MAX + 3];

        /* counters */
        unsigned cmd_ok[SMTPD_UNKNOWN + 1], cmd_all[SMTPD_UNKNOWN + 1];
        unsigned error_count, junk_cmds;
        const char *where;              /* "CONNECT", "EHLO", "DATA", "END-OF-MESSAGE" */
        bool pause_done;                /* the soft error limit's pause before this command is over */
        bool holding;                   /* HELD is a command waiting for that pause */
        SmtpdLine held;                 /* points into the line reader, which is not called meanwhile */
        unsigned rcpt_overshoot;        /* 452 "too many recipients" replies so far */
};

static void session_update(SmtpdSession *s);
static void session_process(SmtpdSession *s);

/* ---- output ------------------------------------------------------------------------------ */

static void out_append(SmtpdSession *s, const char *text, size_t n)
{
        if (s->out_len + n > s->out_alloc) {
                size_t na = MAX(s->out_alloc * 2, s->out_len + n + 512);
                char *p = realloc(s->out, na);

                if (!p) {
                        /* Out of memory: the client loses this reply; its session ends. */
                        s->state = ST_CLOSING;
                        s->eof = true;
                        return;
                }
                s->out = p;
                s->out_alloc = na;
        }
        memcpy(s->out + s->out_len, text, n);
        s->out_len += n;
}

/* reply_full - one reply line "CODE[-| ]DSN TEXT\r\n" (MORE: "CODE-"); a final 4XX or 5XX
 * counts as an error of the session (Postfix counts the commands that fail, which is the same
 * but for the recipient overshoot, see cmd_rcpt) */
static void _printf_(4, 5) reply_full(SmtpdSession *s, int code, bool more, const char *format, ...)
{
        char line[1024];
        int n = snprintf(line, sizeof(line), "%d%c", code, more ? '-' : ' ');
        va_list ap;

        va_start(ap, format);
        n += vsnprintf(line + n, sizeof(line) - n - 2, format, ap);
        va_end(ap);
        if (n > (int) sizeof(line) - 3)
                n = sizeof(line) - 3;
        line[n++] = '\r';
        line[n++] = '\n';
        out_append(s, line, n);
        if (code >= 400 && !more)
                s->error_count++;
}
#define reply(s, code, ...) reply_full((s), (code), false, __VA_ARGS__)

/* reply_smtpd - an SmtpdReply from the pure code */
static void reply_smtpd(SmtpdSession *s, const SmtpdReply *r)
{
        if (isempty(r->dsn))
                reply(s, r->code, "%s", r->text);
        else
                reply(s, r->code, "%s %s", r->dsn, r->text);
}

/* flush_output - write what the client will take now; false when the connection broke */
static bool flush_output(SmtpdSession *s)
{
        while (s->out_sent < s->out_len) {
                ssize_t k = send(s->fd, s->out + s->out_sent, s->out_len - s->out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return true;
                if (k < 0)
                        return false;
                s->out_sent += (size_t) k;
        }
        s->out_sent = s->out_len = 0;
        return true;
}

/* ---- logging ----------------------------------------------------------------------------- */

static const char *session_queue_id(const SmtpdSession *s)
{
        return s->qnew ? queue_new_id(s->qnew) : "NOQUEUE";
}

/* log_session - an info or warning line with the client's fields (TERN_CLIENT=, TERN_QUEUE_ID=) */
static void _printf_(3, 4) log_session(SmtpdSession *s, int priority, const char *format, ...)
{
        char client[sizeof(s->namaddr) + 16], qid[64], text[2048];
        va_list ap;

        va_start(ap, format);
        vsnprintf(text, sizeof(text), format, ap);
        va_end(ap);
        snprintf(client, sizeof(client), "TERN_CLIENT=%s", s->namaddr);
        if (s->qnew) {
                snprintf(qid, sizeof(qid), "TERN_QUEUE_ID=%s", queue_new_id(s->qnew));
                log_full_errno(priority, 0, LOG_FIELDS(client, qid), "%s", text);
        } else
                log_full_errno(priority, 0, LOG_FIELDS(client), "%s", text);
}

/* log_reject - Postfix's log_whatsup(): "ID: reject: RCPT from host[addr]: REPLY; from=<> to=<>
 * proto=ESMTP helo=<h>" */
static void log_reject(SmtpdSession *s, const char *what, const char *where, const SmtpdReply *r,
                       const char *recipient)
{
        char buf[1536];
        int n;

        n = snprintf(buf, sizeof(buf), "%s: %s: %s from %s: %d %s%s%s;", session_queue_id(s), what, where,
                     s->namaddr, r->code, strempty(r->dsn), isempty(r->dsn) ? "" : " ", r->text);
        if (s->sender && n < (int) sizeof(buf))
                n += snprintf(buf + n, sizeof(buf) - n, " from=<%s>", s->sender);
        if (recipient && n < (int) sizeof(buf))
                n += snprintf(buf + n, sizeof(buf) - n, " to=<%s>", recipient);
        if (n < (int) sizeof(buf))
                n += snprintf(buf + n, sizeof(buf) - n, " proto=%s", s->protocol);
        if (s->helo && n < (int) sizeof(buf))
                snprintf(buf + n, sizeof(buf) - n, " helo=<%s>", s->helo);
        log_session(s, LOG_INFO, "%s", buf);
}

/* log_disconnect - "disconnect from host[addr] ehlo=1 mail=1 rcpt=0/1 ... commands=2/3" */
static void log_disconnect(SmtpdSession *s)
{
        char buf[512];
        unsigned ok = 0, all = 0;
        int n = snprintf(buf, sizeof(buf), "disconnect from %s", s->namaddr);

        for (size_t i = 0; i < ELEMENTSOF(stats_order); i++) {
                SmtpdVerb v = stats_order[i];

                if (s->cmd_all[v] == 0)
                        continue;
                n += snprintf(buf + n, sizeof(buf) - n, " %s=%u", smtpd_verb_name(v), s->cmd_ok[v]);
                if (s->cmd_ok[v] != s->cmd_all[v])
                        n += snprintf(buf + n, sizeof(buf) - n, "/%u", s->cmd_all[v]);
                ok += s->cmd_ok[v];
                all += s->cmd_all[v];
        }
        n += snprintf(buf + n, sizeof(buf) - n, " commands=%u", ok);
        if (ok != all || all == 0)
                snprintf(buf + n, sizeof(buf) - n, "/%u", all);
        log_session(s, LOG_INFO, "%s", buf);
}

/* ---- the session's life ------------------------------------------------------------------- */

/* transaction_reset - forget the envelope and any message under way (RSET, HELO, the end) */
static void transaction_reset(SmtpdSession *s)
{
        if (s->committing) {
                queue_commit_leave(s->d->committer, &s->waiter);
                s->committing = false;
        }
        s->in_mail = false;
        s->sender = mfree(s->sender);
        s->n_rcpt = 0;
        s->cleanup = cleanup_free(s->cleanup);
        s->qnew = queue_new_free(s->qnew);      /* an uncommitted file goes */
        s->data_error = 0;
        s->data_in_piece = false;
        s->data_bare_lf = false;
        s->data_bytes = 0;
}

/* etrn_drop - forget the call to tern-flush; its callback, run now or later, is not ours */
static void etrn_drop(SmtpdSession *s)
{
        varlink_client_free(TAKE_PTR(s->flush));
}

/* etrn_unreachable - §1.11: whatever went wrong talking to tern-flush */
static void etrn_unreachable(SmtpdSession *s)
{
        log_warning("unable to talk to fast flush service");
        reply(s, 458, "Unable to queue messages");
}

static void session_free(SmtpdSession *s)
{
        Smtpd *d = s->d;

        if (s->lookup)
                smtpd_peer_lookup_abandon(s->lookup);
        etrn_drop(s);
        transaction_reset(s);
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->resume);
        safe_close(s->fd);
        smtpd_line_reader_free(s->reader);
        free(s->in);
        free(s->out);
        free(s->helo);
        if (s->prev)
                s->prev->next = s->next;
        else
                d->sessions = s->next;
        if (s->next)
                s->next->prev = s->prev;
        d->n_sessions--;
        free(s);
        if (d->session_ended)
                d->session_ended(d);
}

/* session_end - log the end and free the session */
static void session_end(SmtpdSession *s)
{
        if (s->state != ST_LOOKUP)
                log_disconnect(s);
        session_free(s);
}

/* session_lost - the client went away or broke the connection */
static void session_lost(SmtpdSession *s)
{
        if (s->state == ST_DATA)
                log_session(s, LOG_INFO, "lost connection after DATA (%" PRIu64 " bytes) from %s", s->data_bytes,
                            s->namaddr);
        else
                log_session(s, LOG_INFO, "lost connection after %s from %s", s->where, s->namaddr);
        session_end(s);
}

static int on_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
        SmtpdSession *s = userdata;

        if (s->state == ST_WAIT && s->flush) {
                /* tern-flush did not answer in time */
                etrn_drop(s);
                etrn_unreachable(s);
                s->state = ST_COMMAND;
                session_update(s);
                return 0;
        }
        if (s->state == ST_CLOSING) {
                /* the client does not take its last replies */
                session_end(s);
                return 0;
        }
        if (s->state == ST_DATA)
                log_session(s, LOG_INFO, "timeout after DATA (%" PRIu64 " bytes) from %s", s->data_bytes,
                            s->namaddr);
        else
                log_session(s, LOG_INFO, "timeout after %s from %s", s->where, s->namaddr);
        s->out_len = s->out_sent = 0;
        reply(s, 421, "4.4.2 %s Error: timeout exceeded", s->d->myhostname);
        /* one try to say so, then the end: waiting longer is what timed out */
        (void) flush_output(s);
        session_end(s);
        return 0;
}

static int on_resume(sd_event_source *source, uint64_t usec, void *userdata)
{
        SmtpdSession *s = userdata;

        s->resume = sd_event_source_disable_unref(s->resume);
        if (s->state == ST_WAIT) {
                s->state = ST_COMMAND;
                s->pause_done = true;
        }
        session_update(s);
        return 0;
}

/* session_pause - the soft error limit: smtpd_error_sleep_time before the next command */
static void session_pause(SmtpdSession *s)
{
        uint64_t now;

        (void) sd_event_now(s->d->event, CLOCK_MONOTONIC, &now);
        if (sd_event_add_time(s->d->event, &s->resume, CLOCK_MONOTONIC, now + s->d->error_sleep_usec, 0, on_resume,
                              s) < 0) {
                s->pause_done = true;   /* no pause then */
                return;
        }
        s->state = ST_WAIT;
}

/* session_update - after any change: write, read or wait, arm the timer, or end */
static void session_update(SmtpdSession *s)
{
        uint32_t events = 0;
        uint64_t now;

        if (s->state == ST_COMMAND || s->state == ST_DATA)
                session_process(s);
        if (!flush_output(s)) {
                session_lost(s);
                return;
        }
        if (s->eof && (s->state == ST_COMMAND || s->state == ST_DATA)) {
                session_lost(s);
                return;
        }

        if (s->state == ST_CLOSING && s->out_len == 0) {
                session_end(s);
                return;
        }

        if (s->out_len > 0)
                events |= EPOLLOUT;
        if ((s->state == ST_COMMAND || s->state == ST_DATA) && s->out_len < SMTPD_OUTPUT_MAX && !s->eof)
                events |= EPOLLIN;
        if (events != s->io_events) {
                if (sd_event_source_set_io_events(s->io, events) < 0 ||
                    sd_event_source_set_enabled(s->io, events ? SD_EVENT_ON : SD_EVENT_OFF) < 0) {
                        session_lost(s);
                        return;
                }
                s->io_events = events;
        }

        /* smtpd_timeout: while we wait for the client (to send, or to take our replies) */
        if (events != 0 || (s->state == ST_WAIT && s->flush)) {
                (void) sd_event_now(s->d->event, CLOCK_MONOTONIC, &now);
                (void) sd_event_source_set_time(s->timer, now + s->d->timeout_usec);
                (void) sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        SmtpdSession *s = userdata;

        if (revents & EPOLLIN) {
                if (s->in_start == s->in_end)
                        s->in_start = s->in_end = 0;
                if (s->in_end < SMTPD_READ_CHUNK) {
                        ssize_t k = recv(fd, s->in + s->in_end, SMTPD_READ_CHUNK - s->in_end, MSG_DONTWAIT);

                        if (k > 0)
                                s->in_end += (size_t) k;
                        else if (k == 0 || (errno != EAGAIN && errno != EINTR))
                                s->eof = true;
                }
        } else if (revents & (EPOLLHUP | EPOLLERR))
                s->eof = true;
        session_update(s);
        return 0;
}

/* ---- access checks ------------------------------------------------------------------------ */

static SmtpdCheck check_base(const SmtpdSession *s, SmtpdStage stage, const char *object)
{
        return (SmtpdCheck){
                .stage = stage,
                .client_in_mynetworks = s->in_mynetworks,
                .client_name = s->name,
                .client_addr = s->addr_text,
                .object = object,
                .tables = (const SmtpdAccessTable *const *) s->d->tables,
                .table_names = s->d->table_names,
        };
}

/*
 * check_list - LIST for CHECK; on a reject or defer the reply is sent and logged ("reject" at
 * WHERE, with RECIPIENT), and false returned. warn_if_reject's replies are logged as
 * "reject_warning".
 */
static bool check_list(SmtpdSession *s, char *const *list, const SmtpdCheck *check, const char *where,
                       const char *recipient)
{
        char buf[SMTPD_REPLY_TEXT_MAX * 4];
        SmtpdReply r;
        SmtpdVerdict v;

        if (!list || !*list)
                return true;
        v = smtpd_restrictions_eval(list, check, buf, sizeof(buf), &r);
        if (v == SMTPD_REJECT || v == SMTPD_DEFER) {
                log_reject(s, "reject", where, &r, recipient);
                reply_smtpd(s, &r);
                return false;
        }
        if (r.code != 0)
                log_reject(s, "reject_warning", where, &r, recipient);
        return true;
}

/* check_client_helo - smtpd_client_restrictions and smtpd_helo_restrictions, at WHERE */
static bool check_client_helo(SmtpdSession *s, const char *where, const char *recipient)
{
        SmtpdCheck ck = check_base(s, SMTPD_STAGE_CLIENT, s->namaddr);

        if (!check_list(s, s->d->client_restrictions, &ck, where, recipient))
                return false;
        if (!s->helo)
                return true;
        ck = check_base(s, SMTPD_STAGE_HELO, s->helo);
        return check_list(s, s->d->helo_restrictions, &ck, where, recipient);
}

/* ---- commands ----------------------------------------------------------------------------- */

static bool all_ascii(const char *p)
{
        for (; *p; p++)
                if ((unsigned char) *p >= 0x80)
                        return false;
        return true;
}

/* helo_missing - smtpd_helo_required and no HELO yet: 503 (TEXT: with or without the dsn) */
static bool helo_missing(SmtpdSession *s, bool with_dsn)
{
        if (!s->d->helo_required || s->helo)
                return false;
        reply(s, 503, "%sError: send HELO/EHLO first", with_dsn ? "5.5.1 " : "");
        return true;
}

/*
 * helo_neuter - the HELO/EHLO argument as Postfix keeps it (helo_cmd): its words joined by one
 * space, what is not printable ASCII made '?', then each of " <>()\\\";@" made '?', so that it
 * cannot forge a part of our Received: header or break a log line. malloc'ed.
 */
static char *helo_neuter(const char *arg)
{
        char *h = malloc(strlen(arg) + 1), *o = h;

        if (!h)
                return NULL;
        for (const char *p = arg; *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f') {
                        while (p[1] == ' ' || p[1] == '\t' || p[1] == '\r' || p[1] == '\n' || p[1] == '\v' ||
                               p[1] == '\f')
                                p++;
                        *o++ = '?';     /* the joining space, neutered */
                } else if (c < 0x20 || c >= 0x7f || strchr("<>()\\\";@", c))
                        *o++ = '?';
                else
                        *o++ = (char) c;
        }
        *o = '\0';
        return h;
}

static bool ehlo_keyword(const SmtpdSession *s, const char *kw)
{
        return !conf_list_contains(s->d->discard_ehlo_keywords, kw);
}

static bool cmd_helo(SmtpdSession *s, SmtpdVerb verb, const char *arg)
{
        const Smtpd *d = s->d;

        if (!*arg) {
                reply(s, 501, "Syntax: %s hostname", verb == SMTPD_EHLO ? "EHLO" : "HELO");
                return false;
        }
        transaction_reset(s);
        free(s->helo);
        s->helo = helo_neuter(arg);
        if (!s->helo) {
                reply(s, 451, "4.3.0 Error: out of memory");
                return false;
        }
        s->protocol = verb == SMTPD_EHLO ? "ESMTP" : "SMTP";
        if (!d->delay_reject) {
                SmtpdCheck ck = check_base(s, SMTPD_STAGE_HELO, s->helo);
                if (!check_list(s, d->helo_restrictions, &ck, verb == SMTPD_EHLO ? "EHLO" : "HELO", NULL))
                        return false;
        }
        if (verb == SMTPD_HELO) {
                reply(s, 250, "%s", d->myhostname);
                return true;
        }

        /* Postfix's order; the last line is sent without '-' */
        const char *lines[10];
        char size[64];
        size_t n = 0;

        if (ehlo_keyword(s, "pipelining"))
                lines[n++] = "PIPELINING";
        if (ehlo_keyword(s, "size")) {
                if (d->message_size_limit > 0)
                        snprintf(size, sizeof(size), "SIZE %" PRIu64, d->message_size_limit);
                else
                        snprintf(size, sizeof(size), "SIZE");
                lines[n++] = size;
        }
        if (!d->disable_vrfy && ehlo_keyword(s, "vrfy"))
                lines[n++] = "VRFY";
        if (ehlo_keyword(s, "etrn"))
                lines[n++] = "ETRN";
        if (ehlo_keyword(s, "enhancedstatuscodes"))
                lines[n++] = "ENHANCEDSTATUSCODES";
        if (ehlo_keyword(s, "8bitmime"))
                lines[n++] = "8BITMIME";
        if (ehlo_keyword(s, "dsn"))
                lines[n++] = "DSN";
        reply_full(s, 250, n > 0, "%s", d->myhostname);
        for (size_t i = 0; i < n; i++)
                reply_full(s, 250, i + 1 < n, "%s", lines[i]);
        return true;
}

/* parse_path - MAIL's (IS_MAIL) or RCPT's argument into *PATH; false when refused (answered):
 * syntax, non-ASCII without SMTPUTF8, a leading '-' without allow_min_user */
static bool parse_path(SmtpdSession *s, bool is_mail, const char *arg, SmtpdPath *path)
{
        SmtpdReply r;
        int q = (is_mail ? smtpd_parse_mail : smtpd_parse_rcpt)(arg, s->d->strict_rfc821, path, &r);

        if (q == -ENOMEM) {
                reply(s, 451, "4.3.0 Error: out of memory");
                return false;
        }
        if (q < 0) {
                reply_smtpd(s, &r);
                return false;
        }
        if (!all_ascii(path->addr)) {
                reply(s, 553, "5.6.7 Must declare SMTPUTF8 to send unicode address");
                return false;
        }
        if (!s->d->allow_min_user && path->addr[0] == '-') {
                reply(s, 501, "%s", is_mail ? "5.1.7 Bad sender address syntax" : "5.1.3 Bad recipient address syntax");
                return false;
        }
        return true;
}

static bool cmd_mail(SmtpdSession *s, const char *arg)
{
        const Smtpd *d = s->d;
        _cleanup_(smtpd_path_done) SmtpdPath path = {};
        int q;

        if (helo_missing(s, true))
                return false;
        if (s->in_mail) {
                reply(s, 503, "5.5.1 Error: nested MAIL command");
                return false;
        }
        if (!parse_path(s, true, arg, &path))
                return false;
        if (d->message_size_limit > 0 && path.size > d->message_size_limit) {
                reply(s, 552, "5.3.4 Message size exceeds fixed limit");
                return false;
        }
        if (!d->delay_reject) {
                SmtpdCheck ck = check_base(s, SMTPD_STAGE_SENDER, path.addr);

                if (!check_client_helo(s, "MAIL", NULL) ||
                    !check_list(s, d->sender_restrictions, &ck, "MAIL", NULL))
                        return false;
        }

        CleanupOptions o = {
                .myhostname = d->myhostname,
                .myorigin = d->myorigin,
                .message_size_limit = d->message_size_limit,
                .recipient_limit = d->recipient_limit,
                .flags = CLEANUP_SMTP | CLEANUP_IGNORE_DOTS | (s->rewrite_headers ? 0 : CLEANUP_NO_ADD_HEADERS),
                .delay_warning_time = d->delay_warning_time,
                .log_client_name = s->name,
                .log_client_address = s->addr_text,
                .log_message_origin = s->namaddr,
                .log_helo_name = s->helo,
                .log_protocol_name = s->protocol,
                .dsn_envid = path.envid,
                .dsn_ret = path.ret,
        };
        q = cleanup_new(&o, &s->cleanup);
        if (q >= 0)
                q = cleanup_set_sender(s->cleanup, path.addr, NULL);
        if (q < 0) {
                s->cleanup = cleanup_free(s->cleanup);
                if (q == -EINVAL)
                        reply(s, 501, "5.1.7 Bad sender address syntax");
                else
                        reply(s, 451, "4.3.0 Error: out of memory");
                return false;
        }
        s->sender = strdup(cleanup_sender(s->cleanup));
        if (!s->sender) {
                transaction_reset(s);
                reply(s, 451, "4.3.0 Error: out of memory");
                return false;
        }
        s->in_mail = true;
        reply(s, 250, "2.1.0 Ok");
        return true;
}

static bool cmd_rcpt(SmtpdSession *s, const char *arg)
{
        const Smtpd *d = s->d;
        _cleanup_(smtpd_path_done) SmtpdPath path = {};
        SmtpdCheck ck;
        int q;

        if (!s->in_mail) {
                reply(s, 503, "5.5.1 Error: need MAIL command");
                return false;
        }
        if (s->n_rcpt >= d->recipient_limit) {
                /* smtpd_recipient_overshoot_limit: so many of these do not count as errors
                 * (Postfix's rcpt_cmd returns 0 for them), so that a long list still goes to
                 * the recipients accepted */
                bool error = s->rcpt_overshoot++ >= d->recipient_overshoot_limit;

                reply(s, 452, "4.5.3 Error: too many recipients");
                if (!error)
                        s->error_count--;
                return false;
        }
        if (!parse_path(s, false, arg, &path))
                return false;

        /* smtpd_delay_reject: the client, HELO and sender restrictions wait until now */
        if (d->delay_reject) {
                ck = check_base(s, SMTPD_STAGE_SENDER, s->sender);
                if (!check_client_helo(s, "RCPT", path.addr) ||
                    !check_list(s, d->sender_restrictions, &ck, "RCPT", path.addr))
                        return false;
        }
        ck = check_base(s, SMTPD_STAGE_RECIPIENT, path.addr);
        ck.dest = smtpd_rcpt_destination(&d->domains, path.addr, NULL, 0);
        if (!check_list(s, d->relay_restrictions, &ck, "RCPT", path.addr) ||
            !check_list(s, d->recipient_restrictions, &ck, "RCPT", path.addr))
                return false;

        if (!s->qnew) {
                q = queue_new(d->store, &s->qnew);
                if (q < 0) {
                        log_warning_errno(q, "cannot create a queue file: %m");
                        reply(s, 451, "4.3.0 Error: queue file write error");
                        return false;
                }
                log_session(s, LOG_INFO, "%s: client=%s", queue_new_id(s->qnew), s->namaddr);
        }
        q = cleanup_add_recipient_dsn(s->cleanup, path.addr, path.orcpt, path.notify);
        if (q == -E2BIG) {
                reply(s, 452, "4.5.3 Error: too many recipients");
                return false;
        }
        if (q < 0) {
                reply(s, q == -EINVAL ? 501 : 451, "%s",
                      q == -EINVAL ? "5.1.3 Bad recipient address syntax" : "4.3.0 Error: out of memory");
                return false;
        }
        s->n_rcpt++;
        reply(s, 250, "2.1.5 Ok");
        return true;
}

static bool cmd_data(SmtpdSession *s, const char *arg)
{
        if (!s->in_mail) {
                reply(s, 503, "5.5.1 Error: need RCPT command");
                return false;
        }
        if (s->n_rcpt == 0) {
                reply(s, 554, "5.5.1 Error: no valid recipients");
                return false;
        }
        if (*arg) {
                reply(s, 501, "5.5.4 Syntax: DATA");
                return false;
        }
        reply(s, 354, "End data with <CR><LF>.<CR><LF>");
        s->state = ST_DATA;
        s->where = "DATA";
        s->data_in_piece = false;
        s->data_prev_crlf = true;
        smtpd_line_reader_set_pieces(s->reader, true);
        return true;
}

/* on_committed - the group commit is done with our file */
static void on_committed(QueueCommitWaiter *w, int error)
{
        SmtpdSession *s = container_of(w, SmtpdSession, waiter);

        s->committing = false;
        if (error < 0) {
                log_session(s, LOG_WARNING, "%s: cannot queue the message: %s", session_queue_id(s),
                            strerror(-error));
                reply(s, 451, "4.3.0 Error: queue file write error");
        } else {
                reply(s, 250, "2.0.0 Ok: queued as %s", queue_new_id(s->qnew));
                s->cmd_ok[SMTPD_DATA]++;
        }
        transaction_reset(s);
        s->state = ST_COMMAND;
        session_update(s);
}

/* data_end - the end of the content: build the queue file and join the group commit */
static void data_end(SmtpdSession *s)
{
        QueueBuf buf = {};
        struct timespec ts;
        int r = s->data_error;

        smtpd_line_reader_set_pieces(s->reader, false);
        s->state = ST_COMMAND;
        s->where = "END-OF-MESSAGE";
        if (s->data_bare_lf) {
                log_reject(s, "reject", s->where, &bare_lf_reply, NULL);
                reply_smtpd(s, &bare_lf_reply);
                transaction_reset(s);
                s->state = ST_CLOSING;
                return;
        }
        if (r >= 0) {
                clock_gettime(CLOCK_REALTIME, &ts);
                r = cleanup_finish(s->cleanup, queue_new_id(s->qnew), ts.tv_sec, ts.tv_nsec / 1000, &buf);
        }
        if (r >= 0) {
                r = queue_new_write(s->qnew, buf.data, buf.size);
                if (r < 0)
                        log_warning_errno(r, "%s: cannot write the queue file: %m", queue_new_id(s->qnew));
        }
        queue_buf_done(&buf);
        if (r < 0) {
                SmtpdReply rep = { .code = 451, .dsn = "4.3.0", .text = "Error: queue file write error" };

                if (r == -EFBIG)
                        rep = (SmtpdReply){ .code = 552, .dsn = "5.3.4", .text = "Message size exceeds fixed limit" };
                else if (r == -EBADMSG)
                        rep = (SmtpdReply){ .code = 550, .dsn = "5.6.0",
                                            .text = "Error: message content rejected: NUL bytes are not allowed" };
                else if (r == -ELOOP)
                        rep = (SmtpdReply){ .code = 554, .dsn = "5.4.0", .text = "Error: too many hops" };
                if (rep.code != 451)
                        log_reject(s, "reject", "END-OF-MESSAGE", &rep, NULL);
                reply_smtpd(s, &rep);
                transaction_reset(s);
                return;
        }
        s->waiter = (QueueCommitWaiter){ .qnew = s->qnew, .done = on_committed };
        s->committing = true;
        s->state = ST_WAIT;
        queue_commit_join(s->d->committer, &s->waiter);
}

/* bare_lf_mode - smtpd_forbid_bare_newline for this client (its exclusions: "no") */
static SmtpdBareLf bare_lf_mode(const SmtpdSession *s)
{
        return s->bare_lf_excluded ? SMTPD_BARE_LF_NO : s->d->bare_lf;
}

/* data_line - one line (or piece) of content */
static void data_line(SmtpdSession *s, const SmtpdLine *line)
{
        SmtpdBareLf mode = bare_lf_mode(s);
        bool first = !s->data_in_piece;
        const char *p = line->data;
        size_t n = line->len;
        int r;

        s->data_bytes += line->len + (line->partial ? 0 : line->bare_lf ? 1 : 2);
        if (line->partial) {
                s->data_in_piece = true;
        } else {
                s->data_in_piece = false;
                /* The end: "." alone; with bare LFs forbidden only <CR><LF>.<CR><LF> */
                if (first && n == 1 && p[0] == '.' &&
                    (mode == SMTPD_BARE_LF_NO || (!line->bare_lf && s->data_prev_crlf))) {
                        data_end(s);
                        return;
                }
                if (line->bare_lf && mode == SMTPD_BARE_LF_REJECT)
                        s->data_bare_lf = true;
                s->data_prev_crlf = !line->bare_lf;
        }
        if (s->data_error < 0 || s->data_bare_lf)
                return; /* refused already: read to the end, keep nothing */
        if (first)
                (void) smtpd_data_line(p, n, &p, &n);
        r = cleanup_write_line(s->cleanup, p, n, line->partial);
        if (r < 0)
                s->data_error = r;
}

/* ETRN: io.tern.Flush.SendSite's answer (§1.11 of the Postfix semantics) */
static int on_etrn_reply(VarlinkClient *c, VarlinkReply *rep, int error, void *userdata)
{
        SmtpdSession *s = userdata;

        if (c != s->flush)
                return 0;       /* dropped (etrn_drop): the session has moved on, or is gone */
        etrn_drop(s);           /* freed once this callback returns */
        if (error < 0 || !rep)
                etrn_unreachable(s);
        else if (!rep->error) {
                reply(s, 250, "Queuing started");
                s->cmd_ok[SMTPD_ETRN]++;
        } else if (streq(rep->error, "io.tern.Flush.NotEligible")) {
                log_warning("reject: ETRN %.100s... from %s", s->etrn_site, s->namaddr);
                reply(s, 459, "<%s>: service unavailable", s->etrn_site);
        } else if (streq(rep->error, "io.tern.Flush.InvalidSite")) {
                log_warning("bad ETRN %.100s... from %s", s->etrn_site, s->namaddr);
                reply(s, 458, "Unable to queue messages");
        } else
                etrn_unreachable(s);
        s->state = ST_COMMAND;
        session_update(s);
        return 0;
}

static bool cmd_etrn(SmtpdSession *s, const char *arg)
{
        SmtpdReply r;
        SmtpdCheck ck;
        int q;

        if (helo_missing(s, false))
                return false;
        if (s->in_mail) {
                reply(s, 503, "Error: MAIL transaction in progress");
                return false;
        }
        q = smtpd_parse_etrn(arg, s->etrn_site, sizeof(s->etrn_site), &r);
        if (q == -ENAMETOOLONG) {
                reply(s, 501, "Error: invalid parameter syntax");
                return false;
        }
        if (q < 0) {
                reply_smtpd(s, &r);
                return false;
        }
        if (s->d->delay_reject && !check_client_helo(s, "ETRN", NULL))
                return false;
        ck = check_base(s, SMTPD_STAGE_ETRN, s->etrn_site);
        if (!check_list(s, s->d->etrn_restrictions, &ck, "ETRN", NULL))
                return false;

        q = varlink_client_connect_event(s->d->flush_socket, s->d->event, 0, &s->flush);
        if (q >= 0)
                q = varlink_client_invoke(s->flush, "io.tern.Flush.SendSite", json_pack("{s:s}", "site", s->etrn_site),
                                          NULL, 0, 0, on_etrn_reply, s);
        if (q < 0) {
                etrn_drop(s);
                etrn_unreachable(s);
                return false;
        }
        s->state = ST_WAIT;
        return false;   /* counted as a success by on_etrn_reply */
}

static bool cmd_vrfy(SmtpdSession *s, const char *arg)
{
        if (s->d->disable_vrfy) {
                reply(s, 502, "5.5.1 VRFY command is disabled");
                return false;
        }
        if (!*arg) {
                reply(s, 501, "5.5.4 Syntax: VRFY address");
                return false;
        }
        /* Nothing to verify against here (no local recipient table): "cannot verify, but will
         * accept", RFC 5321 3.5.3. The argument is not echoed. */
        reply(s, 252, "2.0.0 Send some mail, I'll try my best");
        return true;
}

/* command - one command line */
static void command(SmtpdSession *s, const SmtpdLine *line)
{
        char arg[SMTPD_ARG_MAX];
        SmtpdVerb verb;
        bool ok = false;
        int q;

        if (line->bare_lf && bare_lf_mode(s) == SMTPD_BARE_LF_REJECT) {
                log_reject(s, "reject", s->where, &bare_lf_reply, NULL);
                reply_smtpd(s, &bare_lf_reply);
                s->state = ST_CLOSING;
                return;
        }
        if (line->too_long) {
                s->cmd_all[SMTPD_UNKNOWN]++;
                reply(s, 500, "5.5.2 Error: line too long");
                goto check_errors;
        }
        q = smtpd_command_parse(line->data, line->len, &verb, arg, sizeof(arg));
        if (q < 0) {
                s->cmd_all[SMTPD_UNKNOWN]++;
                reply(s, 501, "5.5.4 Error: argument too long");
                goto check_errors;
        }
        if (line->has_nul)
                verb = SMTPD_UNKNOWN;
        s->cmd_all[verb]++;
        if (verb != SMTPD_UNKNOWN)
                s->where = verb_where[verb];

        /* Postfix's SMTPD_CMD_FLAG_LIMIT: past the junk command limit these count as errors */
        if ((verb == SMTPD_NOOP || verb == SMTPD_VRFY || verb == SMTPD_ETRN || verb == SMTPD_RSET ||
             verb == SMTPD_HELP) &&
            s->junk_cmds++ > s->d->junk_command_limit)
                s->error_count++;

        switch (verb) {
        case SMTPD_HELO:
        case SMTPD_EHLO:
                ok = cmd_helo(s, verb, arg);
                break;
        case SMTPD_MAIL:
                ok = cmd_mail(s, arg);
                break;
        case SMTPD_RCPT:
                ok = cmd_rcpt(s, arg);
                break;
        case SMTPD_DATA:
                cmd_data(s, arg);
                return; /* counted at the end of DATA */
        case SMTPD_RSET:
                if (*arg) {
                        reply(s, 501, "5.5.4 Syntax: RSET");
                        break;
                }
                transaction_reset(s);
                reply(s, 250, "2.0.0 Ok");
                ok = true;
                break;
        case SMTPD_NOOP:
                reply(s, 250, "2.0.0 Ok");
                ok = true;
                break;
        case SMTPD_QUIT:
                reply(s, 221, "2.0.0 Bye");
                s->cmd_ok[verb]++;
                s->state = ST_CLOSING;
                return;
        case SMTPD_VRFY:
                ok = cmd_vrfy(s, arg);
                break;
        case SMTPD_HELP:
                reply(s, 214, "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY ETRN HELP");
                ok = true;
                break;
        case SMTPD_ETRN:
                ok = cmd_etrn(s, arg);
                if (s->state == ST_WAIT)
                        return;
                break;
        case SMTPD_UNKNOWN:
                reply(s, 502, "5.5.2 Error: command not recognized");
                break;
        }
        if (ok)
                s->cmd_ok[verb]++;
check_errors:
        if (s->error_count >= s->d->hard_error_limit && s->state != ST_CLOSING) {
                log_session(s, LOG_INFO, "too many errors after %s from %s", s->where, s->namaddr);
                reply(s, 421, "4.7.0 %s Error: too many errors", s->d->myhostname);
                s->state = ST_CLOSING;
        }
}

/* session_process - every complete line in the input buffer, while the state takes them */
static void session_process(SmtpdSession *s)
{
        while ((s->state == ST_COMMAND || s->state == ST_DATA) && (s->in_start < s->in_end || s->holding) &&
               s->out_len < SMTPD_OUTPUT_MAX) {
                SmtpdLine line;

                if (s->holding) {
                        line = s->held;
                        s->holding = false;
                } else {
                        size_t used = 0;
                        int r = smtpd_line_next(s->reader, s->in + s->in_start, s->in_end - s->in_start, &used,
                                                &line);

                        s->in_start += used;
                        if (r < 0) {
                                s->state = ST_CLOSING;
                                break;
                        }
                        if (r == 0)
                                break;
                }
                if (s->state == ST_DATA) {
                        data_line(s, &line);
                        continue;
                }
                /* Postfix's smtpd_chat_reply: past the soft error limit, every reply waits
                 * smtpd_error_sleep_time; the command is held (its bytes stay in the reader)
                 * until the pause is over */
                if (s->d->error_sleep_usec > 0 && s->error_count >= s->d->soft_error_limit && !s->pause_done) {
                        s->held = line;
                        s->holding = true;
                        session_pause(s);
                        if (s->state == ST_WAIT)
                                break;
                        continue;       /* no pause possible: answer now */
                }
                s->pause_done = false;
                command(s, &line);
        }
        if (s->in_start == s->in_end)
                s->in_start = s->in_end = 0;
}

/* ---- the start ---------------------------------------------------------------------------- */

/* client_connections - sessions from the same address (anvil's connection count) */
static size_t client_connections(const SmtpdSession *s)
{
        size_t n = 0;

        for (const SmtpdSession *o = s->d->sessions; o; o = o->next)
                if (o->family == s->family && memcmp(o->addr, s->addr, sizeof(o->addr)) == 0 &&
                    o->state != ST_LOOKUP)
                        n++;
        return n;
}

/* greet - the name is known: "connect from", the connection limit, the banner */
static void greet(SmtpdSession *s)
{
        const Smtpd *d = s->d;
        size_t n;

        snprintf(s->namaddr, sizeof(s->namaddr), "%s[%s]", s->name, s->addr_text);
        s->state = ST_COMMAND;
        s->where = "CONNECT";
        log_session(s, LOG_INFO, "connect from %s", s->namaddr);

        if (d->client_connection_limit > 0 &&
            !smtpd_netlist_match(&d->event_limit_exceptions, s->family, s->addr) &&
            (n = client_connections(s)) > d->client_connection_limit) {
                log_warning("Connection concurrency limit exceeded: %zu from %s for service smtp", n, s->namaddr);
                reply(s, 421, "4.7.0 %s Error: too many connections from %s", d->myhostname, s->addr_text);
                s->state = ST_CLOSING;
        } else
                reply(s, 220, "%s", d->banner);
        session_update(s);
}

static void on_peer_name(const SmtpdPeerResult *result, void *userdata)
{
        SmtpdSession *s = userdata;

        s->lookup = NULL;
        if (*result->warning)
                log_warning("%s", result->warning);
        snprintf(s->name, sizeof(s->name), "%s", result->name);
        greet(s);
}

int smtpd_session_start(Smtpd *d, int fd, const struct sockaddr_storage *peer, socklen_t peer_len)
{
        SmtpdSession *s;
        uint64_t now;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s) {
                safe_close(fd);
                return -ENOMEM;
        }
        s->d = d;
        s->fd = fd;
        s->state = ST_LOOKUP;
        s->protocol = "SMTP";
        s->where = "CONNECT";
        s->next = d->sessions;
        if (d->sessions)
                d->sessions->prev = s;
        d->sessions = s;
        d->n_sessions++;

        if (peer->ss_family == AF_INET6) {
                const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *) peer;

                s->family = AF_INET6;
                memcpy(s->addr, &a6->sin6_addr, 16);
                if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
                        /* the client is an IPv4 one: log and match it as such */
                        s->family = AF_INET;
                        memset(s->addr, 0, sizeof(s->addr));
                        memcpy(s->addr, a6->sin6_addr.s6_addr + 12, 4);
                }
        } else {
                s->family = AF_INET;
                memcpy(s->addr, &((const struct sockaddr_in *) peer)->sin_addr, 4);
        }
        if (!inet_ntop(s->family, s->addr, s->addr_text, sizeof(s->addr_text)))
                snprintf(s->addr_text, sizeof(s->addr_text), "unknown");
        snprintf(s->name, sizeof(s->name), "unknown");
        snprintf(s->namaddr, sizeof(s->namaddr), "unknown[%s]", s->addr_text);
        s->in_mynetworks = smtpd_netlist_match(&d->mynetworks, s->family, s->addr);
        s->bare_lf_excluded = smtpd_netlist_match(&d->bare_lf_exclusions, s->family, s->addr);
        s->rewrite_headers = (d->header_rewrite & SMTPD_REWRITE_ALL) ||
                             ((d->header_rewrite & SMTPD_REWRITE_MYNETWORKS) && s->in_mynetworks) ||
                             ((d->header_rewrite & SMTPD_REWRITE_INET_INTERFACES) &&
                              smtpd_netlist_match(&d->local_addrs, s->family, s->addr));

        s->in = malloc(SMTPD_READ_CHUNK);
        if (!s->in) {
                r = -ENOMEM;
                goto fail;
        }
        r = smtpd_line_reader_new(d->line_length_limit, &s->reader);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(d->event, &s->io, fd, 0, on_io, s);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(s->io, SD_EVENT_OFF);
        (void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(d->event, &s->timer, CLOCK_MONOTONIC, now + d->timeout_usec, 0, on_timeout, s);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);

        if (d->peername_lookup &&
            smtpd_peer_lookup_start(d->event, (const struct sockaddr *) peer, peer_len, on_peer_name, s,
                                    &s->lookup) >= 0)
                return 0;
        greet(s);       /* no lookup (or none possible): "unknown" */
        return 0;
fail:
        session_free(s);
        return r;
}

void smtpd_session_free_all(Smtpd *d)
{
        while (d->sessions)
                session_free(d->sessions);
}
