/* SPDX-License-Identifier: MIT */
/*
 * test-varlink-wire.c - varlink framing and message decoding (src/lib/varlink-wire.c)
 *
 * Covers: framing fed one byte at a time and split at every offset into two and three pieces,
 * several messages in one feed, the empty message, the size limit (exactly the limit and one
 * over, with a small max_message), descriptors bound to the message they came with (real
 * descriptors from pipe(), checked to be the very ones handed out), descriptor batches for a
 * partial message, descriptors without bytes, too many descriptors (-E2BIG, closed),
 * varlink_wire_done() closing what is pending (/proc/self/fd count), call and reply decoding
 * (valid and invalid envelopes, with the reason text), interface and member name validity, and
 * the encode/parse round trip.
 *
 * Limits: descriptor closing is checked with fcntl(F_GETFD) right after the call, before any
 * other descriptor can reuse the number; the /proc/self/fd counts assume nothing else in the
 * process opens descriptors concurrently (cmocka runs the tests in one thread).
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "json-util.h"
#include "macro.h"
#include "varlink-wire.h"
#include "test-util.h"

/* ---- helpers ------------------------------------------------------------------------------ */

#define FRAMES_MAX 16

/* What a sequence of feeds produced: the frames' texts and descriptors, and the first error. */
typedef struct Frames {
        char *text[FRAMES_MAX];
        size_t size[FRAMES_MAX];
        int fds[FRAMES_MAX][VARLINK_FDS_MAX];
        size_t n_fds[FRAMES_MAX];
        size_t n;
        int error;
} Frames;

static void frames_done(Frames *f)
{
        for (size_t i = 0; i < f->n; i++) {
                free(f->text[i]);
                close_many(f->fds[i], f->n_fds[i]);
        }
        *f = (Frames){};
}

/* pull - take every complete frame out of W into F; remembers the first error */
static void pull(VarlinkWire *w, Frames *f)
{
        for (;;) {
                VarlinkFrame frame;
                int r = varlink_wire_next(w, &frame);

                if (r < 0) {
                        if (f->error == 0)
                                f->error = r;
                        return;
                }
                if (r == 0)
                        return;
                if (f->n >= FRAMES_MAX)
                        fail_msg("more than %d frames", FRAMES_MAX);
                if (frame.data[frame.size] != '\0')
                        fail_msg("frame %zu is not NUL-terminated", f->n);
                f->text[f->n] = strndup(frame.data, frame.size);
                assert_non_null(f->text[f->n]);
                f->size[f->n] = frame.size;
                memcpy(f->fds[f->n], frame.fds, frame.n_fds * sizeof(int));
                f->n_fds[f->n] = frame.n_fds;
                f->n++;
        }
}

static void feed_ok(VarlinkWire *w, const void *data, size_t n, const int *fds, size_t n_fds)
{
        int r = varlink_wire_feed(w, data, n, fds, n_fds);
        if (r < 0)
                fail_msg("varlink_wire_feed(%zu bytes, %zu fds): got %d (%s) want >= 0", n, n_fds, r,
                         strerror(-r));
}

/* expect_frames - F holds exactly the messages WANT[] (NUL-separated in one buffer of N_WANT) */
static void expect_frames(const char *context, const Frames *f, const char *const *want, size_t n_want)
{
        if (f->error != 0)
                fail_msg("%s: got error %d (%s) want none", context, f->error, strerror(-f->error));
        if (f->n != n_want)
                fail_msg("%s: got %zu frames want %zu", context, f->n, n_want);
        for (size_t i = 0; i < n_want; i++)
                if (f->size[i] != strlen(want[i]) || memcmp(f->text[i], want[i], f->size[i]) != 0)
                        fail_msg("%s: frame %zu: got \"%s\" (%zu bytes) want \"%s\"", context, i, f->text[i],
                                 f->size[i], want[i]);
}

static bool fd_is_open(int fd)
{
        return fcntl(fd, F_GETFD) >= 0;
}

/* new_fds - N fresh descriptors (both ends of pipes) */
static void new_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i += 2) {
                int p[2];
                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                fds[i] = p[0];
                if (i + 1 < n)
                        fds[i + 1] = p[1];
                else
                        safe_close(p[1]);
        }
}

/* The buffer most framing tests use: four messages, one of them empty. */
static const char multi_buf[] =
        "{\"method\":\"io.tern.Test.Ping\"}\0"
        "\0"
        "{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"a\\u00e9b\"}}\0"
        "{}";
static const char *const multi_want[] = {
        "{\"method\":\"io.tern.Test.Ping\"}",
        "",
        "{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"a\\u00e9b\"}}",
        "{}",
};
/* sizeof includes the final NUL the string literal adds: that terminates the last message. */
#define MULTI_LEN (sizeof(multi_buf))

/* ---- framing ------------------------------------------------------------------------------ */

static void test_one_feed(void **state)
{
        VarlinkWire w;
        Frames f = {};

        varlink_wire_init(&w, 0);
        assert_int_equal(w.max_message, VARLINK_MESSAGE_MAX);
        feed_ok(&w, multi_buf, MULTI_LEN, NULL, 0);
        pull(&w, &f);
        expect_frames("one feed", &f, multi_want, ELEMENTSOF(multi_want));
        assert_int_equal(varlink_wire_pending(&w), 0);
        frames_done(&f);
        varlink_wire_done(&w);
}

