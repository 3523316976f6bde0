/* SPDX-License-Identifier: MIT */
/*
 * test-queue-file.c - queue file records and envelopes (src/lib/queue-file.c)
 *
 * Covers: varint headers at every width boundary (0, 127, 128, 16383, 16384, 2^21-1, 2^21,
 * 2^28, 2^32-1) byte for byte, and decoded back (up to QUEUE_FILE_REC_MAX; above it -EBADMSG);
 * 6-byte and over-32-bit lengths; rec_next over every prefix of a file (each prefix handed over
 * as an exact-size heap copy, so AddressSanitizer sees any read past it): records until the cut,
 * then 0 exactly at a record boundary and -EBADMSG inside a record; the C record's fixed width
 * and its 1/3..6-field forms; whole envelopes (fields, recipient offsets that hold the R byte,
 * D marked in place, DSN per-recipient attributes, extracted-segment recipients); a table of
 * broken files, each with the exact reason; pointer records (a Postfix-style append after E and
 * back, a loop, a target beyond the end, 0 = none); every proper prefix of a valid file fails;
 * the writers, including lines cut into L records at QUEUE_FILE_LINE_MAX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "queue-file.h"

/* ---- a file from a list of records ----------------------------------------------------------- */

typedef struct Rec {
        char type;
        const char *data; /* NULL for C: computed from the M and X records */
} Rec;

#define END_RECS                                                                                            \
        {                                                                                                   \
                0, NULL                                                                                     \
        }

/* build - write RECS into B; a C record with NULL data gets the offsets of this file */
static void build(QueueBuf *b, const Rec *recs)
{
        size_t c_at = SIZE_MAX, data_offset = 0, xtra = 0, nrcpt = 0;

        *b = (QueueBuf){};
        for (const Rec *r = recs; r->type; r++) {
                if (r->type == REC_TYPE_SIZE && !r->data) {
                        char blank[QUEUE_FILE_SIZE_REC_LEN];

                        memset(blank, ' ', sizeof(blank));
                        c_at = b->size + 2;
                        assert_int_equal(queue_buf_put(b, REC_TYPE_SIZE, blank, sizeof(blank)), 0);
                        continue;
                }
                if (r->type == REC_TYPE_XTRA && !xtra)
                        xtra = b->size;
                if (r->type == REC_TYPE_RCPT)
                        nrcpt++;
                assert_int_equal(queue_buf_put(b, r->type, r->data, strlen(r->data)), 0);
                if (r->type == REC_TYPE_MESG && !data_offset)
                        data_offset = b->size;
        }
        if (c_at != SIZE_MAX) {
                /* No M or X: plausible values, so that the later checks are reached */
                if (!data_offset || xtra <= data_offset)
                        data_offset = 1, xtra = 2;
                QueueSizeRecord s = {.content_size = (int64_t)(xtra - data_offset),
                                     .data_offset = (int64_t)data_offset,
                                     .rcpt_count = (int64_t)nrcpt,
                                     .content_length = 42};

                queue_size_record_format(&s, (char *)b->data + c_at);
        }
}

static const Rec good[] = {
        {'C', NULL},
        {'T', "1700000000 123456"},
        {'A', "create_time=1700000001"},
        {'F', "Charlie Root"},
        {'S', "sender@example.org"},
        {'A', "log_client_name=client.example.org"},
        {'A', "rewrite_context=remote"},
        {'A', "notify_flags=6"},
        {'A', "dsn_orig_rcpt=rfc822;Orig@example.com"},
        {'O', "orig@example.com"},
        {'R', "rcpt1@example.com"},
        {'R', "rcpt2@example.net"},
        {'W', "              0"},
        {'M', ""},
        {'N', "Subject: test"},
        {'N', ""},
        {'L', "long "},
        {'N', "line"},
        {'w', ""},
        {'X', ""},
        {'R', "extracted@example.com"},
        {'E', ""},
        END_RECS,
};

/* ---- varint headers ----------------------------------------------------------------------- */

