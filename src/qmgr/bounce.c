/* SPDX-License-Identifier: MIT */
/*
 * bounce.c - the text of delivery status notifications, as Postfix's bounce(8) writes them
 *
 * The layout is bounce_notify_util.c's (Postfix 3.x), with the built-in templates of
 * bounce_templates.c (bounce(5)):
 *
 *   From: MAILER-DAEMON@$myhostname (Mail Delivery System)
 *   Subject: Undelivered Mail Returned to Sender | Delayed Mail (still being retried) |
 *            Postmaster Copy: Undelivered Mail
 *   To: NOTIFY_TO (local part quoted as RFC 822 wants)
 *   Auto-Submitted: auto-replied (auto-generated for the postmaster copy)
 *   MIME-Version, Content-Type: multipart/report; report-type=delivery-status; boundary
 *   "QUEUEID.NOW/$myhostname", Content-Transfer-Encoding: 8bit
 *   part 1 "Notification", text/plain; charset=utf-8: the template text (not in the postmaster
 *          copy), then per recipient an empty line and "<rcpt>: reason" or
 *          "<rcpt> (expanded from <orig>): reason", wrapped at 79 columns with 4 blanks indent
 *   part 2 "Delivery report", message/delivery-status: Reporting-MTA, Original-Envelope-Id,
 *          X-Postfix-Queue-ID, X-Postfix-Sender, Arrival-Date; per recipient Final-Recipient,
 *          Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code, and for delay
 *          notices Will-Retry-Until (arrival + maximal_queue_lifetime), as Postfix does
 *   part 3 "Undelivered Message" message/rfc822 with "Return-Path: <sender>" and the whole
 *          original, or "Undelivered Message Headers" text/rfc822-headers with its headers
 *          only: with RET=HDRS, over size_limit, and always for delay notices and the
 *          postmaster copy (Postfix's bounce_warn_service and postmaster notices do so)
 *
 * Invariants: the output depends on the input only (dates are printed in UTC, the boundary
 * comes from now_sec); every line this file writes is at most BOUNCE_LINE_MAX bytes: text from
 * the logs (addresses, reasons, diagnostics, MTA names) has control characters and bytes that
 * are not UTF-8 replaced with '?', as Postfix's printable() does, and is wrapped at word
 * boundaries, a word longer than a line being cut; lines of the original message are copied
 * as they are.
 *
 * Decisions and limits: the X-Postfix-* field names and the "X-Postfix" diagnostic type are
 * written literally, as bounce.h asks, so parsers that look for Postfix's fields find them;
 * Postfix itself writes X-$mail_name-..., so with mail_name = tern it would say X-tern-Queue-ID.
 * Postfix's built-in templates (since 2.3) say "This is the mail system at host $myhostname."
 * and sign "The mail system": mail_name appears in none of them, so in_mail_name is unused by
 * the default texts. No bounce_template_file, no SMTPUTF8 "global" types, no References /
 * In-Reply-To threading headers (threaded_bounce). Dates are UTC where Postfix uses local time.
 * Content-Transfer-Encoding is always 8bit (tern does not track the original's encoding).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bounce.h"
#include "macro.h"

/* RFC 5322 2.1.1: a line is at most 998 characters without its line end */
#define BOUNCE_LINE_MAX 998
/* Postfix's bounce_print_wrap(): LENGTH and INDENT */
#define BOUNCE_WRAP_WIDTH 79
#define BOUNCE_WRAP_INDENT 4

#define MAIL_ADDR_MAIL_DAEMON "MAILER-DAEMON"
#define MAIL_ADDR_POSTMASTER "postmaster"

static const char *const failure_text[] = {
        "This is the mail system at host $myhostname.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        "",
        "For further assistance, please send mail to <" MAIL_ADDR_POSTMASTER ">",
        "",
        "If you do so, please include this problem report. You can",
        "delete your own text from the attached returned message.",
        "",
        "                   The mail system",
        NULL,
};

static const char *const delay_text[] = {
        "This is the mail system at host $myhostname.",
        "",
        "####################################################################",
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
        "####################################################################",
        "",
        "Your message could not be delivered for more than $delay_warning_time_hours hour(s).",
        "It will be retried until it is $maximal_queue_lifetime_days day(s) old.",
        "",
        "For further assistance, please send mail to <" MAIL_ADDR_POSTMASTER ">",
        "",
        "If you do so, please include this problem report. You can",
        "delete your own text from the attached returned message.",
        "",
        "                   The mail system",
        NULL,
};

