/* SPDX-License-Identifier: MIT */
/*
 * test-flush-entries.c - logfile lines, the duplicate filter and refresh/purge ages
 * (src/flush/flush-entries.c)
 *
 * FlushLines: a logfile of real long queue IDs (queue_id_make), short IDs and bad lines (empty,
 * a '/', a CR, 31 and 32 bytes, 100000 bytes) gives the same calls when fed whole, one byte at a
 * time and split at every offset; valid lines come back exactly, bad ones with at most
 * FLUSH_BAD_LINE_SHOW bytes (all of them when shorter); a last line without its newline comes
 * only from flush_lines_end(), once; a negative callback return stops the feed (and the end)
 * and is returned. FlushDupFilter: repeats filtered, IDs copied, the bound (past it new IDs pass
 * every time, earlier ones stay filtered; limit 0 filters nothing), and 20,000 distinct IDs
 * three times each in two orders against FLUSH_DUP_FILTER_SIZE. Leaks are AddressSanitizer's to
 * find. flush_refresh_action: the purge and refresh boundaries (equal keeps), size deciding
 * which time counts, max_age 0 for purge requests, and INT64_MAX/INT64_MIN times without
 * overflow (UBSan builds trap on it).
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

#include "test-util.h"

#include "flush-entries.h"
#include "macro.h"
#include "queue-id.h"

#define MAX_SEEN 64

typedef struct Seen {
        char *line[MAX_SEEN];
        bool valid[MAX_SEEN];
        size_t n;
        size_t stop_after; /* 0: never; else return -ECANCELED from this call on */
} Seen;

static int record(const char *line, bool valid, void *userdata)
{
        Seen *s = userdata;

        assert_true(s->n < MAX_SEEN);
        s->line[s->n] = strdup(line);
        assert_non_null(s->line[s->n]);
        s->valid[s->n] = valid;
        s->n++;
        if (s->stop_after > 0 && s->n >= s->stop_after)
                return -ECANCELED;
        return 0;
}

static void seen_done(Seen *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->line[i]);
        *s = (Seen){};
}

static void assert_same_seen(const Seen *want, const Seen *got, const char *how)
{
        if (want->n != got->n)
                fail_msg("%s: %zu lines, want %zu", how, got->n, want->n);
        for (size_t i = 0; i < want->n; i++)
                if (want->valid[i] != got->valid[i] || !streq(want->line[i], got->line[i]))
                        fail_msg("%s: line %zu is %s \"%s\", want %s \"%s\"", how, i,
                                 got->valid[i] ? "valid" : "bad", got->line[i],
                                 want->valid[i] ? "valid" : "bad", want->line[i]);
}

/* feed_split - BUF fed in pieces of at most STEP bytes (0: at OFFSET only), then the end */
static void feed_split(const char *buf, size_t n, size_t step, size_t offset, Seen *s)
{
        FlushLines p = {};

        if (step == 0) {
                assert_int_equal(flush_lines_feed(&p, buf, offset, record, s), 0);
                assert_int_equal(flush_lines_feed(&p, buf + offset, n - offset, record, s), 0);
        } else
                for (size_t i = 0; i < n; i += step)
                        assert_int_equal(flush_lines_feed(&p, buf + i, MIN(step, n - i), record, s), 0);
        assert_int_equal(flush_lines_end(&p, record, s), 0);
        /* the end is reported once: a second end has nothing left */
        assert_int_equal(flush_lines_end(&p, record, s), 0);
}

typedef struct Expect {
        const char *line;
        bool valid;
} Expect;

static void assert_expected(const Seen *s, const Expect *want, size_t n, const char *how)
{
        if (s->n != n)
                fail_msg("%s: %zu lines, want %zu", how, s->n, n);
        for (size_t i = 0; i < n; i++)
                if (s->valid[i] != want[i].valid || !streq(s->line[i], want[i].line))
                        fail_msg("%s: line %zu is %s \"%s\", want %s \"%s\"", how, i,
                                 s->valid[i] ? "valid" : "bad", s->line[i], want[i].valid ? "valid" : "bad",
                                 want[i].line);
}

