/* SPDX-License-Identifier: MIT */
/*
 * test-smtpd-proto.c - the SMTP server's input lines, commands, MAIL/RCPT/ETRN arguments and
 * DATA lines (src/smtpd/smtpd-proto.c)
 *
 * The line reader: a table of inputs (CRLF, bare LF, a CR not followed by LF kept in the line,
 * "\r\r\n", NUL bytes, empty lines, lines at the limit, one byte over it, over it by a CR, far
 * over it and followed by the next command, an unfinished last line), each fed whole, one byte
 * at a time, split at every offset and at every pair of offsets, against the table; a pipelined
 * session the same way and in pieces of 2..64 bytes; *ret_used stopping at each line's end;
 * 1 MB and 100 MB without a newline fed in 64 KiB pieces while the heap is watched (it must not
 * grow, and the reader holds at most the limit). Commands: every verb in lower, upper and mixed
 * case, separated by a blank or a tab or alone, after blanks, unknown verbs, empty and blank lines, NUL,
 * arguments trimmed, and arguments one byte too long for the buffer. MAIL and RCPT: a table of
 * good forms and of every reply the header lists (syntax, bad address, source routes, the null
 * path, unbalanced brackets and quotes, quoted local parts with blanks and '@', each parameter
 * good, bad, repeated and unknown, strict and not), every byte from 0x01 to 0xff inside an
 * address (the result must be addr_valid()'s), addresses of 254, 255 and 10,000 bytes, and
 * replies that quote the client kept short and printable. smtpd_addr_domain, ETRN and DATA
 * lines by tables. Leaks and overruns are AddressSanitizer's to find.
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

#include "cleanup.h"
#include "macro.h"
#include "smtpd-proto.h"
#include "test-util.h"


/* show - S (N bytes) with what is not printable escaped, for messages; a static buffer */
static const char *show_n(const char *s, size_t n, char *buf, size_t size)
{
        size_t k = 0;

        for (size_t i = 0; i < n && k + 5 < size; i++) {
                unsigned char u = (unsigned char) s[i];

                if (u == '\r')
                        k += (size_t) snprintf(buf + k, size - k, "\\r");
                else if (u == '\n')
                        k += (size_t) snprintf(buf + k, size - k, "\\n");
                else if (u < 0x20 || u >= 0x7f)
                        k += (size_t) snprintf(buf + k, size - k, "\\x%02x", u);
                else
                        buf[k++] = (char) u;
        }
        buf[k] = '\0';
        return buf;
}

static const char *show(const char *s)
{
        static char buf[4][512];
        static unsigned next;

        next = (next + 1) % 4;
        return show_n(s, strlen(s), buf[next], sizeof(buf[next]));
}

/* ---- the line reader ------------------------------------------------------------------------- */

#define MAX_LINES 32

typedef struct Want {
        const char *data;
        size_t len; /* 0: strlen(data) */
        bool bare_lf, too_long, has_nul;
} Want;

typedef struct Got {
        char *data[MAX_LINES];
        size_t len[MAX_LINES];
        bool bare_lf[MAX_LINES], too_long[MAX_LINES], has_nul[MAX_LINES];
        size_t end[MAX_LINES]; /* offset right after the line */
        size_t n;
        size_t pending; /* smtpd_line_pending() at the end */
} Got;

static void got_done(Got *g)
{
        for (size_t i = 0; i < g->n; i++)
                free(g->data[i]);
        *g = (Got){};
}

/* feed_piece - BUF[from..to) into R, every line that completes kept in G */
static void feed_piece(SmtpdLineReader *r, const char *buf, size_t from, size_t to, Got *g)
{
        while (from < to) {
                size_t used = SIZE_MAX;
                SmtpdLine line;
                int k = smtpd_line_next(r, buf + from, to - from, &used, &line);

                if (k == 0) {
                        if (used != to - from)
                                fail_msg("smtpd_line_next returned 0 having used %zu of %zu bytes", used,
                                         to - from);
                        return;
                }
                if (k != 1)
                        fail_msg("smtpd_line_next returned %d, want 0 or 1", k);
                if (used == 0 || used > to - from)
                        fail_msg("a line completed after %zu of %zu bytes", used, to - from);
                if (smtpd_line_pending(r) != 0)
                        fail_msg("%zu bytes pending right after a line, want 0", smtpd_line_pending(r));
                from += used;
                if (g->n >= MAX_LINES)
                        fail_msg("more than %d lines", MAX_LINES);
                g->data[g->n] = malloc(line.len + 1);
                assert_non_null(g->data[g->n]);
                memcpy(g->data[g->n], line.data, line.len);
                g->data[g->n][line.len] = '\0';
                g->len[g->n] = line.len;
                g->bare_lf[g->n] = line.bare_lf;
                g->too_long[g->n] = line.too_long;
                g->has_nul[g->n] = line.has_nul;
                g->end[g->n] = from;
                g->n++;
        }
}

/* read_lines - BUF (N bytes) cut at CUTS (ascending), each piece fed in turn, with LIMIT */
static void read_lines(const char *buf, size_t n, size_t limit, const size_t *cuts, size_t n_cuts, Got *g)
{
        SmtpdLineReader *r = NULL;
        size_t from = 0;

        *g = (Got){};
        assert_int_equal(smtpd_line_reader_new(limit, &r), 0);
        for (size_t i = 0; i <= n_cuts; i++) {
                size_t to = i < n_cuts ? cuts[i] : n;

                feed_piece(r, buf, from, to, g);
                from = to;
        }
        g->pending = smtpd_line_pending(r);
        assert_null(smtpd_line_reader_free(r));
}

static void read_chunks(const char *buf, size_t n, size_t limit, size_t step, Got *g)
{
        SmtpdLineReader *r = NULL;

        *g = (Got){};
        assert_int_equal(smtpd_line_reader_new(limit, &r), 0);
        for (size_t i = 0; i < n; i += step)
                feed_piece(r, buf, i, MIN(n, i + step), g);
        g->pending = smtpd_line_pending(r);
        smtpd_line_reader_free(r);
}

static void assert_same_got(const Got *want, const Got *got, const char *how)
{
        char a[512], b[512];

        if (want->n != got->n)
                fail_msg("%s: %zu lines, want %zu", how, got->n, want->n);
        for (size_t i = 0; i < want->n; i++)
                if (want->len[i] != got->len[i] || memcmp(want->data[i], got->data[i], want->len[i]) != 0 ||
                    want->bare_lf[i] != got->bare_lf[i] || want->too_long[i] != got->too_long[i] ||
                    want->has_nul[i] != got->has_nul[i] || want->end[i] != got->end[i])
                        fail_msg("%s, line %zu: \"%s\" (%zu bytes) bare_lf=%d too_long=%d has_nul=%d "
                                 "end=%zu, "
                                 "want \"%s\" (%zu bytes) bare_lf=%d too_long=%d has_nul=%d end=%zu",
                                 how, i, show_n(got->data[i], got->len[i], a, sizeof(a)), got->len[i],
                                 got->bare_lf[i], got->too_long[i], got->has_nul[i], got->end[i],
                                 show_n(want->data[i], want->len[i], b, sizeof(b)), want->len[i],
                                 want->bare_lf[i], want->too_long[i], want->has_nul[i], want->end[i]);
        if (want->pending != got->pending)
                fail_msg("%s: %zu bytes pending at the end, want %zu", how, got->pending, want->pending);
}

/* assert_any_split - BUF read one byte at a time, split at every offset, at every pair of
 * offsets (if PAIRS) and in pieces of 2..64 bytes gives WANT (read whole) */
