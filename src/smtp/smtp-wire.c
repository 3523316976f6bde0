/* SPDX-License-Identifier: MIT */
/*
 * smtp-wire.c - the SMTP client's pure protocol code (see smtp-wire.h): server replies, EHLO
 * features, the DATA encoder and xtext
 *
 * Format. A reply (RFC 5321 4.2) is one or more lines, each ending with CRLF or a bare LF:
 * "DDD-text" for every line but the last, "DDD text" or just "DDD" for the last, the first digit
 * 2..5. The parser works one byte at a time, so any split of the input gives the same replies,
 * and stops right after the line that ends a reply: with PIPELINING (RFC 2920) the bytes after it
 * are the next reply's. The enhanced status code (RFC 3463, 2034) is read from the last line as
 * Postfix's dsn_valid() reads it: class 2, 4 or 5, '.', 1-3 digits, '.', 1-3 digits, then the
 * end or white space; it counts only when its class is the reply code's first digit, otherwise
 * "C.0.0" is made from the code. EHLO keywords (RFC 5321 4.1.1.1) are the first word of lines 2
 * to n; SIZE (RFC 1870) may carry the limit in decimal.
 *
 * Invariants. A completed reply has 1..SMTP_REPLY_LINES_MAX lines, each at most
 * SMTP_REPLY_LINE_MAX bytes, starting with a valid code, holding no control character but TAB
 * (others became '?' as they came in, NUL included), and text is exactly its lines joined by
 * single spaces. The parser holds at most one line and one reply, so memory is bounded whatever
 * the server sends: at most SMTP_REPLY_LINES_MAX lines of SMTP_REPLY_LINE_MAX bytes, twice (lines
 * and text), about 400 kB. The DATA encoder holds back at most one CR, which is why OUT needs
 * only 2 * N + 1 bytes.
 *
 * Limits and known bugs. Lines whose codes disagree are taken (Postfix takes them too), the
 * last line's code is the reply's. Bytes 0x80 and up pass as they are (UTF-8 text), C1 control
 * characters included. A CR not right before a "\n" is sent as a bare CR by the DATA encoder,
 * as Postfix sends it: a receiver that wrongly ends lines at a bare CR may read "\r.\r\n" in
 * content as the end of data, so bare CRs are best refused or normalized where mail comes in.
 * After -EBADMSG or -ENOMEM the parser must be reset: where the broken reply ends is unknown.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "smtp-wire.h"

struct SmtpReplyParser {
        SmtpReply reply;    /* the reply being read: code, lines, n_lines, truncated */
        size_t lines_alloc; /* room in reply.lines */
        char line[SMTP_REPLY_LINE_MAX + 1];
        size_t line_len;     /* bytes of the current line kept in line[] */
        bool line_truncated; /* the current line had more than SMTP_REPLY_LINE_MAX bytes */
        bool cr_pending;     /* a CR was read last: a line end if "\n" follows */
        bool complete;       /* reply is complete and waits for smtp_reply_parser_take() */
        const char *error;   /* non-NULL: broken, reset needed; the reason */
};

void smtp_reply_done(SmtpReply *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_lines; i++)
                free(r->lines[i]);
        free(r->lines);
        free(r->text);
        *r = (SmtpReply){};
}

