/* SPDX-License-Identifier: MIT */
/*
 * test-smtp-session.c - one SMTP session's I/O (src/smtp/smtp-session.c) against scripted servers
 *
 * Each test makes a socketpair; a forked child plays the server (writes and reads exactly what
 * its script says, then exits 0, or non-zero when the client sent something else), and the
 * session runs over the other end through smtp_session_adopt(). Covers: a reply read within its
 * deadline or -ETIMEDOUT (a server that starts a reply and stalls); a lost connection; a
 * malformed reply; the greeting and EHLO with features; HELO after a refused EHLO; a 5XX
 * greeting counted as 4XX (smtp_skip_5xx_greeting); Postfix's failure texts; and a pipelined
 * burst larger than both socket buffers against a server that answers each command before it
 * reads the next (smtp_session_flush must read while it writes, or both sides block forever).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtp.h"

#define MSEC 1000ULL

static SmtpConfig config(void)
{
        return (SmtpConfig){
                .helo_name = "client.test",
                .helo_timeout = 2000 * MSEC,
                .rset_timeout = 2000 * MSEC,
                .skip_5xx_greeting = true,
        };
}

/* server_write - all of TEXT to FD */
static void server_write(int fd, const char *text)
{
        size_t n = strlen(text);

        while (n > 0) {
                ssize_t k = write(fd, text, n);

                if (k <= 0)
                        _exit(3);
                text += k;
                n -= (size_t) k;
        }
}

/* server_expect - read one line (up to "\n") from FD; exit 2 unless it is WANT */
static void server_expect(int fd, const char *want)
{
        char line[512];
        size_t n = 0;

        while (n < sizeof(line) - 1) {
                if (read(fd, line + n, 1) != 1)
                        _exit(2);
                if (line[n++] == '\n')
                        break;
        }
        line[n] = '\0';
        if (strcmp(line, want) != 0)
                _exit(2);
}

typedef void (*ServerFn)(int fd);

/* start - a session over a socketpair whose other end SERVE plays in a child */
static SmtpSession *start(ServerFn serve, pid_t *ret_pid)
{
        SmtpSession *s = NULL;
        int sv[2];
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                serve(sv[1]);
                _exit(0);
        }
        close(sv[1]);
        assert_int_equal(smtp_session_adopt(sv[0], "mx.test", "192.0.2.1", 25, &s), 0);
        *ret_pid = pid;
        return s;
}

/* finish - free S (the server sees EOF) and check how the server ended */
static void finish(SmtpSession *s, pid_t pid, int want_status)
{
        int status;

        smtp_session_free(s);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (want_status >= 0) {
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), want_status);
        }
}

/* ---- replies ------------------------------------------------------------------------------ */

static void serve_stall(int fd)
{
        char c;

        server_write(fd, "220-mx.test first line\r\n");
        (void) read(fd, &c, 1); /* until the client goes */
}

static void test_reply_timeout(void **state)
{
        pid_t pid;
        SmtpSession *s = start(serve_stall, &pid);
        SmtpReply reply = {};
        SmtpWhy why;
        int r;

        r = smtp_session_reply(s, 200 * MSEC, &reply, NULL);
        assert_int_equal(r, -ETIMEDOUT);
        assert_true(s->broken);
        smtp_session_fail(s, r, NULL, "receiving the initial server greeting", &why);
        assert_string_equal(why.dsn, "4.4.2");
        assert_string_equal(why.text, "conversation with mx.test[192.0.2.1] timed out while receiving the "
                                      "initial server greeting");
        finish(s, pid, 0);
}

static void serve_close(int fd)
{
        server_write(fd, "220 mx.test ready\r\n");
}

static void test_lost(void **state)
{
        pid_t pid;
        SmtpSession *s = start(serve_close, &pid);
        SmtpReply reply = {};
        SmtpWhy why;
        int r;

        assert_int_equal(smtp_session_reply(s, 2000 * MSEC, &reply, NULL), 0);
        assert_int_equal(reply.code, 220);
        assert_string_equal(reply.text, "220 mx.test ready");
        smtp_reply_done(&reply);
        r = smtp_session_reply(s, 2000 * MSEC, &reply, NULL);
        assert_int_equal(r, -ECONNRESET);
        smtp_session_fail(s, r, NULL, "sending RCPT TO", &why);
        assert_string_equal(why.text, "lost connection with mx.test[192.0.2.1] while sending RCPT TO");
        finish(s, pid, 0);
}

static void serve_garbage(int fd)
{
        server_write(fd, "hello there\r\n");
}

static void test_malformed(void **state)
{
        pid_t pid;
        SmtpSession *s = start(serve_garbage, &pid);
        SmtpReply reply = {};
        const char *reason = NULL;
        SmtpWhy why;
        int r;

        r = smtp_session_reply(s, 2000 * MSEC, &reply, &reason);
        assert_int_equal(r, -EBADMSG);
        assert_non_null(reason);
        smtp_session_fail(s, r, reason, "receiving the initial server greeting", &why);
        assert_string_equal(why.dsn, "4.5.0");
        assert_non_null(strstr(why.text,
                               "mx.test[192.0.2.1] sent a malformed reply while receiving the initial "
                               "server greeting: "));
        finish(s, pid, 0);
}