static void test_rec_header(void **state)
{
        static const struct {
                size_t size;
                size_t n;
                uint8_t bytes[QUEUE_FILE_REC_HDR_MAX];
        } table[] = {
                {0, 2, {'N', 0x00}},
                {127, 2, {'N', 0x7f}},
                {128, 3, {'N', 0x80, 0x01}},
                {16383, 3, {'N', 0xff, 0x7f}},
                {16384, 4, {'N', 0x80, 0x80, 0x01}},
                {(1U << 21) - 1, 4, {'N', 0xff, 0xff, 0x7f}},
                {1U << 21, 5, {'N', 0x80, 0x80, 0x80, 0x01}},
                {1U << 28, 6, {'N', 0x80, 0x80, 0x80, 0x80, 0x01}},
                {UINT32_MAX, 6, {'N', 0xff, 0xff, 0xff, 0xff, 0x0f}},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                uint8_t out[QUEUE_FILE_REC_HDR_MAX];
                size_t n = rec_header('N', table[i].size, out);

                if (n != table[i].n || memcmp(out, table[i].bytes, n) != 0)
                        fail_msg("rec_header(%zu): got %zu bytes want %zu (or different bytes)",
                                 table[i].size, n, table[i].n);

                /* Decode: a record of that size (heap, exact), or -EBADMSG above the limit. */
                size_t total = n + (table[i].size <= QUEUE_FILE_REC_MAX ? table[i].size : 0);
                uint8_t *buf = calloc(1, total);
                RecReader rd;
                QueueRecord rec;
                int r;

                assert_non_null(buf);
                memcpy(buf, out, n);
                rec_reader_init(&rd, buf, total, 1000);
                r = rec_next(&rd, &rec);
                if (table[i].size <= QUEUE_FILE_REC_MAX) {
                        if (r != 1 || rec.size != table[i].size || rec.type != 'N' || rec.offset != 1000 ||
                            rec.data != buf + n)
                                fail_msg("rec_next(size %zu): got r=%d size %zu want 1 and the size",
                                         table[i].size, r, r == 1 ? rec.size : 0);
                        assert_int_equal(rec_next(&rd, &rec), 0);
                } else if (r != -EBADMSG)
                        fail_msg("rec_next(size %zu > max): got %d want -EBADMSG", table[i].size, r);
                free(buf);
        }
}

static void test_rec_next_bad_lengths(void **state)
{
        static const struct {
                const char *name;
                size_t n;
                uint8_t bytes[8];
        } table[] = {
                {"six length bytes", 7, {'N', 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}},
                {"over 32 bits", 6, {'N', 0xff, 0xff, 0xff, 0xff, 0x1f}},
                {"just over the maximum", 5, {'N', 0x81, 0x80, 0x40}},
                {"header cut short", 2, {'N', 0x80}},
                {"type byte only", 1, {'N'}},
                {"data cut short", 4, {'N', 0x03, 'a', 'b'}},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                uint8_t *buf = malloc(table[i].n);
                RecReader rd;
                QueueRecord rec;
                int r;

                memcpy(buf, table[i].bytes, table[i].n);
                rec_reader_init(&rd, buf, table[i].n, 0);
                r = rec_next(&rd, &rec);
                if (r != -EBADMSG)
                        fail_msg("%s: got %d want -EBADMSG", table[i].name, r);
                free(buf);
        }
}

/* Every prefix of a file: whole records, then 0 at a boundary or -EBADMSG inside a record. */
static void test_rec_next_prefixes(void **state)
{
        QueueBuf b;
        size_t bounds[64], n_bounds = 0;
        char big[300];

        (void)state;
        build(&b, good);
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(queue_buf_put(&b, 'N', big, strlen(big)), 0); /* a 2-byte length */

        {
                RecReader rd;
                QueueRecord rec;

                rec_reader_init(&rd, b.data, b.size, 0);
                bounds[n_bounds++] = 0;
                while (rec_next(&rd, &rec) == 1)
                        bounds[n_bounds++] = rd.pos;
                assert_int_equal(bounds[n_bounds - 1], b.size);
        }
        for (size_t n = 0; n <= b.size; n++) {
                uint8_t *copy = malloc(n ? n : 1);
                RecReader rd;
                QueueRecord rec;
                size_t k = 0, want_records = 0;
                bool at_boundary = false;
                int r;

                memcpy(copy, b.data, n);
                for (size_t i = 0; i < n_bounds; i++) {
                        if (bounds[i] <= n && i > 0)
                                want_records = i;
                        if (bounds[i] == n)
                                at_boundary = true;
                }
                rec_reader_init(&rd, copy, n, 0);
                while ((r = rec_next(&rd, &rec)) == 1) {
                        if (rec.data + rec.size > copy + n)
                                fail_msg("prefix %zu: record %zu ends past the buffer", n, k);
                        k++;
                }
                if (k != want_records)
                        fail_msg("prefix %zu: got %zu records want %zu", n, k, want_records);
                if (r != (at_boundary ? 0 : -EBADMSG))
                        fail_msg("prefix %zu: got %d want %d", n, r, at_boundary ? 0 : -EBADMSG);
                free(copy);
        }
        queue_buf_done(&b);
}

/* ---- C record ------------------------------------------------------------------------------- */

