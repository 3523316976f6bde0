/* SPDX-License-Identifier: MIT */
/*
 * test-cleanup.c - what cleanup(8) makes of local mail (src/lib/cleanup.c)
 *
 * Table-driven: each message case gives the envelope, the bytes and the options, and the queue
 * file expected, as a dump with one line per record ("N text", escapes for control bytes, long
 * records as "<N bytes>"). Every case is fed twice, in one chunk and one byte at a time, and both
 * runs must give the same records. Every queue file produced is then decoded with
 * queue_envelope_parse() and its C record checked against the records themselves (content size =
 * X offset - data offset, data offset just after M, recipient count, content length, flags).
 *
 * Covered: no headers, headers only, CRLF/LF mix, lone CR, NUL, "." with and without
 * IGNORE_DOTS, a 10,000-byte line, the size limit exactly at and one over, no recipient, -t with
 * groups, comments, quoted names and Bcc removal, Resent- headers, the null sender, full names
 * that need quotes, existing From/Date/Message-Id in any case, Received/Date/Message-Id text for
 * a fixed time and ID, attributes, O records, duplicates, recipient limit, hop limit; and tables
 * for addr_valid(), addr_qualify() and addr_list_parse().
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "macro.h"
#include "queue-file.h"

#define NOW_SEC 1795424340 /* Mon, 23 Nov 2026 08:59:00 UTC */
#define NOW_USEC 123456
#define QID "4Dn6Fq0Bcdz1A2"
#define RECEIVED                                                                                            \
        "N Received: by mail.example.com (tern, from userid 1000)\n"                                        \
        "N \\tid " QID "; Mon, 23 Nov 2026 08:59:00 +0000 (UTC)\n"
#define ENVELOPE(sender) "C\nT 1795424340 123456\nA create_time=1795424340\nS " sender "\n"
#define ADDED(from)                                                                                         \
        "N Message-Id: <20261123085900." QID "@mail.example.com>\n"                                         \
        "N Date: Mon, 23 Nov 2026 08:59:00 +0000 (UTC)\n"                                                   \
        "N From: " from "\n"
#define END "X\nE\n"

typedef struct MessageCase {
        const char *name;
        unsigned flags;
        uint64_t size_limit;
        size_t rcpt_limit;
        const char *sender; /* NULL: "user" */
        const char *full_name;
        const char *rcpts[4];
        const char *input;
        size_t input_size; /* 0: strlen(input) */
        int want_write;    /* what cleanup_write returns */
        int want_finish;
        const char *want_error; /* cleanup_error() after a failure */
        bool want_done;         /* cleanup_done_input() before finish */
        uint64_t want_size;     /* cleanup_content_size() after finish (0: not checked) */
        const char *want;       /* the dump */
} MessageCase;

