/* SPDX-License-Identifier: MIT */
/*
 * testd-varlink.c - io.tern.Test: the methods tern-testd serves
 *
 * Echo, Ping, Sleep (a deferred reply), Count ("more"), ReadFd/OpenFd (descriptors in both
 * directions), Fail (an interface error), Peer (SO_PEERCRED), Log (a journal line with a
 * TERN_TEST= field). Kept apart from testd.c so that the unit tests can bind the same table
 * and check it against the IDL.
 */
#include <fcntl.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "event.h"
#include "json-util.h"
#include "log.h"
#include "testd-varlink.h"
#include "varlink-idl.h"
#include "varlink.h"

/* ReadFd reads at most this much: a test method, not a transfer protocol. */
#define TESTD_READ_MAX (64U * 1024U)

static int method_echo(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                const char *text;
                json_t *number;
        } p = {};
        static const VarlinkField fields[] = {
                { "text", VARLINK_FIELD_STRING, offsetof(__typeof__(p), text), VARLINK_FIELD_MANDATORY },
                { "number", VARLINK_FIELD_ANY, offsetof(__typeof__(p), number), 0 },
                {},
        };
        json_t *reply;
        int r;

        r = varlink_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        if (p.number && !json_is_integer(p.number))
                return varlink_call_error_invalid_parameter(c, "number");
        reply = json_pack("{s:s}", "text", p.text);
        if (!reply)
                return -ENOMEM;
        if (p.number)
                json_object_set(reply, "number", p.number);
        return varlink_call_reply(c, reply);
}

static int method_ping(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        static const VarlinkField fields[] = { {} };
        int r;

        r = varlink_dispatch(c, parameters, fields, NULL);
        if (r < 0)
                return r;
        return varlink_call_reply(c, NULL);
}

typedef struct SleepState {
        VarlinkCall *call;
        char *tag;
        sd_event_source *timer;
} SleepState;

static int on_sleep_done(sd_event_source *source, uint64_t usec, void *userdata)
{
        SleepState *st = userdata;

        (void) varlink_call_reply(st->call, st->tag ? json_pack("{s:s}", "tag", st->tag) : NULL);
        varlink_call_unref(st->call);
        sd_event_source_disable_unref(st->timer);
        free(st->tag);
        free(st);
        return 0;
}

static int method_sleep(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                int64_t ms;
                const char *tag;
        } p = { .ms = -1 };
        static const VarlinkField fields[] = {
                { "milliseconds", VARLINK_FIELD_INT, offsetof(__typeof__(p), ms), VARLINK_FIELD_MANDATORY },
                { "tag", VARLINK_FIELD_STRING, offsetof(__typeof__(p), tag), 0 },
                {},
        };
        sd_event *e = userdata;
        SleepState *st;
        uint64_t now;
        int r;

        r = varlink_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        if (p.ms < 0 || p.ms > 3600 * 1000)
                return varlink_call_error_invalid_parameter(c, "milliseconds");
        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->tag = p.tag ? strdup(p.tag) : NULL;
        (void) sd_event_now(e, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(e, &st->timer, CLOCK_MONOTONIC, now + (uint64_t) p.ms * USEC_PER_MSEC,
                              0, on_sleep_done, st);
        if (r < 0) {
                free(st->tag);
                free(st);
                return r;
        }
        st->call = varlink_call_ref(c);
        return 0;
}

static int method_count(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                int64_t count;
        } p = {};
        static const VarlinkField fields[] = {
                { "count", VARLINK_FIELD_INT, 0, VARLINK_FIELD_MANDATORY },
                {},
        };
        int r;

        r = varlink_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        if (p.count < 1 || p.count > 100000)
                return varlink_call_error_invalid_parameter(c, "count");
        for (int64_t i = 0; i < p.count - 1; i++) {
                r = varlink_call_notify(c, json_pack("{s:I}", "index", (json_int_t) i));
                if (r < 0)
                        return r;
        }
        return varlink_call_reply(c, json_pack("{s:I}", "index", (json_int_t) (p.count - 1)));
}