static void test_nothing_fed(void **state)
{
        VarlinkWire w;
        VarlinkFrame frame;

        varlink_wire_init(&w, 0);
        assert_int_equal(varlink_wire_next(&w, &frame), 0);
        assert_int_equal(varlink_wire_pending(&w), 0);
        varlink_wire_done(&w);
        /* done twice is harmless */
        varlink_wire_done(&w);
}

static void test_byte_at_a_time(void **state)
{
        VarlinkWire w;
        Frames f = {};
        size_t complete = 0;

        varlink_wire_init(&w, 0);
        for (size_t i = 0; i < MULTI_LEN; i++) {
                feed_ok(&w, multi_buf + i, 1, NULL, 0);
                pull(&w, &f);
                if (multi_buf[i] == '\0')
                        complete++;
                if (f.n != complete)
                        fail_msg("after byte %zu: got %zu frames want %zu", i, f.n, complete);
                /* The pending byte count is exactly what follows the last NUL. */
                size_t last_nul = 0;
                for (size_t j = 0; j <= i; j++)
                        if (multi_buf[j] == '\0')
                                last_nul = j + 1;
                if (varlink_wire_pending(&w) != i + 1 - last_nul)
                        fail_msg("after byte %zu: got %zu pending want %zu", i, varlink_wire_pending(&w),
                                 i + 1 - last_nul);
        }
        expect_frames("byte at a time", &f, multi_want, ELEMENTSOF(multi_want));
        frames_done(&f);
        varlink_wire_done(&w);
}

static void test_split_two(void **state)
{
        for (size_t i = 0; i <= MULTI_LEN; i++) {
                VarlinkWire w;
                Frames f = {};
                char ctx[64];

                varlink_wire_init(&w, 0);
                feed_ok(&w, multi_buf, i, NULL, 0);
                pull(&w, &f);
                feed_ok(&w, multi_buf + i, MULTI_LEN - i, NULL, 0);
                pull(&w, &f);
                snprintf(ctx, sizeof(ctx), "split at %zu", i);
                expect_frames(ctx, &f, multi_want, ELEMENTSOF(multi_want));
                frames_done(&f);
                varlink_wire_done(&w);
        }
}

static void test_split_three(void **state)
{
        for (size_t i = 0; i <= MULTI_LEN; i++)
                for (size_t j = i; j <= MULTI_LEN; j++) {
                        VarlinkWire w;
                        Frames f = {};
                        char ctx[64];

                        varlink_wire_init(&w, 0);
                        feed_ok(&w, multi_buf, i, NULL, 0);
                        pull(&w, &f);
                        feed_ok(&w, multi_buf + i, j - i, NULL, 0);
                        pull(&w, &f);
                        feed_ok(&w, multi_buf + j, MULTI_LEN - j, NULL, 0);
                        pull(&w, &f);
                        snprintf(ctx, sizeof(ctx), "split at %zu and %zu", i, j);
                        expect_frames(ctx, &f, multi_want, ELEMENTSOF(multi_want));
                        frames_done(&f);
                        varlink_wire_done(&w);
                }
}

/* Through varlink_wire_space/commit directly, as varlink.c reads: a buffer that grows and compacts. */
static void test_space_commit_large(void **state)
{
        enum { N_MSG = 300, BODY = 1000 };
        VarlinkWire w;
        size_t produced = 0, got = 0, total;
        char *stream;

        total = (size_t)N_MSG * (BODY + 1);
        stream = malloc(total);
        assert_non_null(stream);
        for (size_t m = 0; m < N_MSG; m++) {
                memset(stream + m * (BODY + 1), 'a' + (int)(m % 26), BODY);
                stream[m * (BODY + 1) + BODY] = '\0';
        }

        varlink_wire_init(&w, 0);
        while (produced < total) {
                char *p;
                size_t size, n;
                VarlinkFrame frame;

                assert_int_equal(varlink_wire_space(&w, 1, &p, &size), 0);
                assert_true(size >= 1);
                /* Odd read sizes, so messages straddle reads. */
                n = MIN(MIN(size, (size_t)7777), total - produced);
                memcpy(p, stream + produced, n);
                assert_int_equal(varlink_wire_commit(&w, n, NULL, 0), 0);
                produced += n;
                while (varlink_wire_next(&w, &frame) == 1) {
                        if (frame.size != BODY || frame.data[0] != 'a' + (int)(got % 26) ||
                            frame.data[BODY - 1] != frame.data[0])
                                fail_msg("message %zu: got %zu bytes starting '%c' want %d bytes of '%c'",
                                         got, frame.size, frame.data[0], BODY, 'a' + (int)(got % 26));
                        got++;
                }
        }
        assert_int_equal(got, N_MSG);
        varlink_wire_done(&w);
        free(stream);
}

/* ---- size limit --------------------------------------------------------------------------- */

typedef struct SizeCase {
        const char *input; /* fed as is, including its NUL(s) (length given) */
        size_t len;
        size_t max_message;
        int want_error;     /* 0 or -EMSGSIZE */
        size_t want_frames; /* frames handed out before the error (or in all) */
} SizeCase;