/* clang-format off */
static const MessageCase message_cases[] = {
        {
                .name = "simple",
                .rcpts = { "rcpt@example.org" },
                .input = "Subject: hi\n\nbody\n",
                .want_size = 18,
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N Subject: hi\n"
                        ADDED("user@example.com")
                        "N \nN body\n"
                        END,
        },
        {
                .name = "no headers at all",
                .rcpts = { "rcpt@example.org" },
                .input = "hello\nworld\n",
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("user@example.com")
                        "N \nN hello\nN world\n"
                        END,
        },
        {
                .name = "headers only, no final line end",
                .rcpts = { "rcpt@example.org" },
                .input = "Subject: x\nX-Other: y\n\tcontinued",
                .want_size = 33,
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N Subject: x\nN X-Other: y\nN \\tcontinued\n"
                        ADDED("user@example.com")
                        END,
        },
        {
                .name = "empty message",
                .rcpts = { "rcpt@example.org" },
                .input = "",
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("user@example.com")
                        END,
        },
        {
                .name = "CRLF and LF mixed",
                .rcpts = { "rcpt@example.org" },
                .input = "Subject: a\r\nX: b\n\r\nbody\r\nmore\n\r\n",
                .want_size = 28,
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N Subject: a\nN X: b\n"
                        ADDED("user@example.com")
                        "N \nN body\nN more\nN \n"
                        END,
        },
        {
                .name = "lone CR stays data",
                .rcpts = { "rcpt@example.org" },
                .input = "Subject: a\rb\n\nx\ry\r\r\n\r",
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N Subject: a\\rb\n"
                        ADDED("user@example.com")
                        "N \nN x\\ry\\r\nN \\r\n"
                        END,
        },
        {
                .name = "NUL byte refused",
                .rcpts = { "rcpt@example.org" },
                .input = "Subject: a\n\nab\0c\n",
                .input_size = 17,
                .want_write = -EBADMSG,
                .want_finish = -EBADMSG,
                .want_error = "message contains NUL bytes",
        },
        {
                .name = "dot ends the message",
                .rcpts = { "rcpt@example.org" },
                .input = "a: b\n\nline\n..\n.\r\nafter\n\0",
                .input_size = 24,
                .want_done = true,
                .want_size = 14,
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N a: b\n"
                        ADDED("user@example.com")
                        "N \nN line\nN ..\n"
                        END,
        },
        {
                .name = "dot as the first line",
                .rcpts = { "rcpt@example.org" },
                .input = ".\nSubject: x\n",
                .want_done = true,
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("user@example.com")
                        END,
        },
        {
                .name = "dot with IGNORE_DOTS",
                .flags = CLEANUP_IGNORE_DOTS,
                .rcpts = { "rcpt@example.org" },
                .input = "a: b\n\nline\n.\nafter\n.",
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N a: b\n"
                        ADDED("user@example.com")
                        "N \nN line\nN .\nN after\nN .\n"
                        END,
        },
        {
                .name = "size limit exactly at",
                .size_limit = 8,
                .rcpts = { "rcpt@example.org" },
                .input = "abc\r\nde\n",
                .want_size = 7,
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("user@example.com")
                        "N \nN abc\nN de\n"
                        END,
        },
        {
                .name = "size limit exactly at, no final line end",
                .size_limit = 7,
                .rcpts = { "rcpt@example.org" },
                .input = "abc\r\nde",
                .want_size = 7,
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("user@example.com")
                        "N \nN abc\nN de\n"
                        END,
        },
        {
                .name = "size limit one over",
                .size_limit = 6,
                .rcpts = { "rcpt@example.org" },
                .input = "abc\r\nde\n",
                .want_write = -EFBIG,
                .want_finish = -EFBIG,
                .want_error = "message file too big",
        },
        {
                .name = "size limit one over at the end",
                .size_limit = 6,
                .rcpts = { "rcpt@example.org" },
                .input = "abc\r\nde",
                .want_finish = -EFBIG,
                .want_error = "message file too big",
        },
        {
                .name = "no recipient",
                .input = "Subject: x\n\nbody\n",
                .want_finish = -ENOMSG,
                .want_error = "no recipients specified",
        },
        {
                .name = "-t: groups, comments, quoted names, Bcc removed",
                .flags = CLEANUP_EXTRACT_RCPT,
                .input = "From: me@example.com\n"
                         "To: \"Doe, John\" <john@example.com>, (a (nested) comment) jane@example.com "
                         "(Jane)\n"
                         "cc: friends: bob@example.org, Carol <carol>;, dave\n"
                         "BCC: secret@example.net,\n"
                         " other@example.net\n"
                         "Subject: t\n\nbody\n",
                .want = ENVELOPE("user@example.com")
                        "R john@example.com\nR jane@example.com\nR bob@example.org\n"
                        "O carol\nR carol@example.com\nO dave\nR dave@example.com\n"
                        "R secret@example.net\nR other@example.net\nM\n"
                        RECEIVED
                        "N From: me@example.com\n"
                        "N To: \"Doe, John\" <john@example.com>, (a (nested) comment) "
                        "jane@example.com (Jane)\n"
                        "N cc: friends: bob@example.org, Carol <carol>;, dave\n"
                        "N Subject: t\n"
                        "N Message-Id: <20261123085900."
                        QID
                        "@mail.example.com>\n"
                        "N Date: Mon, 23 Nov 2026 08:59:00 +0000 (UTC)\n"
                        "N \nN body\n"
                        END,
        },
        {
                .name = "-t adds to the envelope recipients, duplicates dropped",
                .flags = CLEANUP_EXTRACT_RCPT,
                .rcpts = { "john@example.com", "john@example.com" },
                .input = "To: john@example.com, <john@example.com>\n\nx\n",
                .want = ENVELOPE("user@example.com")
                        "R john@example.com\nM\n"
                        RECEIVED
                        "N To: john@example.com, <john@example.com>\n"
                        ADDED("user@example.com")
                        "N \nN x\n"
                        END,
        },
        {
                .name = "-t with Resent- headers takes Resent-To only",
                .flags = CLEANUP_EXTRACT_RCPT,
                .input = "To: old@example.org\nResent-To: new@example.org\nResent-Bcc: hidden@example.org\n"
                         "Date: Sun, 1 Nov 2026 00:00:00 +0000\nFrom: a@example.org\n\nx\n",
                .want = ENVELOPE("user@example.com")
                        "R new@example.org\nR hidden@example.org\nM\n"
                        RECEIVED
                        "N To: old@example.org\nN Resent-To: new@example.org\n"
                        "N Date: Sun, 1 Nov 2026 00:00:00 +0000\nN From: a@example.org\n"
                        "N Resent-Message-Id: <20261123085900."
                        QID
                        "@mail.example.com>\n"
                        "N Resent-Date: Mon, 23 Nov 2026 08:59:00 +0000 (UTC)\n"
                        "N Resent-From: user@example.com\n"
                        "N \nN x\n"
                        END,
        },
        {
                .name = "-t with a broken address list",
                .flags = CLEANUP_EXTRACT_RCPT,
                .input = "To: \"unterminated <a@example.org>\n\nx\n",
                .want_finish = -EINVAL,
                .want_error = "bad address list syntax in To: header",
        },
        {
                .name = "-t with a bad address",
                .flags = CLEANUP_EXTRACT_RCPT,
                .input = "To: <a@-example.org>\n\nx\n",
                .want_finish = -EINVAL,
                .want_error = "bad recipient address syntax in To: header: <a@-example.org>",
        },
        {
                .name = "-t with an empty group only",
                .flags = CLEANUP_EXTRACT_RCPT,
                .input = "To: undisclosed-recipients:;\n\nx\n",
                .want_finish = -ENOMSG,
                .want_error = "no recipients specified",
        },
        {
                .name = "Bcc, Content-Length, Return-Path dropped without -t",
                .rcpts = { "rcpt@example.org" },
                .input = "Bcc: a@example.org\nReturn-Path : <x@y>\nContent-length: 12\nKeep: 1\n\nx\n",
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N Keep: 1\n"
                        ADDED("user@example.com")
                        "N \nN x\n"
                        END,
        },
        {
                .name = "null sender",
                .sender = "",
                .full_name = "Ignored Name",
                .rcpts = { "rcpt@example.org" },
                .input = "Subject: bounce\n\nx\n",
                .want = "C\nT 1795424340 123456\nA create_time=1795424340\nF Ignored Name\nS \n"
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N Subject: bounce\n"
                        ADDED("MAILER-DAEMON")
                        "N \nN x\n"
                        END,
        },
        {
                .name = "full name with specials is quoted",
                .full_name = "Doe, \"JD\" John\\",
                .rcpts = { "rcpt@example.org" },
                .input = "x\n",
                .want = "C\nT 1795424340 123456\nA create_time=1795424340\nF Doe, \"JD\" John\\\\\n"
                        "S user@example.com\nR rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("\"Doe, \\\\\"JD\\\\\" John\\\\\\\\\" <user@example.com>")
                        "N \nN x\n"
                        END,
        },
        {
                .name = "full name with a dot is quoted, CR LF become spaces",
                .full_name = "John Q. Public\r\nEvil: header",
                .rcpts = { "rcpt@example.org" },
                .input = "x\n",
                .want = "C\nT 1795424340 123456\nA create_time=1795424340\nF John Q. Public\\r\\nEvil: "
                        "header\n"
                        "S user@example.com\nR rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("\"John Q. Public  Evil: header\" <user@example.com>")
                        "N \nN x\n"
                        END,
        },
        {
                .name = "plain full name, blanks collapsed",
                .full_name = "  Jane \t Doe ",
                .rcpts = { "rcpt@example.org" },
                .input = "x\n",
                .want = "C\nT 1795424340 123456\nA create_time=1795424340\nF   Jane \\t Doe \n"
                        "S user@example.com\nR rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("Jane Doe <user@example.com>")
                        "N \nN x\n"
                        END,
        },
        {
                .name = "blank full name",
                .full_name = " ",
                .rcpts = { "rcpt@example.org" },
                .input = "x\n",
                .want = "C\nT 1795424340 123456\nA create_time=1795424340\nF  \n"
                        "S user@example.com\nR rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("<user@example.com>")
                        "N \nN x\n"
                        END,
        },
        {
                .name = "existing From, Date, Message-Id in any case",
                .rcpts = { "rcpt@example.org" },
                .input = "fRoM: x@example.org\nDATE : whenever\nmessage-ID: <a@b>\n\nbody\n",
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N fRoM: x@example.org\nN DATE : whenever\nN "
                        "message-ID: <a@b>\nN \nN body\n"
                        END,
        },
        {
                .name = "first line starting with a blank does not continue Received",
                .rcpts = { "rcpt@example.org" },
                .input = " indented\nSubject: no header\n",
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        ADDED("user@example.com")
                        "N \nN  indented\nN Subject: no header\n"
                        END,
        },
        {
                .name = "non-header line ends the headers, blank line inserted",
                .rcpts = { "rcpt@example.org" },
                .input = "Subject: x\nnot a header\nTo: body@example.org\n",
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N Subject: x\n"
                        ADDED("user@example.com")
                        "N \nN not a header\nN To: "
                        "body@example.org\n"
                        END,
        },
        {
                .name = "10,000-byte line",
                .rcpts = { "rcpt@example.org" },
                .input = NULL, /* built in the test: "Subject: long\n\n" + 10000 x + "\n" */
                .want_size = 15 + 10001,
                .want = ENVELOPE("user@example.com")
                        "R rcpt@example.org\nM\n"
                        RECEIVED
                        "N Subject: long\n"
                        ADDED("user@example.com")
                        "N \nL <2048 bytes>\nL <2048 "
                        "bytes>\nL <2048 bytes>\nL <2048 "
                        "bytes>\nN <1808 bytes>\n"
                        END,
        },
};
/* clang-format on */

