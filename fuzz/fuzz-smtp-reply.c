/* SPDX-License-Identifier: MIT */
/*
 * fuzz-smtp-reply.c - libFuzzer target for what an SMTP server sends and what DATA sends
 * (src/smtp/smtp-wire.c)
 *
 * Input: byte 0 sets the chunk sizes (0: everything at once; else pseudo-random sizes from 1 to
 * byte 0, seeded by bytes 0 and 1); the rest is what the server sent, replies back to back.
 *   - Fed whole and fed in chunks, SmtpReplyParser gives the same replies ending at the same
 *     offsets, and stops with the same error (or none). Both agree with a model written here line
 *     by line: a line is what comes before a "\n" less one CR, control characters but TAB made
 *     '?', cut to SMTP_REPLY_LINE_MAX bytes (then the reply is truncated); it must be a code of
 *     2..5 and two digits, then '-', ' ' or nothing; a reply ends at a line without '-' and has
 *     at most SMTP_REPLY_LINES_MAX lines; the code is the last line's.
 *   - Every reply: text is its lines joined by single spaces; dsn is "C.0.0" or the enhanced
 *     code at the start of the last line's text, with C the code's first digit.
 *   - smtp_ehlo_features on every reply: nothing for a reply not 2xx, ESMTP for one that is,
 *     a size limit only with SIZE.
 *   - After an error the parser stays broken until reset, and works after it.
 *   - The DATA encoder over the whole input (byte 0 and 1 included): fed whole and in the same
 *     chunks, into buffers of exactly 2 * N + 1 bytes, it writes the same bytes, and they equal
 *     a plain non-streaming encoding done here.
 *   - smtp_xtext of the input up to its first NUL decodes back to it.
 * Never crash, never leak, never read or write out of bounds. Seeds: fuzz/corpus/smtp-reply/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "smtp-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* replies past this are not kept for comparison (the parse goes on) */
#define KEEP_REPLIES 256

typedef struct Run {
        SmtpReply reply[KEEP_REPLIES];
        size_t end[KEEP_REPLIES];
        size_t n;
        int error;
        const char *reason;
} Run;

static void run_done(Run *run)
{
        for (size_t i = 0; i < MIN(run->n, (size_t) KEEP_REPLIES); i++)
                smtp_reply_done(&run->reply[i]);
}

static uint32_t next_chunk(uint32_t *seed, unsigned max_chunk, size_t left)
{
        if (max_chunk == 0)
                return (uint32_t) MIN(left, (size_t) UINT32_MAX);
        *seed = *seed * 1103515245u + 12345u;
        return (uint32_t) MIN(left, (size_t) (1 + (*seed >> 16) % max_chunk));
}

static void keep(Run *run, SmtpReplyParser *p, size_t end)
{
        SmtpReply r;

        smtp_reply_parser_take(p, &r);
        if (r.n_lines == 0 || !r.text)
                abort();
        if (run->n < KEEP_REPLIES) {
                run->reply[run->n] = r;
                run->end[run->n] = end;
        } else
                smtp_reply_done(&r);
        run->n++;
}