#define S(x) x, sizeof(x) - 1

static const SizeCase size_cases[] = {
        {S("12345678\0"), 8, 0, 1},          /* exactly the limit */
        {S("123456789\0"), 8, -EMSGSIZE, 0}, /* one over */
        {S("12345678"), 8, 0, 0},            /* at the limit, incomplete: wait */
        {S("123456789"), 8, -EMSGSIZE, 0},   /* one over, incomplete: already hopeless */
        {S("ok\0"
           "123456789\0"),
         8, -EMSGSIZE, 1}, /* the first message still comes out */
        {S("\0"
           "12345678\0"
           "x\0"),
         8, 0, 3},
        {S("1\0"), 1, 0, 1},
        {S("12\0"), 1, -EMSGSIZE, 0},
};

static void test_size_limit(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(size_cases); i++) {
                const SizeCase *t = &size_cases[i];

                for (int bytewise = 0; bytewise <= 1; bytewise++) {
                        VarlinkWire w;
                        Frames f = {};

                        varlink_wire_init(&w, t->max_message);
                        if (bytewise)
                                for (size_t k = 0; k < t->len && f.error == 0; k++) {
                                        feed_ok(&w, t->input + k, 1, NULL, 0);
                                        pull(&w, &f);
                                }
                        else {
                                feed_ok(&w, t->input, t->len, NULL, 0);
                                pull(&w, &f);
                        }
                        if (f.error != t->want_error || f.n != t->want_frames)
                                fail_msg("size case %zu (%s): got error %d and %zu frames want %d and %zu",
                                         i, bytewise ? "bytewise" : "one feed", f.error, f.n, t->want_error,
                                         t->want_frames);
                        /* The error sticks: the connection is beyond repair. */
                        if (t->want_error) {
                                VarlinkFrame frame;
                                assert_int_equal(varlink_wire_next(&w, &frame), t->want_error);
                        }
                        frames_done(&f);
                        varlink_wire_done(&w);
                }
        }
}

static void test_space_limit(void **state)
{
        VarlinkWire w;
        char *p, *big;
        size_t size, n = 200 * 1024;

        /* No buffer beyond one maximal message and one read: feeding more is -EMSGSIZE. */
        varlink_wire_init(&w, 16);
        big = calloc(1, n);
        assert_non_null(big);
        memset(big, 'x', n);
        assert_int_equal(varlink_wire_feed(&w, big, n, NULL, 0), -EMSGSIZE);
        assert_int_equal(varlink_wire_space(&w, n, &p, &size), -EMSGSIZE);
        assert_int_equal(varlink_wire_space(&w, 1, &p, &size), 0);
        varlink_wire_done(&w);
        free(big);
}

/* ---- descriptors -------------------------------------------------------------------------- */

/* Steps fed in order; afterwards the frames must carry exactly the listed fds (by slot). */
typedef struct FdStep {
        const char *bytes;
        size_t len;
        size_t fd_slots[4]; /* indexes into the test's descriptor pool */
        size_t n_fds;
} FdStep;

typedef struct FdCase {
        const char *name;
        FdStep steps[4];
        size_t n_steps;
        const char *want_text[4];
        size_t want_slots[4][4];
        size_t want_n_fds[4];
        size_t n_want;
} FdCase;

static const FdCase fd_cases[] = {
        {"whole message with its fd",
         {{S("{\"a\":1}\0"), {}, 0}, {S("{\"b\":2}\0"), {0}, 1}},
         2,
         {"{\"a\":1}", "{\"b\":2}"},
         {{}, {0}},
         {0, 1},
         2},
        {"read with the tail of one message and the start of the next: the next one owns them",
         {{S("X\0Y"), {0, 1}, 2}, {S("\0"), {}, 0}},
         2,
         {"X", "Y"},
         {{}, {0, 1}},
         {0, 2},
         2},
        {"a message in one read: its own",
         {{S("X\0"), {0}, 1}, {S("Y\0"), {1}, 1}},
         2,
         {"X", "Y"},
         {{0}, {1}},
         {1, 1},
         2},
        {"two messages in one read: the last one starting in it",
         {{S("X\0Y\0"), {0}, 1}},
         1,
         {"X", "Y"},
         {{}, {0}},
         {0, 1},
         2},
        {"a partial message gets batches from several reads, in order",
         {{S("abc"), {0}, 1}, {S("def"), {1, 2}, 2}, {S("\0"), {}, 0}},
         3,
         {"abcdef"},
         {{0, 1, 2}},
         {3},
         1},
        {"fds with the last byte of a message that started earlier",
         {{S("abc"), {}, 0}, {S("\0"), {0}, 1}},
         2,
         {"abc"},
         {{0}},
         {1},
         1},
        {"messages without fds around one with",
         {{S("A\0"), {}, 0}, {S("B"), {3}, 1}, {S("\0C\0"), {}, 0}},
         3,
         {"A", "B", "C"},
         {{}, {3}, {}},
         {0, 1, 0},
         3},
};

