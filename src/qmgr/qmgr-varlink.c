/* SPDX-License-Identifier: MIT */
/*
 * qmgr-varlink.c - io.tern.Qmgr (triggers, status) and io.tern.Queue (administration) on
 * tern-qmgr's socket
 *
 * Access, by the caller's SO_PEERCRED: triggers and Status are open to every local user (a
 * trigger only makes qmgr look; Postfix's public/qmgr is as open); List needs a user in
 * authorized_mailq_users; Show and the changes need root, the daemon's own user (mail_owner)
 * or a member of its group.
 */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json-util.h"
#include "log.h"
#include "qmgr-admin.h"
#include "qmgr-varlink.h"
#include "varlink-idl.h"

static int not_authorized(VarlinkCall *call, const char *what)
{
        char buf[32];
        const char *user = varlink_peer_name(varlink_call_peer(call), buf);

        log_warning("%s: not authorized to %s", user, what);
        return varlink_call_error(call, "io.tern.Queue.NotAuthorized", json_pack("{s:s}", "user", user));
}

/* ---- io.tern.Qmgr */

static int method_trigger(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Qmgr *q = userdata;
        struct {
                json_t *requests;
        } p = {};
        static const VarlinkField fields[] = {
                {"requests", VARLINK_FIELD_STRINGV, offsetof(__typeof__(p), requests), VARLINK_FIELD_MANDATORY},
                {},
        };
        const char *v[64], *bad = NULL;
        size_t n, i;
        json_t *e;
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        n = json_array_size(p.requests);
        if (n > ELEMENTSOF(v))
                return varlink_call_error_invalid_parameter(call, "requests");
        json_array_foreach(p.requests, i, e)
                v[i] = json_string_value(e);
        r = qmgr_trigger(q, v, n, &bad);
        if (r == -EINVAL)
                return varlink_call_error(call, "io.tern.Qmgr.InvalidRequest", json_pack("{s:s}", "request", bad));
        if (r < 0)
                return r;
        return varlink_call_reply(call, NULL);
}

static int method_status(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Qmgr *q = userdata;
        static const VarlinkField fields[] = { {} };
        json_t *j;
        int r;

        r = varlink_dispatch(call, parameters, fields, NULL);
        if (r < 0)
                return r;
        j = qmgr_status_json(q);
        if (!j)
                return -ENOMEM;
        return varlink_call_reply(call, j);
}

const VarlinkInterface qmgr_interface = {
        .name = "io.tern.Qmgr",
        .description = varlink_idl_io_tern_Qmgr,
        .methods = (const VarlinkMethod[]){
                { "Trigger", method_trigger, 0 },
                { "Status", method_status, 0 },
                {},
        },
};

/* ---- io.tern.Queue */

/* decode_filter - 0 and *F, or 1 when the call was answered with InvalidFilter */
static int decode_filter(VarlinkCall *call, json_t *j, QmgrFilter *f)
{
        const char *bad = NULL;
        char reason[128];

        if (qmgr_filter_from_json(j, f, &bad) >= 0)
                return 0;
        snprintf(reason, sizeof(reason), "bad filter field: %s", bad ? bad : "filter");
        (void) varlink_call_error(call, "io.tern.Queue.InvalidFilter", json_pack("{s:s}", "reason", reason));
        return 1;
}

/* Messages listed per event-loop pass: deliveries go on between passes. */
#define LIST_BATCH 256

typedef struct ListJob ListJob;
struct ListJob {
        VarlinkCall *call;
        json_t *parameters;             /* holds what the filter borrows */
        QmgrWalk *walk;
        sd_event_source *source;
        LIST_FIELDS(ListJob, jobs);
};

/* listings in progress, ended at shutdown */
static LIST_HEAD(ListJob, list_jobs);

static void list_job_free(ListJob *j)
{
        if (j->jobs_prev || j->jobs_next || list_jobs.head == j)
                LIST_REMOVE(jobs, list_jobs, j);
        sd_event_source_disable_unref(j->source);
        qmgr_lister_free(j->walk);
        json_decref(j->parameters);
        varlink_call_unref(j->call);
        free(j);
}

static int list_notify(json_t *message, void *userdata)
{
        VarlinkCall *call = userdata;

        return varlink_call_notify(call, json_pack("{s:o}", "message", message));
}

static int on_list(sd_event_source *s, void *userdata)
{
        ListJob *j = userdata;
        int r;

        if (!varlink_call_connected(j->call)) {
                list_job_free(j);       /* the client went away: stop reading files for it */
                return 0;
        }
        r = qmgr_lister_next(j->walk, LIST_BATCH, list_notify, j->call);
        if (r > 0)
                return 0;               /* the source stays on: the next batch after other events */
        if (r < 0)
                (void) varlink_call_error_errno(j->call, -r);
        else
                (void) varlink_call_reply(j->call, NULL);
        list_job_free(j);
        return 0;
}

