/* SPDX-License-Identifier: MIT */
/*
 * test-bounce.c - delivery status notifications (src/qmgr/bounce.c)
 *
 * Covers: the three kinds byte for byte against golden files (tests/unit/qmgr/golden/
 * bounce-*.ref; TERN_UPDATE_GOLDEN=1 rewrites them), and that the same input gives the same
 * bytes; the MIME structure of each (the boundary from Content-Type, three parts, each with a
 * Content-Type, the closing delimiter last); bounce_size_limit at, below and above the size
 * (message/rfc822 vs text/rfc822-headers with the headers only, continuation lines kept);
 * RET=HDRS; no generated line over 998 bytes with a 3000-byte diagnostic without blanks and a
 * long reason (continuations start with a blank, so they fold); control characters, CR LF and
 * bytes that are not UTF-8 in addresses and reasons become '?', valid UTF-8 stays, odd local
 * parts are quoted; the original unavailable; argument errors; and that cleanup accepts the
 * notification with the null sender, as qmgr queues it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "test-util.h"

#include "bounce.h"
#include "cleanup.h"
#include "macro.h"
#include "queue-file.h"

#define startswith(s, prefix) strneq((s), (prefix), strlen(prefix))

static const char original[] = "Received: by client.example.org (tern, from userid 1000)\n"
                               "\tid 3Pt2mN2VXxznjll; Tue, 14 Nov 2023 22:13:20 +0000 (UTC)\n"
                               "From: Sender <sender@example.org>\n"
                               "To: rcpt@example.com\n"
                               "Subject: hello\n"
                               "Message-Id: <20231114221320.3Pt2mN2VXxznjll@client.example.org>\n"
                               "\n"
                               "The body.\n"
                               "Second line.\n";

static const BounceRecipient rcpts[] = {
        {
                .address = "rcpt@example.com",
                .status = "5.1.1",
                .action = "failed",
                .diag_type = "smtp",
                .diag_text = "550 5.1.1 <rcpt@example.com>: Recipient address rejected: User unknown in "
                             "virtual mailbox table",
                .mta_type = "dns",
                .mta_mname = "mx.example.com",
                .reason = "host mx.example.com[192.0.2.25] said: 550 5.1.1 <rcpt@example.com>: Recipient "
                          "address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
        },
        {
                .address = "list-member@example.net",
                .orig_address = "list@example.net",
                .status = "5.4.4",
                .action = "failed",
                .reason = "Host or domain name not found. Name service error for name=example.net type=MX: "
                          "Host not found",
        },
};

static const BounceRecipient delayed_rcpts[] = {
        {
                .address = "slow@example.com",
                .status = "4.4.1",
                .action = "delayed",
                .reason = "connect to mx.example.com[192.0.2.25]:25: Connection timed out",
        },
};

static BounceInput base_input(BounceKind kind)
{
        return (BounceInput){
                .kind = kind,
                .queue_id = "3Pt2mN2VXxznjll",
                .sender = "sender@example.org",
                .notify_to = kind == BOUNCE_POSTMASTER ? "postmaster" : "sender@example.org",
                .myhostname = "mail.example.org",
                .mail_name = "tern",
                .arrival_sec = 1700000000,
                .now_sec = 1700432000,
                .delay_warning_sec = 4 * 3600,
                .max_lifetime_sec = 5 * 86400,
                .recipients = kind == BOUNCE_DELAYED ? delayed_rcpts : rcpts,
                .n_recipients = kind == BOUNCE_DELAYED ? ELEMENTSOF(delayed_rcpts) : ELEMENTSOF(rcpts),
                .content = original,
                .content_size = sizeof(original) - 1,
                .size_limit = 50000,
        };
}

static char *build(const BounceInput *in)
{
        char *out = NULL;
        size_t size = 0;
        int r = bounce_build(in, &out, &size);

        if (r < 0)
                fail_msg("bounce_build: %d", r);
        assert_int_equal(strlen(out), size);
        return out;
}

static void check_golden(const char *out, const char *name)
{
        _cleanup_(freep) char *path = NULL, *golden = NULL;
        const char *a, *b;
        size_t line = 1;

        assert_true(asprintf(&path, "%s/tests/unit/qmgr/golden/%s", TERN_SOURCE_ROOT, name) > 0);
        if (getenv("TERN_UPDATE_GOLDEN")) {
                FILE *f = fopen(path, "we");

                assert_non_null(f);
                assert_int_equal(fputs(out, f) >= 0, 1);
                assert_int_equal(fclose(f), 0);
        }
        golden = read_file(path);
        for (a = out, b = golden; *a && *a == *b; a++, b++)
                line += *a == '\n';
        if (*a || *b)
                fail_msg("output differs from golden/%s at line %zu:\n got: %.*s\nwant: %.*s", name, line,
                         (int) strcspn(a, "\n"), a, (int) strcspn(b, "\n"), b);
}

/* ---- a small MIME reader: enough to check the structure ------------------------------------ */