static void run_fd_case(const FdCase *t, bool pull_between)
{
        int pool[4];
        VarlinkWire w;
        Frames f = {};

        new_fds(pool, 4);
        varlink_wire_init(&w, 0);
        for (size_t s = 0; s < t->n_steps; s++) {
                int fds[4];

                for (size_t k = 0; k < t->steps[s].n_fds; k++)
                        fds[k] = pool[t->steps[s].fd_slots[k]];
                feed_ok(&w, t->steps[s].bytes, t->steps[s].len, fds, t->steps[s].n_fds);
                if (pull_between)
                        pull(&w, &f);
        }
        pull(&w, &f);
        expect_frames(t->name, &f, t->want_text, t->n_want);
        for (size_t m = 0; m < t->n_want; m++) {
                if (f.n_fds[m] != t->want_n_fds[m])
                        fail_msg("%s: frame %zu: got %zu fds want %zu", t->name, m, f.n_fds[m],
                                 t->want_n_fds[m]);
                for (size_t k = 0; k < f.n_fds[m]; k++) {
                        int want = pool[t->want_slots[m][k]];
                        if (f.fds[m][k] != want)
                                fail_msg("%s: frame %zu fd %zu: got %d want %d", t->name, m, k, f.fds[m][k],
                                         want);
                        pool[t->want_slots[m][k]] = -EBADF; /* owned by the frame now */
                }
        }
        frames_done(&f);
        varlink_wire_done(&w);
        close_many(pool, 4);
}

static void test_fd_binding(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(fd_cases); i++) {
                size_t before = count_open_fds();

                run_fd_case(&fd_cases[i], false);
                run_fd_case(&fd_cases[i], true);
                if (count_open_fds() != before)
                        fail_msg("%s: got %zu open fds after want %zu", fd_cases[i].name, count_open_fds(),
                                 before);
        }
}

static void test_fds_without_bytes(void **state)
{
        VarlinkWire w;
        int fds[2];
        char *p;
        size_t size;

        new_fds(fds, 2);
        varlink_wire_init(&w, 0);
        assert_int_equal(varlink_wire_space(&w, 1, &p, &size), 0);
        assert_int_equal(varlink_wire_commit(&w, 0, fds, 2), -EBADMSG);
        if (fd_is_open(fds[0]) || fd_is_open(fds[1]))
                fail_msg("descriptors without bytes: got them open want closed");
        varlink_wire_done(&w);
}

static void test_too_many_fds(void **state)
{
        int fds[VARLINK_FDS_MAX + 1], more[2];
        VarlinkWire w;
        Frames f = {};

        /* More than one message may carry, in one read. */
        new_fds(fds, VARLINK_FDS_MAX + 1);
        varlink_wire_init(&w, 0);
        assert_int_equal(varlink_wire_feed(&w, "x", 1, fds, VARLINK_FDS_MAX + 1), -E2BIG);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if (fd_is_open(fds[i]))
                        fail_msg("too many fds: got fd %zu open want closed", i);
        varlink_wire_done(&w);

        /* Exactly the limit over two reads is fine; one more is -E2BIG and closes only the new one. */
        new_fds(fds, VARLINK_FDS_MAX);
        new_fds(more, 2);
        varlink_wire_init(&w, 0);
        feed_ok(&w, "ab", 2, fds, VARLINK_FDS_MAX / 2);
        feed_ok(&w, "cd", 2, fds + VARLINK_FDS_MAX / 2, VARLINK_FDS_MAX / 2);
        assert_int_equal(varlink_wire_feed(&w, "e", 1, more, 1), -E2BIG);
        assert_false(fd_is_open(more[0]));
        feed_ok(&w, "\0", 1, NULL, 0);
        pull(&w, &f);
        assert_int_equal(f.n, 1);
        assert_int_equal(f.n_fds[0], VARLINK_FDS_MAX);
        for (size_t i = 0; i < VARLINK_FDS_MAX; i++)
                assert_int_equal(f.fds[0][i], fds[i]);
        frames_done(&f);
        varlink_wire_done(&w);
        safe_close(more[1]);
}

static void test_too_many_batches(void **state)
{
        int fds[VARLINK_FD_BATCHES_MAX + 1];
        VarlinkWire w;
        Frames f = {};
        size_t before = count_open_fds();

        new_fds(fds, ELEMENTSOF(fds));
        varlink_wire_init(&w, 0);
        /* Each message owns one batch; none is pulled yet. */
        for (size_t i = 0; i < VARLINK_FD_BATCHES_MAX; i++)
                feed_ok(&w, "m\0", 2, &fds[i], 1);
        assert_int_equal(varlink_wire_feed(&w, "m\0", 2, &fds[VARLINK_FD_BATCHES_MAX], 1), -E2BIG);
        assert_false(fd_is_open(fds[VARLINK_FD_BATCHES_MAX]));
        pull(&w, &f);
        assert_int_equal(f.n, VARLINK_FD_BATCHES_MAX + 1);
        for (size_t i = 0; i < VARLINK_FD_BATCHES_MAX; i++) {
                assert_int_equal(f.n_fds[i], 1);
                assert_int_equal(f.fds[i][0], fds[i]);
        }
        assert_int_equal(f.n_fds[VARLINK_FD_BATCHES_MAX], 0);
        frames_done(&f);
        varlink_wire_done(&w);
        assert_int_equal(count_open_fds(), before);
}