/* dump - one line per record, data escaped; data over 100 bytes as "<N bytes>" */
static char *dump(const QueueBuf *b)
{
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        RecReader r;
        QueueRecord rec;
        int k;

        assert_non_null(f);
        rec_reader_init(&r, b->data, b->size, 0);
        while ((k = rec_next(&r, &rec)) > 0) {
                fputc(rec.type, f);
                if (rec.type == REC_TYPE_SIZE || rec.type == REC_TYPE_MESG || rec.type == REC_TYPE_XTRA ||
                    rec.type == REC_TYPE_END) {
                        fputc('\n', f);
                        continue;
                }
                fputc(' ', f);
                if (rec.size > 100) {
                        fprintf(f, "<%zu bytes>\n", rec.size);
                        continue;
                }
                for (size_t i = 0; i < rec.size; i++) {
                        uint8_t c = rec.data[i];

                        if (c == '\\')
                                fputs("\\\\", f);
                        else if (c == '\r')
                                fputs("\\r", f);
                        else if (c == '\n')
                                fputs("\\n", f);
                        else if (c == '\t')
                                fputs("\\t", f);
                        else if (c < 32 || c == 127)
                                fprintf(f, "\\x%02x", c);
                        else
                                fputc(c, f);
                }
                fputc('\n', f);
        }
        if (k < 0)
                fputs("<garbled>\n", f);
        fclose(f);
        return s;
}