static void test_lines(void **state)
{
        char id1[QUEUE_ID_MAX], id2[QUEUE_ID_MAX], id3[QUEUE_ID_MAX], id31[QUEUE_ID_MAX];
        char id32[QUEUE_ID_MAX + 1], buf[1024];
        _cleanup_(freep) char *one_line = NULL;
        Seen whole = {}, split = {};
        size_t n;

        (void) state;
        assert_int_equal(queue_id_make(1700000000, 123456, 1234567, id1), 0);
        assert_string_equal(id1, "4SVLCh0sf8z9HdB");
        assert_int_equal(queue_id_make(1234567890, 999999, 50, id2), 0);
        assert_int_equal(queue_id_make(UINT64_MAX, 999999, UINT64_MAX, id3), 0);
        assert_int_equal(strlen(id3), 29);
        /* the longest name queue_id_valid takes, and one more */
        memset(id31, 'A', QUEUE_ID_MAX - 1);
        id31[QUEUE_ID_MAX - 1] = '\0';
        memset(id32, 'B', QUEUE_ID_MAX);
        id32[QUEUE_ID_MAX] = '\0';

        n = (size_t) snprintf(buf, sizeof(buf),
                              "%s\n" /* a long ID */
                              "\n"   /* empty */
                              "%s\n"
                              "deferred/%s\n" /* a path */
                              "4XyZ1b2C3D4z5F6\n"
                              "ABCDEF1234\n" /* a short ID */
                              "%s\r\n"       /* a CR */
                              "%s\n"         /* 31 bytes: valid */
                              "%s\n"         /* 32 bytes: bad */
                              "%s\n"
                              "%s\n" /* a repeat: the parser does not filter */
                              "a b\n"
                              "%s", /* no newline at the end */
                              id1, id2, id1, id1, id31, id32, id3, id1, id2);
        assert_true(n < sizeof(buf));

        {
                char path_line[64], cr_line[64];
                Expect want[] = {
                        {id1, true},
                        {"", false},
                        {id2, true},
                        {path_line, false},
                        {"4XyZ1b2C3D4z5F6", true},
                        {"ABCDEF1234", true},
                        {cr_line, false},
                        {id31, true},
                        {"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", false},
                        {id3, true},
                        {id1, true},
                        {"a b", false},
                        {id2, true},
                };

                /* "deferred/4SVLCh0sf8z9HdB" is 24 bytes: shown whole */
                snprintf(path_line, sizeof(path_line), "deferred/%s", id1);
                snprintf(cr_line, sizeof(cr_line), "%s\r", id1);
                assert_int_equal(strlen(want[8].line), FLUSH_BAD_LINE_SHOW);

                feed_split(buf, n, n, 0, &whole);
                assert_expected(&whole, want, ELEMENTSOF(want), "fed whole");
        }

        /* one byte at a time, a few bytes at a time, and split at every offset: the same calls */
        feed_split(buf, n, 1, 0, &split);
        assert_same_seen(&whole, &split, "one byte at a time");
        seen_done(&split);
        for (size_t step = 2; step <= 33; step++) {
                feed_split(buf, n, step, 0, &split);
                assert_same_seen(&whole, &split, "a few bytes at a time");
                seen_done(&split);
        }
        for (size_t off = 0; off <= n; off++) {
                feed_split(buf, n, 0, off, &split);
                if (split.n != whole.n)
                        fail_msg("split at %zu: %zu lines, want %zu", off, split.n, whole.n);
                assert_same_seen(&whole, &split, "split in two");
                seen_done(&split);
        }
        seen_done(&whole);

        /* a file that ends with its newline has nothing for the end */
        one_line = strdup("4XyZ1b2C3D4z5F6\n");
        assert_non_null(one_line);
        {
                FlushLines p = {};
                Seen s = {};

                assert_int_equal(flush_lines_feed(&p, one_line, strlen(one_line), record, &s), 0);
                assert_int_equal(s.n, 1);
                assert_int_equal(flush_lines_end(&p, record, &s), 0);
                assert_int_equal(s.n, 1);
                /* and nothing at all: no calls */
                assert_int_equal(flush_lines_feed(&p, one_line, 0, record, &s), 0);
                assert_int_equal(flush_lines_end(&p, record, &s), 0);
                assert_int_equal(s.n, 1);
                seen_done(&s);
        }
}

