/* SPDX-License-Identifier: MIT */
/*
 * test-varlink.c - the varlink server and clients (src/lib/varlink.c), in one process
 *
 * Each test gets a server on a socket in a fresh temporary directory, bound to io.tern.Test
 * (testd_interface, the sd_event as its userdata), and drives everything with that one sd_event
 * loop: RUN_UNTIL() runs the loop until a condition holds (with a generous bound that only a
 * hang reaches), never sleeps. Clients are the library's asynchronous client on the same loop,
 * its synchronous client (pipelined sends, then reads once the replies are in the socket), and
 * "raw" sockets that write bytes the library's clients would never produce.
 *
 * Covers: replies, the org.varlink.service errors (MethodNotFound, InterfaceNotFound,
 * InvalidParameter for unknown, missing and mistyped parameters, ExpectedMore,
 * MethodNotImplemented for "upgrade"), interface errors with parameters, GetInfo and
 * GetInterfaceDescription (byte for byte), pipelining behind a deferred reply, oneway, "more",
 * descriptors in both directions and to a method that takes none (closed in the server: the
 * process's descriptor count), dropping clients that send malformed or oversize messages or
 * stall inside a message (while others are served), clients that leave mid-reply or before a
 * deferred reply, 200 clients at once, the asynchronous client (pipelined invokes, callbacks in
 * order, failure paths), the synchronous client's timeout, the call timeout event, and
 * varlink_server_add_interface refusing a table that differs from its IDL.
 *
 * Limits: a string parameter with an embedded NUL cannot reach a handler over the wire (jansson
 * refuses "\u0000" while parsing, so the connection is dropped as malformed); the dispatcher's
 * own NUL check is tested directly with varlink_dispatch_check().
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "json-util.h"
#include "macro.h"
#include "testd-varlink.h"
#include "varlink-idl.h"
#include "varlink.h"
#include "test-util.h"

/* Only a hang waits this long; every condition normally holds within milliseconds. */
#define WAIT_MAX_USEC (20U * USEC_PER_SEC)

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- fixture ------------------------------------------------------------------------------ */

typedef struct Fixture {
        char dir[64];
        char path[128];
        sd_event *event;
        VarlinkServer *server;
        unsigned n_connect, n_disconnect, n_protocol_errors, n_call_timeouts;
        char last_detail[256];
} Fixture;

static void on_server_event(VarlinkServer *s, VarlinkServerEvent event, const struct ucred *peer,
                            const char *detail, void *userdata)
{
        Fixture *f = userdata;

        assert_non_null(peer);
        switch (event) {
        case VARLINK_SERVER_CONNECT:
                f->n_connect++;
                break;
        case VARLINK_SERVER_DISCONNECT:
                f->n_disconnect++;
                break;
        case VARLINK_SERVER_PROTOCOL_ERROR:
                f->n_protocol_errors++;
                snprintf(f->last_detail, sizeof(f->last_detail), "%s", strna(detail));
                break;
        case VARLINK_SERVER_CALL_TIMEOUT:
                f->n_call_timeouts++;
                snprintf(f->last_detail, sizeof(f->last_detail), "%s", strna(detail));
                break;
        }
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-varlink.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/test", f->dir);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(varlink_server_new(f->event, &f->server), 0);
        varlink_server_set_info(f->server, "tern", "test-varlink", "0.1", "https://tern.example/");
        varlink_server_set_event_callback(f->server, on_server_event, f);
        assert_int_equal(varlink_server_add_interface(f->server, &testd_interface, f->event), 0);
        assert_int_equal(varlink_server_listen_path(f->server, f->path, 0600), 0);
        /* sd-event opens its timerfd for a clock with the first timer and keeps it: open it now, so
         * that descriptor counts taken in a test do not see it appear. */
        {
                sd_event_source *t = NULL;
                assert_int_equal(sd_event_add_time(f->event, &t, CLOCK_MONOTONIC, UINT64_MAX, 0, NULL, NULL),
                                 0);
                sd_event_source_unref(t);
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        varlink_server_free(f->server);
        sd_event_unref(f->event);
        (void)unlink(f->path);
        (void)rmdir(f->dir);
        free(f);
        return 0;
}

#define RUN_UNTIL(f, expr)                                                                                  \
        do {                                                                                                \
                uint64_t _deadline = now_usec() + WAIT_MAX_USEC;                                            \
                while (!(expr)) {                                                                           \
                        if (now_usec() > _deadline)                                                         \
                                fail_msg("%s:%d: timed out waiting for %s", __FILE__, __LINE__, #expr);     \
                        assert_true(sd_event_run((f)->event, 100 * USEC_PER_MSEC) >= 0);                    \
                }                                                                                           \
        } while (0)

/* json_check - OBJ equals the JSON text WANT */
static void json_check(const char *context, json_t *obj, const char *want)
{
        json_t *w = json_loads(want, 0, NULL);
        char *got = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : strdup("(null)");

        assert_non_null(w);
        if (!obj || !json_equal(obj, w))
                fail_msg("%s: got %s want %s", context, got, want);
        free(got);
        json_decref(w);
}

/* ---- raw clients: bytes in, decoded replies out -------------------------------------------- */

#define RAW_REPLIES_MAX 64

typedef struct Raw {
        int fd;
        VarlinkWire wire;
        VarlinkMessage replies[RAW_REPLIES_MAX];
        int fds[RAW_REPLIES_MAX][VARLINK_FDS_MAX];
        size_t n_fds[RAW_REPLIES_MAX];
        size_t n;
        size_t discarded; /* decoded beyond RAW_REPLIES_MAX, not kept */
        bool eof;
        unsigned undecodable;
} Raw;

static void raw_connect(Fixture *f, Raw *r)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        *r = (Raw){.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
        assert_true(r->fd >= 0);
        strcpy(sa.sun_path, f->path);
        assert_int_equal(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(fcntl(r->fd, F_SETFL, O_NONBLOCK), 0);
        varlink_wire_init(&r->wire, 0);
}

static void raw_close(Raw *r)
{
        for (size_t i = 0; i < r->n; i++) {
                varlink_message_done(&r->replies[i]);
                close_many(r->fds[i], r->n_fds[i]);
        }
        varlink_wire_done(&r->wire);
        r->fd = safe_close(r->fd);
        r->n = 0;
}

/* raw_send - LEN bytes (LEN 0: strlen + its NUL) with optional descriptors; small writes only */
static void raw_send_fds(Raw *r, const char *data, size_t len, const int *fds, size_t n_fds)
{
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * VARLINK_FDS_MAX)];
        } control = {};
        struct iovec iov = {(void *)data, len ? len : strlen(data) + 1};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        if (n_fds > 0) {
                struct cmsghdr *cm;

                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cm = CMSG_FIRSTHDR(&mh);
                *cm = (struct cmsghdr){.cmsg_level = SOL_SOCKET,
                                       .cmsg_type = SCM_RIGHTS,
                                       .cmsg_len = CMSG_LEN(sizeof(int) * n_fds)};
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        if (sendmsg(r->fd, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
                fail_msg("raw send of %zu bytes: %s", iov.iov_len, strerror(errno));
}

static void raw_send(Raw *r, const char *data)
{
        raw_send_fds(r, data, 0, NULL, 0);
}

/* raw_poll - read what is there, decode complete replies; returns how many replies so far */
static size_t raw_poll(Raw *r)
{
        while (!r->eof) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * VARLINK_FDS_MAX)];
                } control = {};
                int fds[VARLINK_FDS_MAX];
                size_t n_fds = 0, size;
                struct iovec iov;
                struct msghdr mh;
                char *p;
                ssize_t k;

                assert_int_equal(varlink_wire_space(&r->wire, 4096, &p, &size), 0);
                iov = (struct iovec){p, size};
                mh = (struct msghdr){.msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = control.buf,
                                     .msg_controllen = sizeof(control.buf)};
                k = recvmsg(r->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (k < 0 && errno == EAGAIN)
                        break;
                if (k <= 0) {
                        r->eof = true; /* end of file, or ECONNRESET: the server dropped us */
                        break;
                }
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                                n_fds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                memcpy(fds, CMSG_DATA(cm), n_fds * sizeof(int));
                        }
                assert_int_equal(varlink_wire_commit(&r->wire, (size_t)k, fds, n_fds), 0);
        }
        for (;;) {
                VarlinkFrame frame;
                int k = varlink_wire_next(&r->wire, &frame);

                assert_true(k >= 0);
                if (k == 0)
                        break;
                if (r->n >= RAW_REPLIES_MAX) {
                        r->discarded++;
                        close_many(frame.fds, frame.n_fds);
                        continue;
                }
                if (varlink_message_parse_reply(frame.data, frame.size, &r->replies[r->n], NULL) < 0) {
                        r->undecodable++;
                        close_many(frame.fds, frame.n_fds);
                        continue;
                }
                memcpy(r->fds[r->n], frame.fds, frame.n_fds * sizeof(int));
                r->n_fds[r->n] = frame.n_fds;
                r->n++;
        }
        return r->n;
}

