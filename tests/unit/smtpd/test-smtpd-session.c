/* SPDX-License-Identifier: MIT */
/*
 * test-smtpd-session.c - tern-smtpd's sessions (src/smtpd/smtpd-session.c) on a real event loop
 *
 * Each test configures an Smtpd from main.cf text (smtpd-config.c) on a temporary spool, starts
 * a session on one end of a socketpair with a made-up client address (so relay control can be
 * seen from inside and outside mynetworks without a network), and plays the client: its bytes
 * sent whole, one at a time and in other pieces, the loop run until the replies are in. The
 * replies, the log lines (through a log sink) and the spool are checked exactly.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "macro.h"
#include "queue-store.h"
#include "smtpd.h"
#include "test-util.h"

typedef struct Fixture {
        char dir[64];
        Conf *conf;
        sd_event *event;
        Smtpd d;
        int client;
        char *logs;                     /* every line logged, "\n"-separated */
        size_t logs_len;
} Fixture;

static void on_log(int priority, const char *message, const char *const *fields, void *userdata)
{
        Fixture *f = userdata;
        size_t n = strlen(message);
        char *p = realloc(f->logs, f->logs_len + n + 2);

        assert_non_null(p);
        f->logs = p;
        memcpy(f->logs + f->logs_len, message, n);
        f->logs_len += n;
        f->logs[f->logs_len++] = '\n';
        f->logs[f->logs_len] = '\0';
}

/* fixture_start - the server from EXTRA main.cf lines, a session from CLIENT_ADDR */
static void fixture_start(Fixture *f, const char *extra, const char *client_addr)
{
        _cleanup_(freep) char *text = NULL;
        struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
        int sv[2];

        memset(f, 0, sizeof(*f));
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-smtpd-session.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_true(asprintf(&text,
                             "queue_directory = %s\n"
                             "runtime_directory = %s\n"
                             "myhostname = mail.test\n"
                             "mydestination = mail.test\n"
                             "relay_domains = relay.test\n"
                             "mynetworks = 127.0.0.0/8\n"
                             "smtpd_peername_lookup = no\n"
                             "smtpd_error_sleep_time = 0\n"
                             "%s",
                             f->dir, f->dir, extra) > 0);
        f->conf = test_conf_from_text(text);
        assert_non_null(f->conf);
        assert_int_equal(sd_event_new(&f->event), 0);
        log_set_sink(on_log, f);
        assert_int_equal(smtpd_configure(&f->d, f->conf, f->event), 0);
        f->d.accepting = true;

        assert_int_equal(inet_pton(AF_INET, client_addr, &peer.sin_addr), 1);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        f->client = sv[1];
        assert_int_equal(smtpd_session_start(&f->d, sv[0], (const struct sockaddr_storage *) &peer, sizeof(peer)),
                         0);
}

static void fixture_stop(Fixture *f)
{
        char cmd[128];

        smtpd_done(&f->d);
        sd_event_unref(f->event);
        conf_free(f->conf);
        safe_close(f->client);
        log_set_sink(NULL, NULL);
        free(f->logs);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
}

/* run - the loop until nothing is ready (the server has answered what it could) */
static void run(Fixture *f)
{
        for (unsigned i = 0; i < 1000; i++)
                if (sd_event_run(f->event, 0) == 0)
                        return;
}

/* receive - what the server has sent so far (appended to OUT, of OUT_SIZE) */
static void receive(Fixture *f, char *out, size_t out_size)
{
        size_t len = strlen(out);

        for (;;) {
                ssize_t k = recv(f->client, out + len, out_size - len - 1, MSG_DONTWAIT);

                if (k <= 0)
                        break;
                len += (size_t) k;
        }
        out[len] = '\0';
}

/* converse - send INPUT in pieces of STEP bytes (0: whole), running the loop after each; return
 * everything the server sent (malloc'ed) */
