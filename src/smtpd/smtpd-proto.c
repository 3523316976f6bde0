/* SPDX-License-Identifier: MIT */
/*
 * smtpd-proto.c - the SMTP server's pure protocol code (see smtpd-proto.h): input lines,
 * commands, the MAIL and RCPT arguments, ETRN's argument, and DATA's end and dot-unstuffing
 *
 * Format. An input line ends with CRLF or a bare LF (RFC 5321 2.3.8; Postfix's smtp_get() takes
 * both); a CR that is not right before the LF stays in the line. A command is a verb, any case,
 * from the first byte that is not white space up to the next white space, and its argument. MAIL
 * and RCPT arguments are split into words as Postfix's smtpd_token() splits them: white space
 * separates words except inside <...> (which nests) and "...", a backslash escapes the next byte,
 * and a word that is exactly "FROM:" or "TO:" ends at its colon, so "FROM:<a@b>" and "FROM: <a@b>"
 * are the same two words. Word 1 is the path, the rest are ESMTP parameters NAME=VALUE (RFC 1870
 * SIZE, RFC 6152 BODY, RFC 3461 RET, ENVID, NOTIFY, ORCPT). ENVID and ORCPT's address are xtext
 * (RFC 3461 4): "!" to "~" but "+" and "=", or "+XX" with two hex digits (Postfix also takes lower
 * case ones, and so do we). ETRN (RFC 1985) takes one word, optionally after '@' or '#': a host
 * name or an address literal. In DATA, "." alone ends the content and one leading dot is removed
 * from other lines.
 *
 * Invariants. The line reader holds at most LIMIT bytes of a line plus one pending CR, however
 * many bytes come without a newline, and gives the same lines whatever pieces the input comes
 * in: its state between calls is only the kept bytes, whether the last byte was a CR, and
 * whether the line was cut. A line it gives stays valid until the next call. Every reply has a
 * 4xx or 5xx code and a non-empty text; a reply that quotes the client holds printable ASCII
 * only (other bytes become '?'). A path handed out passed addr_valid(), is never longer than
 * the argument, and the null path is "" for MAIL only. An ETRN site passed valid_hostname() or
 * is "[" dotted quad or "ipv6:" IPv6 address "]", so it has no '/', no "..", no shell character
 * and no blank. Outputs are written only on success; a failed parse leaves *ret untouched.
 *
 * Limits and known differences from Postfix, honestly:
 *   - A command line longer than the limit is cut and the rest dropped, as Postfix does; in
 *     DATA (smtpd_line_reader_set_pieces) a long line comes out in pieces, as Postfix passes it
 *     on, and nothing is lost.
 *   - The address is checked as a whole with addr_valid(), not pulled "from rubble" by an
 *     RFC 822 parser: Postfix without strict_rfc821_envelopes also takes "<a@b (comment)>",
 *     "a@b>" or "<a>x"; we refuse them as bad syntax. Quotes stay as the client wrote them
 *     (Postfix unquotes the local part internally).
 *   - A source route with nothing after it ("<@a:>") is bad syntax; Postfix makes it the null
 *     sender. The route itself is not checked, as in Postfix.
 *   - "SIZE=" with no digits is bad syntax (Postfix reads it as 0); a second SIZE or BODY is
 *     refused (Postfix takes the last). A SIZE above INT64_MAX gets Postfix's 552.
 *   - ENVID and ORCPT are checked as RFC 3461 xtext: a raw '=' or a byte outside "!".."~" is
 *     refused (Postfix's xtext_unquote takes any byte but a malformed "+XX"). A decoded ENVID
 *     must be printable ASCII (Postfix's allprint); a decoded ORCPT address may hold no control
 *     character (Postfix takes them) but may hold UTF-8. The ORCPT type must be printable ASCII.
 *   - No AUTH, SMTPUTF8 or XVERP parameters: they are "Unsupported option", as in a Postfix
 *     without SASL, with smtputf8_enable = no, and with an empty smtpd_authorized_verp_clients.
 *   - An IPv4 literal is checked with inet_pton(), which refuses leading zeros ("[010.0.0.1]")
 *     that Postfix's valid_ipv4_hostaddr() may take.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "domain-list.h"
#include "macro.h"
#include "smtpd-proto.h"

/* How much of a client's word a reply quotes (Postfix's "%.100s" habit) */
#define SMTPD_REPLY_QUOTE_MAX 100
/* An address literal's inside ("ipv6:" and the longest IPv6 text form) */
#define SMTPD_LITERAL_MAX 64