static bool raw_dropped(Raw *r)
{
        (void)raw_poll(r);
        return r->eof;
}

/* raw_expect - reply I is ERROR (NULL: success) with PARAMETERS (JSON text; NULL: not checked) */
static void raw_expect(const char *context, Raw *r, size_t i, const char *error, const char *parameters)
{
        VarlinkMessage *m;

        assert_true(i < r->n);
        m = &r->replies[i];
        if (!streq(strempty(m->error), strempty(error)))
                fail_msg("%s: got error %s want %s", context, strna(m->error), strna(error));
        if (parameters)
                json_check(context, m->parameters, parameters);
}

/* ---- asynchronous client replies ------------------------------------------------------------ */

typedef struct Record {
        int tag;
        int error;
        char *error_name;
        json_t *parameters;
        bool continues;
        int fds[VARLINK_FDS_MAX];
        size_t n_fds;
} Record;

typedef struct Recorder {
        Record r[64];
        size_t n;
} Recorder;

typedef struct Invocation {
        Recorder *rec;
        int tag;
} Invocation;

static int on_reply(VarlinkClient *c, VarlinkReply *reply, int error, void *userdata)
{
        Invocation *inv = userdata;
        Record *x;

        assert_true(inv->rec->n < ELEMENTSOF(inv->rec->r));
        x = &inv->rec->r[inv->rec->n++];
        *x = (Record){.tag = inv->tag, .error = error};
        if (reply) {
                x->error_name = reply->error ? strdup(reply->error) : NULL;
                x->parameters = json_incref(reply->parameters);
                x->continues = reply->continues;
                /* take the descriptors: the slots become -EBADF */
                for (size_t i = 0; i < reply->n_fds; i++)
                        x->fds[x->n_fds++] = TAKE_FD(reply->fds[i]);
        }
        return 0;
}

static void recorder_done(Recorder *rec)
{
        for (size_t i = 0; i < rec->n; i++) {
                free(rec->r[i].error_name);
                json_decref(rec->r[i].parameters);
                close_many(rec->r[i].fds, rec->r[i].n_fds);
        }
        rec->n = 0;
}

static VarlinkClient *async_client(Fixture *f)
{
        VarlinkClient *c = NULL;

        assert_int_equal(varlink_client_connect(f->path, &c), 0);
        assert_int_equal(varlink_client_attach_event(c, f->event, 0), 0);
        return c;
}

static void record_expect(const char *context, const Record *x, int tag, const char *error,
                          const char *parameters, bool continues)
{
        if (x->tag != tag)
                fail_msg("%s: got the reply of call %d want call %d", context, x->tag, tag);
        if (x->error != 0)
                fail_msg("%s: got connection error %d (%s) want a reply", context, x->error,
                         strerror(-x->error));
        if (!streq(strempty(x->error_name), strempty(error)))
                fail_msg("%s: got error %s want %s", context, strna(x->error_name), strna(error));
        if (x->continues != continues)
                fail_msg("%s: got continues=%d want %d", context, x->continues, continues);
        if (parameters)
                json_check(context, x->parameters, parameters);
}

/* ---- replies and errors ----------------------------------------------------------------- */

static void test_echo(void **state)
{
        Fixture *f = *state;
        _cleanup_(varlink_client_freep) VarlinkClient *c = async_client(f);
        Recorder rec = {};
        Invocation inv = {&rec, 1};

        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Echo",
                                               json_pack("{s:s,s:i}", "text", "hello", "number", 7), NULL, 0,
                                               0, on_reply, &inv),
                         0);
        assert_int_equal(varlink_client_pending(c), 1);
        RUN_UNTIL(f, rec.n == 1);
        record_expect("Echo", &rec.r[0], 1, NULL, "{\"text\":\"hello\",\"number\":7}", false);
        assert_int_equal(varlink_client_pending(c), 0);
        assert_int_equal(f->n_protocol_errors, 0);
        recorder_done(&rec);
}

typedef struct ErrorCase {
        const char *request;
        const char *error; /* NULL: a successful reply */
        const char *parameters;
} ErrorCase;