int smtp_reply_parser_new(SmtpReplyParser **ret)
{
        SmtpReplyParser *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

void smtp_reply_parser_reset(SmtpReplyParser *p)
{
        smtp_reply_done(&p->reply);
        p->lines_alloc = 0;
        p->line_len = 0;
        p->line_truncated = false;
        p->cr_pending = false;
        p->complete = false;
        p->error = NULL;
}

SmtpReplyParser *smtp_reply_parser_free(SmtpReplyParser *p)
{
        if (!p)
                return NULL;
        smtp_reply_done(&p->reply);
        return mfree(p);
}

/* printable - C as it is kept: control characters other than TAB become '?' */
static char printable(char c)
{
        unsigned char u = (unsigned char) c;

        return (u < 0x20 && u != '\t') || u == 0x7f ? '?' : c;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

static void line_append(SmtpReplyParser *p, char c)
{
        if (p->line_len < SMTP_REPLY_LINE_MAX)
                p->line[p->line_len++] = printable(c);
        else
                p->line_truncated = true;
}

/* dsn_valid - length of the enhanced status code at the start of S, 0 if none (Postfix's rule) */
static size_t dsn_valid(const char *s)
{
        size_t n, len;

        if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
                return 0;
        n = 2;
        for (len = 0; is_digit(s[n + len]); len++)
                ;
        if (len < 1 || len > 3 || s[n + len] != '.')
                return 0;
        n += len + 1;
        for (len = 0; is_digit(s[n + len]); len++)
                ;
        if (len < 1 || len > 3 || (s[n + len] != '\0' && !is_blank(s[n + len])))
                return 0;
        return n + len;
}

/* reply_finish - the last line is in: the text and the dsn */
static int reply_finish(SmtpReply *r)
{
        const char *last = r->lines[r->n_lines - 1], *cp;
        size_t size = 0, len;
        char *text, *t;

        for (size_t i = 0; i < r->n_lines; i++)
                size += strlen(r->lines[i]) + 1;
        text = malloc(size);
        if (!text)
                return -ENOMEM;
        t = text;
        for (size_t i = 0; i < r->n_lines; i++) {
                if (i > 0)
                        *t++ = ' ';
                len = strlen(r->lines[i]);
                memcpy(t, r->lines[i], len);
                t += len;
        }
        *t = '\0';
        r->text = text;

        cp = last + 3;
        if (*cp)
                cp++;
        while (is_blank(*cp))
                cp++;
        len = dsn_valid(cp);
        if (len > 0 && cp[0] == last[0]) {
                memcpy(r->dsn, cp, len);
                r->dsn[len] = '\0';
        } else
                snprintf(r->dsn, sizeof(r->dsn), "%c.0.0", last[0]);
        return 0;
}

/* line_end - a line is complete: 1 when it ends the reply, 0 when more lines follow, -EBADMSG
 * with *RET_REASON, -ENOMEM */
static int line_end(SmtpReplyParser *p, const char **ret_reason)
{
        SmtpReply *reply = &p->reply;
        const char *l = p->line;
        bool last;
        char *copy;

        if (p->line_len < 3 || l[0] < '2' || l[0] > '5' || !is_digit(l[1]) || !is_digit(l[2]) ||
            (p->line_len > 3 && l[3] != '-' && l[3] != ' ')) {
                *ret_reason = "malformed reply code";
                return -EBADMSG;
        }
        last = p->line_len == 3 || l[3] == ' ';
        if (!last && reply->n_lines + 1 >= SMTP_REPLY_LINES_MAX) {
                *ret_reason = "reply has too many lines";
                return -EBADMSG;
        }

        if (reply->n_lines == p->lines_alloc) {
                size_t a = MIN(MAX(p->lines_alloc * 2, (size_t) 4), (size_t) SMTP_REPLY_LINES_MAX);
                char **v = realloc(reply->lines, a * sizeof(char *));

                if (!v)
                        return -ENOMEM;
                reply->lines = v;
                p->lines_alloc = a;
        }
        copy = strndup(l, p->line_len);
        if (!copy)
                return -ENOMEM;
        reply->lines[reply->n_lines++] = copy;
        reply->code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
        if (p->line_truncated)
                reply->truncated = true;
        p->line_len = 0;
        p->line_truncated = false;
        if (!last)
                return 0;

        if (reply_finish(reply) < 0)
                return -ENOMEM;
        p->complete = true;
        return 1;
}

int smtp_reply_parser_feed(SmtpReplyParser *p, const char *buf, size_t len, size_t *ret_used,
                           const char **ret_reason)
{
        const char *reason = NULL;
        int r;

        if (p->error) {
                if (ret_reason)
                        *ret_reason = p->error;
                return -EBADMSG;
        }
        if (p->complete) {
                /* the last reply was not taken yet: nothing more is read */
                *ret_used = 0;
                return 1;
        }

        for (size_t i = 0; i < len; i++) {
                char c = buf[i];

                if (c == '\n') {
                        p->cr_pending = false;
                        r = line_end(p, &reason);
                        if (r < 0) {
                                p->error = r == -ENOMEM ? "out of memory" : reason;
                                reason = p->error;
                                if (ret_reason)
                                        *ret_reason = reason;
                                return r;
                        }
                        if (r > 0) {
                                *ret_used = i + 1;
                                return 1;
                        }
                        continue;
                }
                /* a CR not followed by "\n" is part of the line */
                if (p->cr_pending)
                        line_append(p, '\r');
                p->cr_pending = c == '\r';
                if (!p->cr_pending)
                        line_append(p, c);
        }
        *ret_used = len;
        return 0;
}

void smtp_reply_parser_take(SmtpReplyParser *p, SmtpReply *ret)
{
        if (!p->complete) {
                *ret = (SmtpReply){};
                return;
        }
        *ret = p->reply;
        p->reply = (SmtpReply){};
        p->lines_alloc = 0;
        p->complete = false;
}

/* ehlo_keyword - does the word W (N bytes) name keyword KW? */
static bool ehlo_keyword(const char *w, size_t n, const char *kw)
{
        return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

/* size_argument - SIZE's decimal argument (N bytes at S); 0 when missing, garbage or too large */
static uint64_t size_argument(const char *s, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned d;

                if (!is_digit(s[i]))
                        return 0;
                d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return 0;
                v = v * 10 + d;
        }
        return v;
}

void smtp_ehlo_features(const SmtpReply *r, SmtpFeatures *ret)
{
        static const struct {
                const char *keyword;
                unsigned flag;
        } table[] = {
                {"PIPELINING", SMTP_FEATURE_PIPELINING},
                {"SIZE", SMTP_FEATURE_SIZE},
                {"8BITMIME", SMTP_FEATURE_8BITMIME},
                {"ENHANCEDSTATUSCODES", SMTP_FEATURE_ENHANCEDSTATUSCODES},
                {"DSN", SMTP_FEATURE_DSN},
                {"SMTPUTF8", SMTP_FEATURE_SMTPUTF8},
                {"STARTTLS", SMTP_FEATURE_STARTTLS},
        };
        SmtpFeatures f = {};

        if (r->code / 100 != 2 || r->n_lines == 0) {
                *ret = f;
                return;
        }
        f.flags = SMTP_FEATURE_ESMTP;
        for (size_t i = 1; i < r->n_lines; i++) {
                const char *w = r->lines[i] + 3, *arg;
                size_t n, arg_n;

                if (*w)
                        w++;
                while (is_blank(*w))
                        w++;
                for (n = 0; w[n] && !is_blank(w[n]); n++)
                        ;
                for (size_t k = 0; k < ELEMENTSOF(table); k++) {
                        if (!ehlo_keyword(w, n, table[k].keyword))
                                continue;
                        f.flags |= table[k].flag;
                        if (table[k].flag != SMTP_FEATURE_SIZE)
                                break;
                        for (arg = w + n; is_blank(*arg); arg++)
                                ;
                        for (arg_n = 0; arg[arg_n] && !is_blank(arg[arg_n]); arg_n++)
                                ;
                        f.size_limit = size_argument(arg, arg_n);
                        break;
                }
        }
        *ret = f;
}

void smtp_data_encoder_init(SmtpDataEncoder *e)
{
        *e = (SmtpDataEncoder){};
}

size_t smtp_data_encode(SmtpDataEncoder *e, const char *in, size_t n, char *out)
{
        size_t k = 0;

        /* at most 2 bytes out per byte in, plus the one CR held back from before */
        for (size_t i = 0; i < n; i++) {
                char c = in[i];

                if (c == '\n') {
                        /* a held CR is right before the line end: dropped */
                        e->cr_pending = false;
                        e->mid_line = false;
                        out[k++] = '\r';
                        out[k++] = '\n';
                        continue;
                }
                if (e->cr_pending) {
                        /* a bare CR: part of the line (which no longer starts with '.') */
                        out[k++] = '\r';
                        e->cr_pending = false;
                        e->mid_line = true;
                }
                if (c == '\r') {
                        e->cr_pending = true;
                        continue;
                }
                if (!e->mid_line && c == '.')
                        out[k++] = '.';
                out[k++] = c;
                e->mid_line = true;
        }
        return k;
}

size_t smtp_data_finish(SmtpDataEncoder *e, char out[static 8])
{
        size_t k = 0;

        if (e->mid_line || e->cr_pending) {
                out[k++] = '\r';
                out[k++] = '\n';
        }
        memcpy(out + k, ".\r\n", 3);
        k += 3;
        smtp_data_encoder_init(e);
        return k;
}

int smtp_xtext(const char *in, char **ret)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(in);
        char *s, *t;

        if (n > (SIZE_MAX - 1) / 3)
                return -ENOMEM;
        s = malloc(3 * n + 1);
        if (!s)
                return -ENOMEM;
        t = s;
        for (const char *c = in; *c; c++) {
                unsigned char u = (unsigned char) *c;

                if (u < '!' || u > '~' || u == '+' || u == '=') {
                        *t++ = '+';
                        *t++ = hex[u >> 4];
                        *t++ = hex[u & 0xf];
                } else
                        *t++ = (char) u;
        }
        *t = '\0';
        *ret = s;
        return 0;
}
