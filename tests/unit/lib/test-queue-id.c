/* SPDX-License-Identifier: MIT */
/*
 * test-queue-id.c - Postfix long queue IDs and hashing (src/lib/queue-id.c)
 *
 * Covers: known vectors computed by hand from Postfix's algorithm (safe_ultostr with the
 * safe_chars alphabet, MQID_LG_* widths; including the inode-0 quirk and the widths at 52^6 and
 * 2^64 seconds), make/parse round trips, rejection of non-IDs and of non-canonical spellings,
 * order (byte order = time order up to 52^6 - 1 seconds, checked at decade steps and around the
 * width change, where it stops holding), uniqueness of a burst, name validity, and hash paths for
 * depth 0..3 for long, short and flush-logfile-like names (Postfix mail_queue_dir/dir_forest).
 * tests/integration/test_postcat.py checks an ID that Postfix's own postdrop made.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "queue-id.h"

typedef struct IdVector {
        uint64_t sec;
        uint32_t usec;
        uint64_t inode;
        const char *id;
} IdVector;

/* Computed with Postfix's safe_ultostr() by hand (Python transcription); 4SVLCh = 1700000000 s. */
static const IdVector vectors[] = {
        {0, 0, 0, "0000000000z"}, /* Postfix pads the inode to 0 digits: nothing */
        {0, 0, 1, "0000000000z1"},
        {1700000000, 123456, 1234567, "4SVLCh0sf8z9HdB"},
        {1234567890, 999999, 50, "3DrByB75plzy"},
        {1234567890, 0, 51, "3DrByB0000z10"},
        {1000000000, 500000, 393217, "2clyTD3XvNz2x97"},
        {19770609663ULL, 999999, UINT64_MAX, "zzzzzz75plz31wvQ2DWVjm0"}, /* last 6-digit second */
        {19770609664ULL, 0, 1, "10000000000z1"},                         /* first 7-digit one */
        {UINT64_MAX, 999999, UINT64_MAX, "2Rbkh2p1XY8H75plz31wvQ2DWVjm0"},
};

static void test_vectors(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                const IdVector *v = &vectors[i];
                char id[QUEUE_ID_MAX];
                uint64_t sec, inode;
                uint32_t usec;

                assert_int_equal(queue_id_make(v->sec, v->usec, v->inode, id), 0);
                if (!streq(id, v->id))
                        fail_msg("make(%llu, %u, %llu): got %s want %s", (unsigned long long)v->sec, v->usec,
                                 (unsigned long long)v->inode, id, v->id);
                if (queue_id_parse(v->id, &sec, &usec, &inode) < 0)
                        fail_msg("parse(%s): got error want %llu.%u/%llu", v->id, (unsigned long long)v->sec,
                                 v->usec, (unsigned long long)v->inode);
                if (sec != v->sec || usec != v->usec || inode != v->inode)
                        fail_msg("parse(%s): got %llu.%u/%llu want %llu.%u/%llu", v->id,
                                 (unsigned long long)sec, usec, (unsigned long long)inode,
                                 (unsigned long long)v->sec, v->usec, (unsigned long long)v->inode);
        }
}

static void test_make_bad_usec(void **state)
{
        char id[QUEUE_ID_MAX];

        (void)state;
        assert_int_equal(queue_id_make(1, 1000000, 1, id), -EINVAL);
        assert_int_equal(queue_id_make(1, 999999, 1, id), 0);
}