/* ---- greeting and EHLO -------------------------------------------------------------------- */

static void serve_ehlo(int fd)
{
        server_write(fd, "220 mx.test ESMTP\r\n");
        server_expect(fd, "EHLO client.test\r\n");
        server_write(fd, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n");
        server_expect(fd, "RSET\r\n");
        server_write(fd, "250 2.0.0 Ok\r\n");
}

static void test_ehlo(void **state)
{
        SmtpConfig cfg = config();
        pid_t pid;
        SmtpSession *s = start(serve_ehlo, &pid);
        SmtpWhy why;

        assert_int_equal(smtp_session_hello(s, &cfg, &why), 0);
        assert_true(s->features.flags & SMTP_FEATURE_PIPELINING);
        assert_true(s->features.flags & SMTP_FEATURE_8BITMIME);
        assert_true(s->features.flags & SMTP_FEATURE_SIZE);
        assert_int_equal(s->features.size_limit, 1000);
        assert_int_equal(smtp_session_rset(s, &cfg), 0);
        assert_false(s->broken);
        finish(s, pid, 0);
}

static void serve_helo(int fd)
{
        server_write(fd, "220 old.test SMTP\r\n");
        server_expect(fd, "EHLO client.test\r\n");
        server_write(fd, "502 5.5.2 Error: command not recognized\r\n");
        server_expect(fd, "HELO client.test\r\n");
        server_write(fd, "250 old.test\r\n");
}

static void test_helo_fallback(void **state)
{
        SmtpConfig cfg = config();
        pid_t pid;
        SmtpSession *s = start(serve_helo, &pid);
        SmtpWhy why;

        assert_int_equal(smtp_session_hello(s, &cfg, &why), 0);
        assert_int_equal(s->features.flags, 0);
        finish(s, pid, 0);
}

static void serve_554(int fd)
{
        server_write(fd, "554 5.7.1 go away\r\n");
}

static void test_5xx_greeting(void **state)
{
        SmtpConfig cfg = config();
        pid_t pid;
        SmtpSession *s = start(serve_554, &pid);
        SmtpWhy why;

        assert_true(smtp_session_hello(s, &cfg, &why) < 0);
        assert_string_equal(why.dsn, "4.7.1");
        assert_string_equal(why.text, "host mx.test[192.0.2.1] refused to talk to me: 554 5.7.1 go away");
        finish(s, pid, 0);

        /* without smtp_skip_5xx_greeting the code stays 5XX */
        cfg.skip_5xx_greeting = false;
        s = start(serve_554, &pid);
        assert_true(smtp_session_hello(s, &cfg, &why) < 0);
        assert_string_equal(why.dsn, "5.7.1");
        finish(s, pid, 0);
}

static void serve_lhlo_refused(int fd)
{
        server_write(fd, "220 lmtp.test LMTP\r\n");
        server_expect(fd, "LHLO client.test\r\n");
        server_write(fd, "500 5.5.1 no\r\n");
}

static void test_lhlo(void **state)
{
        SmtpConfig cfg = config();
        pid_t pid;
        SmtpSession *s;
        SmtpWhy why;

        cfg.lmtp = true;
        s = start(serve_lhlo_refused, &pid);
        /* LMTP has no HELO to fall back to */
        assert_true(smtp_session_hello(s, &cfg, &why) < 0);
        assert_string_equal(why.dsn, "5.5.1");
        assert_string_equal(why.text, "host mx.test[192.0.2.1] refused to talk to me: 500 5.5.1 no");
        finish(s, pid, 0);
}

/* ---- a pipelined burst -------------------------------------------------------------------- */

#define BURST 100000U

/* answers each command line before reading the next: its replies fill the client's receive
 * buffer while the client is still writing */
static void serve_burst(int fd)
{
        static const char reply[] = "250 2.1.5 Ok, a reply long enough to fill buffers quickly\r\n";
        char c;
        unsigned lines = 0;

        while (lines < BURST) {
                if (read(fd, &c, 1) != 1)
                        _exit(2);
                if (c == '\n') {
                        server_write(fd, reply);
                        lines++;
                }
        }
}

static void test_pipelined_burst(void **state)
{
        pid_t pid;
        SmtpSession *s = start(serve_burst, &pid);
        SmtpReply reply = {};

        for (unsigned i = 0; i < BURST; i++)
                assert_int_equal(smtp_session_queue(s, "RCPT TO:<user%u@example.test>", i), 0);
        assert_int_equal(smtp_session_flush(s, 10000 * MSEC), 0);
        for (unsigned i = 0; i < BURST; i++) {
                assert_int_equal(smtp_session_reply(s, 10000 * MSEC, &reply, NULL), 0);
                assert_int_equal(reply.code, 250);
                smtp_reply_done(&reply);
        }
        finish(s, pid, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reply_timeout), cmocka_unit_test(test_lost),
                cmocka_unit_test(test_malformed),     cmocka_unit_test(test_ehlo),
                cmocka_unit_test(test_helo_fallback), cmocka_unit_test(test_5xx_greeting),
                cmocka_unit_test(test_lhlo),          cmocka_unit_test(test_pipelined_burst),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