static void test_size_record(void **state)
{
        QueueSizeRecord s = {1234, 567, 2, 0, 1200, 1}, p;
        char out[QUEUE_FILE_SIZE_REC_LEN + 1];
        char want[200];

        (void)state;
        queue_size_record_format(&s, out);
        out[QUEUE_FILE_SIZE_REC_LEN] = '\0';
        snprintf(want, sizeof(want), "%15ld %15ld %15ld %15ld %15ld %15ld", 1234L, 567L, 2L, 0L, 1200L, 1L);
        assert_string_equal(out, want);
        assert_int_equal(queue_size_record_parse((uint8_t *)out, QUEUE_FILE_SIZE_REC_LEN, &p), 0);
        assert_memory_equal(&p, &s, sizeof(s));

        static const struct {
                const char *text;
                int r;
                int64_t f0, f1, f4;
        } table[] = {
                {"            100", 0, 100, 0, 0}, /* Postfix < 1.0 */
                {"100 50 1", 0, 100, 50, 0},
                {"100 50 1 0", 0, 100, 50, 0}, /* Postfix 2.x */
                {"100 50 1 0 99", 0, 100, 50, 99},
                {"100 50 1 0 99 0  ", 0, 100, 50, 99},
                {"-1 50 1 0 99 0", 0, -1, 50, 99},
                {"", -EBADMSG, 0, 0, 0},
                {"   ", -EBADMSG, 0, 0, 0},
                {"100 50", -EBADMSG, 0, 0, 0},
                {"1 2 3 4 5 6 7", -EBADMSG, 0, 0, 0},
                {"1x", -EBADMSG, 0, 0, 0},
                {"1-2 3", -EBADMSG, 0, 0, 0},
                {"- 2 3", -EBADMSG, 0, 0, 0},
                {"99999999999999999999 1 1", -EBADMSG, 0, 0, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                int r = queue_size_record_parse((const uint8_t *)table[i].text, strlen(table[i].text), &p);

                if (r != table[i].r)
                        fail_msg("parse(\"%s\"): got %d want %d", table[i].text, r, table[i].r);
                if (r == 0 && (p.content_size != table[i].f0 || p.data_offset != table[i].f1 ||
                               p.content_length != table[i].f4))
                        fail_msg("parse(\"%s\"): got %lld %lld ... want %lld %lld", table[i].text,
                                 (long long)p.content_size, (long long)p.data_offset, (long long)table[i].f0,
                                 (long long)table[i].f1);
        }
}

/* ---- envelopes ------------------------------------------------------------------------------ */

static void test_envelope_good(void **state)
{
        QueueBuf b;
        QueueEnvelope e;
        const char *reason = NULL;

        (void)state;
        build(&b, good);
        if (queue_envelope_parse(b.data, b.size, &e, &reason) < 0)
                fail_msg("parse: got \"%s\" want success", reason);
        assert_int_equal(e.arrival_sec, 1700000000);
        assert_int_equal(e.arrival_usec, 123456);
        assert_int_equal(e.create_time, 1700000001);
        assert_string_equal(e.sender, "sender@example.org");
        assert_string_equal(e.full_name, "Charlie Root");
        assert_int_equal(e.n_attrs, 2);
        assert_string_equal(e.attr_names[0], "log_client_name");
        assert_string_equal(e.attr_values[0], "client.example.org");
        assert_string_equal(queue_envelope_attr(&e, "rewrite_context"), "remote");
        assert_null(queue_envelope_attr(&e, "create_time"));
        assert_null(queue_envelope_attr(&e, "nonesuch"));
        assert_int_equal(e.n_rcpts, 3);
        assert_string_equal(e.rcpts[0].address, "rcpt1@example.com");
        assert_string_equal(e.rcpts[0].orig_address, "orig@example.com");
        assert_string_equal(e.rcpts[0].dsn_orig_rcpt, "rfc822;Orig@example.com");
        assert_int_equal(e.rcpts[0].dsn_notify, 6);
        assert_string_equal(e.rcpts[1].address, "rcpt2@example.net");
        assert_string_equal(e.rcpts[1].orig_address, "");
        assert_string_equal(e.rcpts[1].dsn_orig_rcpt, "");
        assert_int_equal(e.rcpts[1].dsn_notify, 0);
        assert_string_equal(e.rcpts[2].address, "extracted@example.com");
        for (size_t i = 0; i < e.n_rcpts; i++) {
                if (b.data[e.rcpts[i].offset] != 'R')
                        fail_msg("rcpt %zu: byte at offset %llu: got '%c' want 'R'", i,
                                 (unsigned long long)e.rcpts[i].offset, b.data[e.rcpts[i].offset]);
                assert_false(e.rcpts[i].done);
        }
        assert_int_equal(e.content_offset, e.size_rec.data_offset);
        assert_int_equal(b.data[e.xtra_offset], 'X');
        assert_int_equal(e.xtra_offset, e.size_rec.data_offset + e.size_rec.content_size);
        assert_int_equal(e.size_rec.rcpt_count, 3);
        assert_true(e.complete);

        /* Mark the second recipient done in place, as a delivery does, and read again. */
        uint64_t off = e.rcpts[1].offset;
        queue_envelope_done(&e);
        b.data[off] = 'D';
        assert_int_equal(queue_envelope_parse(b.data, b.size, &e, &reason), 0);
        assert_false(e.rcpts[0].done);
        assert_true(e.rcpts[1].done);
        assert_int_equal(e.rcpts[1].offset, off);
        queue_envelope_done(&e);
        queue_envelope_done(&e); /* idempotent */
        queue_buf_done(&b);
}

typedef struct BadCase {
        const char *name;
        Rec recs[24];
        const char *reason;
} BadCase;

/* clang-format off */
#define ENV_HEAD { 'C', NULL }, { 'T', "1 2" }, { 'S', "s@x" }
#define TAIL { 'M', "" }, { 'N', "body" }, { 'X', "" }, { 'E', "" }
/* clang-format on */

static const BadCase bad_cases[] = {
        {"empty", {END_RECS}, "empty file"},
        {"not C first",
         {{'T', "1 2"}, {'C', NULL}, {'S', "s"}, TAIL, END_RECS},
         "first record is not the size record (C)"},
        {"pointer first", {{'p', "0"}, ENV_HEAD, TAIL, END_RECS}, "first record is not the size record (C)"},
        {"bad C", {{'C', "12 x"}, {'T', "1 2"}, {'S', "s"}, TAIL, END_RECS}, "malformed size record (C)"},
        {"C zeros",
         {{'C', "0 0 0 0 0 0"}, {'T', "1 2"}, {'S', "s"}, TAIL, END_RECS},
         "size record (C) with no data offset or content size"},
        {"C not rewritten",
         {{'C', "1 1 1 0 0 0"}, {'T', "1 2"}, {'S', "s"}, TAIL, END_RECS},
         "size record (C) does not match the content (not rewritten: torn file?)"},
        {"two C", {ENV_HEAD, {'C', "1"}, TAIL, END_RECS}, "second size record (C)"},
        {"no T", {{'C', NULL}, {'S', "s"}, TAIL, END_RECS}, "no arrival time record (T) before the content"},
        {"two T", {ENV_HEAD, {'T', "1 2"}, TAIL, END_RECS}, "second arrival time record (T)"},
        {"bad T",
         {{'C', NULL}, {'T', "1 1000000"}, {'S', "s"}, TAIL, END_RECS},
         "malformed arrival time record (T)"},
        {"no S", {{'C', NULL}, {'T', "1 2"}, TAIL, END_RECS}, "no sender record (S) before the content"},
        {"two S", {ENV_HEAD, {'S', "t@x"}, TAIL, END_RECS}, "second sender record (S)"},
        {"S in extracted",
         {ENV_HEAD, {'M', ""}, {'N', "b"}, {'X', ""}, {'S', "t"}, {'E', ""}, END_RECS},
         "record type out of place in the extracted segment"},
        {"null sender",
         {{'C', NULL}, {'T', "1 2"}, {'S', ""}, TAIL, END_RECS},
         NULL}, /* valid: null sender */
        {"bad attribute",
         {ENV_HEAD, {'A', "novalue"}, TAIL, END_RECS},
         "malformed attribute record (want name=value)"},
        {"attribute without name",
         {ENV_HEAD, {'A', "=v"}, TAIL, END_RECS},
         "malformed attribute record (want name=value)"},
        {"bad create_time",
         {ENV_HEAD, {'A', "create_time=soon"}, TAIL, END_RECS},
         "malformed create_time attribute"},
        {"O alone",
         {ENV_HEAD, {'O', "o@x"}, {'A', "a=b"}, TAIL, END_RECS},
         "original recipient record (O) not followed by a recipient"},
        {"content type in envelope",
         {ENV_HEAD, {'N', "x"}, TAIL, END_RECS},
         "record type out of place in the envelope"},
        {"E in envelope", {ENV_HEAD, {'E', ""}, END_RECS}, "record type out of place in the envelope"},
        {"M with data",
         {ENV_HEAD, {'M', "x"}, {'X', ""}, {'E', ""}, END_RECS},
         "content record (M) with data"},
        {"no M", {ENV_HEAD, {'R', "r@x"}, END_RECS}, "no content record (M)"},
        {"R in content",
         {ENV_HEAD, {'M', ""}, {'R', "r"}, {'X', ""}, {'E', ""}, END_RECS},
         "record type out of place in the message content"},
        {"E in content",
         {ENV_HEAD, {'M', ""}, {'N', "x"}, {'E', ""}, END_RECS},
         "record type out of place in the message content"},
        {"no X", {ENV_HEAD, {'M', ""}, {'N', "x"}, END_RECS}, "no extracted segment record (X)"},
        {"N in extracted",
         {ENV_HEAD, {'M', ""}, {'N', "b"}, {'X', ""}, {'N', "x"}, {'E', ""}, END_RECS},
         "record type out of place in the extracted segment"},
        {"no E", {ENV_HEAD, {'M', ""}, {'N', "b"}, {'X', ""}, END_RECS}, "no end record (E)"},
        {"after E", {ENV_HEAD, TAIL, {'N', "junk"}, END_RECS}, "data after the end record (E)"},
        {"dangling DSN",
         {ENV_HEAD, {'M', ""}, {'N', "b"}, {'X', ""}, {'A', "notify_flags=1"}, {'E', ""}, END_RECS},
         "recipient DSN attribute not followed by a recipient"},
        {"bad pointer", {ENV_HEAD, {'p', "x"}, TAIL, END_RECS}, "malformed pointer record (p)"},
        {"pointer beyond end",
         {ENV_HEAD, {'p', "99999"}, TAIL, END_RECS},
         "pointer record (p) beyond the end of the file"},
        {"pointer loop to itself",
         {{'C', NULL}, {'T', "1 2"}, {'S', "s"}, {'p', ""}, TAIL, END_RECS},
         "malformed pointer record (p)"},
        {"unknown type", {ENV_HEAD, {'Q', "x"}, TAIL, END_RECS}, "record type out of place in the envelope"},
};

static void test_envelope_bad(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const BadCase *c = &bad_cases[i];
                QueueBuf b;
                QueueEnvelope e;
                const char *reason = NULL;
                int r;

                build(&b, c->recs);
                r = queue_envelope_parse(b.data ? b.data : (uint8_t *)"", b.size, &e, &reason);
                if (!c->reason) {
                        if (r < 0)
                                fail_msg("%s: got \"%s\" want success", c->name, reason);
                        queue_envelope_done(&e);
                } else if (r != -EBADMSG || !reason || !streq(reason, c->reason))
                        fail_msg("%s: got %d \"%s\" want -EBADMSG \"%s\"", c->name, r, strempty(reason),
                                 c->reason);
                queue_buf_done(&b);
        }
}