typedef struct Out {
        char *data;
        size_t size, alloc;
        int error;
} Out;

static void out_add(Out *o, const char *s, size_t n)
{
        if (o->error)
                return;
        if (o->alloc - o->size <= n) {
                size_t want;
                char *d;

                if (n >= SIZE_MAX / 2 - o->size) {
                        o->error = -ENOMEM;
                        return;
                }
                want = MAX(o->size + n + 1, MAX(o->alloc * 2, (size_t) 4096));
                d = realloc(o->data, want);
                if (!d) {
                        o->error = -ENOMEM;
                        return;
                }
                o->data = d;
                o->alloc = want;
        }
        memcpy(o->data + o->size, s, n);
        o->size += n;
        o->data[o->size] = '\0';
}

/* out_line - one line and its LF */
static void out_line(Out *o, const char *s)
{
        out_add(o, s, strlen(s));
        out_add(o, "\n", 1);
}

/* out_vformat - FORMAT expanded (malloc'ed), or NULL with O's error set */
_printf_(2, 0) static char *out_vformat(Out *o, const char *format, va_list ap)
{
        char *s = NULL;

        if (vasprintf(&s, format, ap) < 0) {
                if (!o->error)
                        o->error = -ENOMEM;
                return NULL;
        }
        return s;
}

_printf_(2, 3) static void out_linef(Out *o, const char *format, ...)
{
        _cleanup_(freep) char *s = NULL;
        va_list ap;

        va_start(ap, format);
        s = out_vformat(o, format, ap);
        va_end(ap);
        if (!s)
                return;
        out_add(o, s, strlen(s));
        out_add(o, "\n", 1);
}

/* utf8_len - the length of the valid UTF-8 sequence at P (at most N bytes), 0 if none */
static size_t utf8_len(const unsigned char *p, size_t n)
{
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf;

        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                len = 2;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                len = 3;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                len = 4;
        else
                return 0;
        if (n < len)
                return 0;
        /* no overlong forms, no surrogates, nothing above U+10FFFF */
        if (p[0] == 0xe0)
                lo = 0xa0;
        else if (p[0] == 0xed)
                hi = 0x9f;
        else if (p[0] == 0xf0)
                lo = 0x90;
        else if (p[0] == 0xf4)
                hi = 0x8f;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return len;
}

/* printable - a copy of S with control characters and non-UTF-8 bytes as '?' (Postfix's
 * printable()); NULL stays "" */
static char *printable(const char *s)
{
        size_t n = strlen(strempty(s));
        char *c = strdup(strempty(s));

        if (!c)
                return NULL;
        for (size_t i = 0; i < n;) {
                unsigned char ch = (unsigned char) c[i];
                size_t len;

                if (ch < 0x80) {
                        if (ch < 0x20 || ch == 0x7f)
                                c[i] = '?';
                        i++;
                } else if ((len = utf8_len((unsigned char *) c + i, n - i)) > 0) {
                        i += len;
                } else {
                        c[i++] = '?';
                }
        }
        return c;
}

/* is_atext - RFC 5322 atext; UTF-8 bytes count as text (RFC 6532) */
static bool is_atext(unsigned char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               strchr("!#$%&'*+-/=?^_`{|}~", ch) || ch >= 0x80;
}

/* quote_822_local - ADDRESS with its local part quoted when it is not a dot-atom (Postfix's
 * quote_822_local()); an already quoted local part stays as it is */
static char *quote_822_local(const char *address)
{
        const char *at = strrchr(address, '@');
        size_t ll = at ? (size_t) (at - address) : strlen(address);
        bool need = false;
        Out o = {};

        if (ll >= 2 && address[0] == '"' && address[ll - 1] == '"')
                return strdup(address);
        for (size_t i = 0; i < ll; i++) {
                unsigned char ch = (unsigned char) address[i];

                if (ch == '.' ? i == 0 || i == ll - 1 || address[i + 1] == '.' : !is_atext(ch))
                        need = true;
        }
        if (!need)
                return strdup(address);
        out_add(&o, "\"", 1);
        for (size_t i = 0; i < ll; i++) {
                if (address[i] == '"' || address[i] == '\\')
                        out_add(&o, "\\", 1);
                out_add(&o, address + i, 1);
        }
        out_add(&o, "\"", 1);
        if (at)
                out_add(&o, at, strlen(at));
        if (o.error) {
                free(o.data);
                return NULL;
        }
        return o.data;
}