/* check_size_record - the C record agrees with the records, as qmgr and postcat read them */
static void check_size_record(const QueueBuf *b, size_t n_rcpts)
{
        QueueEnvelope e = {};
        const char *why = NULL;
        const QueueSizeRecord *s = &e.size_rec;
        int r;

        r = queue_envelope_parse(b->data, b->size, &e, &why);
        if (r < 0)
                fail_msg("queue_envelope_parse: %d (%s)", r, strna(why));
        assert_true(e.complete);
        assert_int_equal(s->data_offset, e.content_offset);
        assert_int_equal(s->content_size, e.xtra_offset - e.content_offset);
        assert_int_equal(s->content_length, s->content_size);
        assert_int_equal(s->rcpt_count, n_rcpts);
        assert_int_equal(s->rcpt_count, e.n_rcpts);
        assert_int_equal(s->qmgr_flags, 0);
        assert_int_equal(s->sendopts, 0);
        /* M just before the content, X at the X offset */
        assert_true(s->data_offset >= 2);
        assert_int_equal(b->data[s->data_offset - 2], REC_TYPE_MESG);
        assert_int_equal(b->data[s->data_offset - 1], 0);
        assert_int_equal(b->data[e.xtra_offset], REC_TYPE_XTRA);
        assert_int_equal(e.arrival_sec, NOW_SEC);
        assert_int_equal(e.arrival_usec, NOW_USEC);
        assert_int_equal(e.create_time, NOW_SEC);
        queue_envelope_done(&e);
}

static const CleanupOptions base_options = {
        .myhostname = "mail.example.com",
        .myorigin = "example.com",
        .uid = 1000,
};

/* run_case - feed CASE in chunks of CHUNK bytes (0: one chunk); the dump, or NULL on failure */
static char *run_case(const MessageCase *t, const char *input, size_t size, size_t chunk)
{
        CleanupOptions o = base_options;
        QueueBuf b = {};
        Cleanup *c = NULL;
        char *d = NULL;
        int r, wr = 0;

        o.flags = t->flags;
        o.message_size_limit = t->size_limit;
        o.recipient_limit = t->rcpt_limit;
        assert_int_equal(cleanup_new(&o, &c), 0);
        assert_int_equal(cleanup_set_sender(c, t->sender ? t->sender : "user", t->full_name), 0);
        for (size_t i = 0; i < ELEMENTSOF(t->rcpts) && t->rcpts[i]; i++)
                assert_int_equal(cleanup_add_recipient(c, t->rcpts[i]), 0);

        for (size_t off = 0; off < size || (size == 0 && off == 0);) {
                size_t n = chunk ? MIN(chunk, size - off) : size;

                r = cleanup_write(c, input + off, n);
                if (r < 0 && wr == 0)
                        wr = r;
                off += n;
                if (n == 0)
                        break;
        }
        if (wr != t->want_write)
                fail_msg("%s (chunk %zu): cleanup_write: got %d, want %d", t->name, chunk, wr,
                         t->want_write);
        if (cleanup_done_input(c) != t->want_done)
                fail_msg("%s (chunk %zu): cleanup_done_input: got %d, want %d", t->name, chunk,
                         cleanup_done_input(c), t->want_done);

        r = cleanup_finish(c, QID, NOW_SEC, NOW_USEC, &b);
        if (r != t->want_finish)
                fail_msg("%s (chunk %zu): cleanup_finish: got %d (%s), want %d", t->name, chunk, r,
                         strna(cleanup_error(c)), t->want_finish);
        if (r < 0) {
                if (!cleanup_error(c) || !streq(cleanup_error(c), t->want_error))
                        fail_msg("%s: error: got \"%s\", want \"%s\"", t->name, strna(cleanup_error(c)),
                                 t->want_error);
                assert_int_equal(b.size, 0); /* nothing written */
        } else {
                if (t->want_size && cleanup_content_size(c) != t->want_size)
                        fail_msg("%s: size: got %" PRIu64 ", want %" PRIu64, t->name,
                                 cleanup_content_size(c), t->want_size);
                d = dump(&b);
                check_size_record(&b, cleanup_n_recipients(c));
                /* a second finish is refused and leaves the buffer alone */
                size_t before = b.size;
                assert_int_equal(cleanup_finish(c, QID, NOW_SEC, NOW_USEC, &b), -EINVAL);
                assert_int_equal(b.size, before);
        }
        queue_buf_done(&b);
        cleanup_free(c);
        return d;
}

static void test_messages(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(message_cases); i++) {
                const MessageCase *t = message_cases + i;
                _cleanup_(freep) char *built = NULL, *whole = NULL, *bytewise = NULL, *sevens = NULL;
                const char *input = t->input;
                size_t size = t->input_size ? t->input_size : input ? strlen(input) : 0;

                if (!input) {
                        const char *head = "Subject: long\n\n";

                        size = strlen(head) + 10000 + 1;
                        built = malloc(size);
                        assert_non_null(built);
                        memcpy(built, head, strlen(head));
                        memset(built + strlen(head), 'x', 10000);
                        built[size - 1] = '\n';
                        input = built;
                }

                whole = run_case(t, input, size, 0);
                bytewise = run_case(t, input, size, 1);
                sevens = run_case(t, input, size, 7);
                if (!t->want) {
                        assert_null(whole);
                        continue;
                }
                if (!whole || !streq(whole, t->want))
                        fail_msg("%s:\n--- got\n%s--- want\n%s", t->name, strna(whole), t->want);
                if (!bytewise || !streq(bytewise, whole))
                        fail_msg("%s: one byte at a time differs:\n--- got\n%s--- want\n%s", t->name,
                                 strna(bytewise), whole);
                if (!sevens || !streq(sevens, whole))
                        fail_msg("%s: 7-byte chunks differ", t->name);
        }
}

/* The exact bytes of one small queue file, C record included: the layout Postfix writes. The
 * C record's figures were counted by hand: 13 envelope records take 316 bytes (M ends there),
 * the 7 content records 259. */
