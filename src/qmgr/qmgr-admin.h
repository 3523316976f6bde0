/* SPDX-License-Identifier: MIT */
/*
 * qmgr-admin.h - queue administration and status as JSON (io.tern.Queue, io.tern.Qmgr.Status);
 * qmgr-varlink.c puts them on the wire
 */
#pragma once

#include <jansson.h>

#include "qmgr.h"
#include "queue-filter.h"

typedef enum QmgrAdminOp {
        QMGR_ADMIN_HOLD,
        QMGR_ADMIN_RELEASE,
        QMGR_ADMIN_DELETE,
        QMGR_ADMIN_REQUEUE,
} QmgrAdminOp;

/* A listing a few messages at a time, so that a large queue does not stop deliveries while it is
 * listed: FN gets each matching message's record (and owns it); FN < 0 stops. The filter's
 * borrowed strings must outlive the lister. qmgr_lister_next: 1 more to come, 0 done. */
typedef struct QmgrWalk QmgrWalk;
typedef int (*QmgrListFn)(json_t *message, void *userdata);
int qmgr_lister_new(Qmgr *q, const QmgrFilter *f, QmgrWalk **ret);
int qmgr_lister_next(QmgrWalk *w, size_t max, QmgrListFn fn, void *userdata);
QmgrWalk *qmgr_lister_free(QmgrWalk *w);
/* qmgr_admin_show - -ENOENT: no such message */
int qmgr_admin_show(Qmgr *q, const char *id, json_t **ret);
/* qmgr_admin_change - apply OP to matching messages; *ret_ids: the IDs it applied to */
int qmgr_admin_change(Qmgr *q, QmgrAdminOp op, const QmgrFilter *f, json_t **ret_ids);
int qmgr_admin_summary(Qmgr *q, json_t **ret);
json_t *qmgr_status_json(Qmgr *q);