/* safe_address - the address as it appears in a notice: printable, local part quoted */
static char *safe_address(const char *address)
{
        _cleanup_(freep) char *p = printable(address);

        return p ? quote_822_local(p) : NULL;
}

/* mail_date - RFC 5322 date-time of T in UTC, in Postfix's mail_date() layout */
static void mail_date(int64_t t, char buf[static 64])
{
        static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm)) {
                tt = 0;
                gmtime_r(&tt, &tm);
        }
        snprintf(buf, 64, "%s, %d %s %d %02d:%02d:%02d +0000 (UTC)", days[tm.tm_wday], tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* wrap_emit - one wrapped line: INDENT blanks and LEN bytes of S, cut (not inside a UTF-8
 * sequence) into pieces that keep every line within BOUNCE_LINE_MAX */
static void wrap_emit(Out *o, const char *s, size_t len, size_t indent, size_t next_indent)
{
        static const char blanks[] = "                                ";

        for (;;) {
                size_t room = BOUNCE_LINE_MAX - indent, n = len;

                if (n > room) {
                        n = room;
                        while (n > 1 && ((unsigned char) s[n] & 0xc0) == 0x80)
                                n--;
                }
                out_add(o, blanks, MIN(indent, sizeof(blanks) - 1));
                out_add(o, s, n);
                out_add(o, "\n", 1);
                if (n == len)
                        return;
                s += n;
                len -= n;
                indent = next_indent;
        }
}

/*
 * line_wrap - Postfix's line_wrap(STR, 79, 4): break at blanks before a line would exceed
 * WIDTH, strip the blanks at the break, indent every line after the first; STR must hold no
 * line ends (printable() made sure)
 */
static void line_wrap(Out *o, const char *str)
{
        const char *start_line = str, *word, *next_word;
        size_t curr_indent = 0, line_len;

        for (word = str; word; word = next_word) {
                const char *next_space = word + strcspn(word, " \t");

                if (word > start_line && (size_t) (next_space - start_line) > BOUNCE_WRAP_WIDTH - curr_indent) {
                        line_len = (size_t) (word - start_line);
                        while (line_len > 0 && (start_line[line_len - 1] == ' ' || start_line[line_len - 1] == '\t'))
                                line_len--;
                        wrap_emit(o, start_line, line_len, curr_indent, BOUNCE_WRAP_INDENT);
                        while (*word == ' ' || *word == '\t')
                                word++;
                        if (start_line == str)
                                curr_indent += BOUNCE_WRAP_INDENT;
                        start_line = word;
                }
                next_word = *next_space ? next_space + 1 : NULL;
        }
        line_len = strlen(start_line);
        while (line_len > 0 && (start_line[line_len - 1] == ' ' || start_line[line_len - 1] == '\t'))
                line_len--;
        wrap_emit(o, start_line, line_len, curr_indent, BOUNCE_WRAP_INDENT);
}

_printf_(2, 3) static void wrap_linef(Out *o, const char *format, ...)
{
        _cleanup_(freep) char *s = NULL;
        va_list ap;

        va_start(ap, format);
        s = out_vformat(o, format, ap);
        va_end(ap);
        if (!s)
                return;
        line_wrap(o, s);
}

/* template_line - one template line with $myhostname, $delay_warning_time_hours and
 * $maximal_queue_lifetime_days replaced (Postfix's integer division) */
static void template_line(Out *o, const BounceInput *in, const char *line)
{
        static const char *const names[] = {"$myhostname", "$delay_warning_time_hours",
                                            "$maximal_queue_lifetime_days"};

        while (*line) {
                const char *dollar = strchr(line, '$');
                size_t i;

                if (!dollar) {
                        out_add(o, line, strlen(line));
                        break;
                }
                out_add(o, line, (size_t) (dollar - line));
                for (i = 0; i < ELEMENTSOF(names); i++)
                        if (strneq(dollar, names[i], strlen(names[i])))
                                break;
                if (i == 0) {
                        _cleanup_(freep) char *h = printable(in->myhostname);

                        if (!h)
                                o->error = -ENOMEM;
                        else
                                out_add(o, h, strlen(h));
                } else if (i < ELEMENTSOF(names)) {
                        char num[32];
                        int64_t v = i == 1 ? in->delay_warning_sec / 3600 : in->max_lifetime_sec / 86400;

                        snprintf(num, sizeof(num), "%" PRId64, v);
                        out_add(o, num, strlen(num));
                } else {
                        out_add(o, "$", 1);
                        line = dollar + 1;
                        continue;
                }
                line = dollar + strlen(names[i]);
        }
        out_add(o, "\n", 1);
}

/* is_header - Postfix's is_header(): a field name of printable ASCII, blanks only before ':' */
static bool is_header(const char *s, size_t n)
{
        bool name = false, space = false;

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c == ':')
                        return name;
                if (c == ' ' || c == '\t') {
                        if (!name)
                                return false;
                        space = true;
                        continue;
                }
                if (c < 0x21 || c > 0x7e || space)
                        return false;
                name = true;
        }
        return false;
}

