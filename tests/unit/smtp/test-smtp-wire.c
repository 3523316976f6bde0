/* SPDX-License-Identifier: MIT */
/*
 * test-smtp-wire.c - SMTP replies, EHLO features, the DATA encoder and xtext
 * (src/smtp/smtp-wire.c)
 *
 * The reply parser: a table of replies (one and many lines, bare LF, codes that disagree, the
 * enhanced status code taken or synthesized, control characters and NUL bytes in the text),
 * each fed whole, one byte at a time and split at every offset, with the next reply right behind
 * it so that *ret_used must stop at the reply's end; a buffer of a whole pipelined session the
 * same way and in chunks of every size from 1 to 64; malformed replies ("abc", "25", "099",
 * "600", "2500 x", an empty line, NUL bytes in the code, a bad line after good ones) fail with
 * -EBADMSG and their reason whatever the split, stay failed until reset and work after it; 100
 * lines pass and 101 do not; the line length limit at its boundary, a 100 kB line, and a 10 MB
 * line fed in 64 KiB pieces while the heap is watched (it must not grow with the line);
 * replies left untaken, taken too early and reset halfway. EHLO: every keyword, case, the
 * greeting line not counted, negative replies, SIZE with and without a number, 0, UINT64_MAX,
 * overflow and garbage. The DATA encoder: a table of contents ("", ".", "..", "\r\n", "\r\r\n",
 * a last line without newline, ...), then every content of up to 7 bytes over 'a', '.', CR and
 * LF, each encoded whole, byte at a time and split at every offset (and every pair of offsets
 * in the table) into buffers of exactly 2 * N + 1 bytes, against a non-streaming reference.
 * xtext: a table. Leaks and overruns are AddressSanitizer's to find.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "smtp-wire.h"
#include "test-util.h"


#define MAX_REPLIES 16

/* What a parser made of a buffer: the replies, where each ended, and how it stopped */
typedef struct Parsed {
        SmtpReply reply[MAX_REPLIES];
        size_t end[MAX_REPLIES]; /* offset right after each reply */
        size_t n;
        int error;          /* 0 or the error the feed returned */
        const char *reason; /* with error */
} Parsed;

static void parsed_done(Parsed *p)
{
        for (size_t i = 0; i < p->n; i++)
                smtp_reply_done(&p->reply[i]);
        *p = (Parsed){};
}

/* feed_piece - BUF[from..to) into P, taking every reply that completes; false after an error */
static bool feed_piece(SmtpReplyParser *sp, const char *buf, size_t from, size_t to, Parsed *p)
{
        while (from < to) {
                size_t used = SIZE_MAX;
                const char *reason = NULL;
                int r = smtp_reply_parser_feed(sp, buf + from, to - from, &used, &reason);

                if (r < 0) {
                        if (!reason)
                                fail_msg("feed returned %d without a reason", r);
                        p->error = r;
                        p->reason = reason;
                        return false;
                }
                if (r == 0) {
                        if (used != to - from)
                                fail_msg("feed returned 0 having used %zu of %zu bytes", used, to - from);
                        return true;
                }
                if (r != 1)
                        fail_msg("feed returned %d", r);
                if (used == 0 || used > to - from)
                        fail_msg("a reply completed after %zu of %zu bytes", used, to - from);
                from += used;
                if (p->n >= MAX_REPLIES)
                        fail_msg("more than %d replies", MAX_REPLIES);
                smtp_reply_parser_take(sp, &p->reply[p->n]);
                p->end[p->n++] = from;
        }
        return true;
}

/* parse - BUF (N bytes) cut at the CUTS (ascending offsets) into pieces, each fed in turn */
static void parse(const char *buf, size_t n, const size_t *cuts, size_t n_cuts, Parsed *p)
{
        SmtpReplyParser *sp = NULL;
        size_t from = 0;

        *p = (Parsed){};
        assert_int_equal(smtp_reply_parser_new(&sp), 0);
        for (size_t i = 0; i <= n_cuts; i++) {
                size_t to = i < n_cuts ? cuts[i] : n;

                if (!feed_piece(sp, buf, from, to, p))
                        break;
                from = to;
        }
        smtp_reply_parser_free(sp);
}

/* parse_chunks - BUF fed in pieces of STEP bytes */
static void parse_chunks(const char *buf, size_t n, size_t step, Parsed *p)
{
        SmtpReplyParser *sp = NULL;

        *p = (Parsed){};
        assert_int_equal(smtp_reply_parser_new(&sp), 0);
        for (size_t i = 0; i < n; i += step)
                if (!feed_piece(sp, buf, i, MIN(n, i + step), p))
                        break;
        smtp_reply_parser_free(sp);
}

static void assert_same_reply(const SmtpReply *want, const SmtpReply *got, const char *how, size_t k)
{
        if (want->code != got->code || !streq(want->dsn, got->dsn) || want->n_lines != got->n_lines ||
            want->truncated != got->truncated || !streq(want->text, got->text))
                fail_msg("%s, reply %zu: %d %s %zu lines%s \"%s\", want %d %s %zu lines%s \"%s\"", how, k,
                         got->code, got->dsn, got->n_lines, got->truncated ? " truncated" : "", got->text,
                         want->code, want->dsn, want->n_lines, want->truncated ? " truncated" : "",
                         want->text);
        for (size_t i = 0; i < want->n_lines; i++)
                if (!streq(want->lines[i], got->lines[i]))
                        fail_msg("%s, reply %zu line %zu: \"%s\", want \"%s\"", how, k, i, got->lines[i],
                                 want->lines[i]);
}

static void assert_same_parsed(const Parsed *want, const Parsed *got, const char *how)
{
        if (want->n != got->n)
                fail_msg("%s: %zu replies, want %zu", how, got->n, want->n);
        for (size_t i = 0; i < want->n; i++) {
                assert_same_reply(&want->reply[i], &got->reply[i], how, i);
                if (want->end[i] != got->end[i])
                        fail_msg("%s: reply %zu ends at %zu, want %zu", how, i, got->end[i], want->end[i]);
        }
        if (want->error != got->error || !streq(strempty(want->reason), strempty(got->reason)))
                fail_msg("%s: error %d \"%s\", want %d \"%s\"", how, got->error, strempty(got->reason),
                         want->error, strempty(want->reason));
}