static void test_done_closes_pending(void **state)
{
        size_t before = count_open_fds(), with;
        int fds[5];
        VarlinkWire w;

        new_fds(fds, 5);
        with = count_open_fds();
        assert_int_equal(with, before + 5);
        varlink_wire_init(&w, 0);
        feed_ok(&w, "{\"partial\":", 11, fds, 3); /* a message never completed */
        feed_ok(&w, "1}\0{\"x\"", 7, fds + 3, 2); /* the next one, also incomplete */
        varlink_wire_done(&w);
        if (count_open_fds() != before)
                fail_msg("varlink_wire_done: got %zu open fds want %zu", count_open_fds(), before);

        /* A batch whose message was never pulled is closed too. */
        new_fds(fds, 1);
        varlink_wire_init(&w, 0);
        feed_ok(&w, "{}\0", 3, fds, 1);
        varlink_wire_done(&w);
        assert_false(fd_is_open(fds[0]));
        assert_int_equal(count_open_fds(), before);
}

/* ---- decoding ----------------------------------------------------------------------------- */

typedef struct ParseCase {
        const char *text;
        size_t len;         /* 0: strlen */
        int want;           /* 0 or -EBADMSG */
        const char *reason; /* substring of the reason on failure */
        const char *method; /* calls: expected method / replies: expected error (NULL: none) */
        bool more, oneway, continues;
        const char *parameters; /* expected parameters as JSON text */
} ParseCase;