static void test_envelope_nul(void **state)
{
        QueueBuf b;
        QueueEnvelope e;
        const char *reason = NULL;

        (void)state;
        build(&b, (const Rec[]){{'C', "1 1 1 0 0 0"}, {'T', "1 2"}, END_RECS});
        assert_int_equal(queue_buf_put(&b, 'S', "a\0b", 3), 0);
        assert_int_equal(queue_buf_put(&b, 'M', "", 0), 0);
        assert_int_equal(queue_buf_put(&b, 'X', "", 0), 0);
        assert_int_equal(queue_buf_put(&b, 'E', "", 0), 0);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &e, &reason), -EBADMSG);
        assert_string_equal(reason, "NUL byte in the sender record (S)");
        queue_buf_done(&b);
}

/* Rewrite the "%15ld" pointer record whose data starts at AT to point at TARGET. */
static void set_pointer(QueueBuf *b, size_t at, size_t target)
{
        char tmp[16];

        snprintf(tmp, sizeof(tmp), "%15zu", target);
        memcpy(b->data + at, tmp, 15);
}

static void test_pointers(void **state)
{
        QueueBuf b;
        QueueEnvelope e;
        const char *reason = NULL;
        size_t ptr1, after_ptr1, ptr2, appended;
        char zero[16];

        (void)state;
        snprintf(zero, sizeof(zero), "%15d", 0);
        /* As Postfix's cleanup leaves it after a milter added a recipient: envelope p -> appended
         * records after E -> p back to the record after the first p. */
        build(&b, (const Rec[]){{'C', NULL}, {'T', "1 2"}, {'S', "s@x"}, {'R', "r1@x"}, END_RECS});
        ptr1 = b.size + 2;
        assert_int_equal(queue_buf_put(&b, 'p', zero, 15), 0);
        after_ptr1 = b.size;
        assert_int_equal(queue_buf_put(&b, 'p', zero, 15), 0); /* a placeholder: 0 = none */
        assert_int_equal(queue_buf_put(&b, 'M', "", 0), 0);
        size_t data_offset = b.size;
        assert_int_equal(queue_buf_put_line(&b, "body", 4), 0);
        size_t xtra = b.size;
        assert_int_equal(queue_buf_put(&b, 'X', "", 0), 0);
        assert_int_equal(queue_buf_put(&b, 'E', "", 0), 0);
        appended = b.size;
        assert_int_equal(queue_buf_put(&b, 'R', "r2@x", 4), 0);
        ptr2 = b.size + 2;
        assert_int_equal(queue_buf_put(&b, 'p', zero, 15), 0);
        set_pointer(&b, ptr1, appended);
        set_pointer(&b, ptr2, after_ptr1);
        QueueSizeRecord s = {(int64_t)(xtra - data_offset), (int64_t)data_offset, 2, 0, 5, 0};
        queue_size_record_format(&s, (char *)b.data + 2);

        if (queue_envelope_parse(b.data, b.size, &e, &reason) < 0)
                fail_msg("append through pointers: got \"%s\" want success", reason);
        assert_int_equal(e.n_rcpts, 2);
        assert_string_equal(e.rcpts[1].address, "r2@x");
        assert_int_equal(e.rcpts[1].offset, appended);
        queue_envelope_done(&e);

        /* Without the pointer back, the appended records come after E unread... no: they are read,
         * and the p back is 0, so the reader runs off the end after them. */
        set_pointer(&b, ptr2, 0);
        memcpy(b.data + ptr2, zero, 15);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &e, &reason), -EBADMSG);
        assert_string_equal(reason, "no content record (M)");

        /* A loop: the pointer back leads to the first pointer again. */
        set_pointer(&b, ptr2, ptr1 - 2);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &e, &reason), -EBADMSG);
        assert_string_equal(reason, "pointer records loop");

        /* A pointer to itself. */
        set_pointer(&b, ptr1, ptr1 - 2);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &e, &reason), -EBADMSG);
        assert_string_equal(reason, "pointer records loop");

        /* Garbage after E that no pointer reaches. */
        set_pointer(&b, ptr1, 0);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &e, &reason), -EBADMSG);
        assert_string_equal(reason, "data after the end record (E)");
        queue_buf_done(&b);
}