static void test_exact_file(void **state)
{
        static const struct {
                char type;
                const char *data;
        } records[] = {
                {'C', "            259             316               1               0             259      "
                      "         0"},
                {'T', "1795424340 123456"},
                {'A', "create_time=1795424340"},
                {'F', "User"},
                {'S', "user@example.com"},
                {'A', "log_client_name=localhost"},
                {'A', "log_client_address=127.0.0.1"},
                {'A', "log_message_origin=user"},
                {'A', "log_helo_name=foo"},
                {'A', "log_protocol_name=ESMTP"},
                {'O', "rcpt"},
                {'R', "rcpt@example.com"},
                {'M', ""},
                {'N', "Received: by mail.example.com (tern, from userid 1000)"},
                {'N', "\tid " QID "; Mon, 23 Nov 2026 08:59:00 +0000 (UTC)"},
                {'N', "Message-Id: <20261123085900." QID "@mail.example.com>"},
                {'N', "Date: Mon, 23 Nov 2026 08:59:00 +0000 (UTC)"},
                {'N', "From: User <user@example.com>"},
                {'N', ""},
                {'N', "hi"},
                {'X', ""},
                {'E', ""},
        };
        uint8_t want[1024];
        size_t want_size = 0;

        for (size_t i = 0; i < ELEMENTSOF(records); i++) {
                size_t n = strlen(records[i].data);

                assert_true(n < 128);
                want[want_size++] = records[i].type;
                want[want_size++] = n;
                memcpy(want + want_size, records[i].data, n);
                want_size += n;
        }
        assert_int_equal(want_size, 579);

        CleanupOptions o = base_options;
        QueueBuf b = {};
        Cleanup *c = NULL;

        o.log_client_name = "localhost";
        o.log_client_address = "127.0.0.1";
        o.log_helo_name = "foo";
        o.log_protocol_name = "ESMTP";
        o.log_message_origin = "user";
        assert_int_equal(cleanup_new(&o, &c), 0);
        assert_int_equal(cleanup_set_sender(c, "user", "User"), 0);
        assert_int_equal(cleanup_add_recipient(c, "rcpt"), 0);
        assert_string_equal(cleanup_sender(c), "user@example.com");
        assert_int_equal(cleanup_n_recipients(c), 1);
        assert_string_equal(cleanup_recipient(c, 0), "rcpt@example.com");
        assert_null(cleanup_recipient(c, 1));
        assert_int_equal(cleanup_write(c, "hi", 2), 0);
        assert_int_equal(cleanup_finish(c, QID, NOW_SEC, NOW_USEC, &b), 0);
        assert_int_equal(cleanup_content_size(c), 3);
        if (b.size != want_size || memcmp(b.data, want, b.size) != 0) {
                QueueBuf w = {.data = want, .size = want_size};
                _cleanup_(freep) char *got = dump(&b), *exp = dump(&w);

                fail_msg("queue file differs (%zu bytes, want %zu):\n--- got\n%s--- want\n%s", b.size,
                         want_size, got, exp);
        }
        check_size_record(&b, 1);
        queue_buf_done(&b);
        cleanup_free(c);
}

/* What tern-smtpd writes: smtpd's Received: (with "for" only for one recipient), the DSN
 * attributes before each R, no headers added for a remote client, "." an ordinary line. */
static void test_smtp(void **state)
{
        static const struct {
                size_t n_rcpts;
                const char *addr, *want_received;
        } cases[] = {
                {1, "192.0.2.1",
                 "Received: from helo.example (client.example [192.0.2.1])\n"
                 "\tby mail.example.com (tern) with ESMTP id " QID "\n"
                 "\tfor <a@example.com>; Mon, 23 Nov 2026 08:59:00 +0000 (UTC)\n"},
                {2, "2001:db8::1",
                 "Received: from helo.example (client.example [IPv6:2001:db8::1])\n"
                 "\tby mail.example.com (tern) with ESMTP id " QID ";\n"
                 "\tMon, 23 Nov 2026 08:59:00 +0000 (UTC)\n"},
        };

        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                CleanupOptions o = base_options;
                QueueBuf b = {};
                QueueEnvelope e = {};
                const char *reason = NULL;
                _cleanup_(freep) char *text = NULL, *want = NULL;
                size_t text_size;
                bool truncated;
                Cleanup *c = NULL;

                o.flags = CLEANUP_SMTP | CLEANUP_NO_ADD_HEADERS | CLEANUP_IGNORE_DOTS;
                o.log_client_name = "client.example";
                o.log_client_address = cases[k].addr;
                o.log_helo_name = "helo.example";
                o.log_protocol_name = "ESMTP";
                o.dsn_envid = "env-1";
                o.dsn_ret = 2;
                assert_int_equal(cleanup_new(&o, &c), 0);
                assert_int_equal(cleanup_set_sender(c, "s@example.com", NULL), 0);
                assert_int_equal(cleanup_add_recipient_dsn(c, "a@example.com", "rfc822;A@example.com", 8), 0);
                if (cases[k].n_rcpts > 1)
                        assert_int_equal(cleanup_add_recipient_dsn(c, "b@example.com", NULL, 0), 0);
                assert_int_equal(cleanup_write(c, "Subject: x\n\n.\nend\n", 18), 0);
                assert_false(cleanup_done_input(c));
                assert_int_equal(cleanup_finish(c, QID, NOW_SEC, NOW_USEC, &b), 0);

                assert_int_equal(queue_envelope_parse(b.data, b.size, &e, &reason), 0);
                assert_string_equal(queue_envelope_attr(&e, "envelope_id"), "env-1");
                assert_string_equal(queue_envelope_attr(&e, "ret_flags"), "2");
                assert_string_equal(queue_envelope_attr(&e, "log_protocol_name"), "ESMTP");
                assert_int_equal(e.n_rcpts, cases[k].n_rcpts);
                assert_string_equal(e.rcpts[0].dsn_orig_rcpt, "rfc822;A@example.com");
                assert_int_equal(e.rcpts[0].dsn_notify, 8);
                if (cases[k].n_rcpts > 1) {
                        assert_string_equal(e.rcpts[1].dsn_orig_rcpt, "");
                        assert_int_equal(e.rcpts[1].dsn_notify, 0);
                }
                assert_int_equal(queue_content_text(b.data, b.size, &e, 0, false, &text, &text_size, &truncated), 0);
                assert_int_equal(asprintf(&want, "%sSubject: x\n\n.\nend\n", cases[k].want_received) > 0, 1);
                assert_string_equal(text, want);
                check_size_record(&b, cases[k].n_rcpts);
                queue_envelope_done(&e);
                queue_buf_done(&b);
                cleanup_free(c);
        }
}