/* assert_any_split - BUF parsed byte by byte, split at every offset and in chunks of 2..64
 * bytes gives WANT (parsed whole) */
static void assert_any_split(const char *buf, size_t n, const Parsed *want, const char *name)
{
        char how[256];
        Parsed got;

        snprintf(how, sizeof(how), "%s, one byte at a time", name);
        parse_chunks(buf, n, 1, &got);
        assert_same_parsed(want, &got, how);
        parsed_done(&got);
        for (size_t cut = 0; cut <= n; cut++) {
                snprintf(how, sizeof(how), "%s, split at %zu", name, cut);
                parse(buf, n, &cut, 1, &got);
                assert_same_parsed(want, &got, how);
                parsed_done(&got);
        }
        for (size_t step = 2; step <= 64; step++) {
                snprintf(how, sizeof(how), "%s, in pieces of %zu bytes", name, step);
                parse_chunks(buf, n, step, &got);
                assert_same_parsed(want, &got, how);
                parsed_done(&got);
        }
}

typedef struct ReplyCase {
        const char *name;
        const char *input;
        size_t len; /* 0: strlen(input) */
        int code;
        const char *dsn;
        const char *text;
        size_t n_lines;
        const char *lines[4]; /* checked when lines[0] is set */
} ReplyCase;

#define NEXT_REPLY "221 2.0.0 Bye\r\n"

static void test_replies(void **state)
{
        static const ReplyCase cases[] = {
                {"greeting",
                 "220 mx.example.com ESMTP Postfix\r\n",
                 0,
                 220,
                 "2.0.0",
                 "220 mx.example.com ESMTP Postfix",
                 1,
                 {"220 mx.example.com ESMTP Postfix"}},
                {"enhanced code", "250 2.1.0 Ok\r\n", 0, 250, "2.1.0", "250 2.1.0 Ok", 1, {}},
                {"bare LF", "250 Ok\n", 0, 250, "2.0.0", "250 Ok", 1, {"250 Ok"}},
                {"code only", "250\r\n", 0, 250, "2.0.0", "250", 1, {"250"}},
                {"code and space", "250 \r\n", 0, 250, "2.0.0", "250 ", 1, {"250 "}},
                {"multi-line",
                 "550-5.1.1 no such user\r\n550 5.1.1 ask elsewhere\r\n",
                 0,
                 550,
                 "5.1.1",
                 "550-5.1.1 no such user 550 5.1.1 ask elsewhere",
                 2,
                 {"550-5.1.1 no such user", "550 5.1.1 ask elsewhere"}},
                {"multi-line, mixed line ends",
                 "250-a\n250-b\r\n250 c\n",
                 0,
                 250,
                 "2.0.0",
                 "250-a 250-b 250 c",
                 3,
                 {"250-a", "250-b", "250 c"}},
                {"empty continuation",
                 "250-\r\n250 x\r\n",
                 0,
                 250,
                 "2.0.0",
                 "250- 250 x",
                 2,
                 {"250-", "250 x"}},
                {"codes disagree: the last counts",
                 "250-first\r\n550 5.7.1 second\r\n",
                 0,
                 550,
                 "5.7.1",
                 "250-first 550 5.7.1 second",
                 2,
                 {}},
                {"354",
                 "354 End data with <CR><LF>.<CR><LF>\r\n",
                 0,
                 354,
                 "3.0.0",
                 "354 End data with <CR><LF>.<CR><LF>",
                 1,
                 {}},
                {"599", "599 x\r\n", 0, 599, "5.0.0", "599 x", 1, {}},
                {"200", "200 x\r\n", 0, 200, "2.0.0", "200 x", 1, {}},
                /* the enhanced status code */
                {"dsn of another class", "550 4.1.1 x\r\n", 0, 550, "5.0.0", "550 4.1.1 x", 1, {}},
                {"dsn 4.7.1", "450 4.7.1 greylisted\r\n", 0, 450, "4.7.1", "450 4.7.1 greylisted", 1, {}},
                {"dsn alone", "250 2.0.0\r\n", 0, 250, "2.0.0", "250 2.0.0", 1, {}},
                {"dsn 3 digits", "550 5.123.456 x\r\n", 0, 550, "5.123.456", "550 5.123.456 x", 1, {}},
                {"dsn 2 digits", "550 5.1.10 x\r\n", 0, 550, "5.1.10", "550 5.1.10 x", 1, {}},
                {"dsn subject too long", "550 5.1234.1 x\r\n", 0, 550, "5.0.0", "550 5.1234.1 x", 1, {}},
                {"dsn detail too long", "550 5.1.1234 x\r\n", 0, 550, "5.0.0", "550 5.1.1234 x", 1, {}},
                {"dsn not followed by a space", "550 5.1.1x\r\n", 0, 550, "5.0.0", "550 5.1.1x", 1, {}},
                {"dsn then a tab", "550 5.1.1\tx\r\n", 0, 550, "5.1.1", "550 5.1.1\tx", 1, {}},
                {"dsn without subject", "550 5..1 x\r\n", 0, 550, "5.0.0", "550 5..1 x", 1, {}},
                {"dsn without detail", "550 5.1. x\r\n", 0, 550, "5.0.0", "550 5.1. x", 1, {}},
                {"dsn after two spaces", "550  5.2.2 full\r\n", 0, 550, "5.2.2", "550  5.2.2 full", 1, {}},
                {"dsn only on the first line",
                 "550-5.1.1 a\r\n550 no dsn\r\n",
                 0,
                 550,
                 "5.0.0",
                 "550-5.1.1 a 550 no dsn",
                 2,
                 {}},
                {"dsn on the last line",
                 "550-a\r\n550 5.1.1 b\r\n",
                 0,
                 550,
                 "5.1.1",
                 "550-a 550 5.1.1 b",
                 2,
                 {}},
                {"dsn of class 5 in a 250",
                 "250-ok\r\n250 5.0.0 odd\r\n",
                 0,
                 250,
                 "2.0.0",
                 "250-ok 250 5.0.0 odd",
                 2,
                 {}},
                {"dsn class 3 is no class", "354 3.5.0 go\r\n", 0, 354, "3.0.0", "354 3.5.0 go", 1, {}},
                {"dsn 421", "421 4.4.2 bye\r\n", 0, 421, "4.4.2", "421 4.4.2 bye", 1, {}},
                {"dsn in a code-only line",
                 "550-5.1.1 x\r\n550\r\n",
                 0,
                 550,
                 "5.0.0",
                 "550-5.1.1 x 550",
                 2,
                 {}},
                /* what the text may hold */
                {"control characters",
                 "250 a\x01"
                 "b\x7f\tc\x1b[31m\r\n",
                 0,
                 250,
                 "2.0.0",
                 "250 a?b?\tc?[31m",
                 1,
                 {"250 a?b?\tc?[31m"}},
                {"a NUL in the text", "250 o\0k\r\n", 9, 250, "2.0.0", "250 o?k", 1, {"250 o?k"}},
                {"a bare CR in the text", "250 a\rb\r\n", 0, 250, "2.0.0", "250 a?b", 1, {}},
                {"a CR before CRLF", "250 a\r\r\n", 0, 250, "2.0.0", "250 a?", 1, {}},
                {"UTF-8 passes", "250 caf\xc3\xa9\r\n", 0, 250, "2.0.0", "250 caf\xc3\xa9", 1, {}},
                {"control characters on every line",
                 "250-\x02\r\n250 \x03\r\n",
                 0,
                 250,
                 "2.0.0",
                 "250-? 250 ?",
                 2,
                 {"250-?", "250 ?"}},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const ReplyCase *c = &cases[i];
                size_t len = c->len ? c->len : strlen(c->input);
                _cleanup_(freep) char *buf = malloc(len + strlen(NEXT_REPLY));
                const SmtpReply *r;
                Parsed whole;

                assert_non_null(buf);
                memcpy(buf, c->input, len);
                memcpy(buf + len, NEXT_REPLY, strlen(NEXT_REPLY));
                parse(buf, len + strlen(NEXT_REPLY), NULL, 0, &whole);
                if (whole.error != 0 || whole.n != 2)
                        fail_msg("%s: %zu replies, error %d \"%s\"; want 2 replies", c->name, whole.n,
                                 whole.error, strempty(whole.reason));
                r = &whole.reply[0];
                if (r->code != c->code || !streq(r->dsn, c->dsn) || !streq(r->text, c->text) ||
                    r->n_lines != c->n_lines || r->truncated)
                        fail_msg("%s: got %d %s \"%s\" (%zu lines%s), want %d %s \"%s\" (%zu lines)",
                                 c->name, r->code, r->dsn, r->text, r->n_lines,
                                 r->truncated ? ", truncated" : "", c->code, c->dsn, c->text, c->n_lines);
                for (size_t k = 0; k < ELEMENTSOF(c->lines) && c->lines[0]; k++)
                        if (k < c->n_lines && !streq(r->lines[k], c->lines[k]))
                                fail_msg("%s: line %zu \"%s\", want \"%s\"", c->name, k, r->lines[k],
                                         c->lines[k]);
                /* *ret_used stopped right after the reply: the next one is whole */
                if (whole.end[0] != len)
                        fail_msg("%s: the reply ended at %zu, want %zu", c->name, whole.end[0], len);
                if (whole.reply[1].code != 221 || !streq(whole.reply[1].text, "221 2.0.0 Bye"))
                        fail_msg("%s: the next reply is %d \"%s\"", c->name, whole.reply[1].code,
                                 whole.reply[1].text);
                assert_any_split(buf, len + strlen(NEXT_REPLY), &whole, c->name);
                parsed_done(&whole);
        }
}