static void test_envelope_prefixes(void **state)
{
        QueueBuf b;

        (void)state;
        build(&b, good);
        for (size_t n = 0; n < b.size; n++) {
                uint8_t *copy = malloc(n ? n : 1);
                QueueEnvelope e;
                const char *reason = NULL;
                int r;

                memcpy(copy, b.data, n);
                r = queue_envelope_parse(copy, n, &e, &reason);
                if (r != -EBADMSG || !reason)
                        fail_msg("prefix %zu of %zu: got %d want -EBADMSG with a reason", n, b.size, r);
                free(copy);
        }
        queue_buf_done(&b);
}

/* ---- writers -------------------------------------------------------------------------------- */

static void test_put_line(void **state)
{
        static const struct {
                size_t len;
                const char *types; /* one letter per record */
                size_t last;       /* size of the last record */
        } table[] = {
                {0, "N", 0},
                {1, "N", 1},
                {QUEUE_FILE_LINE_MAX - 1, "N", QUEUE_FILE_LINE_MAX - 1},
                {QUEUE_FILE_LINE_MAX, "N", QUEUE_FILE_LINE_MAX},
                {QUEUE_FILE_LINE_MAX + 1, "LN", 1},
                {2 * QUEUE_FILE_LINE_MAX, "LN", QUEUE_FILE_LINE_MAX},
                {5000, "LLN", 5000 - 2 * QUEUE_FILE_LINE_MAX},
        };
        char *line = malloc(5000);

        (void)state;
        for (size_t i = 0; i < 5000; i++)
                line[i] = (char)('a' + i % 26);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                QueueBuf b = {};
                RecReader rd;
                QueueRecord rec;
                char got[8] = "";
                size_t k = 0, joined = 0, last = 0;

                assert_int_equal(queue_buf_put_line(&b, line, table[i].len), 0);
                rec_reader_init(&rd, b.data, b.size, 0);
                while (rec_next(&rd, &rec) == 1 && k < 7) {
                        got[k++] = rec.type;
                        if (memcmp(rec.data, line + joined, rec.size) != 0)
                                fail_msg("line %zu: record %zu holds other bytes", table[i].len, k);
                        if (rec.type == 'L' && rec.size != QUEUE_FILE_LINE_MAX)
                                fail_msg("line %zu: L record of %zu want %d", table[i].len, rec.size,
                                         QUEUE_FILE_LINE_MAX);
                        joined += rec.size;
                        last = rec.size;
                }
                if (!streq(got, table[i].types) || joined != table[i].len || last != table[i].last)
                        fail_msg("line %zu: got %s (%zu bytes, last %zu) want %s (last %zu)", table[i].len,
                                 got, joined, last, table[i].types, table[i].last);
                queue_buf_done(&b);
        }
        free(line);
}