/* original_part - part 3: the whole original or its headers */
static void original_part(Out *o, const BounceInput *in, const char *boundary, const char *sender,
                          bool headers_only)
{
        const char *p, *end;

        out_line(o, "");
        out_linef(o, "--%s", boundary);
        out_linef(o, "Content-Description: Undelivered %s", headers_only ? "Message Headers" : "Message");
        out_linef(o, "Content-Type: %s", headers_only ? "text/rfc822-headers" : "message/rfc822");
        out_line(o, "Content-Transfer-Encoding: 8bit");
        out_line(o, "");
        if (!in->content) {
                out_line(o, "\t--- Undelivered message unavailable ---");
        } else {
                out_linef(o, "Return-Path: <%s>", sender);
                p = in->content;
                end = in->content + in->content_size;
                while (p < end) {
                        const char *nl = memchr(p, '\n', (size_t) (end - p));
                        size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);

                        if (headers_only && !(n > 0 && (p[0] == ' ' || p[0] == '\t')) && !is_header(p, n))
                                break;
                        out_add(o, p, n);
                        out_add(o, "\n", 1);
                        p += n + (nl != NULL);
                }
        }
        out_line(o, "");
        out_linef(o, "--%s--", boundary);
}

int bounce_build(const BounceInput *in, char **ret, size_t *ret_size)
{
        _cleanup_(freep) char *boundary = NULL, *host = NULL, *to = NULL, *sender = NULL, *qid = NULL,
                              *envid = NULL;
        bool postmaster = in->kind == BOUNCE_POSTMASTER, delayed = in->kind == BOUNCE_DELAYED;
        bool headers_only;
        char date[64];
        Out o = {};

        if (!in->queue_id || !*in->queue_id || !in->myhostname || !*in->myhostname || !in->notify_to ||
            (in->kind != BOUNCE_FAILED && in->kind != BOUNCE_DELAYED && in->kind != BOUNCE_POSTMASTER) ||
            (in->n_recipients > 0 && !in->recipients))
                return -EINVAL;
        if (delayed && in->n_recipients == 0)
                return -ENOMSG; /* Postfix sends no delay notice without a delayed recipient */

        host = printable(in->myhostname);
        qid = printable(in->queue_id);
        to = safe_address(in->notify_to);
        sender = safe_address(isempty(in->sender) ? MAIL_ADDR_MAIL_DAEMON : in->sender);
        envid = printable(in->envelope_id);
        if (!host || !qid || !to || !sender || !envid ||
            asprintf(&boundary, "%s.%" PRId64 "/%s", qid, in->now_sec, host) < 0)
                return -ENOMEM;

        /* Postfix: RET=HDRS, over bounce_size_limit, delay notices and postmaster copies */
        headers_only = in->headers_only || delayed || postmaster ||
                       (in->size_limit > 0 && in->content && in->content_size > in->size_limit);

        /* the message headers */
        out_linef(&o, "From: %s@%s (Mail Delivery System)", MAIL_ADDR_MAIL_DAEMON, host);
        out_linef(&o, "Subject: %s",
                  postmaster ? "Postmaster Copy: Undelivered Mail"
                  : delayed  ? "Delayed Mail (still being retried)"
                             : "Undelivered Mail Returned to Sender");
        wrap_linef(&o, "To: %s", to);
        out_linef(&o, "Auto-Submitted: %s", postmaster ? "auto-generated" : "auto-replied");
        out_line(&o, "MIME-Version: 1.0");
        out_line(&o, "Content-Type: multipart/report; report-type=delivery-status;");
        out_linef(&o, "\tboundary=\"%s\"", boundary);
        out_line(&o, "Content-Transfer-Encoding: 8bit");
        out_line(&o, "");
        out_line(&o, "This is a MIME-encapsulated message.");

        /* part 1: the template and the recipients' reasons */
        out_line(&o, "");
        out_linef(&o, "--%s", boundary);
        out_line(&o, "Content-Description: Notification");
        out_line(&o, "Content-Type: text/plain; charset=utf-8");
        out_line(&o, "Content-Transfer-Encoding: 8bit");
        out_line(&o, "");
        if (!postmaster)
                for (const char *const *l = delayed ? delay_text : failure_text; *l; l++)
                        template_line(&o, in, *l);
        if (in->n_recipients == 0) {
                out_line(&o, "");
                out_line(&o, "\t--- Delivery report unavailable ---");
        }
        for (size_t i = 0; i < in->n_recipients; i++) {
                const BounceRecipient *rc = &in->recipients[i];
                _cleanup_(freep) char *a = safe_address(strempty(rc->address)), *orig = NULL,
                                      *why = printable(rc->reason);
                bool expanded = !isempty(rc->orig_address) &&
                                strcasecmp(rc->orig_address, strempty(rc->address)) != 0;

                if (expanded)
                        orig = safe_address(rc->orig_address);
                if (!a || !why || (expanded && !orig)) {
                        o.error = -ENOMEM;
                        break;
                }
                out_line(&o, "");
                if (orig)
                        wrap_linef(&o, "<%s> (expanded from <%s>): %s", a, orig, why);
                else
                        wrap_linef(&o, "<%s>: %s", a, why);
        }

        /* part 2: message/delivery-status */
        out_line(&o, "");
        out_linef(&o, "--%s", boundary);
        out_line(&o, "Content-Description: Delivery report");
        out_line(&o, "Content-Type: message/delivery-status");
        out_line(&o, "");
        wrap_linef(&o, "Reporting-MTA: dns; %s", host);
        if (*envid)
                wrap_linef(&o, "Original-Envelope-Id: %s", envid);
        wrap_linef(&o, "X-Postfix-Queue-ID: %s", qid);
        wrap_linef(&o, "X-Postfix-Sender: rfc822; %s", sender);
        if (in->arrival_sec > 0) {
                mail_date(in->arrival_sec, date);
                out_linef(&o, "Arrival-Date: %s", date);
        }
        for (size_t i = 0; i < in->n_recipients && !o.error; i++) {
                const BounceRecipient *rc = &in->recipients[i];
                _cleanup_(freep) char *a = safe_address(strempty(rc->address)),
                                      *orig = safe_address(strempty(rc->orig_address)),
                                      *status = printable(rc->status), *action = printable(rc->action),
                                      *mtype = printable(rc->mta_type), *mname = printable(rc->mta_mname),
                                      *dtype = printable(rc->diag_type), *dtext = printable(rc->diag_text),
                                      *why = printable(rc->reason);

                if (!a || !orig || !status || !action || !mtype || !mname || !dtype || !dtext || !why) {
                        o.error = -ENOMEM;
                        break;
                }
                out_line(&o, "");
                wrap_linef(&o, "Final-Recipient: rfc822; %s", a);
                if (*orig)
                        wrap_linef(&o, "Original-Recipient: rfc822; %s", orig);
                out_linef(&o, "Action: %s", !delayed ? "failed" : *action ? action : "delayed");
                wrap_linef(&o, "Status: %s", *status ? status : delayed ? "4.0.0" : "5.0.0");
                if (*mtype && *mname)
                        wrap_linef(&o, "Remote-MTA: %s; %s", mtype, mname);
                if (*dtype && *dtext)
                        wrap_linef(&o, "Diagnostic-Code: %s; %s", dtype, dtext);
                else
                        wrap_linef(&o, "Diagnostic-Code: X-Postfix; %s", why);
                if (delayed) {
                        mail_date(in->arrival_sec + in->max_lifetime_sec, date);
                        out_linef(&o, "Will-Retry-Until: %s", date);
                }
        }

        /* part 3: the original */
        original_part(&o, in, boundary, sender, headers_only);

        if (o.error) {
                free(o.data);
                return o.error;
        }
        *ret = o.data;
        *ret_size = o.size;
        return 0;
}