static void test_pipelined(void **state)
{
        static const char session[] = "220 mx.example.com ESMTP\r\n"
                                      "250-mx.example.com\r\n"
                                      "250-PIPELINING\r\n"
                                      "250-SIZE 10240000\n"
                                      "250 8BITMIME\r\n"
                                      "250 2.1.0 Ok\r\n"
                                      "250 2.1.5 Ok\n"
                                      "550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n"
                                      "354 End data with <CR><LF>.<CR><LF>\r\n"
                                      "250 2.0.0 Ok: queued as 4SVLCh0sf8z9HdB\r\n"
                                      "221 2.0.0 Bye\r\n";
        static const struct {
                int code;
                const char *dsn;
                size_t n_lines;
        } want[] = {
                {220, "2.0.0", 1}, {250, "2.0.0", 4}, {250, "2.1.0", 1}, {250, "2.1.5", 1},
                {550, "5.1.1", 1}, {354, "3.0.0", 1}, {250, "2.0.0", 1}, {221, "2.0.0", 1},
        };
        size_t n = strlen(session), off = 0;
        Parsed whole;

        (void) state;
        parse(session, n, NULL, 0, &whole);
        if (whole.n != ELEMENTSOF(want) || whole.error != 0)
                fail_msg("session: %zu replies, error %d; want %zu replies", whole.n, whole.error,
                         ELEMENTSOF(want));
        for (size_t i = 0; i < whole.n; i++) {
                const SmtpReply *r = &whole.reply[i];
                const char *end = strchr(session + off, '\n');

                /* each reply ends right after its last line */
                for (size_t k = 1; k < want[i].n_lines; k++)
                        end = strchr(end + 1, '\n');
                off = (size_t) (end - session) + 1;
                if (r->code != want[i].code || !streq(r->dsn, want[i].dsn) ||
                    r->n_lines != want[i].n_lines || whole.end[i] != off)
                        fail_msg("reply %zu: %d %s %zu lines ending at %zu, want %d %s %zu lines ending at "
                                 "%zu",
                                 i, r->code, r->dsn, r->n_lines, whole.end[i], want[i].code, want[i].dsn,
                                 want[i].n_lines, off);
        }
        assert_string_equal(whole.reply[1].text,
                            "250-mx.example.com 250-PIPELINING 250-SIZE 10240000 250 8BITMIME");
        assert_any_split(session, n, &whole, "session");

        /* split at every pair of offsets, too */
        for (size_t a = 0; a <= n; a += 3)
                for (size_t b = a; b <= n; b++) {
                        size_t cuts[2] = {a, b};
                        Parsed got;

                        parse(session, n, cuts, 2, &got);
                        if (got.n != whole.n)
                                fail_msg("session split at %zu and %zu: %zu replies, want %zu", a, b, got.n,
                                         whole.n);
                        assert_same_parsed(&whole, &got, "session split in three");
                        parsed_done(&got);
                }
        parsed_done(&whole);
}

