/* SPDX-License-Identifier: MIT */
/*
 * test-log.c - the text of log lines (src/lib/log.c)
 *
 * Covers, through log_set_sink(): info lines bare, the tier prefixes "warning: ", "error: ",
 * "fatal: ", "panic: " (and "debug: " only when verbose), %m with the error given (not errno),
 * the return value -abs(error), errno kept, TERN_* fields passed through untouched, truncation
 * of over-long lines with "..." at the exact boundary, the identifier from log_open(). Through
 * fd 2 redirected to a temporary file: the stderr format "tern/testd: warning: text\n", compared
 * byte for byte with the golden file tests/unit/lib/golden/log.ref. log_fatal() and log_panic()
 * run in forked children: exit status 1 and SIGABRT.
 *
 * Limits: the journal target is not exercised here (no journald in the build environment);
 * the integration tests read the journal.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-util.h"

#include "log.h"
#include "macro.h"

#ifndef TERN_SOURCE_ROOT
#error "TERN_SOURCE_ROOT must be defined"
#endif

#define LINES_MAX 16
#define FIELDS_MAX 8

/* What the sink saw. */
typedef struct Captured {
        int priority[LINES_MAX];
        char *message[LINES_MAX];
        char *fields[LINES_MAX][FIELDS_MAX];
        size_t n_fields[LINES_MAX];
        bool fields_null[LINES_MAX];
        size_t n;
} Captured;

static void capture_sink(int priority, const char *message, const char *const *fields, void *userdata)
{
        Captured *c = userdata;
        size_t i = c->n++;

        assert_true(i < LINES_MAX);
        c->priority[i] = priority;
        c->message[i] = strdup(message);
        c->fields_null[i] = !fields;
        for (size_t k = 0; fields && fields[k]; k++) {
                assert_true(k < FIELDS_MAX);
                c->fields[i][k] = strdup(fields[k]);
                c->n_fields[i]++;
        }
}

static void captured_done(Captured *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->message[i]);
                for (size_t k = 0; k < c->n_fields[i]; k++)
                        free(c->fields[i][k]);
        }
        *c = (Captured){};
}

static int setup(void **state)
{
        Captured *c = calloc(1, sizeof(*c));

        if (!c)
                return -1;
        setenv("TERN_LOG", "stderr", 1);
        log_open("tern", "testd", LOG_TARGET_STDERR);
        log_set_verbose(0);
        log_set_sink(capture_sink, c);
        *state = c;
        return 0;
}

static int teardown(void **state)
{
        log_set_sink(NULL, NULL);
        log_set_verbose(0);
        captured_done(*state);
        free(*state);
        return 0;
}

/* Redirect fd 2 into a fresh memfd; returns the saved stderr. */
static int stderr_capture_begin(int *ret_memfd)
{
        int saved, m;

        fflush(stderr);
        m = memfd_create("log", MFD_CLOEXEC);
        assert_true(m >= 0);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_int_equal(dup2(m, STDERR_FILENO), STDERR_FILENO);
        *ret_memfd = m;
        return saved;
}

/* Restore fd 2 and return what was written (malloc'ed, NUL-terminated). */
static char *stderr_capture_end(int saved, int m)
{
        char *buf;
        off_t size;

        assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        safe_close(saved);
        size = lseek(m, 0, SEEK_END);
        assert_true(size >= 0);
        buf = calloc(1, (size_t)size + 1);
        assert_non_null(buf);
        assert_int_equal(pread(m, buf, (size_t)size, 0), size);
        safe_close(m);
        return buf;
}

/* ---- the sink ------------------------------------------------------------------------------- */

static void test_tiers(void **state)
{
        Captured *c = *state;
        static const struct {
                int priority;
                const char *want;
        } want[] = {
                {LOG_INFO, "plain text 1"},
                {LOG_WARNING, "warning: plain text 2"},
                {LOG_ERR, "error: plain text 3"},
                {LOG_NOTICE, "plain text 4"},
        };

        log_info("plain text %d", 1);
        log_warning("plain text %d", 2);
        log_error("plain text %d", 3);
        log_full_errno(LOG_NOTICE, 0, NULL, "plain text %d", 4);
        log_debug("not shown %d", 5); /* verbose 0: nothing */
        assert_int_equal(c->n, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                if (c->priority[i] != want[i].priority || !streq(c->message[i], want[i].want))
                        fail_msg("line %zu: got <%d>\"%s\" want <%d>\"%s\"", i, c->priority[i],
                                 c->message[i], want[i].priority, want[i].want);
                assert_true(c->fields_null[i]);
        }

        log_set_verbose(1);
        log_debug("shown %d", 6);
        assert_int_equal(c->n, ELEMENTSOF(want) + 1);
        assert_int_equal(c->priority[c->n - 1], LOG_DEBUG);
        assert_string_equal(c->message[c->n - 1], "debug: shown 6");
}