struct SmtpdLineReader {
        size_t limit;    /* the most bytes a line keeps */
        size_t len;      /* bytes of the current line in buf */
        bool cr_pending; /* the last byte read was a CR: a line end if "\n" follows */
        bool too_long;   /* the current line had more than limit bytes */
        bool has_nul;    /* a NUL among the kept bytes */
        bool line_out;   /* buf holds a line handed out: start afresh on the next call */
        bool pieces;     /* a line longer than limit comes out in pieces (DATA), not cut */
        char buf[];      /* limit + 1 (a NUL after the line, for convenience) */
};

/* ---- input lines ----------------------------------------------------------------------------- */

int smtpd_line_reader_new(size_t limit, SmtpdLineReader **ret)
{
        SmtpdLineReader *r;

        if (limit == 0 || limit > SIZE_MAX / 2)
                return -EINVAL;
        r = calloc(1, sizeof(*r) + limit + 1);
        if (!r)
                return -ENOMEM;
        r->limit = limit;
        *ret = r;
        return 0;
}

SmtpdLineReader *smtpd_line_reader_free(SmtpdLineReader *r)
{
        return mfree(r);
}

/* line_add - C to the current line, or only mark it too long */
static void line_add(SmtpdLineReader *r, char c)
{
        if (r->len >= r->limit) {
                r->too_long = true;
                return;
        }
        if (c == '\0')
                r->has_nul = true;
        r->buf[r->len++] = c;
}

int smtpd_line_next(SmtpdLineReader *r, const char *buf, size_t len, size_t *ret_used, SmtpdLine *ret)
{
        if (r->line_out) {
                r->len = 0;
                r->too_long = false;
                r->has_nul = false;
                r->line_out = false;
        }
        for (size_t i = 0; i < len; i++) {
                char c = buf[i];

                /* pieces: a full buffer goes out before the byte that would not fit */
                if (r->pieces && c != '\n' && r->len > 0 &&
                    r->len + (r->cr_pending ? 1 : 0) + (c == '\r' ? 0 : 1) > r->limit) {
                        *ret = (SmtpdLine){
                                .data = r->buf,
                                .len = r->len,
                                .partial = true,
                                .has_nul = r->has_nul,
                        };
                        r->buf[r->len] = '\0';
                        r->line_out = true;
                        *ret_used = i;
                        return 1;
                }
                if (c == '\n') {
                        *ret = (SmtpdLine){
                                .data = r->buf,
                                .len = r->len,
                                .bare_lf = !r->cr_pending,
                                .too_long = r->too_long,
                                .has_nul = r->has_nul,
                        };
                        r->buf[r->len] = '\0';
                        r->cr_pending = false;
                        r->line_out = true;
                        *ret_used = i + 1;
                        return 1;
                }
                if (r->cr_pending) {
                        /* a CR not followed by LF is part of the line */
                        r->cr_pending = false;
                        line_add(r, '\r');
                }
                if (c == '\r')
                        r->cr_pending = true;
                else
                        line_add(r, c);
        }
        *ret_used = len;
        return 0;
}

void smtpd_line_reader_set_pieces(SmtpdLineReader *r, bool pieces)
{
        r->pieces = pieces;
}

size_t smtpd_line_pending(const SmtpdLineReader *r)
{
        if (r->line_out)
                return 0;
        return r->len + (r->cr_pending ? 1 : 0);
}

/* ---- commands -------------------------------------------------------------------------------- */

/* is_space - Postfix's ISSPACE in the C locale: what separates words */
static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static const char *const verb_names[] = {
        [SMTPD_HELO] = "helo", [SMTPD_EHLO] = "ehlo", [SMTPD_MAIL] = "mail", [SMTPD_RCPT] = "rcpt",
        [SMTPD_DATA] = "data", [SMTPD_RSET] = "rset", [SMTPD_NOOP] = "noop", [SMTPD_QUIT] = "quit",
        [SMTPD_VRFY] = "vrfy", [SMTPD_HELP] = "help", [SMTPD_ETRN] = "etrn", [SMTPD_UNKNOWN] = "unknown",
};