static void test_put(void **state)
{
        QueueBuf b = {};
        char *big = calloc(1, QUEUE_FILE_REC_MAX + 1);
        RecReader rd;
        QueueRecord rec;

        (void)state;
        assert_int_equal(queue_buf_put(&b, 'N', big, QUEUE_FILE_REC_MAX + 1), -EMSGSIZE);
        assert_int_equal(b.size, 0);
        assert_int_equal(queue_buf_put(&b, 'N', big, QUEUE_FILE_REC_MAX), 0);
        assert_int_equal(queue_buf_putf(&b, 'T', "%ld %ld", 1700000000L, 5L), 0);
        assert_int_equal(queue_buf_put(&b, 'M', NULL, 0), 0);
        rec_reader_init(&rd, b.data, b.size, 0);
        assert_int_equal(rec_next(&rd, &rec), 1);
        assert_int_equal(rec.size, QUEUE_FILE_REC_MAX);
        assert_int_equal(rec_next(&rd, &rec), 1);
        assert_int_equal(rec.type, 'T');
        assert_int_equal(rec.size, strlen("1700000000 5"));
        assert_memory_equal(rec.data, "1700000000 5", rec.size);
        assert_int_equal(rec_next(&rd, &rec), 1);
        assert_int_equal(rec.type, 'M');
        assert_int_equal(rec_next(&rd, &rec), 0);
        queue_buf_done(&b);
        queue_buf_done(&b);
        queue_buf_done(NULL);
        free(big);
}

/* ---- content as text ----------------------------------------------------------------------- */

/* content_text - parse B's envelope, then queue_content_text(); the result must be NUL-terminated */
static int content_text(const QueueBuf *b, size_t limit, bool headers_only, char **ret, bool *ret_truncated)
{
        QueueEnvelope e;
        const char *reason = NULL;
        size_t size = SIZE_MAX;
        int r;

        if (queue_envelope_parse(b->data, b->size, &e, &reason) < 0)
                fail_msg("envelope: %s", reason);
        *ret_truncated = !*ret_truncated; /* must be written */
        r = queue_content_text(b->data, b->size, &e, limit, headers_only, ret, &size, ret_truncated);
        if (r >= 0)
                assert_int_equal(strlen(*ret), size);
        queue_envelope_done(&e);
        return r;
}