static const ParseCase call_cases[] = {
        {"{\"method\":\"io.tern.Test.Ping\"}", 0, 0, NULL, "io.tern.Test.Ping", false, false, false, "{}"},
        {"{\"method\":\"io.tern.Test.Ping\",\"parameters\":null}", 0, 0, NULL, "io.tern.Test.Ping",
         .parameters = "{}"},
        {"{\"method\":\"a.b.C\",\"parameters\":{\"x\":1},\"more\":true}", 0, 0, NULL, "a.b.C", true, false,
         false, "{\"x\":1}"},
        {"{\"method\":\"a.b.C\",\"oneway\":true}", 0, 0, NULL, "a.b.C", false, true, false, "{}"},
        {"{\"method\":\"a.b.C\",\"more\":false,\"oneway\":true}", 0, 0, NULL, "a.b.C", false, true, false,
         "{}"},
        {"{\"method\":\"a.b.C\",\"more\":null}", 0, 0, NULL, "a.b.C", .parameters = "{}"},
        {"{\"method\":\"a.b.C\",\"future\":{\"x\":[1]}}", 0, 0, NULL, "a.b.C", .parameters = "{}"},
        {" \n{\"parameters\":{\"a\":\"\\u00e9\"},\"method\":\"a-1.b2.C3\"} \n", 0, 0, NULL, "a-1.b2.C3",
         .parameters = "{\"a\":\"\\u00e9\"}"},
        /* not JSON */
        {"", 0, -EBADMSG, "not valid JSON"},
        {"not json", 0, -EBADMSG, "not valid JSON"},
        {"{\"method\":\"a.b.C\"", 0, -EBADMSG, "not valid JSON"},
        {"{\"method\":\"a.b.C\"} x", 0, -EBADMSG, "not valid JSON"},
        {"{}{}", 0, -EBADMSG, "not valid JSON"},
        {"{\"method\":\"a.b.C\"}\0{}", 21, -EBADMSG, "not valid JSON"},
        {"\"io.tern.Test.Ping\"", 0, -EBADMSG, "JSON"},
        /* not an object */
        {"[{\"method\":\"a.b.C\"}]", 0, -EBADMSG, "not a JSON object"},
        /* bad UTF-8, in a value and in a key */
        {"{\"method\":\"a.b.C\",\"parameters\":{\"x\":\"\xff\"}}", 0, -EBADMSG, "not valid JSON"},
        {"{\"method\":\"a.b.C\",\"parameters\":{\"\xc3\x28\":1}}", 0, -EBADMSG, "not valid JSON"},
        {"{\"method\":\"a.b.C\",\"parameters\":{\"x\":\"\\ud800\"}}", 0, -EBADMSG, "not valid JSON"},
        /* duplicate keys, at the top and inside parameters */
        {"{\"method\":\"a.b.C\",\"method\":\"a.b.D\"}", 0, -EBADMSG, "not valid JSON"},
        {"{\"method\":\"a.b.C\",\"parameters\":{\"x\":1,\"x\":2}}", 0, -EBADMSG, "not valid JSON"},
        /* method */
        {"{}", 0, -EBADMSG, "\"method\" is missing or not a string"},
        {"{\"parameters\":{}}", 0, -EBADMSG, "\"method\" is missing"},
        {"{\"method\":5}", 0, -EBADMSG, "\"method\" is missing or not a string"},
        {"{\"method\":null}", 0, -EBADMSG, "\"method\" is missing or not a string"},
        {"{\"method\":[\"a.b.C\"]}", 0, -EBADMSG, "\"method\" is missing or not a string"},
        {"{\"method\":\"Ping\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"a.Ping\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"io.tern.Test.ping\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"io.tern.Test.\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\".Ping\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"io..tern.Ping\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"io.tern.Test.Pi-ng\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"io.tern.Test.Pi_ng\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"-io.tern.Ping\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"1io.tern.Ping\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        {"{\"method\":\"io.tern .Ping\"}", 0, -EBADMSG, "not a valid interface.Method name"},
        /* an embedded NUL: jansson refuses \u0000 without JSON_ALLOW_NUL */
        {"{\"method\":\"io.tern.Test.Ping\\u0000x\"}", 0, -EBADMSG, NULL},
        {"{\"method\":\"io.tern\\u0000.Test.Ping\"}", 0, -EBADMSG, NULL},
        /* parameters */
        {"{\"method\":\"a.b.C\",\"parameters\":[]}", 0, -EBADMSG, "\"parameters\" is not an object"},
        {"{\"method\":\"a.b.C\",\"parameters\":\"x\"}", 0, -EBADMSG, "\"parameters\" is not an object"},
        {"{\"method\":\"a.b.C\",\"parameters\":1}", 0, -EBADMSG, "\"parameters\" is not an object"},
        {"{\"method\":\"a.b.C\",\"parameters\":false}", 0, -EBADMSG, "\"parameters\" is not an object"},
        /* flags */
        {"{\"method\":\"a.b.C\",\"more\":\"yes\"}", 0, -EBADMSG, "is not a boolean"},
        {"{\"method\":\"a.b.C\",\"more\":1}", 0, -EBADMSG, "is not a boolean"},
        {"{\"method\":\"a.b.C\",\"oneway\":1}", 0, -EBADMSG, "is not a boolean"},
        {"{\"method\":\"a.b.C\",\"oneway\":{}}", 0, -EBADMSG, "is not a boolean"},
        {"{\"method\":\"a.b.C\",\"upgrade\":\"true\"}", 0, -EBADMSG, "is not a boolean"},
        {"{\"method\":\"a.b.C\",\"more\":true,\"oneway\":true}", 0, -EBADMSG, "exclude each other"},
        {"{\"method\":\"a.b.C\",\"more\":true,\"upgrade\":true}", 0, -EBADMSG, "exclude each other"},
        {"{\"method\":\"a.b.C\",\"oneway\":true,\"upgrade\":true}", 0, -EBADMSG, "exclude each other"},
};

static const ParseCase reply_cases[] = {
        {"{}", 0, 0, NULL, NULL, .parameters = "{}"},
        {"{\"parameters\":{\"a\":[1,2]}}", 0, 0, NULL, NULL, .parameters = "{\"a\":[1,2]}"},
        {"{\"parameters\":{},\"continues\":true}", 0, 0, NULL, NULL, .continues = true, .parameters = "{}"},
        {"{\"continues\":false,\"error\":null}", 0, 0, NULL, NULL, .parameters = "{}"},
        {"{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"a.b.C\"}}", 0, 0,
         NULL, "org.varlink.service.MethodNotFound", .parameters = "{\"method\":\"a.b.C\"}"},
        {"{\"error\":\"io.tern.Test.Failed\"}", 0, 0, NULL, "io.tern.Test.Failed", .parameters = "{}"},
        {"{\"error\":\"io.tern.Test.Failed\",\"continues\":false}", 0, 0, NULL, "io.tern.Test.Failed",
         .parameters = "{}"},
        {"oops", 0, -EBADMSG, "not valid JSON"},
        {"", 0, -EBADMSG, "not valid JSON"},
        {"[]", 0, -EBADMSG, "not a JSON object"},
        {"{\"parameters\":[]}", 0, -EBADMSG, "\"parameters\" is not an object"},
        {"{\"parameters\":{\"x\":\"\xfe\"}}", 0, -EBADMSG, "not valid JSON"},
        {"{\"error\":5}", 0, -EBADMSG, "not a valid interface.Error name"},
        {"{\"error\":\"\"}", 0, -EBADMSG, "not a valid interface.Error name"},
        {"{\"error\":\"Failed\"}", 0, -EBADMSG, "not a valid interface.Error name"},
        {"{\"error\":\"io.tern.Test.failed\"}", 0, -EBADMSG, "not a valid interface.Error name"},
        {"{\"error\":\"io.tern.Test.Failed\",\"error\":\"a.b.C\"}", 0, -EBADMSG, "not valid JSON"},
        {"{\"continues\":\"yes\"}", 0, -EBADMSG, "\"continues\" is not a boolean"},
        {"{\"continues\":1}", 0, -EBADMSG, "\"continues\" is not a boolean"},
        {"{\"error\":\"io.tern.Test.Failed\",\"continues\":true}", 0, -EBADMSG, "an error cannot continue"},
};

static void check_parse(const char *kind, size_t i, const ParseCase *t, bool call)
{
        size_t len = t->len ? t->len : strlen(t->text);
        VarlinkMessage m = {};
        const char *reason = NULL;
        int r;

        r = call ? varlink_message_parse_call(t->text, len, &m, &reason)
                 : varlink_message_parse_reply(t->text, len, &m, &reason);
        if (r != t->want)
                fail_msg("%s case %zu %s: got %d (%s) want %d", kind, i, t->text, r, strna(reason), t->want);
        if (r < 0) {
                if (!reason)
                        fail_msg("%s case %zu %s: got no reason want one", kind, i, t->text);
                if (t->reason && !strstr(reason, t->reason))
                        fail_msg("%s case %zu %s: got reason \"%s\" want one containing \"%s\"", kind, i,
                                 t->text, reason, t->reason);
                assert_null(m.root);
                /* No reason wanted: also fine to pass NULL. */
                r = call ? varlink_message_parse_call(t->text, len, &m, NULL)
                         : varlink_message_parse_reply(t->text, len, &m, NULL);
                assert_int_equal(r, t->want);
                return;
        }

        const char *got_name = call ? m.method : m.error;
        if (!streq(strempty(got_name), strempty(t->method)))
                fail_msg("%s case %zu %s: got name \"%s\" want \"%s\"", kind, i, t->text, strna(got_name),
                         strna(t->method));
        if (call && (m.more != t->more || m.oneway != t->oneway))
                fail_msg("%s case %zu %s: got more=%d oneway=%d want %d %d", kind, i, t->text, m.more,
                         m.oneway, t->more, t->oneway);
        if (!call && m.continues != t->continues)
                fail_msg("%s case %zu %s: got continues=%d want %d", kind, i, t->text, m.continues,
                         t->continues);
        assert_non_null(m.parameters);
        {
                json_t *want = json_loads(t->parameters, 0, NULL);
                char *got = json_dumps(m.parameters, JSON_COMPACT);

                assert_non_null(want);
                if (!json_equal(want, m.parameters))
                        fail_msg("%s case %zu %s: got parameters %s want %s", kind, i, t->text, got,
                                 t->parameters);
                free(got);
                json_decref(want);
        }
        varlink_message_done(&m);
        assert_null(m.root);
        varlink_message_done(&m); /* twice is harmless */
}

static void test_parse_call(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(call_cases); i++)
                check_parse("call", i, &call_cases[i], true);
}