static const ErrorCase error_cases[] = {
        {"{\"method\":\"io.tern.Test.Nope\"}", VARLINK_ERROR_METHOD_NOT_FOUND,
         "{\"method\":\"io.tern.Test.Nope\"}"},
        {"{\"method\":\"io.tern.Nope.Ping\"}", VARLINK_ERROR_INTERFACE_NOT_FOUND,
         "{\"interface\":\"io.tern.Nope\"}"},
        {"{\"method\":\"io.tern.Ping\"}", VARLINK_ERROR_INTERFACE_NOT_FOUND, "{\"interface\":\"io.tern\"}"},
        {"{\"method\":\"org.varlink.service.Nope\"}", VARLINK_ERROR_METHOD_NOT_FOUND,
         "{\"method\":\"org.varlink.service.Nope\"}"},
        {"{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"x\",\"bogus\":1}}",
         VARLINK_ERROR_INVALID_PARAMETER, "{\"parameter\":\"bogus\"}"},
        {"{\"method\":\"io.tern.Test.Echo\",\"parameters\":{}}", VARLINK_ERROR_INVALID_PARAMETER,
         "{\"parameter\":\"text\"}"},
        {"{\"method\":\"io.tern.Test.Echo\"}", VARLINK_ERROR_INVALID_PARAMETER, "{\"parameter\":\"text\"}"},
        {"{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":null}}",
         VARLINK_ERROR_INVALID_PARAMETER, "{\"parameter\":\"text\"}"},
        {"{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":5}}", VARLINK_ERROR_INVALID_PARAMETER,
         "{\"parameter\":\"text\"}"},
        {"{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":[\"x\"]}}",
         VARLINK_ERROR_INVALID_PARAMETER, "{\"parameter\":\"text\"}"},
        {"{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"x\",\"number\":\"7\"}}",
         VARLINK_ERROR_INVALID_PARAMETER, "{\"parameter\":\"number\"}"},
        {"{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"x\",\"number\":null}}", NULL,
         "{\"text\":\"x\"}"},
        {"{\"method\":\"io.tern.Test.Sleep\",\"parameters\":{\"milliseconds\":1.5}}",
         VARLINK_ERROR_INVALID_PARAMETER, "{\"parameter\":\"milliseconds\"}"},
        {"{\"method\":\"io.tern.Test.Sleep\",\"parameters\":{\"milliseconds\":-1}}",
         VARLINK_ERROR_INVALID_PARAMETER, "{\"parameter\":\"milliseconds\"}"},
        {"{\"method\":\"io.tern.Test.ReadFd\",\"parameters\":{\"fd\":0}}", VARLINK_ERROR_INVALID_PARAMETER,
         "{\"parameter\":\"fd\"}"},
        {"{\"method\":\"io.tern.Test.Count\",\"parameters\":{\"count\":3}}", VARLINK_ERROR_EXPECTED_MORE,
         "{}"},
        {"{\"method\":\"io.tern.Test.Fail\",\"parameters\":{\"reason\":\"disk full\"}}",
         "io.tern.Test.Failed", "{\"reason\":\"disk full\"}"},
        {"{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io."
         "tern.Nope\"}}",
         VARLINK_ERROR_INTERFACE_NOT_FOUND, "{\"interface\":\"io.tern.Nope\"}"},
        {"{\"method\":\"org.varlink.service.GetInterfaceDescription\"}", VARLINK_ERROR_INVALID_PARAMETER,
         "{\"parameter\":\"interface\"}"},
        {"{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{\"x\":1}}",
         VARLINK_ERROR_INVALID_PARAMETER, "{\"parameter\":\"x\"}"},
        {"{\"method\":\"io.tern.Test.Ping\",\"upgrade\":true}", VARLINK_ERROR_METHOD_NOT_IMPLEMENTED,
         "{\"method\":\"io.tern.Test.Ping\"}"},
        {"{\"method\":\"io.tern.Test.Ping\",\"parameters\":null,\"future\":1}", NULL, "{}"},
};

static void test_errors(void **state)
{
        Fixture *f = *state;
        Raw r;

        /* One connection for all: an error reply never costs the connection. */
        raw_connect(f, &r);
        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++) {
                char ctx[512];

                raw_send(&r, error_cases[i].request);
                RUN_UNTIL(f, raw_poll(&r) == i + 1 || r.eof);
                snprintf(ctx, sizeof(ctx), "request %s", error_cases[i].request);
                if (r.eof)
                        fail_msg("%s: got the connection dropped want a reply", ctx);
                raw_expect(ctx, &r, i, error_cases[i].error, error_cases[i].parameters);
        }
        assert_int_equal(r.undecodable, 0);
        assert_int_equal(f->n_protocol_errors, 0);
        raw_close(&r);
}

/* A string with a NUL inside: refused by the dispatcher (and, before it, by the JSON parser). */
static void test_string_with_nul(void **state)
{
        Fixture *f = *state;
        static const VarlinkField fields[] = {
                {"text", VARLINK_FIELD_STRING, 0, VARLINK_FIELD_MANDATORY},
                {},
        };
        const char *text = NULL, *bad = NULL;
        json_t *p = json_object();
        Raw r;

        json_object_set_new(p, "text", json_stringn("a\0b", 3));
        assert_int_equal(varlink_dispatch_check(p, fields, NULL, 0, &text, &bad), -EINVAL);
        assert_string_equal(bad, "text");
        assert_null(text);
        json_decref(p);

        raw_connect(f, &r);
        raw_send(&r, "{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"a\\u0000b\"}}");
        RUN_UNTIL(f, raw_dropped(&r));
        assert_int_equal(r.n, 0);
        assert_int_equal(f->n_protocol_errors, 1);
        assert_string_equal(f->last_detail, "message is not valid JSON");
        raw_close(&r);
}

static void test_get_info(void **state)
{
        Fixture *f = *state;
        _cleanup_(varlink_client_freep) VarlinkClient *c = async_client(f);
        Recorder rec = {};
        Invocation inv[4] = {{&rec, 1}, {&rec, 2}, {&rec, 3}, {&rec, 4}};

        assert_int_equal(
                varlink_client_invoke(c, "org.varlink.service.GetInfo", NULL, NULL, 0, 0, on_reply, &inv[0]),
                0);
        assert_int_equal(varlink_client_invoke(c, "org.varlink.service.GetInterfaceDescription",
                                               json_pack("{s:s}", "interface", "io.tern.Test"), NULL, 0, 0,
                                               on_reply, &inv[1]),
                         0);
        assert_int_equal(varlink_client_invoke(c, "org.varlink.service.GetInterfaceDescription",
                                               json_pack("{s:s}", "interface", "org.varlink.service"), NULL,
                                               0, 0, on_reply, &inv[2]),
                         0);
        RUN_UNTIL(f, rec.n == 3);
        record_expect("GetInfo", &rec.r[0], 1, NULL,
                      "{\"vendor\":\"tern\",\"product\":\"test-varlink\",\"version\":\"0.1\","
                      "\"url\":\"https://tern.example/"
                      "\",\"interfaces\":[\"org.varlink.service\",\"io.tern.Test\"]}",
                      false);

        record_expect("GetInterfaceDescription", &rec.r[1], 2, NULL, NULL, false);
        {
                json_t *d = json_object_get(rec.r[1].parameters, "description");
                assert_true(json_is_string(d));
                if (!streq(json_string_value(d), varlink_idl_io_tern_Test))
                        fail_msg("GetInterfaceDescription io.tern.Test: got\n%s\nwant\n%s",
                                 json_string_value(d), varlink_idl_io_tern_Test);
                assert_int_equal(json_object_size(rec.r[1].parameters), 1);
        }
        record_expect("GetInterfaceDescription org.varlink.service", &rec.r[2], 3, NULL, NULL, false);
        {
                json_t *d = json_object_get(rec.r[2].parameters, "description");
                char *iface = NULL, **methods = NULL;

                assert_true(json_is_string(d));
                assert_int_equal(varlink_idl_parse(json_string_value(d), &iface, &methods), 0);
                assert_string_equal(iface, "org.varlink.service");
                assert_non_null(methods[0]);
                assert_string_equal(methods[0], "GetInfo");
                assert_non_null(methods[1]);
                assert_string_equal(methods[1], "GetInterfaceDescription");
                assert_null(methods[2]);
                free(iface);
                varlink_strv_free(methods);
        }
        recorder_done(&rec);
}

