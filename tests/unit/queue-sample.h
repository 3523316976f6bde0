/* SPDX-License-Identifier: MIT */
/*
 * queue-sample.h - a small whole queue file, as Postfix's cleanup writes one, for the queue-store
 * tests and the crash writer (tests/queue/crash-writer.c)
 *
 * C (rewritten once the offsets are known), T, A create_time, S, A log_* attributes, one R per
 * recipient, M, N content lines, X, E. The content mentions the queue ID as a Received: line would.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "queue-file.h"

/* queue_sample_build - the file for ID with the N_RCPTS recipients RCPTS and BODY_LINES lines of
 * content into B (emptied first); 0 or -errno */
static inline int queue_sample_build(QueueBuf *b, const char *id, const char *const *rcpts, size_t n_rcpts,
                                     unsigned body_lines)
{
        char size_rec[QUEUE_FILE_SIZE_REC_LEN];
        QueueSizeRecord sr = {};
        size_t data_offset, xtra_offset, content_length = 0;
        char line[128];
        int r;

        b->size = 0;
        queue_size_record_format(&sr, size_rec);
        r = queue_buf_put(b, REC_TYPE_SIZE, size_rec, sizeof(size_rec));
        if (r >= 0)
                r = queue_buf_putf(b, REC_TYPE_TIME, "%ld %ld", 1700000000L, 123456L);
        if (r >= 0)
                r = queue_buf_putf(b, REC_TYPE_ATTR, "create_time=%ld", 1700000000L);
        if (r >= 0)
                r = queue_buf_putf(b, REC_TYPE_FROM, "%s", "sender@example.org");
        if (r >= 0)
                r = queue_buf_putf(b, REC_TYPE_ATTR, "%s", "log_client_name=localhost");
        for (size_t i = 0; r >= 0 && i < n_rcpts; i++)
                r = queue_buf_putf(b, REC_TYPE_RCPT, "%s", rcpts[i]);
        if (r >= 0)
                r = queue_buf_put(b, REC_TYPE_MESG, "", 0);
        if (r < 0)
                return r;
        data_offset = b->size;
        for (unsigned i = 0; r >= 0 && i < body_lines + 2; i++) {
                int n = i == 0   ? snprintf(line, sizeof(line), "Received: by test id %s", id)
                        : i == 1 ? snprintf(line, sizeof(line), "%s", "")
                                 : snprintf(line, sizeof(line), "body line %u of message %s", i - 1, id);

                content_length += (size_t) n + 1;
                r = queue_buf_put_line(b, line, (size_t) n);
        }
        if (r < 0)
                return r;
        xtra_offset = b->size;
        r = queue_buf_put(b, REC_TYPE_XTRA, "", 0);
        if (r >= 0)
                r = queue_buf_put(b, REC_TYPE_END, "", 0);
        if (r < 0)
                return r;

        sr = (QueueSizeRecord) {
                .content_size = (int64_t) (xtra_offset - data_offset),
                .data_offset = (int64_t) data_offset,
                .rcpt_count = (int64_t) n_rcpts,
                .content_length = (int64_t) content_length,
        };
        queue_size_record_format(&sr, size_rec);
        /* the C record's data starts after its type byte and one-byte length (95 < 128) */
        memcpy(b->data + 2, size_rec, sizeof(size_rec));
        return 0;
}