static void test_errno(void **state)
{
        Captured *c = *state;
        static const struct {
                int error;
                int priority;
                const char *want;
        } cases[] = {
                {ENOENT, LOG_ERR, "error: open /x: No such file or directory"},
                {-ENOENT, LOG_ERR, "error: open /x: No such file or directory"},
                {EACCES, LOG_WARNING, "warning: open /x: Permission denied"},
                {-ECONNREFUSED, LOG_INFO, "open /x: Connection refused"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r;

                errno = 1234; /* %m must use the error given, and errno must survive */
                r = log_full_errno(cases[i].priority, cases[i].error, NULL, "open %s: %m", "/x");
                if (errno != 1234)
                        fail_msg("case %zu: got errno %d after logging want 1234", i, errno);
                if (r != -abs(cases[i].error))
                        fail_msg("case %zu: got return %d want %d", i, r, -abs(cases[i].error));
                if (!streq(c->message[c->n - 1], cases[i].want))
                        fail_msg("case %zu: got \"%s\" want \"%s\"", i, c->message[c->n - 1], cases[i].want);
        }
        /* The macros return -abs(error), so "return log_error_errno(r, ...)" works. */
        assert_int_equal(log_error_errno(EIO, "x"), -EIO);
        assert_int_equal(log_warning_errno(-EIO, "x"), -EIO);
        assert_int_equal(log_debug_errno(EIO, "x"), -EIO);
        log_set_verbose(1);
        assert_int_equal(log_debug_errno(-EIO, "y: %m"), -EIO);
        assert_string_equal(c->message[c->n - 1], "debug: y: Input/output error");
}

static void test_fields(void **state)
{
        Captured *c = *state;

        log_info_fields(LOG_FIELDS("TERN_QUEUE_ID=3F2A1C04D1", "TERN_SITE=example.com"), "%s: queued",
                        "3F2A1C04D1");
        assert_int_equal(c->n, 1);
        assert_string_equal(c->message[0], "3F2A1C04D1: queued");
        assert_false(c->fields_null[0]);
        if (c->n_fields[0] != 2)
                fail_msg("got %zu fields want 2", c->n_fields[0]);
        assert_string_equal(c->fields[0][0], "TERN_QUEUE_ID=3F2A1C04D1");
        assert_string_equal(c->fields[0][1], "TERN_SITE=example.com");

        log_warning_fields(LOG_FIELDS("TERN_SITE=a b=c"), "odd %s", "site");
        assert_string_equal(c->message[1], "warning: odd site");
        assert_int_equal(c->n_fields[1], 1);
        assert_string_equal(c->fields[1][0], "TERN_SITE=a b=c");
}

/* The body holds 4095 characters (LOG_LINE_MAX - 1); a longer one ends in "..." at that length. */
static void test_truncation(void **state)
{
        Captured *c = *state;
        static const struct {
                size_t body;
                bool cut;
        } cases[] = {{4094, false}, {4095, false}, {4096, true}, {10000, true}};
        char *text = malloc(10001), *out;
        int memfd, saved;

        assert_non_null(text);
        /* These lines go to stderr too: keep them out of the test log. */
        saved = stderr_capture_begin(&memfd);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *m;
                size_t len, want_len = cases[i].cut ? 4095 : cases[i].body;

                memset(text, 'x', cases[i].body);
                text[cases[i].body] = '\0';
                log_warning("%s", text);
                m = c->message[c->n - 1];
                assert_true(strneq(m, "warning: ", 9));
                len = strlen(m + 9);
                if (len != want_len)
                        fail_msg("body of %zu: got %zu characters want %zu", cases[i].body, len, want_len);
                if (cases[i].cut != streq(m + 9 + len - 3, "..."))
                        fail_msg("body of %zu: got \"%s\" at the end want %s", cases[i].body,
                                 m + 9 + len - 3, cases[i].cut ? "\"...\"" : "x's");
                if (strspn(m + 9, "x") != (cases[i].cut ? want_len - 3 : want_len))
                        fail_msg("body of %zu: got the text altered", cases[i].body);
                free(c->message[--c->n]);
        }
        free(stderr_capture_end(saved, memfd));

        /* And on stderr: the whole cut line, newline-terminated, in one piece. */
        {
                memset(text, 'y', 10000);
                text[10000] = '\0';
                saved = stderr_capture_begin(&memfd);
                log_error("%s", text);
                out = stderr_capture_end(saved, memfd);
                assert_int_equal(strlen(out), strlen("tern/testd: error: ") + 4095 + 1);
                assert_true(strneq(out, "tern/testd: error: yyy", 22));
                assert_string_equal(out + strlen(out) - 4, "...\n");
                free(out);
        }
        free(text);
}

