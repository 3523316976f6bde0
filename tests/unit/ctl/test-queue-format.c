/* SPDX-License-Identifier: MIT */
/*
 * test-queue-format.c - src/ctl/queue-format.c: mailq text and postqueue -j lines, byte for byte
 *
 * The expected text is written out by hand from Postfix's formats (postqueue/showq_compat.c
 * with long queue IDs: "%-17s %8ld %19.19s %s", reasons right-aligned to column 78, recipients
 * after 47 spaces; postqueue/showq_json.c's member order and spacing). Times are in UTC (TZ is
 * set before anything is formatted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "macro.h"
#include "queue-format.h"

/* 1732312345 = Fri Nov 22 21:52:25 2024 UTC; 1700000000 = Tue Nov 14 22:13:20 2023 UTC */
#define HEADING "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n"
#define RCPT_INDENT "                                               " /* 47 spaces */

static json_t *message(const char *json)
{
        json_error_t e;
        json_t *m = json_loads(json, 0, &e);

        if (!m)
                fail_msg("test input is not JSON: %s: %s", e.text, json);
        return m;
}

/* mailq - the whole mailq text for MESSAGES (JSON objects), as ternctl and sendmail -bp print it */
static char *mailq(const char *const *messages, size_t n)
{
        MailqState s = {};
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        for (size_t i = 0; i < n; i++) {
                json_t *m = message(messages[i]);
                assert_int_equal(mailq_message(&s, f, m), 0);
                json_decref(m);
        }
        mailq_end(&s, f);
        fclose(f);
        return buf;
}

static void expect_text(const char *what, const char *got, const char *want)
{
        /* cmocka's own messages are short: the texts go to stderr whole */
        if (!streq(got, want)) {
                fprintf(stderr, "%s:\n--- expected\n%s--- got\n%s---\n", what, want, got);
                fail_msg("%s: not the expected text", what);
        }
}

static void test_empty_queue(void **state)
{
        _cleanup_(freep) char *out = mailq(NULL, 0);

        expect_text("an empty queue", out, "Mail queue is empty\n");
}

static void test_active_message(void **state)
{
        const char *m[] = {
                ("{\"queueName\":\"active\",\"queueId\":\"4Wd9Xj1Bc2zD3\",\"arrivalTime\":1732312345,"
                 "\"messageSize\":1234,\"forcedExpire\":false,\"sender\":\"a@example.org\","
                 "\"recipients\":[{\"origAddress\":\"u@customer.tld\",\"address\":\"u@customer.tld\"}]}"),
        };
        _cleanup_(freep) char *out = mailq(m, ELEMENTSOF(m));

        expect_text("one active message", out,
                    HEADING "4Wd9Xj1Bc2zD3*        1234 Fri Nov 22 21:52:25 a@example.org\n" RCPT_INDENT
                            "u@customer.tld\n"
                            "\n"
                            "-- 1 Kbytes in 1 Request.\n");
}