typedef struct BadCase {
        const char *name;
        const char *input;
        size_t len;    /* 0: strlen(input) */
        size_t n_good; /* replies before the bad one */
        const char *reason;
} BadCase;

#define BAD_CODE "malformed reply code"

static void test_malformed(void **state)
{
        static const BadCase cases[] = {
                {"letters", "abc\r\n", 0, 0, BAD_CODE},
                {"two digits", "25\r\n", 0, 0, BAD_CODE},
                {"two digits and text", "25 ok\r\n", 0, 0, BAD_CODE},
                {"first digit 0", "099 x\r\n", 0, 0, BAD_CODE},
                {"first digit 1", "199 x\r\n", 0, 0, BAD_CODE},
                {"first digit 6", "600 x\r\n", 0, 0, BAD_CODE},
                {"four digits", "2500 x\r\n", 0, 0, BAD_CODE},
                {"letter after the code", "250x\r\n", 0, 0, BAD_CODE},
                {"tab after the code", "250\tx\r\n", 0, 0, BAD_CODE},
                {"letter in the code", "25a ok\r\n", 0, 0, BAD_CODE},
                {"space first", " 250 x\r\n", 0, 0, BAD_CODE},
                {"empty line", "\r\n", 0, 0, BAD_CODE},
                {"empty line, bare LF", "\n", 0, 0, BAD_CODE},
                {"NUL in the code",
                 "2\0"
                 "0 ok\r\n",
                 8, 0, BAD_CODE},
                {"NUL after the code", "250\0ok\r\n", 8, 0, BAD_CODE},
                {"NUL only", "\0\r\n", 3, 0, BAD_CODE},
                {"CR only", "\r\r\n", 0, 0, BAD_CODE},
                {"bad line in a multi-line reply", "250-ok\r\nabc\r\n", 0, 0, BAD_CODE},
                {"empty line in a multi-line reply", "250-ok\r\n\r\n250 ok\r\n", 0, 0, BAD_CODE},
                {"good replies, then a bad one", "220 hi\r\n250 ok\r\n600 no\r\n", 0, 2, BAD_CODE},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const BadCase *c = &cases[i];
                size_t len = c->len ? c->len : strlen(c->input);
                /* what follows the bad reply must not matter */
                _cleanup_(freep) char *buf = malloc(len + strlen(NEXT_REPLY));
                SmtpReplyParser *sp = NULL;
                const char *reason = NULL;
                size_t used = 12345;
                SmtpReply r;
                Parsed whole;

                assert_non_null(buf);
                memcpy(buf, c->input, len);
                memcpy(buf + len, NEXT_REPLY, strlen(NEXT_REPLY));
                parse(buf, len + strlen(NEXT_REPLY), NULL, 0, &whole);
                if (whole.error != -EBADMSG || whole.n != c->n_good || !streq(whole.reason, c->reason))
                        fail_msg("%s: %zu replies, error %d \"%s\"; want %zu replies, then -EBADMSG \"%s\"",
                                 c->name, whole.n, whole.error, strempty(whole.reason), c->n_good,
                                 c->reason);
                assert_any_split(buf, len + strlen(NEXT_REPLY), &whole, c->name);
                parsed_done(&whole);

                /* broken until reset, then as new */
                assert_int_equal(smtp_reply_parser_new(&sp), 0);
                assert_int_equal(smtp_reply_parser_feed(sp, buf, len, &used, &reason),
                                 c->n_good > 0 ? 1 : -EBADMSG);
                if (c->n_good == 0) {
                        if (used != 12345)
                                fail_msg("%s: *ret_used written on an error", c->name);
                        reason = NULL;
                        assert_int_equal(
                                smtp_reply_parser_feed(sp, NEXT_REPLY, strlen(NEXT_REPLY), &used, &reason),
                                -EBADMSG);
                        if (!reason || !streq(reason, c->reason))
                                fail_msg("%s: fed again after the error: \"%s\"", c->name, strempty(reason));
                        assert_int_equal(smtp_reply_parser_feed(sp, "", 0, &used, NULL), -EBADMSG);
                }
                smtp_reply_parser_reset(sp);
                assert_int_equal(smtp_reply_parser_feed(sp, NEXT_REPLY, strlen(NEXT_REPLY), &used, &reason),
                                 1);
                assert_int_equal(used, strlen(NEXT_REPLY));
                smtp_reply_parser_take(sp, &r);
                assert_int_equal(r.code, 221);
                assert_string_equal(r.text, "221 2.0.0 Bye");
                smtp_reply_done(&r);
                smtp_reply_parser_free(sp);
        }
}

/* many_lines - a reply of N lines ("250-line K" ... "250 last") */
static char *many_lines(size_t n, bool ended)
{
        size_t size = n * 32 + 1, k = 0;
        char *buf = malloc(size);

        assert_non_null(buf);
        for (size_t i = 0; i + 1 < n; i++)
                k += (size_t) snprintf(buf + k, size - k, "250-line %zu\r\n", i + 1);
        k += (size_t) snprintf(buf + k, size - k, ended ? "250 last\r\n" : "250-line %zu\r\n", n);
        assert_true(k < size);
        return buf;
}