/* cleanup_write_line: lines as tern-smtpd found them - a CR at the end is data, pieces join up,
 * a NUL or too much refuses the message, as cleanup_write() would. */
static void test_write_line(void **state)
{
        CleanupOptions o = base_options;
        QueueBuf b = {};
        QueueEnvelope e = {};
        const char *reason = NULL;
        _cleanup_(freep) char *text = NULL;
        size_t text_size;
        bool truncated;
        Cleanup *c = NULL;

        o.flags = CLEANUP_SMTP | CLEANUP_NO_ADD_HEADERS | CLEANUP_IGNORE_DOTS;
        o.log_client_name = "unknown";
        o.log_client_address = "192.0.2.1";
        assert_int_equal(cleanup_new(&o, &c), 0);
        assert_int_equal(cleanup_set_sender(c, "", NULL), 0);
        assert_int_equal(cleanup_add_recipient(c, "a@example.com"), 0);
        assert_int_equal(cleanup_write_line(c, "Subject: x", 10, false), 0);
        assert_int_equal(cleanup_write_line(c, "", 0, false), 0);
        assert_int_equal(cleanup_write_line(c, "cr at end\r", 10, false), 0);
        assert_int_equal(cleanup_write_line(c, "one ", 4, true), 0);
        assert_int_equal(cleanup_write_line(c, "line", 4, false), 0);
        assert_int_equal(cleanup_write_line(c, ".", 1, false), 0);
        assert_false(cleanup_done_input(c));
        assert_int_equal(cleanup_finish(c, QID, NOW_SEC, NOW_USEC, &b), 0);
        assert_int_equal(queue_envelope_parse(b.data, b.size, &e, &reason), 0);
        assert_int_equal(queue_content_text(b.data, b.size, &e, 0, false, &text, &text_size, &truncated), 0);
        assert_non_null(strstr(text, "\nSubject: x\n\ncr at end\r\none line\n.\n"));
        assert_non_null(strstr(text, "Received: from unknown (unknown [192.0.2.1])\n"));
        queue_envelope_done(&e);
        queue_buf_done(&b);
        cleanup_free(c);

        o.message_size_limit = 8;
        assert_int_equal(cleanup_new(&o, &c), 0);
        assert_int_equal(cleanup_write_line(c, "1234", 4, true), 0);
        assert_int_equal(cleanup_write_line(c, "56789", 5, true), -EFBIG);
        assert_int_equal(cleanup_write_line(c, "", 0, false), -EFBIG);
        cleanup_free(c);

        o.message_size_limit = 0;
        assert_int_equal(cleanup_new(&o, &c), 0);
        assert_int_equal(cleanup_write_line(c, "a\0b", 3, false), -EBADMSG);
        assert_string_equal(cleanup_error(c), "message contains NUL bytes");
        cleanup_free(c);
}

/* A QueueBuf that already holds something: offsets count from where it ended. */
static void test_appends_to_buffer(void **state)
{
        QueueBuf b = {};
        Cleanup *c = NULL;
        QueueBuf tail;

        assert_int_equal(queue_buf_put(&b, 'w', "pad", 3), 0);
        assert_int_equal(cleanup_new(&base_options, &c), 0);
        assert_int_equal(cleanup_set_sender(c, "", NULL), 0);
        assert_int_equal(cleanup_add_recipient(c, "a@example.org"), 0);
        assert_int_equal(cleanup_finish(c, QID, NOW_SEC, 0, &b), 0);
        tail = (QueueBuf){.data = b.data + 5, .size = b.size - 5};
        {
                QueueEnvelope e = {};
                const char *why = NULL;

                assert_int_equal(queue_envelope_parse(tail.data, tail.size, &e, &why), 0);
                assert_int_equal(e.size_rec.data_offset, e.content_offset);
                assert_int_equal(e.size_rec.content_size, e.xtra_offset - e.content_offset);
                queue_envelope_done(&e);
        }
        queue_buf_done(&b);
        cleanup_free(c);
}