typedef struct Parts {
        char boundary[256];
        char types[4][64];     /* each part's Content-Type value (up to ';') */
        const char *bodies[4]; /* where each part's body starts */
        size_t n;
        bool closed;           /* the "--boundary--" line came last (but for the final LF) */
} Parts;

/* header_value - the value of header NAME in the header block at TEXT (ends at an empty line),
 * unfolded into BUF; false if missing */
static bool header_value(const char *text, const char *name, char *buf, size_t size)
{
        size_t nl = strlen(name);

        for (const char *p = text; *p && *p != '\n'; p = strchr(p, '\n') + 1) {
                if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        size_t k = 0;

                        p += nl + 1;
                        for (;;) {
                                while (*p && *p != '\n' && k + 1 < size)
                                        buf[k++] = *p++;
                                if (*p == '\n' && (p[1] == ' ' || p[1] == '\t'))
                                        p++;
                                else
                                        break;
                        }
                        buf[k] = '\0';
                        return true;
                }
                if (!strchr(p, '\n'))
                        break;
        }
        return false;
}

static void parse_mime(const char *msg, Parts *ret)
{
        char ct[512], delim[300], close[300];
        const char *b, *p, *body;
        Parts parts = {};

        if (!header_value(msg, "Content-Type", ct, sizeof(ct)))
                fail_msg("no Content-Type header");
        assert_non_null(strstr(ct, "multipart/report; report-type=delivery-status;"));
        b = strstr(ct, "boundary=\"");
        assert_non_null(b);
        b += strlen("boundary=\"");
        assert_true(strcspn(b, "\"") < sizeof(parts.boundary));
        snprintf(parts.boundary, sizeof(parts.boundary), "%.*s", (int) strcspn(b, "\""), b);
        snprintf(delim, sizeof(delim), "\n--%s\n", parts.boundary);
        snprintf(close, sizeof(close), "\n--%s--\n", parts.boundary);

        body = strstr(msg, "\n\n");
        assert_non_null(body);
        for (p = body; (p = strstr(p, delim)); p += strlen(delim) - 1) {
                const char *h = p + strlen(delim);
                char v[256];

                assert_true(parts.n < ELEMENTSOF(parts.types));
                if (!header_value(h, "Content-Type", v, sizeof(v)))
                        fail_msg("part %zu has no Content-Type", parts.n + 1);
                snprintf(parts.types[parts.n], sizeof(parts.types[0]), "%.*s", (int) strcspn(v + 1, ";"), v + 1);
                parts.bodies[parts.n] = strstr(h, "\n\n");
                assert_non_null(parts.bodies[parts.n]);
                parts.bodies[parts.n] += 2;
                parts.n++;
        }
        p = strstr(body, close);
        parts.closed = p && p[strlen(close)] == '\0';
        *ret = parts;
}

static void check_structure(const char *msg, const char *third_type)
{
        Parts parts;

        parse_mime(msg, &parts);
        assert_int_equal(parts.n, 3);
        assert_true(parts.closed);
        assert_string_equal(parts.types[0], "text/plain");
        assert_string_equal(parts.types[1], "message/delivery-status");
        assert_string_equal(parts.types[2], third_type);
}