static void test_too_many_lines(void **state)
{
        const char *reason = NULL;
        Parsed p;

        (void) state;
        /* SMTP_REPLY_LINES_MAX lines: a reply */
        {
                _cleanup_(freep) char *buf = many_lines(SMTP_REPLY_LINES_MAX, true);

                parse(buf, strlen(buf), NULL, 0, &p);
                if (p.n != 1 || p.reply[0].n_lines != SMTP_REPLY_LINES_MAX)
                        fail_msg("%u lines: %zu replies, error \"%s\"", SMTP_REPLY_LINES_MAX, p.n,
                                 strempty(p.reason));
                assert_string_equal(p.reply[0].lines[0], "250-line 1");
                assert_string_equal(p.reply[0].lines[SMTP_REPLY_LINES_MAX - 1], "250 last");
                assert_int_equal(p.end[0], strlen(buf));
                parsed_done(&p);
                parse_chunks(buf, strlen(buf), 1, &p);
                assert_int_equal(p.n, 1);
                parsed_done(&p);
        }
        /* one more: the line that would need more lines fails, whatever follows */
        {
                _cleanup_(freep) char *buf = many_lines(SMTP_REPLY_LINES_MAX, false);
                _cleanup_(freep) char *more = many_lines(SMTP_REPLY_LINES_MAX + 50, true);

                for (size_t k = 0; k < 2; k++) {
                        const char *b = k == 0 ? buf : more;

                        parse(b, strlen(b), NULL, 0, &p);
                        reason = p.reason;
                        if (p.n != 0 || p.error != -EBADMSG ||
                            !streq(strempty(reason), "reply has too many lines"))
                                fail_msg("%s lines: %zu replies, error %d \"%s\"",
                                         k == 0 ? "100 continued" : "150", p.n, p.error, strempty(reason));
                        parsed_done(&p);
                        parse_chunks(b, strlen(b), 7, &p);
                        if (p.error != -EBADMSG || !streq(strempty(p.reason), "reply has too many lines"))
                                fail_msg("too many lines in pieces: error %d \"%s\"", p.error,
                                         strempty(p.reason));
                        parsed_done(&p);
                }
        }
}

/* long_line - "250-" and LEN - 4 bytes of text (a line of LEN bytes), TAIL, "250 end\r\n" */
static char *long_line(size_t len, const char *tail, size_t *ret_n)
{
        size_t n = len + strlen(tail) + strlen("250 end\r\n");
        char *buf = malloc(n + 1);

        assert_non_null(buf);
        memcpy(buf, "250-", 4);
        for (size_t i = 4; i < len; i++)
                buf[i] = (char) ('a' + i % 26);
        memcpy(buf + len, tail, strlen(tail));
        memcpy(buf + len + strlen(tail), "250 end\r\n", strlen("250 end\r\n") + 1);
        *ret_n = n;
        return buf;
}

static void test_long_lines(void **state)
{
        static const struct {
                size_t len;
                const char *tail;
                bool truncated;
                size_t kept;
        } cases[] = {
                {SMTP_REPLY_LINE_MAX - 1, "\r\n", false, SMTP_REPLY_LINE_MAX - 1},
                {SMTP_REPLY_LINE_MAX, "\r\n", false, SMTP_REPLY_LINE_MAX},
                {SMTP_REPLY_LINE_MAX, "\n", false, SMTP_REPLY_LINE_MAX},
                /* a CR more is a byte more */
                {SMTP_REPLY_LINE_MAX, "\r\r\n", true, SMTP_REPLY_LINE_MAX},
                {SMTP_REPLY_LINE_MAX + 1, "\r\n", true, SMTP_REPLY_LINE_MAX},
                {SMTP_REPLY_LINE_MAX + 1, "\n", true, SMTP_REPLY_LINE_MAX},
                {3 * SMTP_REPLY_LINE_MAX, "\r\n", true, SMTP_REPLY_LINE_MAX},
                {100000, "\r\n", true, SMTP_REPLY_LINE_MAX},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t n;
                _cleanup_(freep) char *buf = long_line(cases[i].len, cases[i].tail, &n);
                const SmtpReply *r;
                Parsed whole, one;

                parse(buf, n, NULL, 0, &whole);
                if (whole.n != 1)
                        fail_msg("%zu-byte line: %zu replies, error \"%s\"", cases[i].len, whole.n,
                                 strempty(whole.reason));
                r = &whole.reply[0];
                if (r->truncated != cases[i].truncated || r->n_lines != 2 ||
                    strlen(r->lines[0]) != cases[i].kept || strncmp(r->lines[0], buf, cases[i].kept) != 0)
                        fail_msg("%zu-byte line%s: %s, %zu lines, first one %zu bytes; want %s, %zu bytes",
                                 cases[i].len, cases[i].tail, r->truncated ? "truncated" : "whole",
                                 r->n_lines, strlen(r->lines[0]), cases[i].truncated ? "truncated" : "whole",
                                 cases[i].kept);
                assert_string_equal(r->lines[1], "250 end");
                assert_int_equal(strlen(r->text), cases[i].kept + 1 + strlen("250 end"));
                parse_chunks(buf, n, 1, &one);
                assert_same_parsed(&whole, &one, "long line, one byte at a time");
                parsed_done(&one);
                parse_chunks(buf, n, 1000, &one);
                assert_same_parsed(&whole, &one, "long line, in pieces of 1000");
                parsed_done(&one);
                parsed_done(&whole);
        }
}

#define HUGE_LINE (10U * 1024 * 1024)
#define PIECE (64U * 1024)

static void test_long_line_memory(void **state)
{
        static char piece[PIECE];
        SmtpReplyParser *sp = NULL;
        size_t base, most = 0, used;
        const char *reason = NULL;
        SmtpReply r;

        (void) state;
        for (size_t i = 0; i < PIECE; i++)
                piece[i] = (char) ('a' + i % 26);
        assert_int_equal(smtp_reply_parser_new(&sp), 0);
        assert_int_equal(smtp_reply_parser_feed(sp, "250 ", 4, &used, &reason), 0);
        base = heap_in_use();
        /* 10 MB of one line, from the same 64 KiB buffer: the heap must not follow */
        for (size_t fed = 0; fed < HUGE_LINE; fed += PIECE) {
                size_t now;

                assert_int_equal(smtp_reply_parser_feed(sp, piece, PIECE, &used, &reason), 0);
                assert_int_equal(used, PIECE);
                now = heap_in_use();
                most = MAX(most, now > base ? now - base : 0);
        }
        if (most > 0)
                fail_msg("the heap grew by %zu bytes while a line was read", most);
        assert_int_equal(smtp_reply_parser_feed(sp, "\r\n", 2, &used, &reason), 1);
        smtp_reply_parser_take(sp, &r);
        assert_true(r.truncated);
        assert_int_equal(r.n_lines, 1);
        assert_int_equal(strlen(r.lines[0]), SMTP_REPLY_LINE_MAX);
        assert_memory_equal(r.lines[0], "250 abcdef", 10);
        smtp_reply_done(&r);
        /* the next reply is not truncated */
        assert_int_equal(smtp_reply_parser_feed(sp, "250 ok\r\n", 8, &used, &reason), 1);
        smtp_reply_parser_take(sp, &r);
        assert_false(r.truncated);
        assert_string_equal(r.text, "250 ok");
        smtp_reply_done(&r);
        smtp_reply_parser_free(sp);
}