static void test_partial_last_line(void **state)
{
        static const struct {
                const char *text;
                const char *line;
                bool valid;
        } cases[] = {
                {"4XyZ1b2C3D4z5F6", "4XyZ1b2C3D4z5F6", true},
                {"4XyZ1b2", "4XyZ1b2", true}, /* cut short: still a name, as in Postfix */
                {"4XyZ1b/", "4XyZ1b/", false},
                {"a.b", "a.b", false},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                FlushLines p = {};
                Seen s = {};

                assert_int_equal(flush_lines_feed(&p, "ABC\n", 4, record, &s), 0);
                assert_int_equal(flush_lines_feed(&p, cases[i].text, strlen(cases[i].text), record, &s), 0);
                if (s.n != 1)
                        fail_msg("\"%s\": %zu calls before the end, want 1", cases[i].text, s.n);
                assert_int_equal(flush_lines_end(&p, record, &s), 0);
                if (s.n != 2 || s.valid[1] != cases[i].valid || !streq(s.line[1], cases[i].line))
                        fail_msg("\"%s\": the end gave %zu calls, last %s \"%s\"", cases[i].text, s.n,
                                 s.n == 2 && s.valid[1] ? "valid" : "bad", s.n == 2 ? s.line[1] : "");
                seen_done(&s);
        }
}

static void test_long_lines(void **state)
{
        const size_t sizes[] = {31, 32, 33, 100, 4096, 100000};
        char id[QUEUE_ID_MAX];

        (void) state;
        assert_int_equal(queue_id_make(1700000000, 1, 99, id), 0);
        for (size_t k = 0; k < ELEMENTSOF(sizes); k++) {
                size_t size = sizes[k];
                _cleanup_(freep) char *buf = malloc(size + 64);
                Seen s = {}, one = {};
                FlushLines p = {};
                size_t n;

                assert_non_null(buf);
                /* a bad line of SIZE bytes ('/' at its end: the whole line is looked at), then an ID */
                for (size_t i = 0; i < size; i++)
                        buf[i] = (char) ('a' + i % 26);
                buf[size - 1] = '/';
                n = size;
                buf[n++] = '\n';
                memcpy(buf + n, id, strlen(id));
                n += strlen(id);
                buf[n++] = '\n';

                assert_int_equal(flush_lines_feed(&p, buf, n, record, &s), 0);
                assert_int_equal(flush_lines_end(&p, record, &s), 0);
                if (s.n != 2)
                        fail_msg("%zu-byte line: %zu calls, want 2", size, s.n);
                assert_false(s.valid[0]);
                if (strlen(s.line[0]) != MIN(size, (size_t) FLUSH_BAD_LINE_SHOW) ||
                    strncmp(s.line[0], buf, strlen(s.line[0])) != 0)
                        fail_msg("%zu-byte line shown as \"%s\"", size, s.line[0]);
                /* the parser is back in step after it */
                assert_true(s.valid[1]);
                assert_string_equal(s.line[1], id);

                for (size_t i = 0; i < n; i++)
                        assert_int_equal(flush_lines_feed(&p, buf + i, 1, record, &one), 0);
                assert_int_equal(flush_lines_end(&p, record, &one), 0);
                assert_same_seen(&s, &one, "long line one byte at a time");
                seen_done(&s);
                seen_done(&one);
        }

        /* a long line of valid characters is still bad: too long for a queue ID */
        {
                _cleanup_(freep) char *buf = malloc(100001);
                FlushLines p = {};
                Seen s = {};

                assert_non_null(buf);
                memset(buf, 'B', 100000);
                buf[100000] = '\n';
                assert_int_equal(flush_lines_feed(&p, buf, 100001, record, &s), 0);
                assert_int_equal(s.n, 1);
                assert_false(s.valid[0]);
                assert_int_equal(strlen(s.line[0]), FLUSH_BAD_LINE_SHOW);
                /* without its newline, from the end */
                assert_int_equal(flush_lines_feed(&p, buf, 100000, record, &s), 0);
                assert_int_equal(s.n, 1);
                assert_int_equal(flush_lines_end(&p, record, &s), 0);
                assert_int_equal(s.n, 2);
                assert_false(s.valid[1]);
                assert_int_equal(strlen(s.line[1]), FLUSH_BAD_LINE_SHOW);
                seen_done(&s);
        }
}