static void test_round_trip(void **state)
{
        uint64_t x = 88172645463325252ULL; /* xorshift: deterministic */

        (void)state;
        for (int i = 0; i < 100000; i++) {
                char id[QUEUE_ID_MAX], again[QUEUE_ID_MAX];
                uint64_t sec, inode, s2, i2;
                uint32_t usec, u2;

                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                sec = i % 3 ? x % 19770609664ULL : x;
                usec = (uint32_t)((x >> 20) % 1000000);
                inode = i % 2 ? x >> (x % 64) : x;
                assert_int_equal(queue_id_make(sec, usec, inode, id), 0);
                if (!queue_id_valid(id))
                        fail_msg("make(%llu, %u, %llu) = %s: got invalid want valid",
                                 (unsigned long long)sec, usec, (unsigned long long)inode, id);
                if (queue_id_parse(id, &s2, &u2, &i2) < 0 || s2 != sec || u2 != usec || i2 != inode)
                        fail_msg("round trip of %s: got %llu.%u/%llu want %llu.%u/%llu", id,
                                 (unsigned long long)s2, u2, (unsigned long long)i2, (unsigned long long)sec,
                                 usec, (unsigned long long)inode);
                assert_int_equal(queue_id_make(s2, u2, i2, again), 0);
                assert_string_equal(again, id);
        }
}

static void test_parse_rejects(void **state)
{
        static const char *const bad[] = {
                "",              /* empty */
                "682E8440A4",    /* a short ID: no 'z' */
                "000000000z1",   /* 9 characters of time */
                "0000000000",    /* no separator */
                "000000A000z1",  /* vowel */
                "0000000000zz",  /* 'z' is not a base-51 digit... and the last z is the separator */
                "00000075pmz1",  /* usec 1000000 */
                "00000000000z1", /* 7 digits of seconds starting with 0 */
                "0000000000z01", /* inode with a leading 0 */
                "0000000000z_",  /* '_' */
                "zzzzzzzzzzzzzzzzzzzzzzzzz0000z1", /* seconds over 64 bits */
                "0000000000z1/",                   /* '/' */
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint64_t sec, inode;
                uint32_t usec;
                int r = queue_id_parse(bad[i], &sec, &usec, &inode);

                if (r != -EINVAL)
                        fail_msg("parse(\"%s\"): got %d want -EINVAL", bad[i], r);
        }
}