static char *converse(Fixture *f, const char *input, size_t len, size_t step)
{
        char *out = calloc(1, 65536);

        assert_non_null(out);
        run(f);
        for (size_t off = 0; off < len;) {
                size_t k = step == 0 ? len - off : MIN(step, len - off);

                assert_int_equal(send(f->client, input + off, k, MSG_NOSIGNAL), (ssize_t) k);
                off += k;
                run(f);
                receive(f, out, 65536);
        }
        run(f);
        receive(f, out, 65536);
        return out;
}

/* incoming_files - the files in incoming/ (temporary ones included) */
static size_t incoming_files(const Fixture *f)
{
        char path[128];
        DIR *d;
        struct dirent *e;
        size_t n = 0;

        snprintf(path, sizeof(path), "%s/incoming", f->dir);
        d = opendir(path);
        if (!d)
                return 0;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.' || strlen(e->d_name) > 2)
                        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(d);
        return n;
}

static const char transaction[] = "EHLO client.test\r\n"
                                  "MAIL FROM:<a@client.test> SIZE=100\r\n"
                                  "RCPT TO:<u@mail.test> NOTIFY=FAILURE\r\n"
                                  "RCPT TO:<v@relay.test>\r\n"
                                  "DATA\r\n"
                                  "Subject: hi\r\n"
                                  "\r\n"
                                  "..dot\r\n"
                                  ".\r\n"
                                  "QUIT\r\n";

static const char transaction_replies[] = "220 mail.test ESMTP tern\r\n"
                                          "250-mail.test\r\n"
                                          "250-PIPELINING\r\n"
                                          "250-SIZE 10240000\r\n"
                                          "250-VRFY\r\n"
                                          "250-ETRN\r\n"
                                          "250-ENHANCEDSTATUSCODES\r\n"
                                          "250-8BITMIME\r\n"
                                          "250 DSN\r\n"
                                          "250 2.1.0 Ok\r\n"
                                          "250 2.1.5 Ok\r\n"
                                          "250 2.1.5 Ok\r\n"
                                          "354 End data with <CR><LF>.<CR><LF>\r\n"
                                          "250 2.0.0 Ok: queued as ";

/* A whole pipelined transaction, sent at once and one byte at a time and in other pieces: the
 * same replies, one queue file committed, Postfix's log lines. */
static void test_transaction(void **state)
{
        static const size_t steps[] = { 0, 1, 2, 3, 7, 64 };

        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                Fixture f;
                _cleanup_(freep) char *out = NULL;
                char id[64] = "", want_log[1024];
                const char *p;

                fixture_start(&f, "", "127.0.0.1");
                out = converse(&f, transaction, strlen(transaction), steps[i]);
                assert_true(strncmp(out, transaction_replies, strlen(transaction_replies)) == 0);
                p = out + strlen(transaction_replies);
                assert_int_equal(sscanf(p, "%63[0-9A-Za-z]\r\n221 2.0.0 Bye\r\n", id), 1);
                assert_string_equal(p + strlen(id), "\r\n221 2.0.0 Bye\r\n");
                assert_int_equal(incoming_files(&f), 1);

                snprintf(want_log, sizeof(want_log),
                         "connect from unknown[127.0.0.1]\n"
                         "%s: client=unknown[127.0.0.1]\n"
                         "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6\n",
                         id);
                assert_string_equal(f.logs, want_log);
                fixture_stop(&f);
        }
}