/* ---- ordering ------------------------------------------------------------------------------ */

static void test_pipelined_behind_deferred(void **state)
{
        Fixture *f = *state;
        static const char calls[] =
                "{\"method\":\"io.tern.Test.Sleep\",\"parameters\":{\"milliseconds\":50,\"tag\":\"first\"}}"
                "\0"
                "{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"second\"}}\0"
                "{\"method\":\"io.tern.Test.Ping\"}\0"
                "{\"method\":\"io.tern.Test.Count\",\"parameters\":{\"count\":2},\"more\":true}\0"
                "{\"method\":\"io.tern.Test.Nope\"}\0"
                "{\"method\":\"io.tern.Test.Sleep\",\"parameters\":{\"milliseconds\":0,\"tag\":\"last\"}}";
        uint64_t t0;
        Raw r;

        raw_connect(f, &r);
        t0 = now_usec();
        raw_send_fds(&r, calls, sizeof(calls), NULL, 0); /* all in one write */
        RUN_UNTIL(f, raw_poll(&r) >= 1);
        if (now_usec() - t0 < 50 * USEC_PER_MSEC)
                fail_msg("first reply after %llu us want >= 50 ms (the Sleep)",
                         (unsigned long long)(now_usec() - t0));
        /* Nothing behind the pending Sleep was answered before it. */
        raw_expect("reply 0", &r, 0, NULL, "{\"tag\":\"first\"}");
        RUN_UNTIL(f, raw_poll(&r) >= 7);
        raw_expect("reply 1", &r, 1, NULL, "{\"text\":\"second\"}");
        raw_expect("reply 2", &r, 2, NULL, "{}");
        raw_expect("reply 3", &r, 3, NULL, "{\"index\":0}");
        assert_true(r.replies[3].continues);
        raw_expect("reply 4", &r, 4, NULL, "{\"index\":1}");
        assert_false(r.replies[4].continues);
        raw_expect("reply 5", &r, 5, VARLINK_ERROR_METHOD_NOT_FOUND, NULL);
        raw_expect("reply 6", &r, 6, NULL, "{\"tag\":\"last\"}");
        assert_int_equal(varlink_server_pending_calls(f->server), 0);
        raw_close(&r);
}

static void test_oneway(void **state)
{
        Fixture *f = *state;
        Raw r;

        raw_connect(f, &r);
        /* Neither a success, nor an error, nor a deferred reply is sent for a oneway call. */
        raw_send(&r, "{\"method\":\"io.tern.Test.Ping\",\"oneway\":true}");
        raw_send(&r, "{\"method\":\"io.tern.Test.Nope\",\"oneway\":true}");
        raw_send(&r, "{\"method\":\"io.tern.Test.Fail\",\"parameters\":{\"reason\":\"x\"},\"oneway\":true}");
        raw_send(&r,
                 "{\"method\":\"io.tern.Test.Sleep\",\"parameters\":{\"milliseconds\":10},\"oneway\":true}");
        raw_send(&r, "{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"after\"}}");
        RUN_UNTIL(f, raw_poll(&r) >= 1);
        raw_expect("the first reply", &r, 0, NULL, "{\"text\":\"after\"}");
        raw_send(&r, "{\"method\":\"io.tern.Test.Ping\"}");
        RUN_UNTIL(f, raw_poll(&r) >= 2);
        raw_expect("the second reply", &r, 1, NULL, "{}");
        assert_int_equal(r.n, 2);
        raw_close(&r);
}

static void test_more(void **state)
{
        Fixture *f = *state;
        _cleanup_(varlink_client_freep) VarlinkClient *c = async_client(f);
        Recorder rec = {};
        Invocation inv = {&rec, 7};

        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Count", json_pack("{s:i}", "count", 5), NULL,
                                               0, VARLINK_CALL_MORE, on_reply, &inv),
                         0);
        RUN_UNTIL(f, rec.n == 5);
        for (size_t i = 0; i < 5; i++) {
                char want[32], ctx[32];

                snprintf(want, sizeof(want), "{\"index\":%zu}", i);
                snprintf(ctx, sizeof(ctx), "Count reply %zu", i);
                record_expect(ctx, &rec.r[i], 7, NULL, want, i < 4);
        }
        assert_int_equal(varlink_client_pending(c), 0);
        recorder_done(&rec);
}

/* ---- descriptors ---------------------------------------------------------------------------- */

