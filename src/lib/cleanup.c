/* SPDX-License-Identifier: MIT */
/*
 * cleanup.c - Postfix's cleanup(8) for locally submitted mail (as pickup hands it over) and for
 * SMTP (as smtpd hands it over: CLEANUP_SMTP), pure code
 *
 * Input: an envelope (cleanup_set_sender, cleanup_add_recipient) and the message bytes in chunks
 * of any size (cleanup_write). Output: one whole queue file, built by cleanup_finish() into a
 * QueueBuf (queue-file.h), laid out as Postfix's cleanup writes it:
 *
 *   C (fixed width, written as zeros, then rewritten with the final values) T A(create_time)
 *   [W "%15ld" when delay_warning_time is set: when qmgr sends the delay notice]
 *   [F] S [A log_client_name log_client_address log_message_origin log_helo_name
 *   log_protocol_name: smtpd's order, only those set] [A envelope_id] [A ret_flags]
 *   ([A dsn_orig_rcpt] [A notify_flags] [O] R)* M
 *   Received: (2 records; smtpd's 3) <the message's headers> [Message-Id:] [Date:] [From:] <body> X E
 *
 * The C record: content size = bytes from data_offset to the X record; data_offset = the offset
 * of the first content record (just after M); the recipient count; qmgr flags 0 (all recipients
 * sit together before M); content length = the content size, as Postfix's cleanup_final() writes
 * it (qmgr logs this figure as size=); sendopts 0. Offsets count from where OUT ended on entry.
 *
 * Rules, each following Postfix (pickup.c, cleanup_message.c, mime_state.c, header_opts.c):
 *   - Lines end at LF or CRLF and are stored without it; a CR not followed by LF is data. A NUL
 *     byte refuses the message (-EBADMSG), sticky. Without CLEANUP_IGNORE_DOTS a line "." ends
 *     the input (sendmail without -i) and everything after it is ignored.
 *   - Size: every input line counts its length + 1 (an LF), the final unterminated line too; the
 *     "." line does not count. Over message_size_limit: -EFBIG, sticky, checked as bytes arrive.
 *   - Lines over QUEUE_FILE_LINE_MAX become L...N records (queue_buf_put_line).
 *   - Headers: pickup's "Received: by HOST (tern, from userid UID)" + "\tid QUEUEID; DATE" come
 *     first, then the message's initial header block: "Name:" lines (is_header: printable ASCII
 *     but ':', blanks allowed before the colon) and their continuation lines (starting with SP or
 *     TAB). The block ends at an empty line (stored, as the first body line), or at any other
 *     line, before which an empty line is inserted (mime_state.c: "Force output of one blank
 *     line"). A first line that starts with SP/TAB also gets the empty line before it, so it
 *     cannot continue our Received: header (pickup.c's "ugly Kluge"). Input that ends inside the
 *     header block gets no empty line.
 *   - Header names match case-insensitively, blanks before the colon ignored. Bcc:, Resent-Bcc:,
 *     Content-Length: and Return-Path: are dropped (message_drop_headers default), with or
 *     without CLEANUP_EXTRACT_RCPT. When any Resent- header is present the added headers are
 *     Resent-Message-Id:, Resent-Date:, Resent-From:, each added when that Resent- header is
 *     missing, and -t takes recipients from Resent-To/Cc/Bcc only; otherwise Message-Id:,
 *     Date:, From: and To/Cc/Bcc. Added headers go after the message's own (Postfix's order:
 *     Message-Id, Date, From).
 *   - Date: mail_date() "Mon, 23 Nov 2026 08:59:00 +0000 (UTC)"; Message-Id:
 *     <YYYYMMDDhhmmss.QUEUEID@MYHOSTNAME>; From: "Full Name" <sender> (hfrom_format=standard:
 *     the phrase is quoted when it holds specials or "%!", else its blanks are collapsed;
 *     CR/LF become spaces; a blank name gives "From: <sender>"), From: sender without a full
 *     name, From: MAILER-DAEMON for the null sender.
 *   - Addresses: "" is the null sender; a bare local part is qualified with @myorigin; the
 *     result must pass addr_valid(). Duplicate recipients are dropped (Postfix's duplicate
 *     filter); recipient_limit counts distinct recipients. O records carry what the client gave
 *     when qualification changed it.
 *   - 50 Received: headers or more (ours included): refused, -ELOOP (hopcount_limit).
 *
 * Invariants: the whole message is held in memory until cleanup_finish() (headers as physical
 * lines, body lines joined with LF, which cannot occur inside a line); nothing is written before
 * the input is known good; a failed cleanup_finish() leaves OUT as it found it.
 *
 * Limits and known differences from Postfix, honestly:
 *   - Dates are always UTC ("+0000 (UTC)"): the library has no time zone (no global state), and
 *     the day of month always has two digits (Postfix >= 3.x's TWO_DIGIT_DAY form; older Postfix
 *     pads with a blank).
 *   - Message-Id uses the YYYYMMDDhhmmss.QUEUEID form that Postfix uses with short queue IDs;
 *     Postfix with long IDs writes <QUEUEID@host>.
 *   - No header_size_limit truncation, no header/body checks, no MIME processing, no canonical
 *     maps or masquerading, no rewrite_context attribute, no To: undisclosed-recipients:;
 *     (Postfix >= 2.8's default undisclosed_recipients_header is empty).
 *   - A full name with non-ASCII bytes is written as it is (no RFC 2047 encoding), as Postfix.
 *   - Recipients extracted with -t are written before M with the envelope ones (Postfix puts
 *     them after X); readers take both.
 *   - addr_valid() accepts bytes >= 0x80 in local parts and domain labels (SMTPUTF8) without
 *     checking UTF-8, and '_' in domain labels.
 *   - A leading mbox "From " line is not removed here (that is the sendmail front end's job).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "macro.h"

/* RFC 5321 4.5.3.1: local-part 64 octets, domain 255, path 256 including the angle brackets. */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_MAX 254
#define ADDR_LABEL_MAX 63
/* Postfix hopcount_limit: a message that has seen this many Received: headers is looping. */
#define CLEANUP_HOPCOUNT_LIMIT 50
/* How much of a bad address an error text quotes. */
#define CLEANUP_ERROR_QUOTE_MAX 100