static void test_states_and_reasons(void **state)
{
        const char *m[] = {
                /* deferred: two recipients share a reason (one line), the third has none */
                ("{\"queueName\":\"deferred\",\"queueId\":\"4Wd9Xj1Bc2zD4\",\"arrivalTime\":1732312345,"
                 "\"messageSize\":1023,\"forcedExpire\":false,\"sender\":\"a@example.org\",\"recipients\":["
                 "{\"origAddress\":\"u@customer.tld\",\"address\":\"u@customer.tld\","
                 "\"delayReason\":\"connect to mx.customer.tld[192.0.2.7]:25: Connection refused\"},"
                 "{\"origAddress\":\"v@customer.tld\",\"address\":\"v@customer.tld\","
                 "\"delayReason\":\"connect to mx.customer.tld[192.0.2.7]:25: Connection refused\"},"
                 "{\"origAddress\":\"w@other.tld\",\"address\":\"w@other.tld\"}],\"nextAttemptTime\":"
                 "1732313000}"),
                /* hold and forced to expire: "!#"; the null sender as MAILER-DAEMON */
                ("{\"queueName\":\"hold\",\"queueId\":\"4Wd9Xj1Bc2zD5\",\"arrivalTime\":1700000000,"
                 "\"messageSize\":1025,\"forcedExpire\":true,\"sender\":\"MAILER-DAEMON\",\"recipients\":["
                 "{\"origAddress\":\"x@y.tld\",\"address\":\"x@y.tld\",\"bounceReason\":\"host said: 550 "
                 "no\"}]}"),
                /* incoming, forced to expire: "#" alone; no recipients left */
                ("{\"queueName\":\"incoming\",\"queueId\":\"4Wd9Xj1Bc2zD6\",\"arrivalTime\":1700000000,"
                 "\"messageSize\":0,\"forcedExpire\":true,\"sender\":\"b@example.org\",\"recipients\":[]}"),
        };
        _cleanup_(freep) char *out = mailq(m, ELEMENTSOF(m));

        expect_text("deferred, hold and incoming", out,
                    HEADING "4Wd9Xj1Bc2zD4         1023 Fri Nov 22 21:52:25 a@example.org\n"
                            "                (connect to mx.customer.tld[192.0.2.7]:25: Connection "
                            "refused)\n" RCPT_INDENT "u@customer.tld\n" RCPT_INDENT "v@customer.tld\n"
                            "                                                          (reason "
                            "unavailable)\n" RCPT_INDENT "w@other.tld\n"
                            "\n"
                            "4Wd9Xj1Bc2zD5!#       1025 Tue Nov 14 22:13:20 MAILER-DAEMON\n"
                            "                                                           (host said: 550 "
                            "no)\n" RCPT_INDENT "x@y.tld\n"
                            "\n"
                            "4Wd9Xj1Bc2zD6#           0 Tue Nov 14 22:13:20 b@example.org\n"
                            "\n"
                            "-- 2 Kbytes in 3 Requests.\n");
}

static void test_long_fields(void **state)
{
        const char *m[] = {
                /* an ID longer than its column, a size wider than 8, a reason longer than 76
                 * (no padding, no wrapping), a control character shown as '?' */
                ("{\"queueName\":\"deferred\",\"queueId\":\"4Wd9Xj1Bc2zD3zzzzzzzzz\",\"arrivalTime\":"
                 "1704067200,"
                 "\"messageSize\":123456789,\"forcedExpire\":false,"
                 "\"sender\":\"very.long.sender.address.with.many.labels@sub.domain.example.org\","
                 "\"recipients\":[{\"origAddress\":\"a\\u0001b@x.tld\",\"address\":\"a\\u0001b@x.tld\","
                 "\"delayReason\":\"host mx.x.tld[192.0.2.9] said: 451 4.7.1 Greylisted, please try again "
                 "in 300 seconds (in reply to RCPT TO command)\"}]}"),
        };
        _cleanup_(freep) char *out = mailq(m, ELEMENTSOF(m));

        expect_text("long fields", out,
                    HEADING "4Wd9Xj1Bc2zD3zzzzzzzzz 123456789 Mon Jan  1 00:00:00 "
                            "very.long.sender.address.with.many.labels@sub.domain.example.org\n"
                            "(host mx.x.tld[192.0.2.9] said: 451 4.7.1 Greylisted, please try again in 300 "
                            "seconds (in reply to RCPT TO command))\n" RCPT_INDENT "a?b@x.tld\n"
                            "\n"
                            "-- 120563 Kbytes in 1 Request.\n");
}

static void test_refuses_incomplete(void **state)
{
        MailqState s = {};
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        json_t *m = message("{\"queueName\":\"active\",\"messageSize\":5}");

        assert_int_equal(mailq_message(&s, f, m), -EBADMSG);
        assert_int_equal(queue_json_line(f, m), -EBADMSG);
        fclose(f);
        assert_int_equal(size, 0);
        assert_int_equal(s.messages, 0);
        json_decref(m);
        free(buf);
}

static char *json_lines(const char *json)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        json_t *m = message(json);

        assert_int_equal(queue_json_line(f, m), 0);
        json_decref(m);
        fclose(f);
        return buf;
}