static void test_envelope_errors(void **state)
{
        CleanupOptions o = base_options;
        Cleanup *c = NULL;

        o.recipient_limit = 2;
        assert_int_equal(cleanup_new(&o, &c), 0);
        assert_null(cleanup_error(c));

        assert_int_equal(cleanup_set_sender(c, "bad sender", NULL), -EINVAL);
        assert_string_equal(cleanup_error(c), "bad sender address syntax: <bad sender>");
        assert_null(cleanup_sender(c));
        assert_int_equal(cleanup_set_sender(c, "<a@b>", NULL), -EINVAL);
        assert_int_equal(cleanup_set_sender(c, "a@b\n", NULL), -EINVAL);
        assert_string_equal(cleanup_error(c), "bad sender address syntax: <a@b?>");
        assert_int_equal(cleanup_set_sender(c, "\"john doe\"@example.org", "J"), 0);
        assert_string_equal(cleanup_sender(c), "\"john doe\"@example.org");

        assert_int_equal(cleanup_add_recipient(c, ""), -EINVAL);
        assert_string_equal(cleanup_error(c), "bad recipient address syntax: <>");
        assert_int_equal(cleanup_add_recipient(c, "a..b@example.org"), -EINVAL);
        assert_string_equal(cleanup_error(c), "bad recipient address syntax: <a..b@example.org>");
        assert_int_equal(cleanup_add_recipient(c, "a@example.org"), 0);
        assert_int_equal(cleanup_add_recipient(c, "a@example.org"), 0); /* duplicate: dropped */
        assert_int_equal(cleanup_add_recipient(c, "b"), 0);
        assert_string_equal(cleanup_recipient(c, 1), "b@example.com");
        assert_int_equal(cleanup_add_recipient(c, "c@example.org"), -E2BIG);
        assert_string_equal(cleanup_error(c), "too many recipients");
        assert_int_equal(cleanup_n_recipients(c), 2);
        cleanup_free(c);

        /* a long bad address is cut in the error text */
        {
                char longaddr[300];

                memset(longaddr, 'a', sizeof(longaddr) - 1);
                longaddr[sizeof(longaddr) - 1] = 0;
                assert_int_equal(cleanup_new(&base_options, &c), 0);
                assert_int_equal(cleanup_add_recipient(c, longaddr), -EINVAL);
                assert_int_equal(strlen(cleanup_error(c)),
                                 strlen("bad recipient address syntax: <>") + 100 + 3);
                cleanup_free(c);
        }

        /* no sender at all */
        {
                QueueBuf b = {};

                assert_int_equal(cleanup_new(&base_options, &c), 0);
                assert_int_equal(cleanup_add_recipient(c, "a@example.org"), 0);
                assert_int_equal(cleanup_finish(c, QID, NOW_SEC, 0, &b), -EINVAL);
                assert_string_equal(cleanup_error(c), "no sender specified");
                assert_int_equal(b.size, 0);
                cleanup_free(c);
        }

        /* bad options */
        o = base_options;
        o.myorigin = "";
        assert_int_equal(cleanup_new(&o, &c), -EINVAL);
        assert_null(cleanup_free(NULL));
}

/* hopcount_limit 50: 48 Received headers + ours pass, 49 + ours do not */
static void test_hop_limit(void **state)
{
        for (int n = 48; n <= 49; n++) {
                _cleanup_(freep) char *msg = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&msg, &len);
                QueueBuf b = {};
                Cleanup *c = NULL;

                for (int i = 0; i < n; i++)
                        fprintf(f, "received: from hop%d\n", i);
                fputs("\nbody\n", f);
                fclose(f);
                assert_int_equal(cleanup_new(&base_options, &c), 0);
                assert_int_equal(cleanup_set_sender(c, "u", NULL), 0);
                assert_int_equal(cleanup_add_recipient(c, "a@example.org"), 0);
                assert_int_equal(cleanup_write(c, msg, len), 0);
                assert_int_equal(cleanup_finish(c, QID, NOW_SEC, 0, &b), n == 48 ? 0 : -ELOOP);
                if (n == 49)
                        assert_string_equal(cleanup_error(c), "too many hops");
                queue_buf_done(&b);
                cleanup_free(c);
        }
}

