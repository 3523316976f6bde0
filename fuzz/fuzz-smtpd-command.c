/* SPDX-License-Identifier: MIT */
/*
 * fuzz-smtpd-command.c - libFuzzer target for what an SMTP client sends to tern-smtpd
 * (src/smtpd/smtpd-proto.c)
 *
 * Input: byte 0 sets the chunk sizes (0: everything at once; else pseudo-random sizes from 1 to
 * byte 0, seeded by bytes 0 and 1); byte 1 also picks the line limit (2048, 8, 64 or 512: its
 * low two bits); the rest is what the client sent.
 *   - Read whole and read in chunks, SmtpdLineReader gives the same lines ending at the same
 *     offsets, and both agree with a model written here: a line is what comes before a "\n"
 *     less one CR, cut to the limit (then too_long); bare_lf when no CR was removed; has_nul
 *     when a NUL is among the kept bytes. Never more than limit + 1 bytes pending, and at the
 *     end exactly what the model leaves unfinished.
 *   - Every line through smtpd_command_parse: a known verb is the first word (any case); the
 *     argument is the rest without surrounding white space; a small argument buffer gives
 *     -E2BIG exactly when the argument does not fit, and otherwise the same result.
 *   - Every argument through smtpd_parse_mail, smtpd_parse_rcpt (strict and not) and
 *     smtpd_parse_etrn, whatever the verb: on success the address passes addr_valid(), is not
 *     longer than the argument, is "" only for MAIL, and a strict success is the same as the
 *     lenient one; the parameters hold only the values they may (NEVER alone, printable ENVID,
 *     ORCPT "type;address" without control characters); smtpd_addr_domain is lower case. On
 *     failure every reply has a 4xx or 5xx code, a dsn and a non-empty printable text, and
 *     *ret is untouched. An ETRN site is short, holds no '/', "..", blank, shell or control
 *     character, and parses again to itself.
 *   - smtpd_data_line on every line: 1 exactly for ".", else the line less one leading dot.
 *   - In pieces mode (DATA), no piece is longer than the limit and the pieces of a line joined
 *     are the whole line, whatever the chunks.
 * Never crash, never leak, never read or write out of bounds. Seeds: fuzz/corpus/smtpd-command/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "macro.h"
#include "smtpd-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Line {
        char *data;
        size_t len, end;
        bool bare_lf, too_long, has_nul;
} Line;

typedef struct Run {
        Line *lines;
        size_t n, alloc;
        size_t pending;
} Run;

static void run_done(Run *run)
{
        for (size_t i = 0; i < run->n; i++)
                free(run->lines[i].data);
        free(run->lines);
        *run = (Run){};
}

static uint32_t next_chunk(uint32_t *seed, unsigned max_chunk, size_t left)
{
        if (max_chunk == 0)
                return (uint32_t) MIN(left, (size_t) UINT32_MAX);
        *seed = *seed * 1103515245u + 12345u;
        return (uint32_t) MIN(left, (size_t) (1 + (*seed >> 16) % max_chunk));
}

static void keep(Run *run, const SmtpdLine *l, size_t end)
{
        Line *k;

        if (run->n == run->alloc) {
                run->alloc = run->alloc ? 2 * run->alloc : 16;
                run->lines = realloc(run->lines, run->alloc * sizeof(Line));
                if (!run->lines)
                        abort();
        }
        k = &run->lines[run->n++];
        *k = (Line){.len = l->len,
                    .end = end,
                    .bare_lf = l->bare_lf,
                    .too_long = l->too_long,
                    .has_nul = l->has_nul};
        k->data = malloc(l->len + 1);
        if (!k->data)
                abort();
        memcpy(k->data, l->data, l->len);
        k->data[l->len] = '\0';
}

/* read_all - S (N bytes) through a reader with LIMIT, in chunks (MAX_CHUNK 0: at once) */
static void read_all(const char *s, size_t n, size_t limit, unsigned max_chunk, uint32_t seed, Run *run)
{
        SmtpdLineReader *r = NULL;
        size_t off = 0;

        if (smtpd_line_reader_new(limit, &r) < 0)
                abort();
        while (off < n) {
                size_t k = next_chunk(&seed, max_chunk, n - off), to = off + k;

                while (off < to) {
                        size_t used = SIZE_MAX;
                        SmtpdLine l;
                        int x = smtpd_line_next(r, s + off, to - off, &used, &l);

                        if (x == 0) {
                                if (used != to - off)
                                        abort();
                                off = to;
                        } else if (x == 1) {
                                if (used == 0 || used > to - off || l.len > limit ||
                                    smtpd_line_pending(r) != 0)
                                        abort();
                                off += used;
                                keep(run, &l, off);
                        } else
                                abort();
                        if (smtpd_line_pending(r) > limit + 1)
                                abort();
                }
        }
        run->pending = smtpd_line_pending(r);
        if (smtpd_line_reader_free(r))
                abort();
}