static void assert_any_split(const char *buf, size_t n, size_t limit, const Got *want, const char *name,
                             bool pairs)
{
        char how[256];
        Got got;

        snprintf(how, sizeof(how), "%s, one byte at a time", name);
        read_chunks(buf, n, limit, 1, &got);
        assert_same_got(want, &got, how);
        got_done(&got);
        for (size_t cut = 0; cut <= n; cut++) {
                snprintf(how, sizeof(how), "%s, split at %zu", name, cut);
                read_lines(buf, n, limit, &cut, 1, &got);
                assert_same_got(want, &got, how);
                got_done(&got);
                for (size_t cut2 = cut; pairs && cut2 <= n; cut2++) {
                        size_t cuts[2] = {cut, cut2};

                        snprintf(how, sizeof(how), "%s, split at %zu and %zu", name, cut, cut2);
                        read_lines(buf, n, limit, cuts, 2, &got);
                        assert_same_got(want, &got, how);
                        got_done(&got);
                }
        }
        for (size_t step = 2; step <= 64; step++) {
                snprintf(how, sizeof(how), "%s, in pieces of %zu bytes", name, step);
                read_chunks(buf, n, limit, step, &got);
                assert_same_got(want, &got, how);
                got_done(&got);
        }
}

typedef struct LineCase {
        const char *name;
        const char *input;
        size_t len;   /* 0: strlen(input) */
        size_t limit; /* 0: 2048 */
        Want lines[6];
        size_t n_lines;
        size_t pending;
} LineCase;

static void test_lines(void **state)
{
        static const LineCase cases[] = {
                {"CRLF", "HELO x\r\n", 0, 0, {{"HELO x"}}, 1, 0},
                {"bare LF", "HELO x\n", 0, 0, {{"HELO x", 0, true}}, 1, 0},
                {"two lines, mixed ends", "a\r\nb\n", 0, 0, {{"a"}, {"b", 0, true}}, 2, 0},
                {"a CR alone is kept", "a\rb\r\n", 0, 0, {{"a\rb"}}, 1, 0},
                {"CR CR LF: one CR kept", "a\r\r\n", 0, 0, {{"a\r"}}, 1, 0},
                {"a CR at the start", "\rQUIT\r\n", 0, 0, {{"\rQUIT"}}, 1, 0},
                {"LF CR LF", "\n\r\n", 0, 0, {{"", 0, true}, {""}}, 2, 0},
                {"empty lines", "\r\n\r\n\n", 0, 0, {{""}, {""}, {"", 0, true}}, 3, 0},
                {"NUL bytes", "MA\0IL\r\n", 7, 0, {{"MA\0IL", 5, false, false, true}}, 1, 0},
                {"NUL alone", "\0\n", 2, 0, {{"\0", 1, true, false, true}}, 1, 0},
                {"the NUL is in one line only",
                 "\0\r\nok\r\n",
                 7,
                 0,
                 {{"\0", 1, false, false, true}, {"ok"}},
                 2,
                 0},
                {"unfinished last line", "QUIT\r\nNOOP", 0, 0, {{"QUIT"}}, 1, 4},
                {"unfinished after a CR", "QUIT\r\nNOOP\r", 0, 0, {{"QUIT"}}, 1, 5},
                {"only a CR", "\r", 0, 0, {}, 0, 1},
                {"nothing", "", 0, 0, {}, 0, 0},
                /* the limit, 8 bytes here */
                {"at the limit", "12345678\r\n", 0, 8, {{"12345678"}}, 1, 0},
                {"at the limit, bare LF", "12345678\n", 0, 8, {{"12345678", 0, true}}, 1, 0},
                {"one over", "123456789\r\nQUIT\r\n", 0, 8, {{"12345678", 0, false, true}, {"QUIT"}}, 2, 0},
                {"over by a CR alone", "12345678\r\r\n", 0, 8, {{"12345678", 0, false, true}}, 1, 0},
                {"over by a CR, bare LF", "12345678\rx\n", 0, 8, {{"12345678", 0, true, true}}, 1, 0},
                {"far over, then the next command",
                 "MAIL FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b>\r\nRCPT TO:<c>\r\n",
                 0,
                 8,
                 {{"MAIL FRO", 0, false, true}, {"RCPT TO:", 0, false, true}},
                 2,
                 0},
                {"far over, bare LF",
                 "0123456789abcdef\nx\r\n",
                 0,
                 8,
                 {{"01234567", 0, true, true}, {"x"}},
                 2,
                 0},
                {"a NUL past the limit is dropped",
                 "12345678\0\r\n",
                 11,
                 8,
                 {{"12345678", 0, false, true}},
                 1,
                 0},
                {"a NUL at the limit", "1234567\0\r\n", 10, 8, {{"1234567\0", 8, false, false, true}}, 1, 0},
                {"unfinished and too long", "12345678901234", 0, 8, {}, 0, 8},
                {"unfinished, too long, CR", "1234567890\r", 0, 8, {}, 0, 9},
                {"limit 1", "ab\r\n\r\nc\n", 0, 1, {{"a", 0, false, true}, {""}, {"c", 0, true}}, 3, 0},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const LineCase *c = &cases[i];
                size_t n = c->len ? c->len : strlen(c->input), limit = c->limit ? c->limit : 2048;
                Got want = {}, whole;
                size_t end = 0;

                /* the table, as a Got: each line ends where its input line does */
                for (size_t k = 0; k < c->n_lines; k++) {
                        const char *nl = memchr(c->input + end, '\n', n - end);

                        assert_non_null(nl);
                        end = (size_t) (nl - c->input) + 1;
                        want.len[k] = c->lines[k].len ? c->lines[k].len : strlen(c->lines[k].data);
                        want.data[k] = malloc(want.len[k] + 1);
                        assert_non_null(want.data[k]);
                        memcpy(want.data[k], c->lines[k].data, want.len[k] + 1);
                        want.bare_lf[k] = c->lines[k].bare_lf;
                        want.too_long[k] = c->lines[k].too_long;
                        want.has_nul[k] = c->lines[k].has_nul;
                        want.end[k] = end;
                }
                want.n = c->n_lines;
                want.pending = c->pending;

                read_lines(c->input, n, limit, NULL, 0, &whole);
                assert_same_got(&want, &whole, c->name);
                got_done(&whole);
                assert_any_split(c->input, n, limit, &want, c->name, true);
                got_done(&want);
        }
}

static const char session[] = "EHLO client.example.org\r\n"
                              "MAIL FROM:<sender@example.org> SIZE=1234 BODY=8BITMIME\r\n"
                              "RCPT TO:<a@example.com> NOTIFY=SUCCESS,FAILURE\n"
                              "RCPT TO:<\"b c\"@example.com>\r\n"
                              "DATA\r\n"
                              "Subject: x\r\n"
                              "\r\n"
                              "..dot\r\n"
                              "bare\rCR\r\n"
                              ".\r\n"
                              "QUIT\r\n";

static void test_pipelined(void **state)
{
        static const char *const lines[] = {
                "EHLO client.example.org",
                "MAIL FROM:<sender@example.org> SIZE=1234 BODY=8BITMIME",
                "RCPT TO:<a@example.com> NOTIFY=SUCCESS,FAILURE",
                "RCPT TO:<\"b c\"@example.com>",
                "DATA",
                "Subject: x",
                "",
                "..dot",
                "bare\rCR",
                ".",
                "QUIT",
        };
        size_t n = sizeof(session) - 1;
        Got whole;

        (void) state;
        read_lines(session, n, 2048, NULL, 0, &whole);
        assert_int_equal(whole.n, ELEMENTSOF(lines));
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                if (!streq(whole.data[i], lines[i]))
                        fail_msg("line %zu: \"%s\", want \"%s\"", i, show(whole.data[i]), show(lines[i]));
                if (whole.bare_lf[i] != (i == 2))
                        fail_msg("line %zu: bare_lf %d", i, whole.bare_lf[i]);
        }
        assert_int_equal(whole.end[whole.n - 1], n);
        assert_int_equal(whole.pending, 0);
        /* every single split and every pair of splits: about 35,000 readings */
        assert_any_split(session, n, 2048, &whole, "session", true);
        /* and with a limit that cuts most lines */
        {
                Got cut;

                read_lines(session, n, 10, NULL, 0, &cut);
                assert_int_equal(cut.n, ELEMENTSOF(lines));
                assert_string_equal(cut.data[1], "MAIL FROM:");
                assert_true(cut.too_long[1]);
                assert_false(cut.too_long[4]);
                assert_string_equal(cut.data[10], "QUIT");
                assert_any_split(session, n, 10, &cut, "session, limit 10", false);
                got_done(&cut);
        }
        got_done(&whole);
}