/* parse - S (N bytes) through a parser in chunks (MAX_CHUNK 0: at once) */
static void parse(const char *s, size_t n, unsigned max_chunk, uint32_t seed, Run *run)
{
        SmtpReplyParser *p = NULL;
        size_t used, off = 0;
        const char *reason;
        SmtpReply none;
        int r;

        if (smtp_reply_parser_new(&p) < 0)
                abort();
        while (off < n) {
                size_t k = next_chunk(&seed, max_chunk, n - off), from = off;

                while (off < from + k) {
                        used = SIZE_MAX;
                        reason = NULL;
                        r = smtp_reply_parser_feed(p, s + off, from + k - off, &used, &reason);
                        if (r < 0) {
                                if (r != -EBADMSG || !reason || used != SIZE_MAX)
                                        abort();
                                run->error = r;
                                run->reason = reason;
                                goto broken;
                        }
                        if (r == 0) {
                                if (used != from + k - off)
                                        abort();
                                off = from + k;
                                break;
                        }
                        if (r != 1 || used == 0 || used > from + k - off)
                                abort();
                        off += used;
                        /* not taken: nothing more is read */
                        if (smtp_reply_parser_feed(p, s + off, n - off, &used, &reason) != 1 || used != 0)
                                abort();
                        keep(run, p, off);
                }
        }
        /* nothing complete is left in the parser */
        smtp_reply_parser_take(p, &none);
        if (none.n_lines != 0 || none.text || none.code != 0)
                abort();
        smtp_reply_parser_free(p);
        return;

broken:
        /* broken until reset */
        if (smtp_reply_parser_feed(p, "250 ok\r\n", 8, &used, &reason) != -EBADMSG || reason != run->reason)
                abort();
        smtp_reply_parser_reset(p);
        if (smtp_reply_parser_feed(p, "250 ok\r\n", 8, &used, &reason) != 1 || used != 8)
                abort();
        smtp_reply_parser_take(p, &none);
        if (none.code != 250 || !streq(none.text, "250 ok"))
                abort();
        smtp_reply_done(&none);
        smtp_reply_parser_free(p);
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* model_line - the line S (N bytes, "\n" not included) as kept: into OUT, its length */
static size_t model_line(const char *s, size_t n, char *out, bool *ret_truncated)
{
        size_t kept;

        if (n > 0 && s[n - 1] == '\r')
                n--;
        kept = MIN(n, (size_t) SMTP_REPLY_LINE_MAX);
        for (size_t i = 0; i < kept; i++) {
                unsigned char u = (unsigned char) s[i];

                out[i] = (u < 0x20 && u != '\t') || u == 0x7f ? '?' : s[i];
        }
        out[kept] = '\0';
        *ret_truncated = n > kept;
        return kept;
}

/* check_model - RUN against the input S (N bytes) read line by line */
static void check_model(const char *s, size_t n, const Run *run)
{
        static char line[SMTP_REPLY_LINE_MAX + 1];
        size_t start = 0, replies = 0, lines = 0;
        bool truncated = false;
        int code = 0;

        while (start < n) {
                const char *nl = memchr(s + start, '\n', n - start);
                size_t len, end;
                bool t, last;

                if (!nl)
                        break; /* an unfinished line: no reply, no error */
                end = (size_t) (nl - s);
                len = model_line(s + start, end - start, line, &t);
                start = end + 1;
                if (len < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) || !is_digit(line[2]) ||
                    (len > 3 && line[3] != ' ' && line[3] != '-')) {
                        if (run->error != -EBADMSG || !streq(run->reason, "malformed reply code") ||
                            run->n != replies)
                                abort();
                        return;
                }
                last = len == 3 || line[3] == ' ';
                if (!last && lines + 1 >= SMTP_REPLY_LINES_MAX) {
                        if (run->error != -EBADMSG || !streq(run->reason, "reply has too many lines") ||
                            run->n != replies)
                                abort();
                        return;
                }
                /* a reply the parser completed: the same line (one it did not may still fail) */
                if (replies < MIN(run->n, (size_t) KEEP_REPLIES)) {
                        const SmtpReply *r = &run->reply[replies];

                        if (lines >= r->n_lines || !streq(r->lines[lines], line))
                                abort();
                }
                truncated = truncated || t;
                code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
                lines++;
                if (!last)
                        continue;
                if (replies >= run->n)
                        abort();
                if (replies < KEEP_REPLIES) {
                        const SmtpReply *r = &run->reply[replies];

                        if (r->n_lines != lines || r->code != code || r->truncated != truncated ||
                            run->end[replies] != start)
                                abort();
                }
                replies++;
                lines = 0;
                truncated = false;
        }
        if (run->error != 0 || run->n != replies)
                abort();
}

/* dsn_at - the length of an enhanced status code of class C at S (RFC 3463), 0 if none */
static size_t dsn_at(const char *s, char c)
{
        size_t i = 2, d;

        if (s[0] != c || (c != '2' && c != '4' && c != '5') || s[1] != '.')
                return 0;
        for (d = 0; is_digit(s[i]); i++, d++)
                ;
        if (d < 1 || d > 3 || s[i++] != '.')
                return 0;
        for (d = 0; is_digit(s[i]); i++, d++)
                ;
        if (d < 1 || d > 3 || (s[i] && s[i] != ' ' && s[i] != '\t'))
                return 0;
        return i;
}

static void check_reply(const SmtpReply *r)
{
        const char *last, *t = r->text, *cp;
        char synth[16];
        SmtpFeatures f;
        size_t len;

        if (r->code < 200 || r->code > 599 || r->n_lines < 1 || r->n_lines > SMTP_REPLY_LINES_MAX)
                abort();
        /* text: the lines joined by single spaces */
        for (size_t i = 0; i < r->n_lines; i++) {
                len = strlen(r->lines[i]);
                if (len < 3 || len > SMTP_REPLY_LINE_MAX || strncmp(t, r->lines[i], len) != 0)
                        abort();
                t += len;
                if (*t != (i + 1 < r->n_lines ? ' ' : '\0'))
                        abort();
                t++;
                for (size_t k = 0; k < len; k++) {
                        unsigned char u = (unsigned char) r->lines[i][k];

                        if ((u < 0x20 && u != '\t') || u == 0x7f)
                                abort();
                }
        }
        last = r->lines[r->n_lines - 1];
        if (last[0] - '0' != r->code / 100)
                abort();
        /* dsn: the last line's, or synthesized */
        cp = last + 3;
        if (*cp)
                cp++;
        while (*cp == ' ' || *cp == '\t')
                cp++;
        len = dsn_at(cp, last[0]);
        snprintf(synth, sizeof(synth), "%c.0.0", last[0]);
        if (len > 0 ? strlen(r->dsn) != len || strncmp(r->dsn, cp, len) != 0 : !streq(r->dsn, synth))
                abort();

        f = (SmtpFeatures){.flags = 0xdead, .size_limit = 7};
        smtp_ehlo_features(r, &f);
        if (r->code / 100 != 2) {
                if (f.flags != 0 || f.size_limit != 0)
                        abort();
        } else if (!(f.flags & SMTP_FEATURE_ESMTP) || f.flags > 0xff ||
                   (f.size_limit != 0 && !(f.flags & SMTP_FEATURE_SIZE)))
                abort();
}