static void test_fds(void **state)
{
        Fixture *f = *state;
        _cleanup_(varlink_client_freep) VarlinkClient *c = async_client(f);
        Recorder rec = {};
        Invocation inv[3] = {{&rec, 1}, {&rec, 2}, {&rec, 3}};
        size_t base;
        int p[2];
        char buf[64] = {};

        RUN_UNTIL(f, varlink_server_connections(f->server) == 1);
        base = count_open_fds();

        /* Client to server: the server reads what we wrote into the pipe. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "payload", 7), 7);
        p[1] = safe_close(p[1]);
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.ReadFd", json_pack("{s:i}", "fd", 0), p, 1,
                                               0, on_reply, &inv[0]),
                         0);
        p[0] = safe_close(p[0]); /* the client sent its own copy */
        RUN_UNTIL(f, rec.n == 1);
        record_expect("ReadFd", &rec.r[0], 1, NULL, "{\"data\":\"payload\"}", false);
        if (count_open_fds() != base)
                fail_msg("after ReadFd: got %zu open fds want %zu (the server keeps the descriptor)",
                         count_open_fds(), base);

        /* Server to client. */
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.OpenFd",
                                               json_pack("{s:s}", "text", "from the server"), NULL, 0, 0,
                                               on_reply, &inv[1]),
                         0);
        RUN_UNTIL(f, rec.n == 2);
        record_expect("OpenFd", &rec.r[1], 2, NULL, "{\"fd\":0}", false);
        assert_int_equal(rec.r[1].n_fds, 1);
        assert_int_equal(read(rec.r[1].fds[0], buf, sizeof(buf) - 1), 15);
        assert_string_equal(buf, "from the server");
        assert_int_equal(count_open_fds(), base + 1); /* ours only */
        rec.r[1].fds[0] = safe_close(rec.r[1].fds[0]);
        assert_int_equal(count_open_fds(), base);

        /* A descriptor to a method that takes none: refused, and closed in the server. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Ping", NULL, p, 2, 0, on_reply, &inv[2]), 0);
        close_many(p, 2);
        RUN_UNTIL(f, rec.n == 3);
        record_expect("Ping with fds", &rec.r[2], 3, VARLINK_ERROR_INVALID_PARAMETER,
                      "{\"parameter\":\"fd\"}", false);
        assert_int_equal(f->n_protocol_errors, 1);
        assert_string_equal(f->last_detail, "descriptor passed to a method that takes none");
        if (count_open_fds() != base)
                fail_msg("after Ping with fds: got %zu open fds want %zu", count_open_fds(), base);
        assert_int_equal(varlink_server_connections(f->server), 1);

        /* Borrowed: no copy is made; ours stays open until the reply, and is all there is. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "borrowed", 8), 8);
        p[1] = safe_close(p[1]);
        assert_int_equal(count_open_fds(), base + 1);
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.ReadFd", json_pack("{s:i}", "fd", 0), p, 1,
                                               VARLINK_CALL_BORROW_FDS, on_reply, &inv[0]),
                         0);
        assert_int_equal(count_open_fds(), base + 1);
        RUN_UNTIL(f, rec.n == 4);
        record_expect("ReadFd borrowed", &rec.r[3], 1, NULL, "{\"data\":\"borrowed\"}", false);
        p[0] = safe_close(p[0]);
        if (count_open_fds() != base)
                fail_msg("after a borrowed ReadFd: got %zu open fds want %zu", count_open_fds(), base);

        recorder_done(&rec);
}

/* Descriptors on a raw connection: bound to the message they came with, and the limit. */
static void test_fds_raw(void **state)
{
        Fixture *f = *state;
        size_t base;
        int p[2], many[VARLINK_FDS_MAX + 1];
        Raw r;

        raw_connect(f, &r);
        RUN_UNTIL(f, varlink_server_connections(f->server) == 1);
        base = count_open_fds();

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "abc", 3), 3);
        p[1] = safe_close(p[1]);
        /* A call without descriptors first, then one with: the descriptor belongs to the second. */
        raw_send(&r, "{\"method\":\"io.tern.Test.Ping\"}");
        raw_send_fds(&r, "{\"method\":\"io.tern.Test.ReadFd\",\"parameters\":{\"fd\":0}}", 0, p, 1);
        p[0] = safe_close(p[0]);
        RUN_UNTIL(f, raw_poll(&r) >= 2);
        raw_expect("Ping", &r, 0, NULL, "{}");
        raw_expect("ReadFd", &r, 1, NULL, "{\"data\":\"abc\"}");
        assert_int_equal(count_open_fds(), base);

        /* More descriptors than a message may carry: dropped, all of them closed. */
        for (size_t i = 0; i < ELEMENTSOF(many); i++) {
                many[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                assert_true(many[i] >= 0);
        }
        {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * (VARLINK_FDS_MAX + 1))];
                } control = {};
                static const char msg[] = "{\"method\":\"io.tern.Test.ReadFd\",\"parameters\":{\"fd\":0}}";
                struct iovec iov = {(void *)msg, sizeof(msg)};
                struct msghdr mh = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = control.buf,
                                    .msg_controllen = sizeof(control.buf)};
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

                *cm = (struct cmsghdr){.cmsg_level = SOL_SOCKET,
                                       .cmsg_type = SCM_RIGHTS,
                                       .cmsg_len = CMSG_LEN(sizeof(many))};
                memcpy(CMSG_DATA(cm), many, sizeof(many));
                assert_int_equal(sendmsg(r.fd, &mh, MSG_NOSIGNAL), (ssize_t)sizeof(msg));
        }
        close_many(many, ELEMENTSOF(many));
        RUN_UNTIL(f, raw_dropped(&r));
        assert_string_equal(f->last_detail, "too many descriptors in one message");
        RUN_UNTIL(f, varlink_server_connections(f->server) == 0);
        raw_close(&r);
        /* base counted both ends of the connection, now closed; every passed descriptor is gone */
        if (count_open_fds() != base - 2)
                fail_msg("after too many fds: got %zu open fds want %zu", count_open_fds(), base - 2);
}

/* ---- clients that misbehave ----------------------------------------------------------------- */

static void test_malformed(void **state)
{
        Fixture *f = *state;
        static const struct {
                const char *bytes;
                size_t len;
                const char *detail;
        } cases[] = {
                {"{not json}", 0, "message is not valid JSON"},
                {"[]", 0, "message is not a JSON object"},
                {"{\"method\":5}", 0, "\"method\" is missing or not a string"},
                {"{\"method\":\"io.tern.Test.Ping\",\"more\":true,\"oneway\":true}", 0,
                 "\"more\", \"oneway\" and \"upgrade\" exclude each other"},
                {"{\"method\":\"io.tern.Test.Ping\",\"parameters\":[]}", 0,
                 "\"parameters\" is not an object"},
                {"{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"\xff\"}}", 0,
                 "message is not valid JSON"},
                {"\0", 1, "message is not valid JSON"},
        };
        Raw good;

        raw_connect(f, &good);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Raw bad;

                raw_connect(f, &bad);
                raw_send_fds(&bad, cases[i].bytes, cases[i].len, NULL, 0);
                RUN_UNTIL(f, raw_dropped(&bad));
                if (bad.n != 0)
                        fail_msg("case %zu: got %zu replies want the connection dropped", i, bad.n);
                if (f->n_protocol_errors != i + 1 || !streq(f->last_detail, cases[i].detail))
                        fail_msg("case %zu: got %u protocol errors, last \"%s\" want %zu, \"%s\"", i,
                                 f->n_protocol_errors, f->last_detail, i + 1, cases[i].detail);
                raw_close(&bad);

                /* The server keeps serving the others. */
                raw_send(&good, "{\"method\":\"io.tern.Test.Ping\"}");
                RUN_UNTIL(f, raw_poll(&good) == i + 1);
                raw_expect("the good client", &good, i, NULL, "{}");
        }
        RUN_UNTIL(f, varlink_server_connections(f->server) == 1);
        raw_close(&good);
}