static void test_line_used(void **state)
{
        SmtpdLineReader *r = NULL;
        size_t used = SIZE_MAX;
        SmtpdLine line;
        const char *p = "RSET\r\nNOOP\r\n";

        (void) state;
        assert_int_equal(smtpd_line_reader_new(0, &r), -EINVAL);
        assert_null(smtpd_line_reader_free(NULL));
        assert_int_equal(smtpd_line_reader_new(16, &r), 0);
        /* nothing in, nothing out */
        assert_int_equal(smtpd_line_next(r, "", 0, &used, &line), 0);
        assert_int_equal(used, 0);
        assert_int_equal(smtpd_line_pending(r), 0);
        /* one line at a time: the rest is left to the caller */
        assert_int_equal(smtpd_line_next(r, p, 12, &used, &line), 1);
        assert_int_equal(used, 6);
        assert_int_equal(line.len, 4);
        assert_memory_equal(line.data, "RSET", 4);
        assert_int_equal(smtpd_line_next(r, p + 6, 6, &used, &line), 1);
        assert_int_equal(used, 6);
        assert_memory_equal(line.data, "NOOP", 4);
        /* a client that stalls mid-line */
        assert_int_equal(smtpd_line_next(r, "MAIL", 4, &used, &line), 0);
        assert_int_equal(used, 4);
        assert_int_equal(smtpd_line_pending(r), 4);
        assert_int_equal(smtpd_line_next(r, "\r", 1, &used, &line), 0);
        assert_int_equal(smtpd_line_pending(r), 5);
        assert_int_equal(smtpd_line_next(r, "\nX", 2, &used, &line), 1);
        assert_int_equal(used, 1);
        assert_int_equal(line.len, 4);
        assert_false(line.bare_lf);
        /* the line stays as it was until the next call */
        assert_memory_equal(line.data, "MAIL", 4);
        assert_int_equal(smtpd_line_pending(r), 0);
        smtpd_line_reader_free(r);
}

#define PIECE (64 * 1024)
#define LIMIT 2048

/* huge_line - TOTAL bytes of one line from the same 64 KiB buffer, then CRLF and QUIT: the heap
 * must not grow and at most LIMIT (+ a CR) bytes are held */
static void huge_line(size_t total)
{
        static char piece[PIECE];
        SmtpdLineReader *r = NULL;
        size_t base, most = 0, used;
        SmtpdLine line;

        for (size_t i = 0; i < PIECE; i++)
                piece[i] = (char) ('a' + i % 26);
        piece[PIECE - 1] = '\r'; /* a CR that is not a line end, every 64 KiB */
        assert_int_equal(smtpd_line_reader_new(LIMIT, &r), 0);
        base = heap_in_use();
        for (size_t fed = 0; fed < total; fed += PIECE) {
                size_t now;

                assert_int_equal(smtpd_line_next(r, piece, PIECE, &used, &line), 0);
                assert_int_equal(used, PIECE);
                if (smtpd_line_pending(r) > LIMIT + 1)
                        fail_msg("%zu bytes held after %zu fed, want at most %d", smtpd_line_pending(r),
                                 fed + PIECE, LIMIT + 1);
                now = heap_in_use();
                most = MAX(most, now > base ? now - base : 0);
        }
        if (most > 0)
                fail_msg("the heap grew by %zu bytes while a %zu-byte line was read", most, total);
        assert_int_equal(smtpd_line_next(r, "\r\nQUIT\r\n", 8, &used, &line), 1);
        assert_int_equal(used, 2);
        assert_true(line.too_long);
        assert_false(line.bare_lf);
        assert_false(line.has_nul);
        assert_int_equal(line.len, LIMIT);
        assert_memory_equal(line.data, "abcdefghij", 10);
        assert_int_equal(smtpd_line_next(r, "QUIT\r\n", 6, &used, &line), 1);
        assert_false(line.too_long);
        assert_int_equal(line.len, 4);
        assert_memory_equal(line.data, "QUIT", 4);
        smtpd_line_reader_free(r);
}

static void test_huge_lines(void **state)
{
        (void) state;
        huge_line(1024 * 1024);
        huge_line(100 * 1024 * 1024);
}

/* ---- commands -------------------------------------------------------------------------------- */

static void assert_command(const char *line, size_t len, size_t arg_size, int want_r, SmtpdVerb want_verb,
                           const char *want_arg)
{
        char arg[4096];
        SmtpdVerb verb = (SmtpdVerb) 77;
        int r;

        memset(arg, 'Z', sizeof(arg));
        r = smtpd_command_parse(line, len, &verb, arg, arg_size);
        if (r != want_r)
                fail_msg("\"%s\": %d, want %d", show(line), r, want_r);
        if (r < 0) {
                if (verb != (SmtpdVerb) 77)
                        fail_msg("\"%s\": the verb was written on failure", show(line));
                return;
        }
        if (verb != want_verb)
                fail_msg("\"%s\": verb %s, want %s", show(line), smtpd_verb_name(verb),
                         smtpd_verb_name(want_verb));
        if (!streq(arg, want_arg))
                fail_msg("\"%s\": argument \"%s\", want \"%s\"", show(line), show(arg), show(want_arg));
}

/* DATA's pieces mode: long lines come out in pieces of at most the limit, and joined again they
 * are the input, byte for byte (CRs inside lines included), whatever the input's split. */
static void test_pieces(void **state)
{
        static const char *const inputs[] = {
                "short\r\n",
                "0123456789abcdefghij\r\n",          /* 20: two pieces of 8 and a rest */
                "01234567\r\n",                      /* exactly the limit */
                "0123456\r\r\n",                    /* CR inside, at the limit */
                "012345678\rX\n",                    /* a lone CR across a piece boundary */
                "0123456789012345678901234567\n",     /* bare LF end */
                "\r\r\r\r\r\r\r\r\r\r\r\r\n",
        };
        const size_t limit = 8;

        for (size_t k = 0; k < ELEMENTSOF(inputs); k++)
                for (size_t step = 1; step <= strlen(inputs[k]); step++) {
                        SmtpdLineReader *r = NULL;
                        char joined[256] = "";
                        size_t jlen = 0, off = 0, n = strlen(inputs[k]);
                        bool ended = false;

                        assert_int_equal(smtpd_line_reader_new(limit, &r), 0);
                        smtpd_line_reader_set_pieces(r, true);
                        while (off < n) {
                                size_t chunk = MIN(step, n - off), used = 0;
                                SmtpdLine line;
                                int q = smtpd_line_next(r, inputs[k] + off, chunk, &used, &line);

                                assert_true(q >= 0);
                                off += used;
                                if (q == 0)
                                        continue;
                                assert_false(ended);
                                assert_true(line.len <= limit);
                                assert_false(line.too_long);
                                memcpy(joined + jlen, line.data, line.len);
                                jlen += line.len;
                                if (!line.partial)
                                        ended = true;
                        }
                        assert_true(ended);
                        /* the input without its line end */
                        size_t want = n - 1 - (inputs[k][n - 2] == '\r' ? 1 : 0);
                        assert_int_equal(jlen, want);
                        assert_memory_equal(joined, inputs[k], want);
                        smtpd_line_reader_free(r);
                }
}