static void test_stop(void **state)
{
        const char text[] = "AAAA\nBBBB\nCCCC\nDDDD";
        FlushLines p = {};
        Seen s = {.stop_after = 2};

        (void) state;
        /* the second call says stop: the feed returns its error, no third call */
        assert_int_equal(flush_lines_feed(&p, text, strlen(text), record, &s), -ECANCELED);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.line[0], "AAAA");
        assert_string_equal(s.line[1], "BBBB");
        seen_done(&s);

        /* a stop on the first line, fed one byte at a time */
        p = (FlushLines){};
        s = (Seen){.stop_after = 1};
        for (size_t i = 0; i < 4; i++)
                assert_int_equal(flush_lines_feed(&p, text + i, 1, record, &s), 0);
        assert_int_equal(flush_lines_feed(&p, text + 4, 1, record, &s), -ECANCELED);
        assert_int_equal(s.n, 1);
        seen_done(&s);

        /* the end's call can stop too */
        p = (FlushLines){};
        s = (Seen){.stop_after = 1};
        assert_int_equal(flush_lines_feed(&p, "DDDD", 4, record, &s), 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(flush_lines_end(&p, record, &s), -ECANCELED);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.line[0], "DDDD");
        seen_done(&s);
}

static void test_dup_filter(void **state)
{
        FlushDupFilter f = {};
        char id[QUEUE_ID_MAX];

        (void) state;
        assert_int_equal(flush_dup_filter_init(&f, 10), 0);
        assert_int_equal(flush_dup_filter_check(&f, "4XyZ1b2C3D4z5F6"), 1);
        assert_int_equal(flush_dup_filter_check(&f, "4XyZ1b2C3D4z5F6"), 0);
        assert_int_equal(flush_dup_filter_check(&f, "4XyZ1b2C3D4z5F7"), 1);
        assert_int_equal(flush_dup_filter_check(&f, "4XyZ1b2C3D4z5F6"), 0);
        assert_int_equal(flush_dup_filter_check(&f, "4XyZ1b2C3D4z5F7"), 0);
        /* IDs are compared exactly (case matters in queue IDs) */
        assert_int_equal(flush_dup_filter_check(&f, "4xyz1b2c3d4z5f6"), 1);

        /* the filter keeps its own copy: the caller's buffer can change */
        strcpy(id, "ABCDEF");
        assert_int_equal(flush_dup_filter_check(&f, id), 1);
        strcpy(id, "GHIJKL");
        assert_int_equal(flush_dup_filter_check(&f, id), 1);
        assert_int_equal(flush_dup_filter_check(&f, "ABCDEF"), 0);
        assert_int_equal(flush_dup_filter_check(&f, "GHIJKL"), 0);
        flush_dup_filter_done(&f);
        assert_null(f.seen);
        flush_dup_filter_done(&f); /* twice is harmless */

        /* a fresh filter remembers nothing of the last one */
        assert_int_equal(flush_dup_filter_init(&f, 10), 0);
        assert_int_equal(flush_dup_filter_check(&f, "ABCDEF"), 1);
        flush_dup_filter_done(&f);
}

static void test_dup_filter_limit(void **state)
{
        const char *ids[] = {"AAA", "BBB", "CCC", "DDD", "EEE"};
        FlushDupFilter f = {};

        (void) state;
        assert_int_equal(flush_dup_filter_init(&f, 3), 0);
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(flush_dup_filter_check(&f, ids[i]), 1);
        /* full: a new ID passes every time, the first three stay filtered */
        for (size_t round = 0; round < 3; round++) {
                assert_int_equal(flush_dup_filter_check(&f, ids[3]), 1);
                assert_int_equal(flush_dup_filter_check(&f, ids[4]), 1);
                for (size_t i = 0; i < 3; i++)
                        if (flush_dup_filter_check(&f, ids[i]) != 0)
                                fail_msg("round %zu: %s passed a full filter twice", round, ids[i]);
        }
        flush_dup_filter_done(&f);

        /* limit 0: no filtering at all */
        assert_int_equal(flush_dup_filter_init(&f, 0), 0);
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(flush_dup_filter_check(&f, "AAA"), 1);
        flush_dup_filter_done(&f);

        /* limit 1 */
        assert_int_equal(flush_dup_filter_init(&f, 1), 0);
        assert_int_equal(flush_dup_filter_check(&f, "AAA"), 1);
        assert_int_equal(flush_dup_filter_check(&f, "BBB"), 1);
        assert_int_equal(flush_dup_filter_check(&f, "BBB"), 1);
        assert_int_equal(flush_dup_filter_check(&f, "AAA"), 0);
        flush_dup_filter_done(&f);
}