/* header_opts.c, the part local submission uses */
enum {
        HDR_OTHER,
        HDR_BCC,
        HDR_CC,
        HDR_CONTENT_LENGTH,
        HDR_DATE,
        HDR_FROM,
        HDR_MESSAGE_ID,
        HDR_RECEIVED,
        HDR_RESENT_BCC,
        HDR_RESENT_CC,
        HDR_RESENT_DATE,
        HDR_RESENT_FROM,
        HDR_RESENT_MESSAGE_ID,
        HDR_RESENT_REPLY_TO,
        HDR_RESENT_SENDER,
        HDR_RESENT_TO,
        HDR_RETURN_PATH,
        HDR_TO,
};

enum {
        HDR_OPT_DROP = 1U << 0,    /* message_drop_headers */
        HDR_OPT_RR = 1U << 1,      /* a Resent- header */
        HDR_OPT_EXTRACT = 1U << 2, /* recipients for -t */
};

typedef struct HeaderOpts {
        const char *name;
        int type;
        unsigned flags;
} HeaderOpts;

static const HeaderOpts header_opts[] = {
        {"Bcc", HDR_BCC, HDR_OPT_EXTRACT | HDR_OPT_DROP},
        {"Cc", HDR_CC, HDR_OPT_EXTRACT},
        {"Content-Length", HDR_CONTENT_LENGTH, HDR_OPT_DROP},
        {"Date", HDR_DATE, 0},
        {"From", HDR_FROM, 0},
        {"Message-Id", HDR_MESSAGE_ID, 0},
        {"Received", HDR_RECEIVED, 0},
        {"Resent-Bcc", HDR_RESENT_BCC, HDR_OPT_EXTRACT | HDR_OPT_RR | HDR_OPT_DROP},
        {"Resent-Cc", HDR_RESENT_CC, HDR_OPT_EXTRACT | HDR_OPT_RR},
        {"Resent-Date", HDR_RESENT_DATE, HDR_OPT_RR},
        {"Resent-From", HDR_RESENT_FROM, HDR_OPT_RR},
        {"Resent-Message-Id", HDR_RESENT_MESSAGE_ID, HDR_OPT_RR},
        {"Resent-Reply-To", HDR_RESENT_REPLY_TO, HDR_OPT_RR},
        {"Resent-Sender", HDR_RESENT_SENDER, HDR_OPT_RR},
        {"Resent-To", HDR_RESENT_TO, HDR_OPT_EXTRACT | HDR_OPT_RR},
        {"Return-Path", HDR_RETURN_PATH, HDR_OPT_DROP},
        {"To", HDR_TO, HDR_OPT_EXTRACT},
};

typedef struct Header {
        char *text; /* physical lines joined with '\n' */
        size_t len;
} Header;

/* A growing byte string. */
typedef struct Str {
        char *data;
        size_t len, alloc;
} Str;

/* An envelope recipient: qualified, what the client gave when that differs (else NULL), and its
 * DSN attributes (RFC 3461 ORCPT as "type;address", or NULL; NOTIFY bits, or 0). */
typedef struct Rcpt {
        char *addr, *orig, *dsn_orcpt;
        int dsn_notify;
} Rcpt;

struct Cleanup {
        char *myhostname, *myorigin;
        char *log_client_name, *log_client_address, *log_helo_name, *log_protocol_name;
        char *log_message_origin;
        uint64_t message_size_limit;
        size_t recipient_limit;
        unsigned flags;
        uid_t uid;
        int64_t delay_warning_time;

        char *sender; /* qualified; NULL until set */
        char *full_name;
        Rcpt *rcpts;
        size_t n_rcpts, alloc_rcpts;
        char *dsn_envid;
        int dsn_ret;

        char *error;
        int failed; /* sticky content error */
        bool done_input, finished;

        Str line;        /* the line being assembled */
        bool cr_pending; /* the last byte seen was a CR */
        bool in_headers, first_line;
        Header *headers;
        size_t n_headers, alloc_headers;
        Str body;      /* body lines, each followed by '\n' */
        uint64_t size; /* input size, LF line ends */
};

/* str_reserve - room for N more bytes and a NUL */
static int str_reserve(Str *s, size_t n)
{
        size_t need, a;
        char *p;

        if (n > SIZE_MAX - s->len - 1)
                return -ENOMEM;
        need = s->len + n + 1;
        if (need <= s->alloc)
                return 0;
        a = MAX(s->alloc, (size_t)64);
        while (a < need)
                a = a > SIZE_MAX / 2 ? need : a * 2;
        p = realloc(s->data, a);
        if (!p)
                return -ENOMEM;
        s->data = p;
        s->alloc = a;
        return 0;
}

/* str_append - append N bytes; the string stays NUL-terminated */
static int str_append(Str *s, const void *p, size_t n)
{
        int r = str_reserve(s, n);

        if (r < 0)
                return r;
        if (n > 0)
                memcpy(s->data + s->len, p, n);
        s->len += n;
        s->data[s->len] = 0;
        return 0;
}

static int str_appendc(Str *s, char c)
{
        return str_append(s, &c, 1);
}

static int str_appends(Str *s, const char *p)
{
        return str_append(s, p, strlen(p));
}

static void str_done(Str *s)
{
        free(s->data);
        *s = (Str){};
}

static char *strdup_or_null(const char *s, bool *oom)
{
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *oom = true;
        return d;
}

/* ---- addresses ---- */

/* is_atext - RFC 5322 atext, plus bytes >= 0x80 (SMTPUTF8) */
static bool is_atext(unsigned char c)
{
        if (c >= 0x80)
                return true;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return true;
        return c && strchr("!#$%&'*+-/=?^_`{|}~", c);
}

/* quoted_string_end - S[0] is '"': the index just past the closing quote, 0 if unterminated or
 * holding what RFC 5321 qtextSMTP / quoted-pairSMTP does not allow */