/* check_lines - no line over 998 bytes; no control characters but LF and TAB */
static void check_lines(const char *msg)
{
        size_t line = 1, len = 0;

        for (const char *p = msg; *p; p++) {
                if (*p == '\n') {
                        line++;
                        len = 0;
                        continue;
                }
                if ((unsigned char) *p < 0x20 && *p != '\t')
                        fail_msg("line %zu: control character 0x%02x", line, (unsigned) (unsigned char) *p);
                if (++len > 998)
                        fail_msg("line %zu is over 998 bytes", line);
        }
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_golden(void **state)
{
        static const struct {
                BounceKind kind;
                const char *golden, *third;
        } cases[] = {
                {BOUNCE_FAILED, "bounce-failed.ref", "message/rfc822"},
                {BOUNCE_DELAYED, "bounce-delayed.ref", "text/rfc822-headers"},
                {BOUNCE_POSTMASTER, "bounce-postmaster.ref", "text/rfc822-headers"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                BounceInput in = base_input(cases[i].kind);
                _cleanup_(freep) char *out = build(&in), *again = build(&in);

                check_golden(out, cases[i].golden);
                assert_string_equal(out, again);
                check_structure(out, cases[i].third);
                check_lines(out);
        }
}

static void test_size_limit(void **state)
{
        static const struct {
                size_t limit;
                bool headers_only;
                const char *type;
        } cases[] = {
                {0, false, "message/rfc822"}, /* 0: no limit */
                {sizeof(original) - 1, false, "message/rfc822"},
                {sizeof(original), false, "message/rfc822"},
                {sizeof(original) - 2, false, "text/rfc822-headers"},
                {1, false, "text/rfc822-headers"},
                {50000, true, "text/rfc822-headers"}, /* RET=HDRS */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                BounceInput in = base_input(BOUNCE_FAILED);
                _cleanup_(freep) char *out = NULL;
                Parts parts;
                bool whole = streq(cases[i].type, "message/rfc822");

                in.size_limit = cases[i].limit;
                in.headers_only = cases[i].headers_only;
                out = build(&in);
                parse_mime(out, &parts);
                assert_int_equal(parts.n, 3);
                assert_true(parts.closed);
                if (!streq(parts.types[2], cases[i].type))
                        fail_msg("limit %zu%s: got %s want %s", cases[i].limit,
                                 cases[i].headers_only ? " RET=HDRS" : "", parts.types[2], cases[i].type);
                assert_true(startswith(parts.bodies[2], "Return-Path: <sender@example.org>\nReceived: "));
                /* the folded Received: line stays with its header; the body only with the whole */
                assert_non_null(strstr(parts.bodies[2], "\n\tid 3Pt2mN2VXxznjll;"));
                assert_non_null(strstr(parts.bodies[2], "\nMessage-Id: <"));
                assert_int_equal(strstr(parts.bodies[2], "The body.") != NULL, whole);
                assert_true(strstr(out, whole ? "Content-Description: Undelivered Message\n"
                                              : "Content-Description: Undelivered Message Headers\n") != NULL);
                if (!whole)
                        assert_non_null(strstr(parts.bodies[2], "@client.example.org>\n\n--"));
        }
}

static void test_long_lines(void **state)
{
        char diag[3100], reason[4000], mname[1200];
        BounceRecipient r = {.address = "rcpt@example.com", .status = "5.0.0", .diag_type = "smtp"};
        BounceInput in = base_input(BOUNCE_FAILED);
        _cleanup_(freep) char *out = NULL;
        const char *p;

        memcpy(diag, "550 ", 4);
        for (size_t i = 4; i < 3000; i++)
                diag[i] = (char) ('a' + i % 26);
        diag[3000] = '\0';
        for (size_t i = 0; i < sizeof(reason) - 1; i++)
                reason[i] = i % 7 == 6 ? ' ' : 'x';
        reason[sizeof(reason) - 1] = '\0';
        memset(mname, 'm', sizeof(mname) - 1);
        mname[sizeof(mname) - 1] = '\0';
        r.diag_text = diag;
        r.reason = reason;
        r.mta_type = "dns";
        r.mta_mname = mname;
        in.recipients = &r;
        in.n_recipients = 1;
        out = build(&in);
        check_lines(out);
        check_structure(out, "message/rfc822");

        /* the Diagnostic-Code folds: its continuation lines start with a blank and, blanks aside,
         * hold all of it */
        p = strstr(out, "\nDiagnostic-Code: smtp; 550");
        assert_non_null(p);
        {
                char *joined = calloc(1, 4000);
                size_t k = 0;

                p += strlen("\nDiagnostic-Code: smtp; ");
                for (;;) {
                        for (; *p != '\n'; p++)
                                if (*p != ' ')
                                        joined[k++] = *p;
                        if (p[1] != ' ')
                                break;
                        p++;
                }
                assert_true(startswith(joined, "550"));
                assert_string_equal(joined + 3, diag + 4);
                free(joined);
        }
        p = strstr(out, "\nRemote-MTA: dns;");
        assert_non_null(p);
        assert_true(startswith(p + strcspn(p + 1, "\n") + 1, "\n    mmm"));
        /* the text part's reason is wrapped at blanks: its lines are short */
        p = strstr(out, "<rcpt@example.com>: xxxxxx xxxxxx");
        assert_non_null(p);
        assert_true(strcspn(p, "\n") <= 79);
        assert_true(startswith(p + strcspn(p, "\n"), "\n    xxxxxx"));
}

static void test_odd_text(void **state)
{
        BounceRecipient r[] = {
                {
                        .address = "john doe@example.com",
                        .orig_address = "Alias\x01@example.com",
                        .status = "5.1.1",
                        .reason = "bad\r\nInjected: header \x1b[31m \xff\xfe caf\xc3\xa9 \xed\xa0\x80 end",
                },
                {
                        .address = "\"quoted local\"@example.com",
                        .status = "5.1.1",
                        .diag_type = "smtp",
                        .diag_text = "550 no\nsuch user",
                        .reason = "x",
                },
        };
        BounceInput in = base_input(BOUNCE_FAILED);
        _cleanup_(freep) char *out = NULL;

        in.recipients = r;
        in.n_recipients = ELEMENTSOF(r);
        in.sender = "we\"ird\\sender@example.org";
        in.notify_to = in.sender;
        in.envelope_id = "env\nid";
        out = build(&in);
        check_lines(out);
        check_structure(out, "message/rfc822");
        assert_null(strstr(out, "\nInjected:"));
        assert_non_null(strstr(out, "\n<\"john doe\"@example.com> (expanded from <Alias?@example.com>): "));
        assert_non_null(strstr(out, "bad??Injected: header ?[31m ?? caf\xc3\xa9 ??? end\n"));
        assert_non_null(strstr(out, "\nFinal-Recipient: rfc822; \"john doe\"@example.com\n"
                                    "Original-Recipient: rfc822; Alias?@example.com\n"));
        assert_non_null(strstr(out, "\nFinal-Recipient: rfc822; \"quoted local\"@example.com\n"));
        assert_non_null(strstr(out, "\nDiagnostic-Code: smtp; 550 no?such user\n"));
        assert_non_null(strstr(out, "\nTo: \"we\\\"ird\\\\sender\"@example.org\n"));
        assert_non_null(strstr(out, "\nX-Postfix-Sender: rfc822; \"we\\\"ird\\\\sender\"@example.org\n"));
        assert_non_null(strstr(out, "\nOriginal-Envelope-Id: env?id\n"));
        assert_non_null(strstr(out, "\nReturn-Path: <\"we\\\"ird\\\\sender\"@example.org>\n"));
}

static void test_null_sender_and_unavailable(void **state)
{
        BounceInput in = base_input(BOUNCE_FAILED);
        _cleanup_(freep) char *out = NULL;
        Parts parts;

        in.sender = "";
        in.content = NULL;
        in.content_size = 0;
        in.recipients = NULL;
        in.n_recipients = 0;
        out = build(&in);
        check_structure(out, "message/rfc822");
        assert_non_null(strstr(out, "\nX-Postfix-Sender: rfc822; MAILER-DAEMON\n"));
        assert_non_null(strstr(out, "\n\n\t--- Delivery report unavailable ---\n"));
        parse_mime(out, &parts);
        assert_true(startswith(parts.bodies[2], "\t--- Undelivered message unavailable ---\n\n--"));
}

static void test_errors(void **state)
{
        BounceInput in;
        char *out = (char *) "untouched";
        size_t size = 7;

        in = base_input(BOUNCE_FAILED);
        in.queue_id = NULL;
        assert_int_equal(bounce_build(&in, &out, &size), -EINVAL);
        in = base_input(BOUNCE_FAILED);
        in.myhostname = "";
        assert_int_equal(bounce_build(&in, &out, &size), -EINVAL);
        in = base_input(BOUNCE_FAILED);
        in.notify_to = NULL;
        assert_int_equal(bounce_build(&in, &out, &size), -EINVAL);
        in = base_input(BOUNCE_FAILED);
        in.recipients = NULL;
        assert_int_equal(bounce_build(&in, &out, &size), -EINVAL);
        in = base_input(BOUNCE_DELAYED);
        in.n_recipients = 0;
        assert_int_equal(bounce_build(&in, &out, &size), -ENOMSG);
        assert_string_equal(out, "untouched");
        assert_int_equal(size, 7);
}

/* qmgr queues the notice through cleanup with the null sender: cleanup must take it whole */
static void test_cleanup_accepts(void **state)
{
        static const BounceKind kinds[] = {BOUNCE_FAILED, BOUNCE_DELAYED, BOUNCE_POSTMASTER};

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                BounceInput in = base_input(kinds[i]);
                _cleanup_(freep) char *out = build(&in), *text = NULL;
                CleanupOptions opt = {
                        .myhostname = "mail.example.org",
                        .myorigin = "mail.example.org",
                        .flags = CLEANUP_IGNORE_DOTS,
                        .uid = 0,
                };
                Cleanup *c = NULL;
                QueueBuf qb = {};
                QueueEnvelope e;
                const char *reason = NULL;
                size_t size;
                bool truncated;

                assert_int_equal(cleanup_new(&opt, &c), 0);
                assert_int_equal(cleanup_set_sender(c, "", NULL), 0);
                assert_int_equal(cleanup_add_recipient(c, in.notify_to), 0);
                if (cleanup_write(c, out, strlen(out)) < 0)
                        fail_msg("cleanup_write: %s", cleanup_error(c));
                assert_int_equal(cleanup_finish(c, "3Pt2mN2VXyznjmm", 1700432000, 5, &qb), 0);
                if (queue_envelope_parse(qb.data, qb.size, &e, &reason) < 0)
                        fail_msg("the queue file cleanup wrote: %s", reason);
                assert_string_equal(e.sender, "");
                assert_int_equal(e.n_rcpts, 1);
                assert_int_equal(queue_content_text(qb.data, qb.size, &e, 0, false, &text, &size, &truncated), 0);
                /* cleanup kept our headers and MIME body, and added Received:, Date:, Message-Id: */
                assert_non_null(strstr(text, "\nFrom: MAILER-DAEMON@mail.example.org (Mail Delivery System)\n"));
                assert_non_null(strstr(text, "\nDate: "));
                assert_non_null(strstr(text, "\nMessage-Id: <"));
                assert_true(startswith(text, "Received: "));
                assert_non_null(strstr(text, strstr(out, "\n\nThis is a MIME-encapsulated message.\n")));
                queue_envelope_done(&e);
                queue_buf_done(&qb);
                cleanup_free(c);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden),
                cmocka_unit_test(test_size_limit),
                cmocka_unit_test(test_long_lines),
                cmocka_unit_test(test_odd_text),
                cmocka_unit_test(test_null_sender_and_unavailable),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_cleanup_accepts),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
