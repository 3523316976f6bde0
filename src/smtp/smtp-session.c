/* SPDX-License-Identifier: MIT */
/*
 * smtp-session.c - one SMTP/LMTP session: connect, read replies, write commands, the greeting
 * and EHLO/HELO/LHLO, RSET, QUIT
 *
 * The socket is non-blocking and every wait is a poll() bounded by the stage's timeout: a
 * server that never answers, answers forever, or stops reading costs at most that long. Reading
 * a reply has one deadline for the whole reply; writing has a no-progress limit (Postfix's
 * smtp_data_xfer_timeout is "no progress for that long"). While writing, whatever the server
 * sends is read and kept, so that a long pipelined burst (RCPT for thousands of recipients)
 * never deadlocks with a server that answers as it reads; at most SMTP_SESSION_IN_MAX bytes are
 * kept unread.
 *
 * Failure texts are Postfix's: "connect to H[A]:P: Connection refused", "conversation with H[A]
 * timed out while receiving the initial server greeting", "lost connection with H[A] while
 * sending RCPT TO", "host H[A] refused to talk to me: 554 ...".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "smtp.h"

/* Most bytes a server may send that we have not asked for yet (replies to a pipelined burst of
 * DELIVERY_RECIPIENTS_MAX RCPTs fit many times). */
#define SMTP_SESSION_IN_MAX (16U * 1024U * 1024U)
#define SMTP_SESSION_READ_CHUNK 16384U

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

