/* SPDX-License-Identifier: MIT */
/*
 * queue-filter.h - the io.tern.Queue Filter, decoded from a caller's JSON: which messages an
 * administrative call applies to. Pure code (no I/O): the strings stay in the JSON, which must
 * outlive the filter.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue-store.h"

typedef struct QmgrFilter {
        json_t *queue_ids;              /* borrowed array of valid IDs, NULL: any */
        bool all;
        const char *sender, *recipient, *recipient_domain;      /* borrowed, NULL: any */
        QueueName queue;                /* QUEUE_INVALID: any */
        int64_t older_than;             /* seconds, -1: any */
} QmgrFilter;

/* qmgr_filter_from_json - J (NULL or null: everything) into *RET; -EINVAL with *RET_BAD naming
 * the field that is unknown, mistyped or out of range (a queue ID that is not one, an unknown
 * queue, a negative olderThan) */
int qmgr_filter_from_json(json_t *j, QmgrFilter *ret, const char **ret_bad);
/* a filter that selects nothing by itself (no all, no condition): refused for changes */
bool qmgr_filter_empty(const QmgrFilter *f);