/* reference_encode - the DATA encoding written plainly (see test-smtp-wire.c) */
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

/* encode - IN in chunks, each into a buffer of exactly 2 * N + 1 bytes, appended to OUT */
static size_t encode(const char *in, size_t n, unsigned max_chunk, uint32_t seed, char *out)
{
        SmtpDataEncoder e;
        size_t k = 0, w;
        char *end;

        smtp_data_encoder_init(&e);
        for (size_t off = 0; off < n;) {
                size_t c = next_chunk(&seed, max_chunk, n - off);
                char *piece = malloc(2 * c + 1);

                if (!piece)
                        abort();
                w = smtp_data_encode(&e, in + off, c, piece);
                if (w > 2 * c + 1)
                        abort();
                memcpy(out + k, piece, w);
                free(piece);
                k += w;
                off += c;
        }
        end = malloc(8);
        if (!end)
                abort();
        w = smtp_data_finish(&e, end);
        if (w > 8 || e.mid_line || e.cr_pending)
                abort();
        memcpy(out + k, end, w);
        free(end);
        return k + w;
}

static int unhex(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static void check_xtext(const char *s)
{
        char *x = NULL, *back;
        size_t k = 0;

        if (smtp_xtext(s, &x) < 0)
                abort();
        back = malloc(strlen(x) + 1);
        if (!back)
                abort();
        for (const char *c = x; *c; c++) {
                if (*c == '+') {
                        int hi = unhex(c[1]), lo = hi < 0 ? -1 : unhex(c[2]);
                        unsigned char u;

                        if (lo < 0)
                                abort();
                        u = (unsigned char) (hi << 4 | lo);
                        if (u >= '!' && u <= '~' && u != '+' && u != '=')
                                abort(); /* encoded without need */
                        back[k++] = (char) u;
                        c += 2;
                } else {
                        if (*c < '!' || *c > '~' || *c == '=')
                                abort();
                        back[k++] = *c;
                }
        }
        back[k] = '\0';
        if (!streq(back, s))
                abort();
        free(back);
        free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Run whole = {}, chunked = {};
        unsigned max_chunk;
        uint32_t seed;
        const char *s;
        char *out1, *out2, *ref, *str;
        size_t n, k1, k2, kr;

        if (size < 2)
                return 0;
        max_chunk = data[0];
        seed = (uint32_t) data[0] << 8 | data[1];
        s = (const char *) data + 2;
        n = size - 2;

        parse(s, n, 0, 0, &whole);
        parse(s, n, max_chunk, seed, &chunked);
        if (whole.n != chunked.n || whole.error != chunked.error ||
            !streq(strempty(whole.reason), strempty(chunked.reason)))
                abort();
        for (size_t i = 0; i < MIN(whole.n, (size_t) KEEP_REPLIES); i++) {
                const SmtpReply *a = &whole.reply[i], *b = &chunked.reply[i];

                if (whole.end[i] != chunked.end[i] || a->code != b->code || !streq(a->dsn, b->dsn) ||
                    a->truncated != b->truncated || a->n_lines != b->n_lines || !streq(a->text, b->text))
                        abort();
                for (size_t l = 0; l < a->n_lines; l++)
                        if (!streq(a->lines[l], b->lines[l]))
                                abort();
                check_reply(a);
        }
        check_model(s, n, &whole);
        run_done(&whole);
        run_done(&chunked);

        /* the DATA encoder over all of it */
        out1 = malloc(2 * size + 16);
        out2 = malloc(2 * size + 16);
        ref = malloc(2 * size + 16);
        if (!out1 || !out2 || !ref)
                abort();
        k1 = encode((const char *) data, size, 0, 0, out1);
        k2 = encode((const char *) data, size, max_chunk, seed, out2);
        kr = reference_encode((const char *) data, size, ref);
        if (k1 != kr || k2 != kr || memcmp(out1, ref, kr) != 0 || memcmp(out2, ref, kr) != 0)
                abort();
        free(out1);
        free(out2);
        free(ref);

        /* xtext of the input as a string */
        str = strndup((const char *) data, size);
        if (!str)
                abort();
        check_xtext(str);
        free(str);
        return 0;
}
