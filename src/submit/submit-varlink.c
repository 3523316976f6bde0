/* SPDX-License-Identifier: MIT */
/*
 * submit-varlink.c - io.tern.Submit: decode a call, check the caller, start the submission,
 * answer when it is queued (or why not), and log it as Postfix's pickup does
 *
 * The reply waits for the group commit (submit-queue.c): the call is deferred, holding a
 * reference, and answered from the submission's callback. The submission's error maps to the
 * interface's errors in one place (reply_error).
 */
#include <pwd.h>
#include <stdio.h>

#include "json-util.h"
#include "log.h"
#include "submit-varlink.h"
#include "varlink-idl.h"

typedef struct PendingCall {
        SubmitContext *ctx;
        VarlinkCall *call;
        uid_t uid;
        char *sender;                   /* as the client gave it: what pickup logs */
} PendingCall;

/* reply_error - the interface error for a submission that failed */
static void reply_error(SubmitContext *ctx, VarlinkCall *call, Submission *sub, int error)
{
        const char *text = submission_error(sub);

        switch (error) {
        case -EINVAL:
                (void) varlink_call_error(call, "io.tern.Submit.InvalidAddress",
                                          json_pack("{s:s,s:s}", "address", "", "reason", text));
                break;
        case -ENOMSG:
                (void) varlink_call_error(call, "io.tern.Submit.NoRecipients", NULL);
                break;
        case -E2BIG:
                (void) varlink_call_error(call, "io.tern.Submit.TooManyRecipients",
                                          json_pack("{s:I}", "limit", (json_int_t) ctx->recipient_limit));
                break;
        case -EFBIG:
                (void) varlink_call_error(call, "io.tern.Submit.MessageTooBig",
                                          json_pack("{s:I}", "limit", (json_int_t) ctx->message_size_limit));
                break;
        case -EBADMSG:
        case -EPIPE:
                (void) varlink_call_error(call, "io.tern.Submit.InvalidMessage",
                                          json_pack("{s:s}", "reason", text));
                break;
        case -ESPIPE:
                (void) varlink_call_error_invalid_parameter(call, "size");
                break;
        case -EBADF:
        case -ETIMEDOUT:
                (void) varlink_call_error(call, "io.tern.Submit.UnreadableDescriptor",
                                          json_pack("{s:s}", "reason", text));
                break;
        case -ECONNRESET:
                break;          /* nobody to answer */
        default:
                /* The queue could not take it: the client may try again (EX_TEMPFAIL). */
                log_warning("cannot queue a message from uid=%u: %s",
                            (unsigned) varlink_call_peer(call)->uid, strerror(-error));
                (void) varlink_call_error(call, "io.tern.Submit.TemporaryFailure",
                                          json_pack("{s:s}", "reason", strerror(-error)));
                break;
        }
}

static void on_submission_done(Submission *sub, int error, void *userdata)
{
        PendingCall *pc = userdata;
        SubmitContext *ctx = pc->ctx;
        json_t *rcpts;

        if (error < 0) {
                reply_error(ctx, pc->call, sub, error);
                goto out;
        }

        /* Postfix pickup: "3F2A1C04D1: uid=1000 from=<user>", the sender as submitted */
        {
                char field_id[64], field_uid[32];
                snprintf(field_id, sizeof(field_id), "TERN_QUEUE_ID=%s", submission_queue_id(sub));
                snprintf(field_uid, sizeof(field_uid), "TERN_UID=%u", (unsigned) pc->uid);
                log_info_fields(LOG_FIELDS(field_id, field_uid), "%s: uid=%u from=<%s>",
                                submission_queue_id(sub), (unsigned) pc->uid, pc->sender);
        }
        rcpts = json_array();
        for (size_t i = 0; rcpts && i < submission_n_recipients(sub); i++)
                json_array_append_new(rcpts, json_string(submission_recipient(sub, i)));
        (void) varlink_call_reply(
                pc->call, json_pack("{s:s,s:s,s:o,s:I}", "queueId", submission_queue_id(sub), "sender",
                                    submission_sender(sub), "recipients", rcpts ? rcpts : json_array(),
                                    "size", (json_int_t) submission_size(sub)));
out:
        varlink_call_unref(pc->call);
        free(pc->sender);
        free(pc);
}

