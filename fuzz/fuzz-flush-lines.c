/* SPDX-License-Identifier: MIT */
/*
 * fuzz-flush-lines.c - libFuzzer target for fast flush logfile reading (src/flush/flush-entries.c)
 *
 * Input: byte 0 sets the chunk sizes (0: the whole file at once; else pseudo-random sizes from
 * 1 to byte 0, seeded by bytes 0 and 1); byte 1's low nibble is the FlushDupFilter limit and its
 * high nibble + 1 the line at which a third pass stops the feed; the rest is the logfile.
 *   - Fed whole and fed in chunks, FlushLines makes the same calls, each line's text shorter
 *     than QUEUE_ID_MAX, a valid one passing queue_id_valid(), a bad one at most
 *     FLUSH_BAD_LINE_SHOW bytes. Both agree with a model written here: one call per '\n' and one
 *     from flush_lines_end() for a last line without it; valid exactly when the line is 1 to
 *     QUEUE_ID_MAX - 1 bytes of [A-Za-z0-9_], shown whole when valid or short, else its first
 *     FLUSH_BAD_LINE_SHOW bytes. A line holding a NUL byte is bad, and its text is compared
 *     only up to that NUL (it is passed on as a C string).
 *   - A callback that returns an error at line k stops the feed there: the error comes back
 *     and exactly k calls were made (fewer lines: no error).
 *   - Every valid ID goes through a FlushDupFilter with the small limit, and its answers must
 *     equal those of a list searched by hand.
 * Never crash, never leak. Seeds: fuzz/corpus/flush-lines/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flush-entries.h"
#include "macro.h"
#include "queue-id.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Line {
        char text[QUEUE_ID_MAX];
        bool valid;
} Line;

typedef struct Lines {
        Line *v;
        size_t n, alloc;
        size_t stop_at; /* 0: never stop; else -ECANCELED at this call */
} Lines;

static int record(const char *line, bool valid, void *userdata)
{
        Lines *l = userdata;
        size_t len = strlen(line);

        if (len >= QUEUE_ID_MAX)
                abort();
        if (valid && !queue_id_valid(line))
                abort();
        if (!valid && len > FLUSH_BAD_LINE_SHOW)
                abort();
        if (l->n == l->alloc) {
                size_t a = l->alloc ? 2 * l->alloc : 64;
                Line *v = realloc(l->v, a * sizeof(Line));

                if (!v)
                        abort();
                l->v = v;
                l->alloc = a;
        }
        memcpy(l->v[l->n].text, line, len + 1);
        l->v[l->n].valid = valid;
        l->n++;
        if (l->stop_at > 0 && l->n == l->stop_at)
                return -ECANCELED;
        return 0;
}

static bool id_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* check_model - L's call I against the line S[0..N) */
static void check_model(const Lines *l, size_t i, const char *s, size_t n)
{
        const Line *got;
        bool valid = n > 0 && n < QUEUE_ID_MAX;
        size_t shown;

        if (i >= l->n)
                abort();
        got = &l->v[i];
        for (size_t k = 0; k < n && valid; k++)
                valid = id_char(s[k]);
        if (memchr(s, '\0', n)) {
                /* compared as the C string it is passed on as */
                size_t cut = (size_t) ((const char *) memchr(s, '\0', n) - s);

                /* a NUL makes the line bad (flush-entries.h) */
                if (got->valid)
                        abort();
                if (strlen(got->text) > cut || strncmp(got->text, s, strlen(got->text)) != 0)
                        abort();
                return;
        }
        if (got->valid != valid)
                abort();
        shown = valid ? n : MIN(n, (size_t) FLUSH_BAD_LINE_SHOW);
        if (strlen(got->text) != shown || memcmp(got->text, s, shown) != 0)
                abort();
}

/* feed - S[0..N) in chunks (MAX_CHUNK 0: at once), then the end; returns the first error */
static int feed(const char *s, size_t n, unsigned max_chunk, uint32_t seed, Lines *l)
{
        FlushLines p = {};
        int r;

        for (size_t i = 0; i < n;) {
                size_t k = n - i;

                if (max_chunk > 0) {
                        seed = seed * 1103515245u + 12345u;
                        k = MIN(k, 1 + (seed >> 16) % max_chunk);
                }
                r = flush_lines_feed(&p, s + i, k, record, l);
                if (r < 0)
                        return r;
                i += k;
        }
        return flush_lines_end(&p, record, l);
}

/* filter_model - the answer a FlushDupFilter with LIMIT gives for ID, kept in SEEN by hand */
static int filter_model(char (*seen)[QUEUE_ID_MAX], size_t *n_seen, size_t limit, const char *id)
{
        for (size_t i = 0; i < *n_seen; i++)
                if (streq(seen[i], id))
                        return 0;
        if (*n_seen >= limit)
                return 1;
        strcpy(seen[(*n_seen)++], id);
        return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char seen[16][QUEUE_ID_MAX];
        Lines whole = {}, chunked = {}, stopped = {};
        FlushDupFilter f = {};
        size_t limit, n_seen = 0, start = 0, calls = 0, n;
        unsigned max_chunk;
        const char *s;
        int r;

        if (size < 2)
                return 0;
        max_chunk = data[0];
        limit = data[1] & 0x0f;
        stopped.stop_at = (size_t) (data[1] >> 4) + 1;
        s = (const char *) data + 2;
        n = size - 2;

        if (feed(s, n, 0, 0, &whole) != 0)
                abort();
        if (feed(s, n, max_chunk, (uint32_t) data[0] << 8 | data[1], &chunked) != 0)
                abort();

        /* whole and chunked agree */
        if (whole.n != chunked.n)
                abort();
        for (size_t i = 0; i < whole.n; i++)
                if (whole.v[i].valid != chunked.v[i].valid || !streq(whole.v[i].text, chunked.v[i].text))
                        abort();

        /* both agree with the model */
        for (size_t i = 0; i < n; i++)
                if (s[i] == '\n') {
                        check_model(&whole, calls++, s + start, i - start);
                        start = i + 1;
                }
        if (start < n)
                check_model(&whole, calls++, s + start, n - start);
        if (calls != whole.n)
                abort();

        /* a callback error stops the feed at its line */
        r = feed(s, n, max_chunk, (uint32_t) data[1] << 8 | data[0], &stopped);
        if (whole.n >= stopped.stop_at) {
                if (r != -ECANCELED || stopped.n != stopped.stop_at)
                        abort();
        } else if (r != 0 || stopped.n != whole.n)
                abort();

        /* the duplicate filter against a list searched by hand */
        if (flush_dup_filter_init(&f, limit) < 0)
                abort();
        for (size_t i = 0; i < whole.n; i++) {
                if (!whole.v[i].valid)
                        continue;
                r = flush_dup_filter_check(&f, whole.v[i].text);
                if (r < 0)
                        abort();
                if (r != filter_model(seen, &n_seen, limit, whole.v[i].text))
                        abort();
        }
        flush_dup_filter_done(&f);

        free(whole.v);
        free(chunked.v);
        free(stopped.v);
        return 0;
}