static int method_read_fd(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                int fd;
        } p = { .fd = -EBADF };
        static const VarlinkField fields[] = {
                { "fd", VARLINK_FIELD_FD, 0, VARLINK_FIELD_MANDATORY },
                {},
        };
        _cleanup_(freep) char *buf = NULL;
        size_t n = 0;
        int r;

        r = varlink_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        buf = malloc(TESTD_READ_MAX + 1);
        if (!buf)
                return -ENOMEM;
        (void) fcntl(p.fd, F_SETFL, fcntl(p.fd, F_GETFL) | O_NONBLOCK);
        while (n < TESTD_READ_MAX) {
                ssize_t k = read(p.fd, buf + n, TESTD_READ_MAX - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return varlink_call_error_invalid_parameter(c, "fd");
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        return varlink_call_reply(c, json_pack("{s:s%}", "data", buf, n));
}

static int method_open_fd(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                const char *text;
        } p = {};
        static const VarlinkField fields[] = {
                { "text", VARLINK_FIELD_STRING, 0, VARLINK_FIELD_MANDATORY },
                {},
        };
        int pipefd[2], idx, r;
        size_t len;

        r = varlink_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        len = strlen(p.text);
        if (len > 4096)         /* what a pipe takes without a reader */
                return varlink_call_error_invalid_parameter(c, "text");
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        if (write(pipefd[1], p.text, len) != (ssize_t) len) {
                r = -errno;
                close_many(pipefd, 2);
                return r;
        }
        safe_close(pipefd[1]);
        idx = varlink_call_push_fd(c, pipefd[0]);
        if (idx < 0)
                return idx;
        return varlink_call_reply(c, json_pack("{s:i}", "fd", idx));
}

static int method_fail(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                const char *reason;
        } p = {};
        static const VarlinkField fields[] = {
                { "reason", VARLINK_FIELD_STRING, 0, VARLINK_FIELD_MANDATORY },
                {},
        };
        int r;

        r = varlink_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        return varlink_call_error(c, "io.tern.Test.Failed", json_pack("{s:s}", "reason", p.reason));
}

static int method_peer(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        static const VarlinkField fields[] = { {} };
        const struct ucred *u = varlink_call_peer(c);
        int r;

        r = varlink_dispatch(c, parameters, fields, NULL);
        if (r < 0)
                return r;
        return varlink_call_reply(c, json_pack("{s:I,s:I,s:I}", "uid", (json_int_t) u->uid, "gid",
                                               (json_int_t) u->gid, "pid", (json_int_t) u->pid));
}

static int method_log(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        struct {
                const char *message;
                const char *field;
        } p = {};
        static const VarlinkField fields[] = {
                {"message", VARLINK_FIELD_STRING, offsetof(__typeof__(p), message), VARLINK_FIELD_MANDATORY},
                {"field", VARLINK_FIELD_STRING, offsetof(__typeof__(p), field), VARLINK_FIELD_MANDATORY},
                {},
        };
        _cleanup_(freep) char *f = NULL;
        int r;

        r = varlink_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        if (asprintf(&f, "TERN_TEST=%s", p.field) < 0)
                return -ENOMEM;
        log_info_fields(LOG_FIELDS(f), "%s", p.message);
        return varlink_call_reply(c, NULL);
}

const VarlinkInterface testd_interface = {
        .name = "io.tern.Test",
        .description = varlink_idl_io_tern_Test,
        .methods = (const VarlinkMethod[]){
                { "Echo", method_echo, 0 },
                { "Ping", method_ping, 0 },
                { "Sleep", method_sleep, 0 },
                { "Count", method_count, VARLINK_METHOD_MORE },
                { "ReadFd", method_read_fd, VARLINK_METHOD_FDS },
                { "OpenFd", method_open_fd, 0 },
                { "Fail", method_fail, 0 },
                { "Peer", method_peer, 0 },
                { "Log", method_log, 0 },
                {},
        },
};