static int method_list(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Qmgr *q = userdata;
        struct {
                json_t *filter;
        } p = {};
        static const VarlinkField fields[] = {
                {"filter", VARLINK_FIELD_OBJECT, offsetof(__typeof__(p), filter), VARLINK_FIELD_NULLABLE},
                {},
        };
        QmgrFilter f;
        ListJob *j;
        char buf[32];
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!conf_user_listed(conf_get_list(q->conf, "authorized_mailq_users"),
                              varlink_peer_name(varlink_call_peer(call), buf)))
                return not_authorized(call, "list the queue");
        if (decode_filter(call, p.filter, &f) > 0)
                return 0;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        r = qmgr_lister_new(q, &f, &j->walk);
        if (r >= 0)
                r = sd_event_add_defer(q->event, &j->source, on_list, j);
        if (r < 0) {
                list_job_free(j);
                return r;
        }
        /* below deliveries: a listing never holds up agents' answers */
        (void) sd_event_source_set_priority(j->source, SD_EVENT_PRIORITY_NORMAL + 20);
        (void) sd_event_source_set_enabled(j->source, SD_EVENT_ON);
        j->call = varlink_call_ref(call);
        j->parameters = json_incref(parameters);
        LIST_APPEND(jobs, list_jobs, j);
        return 0;
}

void qmgr_varlink_done(void)
{
        while (list_jobs.head)
                list_job_free(list_jobs.head);
}

static int method_show(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Qmgr *q = userdata;
        struct {
                const char *id;
        } p = {};
        static const VarlinkField fields[] = {
                {"queueId", VARLINK_FIELD_STRING, offsetof(__typeof__(p), id), VARLINK_FIELD_MANDATORY},
                {},
        };
        json_t *j = NULL;
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!varlink_peer_is_admin(varlink_call_peer(call)))
                return not_authorized(call, "show queue files");
        r = qmgr_admin_show(q, p.id, &j);
        if (r == -ENOENT || r == -EBADMSG)
                return varlink_call_error(call, "io.tern.Queue.NoSuchMessage", json_pack("{s:s}", "queueId", p.id));
        if (r < 0)
                return r;
        return varlink_call_reply(call, j);
}

static int change(VarlinkCall *call, json_t *parameters, void *userdata, QmgrAdminOp op, const char *what)
{
        Qmgr *q = userdata;
        struct {
                json_t *filter;
        } p = {};
        static const VarlinkField fields[] = {
                {"filter", VARLINK_FIELD_OBJECT, offsetof(__typeof__(p), filter), VARLINK_FIELD_MANDATORY},
                {},
        };
        QmgrFilter f;
        json_t *ids = NULL;
        int r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (!varlink_peer_is_admin(varlink_call_peer(call)))
                return not_authorized(call, what);
        if (decode_filter(call, p.filter, &f) > 0)
                return 0;
        if (qmgr_filter_empty(&f))
                return varlink_call_error(call, "io.tern.Queue.InvalidFilter",
                                          json_pack("{s:s}", "reason", "an empty filter selects nothing; use all"));
        r = qmgr_admin_change(q, op, &f, &ids);
        if (r < 0)
                return r;
        return varlink_call_reply(call, json_pack("{s:I, s:o}", "count", (json_int_t) json_array_size(ids),
                                                  "queueIds", ids));
}

static int method_hold(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        return change(call, parameters, userdata, QMGR_ADMIN_HOLD, "hold messages");
}

static int method_release(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        return change(call, parameters, userdata, QMGR_ADMIN_RELEASE, "release messages");
}

static int method_delete(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        return change(call, parameters, userdata, QMGR_ADMIN_DELETE, "delete messages");
}

static int method_requeue(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        return change(call, parameters, userdata, QMGR_ADMIN_REQUEUE, "requeue messages");
}

static int method_summary(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        Qmgr *q = userdata;
        static const VarlinkField fields[] = { {} };
        char buf[32];
        json_t *j = NULL;
        int r;

        r = varlink_dispatch(call, parameters, fields, NULL);
        if (r < 0)
                return r;
        if (!conf_user_listed(conf_get_list(q->conf, "authorized_mailq_users"), varlink_peer_name(varlink_call_peer(call), buf)))
                return not_authorized(call, "summarize the queue");
        r = qmgr_admin_summary(q, &j);
        if (r < 0)
                return r;
        return varlink_call_reply(call, j);
}

const VarlinkInterface queue_interface = {
        .name = "io.tern.Queue",
        .description = varlink_idl_io_tern_Queue,
        .methods = (const VarlinkMethod[]){
                { "List", method_list, VARLINK_METHOD_MORE },
                { "Show", method_show, 0 },
                { "Hold", method_hold, 0 },
                { "Release", method_release, 0 },
                { "Delete", method_delete, 0 },
                { "Requeue", method_requeue, 0 },
                { "Summary", method_summary, 0 },
                {},
        },
};