const char *smtpd_verb_name(SmtpdVerb v)
{
        if ((unsigned) v >= ELEMENTSOF(verb_names))
                return "unknown";
        return verb_names[v];
}

int smtpd_command_parse(const char *line, size_t len, SmtpdVerb *ret_verb, char *arg_buf, size_t arg_size)
{
        SmtpdVerb verb = SMTPD_UNKNOWN;
        size_t b = 0, v, a, e;

        if (arg_size == 0)
                return -E2BIG;
        if (len == 0 || memchr(line, '\0', len)) {
                *ret_verb = SMTPD_UNKNOWN;
                arg_buf[0] = '\0';
                return 0;
        }
        /* blanks before the verb are skipped, as smtpd_token() skips them */
        while (b < len && is_space(line[b]))
                b++;
        for (v = b; v < len && !is_space(line[v]); v++)
                ;
        for (size_t i = 0; i < SMTPD_UNKNOWN; i++)
                if (v - b == 4 && strncasecmp(line + b, verb_names[i], 4) == 0) {
                        verb = (SmtpdVerb) i;
                        break;
                }
        for (a = v; a < len && is_space(line[a]); a++)
                ;
        for (e = len; e > a && is_space(line[e - 1]); e--)
                ;
        if (e - a >= arg_size)
                return -E2BIG;
        memcpy(arg_buf, line + a, e - a);
        arg_buf[e - a] = '\0';
        *ret_verb = verb;
        return 0;
}

/* ---- words, as Postfix's smtpd_token() cuts them -------------------------------------------- */

typedef struct Word {
        const char *start;
        size_t len;
        bool error; /* an unclosed < or " (Postfix's SMTPD_TOK_ERROR) */
} Word;

/* word_next - the next word of *CP into W, *CP moved past it; false at the end */
static bool word_next(const char **cp, Word *w)
{
        const char *p = *cp;

        while (is_space(*p))
                p++;
        if (!*p) {
                *cp = p;
                return false;
        }
        *w = (Word){.start = p};
        while (*p && !is_space(*p)) {
                char c = *p++;

                if (c == '\\') {
                        if (*p)
                                p++;
                } else if (c == '<' || c == '"') {
                        /* Postfix's parser stack is at most one '"' on top of nested <>: '"'
                         * inside <> protects what it holds, '<' nests only inside <> */
                        size_t angle = c == '<';
                        bool quote = c == '"';

                        while ((angle > 0 || quote) && *p) {
                                char d = *p++;

                                if (d == '\\') {
                                        if (*p)
                                                p++;
                                } else if (quote) {
                                        if (d == '"')
                                                quote = false;
                                } else if (d == '>')
                                        angle--;
                                else if (d == '<')
                                        angle++;
                                else if (d == '"')
                                        quote = true;
                        }
                        if (angle > 0 || quote) {
                                w->error = true;
                                break;
                        }
                } else if (c == ':') {
                        size_t n = (size_t) (p - w->start);

                        if ((n == 5 && strncasecmp(w->start, "from:", 5) == 0) ||
                            (n == 3 && strncasecmp(w->start, "to:", 3) == 0))
                                break;
                }
        }
        w->len = (size_t) (p - w->start);
        *cp = p;
        return true;
}

/* ---- MAIL FROM and RCPT TO ----------------------------------------------------------------- */

void smtpd_path_done(SmtpdPath *p)
{
        if (!p)
                return;
        free(p->addr);
        free(p->envid);
        free(p->orcpt);
        *p = (SmtpdPath){};
}

static int reply(SmtpdReply *r, int code, const char *dsn, const char *text)
{
        r->code = code;
        r->dsn = dsn;
        r->text = text;
        return -EINVAL;
}