static void test_order(void **state)
{
        char prev[QUEUE_ID_MAX] = "", id[QUEUE_ID_MAX];

        (void)state;
        /* Every 10 days from 1970 to the last 6-digit second, and every microsecond step around it. */
        for (uint64_t sec = 0; sec < 19770609664ULL; sec += 864000) {
                for (uint32_t usec = 0; usec < 1000000; usec += 333333) {
                        assert_int_equal(queue_id_make(sec, usec, 1 + sec % 977, id), 0);
                        if (*prev && strcmp(prev, id) >= 0)
                                fail_msg("order: got %s >= %s want <", prev, id);
                        strcpy(prev, id);
                }
        }
        assert_int_equal(queue_id_make(19770609663ULL, 999999, 1, prev), 0);
        assert_int_equal(queue_id_make(19770609663ULL, 999998, 1, id), 0);
        assert_true(strcmp(id, prev) < 0);
        /* 52^6 seconds (2596-07-03): the width changes and byte order no longer follows time. */
        assert_int_equal(queue_id_make(19770609664ULL, 0, 1, id), 0);
        if (strcmp(prev, id) < 0)
                fail_msg("order across the width change: got %s < %s want > (documented limit)", prev, id);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_burst_unique(void **state)
{
        enum { N = 20000 };
        char(*ids)[QUEUE_ID_MAX] = calloc(N, QUEUE_ID_MAX);
        char **p = calloc(N, sizeof(char *));

        (void)state;
        assert_non_null(ids);
        assert_non_null(p);
        /* One second; microseconds and inodes as a busy host hands them out, often equal. */
        for (int i = 0; i < N; i++) {
                assert_int_equal(
                        queue_id_make(1700000000, (uint32_t)(i / 7), 4000 + (uint64_t)(i % 7) * 51, ids[i]),
                        0);
                p[i] = ids[i];
        }
        qsort(p, N, sizeof(char *), cmp_str);
        for (int i = 1; i < N; i++)
                if (streq(p[i - 1], p[i]))
                        fail_msg("burst: got %s twice want unique IDs", p[i]);
        free(p);
        free(ids);
}

static void test_valid(void **state)
{
        static const struct {
                const char *id;
                bool valid;
        } table[] = {
                {"4SVLCh0sf8z9HdB", true},
                {"682E8440A4", true},
                {"example_com", true},
                {"A", true},
                {"", false},
                {".", false},
                {"..", false},
                {"a/b", false},
                {"/", false},
                {"a.b", false},
                {"a-b", false},
                {"a b", false},
                {"\xc3\xa9", false},
                {"0123456789012345678901234567890", true},   /* 31 = QUEUE_ID_MAX - 1 */
                {"01234567890123456789012345678901", false}, /* 32 */
        };

        (void)state;
        assert_false(queue_id_valid(NULL));
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (queue_id_valid(table[i].id) != table[i].valid)
                        fail_msg("valid(\"%s\"): got %d want %d", table[i].id, !table[i].valid,
                                 table[i].valid);
}

static void test_hash_path(void **state)
{
        static const struct {
                const char *id;
                unsigned depth;
                const char *path;
        } table[] = {
                {"4SVLCh0sf8z9HdB", 0, ""},
                {"4SVLCh0sf8z9HdB", 1, "1/"}, /* usec 123456 = 0x1E240 */
                {"4SVLCh0sf8z9HdB", 2, "1/E/"},
                {"4SVLCh0sf8z9HdB", 3, "1/E/2/"},
                {"3DrByB75plzy", 2, "F/4/"}, /* 999999 = F423F */
                {"3DrByB0000z10", 3, "0/0/0/"},
                {"2clyTD3XvNz2x97", 1, "7/"}, /* 500000 = 7A120 */
                {"682E8440A4", 1, "6/"},      /* short ID: itself */
                {"682E8440A4", 3, "6/8/2/"},
                {"AB", 3, "A/B/_/"},        /* short name padded with '_' */
                {"example_com", 2, "e/x/"}, /* flush logfile name, no 'z' */
                {"fuzzy", 2, "f/u/"},       /* 'z' before index 10: not long */
                {"xxxxxxxxxz", 2, "x/x/"},  /* 'z' at index 9: not long */
                {"xxxxxx0001z", 5, "0/0/0/0/1/"},
                {"xxxxxx0_01z", 5, "0/0/0/0/0/"}, /* safe_strtoul stops at '_': value 0 */
                {"xxxxxxzzzzz", 5, "6/F/9/0/F/"}, /* 52^4 - 1 = 0x6F90FF: 6 hex digits */
                {"4SVLCh0sf8z9HdB", 16, "1/E/2/4/0/_/_/_/_/_/_/_/_/_/_/_/"},
        };
        char buf[2 * QUEUE_HASH_DEPTH_MAX + 1];

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                int r = queue_id_hash_path(table[i].id, table[i].depth, buf, sizeof(buf));

                if (r < 0)
                        fail_msg("hash(%s, %u): got %d want %s", table[i].id, table[i].depth, r,
                                 table[i].path);
                if (!streq(buf, table[i].path))
                        fail_msg("hash(%s, %u): got \"%s\" want \"%s\"", table[i].id, table[i].depth, buf,
                                 table[i].path);
        }
        assert_int_equal(queue_id_hash_path("a/b", 1, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(queue_id_hash_path("..", 1, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(queue_id_hash_path("", 1, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(queue_id_hash_path("AB", QUEUE_HASH_DEPTH_MAX + 1, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(queue_id_hash_path("AB", 2, buf, 4), -EINVAL);
        assert_int_equal(queue_id_hash_path("AB", 2, buf, 5), 0);
        assert_string_equal(buf, "A/B/");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),    cmocka_unit_test(test_make_bad_usec),
                cmocka_unit_test(test_round_trip), cmocka_unit_test(test_parse_rejects),
                cmocka_unit_test(test_order),      cmocka_unit_test(test_burst_unique),
                cmocka_unit_test(test_valid),      cmocka_unit_test(test_hash_path),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