static void test_content_text(void **state)
{
        static const struct {
                size_t limit;
                bool headers_only;
                const char *text;
                bool truncated;
        } table[] = {
                {0, false, "Subject: test\n\nlong line\n", false},
                {0, true, "Subject: test\n", false},
                {1000, true, "Subject: test\n", false},
                {25, false, "Subject: test\n\nlong line\n", false},
                {24, false, "Subject: test\n\n", true},
                {16, false, "Subject: test\n\n", true},
                {15, false, "Subject: test\n\n", true},
                {14, false, "Subject: test\n", true},
                {13, false, "", true},
                {1, false, "", true},
                {14, true, "Subject: test\n", false},
                {13, true, "", true},
        };
        QueueBuf b;

        (void)state;
        build(&b, good);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_(freep) char *text = NULL;
                bool truncated = false;

                assert_int_equal(content_text(&b, table[i].limit, table[i].headers_only, &text, &truncated), 0);
                if (!streq(text, table[i].text) || truncated != table[i].truncated)
                        fail_msg("limit %zu%s: got \"%s\"%s want \"%s\"%s", table[i].limit,
                                 table[i].headers_only ? " headers only" : "", text,
                                 truncated ? " (truncated)" : "", table[i].text,
                                 table[i].truncated ? " (truncated)" : "");
        }
        queue_buf_done(&b);
}

/* every limit: the longest whole-line prefix of the full text that fits */
static void test_content_text_long_lines(void **state)
{
        char *piece = malloc(QUEUE_FILE_LINE_MAX + 1), *tail = strdup("tail of the long line");
        _cleanup_(freep) char *full = NULL;
        size_t full_size;
        bool truncated = false;
        QueueBuf b;

        (void)state;
        for (size_t i = 0; i < QUEUE_FILE_LINE_MAX; i++)
                piece[i] = (char)('a' + i % 26);
        piece[QUEUE_FILE_LINE_MAX] = '\0';
        build(&b, (const Rec[]){{'C', NULL},
                                {'T', "1 0"},
                                {'S', ""},
                                {'R', "r@x"},
                                {'M', ""},
                                {'N', "From: a@b"},
                                {'L', piece},
                                {'L', piece},
                                {'N', tail},
                                {'N', ""},
                                {'L', "a continued "},
                                {'w', ""},
                                {'L', ""},
                                {'N', "line"},
                                {'N', "last"},
                                {'X', ""},
                                {'E', ""},
                                END_RECS});
        assert_int_equal(content_text(&b, 0, false, &full, &truncated), 0);
        assert_false(truncated);
        full_size = strlen(full);
        assert_int_equal(full_size, strlen("From: a@b\n") + 2 * QUEUE_FILE_LINE_MAX + strlen(tail) + 1 + 1 +
                                            strlen("a continued line\n") + strlen("last\n"));
        assert_memory_equal(full + 10, piece, QUEUE_FILE_LINE_MAX);
        assert_memory_equal(full + 10 + 2 * QUEUE_FILE_LINE_MAX, tail, strlen(tail));
        assert_string_equal(full + full_size - strlen("\na continued line\nlast\n"), "\na continued line\nlast\n");

        for (size_t limit = 1; limit <= full_size + 1; limit++) {
                _cleanup_(freep) char *text = NULL;
                size_t want = 0;

                /* the last line end at or before LIMIT */
                for (size_t k = 0; k < full_size && k < limit; k++)
                        if (full[k] == '\n')
                                want = k + 1;
                assert_int_equal(content_text(&b, limit, false, &text, &truncated), 0);
                if (strlen(text) != want || memcmp(text, full, want) != 0 || truncated != (want < full_size))
                        fail_msg("limit %zu: got %zu bytes%s want %zu", limit, strlen(text),
                                 truncated ? " (truncated)" : "", want);
        }
        {
                _cleanup_(freep) char *text = NULL;

                assert_int_equal(content_text(&b, 0, true, &text, &truncated), 0);
                assert_int_equal(strlen(text), 10 + 2 * QUEUE_FILE_LINE_MAX + strlen(tail) + 1);
                assert_false(truncated);
        }
        queue_buf_done(&b);
        free(piece);
        free(tail);
}