static void test_verbs(void **state)
{
        static const struct {
                const char *name;
                SmtpdVerb verb;
        } verbs[] = {
                {"HELO", SMTPD_HELO}, {"EHLO", SMTPD_EHLO}, {"MAIL", SMTPD_MAIL}, {"RCPT", SMTPD_RCPT},
                {"DATA", SMTPD_DATA}, {"RSET", SMTPD_RSET}, {"NOOP", SMTPD_NOOP}, {"QUIT", SMTPD_QUIT},
                {"VRFY", SMTPD_VRFY}, {"HELP", SMTPD_HELP}, {"ETRN", SMTPD_ETRN},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char lower[8], mixed[8], line[64];

                for (size_t k = 0; k < 5; k++) {
                        lower[k] = (char) (verbs[i].name[k] ? verbs[i].name[k] | 0x20 : 0);
                        mixed[k] = k % 2 ? lower[k] : verbs[i].name[k];
                }
                assert_command(verbs[i].name, 4, 64, 0, verbs[i].verb, "");
                assert_command(lower, 4, 64, 0, verbs[i].verb, "");
                assert_command(mixed, 4, 64, 0, verbs[i].verb, "");
                snprintf(line, sizeof(line), "%s x y", lower);
                assert_command(line, strlen(line), 64, 0, verbs[i].verb, "x y");
                snprintf(line, sizeof(line), "%s\t  arg \t ", mixed);
                assert_command(line, strlen(line), 64, 0, verbs[i].verb, "arg");
                snprintf(line, sizeof(line), "  %s", verbs[i].name);
                assert_command(line, strlen(line), 64, 0, verbs[i].verb, "");
                snprintf(line, sizeof(line), "%sX", verbs[i].name);
                assert_command(line, strlen(line), 64, 0, SMTPD_UNKNOWN, "");
                assert_command(verbs[i].name, 3, 64, 0, SMTPD_UNKNOWN, "");
                if (!streq(smtpd_verb_name(verbs[i].verb), lower))
                        fail_msg("verb name \"%s\", want \"%s\"", smtpd_verb_name(verbs[i].verb), lower);
        }
        assert_string_equal(smtpd_verb_name(SMTPD_UNKNOWN), "unknown");
        assert_string_equal(smtpd_verb_name((SmtpdVerb) 1000), "unknown");
}