static void test_parse_reply(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(reply_cases); i++)
                check_parse("reply", i, &reply_cases[i], false);
}

/* The frame text is parsed with its size: bytes beyond it are not looked at. */
static void test_parse_uses_size(void **state)
{
        static const char text[] = "{\"method\":\"a.b.C\"}garbage";
        VarlinkMessage m;

        assert_int_equal(varlink_message_parse_call(text, strlen("{\"method\":\"a.b.C\"}"), &m, NULL), 0);
        assert_string_equal(m.method, "a.b.C");
        varlink_message_done(&m);
}

/* ---- names -------------------------------------------------------------------------------- */

typedef struct NameCase {
        const char *name;
        bool valid;
} NameCase;

static const NameCase interface_names[] = {
        {"io.tern.Test", true}, {"org.varlink.service", true},
        {"a.b", true},          {"a.1", true},
        {"a-b.c", true},        {"a--b.c-d", true},
        {"A.B.C", true},        {"a.b1.c2d3", true},
        {NULL, false},          {"", false},
        {"a", false},           {"io", false},
        {"a.", false},          {".a", false},
        {"a..b", false},        {"1a.b", false},
        {"-a.b", false},        {"a-.b", false},
        {"a.-b", false},        {"a.b-", false},
        {"a.b_c", false},       {"a.b c", false},
        {"a.b/c", false},       {"a.b\xc3\xa9", false},
};

static const NameCase member_names[] = {
        {"Ping", true},   {"P", true},       {"GetInterfaceDescription", true},
        {"A1b2", true},   {"ABC", true},     {NULL, false},
        {"", false},      {"ping", false},   {"1Ping", false},
        {"Pi-ng", false}, {"Pi_ng", false},  {"Pi.ng", false},
        {"Pi ng", false}, {"Ping\n", false},
};

static void test_interface_names(void **state)
{
        char long_name[300];

        for (size_t i = 0; i < ELEMENTSOF(interface_names); i++)
                if (varlink_interface_name_valid(interface_names[i].name) != interface_names[i].valid)
                        fail_msg("interface name \"%s\": got %s want %s", strna(interface_names[i].name),
                                 interface_names[i].valid ? "invalid" : "valid",
                                 interface_names[i].valid ? "valid" : "invalid");
        /* 255 characters at most */
        memset(long_name, 'a', sizeof(long_name));
        long_name[1] = '.';
        long_name[255] = '\0';
        assert_true(varlink_interface_name_valid(long_name));
        long_name[255] = 'a';
        long_name[256] = '\0';
        assert_false(varlink_interface_name_valid(long_name));
}

static void test_member_names(void **state)
{
        char long_name[300];

        for (size_t i = 0; i < ELEMENTSOF(member_names); i++)
                if (varlink_member_name_valid(member_names[i].name) != member_names[i].valid)
                        fail_msg("member name \"%s\": got %s want %s", strna(member_names[i].name),
                                 member_names[i].valid ? "invalid" : "valid",
                                 member_names[i].valid ? "valid" : "invalid");
        memset(long_name, 'A', sizeof(long_name));
        long_name[255] = '\0';
        assert_true(varlink_member_name_valid(long_name));
        long_name[255] = 'A';
        long_name[256] = '\0';
        assert_false(varlink_member_name_valid(long_name));
}