/* reply_unsupported - "555 5.5.4 Unsupported option: WORD", WORD cut and made printable */
static int reply_unsupported(SmtpdReply *r, const Word *w)
{
        static const char prefix[] = "Unsupported option: ";
        size_t k = sizeof(prefix) - 1, n = MIN(w->len, (size_t) SMTPD_REPLY_QUOTE_MAX);

        _Static_assert(sizeof(prefix) + SMTPD_REPLY_QUOTE_MAX <= SMTPD_REPLY_TEXT_MAX,
                       "reply buffer too small");
        memcpy(r->buf, prefix, k);
        for (size_t i = 0; i < n; i++) {
                unsigned char u = (unsigned char) w->start[i];

                r->buf[k++] = u >= 0x20 && u < 0x7f ? (char) u : '?';
        }
        r->buf[k] = '\0';
        return reply(r, 555, "5.5.4", r->buf);
}

/* word_param - does W start with NAME= (any case)? Then *ret_value, *ret_len: the value */
static bool word_param(const Word *w, const char *name, const char **ret_value, size_t *ret_len)
{
        size_t n = strlen(name);

        if (w->len < n || strncasecmp(w->start, name, n) != 0)
                return false;
        *ret_value = w->start + n;
        *ret_len = w->len - n;
        return true;
}

static bool word_equal(const Word *w, const char *s)
{
        return w->len == strlen(s) && strncasecmp(w->start, s, w->len) == 0;
}

static int unhex(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/*
 * xtext_decode - S (N bytes of RFC 3461 xtext) decoded, appended to OUT at *K (room for N more
 * bytes and a NUL); false if malformed or if a decoded byte is one ALLOW_HIGH and printable ASCII
 * do not allow (control characters and NUL never are)
 */
static bool xtext_decode(const char *s, size_t n, bool allow_high, char *out, size_t *k)
{
        for (size_t i = 0; i < n; i++) {
                unsigned char u = (unsigned char) s[i];

                if (u == '+') {
                        int hi = i + 1 < n ? unhex(s[i + 1]) : -1;
                        int lo = i + 2 < n ? unhex(s[i + 2]) : -1;

                        if (hi < 0 || lo < 0)
                                return false;
                        u = (unsigned char) (hi << 4 | lo);
                        i += 2;
                } else if (u < '!' || u > '~' || u == '=')
                        return false;
                if (u < 0x20 || u == 0x7f || (u >= 0x80 && !allow_high))
                        return false;
                out[(*k)++] = (char) u;
        }
        out[*k] = '\0';
        return true;
}

/* notify_mask - NOTIFY's value (comma-separated, any case, empty items skipped as Postfix's
 * name_mask does), 0 if malformed or NEVER with another */
static int notify_mask(const char *v, size_t n)
{
        static const struct {
                const char *name;
                int bit;
        } names[] = {
                {"NEVER", SMTPD_NOTIFY_NEVER},
                {"SUCCESS", SMTPD_NOTIFY_SUCCESS},
                {"DELAY", SMTPD_NOTIFY_DELAY},
                {"FAILURE", SMTPD_NOTIFY_FAILURE},
        };
        int mask = 0;

        for (size_t i = 0; i < n;) {
                size_t j = i, k;

                while (j < n && v[j] != ',')
                        j++;
                if (j > i) {
                        for (k = 0; k < ELEMENTSOF(names); k++)
                                if (strlen(names[k].name) == j - i &&
                                    strncasecmp(v + i, names[k].name, j - i) == 0)
                                        break;
                        if (k == ELEMENTSOF(names))
                                return 0;
                        mask |= names[k].bit;
                }
                i = j + 1;
        }
        if ((mask & SMTPD_NOTIFY_NEVER) && mask != SMTPD_NOTIFY_NEVER)
                return 0;
        return mask;
}

/* size_value - SIZE's decimal value; -EINVAL if malformed, -ERANGE above INT64_MAX */
static int size_value(const char *v, size_t n, uint64_t *ret)
{
        uint64_t size = 0;

        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return -EINVAL;
                if (size > ((uint64_t) INT64_MAX - (uint64_t) (v[i] - '0')) / 10)
                        return -ERANGE;
                size = size * 10 + (uint64_t) (v[i] - '0');
        }
        *ret = size;
        return 0;
}

/* path_extract - the path word W as an address (malloc'ed in *ret), as Postfix's extract_addr()
 * and addr_valid(): 0, -EINVAL for bad syntax, -ENOMEM */
