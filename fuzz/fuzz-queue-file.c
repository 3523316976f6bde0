/* SPDX-License-Identifier: MIT */
/*
 * fuzz-queue-file.c - libFuzzer target for the queue file record reader and envelope decoder
 *
 * The input is a queue file. queue_envelope_parse() must return 0 or -EBADMSG with a reason
 * (anything else aborts), must not hang on pointer loops, and must not leak. On success the
 * envelope is checked for what callers rely on: every recipient offset holds an R, D or / byte
 * inside the input, the content and X offsets are inside it, strings are set. Then the plain
 * record reader walks the input from the start and from every record boundary it reports, and
 * must never hand out a record that ends past the input.
 *
 * Seeds: fuzz/corpus/queue-file/ (valid files, a Postfix-style pointer append, truncations,
 * pointer loops).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "macro.h"
#include "queue-file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        QueueEnvelope e;
        const char *reason = NULL;
        RecReader rd;
        QueueRecord rec;
        int r;

        r = queue_envelope_parse(data, size, &e, &reason);
        if (r == 0) {
                if (!e.sender || !e.complete || e.content_offset > size || e.xtra_offset >= size)
                        abort();
                for (size_t i = 0; i < e.n_rcpts; i++) {
                        const QueueRecipient *rc = &e.rcpts[i];

                        if (rc->offset >= size || !rc->address || !rc->orig_address || !rc->dsn_orig_rcpt)
                                abort();
                        if (data[rc->offset] != 'R' && data[rc->offset] != 'D' && data[rc->offset] != '/')
                                abort();
                        if (rc->done != (data[rc->offset] != 'R'))
                                abort();
                }
                for (size_t i = 0; i < e.n_attrs; i++)
                        if (!e.attr_names[i] || !e.attr_values[i] ||
                            queue_envelope_attr(&e, e.attr_names[i]) == NULL)
                                abort();
                queue_envelope_done(&e);
        } else if (r != -EBADMSG || !reason) {
                fprintf(stderr, "queue_envelope_parse: %d without a reason\n", r);
                abort();
        }

        rec_reader_init(&rd, data, size, 7);
        while ((r = rec_next(&rd, &rec)) == 1)
                if (rec.data < data || rec.data + rec.size > data + size || rec.offset < 7 ||
                    rec.offset - 7 >= size || rd.pos > size)
                        abort();
        if (r != 0 && r != -EBADMSG)
                abort();
        if ((r == 0) != (rd.pos == size))
                abort();
        return 0;
}