static void test_identifier(void **state)
{
        static const struct {
                const char *syslog_name, *program, *want;
        } cases[] = {
                {"tern", "testd", "tern/testd"},  {NULL, "flush", "tern/flush"},
                {"", "qmgr", "tern/qmgr"},        {"postfix", "smtp", "postfix/smtp"},
                {"tern-test", NULL, "tern-test"}, {NULL, NULL, "tern"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                log_open(cases[i].syslog_name, cases[i].program, LOG_TARGET_STDERR);
                if (!streq(log_identifier(), cases[i].want))
                        fail_msg("log_open(%s, %s): got \"%s\" want \"%s\"", strna(cases[i].syslog_name),
                                 strna(cases[i].program), log_identifier(), cases[i].want);
        }
        log_open("tern", "testd", LOG_TARGET_STDERR);
}

/* ---- stderr, golden ------------------------------------------------------------------------- */

/* run_dying_child - FN in a child with our stderr; its wait status */
static int run_dying_child(void (*fn)(void))
{
        pid_t pid;
        int status;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                log_set_sink(NULL, NULL);
                fn();
                _exit(99); /* not reached: fn does not return */
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return status;
}

static void die_fatal(void)
{
        log_fatal_errno(EACCES, "cannot create event loop: %m");
}

static void die_panic(void)
{
        /* abort() is what panic means: make sure SIGABRT is not caught */
        (void)signal(SIGABRT, SIG_DFL);
        log_panic("broken invariant: %d calls current", 2);
}

static void test_stderr_golden(void **state)
{
        _cleanup_(freep) char *golden = NULL, *out = NULL;
        int m, saved, status_fatal, status_panic;

        /* AUTO with TERN_LOG=stderr: stderr only, never the journal. */
        log_open("tern", "testd", LOG_TARGET_AUTO);
        saved = stderr_capture_begin(&m);

        log_info("queue manager started");
        log_info_fields(LOG_FIELDS("TERN_QUEUE_ID=3F2A1C04D1"),
                        "%s: from=<%s>, size=%d, nrcpt=%d (queue active)", "3F2A1C04D1", "a@example.com",
                        1234, 1);
        log_warning("skipping site %s: no logfile", "example.com");
        log_error_errno(ENOENT, "cannot open %s: %m", "/nonexistent/flush");
        log_error_errno(-ECONNREFUSED, "connect to %s[%s]:%d: %m", "smtp.example.com", "192.0.2.1", 25);
        log_info("%s: to=<%s>, relay=none, delay=0.5, status=deferred (percent: 100%%)", "3F2A1C04D1",
                 "b@example.org");
        log_debug("not with verbose 0");
        log_set_verbose(1);
        log_debug("only with -v");
        log_set_verbose(0);
        status_fatal = run_dying_child(die_fatal);
        status_panic = run_dying_child(die_panic);

        out = stderr_capture_end(saved, m);
        golden = read_file(TERN_SOURCE_ROOT "/tests/unit/lib/golden/log.ref");
        if (!streq(out, golden)) {
                size_t line = 1;
                const char *a = out, *b = golden;

                while (*a && *a == *b) {
                        line += *a == '\n';
                        a++, b++;
                }
                fail_msg("stderr differs from golden/log.ref at line %zu:\n got: %.*s\nwant: %.*s", line,
                         (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
        }

        if (!WIFEXITED(status_fatal) || WEXITSTATUS(status_fatal) != EXIT_FAILURE)
                fail_msg("log_fatal: got wait status 0x%x want exit 1", (unsigned)status_fatal);
        if (!WIFSIGNALED(status_panic) || WTERMSIG(status_panic) != SIGABRT)
                fail_msg("log_panic: got wait status 0x%x want SIGABRT", (unsigned)status_panic);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_tiers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errno, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_identifier, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stderr_golden, setup, teardown),
        };

        return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