static void test_commands(void **state)
{
        static const struct {
                const char *line;
                size_t len; /* 0: strlen */
                int r;
                SmtpdVerb verb;
                const char *arg;
        } cases[] = {
                {"MAIL FROM:<a@b> SIZE=10", 0, 0, SMTPD_MAIL, "FROM:<a@b> SIZE=10"},
                {"mail from: <a@b>", 0, 0, SMTPD_MAIL, "from: <a@b>"},
                {"RCPT\tTO:<a@b>", 0, 0, SMTPD_RCPT, "TO:<a@b>"},
                {"QUIT\r", 0, 0, SMTPD_QUIT, ""},
                {"NOOP \r\t ", 0, 0, SMTPD_NOOP, ""},
                {"EHLO  a  b  ", 0, 0, SMTPD_EHLO, "a  b"},
                {"", 0, 0, SMTPD_UNKNOWN, ""},
                {" ", 0, 0, SMTPD_UNKNOWN, ""},
                {"\t\t", 0, 0, SMTPD_UNKNOWN, ""},
                {"STARTTLS", 0, 0, SMTPD_UNKNOWN, ""},
                {"AUTH PLAIN x", 0, 0, SMTPD_UNKNOWN, "PLAIN x"},
                {"BDAT 10 LAST", 0, 0, SMTPD_UNKNOWN, "10 LAST"},
                {"GET / HTTP/1.0", 0, 0, SMTPD_UNKNOWN, "/ HTTP/1.0"},
                {"XMAIL FROM:<a>", 0, 0, SMTPD_UNKNOWN, "FROM:<a>"},
                {"MAI", 0, 0, SMTPD_UNKNOWN, ""},
                {"MAIL:FROM", 0, 0, SMTPD_UNKNOWN, ""},
                {"MAIL<a>", 0, 0, SMTPD_UNKNOWN, ""},
                {"\xc3\x89HLO x", 0, 0, SMTPD_UNKNOWN, "x"},
                /* a NUL anywhere: unknown, the argument not copied */
                {"MAIL FROM:<a\0@b>", 16, 0, SMTPD_UNKNOWN, ""},
                {"\0", 1, 0, SMTPD_UNKNOWN, ""},
                {"QUIT\0", 5, 0, SMTPD_UNKNOWN, ""},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_command(cases[i].line, cases[i].len ? cases[i].len : strlen(cases[i].line), 64,
                               cases[i].r, cases[i].verb, cases[i].arg);
        /* only LEN bytes count: the line need not be NUL terminated */
        assert_command("HELO abcdef", 8, 64, 0, SMTPD_HELO, "abc");
}

static void test_argument_size(void **state)
{
        char line[3000];

        (void) state;
        /* "NOOP " and an argument of 10 bytes: 11 bytes of room are enough, 10 are not */
        assert_command("NOOP 0123456789", 15, 11, 0, SMTPD_NOOP, "0123456789");
        assert_command("NOOP 0123456789", 15, 10, -E2BIG, SMTPD_NOOP, NULL);
        assert_command("NOOP 0123456789   ", 18, 11, 0, SMTPD_NOOP, "0123456789");
        assert_command("NOOP", 4, 1, 0, SMTPD_NOOP, "");
        assert_command("NOOP", 4, 0, -E2BIG, SMTPD_NOOP, NULL);
        assert_command("", 0, 0, -E2BIG, SMTPD_UNKNOWN, NULL);
        /* a line at the reader's limit, all argument */
        memcpy(line, "RCPT ", 5);
        memset(line + 5, 'x', 2043);
        line[2048] = '\0';
        assert_command(line, 2048, 2044, 0, SMTPD_RCPT, line + 5);
        assert_command(line, 2048, 2043, -E2BIG, SMTPD_RCPT, NULL);
        assert_command(line, 2048, 2, -E2BIG, SMTPD_RCPT, NULL);
}

/* ---- MAIL and RCPT -------------------------------------------------------------------------- */

#define OK 0, NULL, NULL
#define SYNTAX_MAIL 501, "5.5.4", "Syntax: MAIL FROM:<address>"
#define SYNTAX_RCPT 501, "5.5.4", "Syntax: RCPT TO:<address>"
#define BAD_SENDER 501, "5.1.7", "Bad sender address syntax"
#define BAD_RCPT 501, "5.1.3", "Bad recipient address syntax"
#define BAD_SIZE 501, "5.5.4", "Bad message size syntax"
#define BIG_SIZE 552, "5.3.4", "Message size exceeds file system imposed limit"
#define BAD_BODY 501, "5.5.4", "Bad BODY parameter syntax"
#define BAD_RET 501, "5.5.4", "Bad RET parameter syntax"
#define BAD_ENVID 501, "5.5.4", "Bad ENVID parameter syntax"
#define BAD_NOTIFY 501, "5.5.4", "Error: Bad NOTIFY parameter syntax"
#define BAD_ORCPT 501, "5.5.4", "Error: Bad ORCPT parameter syntax"
#define UNSUPPORTED(x) 555, "5.5.4", "Unsupported option: " x

typedef struct PathCase {
        const char *arg;
        bool strict;
        int code; /* 0: accepted */
        const char *dsn, *text;
        const char *addr;
        uint64_t size;
        int body, ret;
        const char *envid;
        int notify;
        const char *orcpt;
} PathCase;

static void assert_path(const PathCase *c, bool is_mail)
{
        SmtpdPath p = {.addr = (char *) "untouched"};
        SmtpdReply reply = {.code = -1, .dsn = "none", .text = "none"};
        const char *what = is_mail ? "MAIL" : "RCPT";
        int r;

        r = is_mail ? smtpd_parse_mail(c->arg, c->strict, &p, &reply)
                    : smtpd_parse_rcpt(c->arg, c->strict, &p, &reply);
        if (c->code != 0) {
                if (r != -EINVAL || reply.code != c->code || !streq(reply.dsn, c->dsn) ||
                    !streq(reply.text, c->text))
                        fail_msg("%s \"%s\"%s: %d \"%d %s %s\", want -EINVAL \"%d %s %s\"", what,
                                 show(c->arg), c->strict ? " (strict)" : "", r, reply.code, reply.dsn,
                                 show(reply.text), c->code, c->dsn, c->text);
                if (!streq(p.addr, "untouched"))
                        fail_msg("%s \"%s\": *ret written on failure", what, show(c->arg));
                return;
        }
        if (r != 0)
                fail_msg("%s \"%s\"%s: %d \"%d %s %s\", want 0 with <%s>", what, show(c->arg),
                         c->strict ? " (strict)" : "", r, reply.code, reply.dsn, show(reply.text), c->addr);
        if (reply.code != -1)
                fail_msg("%s \"%s\": a reply was written on success", what, show(c->arg));
        if (!streq(p.addr, c->addr))
                fail_msg("%s \"%s\": address \"%s\", want \"%s\"", what, show(c->arg), show(p.addr),
                         c->addr);
        if (!addr_valid(p.addr))
                fail_msg("%s \"%s\": address \"%s\" does not pass addr_valid()", what, show(c->arg), p.addr);
        if (p.size != c->size || p.body != c->body || p.ret != c->ret || p.notify != c->notify)
                fail_msg("%s \"%s\": size %llu body %d ret %d notify %d, want size %llu body %d ret %d "
                         "notify %d",
                         what, show(c->arg), (unsigned long long) p.size, p.body, p.ret, p.notify,
                         (unsigned long long) c->size, c->body, c->ret, c->notify);
        if (!streq(strna(p.envid), strna(c->envid)))
                fail_msg("%s \"%s\": envid \"%s\", want \"%s\"", what, show(c->arg), show(strna(p.envid)),
                         strna(c->envid));
        if (!streq(strna(p.orcpt), strna(c->orcpt)))
                fail_msg("%s \"%s\": orcpt \"%s\", want \"%s\"", what, show(c->arg), show(strna(p.orcpt)),
                         strna(c->orcpt));
        smtpd_path_done(&p);
        if (p.addr || p.envid || p.orcpt)
                fail_msg("smtpd_path_done left pointers behind");
}

static void test_mail(void **state)
{
        static const PathCase cases[] = {
                /* good forms */
                {"FROM:<user@example.com>", false, OK, "user@example.com"},
                {"FROM:<user@example.com>", true, OK, "user@example.com"},
                {"from:<user@example.com>", true, OK, "user@example.com"},
                {"FrOm:<user@example.com>", true, OK, "user@example.com"},
                {"FROM: <user@example.com>", true, OK, "user@example.com"},
                {"FROM:\t <user@example.com>", true, OK, "user@example.com"},
                {"FROM:<User@Example.COM>", true, OK, "User@Example.COM"},
                {"FROM:<user>", true, OK, "user"},
                {"FROM:<a.b.c@[192.0.2.1]>", true, OK, "a.b.c@[192.0.2.1]"},
                {"FROM:<a@[IPv6:2001:db8::1]>", true, OK, "a@[IPv6:2001:db8::1]"},
                {"FROM:user@example.com", false, OK, "user@example.com"},
                {"FROM: user@example.com", false, OK, "user@example.com"},
                /* the null sender */
                {"FROM:<>", false, OK, ""},
                {"FROM:<>", true, OK, ""},
                {"FROM: <>", true, OK, ""},
                {"FROM:<> SIZE=0", true, OK, ""},
                /* source routes */
                {"FROM:<@a,@b:user@c>", true, OK, "user@c"},
                {"FROM:<@relay.example:user@example.com>", true, OK, "user@example.com"},
                {"FROM:@a:user@c", false, OK, "user@c"},
                {"FROM:<@a:>", false, BAD_SENDER},
                {"FROM:<@a:@b>", false, BAD_SENDER},
                {"FROM:<@a>", false, BAD_SENDER},
                {"FROM:<@a,@b:\"x y\"@c>", true, OK, "\"x y\"@c"},
                /* quoted local parts */
                {"FROM:<\"a b\"@x>", true, OK, "\"a b\"@x"},
                {"FROM:<\"u@v\"@w>", true, OK, "\"u@v\"@w"},
                {"FROM:\"a b\"@x", false, OK, "\"a b\"@x"},
                {"FROM:<\"a>b\"@x>", true, OK, "\"a>b\"@x"},
                {"FROM:<\"a\\\"b\"@x>", true, OK, "\"a\\\"b\"@x"},
                {"FROM:<\"a b\"@x> SIZE=5", true, OK, "\"a b\"@x", 5},
                /* syntax */
                {"", false, SYNTAX_MAIL},
                {"FROM:", false, SYNTAX_MAIL},
                {"FROM: ", false, SYNTAX_MAIL},
                {"FROM", false, SYNTAX_MAIL},
                {"FROM <a@b>", false, SYNTAX_MAIL},
                {"FROM : <a@b>", false, SYNTAX_MAIL},
                {"TO:<a@b>", false, SYNTAX_MAIL},
                {"FROMX:<a@b>", false, SYNTAX_MAIL},
                {"<a@b>", false, SYNTAX_MAIL},
                /* bad addresses */
                {"FROM:user@example.com", true, BAD_SENDER},
                {"FROM:<a@b", false, BAD_SENDER},
                {"FROM:<a@b SIZE=1", false, BAD_SENDER},
                {"FROM:<<a@b>", false, BAD_SENDER},
                {"FROM:a@b>", false, BAD_SENDER},
                {"FROM:a@b>", true, BAD_SENDER},
                {"FROM:<a@b>>", false, BAD_SENDER},
                {"FROM:<a@b>x", false, BAD_SENDER},
                {"FROM:<<a@b>>", false, BAD_SENDER},
                {"FROM:<\"a@b>", false, BAD_SENDER},
                {"FROM:<\"a b@x>", false, BAD_SENDER},
                {"FROM:\"a b@x", false, BAD_SENDER},
                {"FROM:<a b@x>", false, BAD_SENDER},
                {"FROM:<a@b (comment)>", false, BAD_SENDER},
                {"FROM:<a@@b>", false, BAD_SENDER},
                {"FROM:<a@b@c>", false, BAD_SENDER},
                {"FROM:<@>", false, BAD_SENDER},
                {"FROM:<a@>", false, BAD_SENDER},
                {"FROM:<.a@b>", false, BAD_SENDER},
                {"FROM:<a..b@c>", false, BAD_SENDER},
                {"FROM:<a@b..c>", false, BAD_SENDER},
                {"FROM:<a@-b>", false, BAD_SENDER},
                {"FROM:<a@[1.2.3.4>", false, BAD_SENDER},
                {"FROM:<a\\@b@c>", false, BAD_SENDER},
                {"FROM:<a\r@b>", false, BAD_SENDER},
                {"FROM:<\"a\x01\"@b>", false, BAD_SENDER},
                {"FROM:<a@b\\", false, BAD_SENDER},
                /* SIZE */
                {"FROM:<a@b> SIZE=0", true, OK, "a@b", 0},
                {"FROM:<a@b> size=1000000", true, OK, "a@b", 1000000},
                {"FROM:<a@b> SIZE=9223372036854775807", true, OK, "a@b", INT64_MAX},
                {"FROM:<a@b> SIZE=0009", true, OK, "a@b", 9},
                {"FROM:<a@b> SIZE=9223372036854775808", true, BIG_SIZE},
                {"FROM:<a@b> SIZE=99999999999999999999999", true, BIG_SIZE},
                {"FROM:<a@b> SIZE=", true, BAD_SIZE},
                {"FROM:<a@b> SIZE=-1", true, BAD_SIZE},
                {"FROM:<a@b> SIZE=+1", true, BAD_SIZE},
                {"FROM:<a@b> SIZE=1k", true, BAD_SIZE},
                {"FROM:<a@b> SIZE=0x10", true, BAD_SIZE},
                {"FROM:<a@b> SIZE=1 SIZE=1", true, BAD_SIZE},
                {"FROM:<a@b> SIZE", true, UNSUPPORTED("SIZE")},
                /* BODY */
                {"FROM:<a@b> BODY=8BITMIME", true, OK, "a@b", 0, SMTPD_BODY_8BITMIME},
                {"FROM:<a@b> body=8bitmime", true, OK, "a@b", 0, SMTPD_BODY_8BITMIME},
                {"FROM:<a@b> BODY=7BIT", true, OK, "a@b", 0, SMTPD_BODY_7BIT},
                {"FROM:<a@b> BODY=7BIT BODY=8BITMIME", true, BAD_BODY},
                {"FROM:<a@b> BODY=BINARYMIME", true, UNSUPPORTED("BODY=BINARYMIME")},
                {"FROM:<a@b> BODY=", true, UNSUPPORTED("BODY=")},
                {"FROM:<a@b> BODY", true, UNSUPPORTED("BODY")},
                /* RET */
                {"FROM:<a@b> RET=FULL", true, OK, "a@b", 0, 0, SMTPD_RET_FULL},
                {"FROM:<a@b> ret=hdrs", true, OK, "a@b", 0, 0, SMTPD_RET_HDRS},
                {"FROM:<a@b> RET=", true, BAD_RET},
                {"FROM:<a@b> RET=BOTH", true, BAD_RET},
                {"FROM:<a@b> RET=FULLX", true, BAD_RET},
                {"FROM:<a@b> RET=FULL RET=FULL", true, BAD_RET},
                {"FROM:<a@b> RET=FULL RET=HDRS", true, BAD_RET},
                /* ENVID */
                {"FROM:<a@b> ENVID=QQ314159", true, OK, "a@b", .envid = "QQ314159"},
                {"FROM:<a@b> envid=a+2Bb+3Dc", true, OK, "a@b", .envid = "a+b=c"},
                {"FROM:<a@b> ENVID=a+20b", true, OK, "a@b", .envid = "a b"},
                {"FROM:<a@b> ENVID=+2b+3d", true, OK, "a@b", .envid = "+="},
                {"FROM:<a@b> ENVID=<id@host>", true, OK, "a@b", .envid = "<id@host>"},
                {"FROM:<a@b> ENVID=", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=a+", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=a+2", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=a+G0", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=a+0G", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=a=b", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=+00", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=a+0Ab", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=+7F", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=+C3+A9", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=\xc3\xa9", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=a\x01", true, BAD_ENVID},
                {"FROM:<a@b> ENVID=x ENVID=x", true, BAD_ENVID},
                /* everything at once, any order */
                {"FROM:<a@b> RET=HDRS ENVID=e1 BODY=8BITMIME SIZE=77", true, OK, "a@b", 77,
                 SMTPD_BODY_8BITMIME, SMTPD_RET_HDRS, "e1"},
                {"FROM:<a@b>  SIZE=1\t\tBODY=7BIT  ", true, OK, "a@b", 1, SMTPD_BODY_7BIT},
                /* unknown, and RCPT's */
                {"FROM:<a@b> AUTH=<>", true, UNSUPPORTED("AUTH=<>")},
                {"FROM:<a@b> SMTPUTF8", true, UNSUPPORTED("SMTPUTF8")},
                {"FROM:<a@b> XVERP", true, UNSUPPORTED("XVERP")},
                {"FROM:<a@b> NOTIFY=NEVER", true, UNSUPPORTED("NOTIFY=NEVER")},
                {"FROM:<a@b> ORCPT=rfc822;a@b", true, UNSUPPORTED("ORCPT=rfc822;a@b")},
                {"FROM:<a@b> =", true, UNSUPPORTED("=")},
                {"FROM:<a@b> <c@d>", true, UNSUPPORTED("<c@d>")},
                {"FROM:<a@b> X=\"a b\"", true, UNSUPPORTED("X=\"a b\"")},
                {"FROM:<a@b> X=\x01\xff", true, UNSUPPORTED("X=??")},
                /* a bad address is found before a bad parameter */
                {"FROM:<a@@b> BOGUS", true, BAD_SENDER},
                {"FROM:<a@b> BOGUS SIZE=x", true, UNSUPPORTED("BOGUS")},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_path(&cases[i], true);
}

static void test_rcpt(void **state)
{
        static const PathCase cases[] = {
                {"TO:<user@example.com>", true, OK, "user@example.com"},
                {"to: <user@example.com>", true, OK, "user@example.com"},
                {"To:user@example.com", false, OK, "user@example.com"},
                {"TO:<postmaster>", true, OK, "postmaster"},
                {"TO:<@a,@b:u@c>", true, OK, "u@c"},
                {"TO:<\"a b\"@x>", true, OK, "\"a b\"@x"},
                {"TO:<\"u@v\"@w>", true, OK, "\"u@v\"@w"},
                {"TO:<u%v@w>", true, OK, "u%v@w"},
                /* the null recipient */
                {"TO:<>", false, BAD_RCPT},
                {"TO:<>", true, BAD_RCPT},
                {"TO:<@a:>", false, BAD_RCPT},
                /* syntax */
                {"", false, SYNTAX_RCPT},
                {"TO:", false, SYNTAX_RCPT},
                {"FROM:<a@b>", false, SYNTAX_RCPT},
                {"TO <a@b>", false, SYNTAX_RCPT},
                {"TOO:<a@b>", false, SYNTAX_RCPT},
                /* bad addresses */
                {"TO:user@example.com", true, BAD_RCPT},
                {"TO:<a@b", false, BAD_RCPT},
                {"TO:<a@b>>", false, BAD_RCPT},
                {"TO:a@b>", false, BAD_RCPT},
                {"TO:<\"a@b>", false, BAD_RCPT},
                {"TO:<a@b c>", false, BAD_RCPT},
                /* NOTIFY */
                {"TO:<a@b> NOTIFY=NEVER", true, OK, "a@b", .notify = SMTPD_NOTIFY_NEVER},
                {"TO:<a@b> notify=never", true, OK, "a@b", .notify = SMTPD_NOTIFY_NEVER},
                {"TO:<a@b> NOTIFY=SUCCESS", true, OK, "a@b", .notify = SMTPD_NOTIFY_SUCCESS},
                {"TO:<a@b> NOTIFY=SUCCESS,DELAY,FAILURE", true, OK, "a@b",
                 .notify = SMTPD_NOTIFY_SUCCESS | SMTPD_NOTIFY_DELAY | SMTPD_NOTIFY_FAILURE},
                {"TO:<a@b> NOTIFY=failure,delay", true, OK, "a@b",
                 .notify = SMTPD_NOTIFY_FAILURE | SMTPD_NOTIFY_DELAY},
                {"TO:<a@b> NOTIFY=DELAY,,DELAY", true, OK, "a@b", .notify = SMTPD_NOTIFY_DELAY},
                {"TO:<a@b> NOTIFY=", true, BAD_NOTIFY},
                {"TO:<a@b> NOTIFY=,", true, BAD_NOTIFY},
                {"TO:<a@b> NOTIFY=NEVER,SUCCESS", true, BAD_NOTIFY},
                {"TO:<a@b> NOTIFY=DELAY,NEVER", true, BAD_NOTIFY},
                {"TO:<a@b> NOTIFY=ALWAYS", true, BAD_NOTIFY},
                {"TO:<a@b> NOTIFY=SUCCESSX", true, BAD_NOTIFY},
                {"TO:<a@b> NOTIFY=SUCCES", true, BAD_NOTIFY},
                {"TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", true, BAD_NOTIFY},
                /* ORCPT */
                {"TO:<a@b> ORCPT=rfc822;a@b", true, OK, "a@b", .orcpt = "rfc822;a@b"},
                {"TO:<a@b> orcpt=RFC822;x+2By@b", true, OK, "a@b", .orcpt = "RFC822;x+y@b"},
                {"TO:<a@b> ORCPT=utf-8;caf+C3+A9@b", true, OK, "a@b", .orcpt = "utf-8;caf\xc3\xa9@b"},
                {"TO:<a@b> ORCPT=rfc822;a+20b@c", true, OK, "a@b", .orcpt = "rfc822;a b@c"},
                {"TO:<a@b> ORCPT=rfc822;<a;b@c>", true, OK, "a@b", .orcpt = "rfc822;<a;b@c>"},
                {"TO:<a@b> ORCPT=a@b", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=;a@b", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc822;", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc822;a+", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc822;a+zz", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc822;a=b", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc822;a+00b", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc822;a+0D+0Ab", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc822;\xc3\xa9", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc\xff;a", true, BAD_ORCPT},
                {"TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;a", true, BAD_ORCPT},
                {"TO:<a@b> NOTIFY=DELAY ORCPT=rfc822;x@y", true, OK, "a@b", .notify = SMTPD_NOTIFY_DELAY,
                 .orcpt = "rfc822;x@y"},
                /* MAIL's parameters are not RCPT's */
                {"TO:<a@b> SIZE=10", true, UNSUPPORTED("SIZE=10")},
                {"TO:<a@b> BODY=8BITMIME", true, UNSUPPORTED("BODY=8BITMIME")},
                {"TO:<a@b> RET=FULL", true, UNSUPPORTED("RET=FULL")},
                {"TO:<a@b> ENVID=x", true, UNSUPPORTED("ENVID=x")},
                {"TO:<a@b> FOO=BAR", true, UNSUPPORTED("FOO=BAR")},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_path(&cases[i], false);
}

/* every byte inside an address: no crash, and the verdict is addr_valid()'s */
static void test_address_bytes(void **state)
{
        (void) state;
        for (unsigned b = 1; b < 256; b++) {
                /* '#' is where the byte goes */
                static const char *const forms[] = {"u#x@example.com", "u@exa#mple.com",
                                                    "\"u#x\"@example.com"};

                for (size_t f = 0; f < ELEMENTSOF(forms); f++) {
                        char addr[64], arg[128];
                        SmtpdPath p = {};
                        SmtpdReply reply;
                        bool valid;
                        int r;

                        strcpy(addr, forms[f]);
                        *strchr(addr, '#') = (char) b;
                        valid = addr_valid(addr);
                        /* a blank or a bracket changes the words; the path is then refused too */
                        if (strchr(" \t\r\n\v\f<>\"\\", (int) b) && f != 2)
                                valid = false;
                        snprintf(arg, sizeof(arg), "TO:<%s>", addr);
                        r = smtpd_parse_rcpt(arg, true, &p, &reply);
                        if (valid ? r != 0 : r != -EINVAL)
                                fail_msg("byte 0x%02x in \"%s\": %d, want %s", b, show(addr), r,
                                         valid ? "0" : "-EINVAL");
                        if (r == 0 && !streq(p.addr, addr))
                                fail_msg("byte 0x%02x: address \"%s\", want \"%s\"", b, show(p.addr),
                                         show(addr));
                        if (r < 0 && reply.code != 501)
                                fail_msg("byte 0x%02x in \"%s\": reply %d, want 501", b, show(addr),
                                         reply.code);
                        smtpd_path_done(&p);
                }
        }
}

static void test_long_addresses(void **state)
{
        static char addr[10001], arg[10100];
        static const struct {
                size_t local, domain;
                bool ok;
        } cases[] = {
                {64, 10, true},  {65, 10, false},  {10, 243, true},   {10, 244, false},
                {64, 189, true}, {64, 190, false}, {5000, 10, false}, {10, 9989, false},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t k = 0;
                SmtpdPath p = {};
                SmtpdReply reply;
                int r;

                memset(addr, 'a', cases[i].local);
                k = cases[i].local;
                addr[k++] = '@';
                /* labels of 60 bytes and dots */
                for (size_t d = 0; d < cases[i].domain; d++)
                        addr[k++] = d % 61 == 60 ? '.' : 'b';
                addr[k] = '\0';
                snprintf(arg, sizeof(arg), "FROM:<%s> SIZE=1", addr);
                r = smtpd_parse_mail(arg, true, &p, &reply);
                if (cases[i].ok ? r != 0 : (r != -EINVAL || reply.code != 501 || !streq(reply.dsn, "5.1.7")))
                        fail_msg("an address of %zu bytes (%zu + @ + %zu): %d, want %s", strlen(addr),
                                 cases[i].local, cases[i].domain, r,
                                 cases[i].ok ? "0" : "-EINVAL 501 5.1.7");
                if (r == 0 && !streq(p.addr, addr))
                        fail_msg("an address of %zu bytes came back changed", strlen(addr));
                smtpd_path_done(&p);
                snprintf(arg, sizeof(arg), "TO:%s", addr);
                r = smtpd_parse_rcpt(arg, false, &p, &reply);
                if (cases[i].ok ? r != 0 : r != -EINVAL)
                        fail_msg("RCPT, an address of %zu bytes: %d", strlen(addr), r);
                smtpd_path_done(&p);
        }
        /* 10,000 bytes of an unknown parameter: quoted short and printable */
        {
                SmtpdPath p = {};
                SmtpdReply reply;

                memcpy(arg, "FROM:<a@b> X=", 13);
                memset(arg + 13, '\x7f', 10000);
                arg[10013] = '\0';
                assert_int_equal(smtpd_parse_mail(arg, true, &p, &reply), -EINVAL);
                assert_int_equal(reply.code, 555);
                assert_ptr_equal(reply.text, reply.buf);
                if (strlen(reply.text) != 120 || strncmp(reply.text, "Unsupported option: X=??", 24) != 0)
                        fail_msg("reply text \"%s\" (%zu bytes), want 120 bytes", show(reply.text),
                                 strlen(reply.text));
        }
}

static void test_addr_domain(void **state)
{
        static const struct {
                const char *addr;
                size_t size;
                int r;
                const char *domain;
        } cases[] = {
                {"user@Example.COM", 64, 0, "example.com"},
                {"user", 64, 0, ""},
                {"", 64, 0, ""},
                {"\"u@v\"@W.example", 64, 0, "w.example"},
                {"\"u@v\"", 64, 0, ""},
                {"\"a\\\"@b\"@c", 64, 0, "c"},
                {"a@b@C", 64, 0, "c"},
                {"a@[IPv6:2001:DB8::1]", 64, 0, "[ipv6:2001:db8::1]"},
                {"a@", 64, 0, ""},
                {"u@\xc3\x89X", 64, 0, "\xc3\x89x"},
                {"u@abcd", 5, 0, "abcd"},
                {"u@abcde", 5, -ENAMETOOLONG, NULL},
                {"u", 1, 0, ""},
                {"u", 0, -ENAMETOOLONG, NULL},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[64];
                int r;

                strcpy(buf, "untouched");
                r = smtpd_addr_domain(cases[i].addr, buf, cases[i].size);
                if (r != cases[i].r)
                        fail_msg("domain of \"%s\" in %zu bytes: %d, want %d", show(cases[i].addr),
                                 cases[i].size, r, cases[i].r);
                if (r == 0 && !streq(buf, cases[i].domain))
                        fail_msg("domain of \"%s\": \"%s\", want \"%s\"", show(cases[i].addr), show(buf),
                                 show(cases[i].domain));
        }
}

/* ---- ETRN ---------------------------------------------------------------------------------- */

static void test_etrn(void **state)
{
        static char long_name[400];
        static const struct {
                const char *arg;
                int code; /* 0: accepted */
                const char *site;
        } cases[] = {
                {"example.com", 0, "example.com"},
                {"@example.com", 0, "example.com"},
                {"#example.com", 0, "example.com"},
                {"Example.COM", 0, "Example.COM"},
                {"  example.com  ", 0, "example.com"},
                {"mail-1.example_x.com", 0, "mail-1.example_x.com"},
                {"localhost", 0, "localhost"},
                {"[192.0.2.1]", 0, "[192.0.2.1]"},
                {"@[192.0.2.1]", 0, "[192.0.2.1]"},
                {"[ipv6:2001:db8::1]", 0, "[ipv6:2001:db8::1]"},
                {"[IPv6:::1]", 0, "[IPv6:::1]"},
                {"[IPv6:::ffff:192.0.2.1]", 0, "[IPv6:::ffff:192.0.2.1]"},
                {"\xc3\xa9xample.com", 0, "\xc3\xa9xample.com"},
                /* the syntax */
                {"", 500, NULL},
                {"   ", 500, NULL},
                {"a b", 500, NULL},
                {"example.com x", 500, NULL},
                {"example.com\tx", 500, NULL},
                {"a\rb", 500, NULL},
                {"from:x", 500, NULL},
                /* not a host name */
                {"@", 501, NULL},
                {"#", 501, NULL},
                {"@@example.com", 501, NULL},
                {"@#example.com", 501, NULL},
                {"../etc", 501, NULL},
                {"..", 501, NULL},
                {".", 501, NULL},
                {"a/b", 501, NULL},
                {"/etc/passwd", 501, NULL},
                {"a;b", 501, NULL},
                {"$(x)", 501, NULL},
                {"`x`", 501, NULL},
                {"a|b", 501, NULL},
                {"a&b", 501, NULL},
                {"a..b", 501, NULL},
                {".a", 501, NULL},
                {"a.", 501, NULL},
                {"-a.b", 501, NULL},
                {"a-.b", 501, NULL},
                {"1.2.3.4", 501, NULL},
                {"123", 501, NULL},
                {"a\\b", 501, NULL},
                {"\"a b\"", 501, NULL},
                {"<a b>", 501, NULL},
                {"\"a", 501, NULL},
                {"a\x01", 501, NULL},
                {"a*", 501, NULL},
                {"[192.0.2.1", 501, NULL},
                {"[192.0.2.256]", 501, NULL},
                {"[192.0.2]", 501, NULL},
                {"[example.com]", 501, NULL},
                {"[2001:db8::1]", 501, NULL},
                {"[ipv6:2001:db8::g]", 501, NULL},
                {"[ipv6:1.2.3.4]", 501, NULL},
                {"[ipv6:../../]", 501, NULL},
                {"[]", 501, NULL},
                {"[192.0.2.1]x", 501, NULL},
                {"[[192.0.2.1]]", 501, NULL},
                {long_name, 501, NULL},
        };

        (void) state;
        /* 256 bytes: one too many for valid_hostname() */
        for (size_t i = 0; i < 256; i++)
                long_name[i] = i % 50 == 49 ? '.' : 'a';
        long_name[256] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SmtpdReply reply = {.code = -1};
                char site[300];
                int r;

                strcpy(site, "untouched");
                r = smtpd_parse_etrn(cases[i].arg, site, sizeof(site), &reply);
                if (cases[i].code == 0) {
                        if (r != 0 || !streq(site, cases[i].site))
                                fail_msg("ETRN \"%s\": %d \"%s\" (%d %s), want 0 \"%s\"", show(cases[i].arg),
                                         r, show(site), reply.code, reply.code > 0 ? reply.text : "",
                                         cases[i].site);
                        if (strchr(site, '/') || strstr(site, ".."))
                                fail_msg("ETRN site \"%s\" holds '/' or \"..\"", site);
                        continue;
                }
                if (r != -EINVAL || reply.code != cases[i].code || !streq(reply.dsn, ""))
                        fail_msg("ETRN \"%s\": %d, reply %d, want -EINVAL %d", show(cases[i].arg), r,
                                 reply.code, cases[i].code);
                if (!streq(reply.text,
                           cases[i].code == 500 ? "Syntax: ETRN domain" : "Error: invalid parameter syntax"))
                        fail_msg("ETRN \"%s\": text \"%s\"", show(cases[i].arg), reply.text);
                if (!streq(site, "untouched"))
                        fail_msg("ETRN \"%s\": the site was written on failure", show(cases[i].arg));
        }
        /* 255 bytes pass, and need 256 bytes of room */
        {
                SmtpdReply reply;
                char site[256];

                long_name[255] = '\0';
                assert_int_equal(smtpd_parse_etrn(long_name, site, sizeof(site), &reply), 0);
                assert_string_equal(site, long_name);
                assert_int_equal(smtpd_parse_etrn(long_name, site, 255, &reply), -ENAMETOOLONG);
                assert_int_equal(smtpd_parse_etrn("#a.b", site, 4, &reply), 0);
                assert_int_equal(smtpd_parse_etrn("#a.bc", site, 4, &reply), -ENAMETOOLONG);
        }
}

/* ---- DATA ---------------------------------------------------------------------------------- */

static void test_data_lines(void **state)
{
        static const struct {
                const char *line;
                size_t len; /* 0: strlen */
                int r;
                const char *data;
                size_t data_len;
        } cases[] = {
                {".", 0, 1, NULL, 0},  {"..", 0, 0, ".", 1},   {".x", 0, 0, "x", 1},
                {"x", 0, 0, "x", 1},   {"", 0, 0, "", 0},      {"...", 0, 0, "..", 2},
                {". ", 0, 0, " ", 1},  {" .", 0, 0, " .", 2},  {".\r", 0, 0, "\r", 1},
                {"x.", 0, 0, "x.", 2}, {".\0", 2, 0, "\0", 1}, {"..x", 1, 1, NULL, 0},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = cases[i].len ? cases[i].len : strlen(cases[i].line), got_len = 99;
                const char *data = NULL;
                int r = smtpd_data_line(cases[i].line, len, &data, &got_len);

                if (r != cases[i].r)
                        fail_msg("DATA line \"%s\": %d, want %d", show(cases[i].line), r, cases[i].r);
                if (r == 1)
                        continue;
                if (got_len != cases[i].data_len || memcmp(data, cases[i].data, got_len) != 0)
                        fail_msg("DATA line \"%s\": \"%.*s\", want \"%s\"", show(cases[i].line),
                                 (int) got_len, data, show(cases[i].data));
                if (data < cases[i].line || data + got_len > cases[i].line + len)
                        fail_msg("DATA line \"%s\": the result is not inside the line", show(cases[i].line));
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lines),          cmocka_unit_test(test_pipelined),
                cmocka_unit_test(test_line_used),      cmocka_unit_test(test_huge_lines),
                cmocka_unit_test(test_verbs),          cmocka_unit_test(test_commands),
                cmocka_unit_test(test_argument_size),  cmocka_unit_test(test_mail),
                cmocka_unit_test(test_rcpt),           cmocka_unit_test(test_address_bytes),
                cmocka_unit_test(test_long_addresses), cmocka_unit_test(test_addr_domain),
                cmocka_unit_test(test_etrn),           cmocka_unit_test(test_data_lines),
                cmocka_unit_test(test_pieces),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
