/* SPDX-License-Identifier: MIT */
/*
 * fuzz-cleanup.c - libFuzzer target for local-mail cleanup (src/lib/cleanup.c)
 *
 * Input layout: byte 0 = flags (bit 0 CLEANUP_EXTRACT_RCPT, bit 1 CLEANUP_IGNORE_DOTS), byte 1 =
 * chunk size - 1 for cleanup_write(), byte 2 = message_size_limit / 16 (0: none), then envelope
 * lines up to an empty line: the sender, the full name ("-" for none), then recipients (at most
 * 8); everything after the empty line is the message. Drives the whole API and, when
 * cleanup_finish() succeeds, decodes the queue file with queue_envelope_parse() and checks the C
 * record against it (abort on any disagreement). Must never crash, leak, hang or trip a
 * sanitizer. Seeds: fuzz/corpus/cleanup/.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "queue-file.h"

#define FUZZ_RCPT_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* next_line - a NUL-terminated copy of the next LF-terminated line, or NULL at the end */
static char *next_line(const uint8_t **p, const uint8_t *end)
{
        const uint8_t *nl = memchr(*p, '\n', end - *p);
        char *s;

        if (!nl)
                return NULL;
        s = strndup((const char *)*p, nl - *p);
        *p = nl + 1;
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        CleanupOptions o = {
                .myhostname = "mail.example.com",
                .myorigin = "example.com",
                .uid = 1000,
                .log_protocol_name = "local",
        };
        const uint8_t *p, *end = data + size;
        QueueBuf b = {};
        Cleanup *c = NULL;
        size_t chunk, n_lines = 0;
        int r;

        if (size < 3)
                return 0;
        o.flags = data[0] & (CLEANUP_EXTRACT_RCPT | CLEANUP_IGNORE_DOTS);
        chunk = (size_t)data[1] + 1;
        o.message_size_limit = (uint64_t)data[2] * 16;
        o.recipient_limit = 6;
        if (cleanup_new(&o, &c) < 0)
                abort();

        for (p = data + 3;;) {
                char *line = next_line(&p, end);

                if (!line)
                        break;
                if (!*line) {
                        free(line);
                        break;
                }
                if (n_lines == 0)
                        (void)cleanup_set_sender(c, line, NULL);
                else if (n_lines == 1)
                        (void)cleanup_set_sender(c, cleanup_sender(c) ? cleanup_sender(c) : "",
                                                 strcmp(line, "-") ? line : NULL);
                else if (n_lines < 2 + FUZZ_RCPT_MAX) {
                        r = cleanup_add_recipient(c, line);
                        if (r < 0 && (r != -EINVAL && r != -E2BIG))
                                abort();
                        if (r < 0 && !cleanup_error(c))
                                abort();
                }
                free(line);
                n_lines++;
        }

        while (p < end) {
                size_t n = (size_t)(end - p) < chunk ? (size_t)(end - p) : chunk;

                r = cleanup_write(c, p, n);
                if (r < 0 && r != -EBADMSG && r != -EFBIG)
                        abort();
                p += n;
        }
        (void)cleanup_done_input(c);

        r = cleanup_finish(c, "4Dn6Fq0Bcdz1A2", 1795424340, 1, &b);
        if (r < 0) {
                if (b.size != 0 || !cleanup_error(c))
                        abort();
        } else {
                QueueEnvelope e = {};
                const char *why = NULL;

                if (queue_envelope_parse(b.data, b.size, &e, &why) < 0)
                        abort();
                if (e.size_rec.data_offset != (int64_t)e.content_offset ||
                    e.size_rec.content_size != (int64_t)(e.xtra_offset - e.content_offset) ||
                    e.size_rec.rcpt_count != (int64_t)cleanup_n_recipients(c) ||
                    e.n_rcpts != cleanup_n_recipients(c) || !e.complete)
                        abort();
                for (size_t i = 0; i < e.n_rcpts; i++)
                        if (!addr_valid(e.rcpts[i].address) || !*e.rcpts[i].address)
                                abort();
                if (o.message_size_limit && cleanup_content_size(c) > o.message_size_limit)
                        abort();
                queue_envelope_done(&e);
        }
        queue_buf_done(&b);
        cleanup_free(c);
        return 0;
}