static void test_parser_state(void **state)
{
        SmtpReplyParser *sp = NULL;
        const char *reason = NULL;
        size_t used = 0;
        SmtpReply r;

        (void) state;
        assert_null(smtp_reply_parser_free(NULL));
        smtp_reply_done(NULL);
        assert_int_equal(smtp_reply_parser_new(&sp), 0);

        /* nothing fed, and a partial reply: no reply yet, everything used */
        assert_int_equal(smtp_reply_parser_feed(sp, "", 0, &used, &reason), 0);
        assert_int_equal(used, 0);
        assert_int_equal(smtp_reply_parser_feed(sp, "250-ok\r\n250 no end", 18, &used, &reason), 0);
        assert_int_equal(used, 18);
        /* taken too early: an empty reply, the partial one stays */
        smtp_reply_parser_take(sp, &r);
        assert_int_equal(r.code, 0);
        assert_null(r.text);
        assert_int_equal(r.n_lines, 0);
        assert_int_equal(smtp_reply_parser_feed(sp, "\r", 1, &used, &reason), 0);
        assert_int_equal(smtp_reply_parser_feed(sp, "\n220 next\r\n", 11, &used, &reason), 1);
        assert_int_equal(used, 1);
        /* not taken yet: nothing more is read */
        assert_int_equal(smtp_reply_parser_feed(sp, "220 next\r\n", 10, &used, &reason), 1);
        assert_int_equal(used, 0);
        smtp_reply_parser_take(sp, &r);
        assert_string_equal(r.text, "250-ok 250 no end");
        assert_int_equal(r.n_lines, 2);
        smtp_reply_done(&r);
        assert_null(r.text);
        assert_int_equal(smtp_reply_parser_feed(sp, "220 next\r\n", 10, &used, &reason), 1);
        assert_int_equal(used, 10);
        smtp_reply_parser_take(sp, &r);
        assert_string_equal(r.text, "220 next");
        smtp_reply_done(&r);

        /* reset halfway: the partial reply, its truncation and a held CR are forgotten */
        {
                _cleanup_(freep) char *big = malloc(3 * SMTP_REPLY_LINE_MAX);

                assert_non_null(big);
                memset(big, 'x', 3 * SMTP_REPLY_LINE_MAX);
                memcpy(big, "250-", 4);
                assert_int_equal(smtp_reply_parser_feed(sp, "250-a\r\n", 7, &used, &reason), 0);
                assert_int_equal(smtp_reply_parser_feed(sp, big, 3 * SMTP_REPLY_LINE_MAX, &used, &reason),
                                 0);
                assert_int_equal(smtp_reply_parser_feed(sp, "\r", 1, &used, &reason), 0);
                smtp_reply_parser_reset(sp);
                assert_int_equal(smtp_reply_parser_feed(sp, "\n", 1, &used, &reason), -EBADMSG);
                assert_string_equal(reason, BAD_CODE);
                smtp_reply_parser_reset(sp);
                assert_int_equal(smtp_reply_parser_feed(sp, "220 x\r\n", 7, &used, &reason), 1);
                smtp_reply_parser_take(sp, &r);
                assert_int_equal(r.n_lines, 1);
                assert_false(r.truncated);
                assert_string_equal(r.text, "220 x");
                smtp_reply_done(&r);
        }
        smtp_reply_parser_free(sp);
}

typedef struct EhloCase {
        const char *name;
        const char *reply;
        unsigned flags;
        uint64_t size_limit;
} EhloCase;

#define ALL_FEATURES                                                                                        \
        (SMTP_FEATURE_ESMTP | SMTP_FEATURE_PIPELINING | SMTP_FEATURE_SIZE | SMTP_FEATURE_8BITMIME |         \
         SMTP_FEATURE_ENHANCEDSTATUSCODES | SMTP_FEATURE_DSN | SMTP_FEATURE_SMTPUTF8 |                      \
         SMTP_FEATURE_STARTTLS)

