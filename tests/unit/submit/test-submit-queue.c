/* SPDX-License-Identifier: MIT */
/*
 * test-submit-queue.c - src/submit/submit-queue.c in process: descriptor kinds, the outcome of
 * each kind of bad input, group commit of several submissions, the alive check, and
 * authorized_submit_users matching. A temporary spool; one sd_event loop driven until the
 * callbacks have run (no sleeps).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>

#include "conf.h"
#include "macro.h"
#include "queue-store.h"
#include "submit-queue.h"
#include "test-util.h"

/* Longest a test waits for its callbacks (it never sleeps: it runs the loop). */
#define WAIT_MAX_USEC (10 * USEC_PER_SEC)

typedef struct Outcome {
        int error;
        bool called;
        char id[QUEUE_ID_MAX];
        char text[256];
        bool alive;                     /* what the alive callback answers */
} Outcome;

typedef struct Fixture {
        char dir[64];
        Conf *conf;
        sd_event *event;
        Submitter *submitter;
} Fixture;

static void on_done(Submission *sub, int error, void *userdata)
{
        Outcome *o = userdata;

        o->called = true;
        o->error = error;
        snprintf(o->id, sizeof(o->id), "%s", submission_queue_id(sub));
        snprintf(o->text, sizeof(o->text), "%s", submission_error(sub));
}

static bool on_alive(void *userdata)
{
        return ((Outcome *) userdata)->alive;
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));
        char cf[4096];
        _cleanup_(freep) char *error = NULL;

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-submit.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(cf, sizeof(cf),
                 "queue_directory = %s\nruntime_directory = %s\nmyhostname = relay.tern.test\n"
                 "myorigin = tern.test\nmessage_size_limit = 2000\nsmtpd_recipient_limit = 3\nipc_timeout = "
                 "1s\n",
                 f->dir, f->dir);
        assert_int_equal(conf_load_string(cf, strlen(cf), "main.cf", "submit", &f->conf, &error), 0);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(submitter_new(f->event, f->conf, &f->submitter), 0);
        *state = f;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int teardown(void **state)
{
        Fixture *f = *state;

        submitter_free(f->submitter);
        sd_event_unref(f->event);
        conf_free(f->conf);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* memfd_with - a memfd holding TEXT (its offset at the end, as a client leaves it) */
static int memfd_with(const char *text, size_t n)
{
        int fd = memfd_create("test", MFD_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, n), (ssize_t) n);
        return fd;
}

static void run_until_called(Fixture *f, Outcome *const *v, size_t n)
{
        struct timespec ts;
        uint64_t deadline;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        deadline = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000 + WAIT_MAX_USEC;
        for (;;) {
                bool all = true;
                for (size_t i = 0; i < n; i++)
                        all = all && v[i]->called;
                if (all)
                        return;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                if ((uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000 > deadline)
                        fail_msg("timed out waiting for the submission callbacks");
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
}

static Outcome submit(Fixture *f, const char *sender, const char *const *rcpts, size_t n_rcpts, int fd,
                      int64_t size, bool extract)
{
        SubmissionRequest req = {.sender = sender,
                                 .recipients = rcpts,
                                 .n_recipients = n_rcpts,
                                 .size = size,
                                 .extract_recipients = extract,
                                 .uid = getuid(),
                                 .gid = getgid(),
                                 .pid = getpid()};
        Outcome o = { .alive = true }, *p = &o;
        Submission *sub;

        assert_int_equal(submission_start(f->submitter, &req, fd, on_done, on_alive, &o, &sub), 0);
        run_until_called(f, &p, 1);
        return o;
}

/* incoming_files - queue files (not temporary names) in incoming */
static size_t incoming_entries(Fixture *f, size_t *ret_temp)
{
        char path[128];
        DIR *d;
        struct dirent *de;
        size_t n = 0, temp = 0;

        snprintf(path, sizeof(path), "%s/incoming", f->dir);
        d = opendir(path);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        if (queue_id_valid(de->d_name))
                                n++;
                        else
                                temp++;
                }
        closedir(d);
        if (ret_temp)
                *ret_temp = temp;
        return n;
}

static void test_memfd_is_queued(void **state)
{
        Fixture *f = *state;
        static const char msg[] = "Subject: test\n\nbody\n";
        const char *rcpts[] = { "user@example.test", "bare" };
        char path[256];
        struct stat st;
        size_t temp;
        Outcome o;

        o = submit(f, "sender", rcpts, 2, memfd_with(msg, strlen(msg)), (int64_t) strlen(msg), false);
        if (o.error != 0)
                fail_msg("got error %d (%s), want a queued message", o.error, o.text);
        assert_true(queue_id_valid(o.id));
        snprintf(path, sizeof(path), "%s/incoming/%s", f->dir, o.id);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(incoming_entries(f, &temp), 1);
        assert_int_equal(temp, 0);
}

static void test_pipe_is_queued(void **state)
{
        Fixture *f = *state;
        static const char msg[] = "Subject: via a pipe\n\nbody\n";
        const char *rcpts[] = { "user@example.test" };
        int p[2];
        Outcome o;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], msg, strlen(msg)), (ssize_t) strlen(msg));
        safe_close(p[1]);
        o = submit(f, "sender@example.test", rcpts, 1, p[0], (int64_t) strlen(msg), false);
        if (o.error != 0)
                fail_msg("got error %d (%s), want a queued message", o.error, o.text);
        assert_int_equal(incoming_entries(f, NULL), 1);

        /* without its size a pipe is refused: its end cannot tell a whole message from half */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], msg, strlen(msg)), (ssize_t) strlen(msg));
        safe_close(p[1]);
        o = submit(f, "sender@example.test", rcpts, 1, p[0], -1, false);
        assert_int_equal(o.error, -ESPIPE);
        assert_int_equal(incoming_entries(f, NULL), 1);
}