static void test_oversize(void **state)
{
        Fixture *f = *state;
        static const char head[] = "{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"";
        size_t chunk = 256 * 1024, sent = 0;
        uint64_t deadline = now_usec() + WAIT_MAX_USEC;
        char *buf = malloc(chunk);
        bool dropped = false;
        Raw bad, good;

        assert_non_null(buf);
        memset(buf, 'x', chunk);
        memcpy(buf, head, strlen(head));
        raw_connect(f, &good);
        raw_connect(f, &bad);
        /* Keep writing (no NUL ever) until the server hangs up; let it run whenever the socket is full. */
        while (!dropped) {
                ssize_t k = send(bad.fd, buf, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (now_usec() > deadline)
                        fail_msg("oversize: still connected after %zu bytes", sent);
                if (k > 0)
                        sent += (size_t)k;
                else if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
                        dropped = true;
                else if (k < 0 && errno == EAGAIN)
                        assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
                else
                        fail_msg("oversize: send: %s", strerror(errno));
                /* Drain events too while the kernel still takes our bytes. */
                if (!dropped)
                        assert_true(sd_event_run(f->event, 0) >= 0);
        }
        if (sent < VARLINK_MESSAGE_MAX)
                fail_msg("oversize: dropped after %zu bytes want more than %u", sent, VARLINK_MESSAGE_MAX);
        assert_string_equal(f->last_detail, "message exceeds the maximum message size");
        raw_send(&good, "{\"method\":\"io.tern.Test.Ping\"}");
        RUN_UNTIL(f, raw_poll(&good) == 1);
        raw_expect("the good client", &good, 0, NULL, "{}");
        raw_close(&bad);
        raw_close(&good);
        free(buf);
}

static void test_stall_timeout(void **state)
{
        Fixture *f = *state;
        const uint64_t timeout = 200 * USEC_PER_MSEC;
        uint64_t t0;
        Raw stalled, good;

        varlink_server_set_io_timeout(f->server, timeout);
        raw_connect(f, &good);
        raw_connect(f, &stalled);
        t0 = now_usec();
        raw_send_fds(&stalled, "{\"method\":\"io.tern.Test.Pi", 26, NULL, 0);

        /* While one client owes us the rest of its message, the other one is served. */
        raw_send(&good, "{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"served\"}}");
        RUN_UNTIL(f, raw_poll(&good) == 1);
        raw_expect("the good client", &good, 0, NULL, "{\"text\":\"served\"}");
        assert_false(raw_dropped(&stalled));

        RUN_UNTIL(f, raw_dropped(&stalled));
        if (now_usec() - t0 < timeout)
                fail_msg("stalled client dropped after %llu us want >= %llu",
                         (unsigned long long)(now_usec() - t0), (unsigned long long)timeout);
        assert_string_equal(f->last_detail, "timeout while receiving a message");
        assert_int_equal(f->n_protocol_errors, 1);

        /* An idle client (nothing half-sent) is not dropped, however long it waits. */
        assert_int_equal(varlink_server_connections(f->server), 1);
        raw_send(&good, "{\"method\":\"io.tern.Test.Ping\"}");
        RUN_UNTIL(f, raw_poll(&good) == 2);
        raw_expect("the good client again", &good, 1, NULL, "{}");
        raw_close(&stalled);
        raw_close(&good);
}

static void test_disconnect_mid_reply(void **state)
{
        Fixture *f = *state;
        size_t base = count_open_fds();
        Raw r;

        /* Leave after the first of 100000 streamed replies has arrived. */
        raw_connect(f, &r);
        raw_send(&r, "{\"method\":\"io.tern.Test.Count\",\"parameters\":{\"count\":100000},\"more\":true}");
        RUN_UNTIL(f, raw_poll(&r) >= 1);
        raw_close(&r);
        RUN_UNTIL(f, varlink_server_connections(f->server) == 0);

        /* And leave before reading anything at all. */
        raw_connect(f, &r);
        raw_send(&r, "{\"method\":\"io.tern.Test.Count\",\"parameters\":{\"count\":100000},\"more\":true}");
        raw_close(&r);
        RUN_UNTIL(f, f->n_disconnect == 2);

        assert_int_equal(varlink_server_connections(f->server), 0);
        assert_int_equal(varlink_server_pending_calls(f->server), 0);
        assert_int_equal(count_open_fds(), base);
}

static void test_disconnect_before_deferred_reply(void **state)
{
        Fixture *f = *state;
        size_t base = count_open_fds();
        Raw r, good;

        raw_connect(f, &good);
        raw_connect(f, &r);
        raw_send(&r, "{\"method\":\"io.tern.Test.Sleep\",\"parameters\":{\"milliseconds\":50}}");
        RUN_UNTIL(f, varlink_server_pending_calls(f->server) == 1);
        raw_close(&r);
        /* The handler still holds the call; its reply goes nowhere, and the connection goes. */
        RUN_UNTIL(f, varlink_server_pending_calls(f->server) == 0 &&
                             varlink_server_connections(f->server) == 1);
        raw_send(&good, "{\"method\":\"io.tern.Test.Ping\"}");
        RUN_UNTIL(f, raw_poll(&good) == 1);
        raw_expect("the good client", &good, 0, NULL, "{}");
        raw_close(&good);
        RUN_UNTIL(f, varlink_server_connections(f->server) == 0);
        assert_int_equal(count_open_fds(), base);
        assert_int_equal(f->n_protocol_errors, 0);
}

static void test_many_clients(void **state)
{
        enum { N = 200 };
        Fixture *f = *state;
        Raw *r = calloc(N, sizeof(Raw));
        size_t answered;

        assert_non_null(r);
        for (size_t i = 0; i < N; i++) {
                char call[128];

                raw_connect(f, &r[i]);
                snprintf(call, sizeof(call),
                         "{\"method\":\"io.tern.Test.Echo\",\"parameters\":{\"text\":\"client %zu\"}}", i);
                raw_send(&r[i], call);
        }
        RUN_UNTIL(f, ({
                          answered = 0;
                          for (size_t i = 0; i < N; i++)
                                  answered += raw_poll(&r[i]) == 1;
                          answered == N;
                  }));
        assert_int_equal(varlink_server_connections(f->server), N);
        assert_int_equal(varlink_server_accepted(f->server), N);
        for (size_t i = 0; i < N; i++) {
                char want[64];

                snprintf(want, sizeof(want), "{\"text\":\"client %zu\"}", i);
                raw_expect("one of many", &r[i], 0, NULL, want);
                raw_close(&r[i]);
        }
        RUN_UNTIL(f, varlink_server_connections(f->server) == 0);
        assert_int_equal(f->n_connect, N);
        assert_int_equal(f->n_disconnect, N);
        free(r);
}

/* ---- the asynchronous client ---------------------------------------------------------------- */

static void test_async_pipelined(void **state)
{
        Fixture *f = *state;
        _cleanup_(varlink_client_freep) VarlinkClient *c = async_client(f);
        Recorder rec = {};
        Invocation inv[5] = {{&rec, 1}, {&rec, 2}, {&rec, 3}, {&rec, 4}, {&rec, 5}};

        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Sleep",
                                               json_pack("{s:i,s:s}", "milliseconds", 30, "tag", "slow"),
                                               NULL, 0, 0, on_reply, &inv[0]),
                         0);
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Echo", json_pack("{s:s}", "text", "two"),
                                               NULL, 0, 0, on_reply, &inv[1]),
                         0);
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Count", json_pack("{s:i}", "count", 3), NULL,
                                               0, VARLINK_CALL_MORE, on_reply, &inv[2]),
                         0);
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, VARLINK_CALL_ONEWAY,
                                               on_reply, &inv[3]),
                         0);
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Fail", json_pack("{s:s}", "reason", "five"),
                                               NULL, 0, 0, on_reply, &inv[4]),
                         0);
        assert_int_equal(varlink_client_pending(c), 4); /* the oneway call waits for nothing */
        RUN_UNTIL(f, rec.n == 6);
        record_expect("reply 0", &rec.r[0], 1, NULL, "{\"tag\":\"slow\"}", false);
        record_expect("reply 1", &rec.r[1], 2, NULL, "{\"text\":\"two\"}", false);
        record_expect("reply 2", &rec.r[2], 3, NULL, "{\"index\":0}", true);
        record_expect("reply 3", &rec.r[3], 3, NULL, "{\"index\":1}", true);
        record_expect("reply 4", &rec.r[4], 3, NULL, "{\"index\":2}", false);
        record_expect("reply 5", &rec.r[5], 5, "io.tern.Test.Failed", "{\"reason\":\"five\"}", false);
        assert_int_equal(varlink_client_pending(c), 0);

        /* Invalid method names are refused before anything is sent. */
        assert_int_equal(varlink_client_invoke(c, "Ping", NULL, NULL, 0, 0, on_reply, &inv[0]), -EINVAL);
        assert_int_equal(varlink_client_pending(c), 0);
        recorder_done(&rec);
}