/* From outside mynetworks every address that would leave is refused; local and relay ones pass. */
static void test_relay(void **state)
{
        static const struct {
                const char *rcpt, *reply;
        } cases[] = {
                { "u@mail.test", "250 2.1.5 Ok" },
                { "u@relay.test", "250 2.1.5 Ok" },
                { "u@[127.0.0.1]", "250 2.1.5 Ok" },
                { "u@elsewhere.example", "554 5.7.1 <u@elsewhere.example>: Relay access denied" },
                { "u@[192.0.2.9]", "554 5.7.1 <u@[192.0.2.9]>: Relay access denied" },
                { "u%elsewhere.example@mail.test", "554 5.7.1 <u%elsewhere.example@mail.test>: Relay access denied" },
                { "u%elsewhere.example@relay.test",
                  "554 5.7.1 <u%elsewhere.example@relay.test>: Relay access denied" },
                { "elsewhere.example!u@mail.test", "554 5.7.1 <elsewhere.example!u@mail.test>: Relay access denied" },
                { "\"u@elsewhere.example\"@mail.test",
                  "554 5.7.1 <\"u@elsewhere.example\"@mail.test>: Relay access denied" },
                { "@mail.test:u@elsewhere.example", "554 5.7.1 <u@elsewhere.example>: Relay access denied" },
        };
        Fixture f;
        char input[8192] = "EHLO c.test\r\nMAIL FROM:<a@c.test>\r\n", want[8192] = "";
        _cleanup_(freep) char *out = NULL;

        fixture_start(&f, "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"
                          "smtpd_hard_error_limit = 100\n", "192.0.2.1");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                snprintf(input + strlen(input), sizeof(input) - strlen(input), "RCPT TO:<%s>\r\n", cases[i].rcpt);
                snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s\r\n", cases[i].reply);
        }
        strcat(input, "RSET\r\n");
        strcat(want, "250 2.0.0 Ok\r\n");
        out = converse(&f, input, strlen(input), 0);
        assert_non_null(strstr(out, "250 2.1.0 Ok\r\n"));
        assert_string_equal(strstr(out, "250 2.1.0 Ok\r\n") + strlen("250 2.1.0 Ok\r\n"), want);
        assert_non_null(strstr(f.logs, ": reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <u@elsewhere.example>: "
                                       "Relay access denied; from=<a@c.test> to=<u@elsewhere.example> "
                                       "proto=ESMTP helo=<c.test>\n"));
        /* RSET took the queue file of the accepted recipients away */
        assert_int_equal(incoming_files(&f), 0);
        fixture_stop(&f);
}

/* A client that leaves in the middle of DATA: nothing queued, no temporary file, the log says so. */
static void test_lost_in_data(void **state)
{
        static const char input[] = "HELO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<u@mail.test>\r\nDATA\r\npart of it\r\n";
        Fixture f;
        _cleanup_(freep) char *out = NULL;

        fixture_start(&f, "", "127.0.0.1");
        out = converse(&f, input, strlen(input), 0);
        assert_int_equal(incoming_files(&f), 1);        /* the file under way */
        f.client = safe_close(f.client);
        run(&f);
        assert_int_equal(incoming_files(&f), 0);
        assert_non_null(strstr(f.logs, "lost connection after DATA (12 bytes) from unknown[127.0.0.1]\n"
                                       "disconnect from unknown[127.0.0.1] helo=1 mail=1 rcpt=1 data=0/1 "
                                       "commands=3/4\n"));
        assert_int_equal(f.d.n_sessions, 0);
        fixture_stop(&f);
}

/* Errors: the reply texts Postfix gives, and the hard error limit closing the session. */
static void test_errors(void **state)
{
        static const char input[] = "MAIL FROM:<a@c.test>\r\n"
                                    "MAIL FROM:<a@c.test>\r\n"
                                    "DATA\r\n"
                                    "RCPT TO:<bad address>\r\n"
                                    "BOGUS\r\n"
                                    "RCPT TO:<u@mail.test>\r\n";
        static const char want[] = "220 mail.test ESMTP tern\r\n"
                                   "250 2.1.0 Ok\r\n"
                                   "503 5.5.1 Error: nested MAIL command\r\n"
                                   "554 5.5.1 Error: no valid recipients\r\n"
                                   "501 5.1.3 Bad recipient address syntax\r\n"
                                   "421 4.7.0 mail.test Error: too many errors\r\n";
        Fixture f;
        _cleanup_(freep) char *out = NULL;

        fixture_start(&f, "smtpd_hard_error_limit = 3\n", "127.0.0.1");
        out = converse(&f, input, strlen(input), 0);
        assert_string_equal(out, want);
        assert_non_null(strstr(f.logs, "too many errors after RCPT from unknown[127.0.0.1]\n"));
        assert_int_equal(f.d.n_sessions, 0);
        fixture_stop(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_transaction),
                cmocka_unit_test(test_relay),
                cmocka_unit_test(test_lost_in_data),
                cmocka_unit_test(test_errors),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