static void test_method_split(void **state)
{
        static const struct {
                const char *method;
                int want;
                size_t want_len;
        } cases[] = {
                {"io.tern.Test.Ping", 0, 12},
                {"org.varlink.service.GetInfo", 0, 19},
                {"a.b.C", 0, 3},
                {NULL, -EINVAL, 0},
                {"", -EINVAL, 0},
                {"Ping", -EINVAL, 0},
                {"a.Ping", -EINVAL, 0},
                {"a.b.ping", -EINVAL, 0},
                {"a.b.", -EINVAL, 0},
                {".Ping", -EINVAL, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = 999;
                int r = varlink_method_split(cases[i].method, &len);

                if (r != cases[i].want)
                        fail_msg("split \"%s\": got %d want %d", strna(cases[i].method), r, cases[i].want);
                if (r == 0 && len != cases[i].want_len)
                        fail_msg("split \"%s\": got length %zu want %zu", cases[i].method, len,
                                 cases[i].want_len);
                if (r < 0 && len != 999)
                        fail_msg("split \"%s\": failed but wrote its output", strna(cases[i].method));
        }
}

/* ---- encoding ----------------------------------------------------------------------------- */

static void test_encode_round_trip(void **state)
{
        static const struct {
                const char *json;
                const char *want; /* the compact text */
        } cases[] = {
                {"{\"method\": \"io.tern.Test.Ping\"}", "{\"method\":\"io.tern.Test.Ping\"}"},
                {"{\"method\":\"a.b.C\",\"parameters\":{\"s\":\"\\u00e9\\n\\\"\",\"n\":-5,\"f\":1.5,\"a\":["
                 "true,null]},\"more\":true}",
                 NULL},
                {"{\"parameters\":{},\"continues\":true}", "{\"parameters\":{},\"continues\":true}"},
                {"{\"error\":\"io.tern.Test.Failed\",\"parameters\":{\"reason\":\"x y\"}}", NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *obj = json_loads(cases[i].json, 0, NULL), *back;
                char *text = NULL;
                size_t size = 0;

                assert_non_null(obj);
                assert_int_equal(varlink_message_encode(obj, &text, &size), 0);
                if (size != strlen(text) + 1 || text[size - 1] != '\0')
                        fail_msg("encode %zu: got size %zu for %zu characters want characters + 1 (the NUL)",
                                 i, size, strlen(text));
                if (cases[i].want && !streq(text, cases[i].want))
                        fail_msg("encode %zu: got %s want %s", i, text, cases[i].want);
                if (strchr(text, '\n'))
                        fail_msg("encode %zu: got a newline in %s want compact text", i, text);

                /* Framed and decoded again: the same object. */
                {
                        VarlinkWire w;
                        VarlinkFrame frame;

                        varlink_wire_init(&w, 0);
                        feed_ok(&w, text, size, NULL, 0);
                        assert_int_equal(varlink_wire_next(&w, &frame), 1);
                        assert_int_equal(frame.size, size - 1);
                        back = json_loadb(frame.data, frame.size, JSON_REJECT_DUPLICATES, NULL);
                        assert_non_null(back);
                        if (!json_equal(obj, back))
                                fail_msg("encode %zu: round trip got %s want %s", i, frame.data,
                                         cases[i].json);
                        json_decref(back);
                        varlink_wire_done(&w);
                }
                free(text);
                json_decref(obj);
        }
}

static void test_encode_too_big(void **state)
{
        size_t n = VARLINK_MESSAGE_MAX + 1;
        char *big = malloc(n + 1), *text = (char *)"untouched";
        json_t *obj;
        size_t size = 0;

        assert_non_null(big);
        memset(big, 'x', n);
        big[n] = '\0';
        obj = json_pack("{s:s}", "x", big);
        assert_non_null(obj);
        assert_int_equal(varlink_message_encode(obj, &text, &size), -EMSGSIZE);
        assert_string_equal(text, "untouched");
        json_decref(obj);
        free(big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_one_feed),
                cmocka_unit_test(test_nothing_fed),
                cmocka_unit_test(test_byte_at_a_time),
                cmocka_unit_test(test_split_two),
                cmocka_unit_test(test_split_three),
                cmocka_unit_test(test_space_commit_large),
                cmocka_unit_test(test_size_limit),
                cmocka_unit_test(test_space_limit),
                cmocka_unit_test(test_fd_binding),
                cmocka_unit_test(test_fds_without_bytes),
                cmocka_unit_test(test_too_many_fds),
                cmocka_unit_test(test_too_many_batches),
                cmocka_unit_test(test_done_closes_pending),
                cmocka_unit_test(test_parse_call),
                cmocka_unit_test(test_parse_reply),
                cmocka_unit_test(test_parse_uses_size),
                cmocka_unit_test(test_interface_names),
                cmocka_unit_test(test_member_names),
                cmocka_unit_test(test_method_split),
                cmocka_unit_test(test_encode_round_trip),
                cmocka_unit_test(test_encode_too_big),
        };

        return cmocka_run_group_tests_name("varlink-wire", tests, NULL, NULL);
}
