/* SPDX-License-Identifier: MIT */
/*
 * fuzz-queue-filter.c - libFuzzer target for io.tern.Queue's Filter decoder (src/qmgr/queue-filter.c)
 *
 * The input is parsed as JSON (NUL bytes allowed inside strings) and given to
 * qmgr_filter_from_json(), as tern-qmgr does with a caller's filter. A decode either fails with
 * -EINVAL and the name of a field, or yields a filter that keeps the decoder's promises: every
 * queue ID valid (no path can be made of it), a known queue or none, olderThan -1 or more, the
 * strings without NUL bytes. Never crash, never leak. Seeds: fuzz/corpus/queue-filter/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue-filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_string(json_t *j, const char *key, const char *s)
{
        json_t *v = json_object_get(j, key);

        if (s && (!json_is_string(v) || strlen(s) != json_string_length(v)))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_t *j = json_loadb((const char *) data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        const char *bad = NULL;
        QmgrFilter f;
        int r;

        if (!j)
                return 0;
        r = qmgr_filter_from_json(j, &f, &bad);
        if (r < 0) {
                if (r != -EINVAL || !bad)
                        abort();
        } else {
                size_t i;
                json_t *e;

                if (f.queue != QUEUE_INVALID && !queue_name_to_string(f.queue))
                        abort();
                if (f.queue == QUEUE_INVALID && !json_is_null(j) && json_object_get(j, "queue") &&
                    !json_is_null(json_object_get(j, "queue")))
                        abort();
                if (f.older_than < -1)
                        abort();
                if (f.queue_ids)
                        json_array_foreach(f.queue_ids, i, e)
                                if (!queue_id_valid(json_string_value(e)))
                                        abort();
                check_string(j, "sender", f.sender);
                check_string(j, "recipient", f.recipient);
                check_string(j, "recipientDomain", f.recipient_domain);
                (void) qmgr_filter_empty(&f);
        }
        json_decref(j);
        return 0;
}