static void test_ehlo(void **state)
{
        static const EhloCase cases[] = {
                {"Postfix",
                 "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
                 "250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                 "250-DSN\r\n250 SMTPUTF8\r\n",
                 ALL_FEATURES, 10240000},
                {"lower case", "250-x\r\n250-pipelining\r\n250-Size 100\r\n250 starttls\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_PIPELINING | SMTP_FEATURE_SIZE | SMTP_FEATURE_STARTTLS,
                 100},
                {"greeting only", "250 mx.example.com\r\n", SMTP_FEATURE_ESMTP, 0},
                {"the greeting is no keyword", "250 PIPELINING\r\n", SMTP_FEATURE_ESMTP, 0},
                {"greeting looks like keywords", "250-PIPELINING SIZE 5\r\n250 DSN\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_DSN, 0},
                {"SIZE without a number", "250-x\r\n250 SIZE\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE,
                 0},
                {"SIZE 0", "250-x\r\n250 SIZE 0\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 0},
                {"SIZE 1", "250-x\r\n250 SIZE 1\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 1},
                {"SIZE UINT64_MAX", "250-x\r\n250 SIZE 18446744073709551615\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, UINT64_MAX},
                {"SIZE UINT64_MAX + 1", "250-x\r\n250 SIZE 18446744073709551616\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 0},
                {"SIZE far too large", "250-x\r\n250 SIZE 99999999999999999999999999\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 0},
                {"SIZE garbage", "250-x\r\n250 SIZE 12abc\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 0},
                {"SIZE negative", "250-x\r\n250 SIZE -1\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 0},
                {"SIZE plus", "250-x\r\n250 SIZE +7\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 0},
                {"SIZE 2 spaces", "250-x\r\n250 SIZE  42\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 42},
                {"SIZE tab", "250-x\r\n250 SIZE\t42\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 42},
                {"SIZE and more", "250-x\r\n250 SIZE 42 more\r\n", SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE,
                 42},
                {"SIZE leading zeros", "250-x\r\n250 SIZE 000042\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 42},
                {"SIZE twice: the last", "250-x\r\n250-SIZE 100\r\n250 SIZE 200\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_SIZE, 200},
                {"SIZE=", "250-x\r\n250 SIZE=42\r\n", SMTP_FEATURE_ESMTP, 0},
                {"near misses",
                 "250-x\r\n250-PIPELININGX\r\n250-PIPE\r\n250-XPIPELINING\r\n250-DSNX\r\n250 8BIT\r\n",
                 SMTP_FEATURE_ESMTP, 0},
                {"unknown ones", "250-x\r\n250-AUTH PLAIN LOGIN\r\n250-DSN\r\n250 CHUNKING\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_DSN, 0},
                {"empty keyword line", "250-x\r\n250-\r\n250- \r\n250 STARTTLS\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_STARTTLS, 0},
                {"space before a keyword", "250-x\r\n250-  PIPELINING\r\n250 8BITMIME\r\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_PIPELINING | SMTP_FEATURE_8BITMIME, 0},
                {"bare LF", "250-x\n250-SMTPUTF8\n250 ENHANCEDSTATUSCODES\n",
                 SMTP_FEATURE_ESMTP | SMTP_FEATURE_SMTPUTF8 | SMTP_FEATURE_ENHANCEDSTATUSCODES, 0},
                {"not 250", "502 5.5.2 Error: command not recognized\r\n", 0, 0},
                {"negative with keywords", "550-x\r\n550-PIPELINING\r\n550 SIZE 10\r\n", 0, 0},
                {"421", "421-x\r\n421 STARTTLS\r\n", 0, 0},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const EhloCase *c = &cases[i];
                SmtpFeatures f = {.flags = 0xdead, .size_limit = 99};
                Parsed p;

                parse(c->reply, strlen(c->reply), NULL, 0, &p);
                if (p.n != 1)
                        fail_msg("%s: %zu replies, error \"%s\"", c->name, p.n, strempty(p.reason));
                smtp_ehlo_features(&p.reply[0], &f);
                if (f.flags != c->flags || f.size_limit != c->size_limit)
                        fail_msg("%s: flags 0x%x size %llu, want 0x%x size %llu", c->name, f.flags,
                                 (unsigned long long) f.size_limit, c->flags,
                                 (unsigned long long) c->size_limit);
                parsed_done(&p);
        }
}

/* reference_encode - the DATA encoding of IN (N bytes) written plainly: split into lines at
 * "\n", one CR dropped at the end of each, '.' doubled at the start, "\r\n" after each, ".\r\n" */
static size_t reference_encode(const char *in, size_t n, char *out)
{
        size_t k = 0, start = 0;

        while (start < n) {
                const char *nl = memchr(in + start, '\n', n - start);
                size_t end = nl ? (size_t) (nl - in) : n;
                size_t len = end - start;

                if (len > 0 && in[start + len - 1] == '\r')
                        len--;
                if (len > 0 && in[start] == '.')
                        out[k++] = '.';
                memcpy(out + k, in + start, len);
                k += len;
                out[k++] = '\r';
                out[k++] = '\n';
                start = end + 1;
        }
        memcpy(out + k, ".\r\n", 3);
        return k + 3;
}

/* encode_cut - IN encoded in the pieces the CUTS (ascending) make, each into a buffer of exactly
 * 2 * N + 1 bytes (AddressSanitizer catches a byte more); returns the length of OUT */
static size_t encode_cut(const char *in, size_t n, const size_t *cuts, size_t n_cuts, char *out)
{
        SmtpDataEncoder e;
        size_t from = 0, k = 0, w;
        char *end;

        smtp_data_encoder_init(&e);
        for (size_t i = 0; i <= n_cuts; i++) {
                size_t to = i < n_cuts ? cuts[i] : n;
                _cleanup_(freep) char *piece = malloc(2 * (to - from) + 1);

                assert_non_null(piece);
                w = smtp_data_encode(&e, in + from, to - from, piece);
                if (w > 2 * (to - from) + 1)
                        fail_msg("%zu bytes in, %zu out", to - from, w);
                memcpy(out + k, piece, w);
                k += w;
                from = to;
        }
        end = malloc(8);
        assert_non_null(end);
        w = smtp_data_finish(&e, end);
        assert_true(w <= 8);
        memcpy(out + k, end, w);
        free(end);
        /* finished: as new */
        assert_false(e.mid_line);
        assert_false(e.cr_pending);
        return k + w;
}

/* escaped - S (N bytes) with CR and LF shown as \r and \n, for messages */
static const char *escaped(const char *s, size_t n, char *buf, size_t size)
{
        size_t k = 0;

        for (size_t i = 0; i < n && k + 5 < size; i++) {
                if (s[i] == '\r' || s[i] == '\n') {
                        buf[k++] = '\\';
                        buf[k++] = s[i] == '\r' ? 'r' : 'n';
                } else if ((unsigned char) s[i] < 0x20)
                        k += (size_t) snprintf(buf + k, size - k, "\\x%02x", (unsigned char) s[i]);
                else
                        buf[k++] = s[i];
        }
        buf[k] = '\0';
        return buf;
}

/* assert_encoding - IN encodes to WANT (WANT_N bytes) whole, byte by byte and split anywhere
 * (at every pair of offsets too when PAIRS) */
static void assert_encoding(const char *in, size_t n, const char *want, size_t want_n, bool pairs)
{
        _cleanup_(freep) size_t *bytes = malloc((n + 1) * sizeof(size_t));
        _cleanup_(freep) char *out = malloc(2 * n + 16);
        char e1[512], e2[512], e3[512];
        size_t k;

        assert_non_null(bytes);
        assert_non_null(out);
        k = encode_cut(in, n, NULL, 0, out);
        if (k != want_n || memcmp(out, want, k) != 0)
                fail_msg("\"%s\" whole: \"%s\", want \"%s\"", escaped(in, n, e1, sizeof(e1)),
                         escaped(out, k, e2, sizeof(e2)), escaped(want, want_n, e3, sizeof(e3)));
        for (size_t i = 0; i < n; i++)
                bytes[i] = i + 1;
        k = encode_cut(in, n, bytes, n > 0 ? n - 1 : 0, out);
        if (k != want_n || memcmp(out, want, k) != 0)
                fail_msg("\"%s\" byte by byte: \"%s\", want \"%s\"", escaped(in, n, e1, sizeof(e1)),
                         escaped(out, k, e2, sizeof(e2)), escaped(want, want_n, e3, sizeof(e3)));
        for (size_t a = 0; a <= n; a++)
                for (size_t b = pairs ? a : n; b <= n; b++) {
                        size_t cuts[2] = {a, b};

                        k = encode_cut(in, n, cuts, 2, out);
                        if (k != want_n || memcmp(out, want, k) != 0)
                                fail_msg("\"%s\" split at %zu and %zu: \"%s\", want \"%s\"",
                                         escaped(in, n, e1, sizeof(e1)), a, b,
                                         escaped(out, k, e2, sizeof(e2)),
                                         escaped(want, want_n, e3, sizeof(e3)));
                }
}

static void test_data_encoder(void **state)
{
        static const struct {
                const char *in;
                size_t n; /* 0: strlen(in) */
                const char *want;
                size_t want_n; /* 0: strlen(want) */
        } cases[] = {
                {"", 0, ".\r\n", 0},
                {"a", 0, "a\r\n.\r\n", 0},
                {"a\n", 0, "a\r\n.\r\n", 0},
                {"a\r\n", 0, "a\r\n.\r\n", 0},
                {".", 0, "..\r\n.\r\n", 0},
                {".\n", 0, "..\r\n.\r\n", 0},
                {".\r\n", 0, "..\r\n.\r\n", 0},
                {"..", 0, "...\r\n.\r\n", 0},
                {"..\n", 0, "...\r\n.\r\n", 0},
                {"\n", 0, "\r\n.\r\n", 0},
                {"\r\n", 0, "\r\n.\r\n", 0},
                /* a line holding one CR: sent as it is, as Postfix does */
                {"\r\r\n", 0, "\r\r\n.\r\n", 0},
                /* a CR at the very end: right before the line end finish adds */
                {"\r", 0, "\r\n.\r\n", 0},
                {"a\r", 0, "a\r\n.\r\n", 0},
                {"a\r\r", 0, "a\r\r\n.\r\n", 0},
                {"a\rb\n", 0, "a\rb\r\n.\r\n", 0},
                /* a line that starts with a CR does not start with '.' */
                {"\r.\n", 0, "\r.\r\n.\r\n", 0},
                {"\n.\n", 0, "\r\n..\r\n.\r\n", 0},
                {"a\n\n\n", 0, "a\r\n\r\n\r\n.\r\n", 0},
                {"a\n.\nb.\n..x\n", 0, "a\r\n..\r\nb.\r\n...x\r\n.\r\n", 0},
                {"no newline at the end", 0, "no newline at the end\r\n.\r\n", 0},
                {"Subject: x\n\nbody\n.\n", 0, "Subject: x\r\n\r\nbody\r\n..\r\n.\r\n", 0},
                /* the end of data in the content stays content */
                {"x\r\n.\r\nMAIL FROM:<a@b>\r\n", 0, "x\r\n..\r\nMAIL FROM:<a@b>\r\n.\r\n", 0},
                {"\n.\r\n", 0, "\r\n..\r\n.\r\n", 0},
                {"x\n.", 0, "x\r\n..\r\n.\r\n", 0},
                /* NUL bytes are content like any other */
                {"a\0b\n", 4, "a\0b\r\n.\r\n", 8},
                {"\0.\n", 3, "\0.\r\n.\r\n", 7},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t n = cases[i].n ? cases[i].n : strlen(cases[i].in);
                size_t want_n = cases[i].want_n ? cases[i].want_n : strlen(cases[i].want);
                char ref[256];

                /* the reference agrees with the table, and the encoder with both */
                assert_int_equal(reference_encode(cases[i].in, n, ref), want_n);
                assert_memory_equal(ref, cases[i].want, want_n);
                assert_encoding(cases[i].in, n, cases[i].want, want_n, true);
        }
}

static void test_data_encoder_all(void **state)
{
        static const char alphabet[] = {'a', '.', '\r', '\n'};
        char in[8], want[64];
        size_t count = 0;

        (void) state;
        /* every content of 0..7 bytes over the alphabet, against the reference */
        for (size_t n = 0; n <= 7; n++) {
                size_t total = (size_t) 1 << (2 * n);

                for (size_t v = 0; v < total; v++) {
                        size_t want_n;

                        for (size_t i = 0; i < n; i++)
                                in[i] = alphabet[(v >> (2 * i)) & 3];
                        want_n = reference_encode(in, n, want);
                        assert_encoding(in, n, want, want_n, false);
                        count++;
                }
        }
        assert_int_equal(count, 21845);
}

static void test_xtext(void **state)
{
        static const struct {
                const char *in, *want;
        } cases[] = {
                {"", ""},
                {"abc", "abc"},
                {"a+b=c", "a+2Bb+3Dc"},
                {"+", "+2B"},
                {"=", "+3D"},
                {"<user@example.com>", "<user@example.com>"},
                {"rfc822;user@example.com", "rfc822;user@example.com"},
                {"a b", "a+20b"},
                {"!~", "!~"},
                {"\t", "+09"},
                {"\x01\x1f", "+01+1F"},
                {"\x7f", "+7F"},
                {"\xff", "+FF"},
                {"caf\xc3\xa9", "caf+C3+A9"},
                {"\"quoted\"", "\"quoted\""},
                {"a\r\nb", "a+0D+0Ab"},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *got = NULL;

                assert_int_equal(smtp_xtext(cases[i].in, &got), 0);
                assert_non_null(got);
                if (!streq(got, cases[i].want))
                        fail_msg("xtext of \"%s\": \"%s\", want \"%s\"", cases[i].in, got, cases[i].want);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_replies),      cmocka_unit_test(test_pipelined),
                cmocka_unit_test(test_malformed),    cmocka_unit_test(test_too_many_lines),
                cmocka_unit_test(test_long_lines),   cmocka_unit_test(test_long_line_memory),
                cmocka_unit_test(test_parser_state), cmocka_unit_test(test_ehlo),
                cmocka_unit_test(test_data_encoder), cmocka_unit_test(test_data_encoder_all),
                cmocka_unit_test(test_xtext),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