/* check_model - RUN against S read line by line */
static void check_model(const char *s, size_t n, size_t limit, const Run *run)
{
        size_t start = 0, i = 0, rest, kept;

        for (;;) {
                const char *nl = memchr(s + start, '\n', n - start);
                size_t end, len, keep_len;
                bool cr;
                const Line *l;

                if (!nl)
                        break;
                end = (size_t) (nl - s);
                len = end - start;
                cr = len > 0 && s[end - 1] == '\r';
                if (cr)
                        len--;
                keep_len = MIN(len, limit);
                if (i >= run->n)
                        abort();
                l = &run->lines[i++];
                if (l->len != keep_len || memcmp(l->data, s + start, keep_len) != 0 || l->bare_lf == cr ||
                    l->too_long != (len > limit) ||
                    l->has_nul != (memchr(s + start, '\0', keep_len) != NULL) || l->end != end + 1)
                        abort();
                start = end + 1;
        }
        if (i != run->n)
                abort();
        rest = n - start;
        if (rest > 0 && s[n - 1] == '\r')
                kept = MIN(rest - 1, limit) + 1;
        else
                kept = MIN(rest, limit);
        if (run->pending != kept)
                abort();
}

static bool printable(const char *t)
{
        for (; *t; t++)
                if ((unsigned char) *t < 0x20 || (unsigned char) *t >= 0x7f)
                        return false;
        return true;
}

static void check_reply(const SmtpdReply *r)
{
        if (r->code < 400 || r->code > 599 || !r->dsn || !r->text || isempty(r->text) || !printable(r->text))
                abort();
        if (*r->dsn && (r->dsn[0] != '0' + r->code / 100 || r->dsn[1] != '.'))
                abort();
        if (r->code == 555 && (r->text != r->buf || strncmp(r->text, "Unsupported option: ", 20) != 0 ||
                               strlen(r->text) > 120))
                abort();
}

static bool same_path(const SmtpdPath *a, const SmtpdPath *b)
{
        return streq(a->addr, b->addr) && a->size == b->size && a->body == b->body && a->ret == b->ret &&
               a->notify == b->notify && streq(strna(a->envid), strna(b->envid)) &&
               streq(strna(a->orcpt), strna(b->orcpt));
}