static size_t quoted_string_end(const char *s, size_t n)
{
        for (size_t i = 1; i < n; i++) {
                unsigned char c = s[i];

                if (c == '"')
                        return i + 1;
                if (c == '\\') {
                        if (++i >= n || (unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
                                return 0;
                        continue;
                }
                if ((c < 32 || c == 127) && c != '\t')
                        return 0;
        }
        return 0;
}

/* domain_valid - a dot-separated hostname or an address literal "[...]" */
static bool domain_valid(const char *d, size_t n)
{
        size_t label = 0;

        if (n == 0 || n > ADDR_DOMAIN_MAX)
                return false;
        if (d[0] == '[') {
                if (n < 3 || d[n - 1] != ']')
                        return false;
                for (size_t i = 1; i < n - 1; i++) {
                        unsigned char c = d[i];

                        /* dtext: %d33-90 / %d94-126 */
                        if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
                                return false;
                }
                return true;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = d[i];

                if (c == '.') {
                        if (label == 0 || d[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c >= 0x80))
                        return false;
                if (c == '-' && label == 0)
                        return false;
                if (++label > ADDR_LABEL_MAX)
                        return false;
        }
        return label > 0 && d[n - 1] != '-';
}

/* addr_local_end - the length of the local part at the start of A (dot-string or
 * quoted-string), 0 if there is none */
static size_t addr_local_end(const char *a, size_t n)
{
        size_t i = 0;

        if (n > 0 && a[0] == '"')
                return quoted_string_end(a, n);
        for (;;) {
                size_t start = i;

                while (i < n && is_atext(a[i]))
                        i++;
                if (i == start)
                        return 0;
                if (i < n && a[i] == '.') {
                        i++;
                        continue;
                }
                return i;
        }
}

/* addr_valid - RFC 5321 Mailbox (or a bare local part, or "") with RFC 5321 length limits */
bool addr_valid(const char *addr)
{
        size_t n, l;

        if (!addr)
                return false;
        n = strlen(addr);
        if (n == 0)
                return true;
        if (n > ADDR_MAX)
                return false;
        l = addr_local_end(addr, n);
        if (l == 0 || l > ADDR_LOCAL_MAX)
                return false;
        if (l == n)
                return true;
        if (addr[l] != '@')
                return false;
        return domain_valid(addr + l + 1, n - l - 1);
}

/* addr_at - the '@' that separates local part and domain (outside quotes), or NULL */
static const char *addr_at(const char *addr)
{
        const char *at = NULL;
        bool quoted = false;

        for (const char *p = addr; *p; p++) {
                if (quoted && *p == '\\' && p[1])
                        p++;
                else if (*p == '"')
                        quoted = !quoted;
                else if (!quoted && *p == '@')
                        at = p;
        }
        return at;
}

/* addr_qualify - "user" -> "user@ORIGIN"; "" and full addresses as they are */
int addr_qualify(const char *addr, const char *origin, char **ret)
{
        char *s;

        if (!addr || !ret)
                return -EINVAL;
        if (*addr == 0 || addr_at(addr))
                s = strdup(addr);
        else {
                if (isempty(origin))
                        return -EINVAL;
                if (asprintf(&s, "%s@%s", addr, origin) < 0)
                        s = NULL;
        }
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* The RFC 5322 address-list tokenizer. */
enum {
        TOK_END,
        TOK_WORD,    /* atom (atext run) */
        TOK_QSTRING, /* "..." with its quotes */
        TOK_DLIT,    /* [...] with its brackets */
        TOK_SPECIAL, /* one of < > @ , ; : . */
};

typedef struct Tok {
        int type;
        const char *p;
        size_t n;
        bool space_before; /* blanks or a comment came before it */
} Tok;

typedef struct Lexer {
        const char *s;
        size_t n, i;
} Lexer;

/* lex_next - the next token; -EINVAL for an unterminated quote, comment or literal, or a byte
 * that has no place in a header (a control character, a stray ')' ']' '\') */
static int lex_next(Lexer *x, Tok *t)
{
        bool space = false;

        for (;;) {
                if (x->i >= x->n) {
                        *t = (Tok){.type = TOK_END, .space_before = space};
                        return 0;
                }
                unsigned char c = x->s[x->i];
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                        x->i++;
                        space = true;
                        continue;
                }
                if (c == '(') {
                        unsigned depth = 0;

                        for (; x->i < x->n; x->i++) {
                                char d = x->s[x->i];

                                if (d == '\\')
                                        x->i++;
                                else if (d == '(')
                                        depth++;
                                else if (d == ')' && --depth == 0)
                                        break;
                        }
                        if (x->i >= x->n)
                                return -EINVAL;
                        x->i++;
                        space = true;
                        continue;
                }
                break;
        }

        unsigned char c = x->s[x->i];
        size_t start = x->i;

        t->space_before = space;
        t->p = x->s + start;
        if (c == '"') {
                size_t i;

                for (i = start + 1; i < x->n && x->s[i] != '"'; i++)
                        if (x->s[i] == '\\')
                                i++;
                if (i >= x->n)
                        return -EINVAL;
                x->i = i + 1;
                t->type = TOK_QSTRING;
        } else if (c == '[') {
                size_t i;

                for (i = start + 1; i < x->n && x->s[i] != ']'; i++)
                        if (x->s[i] == '[' || x->s[i] == '\\')
                                return -EINVAL;
                if (i >= x->n)
                        return -EINVAL;
                x->i = i + 1;
                t->type = TOK_DLIT;
        } else if (strchr("<>@,;:.", c) && c) {
                x->i++;
                t->type = TOK_SPECIAL;
        } else if (is_atext(c)) {
                while (x->i < x->n && is_atext(x->s[x->i]))
                        x->i++;
                t->type = TOK_WORD;
        } else
                return -EINVAL;
        t->n = x->i - start;
        return 0;
}

static bool tok_is(const Tok *t, char c)
{
        return t->type == TOK_SPECIAL && t->p[0] == c;
}

typedef struct AddrVec {
        char **v;
        size_t n, alloc;
} AddrVec;

static void addr_vec_done(AddrVec *a)
{
        for (size_t i = 0; i < a->n; i++)
                free(a->v[i]);
        free(a->v);
        *a = (AddrVec){};
}

static int addr_vec_add(AddrVec *a, Str *s)
{
        if (a->n + 2 > a->alloc) {
                size_t na = MAX(a->alloc * 2, (size_t)8);
                char **v = realloc(a->v, na * sizeof(char *));

                if (!v)
                        return -ENOMEM;
                a->v = v;
                a->alloc = na;
        }
        a->v[a->n++] = TAKE_PTR(s->data);
        a->v[a->n] = NULL;
        *s = (Str){};
        return 0;
}

/*
 * addr_spec_add - TOKS[0..N) are an addr-spec (words, quoted strings and literals joined by '.'
 * and '@', blanks between them allowed as obs-local-part does): add its text to A; nothing for
 * an empty one; -EINVAL for two words side by side (a phrase with no <address>) or a special
 */
static int addr_spec_add(AddrVec *a, const Tok *toks, size_t n)
{
        _cleanup_(str_done) Str s = {};
        bool prev_word = false;
        int r;

        for (size_t i = 0; i < n; i++) {
                const Tok *t = toks + i;

                if (t->type == TOK_SPECIAL && !tok_is(t, '.') && !tok_is(t, '@'))
                        return -EINVAL;
                bool word = t->type != TOK_SPECIAL;
                if (word && prev_word)
                        return -EINVAL;
                prev_word = word;
                r = str_append(&s, t->p, t->n);
                if (r < 0)
                        return r;
        }
        if (s.len == 0)
                return 0;
        return addr_vec_add(a, &s);
}

/* addr_list_parse - see cleanup.h; groups may not nest; ';' outside a group separates like ',' */
int addr_list_parse(const char *value, size_t size, char ***ret)
{
        _cleanup_(addr_vec_done) AddrVec a = {};
        _cleanup_(freep) Tok *toks = NULL;
        size_t n = 0, alloc = 0;
        Lexer x = {.s = value, .n = size};
        bool in_group = false;
        int r;

        if (!ret || (!value && size > 0))
                return -EINVAL;

        /* Tokenize the whole value first. */
        for (;;) {
                Tok t;

                r = lex_next(&x, &t);
                if (r < 0)
                        return r;
                if (n >= alloc) {
                        size_t na = MAX(alloc * 2, (size_t)16);
                        Tok *nt = realloc(toks, na * sizeof(Tok));

                        if (!nt)
                                return -ENOMEM;
                        toks = nt;
                        alloc = na;
                }
                toks[n++] = t;
                if (t.type == TOK_END)
                        break;
        }

        /* Then walk the elements: [phrase ':' in a group] ... separated by ',' or ';'. */
        for (size_t i = 0; toks[i].type != TOK_END;) {
                size_t start = i, open = SIZE_MAX, close = SIZE_MAX;
                bool group = false;

                /* find the end of this element, noting its <...> and a group's ':' */
                for (; toks[i].type != TOK_END; i++) {
                        const Tok *t = toks + i;

                        if (open != SIZE_MAX && close == SIZE_MAX) {
                                if (tok_is(t, '<'))
                                        return -EINVAL;
                                if (tok_is(t, '>'))
                                        close = i;
                                continue;
                        }
                        if (tok_is(t, ',') || tok_is(t, ';'))
                                break;
                        if (tok_is(t, '>') || (tok_is(t, '<') && open != SIZE_MAX))
                                return -EINVAL;
                        if (tok_is(t, '<'))
                                open = i;
                        else if (tok_is(t, ':') && open == SIZE_MAX) {
                                group = true;
                                break;
                        }
                }
                if (group) {
                        /* "display-name:" starts a group */
                        if (in_group)
                                return -EINVAL;
                        in_group = true;
                        i++;
                        continue;
                }

                if (open == SIZE_MAX)
                        r = addr_spec_add(&a, toks + start, i - start);
                else {
                        size_t s = open + 1;

                        if (close == SIZE_MAX || close + 1 != i) /* unclosed, or words after it */
                                return -EINVAL;
                        /* obs-route: "@a,@b:" before the address */
                        if (s < close && tok_is(&toks[s], '@')) {
                                while (s < close && !tok_is(&toks[s], ':'))
                                        s++;
                                if (s >= close)
                                        return -EINVAL;
                                s++;
                        }
                        r = addr_spec_add(&a, toks + s, close - s);
                }
                if (r < 0)
                        return r;

                if (tok_is(&toks[i], ';'))
                        in_group = false;
                if (toks[i].type != TOK_END)
                        i++;
        }

        if (!a.v) {
                a.v = calloc(1, sizeof(char *));
                if (!a.v)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a.v);
        a.n = 0;
        return 0;
}

/* ---- the cleanup state ---- */

/* cleanup_set_error - replace the error text; the address, if any, is cut and made printable */
static int cleanup_set_error(Cleanup *c, int error, const char *text, const char *addr)
{
        char quoted[CLEANUP_ERROR_QUOTE_MAX + 4];
        size_t k = 0;
        char *e;

        free(c->error);
        c->error = NULL;
        if (addr) {
                for (const char *p = addr; *p && k < CLEANUP_ERROR_QUOTE_MAX; p++)
                        quoted[k++] = (unsigned char)*p < 32 || *p == 127 ? '?' : *p;
                if (addr[k] && k == CLEANUP_ERROR_QUOTE_MAX) {
                        memcpy(quoted + k, "...", 3);
                        k += 3;
                }
                quoted[k] = 0;
                if (asprintf(&e, "%s: <%s>", text, quoted) >= 0)
                        c->error = e;
        } else
                c->error = strdup(text);
        return error;
}

int cleanup_new(const CleanupOptions *o, Cleanup **ret)
{
        Cleanup *c;
        bool oom = false;

        if (!o || !ret || isempty(o->myhostname) || isempty(o->myorigin))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->delay_warning_time = o->delay_warning_time;
        c->myhostname = strdup_or_null(o->myhostname, &oom);
        c->myorigin = strdup_or_null(o->myorigin, &oom);
        c->log_client_name = strdup_or_null(o->log_client_name, &oom);
        c->log_client_address = strdup_or_null(o->log_client_address, &oom);
        c->log_helo_name = strdup_or_null(o->log_helo_name, &oom);
        c->log_protocol_name = strdup_or_null(o->log_protocol_name, &oom);
        c->log_message_origin = strdup_or_null(o->log_message_origin, &oom);
        c->dsn_envid = strdup_or_null(o->dsn_envid, &oom);
        c->dsn_ret = o->dsn_ret;
        c->message_size_limit = o->message_size_limit;
        c->recipient_limit = o->recipient_limit;
        c->flags = o->flags;
        c->uid = o->uid;
        c->in_headers = true;
        c->first_line = true;
        if (oom) {
                cleanup_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

Cleanup *cleanup_free(Cleanup *c)
{
        if (!c)
                return NULL;
        free(c->myhostname);
        free(c->myorigin);
        free(c->log_client_name);
        free(c->log_client_address);
        free(c->log_helo_name);
        free(c->log_protocol_name);
        free(c->log_message_origin);
        free(c->sender);
        free(c->full_name);
        free(c->dsn_envid);
        for (size_t i = 0; i < c->n_rcpts; i++) {
                free(c->rcpts[i].addr);
                free(c->rcpts[i].orig);
                free(c->rcpts[i].dsn_orcpt);
        }
        free(c->rcpts);
        free(c->error);
        str_done(&c->line);
        for (size_t i = 0; i < c->n_headers; i++)
                free(c->headers[i].text);
        free(c->headers);
        str_done(&c->body);
        free(c);
        return NULL;
}

/* cleanup_set_sender - see cleanup.h */
int cleanup_set_sender(Cleanup *c, const char *sender, const char *full_name)
{
        _cleanup_(freep) char *q = NULL, *f = NULL;
        int r;

        if (!c || !sender)
                return -EINVAL;
        r = addr_qualify(sender, c->myorigin, &q);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !addr_valid(q))
                return cleanup_set_error(c, -EINVAL, "bad sender address syntax", sender);
        if (full_name) {
                f = strdup(full_name);
                if (!f)
                        return -ENOMEM;
        }
        free(c->sender);
        c->sender = TAKE_PTR(q);
        free(c->full_name);
        c->full_name = TAKE_PTR(f);
        return 0;
}

/* cleanup_rcpt_add - qualify, validate, drop duplicates, count against the limit; CONTEXT names
 * the header an extracted address came from (NULL: the envelope) */
static int cleanup_rcpt_add(Cleanup *c, const char *recipient, const char *context, const char *dsn_orcpt,
                            int dsn_notify)
{
        _cleanup_(freep) char *q = NULL, *orig = NULL, *text = NULL, *orcpt = NULL;
        int r;

        r = recipient ? addr_qualify(recipient, c->myorigin, &q) : -EINVAL;
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !*q || !addr_valid(q)) {
                if (context && asprintf(&text, "bad recipient address syntax in %s: header", context) < 0)
                        return -ENOMEM;
                return cleanup_set_error(c, -EINVAL, text ? text : "bad recipient address syntax",
                                         strempty(recipient));
        }
        for (size_t i = 0; i < c->n_rcpts; i++)
                if (streq(c->rcpts[i].addr, q))
                        return 0; /* Postfix's duplicate filter */
        if (c->recipient_limit > 0 && c->n_rcpts >= c->recipient_limit)
                return cleanup_set_error(c, -E2BIG, "too many recipients", NULL);
        if (!streq(q, recipient)) {
                orig = strdup(recipient);
                if (!orig)
                        return -ENOMEM;
        }
        if (dsn_orcpt) {
                orcpt = strdup(dsn_orcpt);
                if (!orcpt)
                        return -ENOMEM;
        }
        if (c->n_rcpts >= c->alloc_rcpts) {
                size_t na = MAX(c->alloc_rcpts * 2, (size_t)4);
                Rcpt *v = realloc(c->rcpts, na * sizeof(Rcpt));

                if (!v)
                        return -ENOMEM;
                c->rcpts = v;
                c->alloc_rcpts = na;
        }
        c->rcpts[c->n_rcpts++] = (Rcpt){
                .addr = TAKE_PTR(q),
                .orig = TAKE_PTR(orig),
                .dsn_orcpt = TAKE_PTR(orcpt),
                .dsn_notify = dsn_notify,
        };
        return 0;
}

int cleanup_add_recipient(Cleanup *c, const char *recipient)
{
        if (!c)
                return -EINVAL;
        return cleanup_rcpt_add(c, recipient, NULL, NULL, 0);
}

int cleanup_add_recipient_dsn(Cleanup *c, const char *recipient, const char *dsn_orcpt, int dsn_notify)
{
        if (!c)
                return -EINVAL;
        return cleanup_rcpt_add(c, recipient, NULL, dsn_orcpt, dsn_notify);
}

/* header_name_len - is_header(): the length of the header name at the start of S (printable
 * ASCII but ':', then optional blanks, then ':'), 0 if S is not a header line */
static size_t header_name_len(const char *s, size_t n)
{
        size_t len = 0;
        bool blanks = false;

        for (size_t i = 0; i < n; i++) {
                unsigned char c = s[i];

                if (c == ':')
                        return len;
                if (c == ' ' || c == '\t') {
                        if (len == 0)
                                return 0;
                        blanks = true;
                        continue;
                }
                if (c <= 32 || c >= 127 || blanks)
                        return 0;
                len++;
        }
        return 0;
}

/* cleanup_body_line - one body line */
static int cleanup_body_line(Cleanup *c, const char *s, size_t n)
{
        int r = str_append(&c->body, s, n);

        return r < 0 ? r : str_appendc(&c->body, '\n');
}

/* cleanup_end_headers - leave the header block; INSERT_BLANK: the line that ended it is not the
 * empty line (mime_state.c forces one out) */
static int cleanup_end_headers(Cleanup *c, bool insert_blank)
{
        c->in_headers = false;
        return insert_blank ? cleanup_body_line(c, "", 0) : 0;
}

/* cleanup_line - one complete input line (without its ending) */
static int cleanup_line(Cleanup *c, const char *s, size_t n)
{
        bool first = c->first_line;
        int r;

        c->first_line = false;
        if (!(c->flags & CLEANUP_IGNORE_DOTS) && n == 1 && s[0] == '.') {
                c->done_input = true;
                return 0;
        }
        c->size += n + 1;
        if (c->message_size_limit > 0 && c->size > c->message_size_limit)
                return -EFBIG;

        if (!c->in_headers)
                return cleanup_body_line(c, s, n);
        if (n == 0) {
                c->in_headers = false; /* the empty line is the body's first line */
                return cleanup_body_line(c, s, n);
        }
        if ((s[0] == ' ' || s[0] == '\t') && !first && c->n_headers > 0) {
                Header *h = c->headers + c->n_headers - 1;
                char *t = realloc(h->text, h->len + 1 + n + 1);

                if (!t)
                        return -ENOMEM;
                t[h->len] = '\n';
                memcpy(t + h->len + 1, s, n);
                h->len += 1 + n;
                t[h->len] = 0;
                h->text = t;
                return 0;
        }
        if (header_name_len(s, n) > 0) {
                Header *h;

                if (c->n_headers >= c->alloc_headers) {
                        size_t na = MAX(c->alloc_headers * 2, (size_t)16);
                        Header *v = realloc(c->headers, na * sizeof(Header));

                        if (!v)
                                return -ENOMEM;
                        c->headers = v;
                        c->alloc_headers = na;
                }
                h = c->headers + c->n_headers;
                h->text = malloc(n + 1);
                if (!h->text)
                        return -ENOMEM;
                memcpy(h->text, s, n);
                h->text[n] = 0;
                h->len = n;
                c->n_headers++;
                return 0;
        }
        r = cleanup_end_headers(c, true);
        return r < 0 ? r : cleanup_body_line(c, s, n);
}

/* cleanup_fail - make a content error sticky, with its text */
static int cleanup_fail(Cleanup *c, int r)
{
        c->failed = r;
        switch (r) {
        case -EBADMSG:
                return cleanup_set_error(c, r, "message contains NUL bytes", NULL);
        case -EFBIG:
                return cleanup_set_error(c, r, "message file too big", NULL);
        default:
                return cleanup_set_error(c, r, "out of memory", NULL);
        }
}

/* cleanup_line_done - the assembled line is complete */
static int cleanup_line_done(Cleanup *c)
{
        int r = cleanup_line(c, c->line.data ? c->line.data : "", c->line.len);

        c->line.len = 0;
        return r;
}

/* cleanup_write - see cleanup.h */
int cleanup_write(Cleanup *c, const void *data, size_t size)
{
        const char *p = data, *end = p + size;
        int r;

        if (!c || (!data && size > 0))
                return -EINVAL;
        if (c->finished)
                return -EINVAL;
        if (c->failed)
                return c->failed;

        while (p < end && !c->done_input) {
                if (c->cr_pending) {
                        c->cr_pending = false;
                        if (*p == '\n') {
                                p++;
                                r = cleanup_line_done(c);
                                if (r < 0)
                                        return cleanup_fail(c, r);
                                continue;
                        }
                        r = str_appendc(&c->line, '\r');
                        if (r < 0)
                                return cleanup_fail(c, r);
                }

                /* the run of ordinary bytes */
                const char *q = p;
                while (q < end && *q != '\n' && *q != '\r' && *q != 0)
                        q++;
                if (q > p) {
                        r = str_append(&c->line, p, q - p);
                        if (r < 0)
                                return cleanup_fail(c, r);
                }
                if (c->message_size_limit > 0 && c->size + c->line.len > c->message_size_limit)
                        return cleanup_fail(c, -EFBIG);
                p = q;
                if (p >= end)
                        break;
                if (*p == 0)
                        return cleanup_fail(c, -EBADMSG);
                if (*p == '\r')
                        c->cr_pending = true;
                else {
                        r = cleanup_line_done(c);
                        if (r < 0)
                                return cleanup_fail(c, r);
                }
                p++;
        }
        return 0;
}

/* cleanup_write_line - see cleanup.h */
int cleanup_write_line(Cleanup *c, const void *data, size_t size, bool more)
{
        int r;

        if (!c || (!data && size > 0) || c->finished || c->cr_pending)
                return -EINVAL;
        if (c->failed)
                return c->failed;
        if (size > 0 && memchr(data, 0, size))
                return cleanup_fail(c, -EBADMSG);
        r = str_append(&c->line, data, size);
        if (r < 0)
                return cleanup_fail(c, r);
        if (c->message_size_limit > 0 && c->size + c->line.len > c->message_size_limit)
                return cleanup_fail(c, -EFBIG);
        if (more)
                return 0;
        r = cleanup_line_done(c);
        return r < 0 ? cleanup_fail(c, r) : 0;
}

bool cleanup_done_input(const Cleanup *c)
{
        return c && c->done_input;
}

const char *cleanup_error(const Cleanup *c)
{
        return c ? c->error : NULL;
}

const char *cleanup_sender(const Cleanup *c)
{
        return c ? c->sender : NULL;
}

size_t cleanup_n_recipients(const Cleanup *c)
{
        return c ? c->n_rcpts : 0;
}

const char *cleanup_recipient(const Cleanup *c, size_t i)
{
        return c && i < c->n_rcpts ? c->rcpts[i].addr : NULL;
}

/* cleanup_content_size - the input's size so far, with LF line ends (what message_size_limit
 * is checked against); the unterminated last line counts once cleanup_finish() has seen it */
uint64_t cleanup_content_size(const Cleanup *c)
{
        return c ? c->size : 0;
}

/* header_opts_find - the known header for the name of header H, or NULL */
static const HeaderOpts *header_opts_find(const Header *h)
{
        size_t n = header_name_len(h->text, h->len);

        for (size_t i = 0; i < ELEMENTSOF(header_opts); i++)
                if (strlen(header_opts[i].name) == n && strncasecmp(header_opts[i].name, h->text, n) == 0)
                        return header_opts + i;
        return NULL;
}

static const char *const wday_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* mail_date - Postfix's date format, in UTC, without the locale: "Mon, 23 Nov 2026 08:59:00
 * +0000 (UTC)"; OUT has at least 64 bytes */
static int mail_date(int64_t when, char *out, size_t size, struct tm *ret_tm)
{
        struct tm tm;
        time_t t = (time_t)when;

        if ((int64_t)t != when || !gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
            tm.tm_mon > 11 || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
                return -EINVAL;
        snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d +0000 (UTC)", wday_names[tm.tm_wday],
                 tm.tm_mday, month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        *ret_tm = tm;
        return 0;
}

/* hfrom_phrase - the full name as an RFC 5322 phrase (hfrom_format=standard) appended to S:
 * quoted when it holds specials or "%!", else with its blanks collapsed; nothing if blank */
static int hfrom_phrase(Str *s, const char *full_name)
{
        _cleanup_(freep) char *f = strdup(full_name);
        int r = 0;

        if (!f)
                return -ENOMEM;
        for (char *p = f; *p; p++)
                if (*p == '\r' || *p == '\n')
                        *p = ' ';
        if (f[strcspn(f, "%!()<>@,;:\\\".[]")] == 0) {
                bool any = false;

                for (char *p = f; *p && r >= 0;) {
                        size_t w = strcspn(p, " \t");

                        if (w > 0) {
                                if (any)
                                        r = str_appendc(s, ' ');
                                if (r >= 0)
                                        r = str_append(s, p, w);
                                any = true;
                        }
                        p += w;
                        p += strspn(p, " \t");
                }
                if (r >= 0 && any)
                        r = str_appendc(s, ' ');
                return r;
        }
        r = str_appendc(s, '"');
        for (char *p = f; *p && r >= 0; p++) {
                if (*p == '"' || *p == '\\')
                        r = str_appendc(s, '\\');
                if (r >= 0)
                        r = str_appendc(s, *p);
        }
        if (r >= 0)
                r = str_appends(s, "\" ");
        return r;
}

/* put_text - a header or body line, cut into L...N records as needed */
static int put_text(QueueBuf *out, const char *s, size_t n)
{
        return queue_buf_put_line(out, s, n);
}

/* cleanup_extract - -t: recipients from To/Cc/Bcc, or Resent-To/Cc/Bcc when RESENT */
static int cleanup_extract(Cleanup *c, bool resent)
{
        int r;

        for (size_t i = 0; i < c->n_headers; i++) {
                const Header *h = c->headers + i;
                const HeaderOpts *ho = header_opts_find(h);
                char **v = NULL;

                if (!ho || !(ho->flags & HDR_OPT_EXTRACT) || !!(ho->flags & HDR_OPT_RR) != resent)
                        continue;
                size_t skip = strcspn(h->text, ":") + 1;
                r = addr_list_parse(h->text + skip, h->len - skip, &v);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        _cleanup_(freep) char *text = NULL;

                        if (asprintf(&text, "bad address list syntax in %s: header", ho->name) < 0)
                                return -ENOMEM;
                        return cleanup_set_error(c, -EINVAL, text, NULL);
                }
                r = 0;
                for (size_t k = 0; v[k]; k++)
                        if (r >= 0)
                                r = cleanup_rcpt_add(c, v[k], ho->name, NULL, 0);
                for (size_t k = 0; v[k]; k++)
                        free(v[k]);
                free(v);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* cleanup_received - our Received: header: pickup's for local submission, smtpd's for SMTP
 * (smtpd.c: "from HELO (NAME [ADDR])", "by HOST (tern) with PROTOCOL id ID", "for <RCPT>" when
 * there is one recipient; an IPv6 address as "IPv6:addr") */
static int cleanup_received(Cleanup *c, const char *queue_id, const char *date, QueueBuf *out)
{
        int r;

        if (!(c->flags & CLEANUP_SMTP)) {
                r = queue_buf_putf(out, REC_TYPE_NORM, "Received: by %s (tern, from userid %lu)", c->myhostname,
                                   (unsigned long)c->uid);
                return r < 0 ? r : queue_buf_putf(out, REC_TYPE_NORM, "\tid %s; %s", queue_id, date);
        }

        const char *name = strempty(c->log_client_name), *addr = strempty(c->log_client_address);
        const char *helo = !isempty(c->log_helo_name) ? c->log_helo_name : name;
        const char *proto = !isempty(c->log_protocol_name) ? c->log_protocol_name : "SMTP";
        bool one = c->n_rcpts == 1;

        r = queue_buf_putf(out, REC_TYPE_NORM, "Received: from %s (%s [%s%s])", helo, name,
                           strchr(addr, ':') ? "IPv6:" : "", addr);
        if (r >= 0)
                r = queue_buf_putf(out, REC_TYPE_NORM, "\tby %s (tern) with %s id %s%s", c->myhostname, proto,
                                   queue_id, one ? "" : ";");
        if (r >= 0)
                r = one ? queue_buf_putf(out, REC_TYPE_NORM, "\tfor <%s>; %s", c->rcpts[0].addr, date)
                        : queue_buf_putf(out, REC_TYPE_NORM, "\t%s", date);
        return r;
}

/* cleanup_build - write the queue file records; OUT is rolled back by the caller on error */
static int cleanup_build(Cleanup *c, const char *queue_id, int64_t now_sec, int64_t now_usec, QueueBuf *out,
                         bool resent, unsigned seen)
{
        char size_rec[QUEUE_FILE_SIZE_REC_LEN], date[64];
        uint8_t hdr[QUEUE_FILE_REC_HDR_MAX];
        size_t base = out->size, hdr_len;
        uint64_t data_offset, xtra_offset;
        QueueSizeRecord sr = {};
        const char *prefix = resent ? "Resent-" : "";
        struct tm tm;
        int r;

        r = mail_date(now_sec, date, sizeof(date), &tm);
        if (r < 0)
                return cleanup_set_error(c, r, "arrival time out of range", NULL);

        queue_size_record_format(&sr, size_rec);
        if ((r = queue_buf_put(out, REC_TYPE_SIZE, size_rec, sizeof(size_rec))) < 0 ||
            (r = queue_buf_putf(out, REC_TYPE_TIME, "%" PRId64 " %" PRId64, now_sec, now_usec)) < 0 ||
            (r = queue_buf_putf(out, REC_TYPE_ATTR, "create_time=%" PRId64, now_sec)) < 0)
                return r;
        /* delay_warning_time: the W record says when (cleanup_envelope.c); qmgr rewrites it */
        if (c->delay_warning_time > 0 &&
            (r = queue_buf_putf(out, REC_TYPE_WARN, "%15" PRId64, now_sec + c->delay_warning_time)) < 0)
                return r;
        if (!isempty(c->full_name) &&
            (r = queue_buf_put(out, REC_TYPE_FULL, c->full_name, strlen(c->full_name))) < 0)
                return r;
        if ((r = queue_buf_put(out, REC_TYPE_FROM, c->sender, strlen(c->sender))) < 0)
                return r;

        const struct {
                const char *name, *value;
        } attrs[] = {
                {"log_client_name", c->log_client_name},       {"log_client_address", c->log_client_address},
                {"log_message_origin", c->log_message_origin}, {"log_helo_name", c->log_helo_name},
                {"log_protocol_name", c->log_protocol_name},
        };
        for (size_t i = 0; i < ELEMENTSOF(attrs); i++)
                if (attrs[i].value &&
                    (r = queue_buf_putf(out, REC_TYPE_ATTR, "%s=%s", attrs[i].name, attrs[i].value)) < 0)
                        return r;
        /* RFC 3461 MAIL parameters (Postfix's MAIL_ATTR_DSN_ENVID, MAIL_ATTR_DSN_RET) */
        if (c->dsn_envid && (r = queue_buf_putf(out, REC_TYPE_ATTR, "envelope_id=%s", c->dsn_envid)) < 0)
                return r;
        if (c->dsn_ret && (r = queue_buf_putf(out, REC_TYPE_ATTR, "ret_flags=%d", c->dsn_ret)) < 0)
                return r;
        for (size_t i = 0; i < c->n_rcpts; i++) {
                const Rcpt *rc = c->rcpts + i;

                if (rc->dsn_orcpt &&
                    (r = queue_buf_putf(out, REC_TYPE_ATTR, "dsn_orig_rcpt=%s", rc->dsn_orcpt)) < 0)
                        return r;
                if (rc->dsn_notify && (r = queue_buf_putf(out, REC_TYPE_ATTR, "notify_flags=%d", rc->dsn_notify)) < 0)
                        return r;
                if (rc->orig && (r = queue_buf_put(out, REC_TYPE_ORCP, rc->orig, strlen(rc->orig))) < 0)
                        return r;
                if ((r = queue_buf_put(out, REC_TYPE_RCPT, rc->addr, strlen(rc->addr))) < 0)
                        return r;
        }
        if ((r = queue_buf_put(out, REC_TYPE_MESG, "", 0)) < 0)
                return r;
        data_offset = out->size - base;

        r = cleanup_received(c, queue_id, date, out);
        if (r < 0)
                return r;

        /* the message's own headers, less the dropped ones, one record (or L...N) per line */
        for (size_t i = 0; i < c->n_headers; i++) {
                const Header *h = c->headers + i;
                const HeaderOpts *ho = header_opts_find(h);

                if (ho && (ho->flags & HDR_OPT_DROP))
                        continue;
                for (const char *p = h->text, *e = h->text + h->len;;) {
                        const char *nl = memchr(p, '\n', e - p);

                        r = put_text(out, p, (nl ? nl : e) - p);
                        if (r < 0)
                                return r;
                        if (!nl)
                                break;
                        p = nl + 1;
                }
        }

        /* the missing ones, in Postfix's order; none for a remote SMTP client */
        if (c->flags & CLEANUP_NO_ADD_HEADERS)
                seen = ~0U;
        if (!(seen & (1U << (resent ? HDR_RESENT_MESSAGE_ID : HDR_MESSAGE_ID))) &&
            (r = queue_buf_putf(out, REC_TYPE_NORM, "%sMessage-Id: <%04d%02d%02d%02d%02d%02d.%s@%s>", prefix,
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                tm.tm_sec, queue_id, c->myhostname)) < 0)
                return r;
        if (!(seen & (1U << (resent ? HDR_RESENT_DATE : HDR_DATE))) &&
            (r = queue_buf_putf(out, REC_TYPE_NORM, "%sDate: %s", prefix, date)) < 0)
                return r;
        if (!(seen & (1U << (resent ? HDR_RESENT_FROM : HDR_FROM)))) {
                _cleanup_(str_done) Str from = {};

                r = str_appends(&from, prefix);
                if (r >= 0)
                        r = str_appends(&from, "From: ");
                if (r >= 0 && *c->sender && !isempty(c->full_name)) {
                        r = hfrom_phrase(&from, c->full_name);
                        if (r >= 0)
                                r = str_appendc(&from, '<');
                        if (r >= 0)
                                r = str_appends(&from, c->sender);
                        if (r >= 0)
                                r = str_appendc(&from, '>');
                } else if (r >= 0)
                        r = str_appends(&from, *c->sender ? c->sender : "MAILER-DAEMON");
                if (r < 0)
                        return r;
                r = put_text(out, from.data, from.len);
                if (r < 0)
                        return r;
        }

        /* the body */
        for (const char *p = c->body.data, *e = p ? p + c->body.len : NULL; p && p < e;) {
                const char *nl = memchr(p, '\n', e - p);

                r = put_text(out, p, nl - p);
                if (r < 0)
                        return r;
                p = nl + 1;
        }

        xtra_offset = out->size - base;
        if ((r = queue_buf_put(out, REC_TYPE_XTRA, "", 0)) < 0 ||
            (r = queue_buf_put(out, REC_TYPE_END, "", 0)) < 0)
                return r;

        /* the final values, in place (cleanup_final.c) */
        sr = (QueueSizeRecord){
                .content_size = (int64_t)(xtra_offset - data_offset),
                .data_offset = (int64_t)data_offset,
                .rcpt_count = (int64_t)c->n_rcpts,
                .qmgr_flags = 0,
                .content_length = (int64_t)(xtra_offset - data_offset),
                .sendopts = 0,
        };
        queue_size_record_format(&sr, size_rec);
        hdr_len = rec_header(REC_TYPE_SIZE, sizeof(size_rec), hdr);
        memcpy(out->data + base + hdr_len, size_rec, sizeof(size_rec));
        return 0;
}

/* cleanup_finish - see cleanup.h */
int cleanup_finish(Cleanup *c, const char *queue_id, int64_t now_sec, int64_t now_usec, QueueBuf *out)
{
        unsigned seen = 0, hops = 1; /* our own Received: */
        bool resent = false;
        size_t base;
        int r;

        if (!c || isempty(queue_id) || !out)
                return -EINVAL;
        if (c->finished)
                return cleanup_set_error(c, -EINVAL, "message already finished", NULL);
        if (c->failed)
                return c->failed;

        /* the last line, if it had no line end */
        if (!c->done_input) {
                if (c->cr_pending) {
                        c->cr_pending = false;
                        r = str_appendc(&c->line, '\r');
                        if (r < 0)
                                return cleanup_fail(c, r);
                }
                if (c->line.len > 0) {
                        r = cleanup_line_done(c);
                        if (r < 0)
                                return cleanup_fail(c, r);
                }
                c->done_input = true;
        }

        if (!c->sender)
                return cleanup_set_error(c, -EINVAL, "no sender specified", NULL);

        for (size_t i = 0; i < c->n_headers; i++) {
                const HeaderOpts *ho = header_opts_find(c->headers + i);

                if (!ho)
                        continue;
                seen |= 1U << ho->type;
                if (ho->flags & HDR_OPT_RR)
                        resent = true;
                if (ho->type == HDR_RECEIVED)
                        hops++;
        }
        if (hops >= CLEANUP_HOPCOUNT_LIMIT)
                return cleanup_set_error(c, -ELOOP, "too many hops", NULL);

        if (c->flags & CLEANUP_EXTRACT_RCPT) {
                r = cleanup_extract(c, resent);
                if (r < 0)
                        return r;
        }
        if (c->n_rcpts == 0)
                return cleanup_set_error(c, -ENOMSG, "no recipients specified", NULL);

        base = out->size;
        r = cleanup_build(c, queue_id, now_sec, now_usec, out, resent, seen);
        if (r < 0) {
                out->size = base;
                return r;
        }
        c->finished = true;
        return 0;
}