static void test_json_members(void **state)
{
        _cleanup_(freep) char *a = json_lines(
                "{\"queueName\":\"deferred\",\"queueId\":\"4Wd9Xj1Bc2zD4\",\"arrivalTime\":1732312345,"
                "\"messageSize\":1234,\"forcedExpire\":false,\"sender\":\"MAILER-DAEMON\",\"recipients\":["
                "{\"origAddress\":\"U@customer.tld\",\"address\":\"u@customer.tld\","
                "\"delayReason\":\"connect to mx.customer.tld[192.0.2.7]:25: Connection refused\"},"
                "{\"address\":\"v@customer.tld\",\"bounceReason\":\"said: 550 \\\"no\\\"\\\\ "
                "\\n\\u0001\\u007f\"}],"
                "\"nextAttemptTime\":1732313000}");
        _cleanup_(freep) char *b = json_lines(
                "{\"queueName\":\"hold\",\"queueId\":\"4Wd9Xj1Bc2zD5\",\"arrivalTime\":1,\"messageSize\":0,"
                "\"forcedExpire\":true,\"sender\":\"b@example.org\",\"recipients\":[],\"nextAttemptTime\":"
                "null}");

        expect_text(
                "postqueue -j, deferred", a,
                "{\"queue_name\": \"deferred\", \"queue_id\": \"4Wd9Xj1Bc2zD4\", \"arrival_time\": "
                "1732312345, "
                "\"message_size\": 1234, \"forced_expire\": false, \"sender\": \"MAILER-DAEMON\", "
                "\"recipients\": [{\"orig_address\": \"U@customer.tld\", \"address\": \"u@customer.tld\", "
                "\"delay_reason\": \"connect to mx.customer.tld[192.0.2.7]:25: Connection refused\"}, "
                "{\"orig_address\": \"v@customer.tld\", \"address\": \"v@customer.tld\", "
                "\"bounce_reason\": \"said: 550 \\\"no\\\"\\\\ \\n\\u0001\\u007F\"}], "
                "\"next_attempt_time\": 1732313000}\n");
        expect_text("postqueue -j, hold", b,
                    "{\"queue_name\": \"hold\", \"queue_id\": \"4Wd9Xj1Bc2zD5\", \"arrival_time\": 1, "
                    "\"message_size\": 0, \"forced_expire\": true, \"sender\": \"b@example.org\", "
                    "\"recipients\": []}\n");

        /* and every line is JSON that reads back */
        json_t *j = json_loads(a, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(
                                    json_array_get(json_object_get(j, "recipients"), 1), "bounce_reason")),
                            "said: 550 \"no\"\\ \n\001\177");
        json_decref(j);
}

static void test_summary(void **state)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        json_t *s = message(
                "{\"queues\":{\"incoming\":1,\"active\":2,\"deferred\":14,\"hold\":0,\"corrupt\":0},"
                "\"oldestArrival\":1732300000,\"destinations\":["
                "{\"domain\":\"customer.tld\",\"recipients\":12,\"messages\":11,\"ages\":[1,0,0,0,0,0,0,0,1,"
                "10],"
                "\"oldest\":1732300000,\"nextAttempt\":1732313000,\"reason\":\"connect to mx: refused\","
                "\"dead\":true},"
                "{\"domain\":\"x.tld\",\"recipients\":3,\"messages\":3,\"ages\":[3,0,0,0,0,0,0,0,0,0],"
                "\"oldest\":1732312300,\"nextAttempt\":null,\"dead\":false}]}");

        queue_summary_print(f, s, 1732312345);
        fclose(f);
        json_decref(s);
        expect_text("summary", buf,
                    "              T 5 10 20 40 80 160 320 640 1280 1280+\n"
                    "       TOTAL 15 4  0  0  0  0   0   0   0    1    10\n"
                    "customer.tld 12 1  0  0  0  0   0   0   0    1    10\n"
                    "       x.tld  3 3  0  0  0  0   0   0   0    0     0\n"
                    "\n"
                    "queues: incoming 1 active 2 deferred 14 hold 0 corrupt 0\n"
                    "oldest: Fri Nov 22 18:26:40 (3h25m ago)\n"
                    "\n"
                    "DOMAIN       MESSAGES   OLDEST NEXT RETRY STATE REASON\n"
                    "customer.tld       11    3h25m in 10m55s  dead  connect to mx: refused\n"
                    "x.tld               3      45s -          ok    \n");
        free(buf);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty_queue),
                cmocka_unit_test(test_active_message),
                cmocka_unit_test(test_states_and_reasons),
                cmocka_unit_test(test_long_fields),
                cmocka_unit_test(test_refuses_incomplete),
                cmocka_unit_test(test_json_members),
                cmocka_unit_test(test_summary),
        };

        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