void smtp_why_set(SmtpWhy *w, const char *dsn, const char *format, ...)
{
        va_list ap;

        snprintf(w->dsn, sizeof(w->dsn), "%s", dsn);
        va_start(ap, format);
        vsnprintf(w->text, sizeof(w->text), format, ap);
        va_end(ap);
        /* no control characters into a log line or a result */
        for (char *p = w->text; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = ' ';
}

static int session_new(int fd, const char *host, const char *addr, uint16_t port, SmtpSession **ret)
{
        _cleanup_(smtp_session_freep) SmtpSession *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->fd = fd;
        s->host = strdup(host);
        if (!s->host)
                return -ENOMEM;
        snprintf(s->addr, sizeof(s->addr), "%s", addr);
        s->port = port;
        if (port)
                snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", host, addr, port);
        else
                snprintf(s->relay, sizeof(s->relay), "%s[%s]", host, addr);
        r = smtp_reply_parser_new(&s->parser);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

SmtpSession *smtp_session_free(SmtpSession *s)
{
        if (!s)
                return NULL;
        safe_close(s->fd);
        free(s->host);
        smtp_reply_parser_free(s->parser);
        free(s->in);
        free(s->out);
        free(s);
        return NULL;
}

int smtp_session_adopt(int fd, const char *host, const char *addr, uint16_t port, SmtpSession **ret)
{
        int r, flags = fcntl(fd, F_GETFL);

        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                r = -errno;
                safe_close(fd);
                return r;
        }
        r = session_new(fd, host, addr, port, ret);
        if (r < 0)
                safe_close(fd);
        return r;
}

/* wait_fd - poll FD for EVENTS until DEADLINE (µs, monotonic; 0 none): revents, or -ETIMEDOUT */
static int wait_fd(int fd, short events, uint64_t deadline)
{
        for (;;) {
                struct pollfd p = {.fd = fd, .events = events};
                int ms = -1, r;

                if (deadline) {
                        uint64_t now = now_usec();

                        if (now >= deadline)
                                return -ETIMEDOUT;
                        ms = (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX);
                }
                r = poll(&p, 1, ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return p.revents;
        }
}

static int connect_fd(int fd, const struct sockaddr *sa, socklen_t len, uint64_t timeout)
{
        int r, err = 0;
        socklen_t el = sizeof(err);

        if (connect(fd, sa, len) >= 0)
                return 0;
        if (errno != EINPROGRESS)
                return -errno;
        r = wait_fd(fd, POLLOUT, timeout ? now_usec() + timeout : 0);
        if (r < 0)
                return r;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
                return -errno;
        return err ? -err : 0;
}

/* connect_reason - Postfix's words for a failed connect */
static const char *connect_reason(int r)
{
        return r == -ETIMEDOUT ? "Connection timed out" : strerror(-r);
}

int smtp_session_connect(const SmtpConfig *cfg, const char *host, const SmtpDnsAddr *addr, uint16_t port,
                         SmtpSession **ret, SmtpWhy *why)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {}, bsa = {};
        char text[INET6_ADDRSTRLEN];
        const char *bind_to;
        socklen_t len;
        int fd, r, one = 1;

        if (addr->family == AF_INET) {
                sa.in = (struct sockaddr_in){
                        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr->in};
                len = sizeof(sa.in);
                bind_to = cfg->bind_address;
        } else {
                sa.in6 = (struct sockaddr_in6){
                        .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = addr->in6};
                len = sizeof(sa.in6);
                bind_to = cfg->bind_address6;
        }
        if (!inet_ntop(addr->family,
                       addr->family == AF_INET ? (const void *) &addr->in : (const void *) &addr->in6, text,
                       sizeof(text)))
                return -EAFNOSUPPORT;

        fd = socket(addr->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
        if (fd < 0) {
                r = -errno;
                smtp_why_set(why, "4.4.1", "connect to %s[%s]:%u: %s", host, text, port, strerror(-r));
                return r;
        }
        if (!isempty(bind_to)) {
                bsa.sa.sa_family = (sa_family_t) addr->family;
                if (addr->family == AF_INET ? inet_pton(AF_INET, bind_to, &bsa.in.sin_addr) != 1
                                            : inet_pton(AF_INET6, bind_to, &bsa.in6.sin6_addr) != 1) {
                        safe_close(fd);
                        smtp_why_set(why, "4.3.5", "mail system configuration error: bad bind address %s",
                                     bind_to);
                        return -EINVAL;
                }
                if (bind(fd, &bsa.sa, len) < 0) {
                        r = -errno;
                        safe_close(fd);
                        smtp_why_set(why, "4.4.1", "connect to %s[%s]:%u: cannot bind to %s: %s", host, text,
                                     port, bind_to, strerror(-r));
                        return r;
                }
        }
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        r = connect_fd(fd, &sa.sa, len, cfg->connect_timeout);
        if (r < 0) {
                safe_close(fd);
                smtp_why_set(why, "4.4.1", "connect to %s[%s]:%u: %s", host, text, port, connect_reason(r));
                return r;
        }
        r = session_new(fd, host, text, port, ret);
        if (r < 0) {
                safe_close(fd);
                smtp_why_set(why, "4.3.0", "out of memory");
        }
        return r;
}

int smtp_session_connect_unix(const SmtpConfig *cfg, const char *path, SmtpSession **ret, SmtpWhy *why)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                smtp_why_set(why, "4.3.5", "connect to %s: file name too long", path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                r = -errno;
                smtp_why_set(why, "4.4.1", "connect to %s: %s", path, strerror(-r));
                return r;
        }
        r = connect_fd(fd, (struct sockaddr *) &sa, sizeof(sa), cfg->connect_timeout);
        if (r < 0) {
                safe_close(fd);
                smtp_why_set(why, "4.4.1", "connect to %s: %s", path, connect_reason(r));
                return r;
        }
        /* Postfix logs a UNIX-domain LMTP server as relay=MYHOSTNAME[PATH] */
        r = session_new(fd, strempty(cfg->myhostname), path, 0, ret);
        if (r < 0) {
                safe_close(fd);
                smtp_why_set(why, "4.3.0", "out of memory");
        }
        return r;
}

int smtp_session_queue_raw(SmtpSession *s, const void *data, size_t len)
{
        if (len > s->out_alloc - s->out_len) {
                size_t n = MAX(s->out_alloc * 2, s->out_len + len + 4096);
                char *p = realloc(s->out, n);

                if (!p)
                        return -ENOMEM;
                s->out = p;
                s->out_alloc = n;
        }
        memcpy(s->out + s->out_len, data, len);
        s->out_len += len;
        return 0;
}

int smtp_session_queue(SmtpSession *s, const char *format, ...)
{
        va_list ap;
        char *line = NULL;
        int n, r;

        va_start(ap, format);
        n = vasprintf(&line, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        r = smtp_session_queue_raw(s, line, (size_t) n);
        free(line);
        return r < 0 ? r : smtp_session_queue_raw(s, "\r\n", 2);
}

/* read_some - whatever the socket has now into s->in; 0 something read, -EAGAIN nothing,
 * -ECONNRESET at the end of the stream, -ENOBUFS over the limit */
static int read_some(SmtpSession *s)
{
        ssize_t n;

        if (s->in_start > 0 && s->in_start == s->in_end)
                s->in_start = s->in_end = 0;
        if (s->in_alloc - s->in_end < SMTP_SESSION_READ_CHUNK) {
                size_t used = s->in_end - s->in_start, want;
                char *p;

                if (s->in_start > 0) { /* compact first */
                        memmove(s->in, s->in + s->in_start, used);
                        s->in_start = 0;
                        s->in_end = used;
                }
                if (s->in_alloc - s->in_end < SMTP_SESSION_READ_CHUNK) {
                        want = s->in_end + SMTP_SESSION_READ_CHUNK;
                        if (want > SMTP_SESSION_IN_MAX)
                                return -ENOBUFS;
                        p = realloc(s->in, want);
                        if (!p)
                                return -ENOMEM;
                        s->in = p;
                        s->in_alloc = want;
                }
        }
        n = read(s->fd, s->in + s->in_end, s->in_alloc - s->in_end);
        if (n < 0)
                return errno == EINTR || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        if (n == 0)
                return -ECONNRESET;
        s->in_end += (size_t) n;
        return 0;
}

int smtp_session_flush(SmtpSession *s, uint64_t timeout)
{
        size_t done = 0;
        bool eof = false;
        int r = 0;

        if (s->broken)
                return -EPIPE;
        while (done < s->out_len) {
                uint64_t deadline = timeout ? now_usec() + timeout : 0;
                ssize_t n = send(s->fd, s->out + done, s->out_len - done, MSG_NOSIGNAL);

                if (n > 0) {
                        done += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EWOULDBLOCK) {
                        r = -errno;
                        break;
                }
                /* Full: wait until it drains, reading what the server says meanwhile. */
                r = wait_fd(s->fd, eof ? POLLOUT : POLLOUT | POLLIN, deadline);
                if (r < 0)
                        break;
                if ((r & (POLLIN | POLLHUP)) && !eof) {
                        int k = read_some(s);

                        if (k == -ECONNRESET)
                                eof = true; /* its replies may still say why: keep them */
                        else if (k < 0 && k != -EAGAIN) {
                                r = k;
                                break;
                        }
                }
                if ((r & POLLERR) && !(r & POLLOUT)) {
                        r = -ECONNRESET;
                        break;
                }
                r = 0;
        }
        s->out_len = 0;
        if (r < 0)
                s->broken = true;
        return r;
}

int smtp_session_reply(SmtpSession *s, uint64_t timeout, SmtpReply *ret, const char **ret_reason)
{
        uint64_t deadline = timeout ? now_usec() + timeout : 0;
        const char *reason = NULL;
        int r;

        for (;;) {
                if (s->in_end > s->in_start) {
                        size_t used = 0;

                        r = smtp_reply_parser_feed(s->parser, s->in + s->in_start, s->in_end - s->in_start,
                                                   &used, &reason);
                        s->in_start += used;
                        if (r < 0) {
                                if (ret_reason)
                                        *ret_reason = reason;
                                s->broken = true;
                                return r;
                        }
                        if (r > 0) {
                                smtp_reply_parser_take(s->parser, ret);
                                return 0;
                        }
                }
                r = read_some(s);
                if (r == -EAGAIN) {
                        r = wait_fd(s->fd, POLLIN, deadline);
                        if (r >= 0)
                                continue;
                }
                if (r < 0) {
                        s->broken = true;
                        return r;
                }
        }
}

void smtp_session_fail(SmtpSession *s, int r, const char *reason, const char *stage, SmtpWhy *why)
{
        const char *name = s->port ? s->host : s->addr;

        s->broken = true;
        if (r == -ETIMEDOUT)
                smtp_why_set(why, "4.4.2", "conversation with %s[%s] timed out while %s", name, s->addr,
                             stage);
        else if (r == -EBADMSG)
                smtp_why_set(why, "4.5.0", "%s[%s] sent a malformed reply while %s: %s", name, s->addr,
                             stage, strna(reason));
        else if (r == -ENOBUFS)
                smtp_why_set(why, "4.5.0", "%s[%s] sent too much data while %s", name, s->addr, stage);
        else if (r == -ENOMEM)
                smtp_why_set(why, "4.3.0", "out of memory while %s", stage);
        else
                smtp_why_set(why, "4.4.2", "lost connection with %s[%s] while %s", name, s->addr, stage);
}

/* command - send VERB [ARG] and read its reply, each within TIMEOUT (µs) */
static int command(SmtpSession *s, uint64_t timeout, SmtpReply *ret, const char **ret_reason,
                   const char *verb, const char *arg)
{
        int r;

        r = arg ? smtp_session_queue(s, "%s %s", verb, arg) : smtp_session_queue(s, "%s", verb);
        if (r >= 0)
                r = smtp_session_flush(s, timeout);
        if (r >= 0)
                r = smtp_session_reply(s, timeout, ret, ret_reason);
        return r;
}

/*
 * refused - a negative greeting or HELO REPLY (freed here): WHY with the reply's class and code,
 * the session broken; returns -ECONNREFUSED
 */
static int refused(SmtpSession *s, const SmtpConfig *cfg, SmtpReply *reply, bool greeting, SmtpWhy *why)
{
        char dsn[sizeof(why->dsn)];

        snprintf(dsn, sizeof(dsn), "%s", reply->dsn);
        /* smtp_skip_5xx_greeting: a server that greets with 5XX may be a temporary problem of
         * that one host; treat it as 4XX so that the next server is tried and nothing bounces. */
        if (greeting && cfg->skip_5xx_greeting && dsn[0] == '5')
                dsn[0] = '4';
        smtp_why_set(why, dsn, "host %s[%s] refused to talk to me: %s", s->port ? s->host : s->addr, s->addr,
                     reply->text);
        smtp_reply_done(reply);
        s->broken = true;
        return -ECONNREFUSED;
}

int smtp_session_hello(SmtpSession *s, const SmtpConfig *cfg, SmtpWhy *why)
{
        SmtpReply reply = {};
        const char *reason = NULL;
        int r;

        r = smtp_session_reply(s, cfg->helo_timeout, &reply, &reason);
        if (r < 0) {
                smtp_session_fail(s, r, reason, "receiving the initial server greeting", why);
                return r;
        }
        if (reply.code / 100 != 2)
                return refused(s, cfg, &reply, true, why);
        smtp_reply_done(&reply);

        r = command(s, cfg->helo_timeout, &reply, &reason, cfg->lmtp ? "LHLO" : "EHLO", cfg->helo_name);
        if (r < 0) {
                smtp_session_fail(
                        s, r, reason,
                        cfg->lmtp ? "performing the LHLO handshake" : "performing the EHLO handshake", why);
                return r;
        }
        if (reply.code / 100 == 2) {
                smtp_ehlo_features(&reply, &s->features);
                smtp_reply_done(&reply);
                return 0;
        }
        if (cfg->lmtp)
                return refused(s, cfg, &reply, false, why);

        /* EHLO refused: an old server; HELO it is, without extensions. */
        smtp_reply_done(&reply);
        r = command(s, cfg->helo_timeout, &reply, &reason, "HELO", cfg->helo_name);
        if (r < 0) {
                smtp_session_fail(s, r, reason, "performing the HELO handshake", why);
                return r;
        }
        if (reply.code / 100 != 2)
                return refused(s, cfg, &reply, false, why);
        s->features = (SmtpFeatures){};
        smtp_reply_done(&reply);
        return 0;
}

int smtp_session_rset(SmtpSession *s, const SmtpConfig *cfg)
{
        SmtpReply reply = {};
        int r;

        r = command(s, cfg->rset_timeout, &reply, NULL, "RSET", NULL);
        if (r < 0)
                return r;
        r = reply.code / 100 == 2 ? 0 : -EPROTO;
        smtp_reply_done(&reply);
        if (r < 0)
                s->broken = true;
        return r;
}

void smtp_session_quit(SmtpSession *s)
{
        if (s->broken)
                return;
        if (smtp_session_queue(s, "QUIT") >= 0)
                (void) smtp_session_flush(s, USEC_PER_SEC);
}