static void test_async_failure(void **state)
{
        Fixture *f = *state;
        Recorder rec = {};
        Invocation inv[3] = {{&rec, 1}, {&rec, 2}, {&rec, 3}};

        /* The peer hangs up with two calls outstanding. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
                int sp[2];

                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
                assert_int_equal(varlink_client_new_from_fd(sp[0], &c), 0);
                assert_int_equal(varlink_client_attach_event(c, f->event, 0), 0);
                assert_int_equal(varlink_client_attach_event(c, f->event, 0), -EBUSY);
                assert_int_equal(
                        varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, on_reply, &inv[0]),
                        0);
                assert_int_equal(
                        varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, on_reply, &inv[1]),
                        0);
                sp[1] = safe_close(sp[1]);
                RUN_UNTIL(f, rec.n == 2);
                for (size_t i = 0; i < 2; i++) {
                        if (rec.r[i].tag != (int)i + 1 || rec.r[i].error >= 0 || rec.r[i].parameters)
                                fail_msg("hang-up, callback %zu: got tag %d error %d reply %p want tag %zu, "
                                         "error < 0, "
                                         "no reply",
                                         i, rec.r[i].tag, rec.r[i].error, (void *)rec.r[i].parameters,
                                         i + 1);
                }
                assert_int_equal(varlink_client_pending(c), 0);
                assert_int_equal(
                        varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, on_reply, &inv[2]),
                        -ENOTCONN);
                recorder_done(&rec);
        }

        /* The peer answers garbage: the callback hears -EBADMSG. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
                _cleanup_(closep) int peer = -EBADF;
                int sp[2];

                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
                peer = sp[1];
                assert_int_equal(varlink_client_new_from_fd(sp[0], &c), 0);
                assert_int_equal(varlink_client_attach_event(c, f->event, 0), 0);
                assert_int_equal(
                        varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, on_reply, &inv[0]),
                        0);
                assert_int_equal(write(peer, "garbage", 8), 8);
                RUN_UNTIL(f, rec.n == 1);
                if (rec.r[0].error != -EBADMSG)
                        fail_msg("garbage reply: got error %d want %d", rec.r[0].error, -EBADMSG);
                recorder_done(&rec);
        }

        /* One reply more than was asked for: the client gives up on the peer. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
                _cleanup_(closep) int peer = -EBADF;
                int sp[2];

                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
                peer = sp[1];
                assert_int_equal(varlink_client_new_from_fd(sp[0], &c), 0);
                assert_int_equal(varlink_client_attach_event(c, f->event, 0), 0);
                assert_int_equal(
                        varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, on_reply, &inv[0]),
                        0);
                assert_int_equal(write(peer, "{}\0{}", 6), 6);
                RUN_UNTIL(f, rec.n == 1);
                record_expect("the asked-for reply", &rec.r[0], 1, NULL, "{}", false);
                assert_int_equal(
                        varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, on_reply, &inv[1]),
                        -ENOTCONN);
                assert_int_equal(rec.n, 1);
                recorder_done(&rec);
        }

        /* Freed with calls outstanding: each callback hears it. */
        {
                VarlinkClient *c = async_client(f);

                assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Sleep",
                                                       json_pack("{s:i}", "milliseconds", 10), NULL, 0, 0,
                                                       on_reply, &inv[0]),
                                 0);
                varlink_client_free(c);
                assert_int_equal(rec.n, 1);
                assert_int_equal(rec.r[0].error, -ECONNRESET);
                assert_null(rec.r[0].parameters);
                recorder_done(&rec);
                /* The server finishes the Sleep for a client that is gone. */
                RUN_UNTIL(f, varlink_server_connections(f->server) == 0 &&
                                     varlink_server_pending_calls(f->server) == 0);
        }

        /* Not attached: invoke is refused. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;

                assert_int_equal(varlink_client_connect(f->path, &c), 0);
                assert_int_equal(
                        varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, on_reply, &inv[0]),
                        -EUNATCH);
        }
}

/* ---- the synchronous client ----------------------------------------------------------------- */

/* queued_messages - complete messages waiting in FD's receive queue (peeked, not read) */
static size_t queued_messages(int fd)
{
        static char buf[1 << 20];
        ssize_t k = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
        size_t n = 0;

        for (ssize_t i = 0; i < k; i++)
                n += buf[i] == '\0';
        return n;
}

static void test_sync_client(void **state)
{
        Fixture *f = *state;
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        VarlinkReply reply = {};

        assert_int_equal(varlink_client_connect(f->path, &c), 0);
        varlink_client_set_timeout(c, WAIT_MAX_USEC); /* a bug fails the test instead of hanging it */
        assert_int_equal(varlink_client_read(c, &reply), -ENOMSG);

        /* Pipelined: three sends, then the replies in order once the server has written them. */
        assert_int_equal(
                varlink_client_send(c, "io.tern.Test.Echo", json_pack("{s:s}", "text", "one"), NULL, 0, 0),
                0);
        assert_int_equal(varlink_client_send(c, "io.tern.Test.Ping", NULL, NULL, 0, VARLINK_CALL_ONEWAY), 0);
        assert_int_equal(varlink_client_send(c, "io.tern.Test.Fail", json_pack("{s:s}", "reason", "three"),
                                             NULL, 0, 0),
                         0);
        assert_int_equal(varlink_client_send(c, "io.tern.Test.OpenFd", json_pack("{s:s}", "text", "four"),
                                             NULL, 0, 0),
                         0);
        RUN_UNTIL(f, queued_messages(varlink_client_fd(c)) == 3);

        assert_int_equal(varlink_client_read(c, &reply), 0);
        assert_null(reply.error);
        json_check("sync reply 1", reply.parameters, "{\"text\":\"one\"}");
        varlink_reply_done(&reply);
        assert_int_equal(varlink_client_read(c, &reply), 0);
        assert_string_equal(reply.error, "io.tern.Test.Failed");
        json_check("sync reply 2", reply.parameters, "{\"reason\":\"three\"}");
        varlink_reply_done(&reply);
        assert_int_equal(varlink_client_read(c, &reply), 0);
        json_check("sync reply 3", reply.parameters, "{\"fd\":0}");
        assert_int_equal(reply.n_fds, 1);
        {
                char buf[8] = {};
                assert_int_equal(read(reply.fds[0], buf, sizeof(buf)), 4);
                assert_string_equal(buf, "four");
        }
        varlink_reply_done(&reply); /* closes the descriptor */
        assert_int_equal(varlink_client_read(c, &reply), -ENOMSG);

        /* A client not attached to an event loop has no asynchronous calls. */
        assert_int_equal(varlink_client_invoke(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, on_reply, NULL),
                         -EUNATCH);
}