static bool on_submission_alive(void *userdata)
{
        PendingCall *pc = userdata;

        return varlink_call_connected(pc->call);
}

static int method_submit(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                const char *sender;
                json_t *recipients;
                int fd;
                const char *full_name;
                int64_t size;
                bool extract, ignore_dots;
        } p = { .fd = -EBADF, .size = -1 };
        static const VarlinkField fields[] = {
                {"sender", VARLINK_FIELD_STRING, offsetof(__typeof__(p), sender), VARLINK_FIELD_MANDATORY},
                {"recipients", VARLINK_FIELD_STRINGV, offsetof(__typeof__(p), recipients),
                 VARLINK_FIELD_MANDATORY},
                {"fd", VARLINK_FIELD_FD, offsetof(__typeof__(p), fd), VARLINK_FIELD_MANDATORY},
                {"fullName", VARLINK_FIELD_STRING, offsetof(__typeof__(p), full_name), 0},
                {"size", VARLINK_FIELD_INT, offsetof(__typeof__(p), size), 0},
                {"extractRecipients", VARLINK_FIELD_BOOL, offsetof(__typeof__(p), extract), 0},
                {"ignoreDots", VARLINK_FIELD_BOOL, offsetof(__typeof__(p), ignore_dots), 0},
                {},
        };
        SubmitContext *ctx = userdata;
        const struct ucred *peer = varlink_call_peer(call);
        _cleanup_(freep) const char **rcpts = NULL;
        struct passwd pw, *res = NULL;
        char tmp[4096], user[64];
        SubmissionRequest req;
        Submission *sub;
        PendingCall *pc;
        size_t n, i;
        json_t *e;
        int fd, r;

        r = varlink_dispatch(call, parameters, fields, &p);
        if (r < 0)
                return r;
        if (p.size < -1)
                return varlink_call_error_invalid_parameter(call, "size");

        if (getpwuid_r(peer->uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
                snprintf(user, sizeof(user), "%s", res->pw_name);
        else
                snprintf(user, sizeof(user), "%u", (unsigned) peer->uid);
        if (!conf_user_listed(ctx->authorized_users, user)) {
                log_warning("uid=%u (%s): not authorized to submit mail (authorized_submit_users)",
                            (unsigned) peer->uid, user);
                return varlink_call_error(call, "io.tern.Submit.NotAuthorized",
                                          json_pack("{s:s}", "user", user));
        }

        n = json_array_size(p.recipients);
        rcpts = calloc(n + 1, sizeof(char *));
        if (!rcpts)
                return -ENOMEM;
        json_array_foreach(p.recipients, i, e)
                rcpts[i] = json_string_value(e);

        pc = calloc(1, sizeof(*pc));
        if (!pc)
                return -ENOMEM;
        /* "fd" is an index into the call's descriptors (varlink_dispatch checked it) */
        fd = varlink_call_take_fd(call, (size_t) json_integer_value(json_object_get(parameters, "fd")));
        if (fd < 0) {
                free(pc);
                return varlink_call_error_invalid_parameter(call, "fd");
        }
        req = (SubmissionRequest){
                .sender = p.sender,
                .recipients = rcpts,
                .n_recipients = n,
                .full_name = p.full_name,
                .size = p.size,
                .extract_recipients = p.extract,
                .ignore_dots = p.ignore_dots,
                .uid = peer->uid,
                .gid = peer->gid,
                .pid = peer->pid,
        };
        *pc = (PendingCall){ .ctx = ctx, .call = varlink_call_ref(call), .uid = peer->uid,
                             .sender = strdup(p.sender) };
        if (!pc->sender)
                r = -ENOMEM;
        else
                r = submission_start(ctx->submitter, &req, fd, on_submission_done, on_submission_alive, pc,
                                     &sub);
        if (r < 0) {
                if (!pc->sender)
                        safe_close(fd);
                varlink_call_unref(pc->call);
                free(pc->sender);
                free(pc);
                return r;
        }
        return 0;       /* answered by on_submission_done */
}

const VarlinkInterface submit_interface = {
        .name = "io.tern.Submit",
        .description = varlink_idl_io_tern_Submit,
        .methods = (const VarlinkMethod[]){
                { "Submit", method_submit, VARLINK_METHOD_FDS },
                {},
        },
};