static void test_refusals_queue_nothing(void **state)
{
        Fixture *f = *state;
        static const char ok[] = "Subject: x\n\nbody\n";
        static const char nul[] = "Subject: x\n\nbo\0dy\n";
        char big[3000];
        const char *one[] = { "user@example.test" };
        const char *four[] = { "a@example.test", "b@example.test", "c@example.test", "d@example.test" };
        const char *bad[] = { "not an address@" };
        int p[2], wo;
        Outcome o;

        memset(big, 'x', sizeof(big));
        big[sizeof(big) - 1] = '\n';

        o = submit(f, "s", one, 1, memfd_with(nul, sizeof(nul) - 1), -1, false);
        assert_int_equal(o.error, -EBADMSG);
        o = submit(f, "s", one, 1, memfd_with(big, sizeof(big)), -1, false);
        assert_int_equal(o.error, -EFBIG);
        o = submit(f, "s", four, 4, memfd_with(ok, strlen(ok)), -1, false);
        assert_int_equal(o.error, -E2BIG);
        o = submit(f, "s", bad, 1, memfd_with(ok, strlen(ok)), -1, false);
        assert_int_equal(o.error, -EINVAL);
        o = submit(f, "s", NULL, 0, memfd_with(ok, strlen(ok)), -1, false);
        assert_int_equal(o.error, -ENOMSG);
        /* promised more than the descriptor holds */
        o = submit(f, "s", one, 1, memfd_with(ok, strlen(ok)), (int64_t) strlen(ok) + 10, false);
        assert_int_equal(o.error, -EPIPE);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], ok, 4), 4);
        safe_close(p[1]);
        o = submit(f, "s", one, 1, p[0], (int64_t) strlen(ok), false);
        assert_int_equal(o.error, -EPIPE);
        /* a descriptor not open for reading */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        safe_close(p[0]);
        wo = p[1];
        o = submit(f, "s", one, 1, wo, -1, false);
        assert_int_equal(o.error, -EBADF);
        /* a pipe that stays silent: ipc_timeout (1 s here) */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        o = submit(f, "s", one, 1, p[0], (int64_t) strlen(ok), false);
        assert_int_equal(o.error, -ETIMEDOUT);
        safe_close(p[1]);

        size_t temp;
        assert_int_equal(incoming_entries(f, &temp), 0);
        assert_int_equal(temp, 0);
}

static void test_group_commit_and_alive(void **state)
{
        Fixture *f = *state;
        static const char msg[] = "Subject: batch\n\nbody\n";
        const char *one[] = { "user@example.test" };
        Outcome o[8], *v[8];
        uint64_t messages, batches, syncs;

        for (size_t i = 0; i < 8; i++) {
                SubmissionRequest req = { .sender = "s", .recipients = one, .n_recipients = 1, .size = -1,
                                          .uid = getuid() };
                Submission *sub;

                o[i] = (Outcome){ .alive = i != 3 };    /* the fourth client has left */
                v[i] = &o[i];
                assert_int_equal(submission_start(f->submitter, &req, memfd_with(msg, strlen(msg)), on_done,
                                                  on_alive, &o[i], &sub),
                                 0);
        }
        run_until_called(f, v, 8);
        for (size_t i = 0; i < 8; i++)
                if (o[i].error != (i == 3 ? -ECONNRESET : 0))
                        fail_msg("submission %zu: got %d want %d", i, o[i].error, i == 3 ? -ECONNRESET : 0);
        submitter_stats(f->submitter, &messages, &batches, &syncs);
        assert_int_equal(messages, 7);
        /* all eight finished reading before the idle-priority commit ran: one batch */
        if (batches != 1)
                fail_msg("got %llu batches for 8 simultaneous submissions, want 1",
                         (unsigned long long) batches);
        assert_int_equal(incoming_entries(f, NULL), 7);
}

static void test_authorized_users(void **state)
{
        static const struct {
                const char *list[4];
                const char *user;
                bool want;
        } cases[] = {
                { { "static:anyone" }, "alice", true },
                { { "!alice", "static:anyone" }, "alice", false },
                { { "!alice", "static:anyone" }, "bob", true },
                { { "alice", "bob" }, "bob", true },
                { { "alice", "bob" }, "carol", false },
                { { NULL }, "alice", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool got = conf_user_listed((char *const *) cases[i].list, cases[i].user);
                if (got != cases[i].want)
                        fail_msg("case %zu (%s): got %d want %d", i, cases[i].user, got, cases[i].want);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_memfd_is_queued, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pipe_is_queued, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refusals_queue_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_commit_and_alive, setup, teardown),
                cmocka_unit_test(test_authorized_users),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