#define MANY 20000

static void test_dup_filter_many(void **state)
{
        static char ids[MANY][QUEUE_ID_MAX];
        FlushDupFilter f = {};
        size_t passed;

        (void) state;
        assert_true(MANY == 2 * FLUSH_DUP_FILTER_SIZE);
        for (size_t i = 0; i < MANY; i++)
                assert_int_equal(
                        queue_id_make(1700000000 + i / 7, (uint32_t) (i * 37 % 1000000), 1000 + i, ids[i]),
                        0);

        /* each ID three times in a row: the first 10,000 once, the later ones every time */
        assert_int_equal(flush_dup_filter_init(&f, FLUSH_DUP_FILTER_SIZE), 0);
        passed = 0;
        for (size_t i = 0; i < MANY; i++)
                for (size_t k = 0; k < 3; k++) {
                        int r = flush_dup_filter_check(&f, ids[i]);

                        assert_true(r == 0 || r == 1);
                        if (r == 1 && k > 0 && i < FLUSH_DUP_FILTER_SIZE)
                                fail_msg("ID %zu (%s) passed %zu times", i, ids[i], k + 1);
                        passed += (size_t) r;
                }
        if (passed != FLUSH_DUP_FILTER_SIZE + (MANY - FLUSH_DUP_FILTER_SIZE) * 3)
                fail_msg("in a row: %zu IDs passed, want %d", passed,
                         FLUSH_DUP_FILTER_SIZE + (MANY - FLUSH_DUP_FILTER_SIZE) * 3);
        flush_dup_filter_done(&f);

        /* the whole list three times over: the same count */
        assert_int_equal(flush_dup_filter_init(&f, FLUSH_DUP_FILTER_SIZE), 0);
        passed = 0;
        for (size_t k = 0; k < 3; k++)
                for (size_t i = 0; i < MANY; i++) {
                        int r = flush_dup_filter_check(&f, ids[i]);

                        assert_true(r == 0 || r == 1);
                        if (r != (k == 0 || i >= FLUSH_DUP_FILTER_SIZE))
                                fail_msg("pass %zu, ID %zu (%s): got %d", k, i, ids[i], r);
                        passed += (size_t) r;
                }
        assert_int_equal(passed, FLUSH_DUP_FILTER_SIZE + (MANY - FLUSH_DUP_FILTER_SIZE) * 3);
        flush_dup_filter_done(&f);
}

typedef struct AgeCase {
        uint64_t size;
        int64_t atime, mtime, now, max_age, purge_time;
        FlushRefreshAction want;
} AgeCase;

static const char *action_name(FlushRefreshAction a)
{
        switch (a) {
        case FLUSH_REFRESH_KEEP:
                return "keep";
        case FLUSH_REFRESH_PURGE:
                return "purge";
        case FLUSH_REFRESH_SEND:
                return "send";
        }
        return "?";
}

#define DAY INT64_C(86400)
#define HOUR INT64_C(3600)
#define NOW INT64_C(1700000000)

