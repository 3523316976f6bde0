/* SPDX-License-Identifier: MIT */
/*
 * queue-filter.c - decoding io.tern.Queue's Filter (see queue-filter.h and the IDL)
 */
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "queue-filter.h"

int qmgr_filter_from_json(json_t *j, QmgrFilter *ret, const char **ret_bad)
{
        QmgrFilter f = { .queue = QUEUE_INVALID, .older_than = -1 };
        json_t *v;

        if (!j || json_is_null(j)) {
                f.all = true;
                *ret = f;
                return 0;
        }
        if (!json_is_object(j)) {
                *ret_bad = "filter";
                return -EINVAL;
        }
        v = json_object_get(j, "queueIds");
        if (v && !json_is_null(v)) {
                size_t i;
                json_t *e;
                if (!json_is_array(v)) {
                        *ret_bad = "queueIds";
                        return -EINVAL;
                }
                json_array_foreach(v, i, e)
                        if (!json_is_string(e) || !queue_id_valid(json_string_value(e))) {
                                *ret_bad = "queueIds";
                                return -EINVAL;
                        }
                f.queue_ids = v;
        }
#define STR_FIELD(name, dst)                                                    \
        v = json_object_get(j, name);                                           \
        if (v && !json_is_null(v)) {                                            \
                if (!json_is_string(v) ||                                       \
                    strlen(json_string_value(v)) != json_string_length(v)) {    \
                        *ret_bad = name; /* mistyped, or a NUL inside */        \
                        return -EINVAL;                                         \
                }                                                               \
                dst = json_string_value(v);                                     \
        }
        STR_FIELD("sender", f.sender);
        STR_FIELD("recipient", f.recipient);
        STR_FIELD("recipientDomain", f.recipient_domain);
        const char *queue = NULL;
        STR_FIELD("queue", queue);
#undef STR_FIELD
        if (queue) {
                f.queue = queue_name_from_string(queue);
                if (f.queue < 0) {
                        *ret_bad = "queue";
                        return -EINVAL;
                }
        }
        v = json_object_get(j, "all");
        if (v && !json_is_null(v)) {
                if (!json_is_boolean(v)) {
                        *ret_bad = "all";
                        return -EINVAL;
                }
                f.all = json_is_true(v);
        }
        v = json_object_get(j, "olderThan");
        if (v && !json_is_null(v)) {
                if (!json_is_integer(v) || json_integer_value(v) < 0) {
                        *ret_bad = "olderThan";
                        return -EINVAL;
                }
                f.older_than = json_integer_value(v);
        }
        {
                static const char *const known[] = { "queueIds", "sender", "recipient", "recipientDomain",
                                                     "queue", "all", "olderThan" };
                const char *key;
                json_t *val;
                json_object_foreach(j, key, val) {
                        bool ok = false;
                        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                                ok = ok || streq(key, known[i]);
                        if (!ok) {
                                *ret_bad = key;
                                return -EINVAL;
                        }
                }
        }
        *ret = f;
        return 0;
}

bool qmgr_filter_empty(const QmgrFilter *f)
{
        return !f->all && !f->queue_ids && !f->sender && !f->recipient && !f->recipient_domain &&
               f->queue < 0 && f->older_than < 0;
}