static void test_addr_valid(void **state)
{
        static const struct {
                const char *addr;
                bool valid;
        } cases[] = {
                {"", true},
                {"user", true},
                {"user@example.com", true},
                {"first.last+tag@sub.example.com", true},
                {"\"john doe\"@example.com", true},
                {"\"a\\\"b\"@example.com", true},
                {"\"quoted\"", true},
                {"user@[192.0.2.1]", true},
                {"user@[IPv6:2001:db8::1]", true},
                {"user@under_score.example", true},
                {"!#$%&'*+-/=?^_`{|}~@example.com", true},
                {"us\xc3\xa9r@example.com", true},
                {"user@", false},
                {"@example.com", false},
                {"a b@example.com", false},
                {"<a@example.com>", false},
                {"a@example.com>", false},
                {"a..b@example.com", false},
                {".a@example.com", false},
                {"a.@example.com", false},
                {"a@b@example.com", false},
                {"a@example..com", false},
                {"a@.example.com", false},
                {"a@example.com.", false},
                {"a@-example.com", false},
                {"a@example-.com", false},
                {"a@exa mple.com", false},
                {"a\x01@example.com", false},
                {"a@example.com\n", false},
                {"\"unterminated@example.com", false},
                {"\"a\x01\"@example.com", false},
                {"a@[1.2.3.4", false},
                {"a@[]", false},
                {"a@[a[b]", false},
                {"a(comment)@example.com", false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (addr_valid(cases[i].addr) != cases[i].valid)
                        fail_msg("addr_valid(\"%s\"): got %d, want %d", cases[i].addr, !cases[i].valid,
                                 cases[i].valid);
        assert_false(addr_valid(NULL));

        /* length limits: local part 64, label 63, domain 255, address 254 */
        char buf[400], *p;

        memset(buf, 'a', 64);
        strcpy(buf + 64, "@example.com");
        assert_true(addr_valid(buf));
        memset(buf, 'a', 65);
        strcpy(buf + 65, "@example.com");
        assert_false(addr_valid(buf));

        strcpy(buf, "a@");
        memset(buf + 2, 'b', 63);
        strcpy(buf + 65, ".com");
        assert_true(addr_valid(buf));
        memset(buf + 2, 'b', 64);
        strcpy(buf + 66, ".com");
        assert_false(addr_valid(buf));

        /* 2 + 63*3 + 3 dots... build an address of exactly 254 and one of 255 bytes */
        for (size_t total = 254; total <= 255; total++) {
                p = buf;
                *p++ = 'a';
                *p++ = '@';
                while ((size_t)(p - buf) < total) {
                        size_t left = total - (p - buf), label = MIN(left, (size_t)60);

                        if (p[-1] != '@')
                                *p++ = '.', left--, label = MIN(left, (size_t)60);
                        if (label == 0) {
                                p[-1] = 'x';
                                break;
                        }
                        memset(p, 'c', label);
                        p += label;
                }
                *p = 0;
                assert_int_equal(strlen(buf), total);
                assert_int_equal(addr_valid(buf), total == 254);
        }
}

static void test_addr_qualify(void **state)
{
        static const struct {
                const char *addr, *want;
        } cases[] = {
                {"user", "user@example.com"},       {"user@example.org", "user@example.org"},       {"", ""},
                {"\"a@b\"", "\"a@b\"@example.com"}, {"\"a@b\"@example.org", "\"a@b\"@example.org"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *q = NULL;

                assert_int_equal(addr_qualify(cases[i].addr, "example.com", &q), 0);
                if (!streq(q, cases[i].want))
                        fail_msg("addr_qualify(\"%s\"): got \"%s\", want \"%s\"", cases[i].addr, q,
                                 cases[i].want);
        }
        char *q = NULL;
        assert_int_equal(addr_qualify("user", "", &q), -EINVAL);
        assert_int_equal(addr_qualify("user", NULL, &q), -EINVAL);
        assert_null(q);
}

static void test_addr_list_parse(void **state)
{
        static const struct {
                const char *value;
                int r;
                const char *want; /* addresses joined with '|' */
        } cases[] = {
                {"a@example.com", 0, "a@example.com"},
                {" a@example.com , b@example.org ", 0, "a@example.com|b@example.org"},
                {"John Doe <john@example.com>", 0, "john@example.com"},
                {"\"Doe, John\" <john@example.com>, jane@example.com", 0,
                 "john@example.com|jane@example.com"},
                {"john@example.com (John (the) Doe)", 0, "john@example.com"},
                {"(c) john (x) @ (y) example.com", 0, "john@example.com"},
                {"friends: a@example.com, B <b@example.com>;, c@example.com", 0,
                 "a@example.com|b@example.com|c@example.com"},
                {"undisclosed-recipients:;", 0, ""},
                {"", 0, ""},
                {" , ,, ", 0, ""},
                {"a@example.com; b@example.com", 0, "a@example.com|b@example.com"},
                {"<@relay.example,@r2.example:a@example.com>", 0, "a@example.com"},
                {"John Q. Public <jqp@example.com>", 0, "jqp@example.com"},
                {"\"quoted local\"@example.com", 0, "\"quoted local\"@example.com"},
                {"user", 0, "user"},
                {"<>", 0, ""},
                {"a@[192.0.2.1]", 0, "a@[192.0.2.1]"},
                {"first . last @ example.com", 0, "first.last@example.com"},
                {"a@example.com\r\n\tb@example.org", -EINVAL, NULL},
                {"a@example.com,\r\n\tb@example.org", 0, "a@example.com|b@example.org"},
                {"John Doe", -EINVAL, NULL},
                {"\"unterminated", -EINVAL, NULL},
                {"(unterminated", -EINVAL, NULL},
                {"<a@example.com", -EINVAL, NULL},
                {"a@example.com>", -EINVAL, NULL},
                {"<a@<b>>", -EINVAL, NULL},
                {"<a@example.com> trailing", -EINVAL, NULL},
                {"g1: g2: a@example.com;;", -EINVAL, NULL},
                {"a@[1.2", -EINVAL, NULL},
                {"a\x01@example.com", -EINVAL, NULL},
                {"<a,b@example.com>", -EINVAL, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(freep) char *got = NULL;
                char **v = NULL;
                size_t len = 0;
                FILE *f;
                int r;

                r = addr_list_parse(cases[i].value, strlen(cases[i].value), &v);
                if (r != cases[i].r)
                        fail_msg("addr_list_parse(\"%s\"): got %d, want %d", cases[i].value, r, cases[i].r);
                if (r < 0) {
                        assert_null(v);
                        continue;
                }
                f = open_memstream(&got, &len);
                for (size_t k = 0; v[k]; k++) {
                        fprintf(f, "%s%s", k ? "|" : "", v[k]);
                        free(v[k]);
                }
                free(v);
                fclose(f);
                if (!streq(got, cases[i].want))
                        fail_msg("addr_list_parse(\"%s\"): got \"%s\", want \"%s\"", cases[i].value, got,
                                 cases[i].want);
        }

        /* the size is honoured: no read past it, embedded NUL is just a bad byte */
        char **v = NULL;
        assert_int_equal(addr_list_parse("a@example.com, junk", 13, &v), 0);
        assert_string_equal(v[0], "a@example.com");
        assert_null(v[1]);
        free(v[0]);
        free(v);
        assert_int_equal(addr_list_parse("a\0b", 3, &v), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_messages),          cmocka_unit_test(test_exact_file),
                cmocka_unit_test(test_appends_to_buffer), cmocka_unit_test(test_envelope_errors),
                cmocka_unit_test(test_hop_limit),         cmocka_unit_test(test_addr_valid),
                cmocka_unit_test(test_addr_qualify),      cmocka_unit_test(test_addr_list_parse),
                cmocka_unit_test(test_smtp),              cmocka_unit_test(test_write_line),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