static void test_refresh_action(void **state)
{
        static const AgeCase cases[] = {
                /* empty: purged when mtime + purge_time < now; equal keeps */
                {0, NOW, NOW - 7 * DAY - 1, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_PURGE},
                {0, NOW, NOW - 7 * DAY, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_KEEP},
                {0, NOW, NOW - 7 * DAY + 1, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_KEEP},
                {0, NOW, NOW, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_KEEP},
                /* empty: atime does not count, an empty file is never sent */
                {0, 0, NOW, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_KEEP},
                {0, 0, NOW - 1, NOW, 0, 0, FLUSH_REFRESH_PURGE},
                /* listed mail: sent when atime + max_age < now; equal keeps */
                {1, NOW - 12 * HOUR - 1, NOW, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_SEND},
                {1, NOW - 12 * HOUR, NOW, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_KEEP},
                {16, NOW - 1, NOW, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_KEEP},
                /* listed mail: mtime does not count, a non-empty file is never purged */
                {16, NOW, 0, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_KEEP},
                {16, NOW - 12 * HOUR - 1, 0, NOW, 12 * HOUR, 7 * DAY, FLUSH_REFRESH_SEND},
                /* purge requests: max_age 0 sends a file read a second ago, not one read now */
                {16, NOW - 1, NOW - 1, NOW, 0, 7 * DAY, FLUSH_REFRESH_SEND},
                {16, NOW, NOW - 1, NOW, 0, 7 * DAY, FLUSH_REFRESH_KEEP},
                /* a time in the future (clock stepped back) keeps */
                {16, NOW + 100, NOW, NOW, 0, 7 * DAY, FLUSH_REFRESH_KEEP},
                {0, NOW, NOW + 100, NOW, 0, 0, FLUSH_REFRESH_KEEP},
                {UINT64_MAX, 0, 0, NOW, 0, 0, FLUSH_REFRESH_SEND},
                /* no overflow near INT64_MAX */
                {0, 0, INT64_MAX, INT64_MAX, 0, 7 * DAY, FLUSH_REFRESH_KEEP},
                {0, 0, INT64_MAX - 7 * DAY, INT64_MAX, 0, 7 * DAY, FLUSH_REFRESH_KEEP},
                {0, 0, INT64_MAX - 7 * DAY - 1, INT64_MAX, 0, 7 * DAY, FLUSH_REFRESH_PURGE},
                {0, 0, INT64_MAX, INT64_MAX, 0, INT64_MAX, FLUSH_REFRESH_KEEP},
                {0, 0, 1, INT64_MAX, 0, INT64_MAX, FLUSH_REFRESH_KEEP},
                {0, 0, -1, INT64_MAX, 0, INT64_MAX, FLUSH_REFRESH_PURGE},
                {16, INT64_MAX, 0, INT64_MAX, 12 * HOUR, 0, FLUSH_REFRESH_KEEP},
                {16, INT64_MAX, 0, INT64_MAX, INT64_MAX, 0, FLUSH_REFRESH_KEEP},
                {16, INT64_MAX - 1, 0, INT64_MAX, 0, 0, FLUSH_REFRESH_SEND},
                {16, INT64_MAX - 12 * HOUR - 1, 0, INT64_MAX, 12 * HOUR, 0, FLUSH_REFRESH_SEND},
                {16, 1, 0, INT64_MAX, INT64_MAX, 0, FLUSH_REFRESH_KEEP},
                {16, NOW, 0, NOW, INT64_MAX, 0, FLUSH_REFRESH_KEEP},
                /* far in the past */
                {16, INT64_MIN, 0, NOW, 12 * HOUR, 0, FLUSH_REFRESH_SEND},
                {16, INT64_MIN, 0, NOW, INT64_MAX, 0, FLUSH_REFRESH_SEND},
                {0, 0, INT64_MIN, INT64_MIN, 0, INT64_MAX, FLUSH_REFRESH_KEEP},
                {0, 0, INT64_MIN, NOW, 0, 7 * DAY, FLUSH_REFRESH_PURGE},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const AgeCase *t = &cases[i];
                FlushRefreshAction got =
                        flush_refresh_action(t->size, t->atime, t->mtime, t->now, t->max_age, t->purge_time);

                if (got != t->want)
                        fail_msg("case %zu: size %llu atime %lld mtime %lld now %lld max_age %lld purge "
                                 "%lld: "
                                 "want %s, got %s",
                                 i, (unsigned long long) t->size, (long long) t->atime, (long long) t->mtime,
                                 (long long) t->now, (long long) t->max_age, (long long) t->purge_time,
                                 action_name(t->want), action_name(got));
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lines),           cmocka_unit_test(test_partial_last_line),
                cmocka_unit_test(test_long_lines),      cmocka_unit_test(test_stop),
                cmocka_unit_test(test_dup_filter),      cmocka_unit_test(test_dup_filter_limit),
                cmocka_unit_test(test_dup_filter_many), cmocka_unit_test(test_refresh_action),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