static int path_extract(const Word *w, bool strict, bool allow_null, char **ret)
{
        const char *t = w->start, *colon;
        size_t n = w->len;
        char *addr;

        if (w->error)
                return -EINVAL;
        if (n >= 2 && t[0] == '<' && t[n - 1] == '>') {
                t++;
                n -= 2;
        } else if (strict)
                return -EINVAL;
        /* the deprecated source route: "@a,@b:user@c" */
        if (n > 0 && t[0] == '@' && (colon = memchr(t, ':', n))) {
                n -= (size_t) (colon + 1 - t);
                t = colon + 1;
                if (n == 0)
                        return -EINVAL;
        }
        if (n == 0 && !allow_null)
                return -EINVAL;
        addr = strndup(t, n);
        if (!addr)
                return -ENOMEM;
        if (strlen(addr) != n || !addr_valid(addr)) {
                free(addr);
                return -EINVAL;
        }
        *ret = addr;
        return 0;
}

/* parse_path - MAIL (IS_MAIL) or RCPT's argument */
static int parse_path(const char *arg, bool strict, bool is_mail, SmtpdPath *ret, SmtpdReply *ret_reply)
{
        _cleanup_(smtpd_path_done) SmtpdPath p = {};
        const char *cp = arg, *v;
        bool have_size = false, have_body = false;
        size_t n;
        Word w;
        int r;

        if (!word_next(&cp, &w) || !word_equal(&w, is_mail ? "from:" : "to:") || !word_next(&cp, &w))
                return reply(ret_reply, 501, "5.5.4",
                             is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
        r = path_extract(&w, strict, is_mail, &p.addr);
        if (r == -EINVAL)
                return reply(ret_reply, 501, is_mail ? "5.1.7" : "5.1.3",
                             is_mail ? "Bad sender address syntax" : "Bad recipient address syntax");
        if (r < 0)
                return r;

        while (word_next(&cp, &w)) {
                if (is_mail && (word_equal(&w, "BODY=8BITMIME") || word_equal(&w, "BODY=7BIT"))) {
                        if (have_body)
                                return reply(ret_reply, 501, "5.5.4", "Bad BODY parameter syntax");
                        have_body = true;
                        p.body = word_equal(&w, "BODY=7BIT") ? SMTPD_BODY_7BIT : SMTPD_BODY_8BITMIME;
                } else if (is_mail && word_param(&w, "SIZE=", &v, &n)) {
                        if (have_size)
                                return reply(ret_reply, 501, "5.5.4", "Bad message size syntax");
                        r = size_value(v, n, &p.size);
                        if (r == -ERANGE)
                                return reply(ret_reply, 552, "5.3.4",
                                             "Message size exceeds file system imposed limit");
                        if (r < 0)
                                return reply(ret_reply, 501, "5.5.4", "Bad message size syntax");
                        have_size = true;
                } else if (is_mail && word_param(&w, "RET=", &v, &n)) {
                        if (p.ret != 0)
                                return reply(ret_reply, 501, "5.5.4", "Bad RET parameter syntax");
                        if (n == 4 && strncasecmp(v, "FULL", 4) == 0)
                                p.ret = SMTPD_RET_FULL;
                        else if (n == 4 && strncasecmp(v, "HDRS", 4) == 0)
                                p.ret = SMTPD_RET_HDRS;
                        else
                                return reply(ret_reply, 501, "5.5.4", "Bad RET parameter syntax");
                } else if (is_mail && word_param(&w, "ENVID=", &v, &n)) {
                        size_t k = 0;

                        if (p.envid)
                                return reply(ret_reply, 501, "5.5.4", "Bad ENVID parameter syntax");
                        p.envid = malloc(n + 1);
                        if (!p.envid)
                                return -ENOMEM;
                        if (n == 0 || !xtext_decode(v, n, false, p.envid, &k))
                                return reply(ret_reply, 501, "5.5.4", "Bad ENVID parameter syntax");
                } else if (!is_mail && word_param(&w, "NOTIFY=", &v, &n)) {
                        if (p.notify != 0 || (p.notify = notify_mask(v, n)) == 0)
                                return reply(ret_reply, 501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
                } else if (!is_mail && word_param(&w, "ORCPT=", &v, &n)) {
                        const char *semi = memchr(v, ';', n);
                        size_t type_len, k;
                        bool ok;

                        if (p.orcpt || !semi || semi == v)
                                return reply(ret_reply, 501, "5.5.4", "Error: Bad ORCPT parameter syntax");
                        type_len = (size_t) (semi - v);
                        for (size_t i = 0; i < type_len; i++)
                                if (v[i] < '!' || v[i] > '~')
                                        return reply(ret_reply, 501, "5.5.4",
                                                     "Error: Bad ORCPT parameter syntax");
                        p.orcpt = malloc(n + 1);
                        if (!p.orcpt)
                                return -ENOMEM;
                        memcpy(p.orcpt, v, type_len + 1);
                        k = type_len + 1;
                        ok = xtext_decode(semi + 1, n - type_len - 1, true, p.orcpt, &k);
                        if (!ok || k == type_len + 1)
                                return reply(ret_reply, 501, "5.5.4", "Error: Bad ORCPT parameter syntax");
                } else
                        return reply_unsupported(ret_reply, &w);
        }
        *ret = p;
        p = (SmtpdPath){};
        return 0;
}

int smtpd_parse_mail(const char *arg, bool strict, SmtpdPath *ret, SmtpdReply *ret_reply)
{
        return parse_path(arg, strict, true, ret, ret_reply);
}

int smtpd_parse_rcpt(const char *arg, bool strict, SmtpdPath *ret, SmtpdReply *ret_reply)
{
        return parse_path(arg, strict, false, ret, ret_reply);
}

int smtpd_addr_domain(const char *addr, char *buf, size_t size)
{
        const char *at = NULL;
        bool quoted = false;
        size_t n;

        for (const char *p = addr; *p; p++) {
                if (*p == '\\' && p[1])
                        p++;
                else if (*p == '"')
                        quoted = !quoted;
                else if (!quoted && *p == '@')
                        at = p;
        }
        at = at ? at + 1 : addr + strlen(addr);
        n = strlen(at);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(buf, at, n + 1);
        lowercase_ascii(buf);
        return 0;
}

/* ---- ETRN ---------------------------------------------------------------------------------- */

/* valid_literal - "[a.b.c.d]" or "[ipv6:...]" (any case), as Postfix's valid_mailhost_literal() */
static bool valid_literal(const char *s, size_t n)
{
        char inner[SMTPD_LITERAL_MAX];
        unsigned char bin[16];

        if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(inner))
                return false;
        memcpy(inner, s + 1, n - 2);
        inner[n - 2] = '\0';
        if (strlen(inner) != n - 2)
                return false;
        if (strncasecmp(inner, "ipv6:", 5) == 0)
                return inet_pton(AF_INET6, inner + 5, bin) == 1;
        return inet_pton(AF_INET, inner, bin) == 1;
}

int smtpd_parse_etrn(const char *arg, char *site, size_t size, SmtpdReply *ret_reply)
{
        const char *cp = arg, *s;
        char host[DOMAIN_NAME_MAX + 1];
        Word w, extra;
        size_t n;

        if (!word_next(&cp, &w) || word_next(&cp, &extra))
                return reply(ret_reply, 500, "", "Syntax: ETRN domain");
        s = w.start;
        n = w.len;
        if (s[0] == '@' || s[0] == '#') {
                s++;
                n--;
        }
        if (w.error || n == 0 || n > DOMAIN_NAME_MAX)
                return reply(ret_reply, 501, "", "Error: invalid parameter syntax");
        memcpy(host, s, n);
        host[n] = '\0';
        if (!valid_literal(host, n) && (strlen(host) != n || !valid_hostname(host)))
                return reply(ret_reply, 501, "", "Error: invalid parameter syntax");
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(site, host, n + 1);
        return 0;
}

/* ---- DATA ---------------------------------------------------------------------------------- */

int smtpd_data_line(const char *line, size_t len, const char **ret_data, size_t *ret_len)
{
        if (len == 1 && line[0] == '.')
                return 1;
        if (len > 0 && line[0] == '.') {
                line++;
                len--;
        }
        *ret_data = line;
        *ret_len = len;
        return 0;
}