/* content edited in place the Postfix way: a p record to records after E and a p back */
static void test_content_text_pointers(void **state)
{
        QueueBuf b;
        QueueEnvelope e;
        const char *reason = NULL;
        char zero[16];
        size_t ptr1, after_ptr1, ptr2, appended, data_offset, xtra, size;
        _cleanup_(freep) char *text = NULL;
        bool truncated;

        (void)state;
        snprintf(zero, sizeof(zero), "%15d", 0);
        build(&b, (const Rec[]){{'C', NULL}, {'T', "1 2"}, {'S', "s@x"}, {'R', "r1@x"}, {'M', ""}, END_RECS});
        data_offset = b.size;
        assert_int_equal(queue_buf_put_line(&b, "Subject: one", 12), 0);
        ptr1 = b.size + 2;
        assert_int_equal(queue_buf_put(&b, 'p', zero, 15), 0);
        after_ptr1 = b.size;
        assert_int_equal(queue_buf_put_line(&b, "", 0), 0);
        assert_int_equal(queue_buf_put_line(&b, "body", 4), 0);
        xtra = b.size;
        assert_int_equal(queue_buf_put(&b, 'X', "", 0), 0);
        assert_int_equal(queue_buf_put(&b, 'E', "", 0), 0);
        appended = b.size;
        assert_int_equal(queue_buf_put_line(&b, "X-Added: two", 12), 0);
        ptr2 = b.size + 2;
        assert_int_equal(queue_buf_put(&b, 'p', zero, 15), 0);
        set_pointer(&b, ptr1, appended);
        set_pointer(&b, ptr2, after_ptr1);
        QueueSizeRecord s = {(int64_t)(xtra - data_offset), (int64_t)data_offset, 1, 0, 5, 0};
        queue_size_record_format(&s, (char *)b.data + 2);
        if (queue_envelope_parse(b.data, b.size, &e, &reason) < 0)
                fail_msg("envelope: %s", reason);

        assert_int_equal(queue_content_text(b.data, b.size, &e, 0, false, &text, &size, &truncated), 0);
        assert_string_equal(text, "Subject: one\nX-Added: two\n\nbody\n");
        free(text);
        text = NULL;
        assert_int_equal(queue_content_text(b.data, b.size, &e, 0, true, &text, &size, NULL), 0);
        assert_string_equal(text, "Subject: one\nX-Added: two\n");
        free(text);
        text = NULL;

        /* a pointer loop, a pointer beyond the end, a record out of place, a content offset
         * beyond the file: -EBADMSG and *ret untouched */
        set_pointer(&b, ptr2, ptr1 - 2);
        assert_int_equal(queue_content_text(b.data, b.size, &e, 0, false, &text, &size, &truncated), -EBADMSG);
        set_pointer(&b, ptr2, b.size + 10);
        assert_int_equal(queue_content_text(b.data, b.size, &e, 0, false, &text, &size, &truncated), -EBADMSG);
        set_pointer(&b, ptr2, after_ptr1);
        b.data[appended] = 'R';
        assert_int_equal(queue_content_text(b.data, b.size, &e, 0, false, &text, &size, &truncated), -EBADMSG);
        b.data[appended] = 'N';
        /* cut before X: the reader runs out */
        assert_int_equal(queue_content_text(b.data, xtra, &e, 0, false, &text, &size, &truncated), -EBADMSG);
        e.content_offset = b.size + 1;
        assert_int_equal(queue_content_text(b.data, b.size, &e, 0, false, &text, &size, &truncated), -EBADMSG);
        assert_null(text);
        queue_envelope_done(&e);
        queue_buf_done(&b);
}

/* W: the delay warning time, fixed width so that qmgr can rewrite it in place */
static void test_warn_record(void **state)
{
        const Rec with_warn[] = { {REC_TYPE_SIZE, NULL}, {REC_TYPE_TIME, "1700000000 0"},
                             {REC_TYPE_WARN, "     1700003600"}, {REC_TYPE_FROM, "a@b.example"},
                             {REC_TYPE_RCPT, "c@d.example"}, {REC_TYPE_MESG, ""}, {REC_TYPE_NORM, "x"},
                             {REC_TYPE_XTRA, ""}, {REC_TYPE_END, ""}, END_RECS };
        const Rec narrow[] = { {REC_TYPE_SIZE, NULL}, {REC_TYPE_TIME, "1700000000 0"},
                               {REC_TYPE_WARN, "1700003600"}, {REC_TYPE_FROM, "a@b.example"},
                               {REC_TYPE_RCPT, "c@d.example"}, {REC_TYPE_MESG, ""}, {REC_TYPE_XTRA, ""},
                               {REC_TYPE_END, ""}, END_RECS };
        const char *reason = NULL;
        QueueEnvelope env;
        QueueBuf b;

        build(&b, with_warn);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &env, &reason), 0);
        assert_int_equal(env.warn_time, 1700003600);
        assert_true(env.warn_offset > 0);
        assert_int_equal(b.data[env.warn_offset], REC_TYPE_WARN);
        uint64_t at = env.warn_offset;
        queue_envelope_done(&env);
        /* rewritten as qmgr does once the notice is sent */
        memcpy(b.data + at + 2, "             -1", QUEUE_FILE_WARN_REC_LEN);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &env, &reason), 0);
        assert_int_equal(env.warn_time, -1);
        queue_envelope_done(&env);
        queue_buf_done(&b);

        build(&b, narrow);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &env, &reason), -EBADMSG);
        assert_string_equal(reason, "malformed warning time record (W)");
        queue_buf_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rec_header),
                cmocka_unit_test(test_warn_record),
                cmocka_unit_test(test_rec_next_bad_lengths),
                cmocka_unit_test(test_rec_next_prefixes),
                cmocka_unit_test(test_size_record),
                cmocka_unit_test(test_envelope_good),
                cmocka_unit_test(test_envelope_bad),
                cmocka_unit_test(test_envelope_nul),
                cmocka_unit_test(test_pointers),
                cmocka_unit_test(test_envelope_prefixes),
                cmocka_unit_test(test_put_line),
                cmocka_unit_test(test_put),
                cmocka_unit_test(test_content_text),
                cmocka_unit_test(test_content_text_long_lines),
                cmocka_unit_test(test_content_text_pointers),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