static void check_path(const char *arg, bool is_mail)
{
        SmtpdPath strict = {.addr = (char *) "untouched"}, lenient = {.addr = (char *) "untouched"};
        SmtpdReply reply;
        char domain[300];
        int rs, rl;

        rs = is_mail ? smtpd_parse_mail(arg, true, &strict, &reply)
                     : smtpd_parse_rcpt(arg, true, &strict, &reply);
        if (rs == -EINVAL) {
                check_reply(&reply);
                if (!streq(strict.addr, "untouched"))
                        abort();
        } else if (rs != 0)
                abort();
        rl = is_mail ? smtpd_parse_mail(arg, false, &lenient, &reply)
                     : smtpd_parse_rcpt(arg, false, &lenient, &reply);
        if (rl == -EINVAL) {
                check_reply(&reply);
                if (!streq(lenient.addr, "untouched") || rs == 0)
                        abort();
                return;
        }
        if (rl != 0)
                abort();
        if (rs == 0) {
                if (!same_path(&strict, &lenient))
                        abort();
                smtpd_path_done(&strict);
        }
        if (!lenient.addr || !addr_valid(lenient.addr) || strlen(lenient.addr) > strlen(arg) ||
            (!is_mail && !*lenient.addr))
                abort();
        if (lenient.body < 0 || lenient.body > SMTPD_BODY_8BITMIME || lenient.ret < 0 ||
            lenient.ret > SMTPD_RET_HDRS)
                abort();
        if ((lenient.notify & SMTPD_NOTIFY_NEVER) && lenient.notify != SMTPD_NOTIFY_NEVER)
                abort();
        if (lenient.notify &
            ~(SMTPD_NOTIFY_NEVER | SMTPD_NOTIFY_SUCCESS | SMTPD_NOTIFY_DELAY | SMTPD_NOTIFY_FAILURE))
                abort();
        if (is_mail ? lenient.notify || lenient.orcpt
                    : lenient.size || lenient.body || lenient.ret || lenient.envid)
                abort();
        if (lenient.envid && (!*lenient.envid || !printable(lenient.envid)))
                abort();
        if (lenient.orcpt) {
                const char *semi = strchr(lenient.orcpt, ';');

                if (!semi || semi == lenient.orcpt || !semi[1])
                        abort();
                for (const char *p = lenient.orcpt; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                abort();
        }
        if (smtpd_addr_domain(lenient.addr, domain, sizeof(domain)) != 0)
                abort();
        for (const char *p = domain; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        abort();
        /* it needs exactly its length and a NUL */
        {
                char *exact = malloc(strlen(domain) + 1);

                if (!exact || smtpd_addr_domain(lenient.addr, exact, strlen(domain) + 1) != 0 ||
                    !streq(exact, domain) ||
                    smtpd_addr_domain(lenient.addr, exact, strlen(domain)) != -ENAMETOOLONG)
                        abort();
                free(exact);
        }
        smtpd_path_done(&lenient);
}

static void check_etrn(const char *arg)
{
        SmtpdReply reply;
        char site[300], again[300];
        int r;

        r = smtpd_parse_etrn(arg, site, sizeof(site), &reply);
        if (r == -EINVAL) {
                check_reply(&reply);
                if ((reply.code != 500 && reply.code != 501) || !streq(reply.dsn, ""))
                        abort();
                return;
        }
        if (r != 0 || strlen(site) == 0 || strlen(site) > 255)
                abort();
        if (strchr(site, '/') || strstr(site, "..") || strpbrk(site, " \t\r\n\v\f;$`|&<>()\\'\"*?!{}~%"))
                abort();
        for (const char *p = site; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        abort();
        if (site[0] == '@' || site[0] == '#')
                abort();
        /* a site is a valid argument, and the same site */
        if (smtpd_parse_etrn(site, again, sizeof(again), &reply) != 0 || !streq(site, again))
                abort();
        if (smtpd_parse_etrn(site, again, strlen(site), &reply) != -ENAMETOOLONG)
                abort();
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void check_line(const Line *l, size_t limit)
{
        char *arg = malloc(limit + 1), small[16];
        SmtpdVerb verb = SMTPD_UNKNOWN, verb2 = SMTPD_UNKNOWN;
        const char *d;
        size_t dlen, alen;
        int r;

        if (!arg)
                abort();
        if (smtpd_command_parse(l->data, l->len, &verb, arg, limit + 1) != 0)
                abort();
        alen = strlen(arg);
        if (alen > l->len || (alen > 0 && (is_space(arg[0]) || is_space(arg[alen - 1]))))
                abort();
        if (l->has_nul && (verb != SMTPD_UNKNOWN || alen != 0))
                abort();
        if (verb != SMTPD_UNKNOWN) {
                const char *v = l->data;

                while (is_space(*v))
                        v++;
                if (strncasecmp(v, smtpd_verb_name(verb), 4) != 0 || (v[4] && !is_space(v[4])))
                        abort();
                if (alen > 0 && strstr(v + 4, arg) == NULL)
                        abort();
        }
        r = smtpd_command_parse(l->data, l->len, &verb2, small, sizeof(small));
        if (alen >= sizeof(small) ? r != -E2BIG : r != 0 || verb2 != verb || !streq(small, arg))
                abort();

        check_path(arg, true);
        check_path(arg, false);
        check_etrn(arg);
        free(arg);

        r = smtpd_data_line(l->data, l->len, &d, &dlen);
        if (l->len == 1 && l->data[0] == '.') {
                if (r != 1)
                        abort();
        } else {
                size_t skip = l->len > 0 && l->data[0] == '.';

                if (r != 0 || d != l->data + skip || dlen != l->len - skip)
                        abort();
        }
}

/*
 * check_pieces - DATA's pieces mode: S through a reader in pieces mode, in chunks: every piece
 * at most LIMIT bytes, and the pieces of each line joined are the line as the input has it (all
 * its bytes before the "\n", less one CR just before it), with bare_lf as the model says; what
 * is left after the last "\n" is pending, nothing more.
 */
static void check_pieces(const char *s, size_t n, size_t limit, unsigned max_chunk, uint32_t seed)
{
        SmtpdLineReader *r = NULL;
        char *joined = malloc(n + 1);
        size_t off = 0, jlen = 0, line_start = 0;

        if (!joined || smtpd_line_reader_new(limit, &r) < 0)
                abort();
        smtpd_line_reader_set_pieces(r, true);
        while (off < n) {
                size_t k = next_chunk(&seed, max_chunk, n - off), to = off + k;

                while (off < to) {
                        size_t used = SIZE_MAX;
                        SmtpdLine l;
                        int x = smtpd_line_next(r, s + off, to - off, &used, &l);

                        if (x < 0 || used > to - off || (x == 0 && used != to - off))
                                abort();
                        off += used;
                        if (x == 0)
                                continue;
                        if (l.len > limit || l.too_long || (x == 1 && used == 0 && !l.partial))
                                abort();
                        memcpy(joined + jlen, l.data, l.len);
                        jlen += l.len;
                        if (l.partial)
                                continue;
                        /* a whole line: off is just past its "\n" */
                        size_t end = off - 1, want = end - line_start;
                        bool cr = want > 0 && s[end - 1] == '\r';

                        if (s[end] != '\n')
                                abort();
                        if (cr)
                                want--;
                        if (jlen != want || memcmp(joined, s + line_start, want) != 0 || l.bare_lf == cr)
                                abort();
                        jlen = 0;
                        line_start = off;
                }
        }
        /* the unfinished rest: pieces handed out plus what the reader holds */
        if (jlen + smtpd_line_pending(r) != n - line_start)
                abort();
        smtpd_line_reader_free(r);
        free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const size_t limits[] = {2048, 8, 64, 512};
        Run whole = {}, chunked = {};
        unsigned max_chunk;
        size_t limit, n;
        uint32_t seed;
        const char *s;

        if (size < 2)
                return 0;
        max_chunk = data[0];
        seed = (uint32_t) data[0] << 8 | data[1];
        limit = limits[data[1] & 3];
        s = (const char *) data + 2;
        n = size - 2;

        read_all(s, n, limit, 0, 0, &whole);
        read_all(s, n, limit, max_chunk, seed, &chunked);
        if (whole.n != chunked.n || whole.pending != chunked.pending)
                abort();
        for (size_t i = 0; i < whole.n; i++) {
                const Line *a = &whole.lines[i], *b = &chunked.lines[i];

                if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0 || a->end != b->end ||
                    a->bare_lf != b->bare_lf || a->too_long != b->too_long || a->has_nul != b->has_nul)
                        abort();
        }
        check_model(s, n, limit, &whole);
        check_pieces(s, n, limit, max_chunk, seed);
        for (size_t i = 0; i < whole.n; i++)
                check_line(&whole.lines[i], limit);
        run_done(&whole);
        run_done(&chunked);
        return 0;
}