static void test_sync_timeout(void **state)
{
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_(closep) int peer = -EBADF;
        const uint64_t timeout = 100 * USEC_PER_MSEC;
        VarlinkReply reply = {};
        uint64_t t0, elapsed;
        int sp[2], r;

        /* A peer that never answers. */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        peer = sp[1];
        assert_int_equal(varlink_client_new_from_fd(sp[0], &c), 0);
        varlink_client_set_timeout(c, timeout);
        t0 = now_usec();
        r = varlink_client_call(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, &reply);
        elapsed = now_usec() - t0;
        if (r != -ETIMEDOUT)
                fail_msg("call to a silent peer: got %d want %d", r, -ETIMEDOUT);
        if (elapsed < timeout || elapsed > WAIT_MAX_USEC)
                fail_msg("timed out after %llu us want about %llu", (unsigned long long)elapsed,
                         (unsigned long long)timeout);
        /* The connection is in an unknown state now: no further calls on it. */
        assert_int_equal(varlink_client_call(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, &reply), -ENOTCONN);

        /* A peer that hangs up: -ECONNRESET, at once. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c2 = NULL;

                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
                assert_int_equal(varlink_client_new_from_fd(sp[0], &c2), 0);
                varlink_client_set_timeout(c2, WAIT_MAX_USEC);
                assert_int_equal(varlink_client_send(c2, "io.tern.Test.Ping", NULL, NULL, 0, 0), 0);
                safe_close(sp[1]);
                assert_int_equal(varlink_client_read(c2, &reply), -ECONNRESET);
        }
}

static void test_call_timeout_event(void **state)
{
        Fixture *f = *state;
        Raw r;

        varlink_server_set_call_timeout(f->server, 20 * USEC_PER_MSEC);
        raw_connect(f, &r);
        raw_send(&r, "{\"method\":\"io.tern.Test.Sleep\",\"parameters\":{\"milliseconds\":200}}");
        RUN_UNTIL(f, f->n_call_timeouts == 1);
        assert_string_equal(f->last_detail, "io.tern.Test.Sleep");
        assert_int_equal(r.n, 0);
        RUN_UNTIL(f, raw_poll(&r) == 1); /* the call still completes */
        assert_int_equal(f->n_call_timeouts, 1);
        raw_close(&r);
        RUN_UNTIL(f, varlink_server_connections(f->server) == 0);
}

/* ---- binding ------------------------------------------------------------------------------- */

static int method_nothing(VarlinkCall *c, json_t *parameters, unsigned flags, void *userdata)
{
        return varlink_call_reply(c, NULL);
}

static void test_table_mismatch(void **state)
{
        Fixture *f = *state;
        _cleanup_(varlink_server_freep) VarlinkServer *s = NULL;
        VarlinkMethod missing[16] = {}, extra[16] = {}, renamed[16] = {};
        size_t n = 0;

        for (const VarlinkMethod *m = testd_interface.methods; m->name; m++)
                n++;
        assert_true(n + 2 <= ELEMENTSOF(extra));
        memcpy(missing, testd_interface.methods, (n - 1) * sizeof(VarlinkMethod)); /* no Log */
        memcpy(extra, testd_interface.methods, n * sizeof(VarlinkMethod));
        extra[n] = (VarlinkMethod){"Extra", method_nothing, 0};
        memcpy(renamed, testd_interface.methods, n * sizeof(VarlinkMethod));
        renamed[0].name = "Echo2";

        const struct {
                const char *what;
                VarlinkInterface iface;
                int want;
        } cases[] = {
                {"a method of the IDL missing",
                 {"io.tern.Test", varlink_idl_io_tern_Test, missing},
                 -EINVAL},
                {"a method not in the IDL", {"io.tern.Test", varlink_idl_io_tern_Test, extra}, -EINVAL},
                {"a method renamed", {"io.tern.Test", varlink_idl_io_tern_Test, renamed}, -EINVAL},
                {"another interface's name",
                 {"io.tern.Other", varlink_idl_io_tern_Test, testd_interface.methods},
                 -EINVAL},
                {"an IDL that does not parse",
                 {"io.tern.Test", "method Ping() -> ()\n", testd_interface.methods},
                 -EINVAL},
                {"the real table", testd_interface, 0},
        };

        assert_int_equal(varlink_server_new(f->event, &s), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = varlink_server_add_interface(s, &cases[i].iface, NULL);
                if (r != cases[i].want)
                        fail_msg("add_interface with %s: got %d want %d", cases[i].what, r, cases[i].want);
        }
        /* bound once only */
        assert_int_equal(varlink_server_add_interface(s, &testd_interface, NULL), -EEXIST);
}

/* connect to PATH: the descriptor, or -1 */
static int test_connect_unix(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* entries of DIR other than . and .. */
static unsigned dir_entries(const char *dir)
{
        DIR *d = opendir(dir);
        unsigned n = 0;

        assert_non_null(d);
        for (struct dirent *e; (e = readdir(d));)
                n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(d);
        return n;
}

/*
 * varlink_listen_path: the socket appears at its path already listening and with its mode (it is
 * renamed into place), no temporary name is left behind, a stale socket is replaced, a live one and
 * anything that is not a socket are refused.
 */
static void test_listen_path(void **state)
{
        Fixture *f = *state;
        char path[160], file[160];
        struct stat st;
        int fd, fd2, c;

        snprintf(path, sizeof(path), "%s/listen", f->dir);
        fd = varlink_listen_path(path, 0640);
        assert_true(fd >= 0);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(dir_entries(f->dir), 2); /* "test" (the fixture's) and "listen" */
        c = test_connect_unix(path);
        assert_true(c >= 0);
        close(c);

        /* live: refused, and the live socket is left alone */
        assert_int_equal(varlink_listen_path(path, 0600), -EADDRINUSE);
        assert_int_equal(dir_entries(f->dir), 2);

        /* stale: replaced by a new socket that answers */
        close(fd);
        fd2 = varlink_listen_path(path, 0600);
        assert_true(fd2 >= 0);
        c = test_connect_unix(path);
        assert_true(c >= 0);
        close(c);
        close(fd2);
        assert_int_equal(dir_entries(f->dir), 2);
        assert_int_equal(unlink(path), 0);

        /* not a socket: never removed */
        snprintf(file, sizeof(file), "%s/file", f->dir);
        fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(varlink_listen_path(file, 0600), -EEXIST);
        assert_int_equal(lstat(file, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(unlink(file), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_string_with_nul, setup, teardown),
                cmocka_unit_test_setup_teardown(test_get_info, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pipelined_behind_deferred, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oneway, setup, teardown),
                cmocka_unit_test_setup_teardown(test_more, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fds_raw, setup, teardown),
                cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stall_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disconnect_mid_reply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disconnect_before_deferred_reply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
                cmocka_unit_test_setup_teardown(test_async_pipelined, setup, teardown),
                cmocka_unit_test_setup_teardown(test_async_failure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sync_client, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sync_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_timeout_event, setup, teardown),
                cmocka_unit_test_setup_teardown(test_table_mismatch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_listen_path, setup, teardown),
        };

        return cmocka_run_group_tests_name("varlink", tests, NULL, NULL);
}
