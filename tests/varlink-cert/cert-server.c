/* SPDX-License-Identifier: MIT */
/*
 * cert-server.c - org.varlink.certification on tern's varlink server, for an outside client
 *
 * Usage: cert-server SOCKET-PATH. Serves org.varlink.certification (and the built-in
 * org.varlink.service) on SOCKET-PATH until SIGTERM or SIGINT, on a plain sd-event loop, so that
 * varlink-go-certification --client (or any other implementation's certification client) can
 * run the official sequence against tern's server code: Start, Test01 .. Test11, End.
 *
 * Semantics, as the reference servers: Start hands out a fresh client_id (a random UUID); every
 * other method answers org.varlink.certification.ClientIdError for an unknown one. Each client
 * must call the methods in order, each with the values the previous reply carried (cert-steps.c);
 * a call out of order or with other values gets CertificationError {wants, got} and marks the
 * client as failed. Test10 must be called with "more" and streams ten replies; Test11 must be
 * oneway (its verdict, having no reply, is kept for End). End forgets the client and answers
 * all_ok: true only if the client went through every step in order with the right values.
 * Every CertificationError is also written to stderr, so a failing run says what went wrong.
 *
 * Limits: CERT_CLIENTS_MAX clients at once; beyond that Start forgets the oldest one (its next
 * call gets ClientIdError). Client state is not tied to a connection, as in the reference servers.
 */
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "cert-idl.h"
#include "config.h"
#include "cert-steps.h"
#include "json-util.h"
#include "macro.h"
#include "varlink.h"

/* Certification clients remembered at once: a test runs a few; the Go server keeps 100. */
#define CERT_CLIENTS_MAX 64U

#define CERT_ERROR_CLIENT_ID CERT_INTERFACE ".ClientIdError"
#define CERT_ERROR_CERTIFICATION CERT_INTERFACE ".CertificationError"

typedef struct CertClient {
        char id[SD_ID128_UUID_STRING_MAX];      /* "" for a free slot */
        CertStepId next;                        /* the step the client must call next */
        bool failed;
        uint64_t serial;                        /* order of Start, to find the oldest */
} CertClient;

typedef struct CertServer {
        CertClient clients[CERT_CLIENTS_MAX];
        uint64_t serial;
} CertServer;

/* The decoded parameters of any certification method: each method's table fills its own. */
typedef struct CertParams {
        const char *client_id;
        bool bool_;
        int64_t int_;
        double float_;
        const char *string;
        json_t *object;
        json_t *array;
} CertParams;

#define F(name, type, member) { name, type, offsetof(CertParams, member), VARLINK_FIELD_MANDATORY }
#define F_CLIENT_ID F("client_id", VARLINK_FIELD_STRING, client_id)
#define F_BOOL F("bool", VARLINK_FIELD_BOOL, bool_)
#define F_INT F("int", VARLINK_FIELD_INT, int_)
#define F_FLOAT F("float", VARLINK_FIELD_FLOAT, float_)
#define F_STRING F("string", VARLINK_FIELD_STRING, string)
#define F_OBJECT(name) F(name, VARLINK_FIELD_OBJECT, object)
#define F_STRINGV(name) F(name, VARLINK_FIELD_STRINGV, array)

/* Types are checked here (InvalidParameter); values against cert_steps by cert_check_values(). */
static const VarlinkField *const cert_fields[_CERT_STEP_MAX] = {
        [CERT_START] = (const VarlinkField[]){ {} },
        [CERT_TEST01] = (const VarlinkField[]){ F_CLIENT_ID, {} },
        [CERT_TEST02] = (const VarlinkField[]){ F_CLIENT_ID, F_BOOL, {} },
        [CERT_TEST03] = (const VarlinkField[]){ F_CLIENT_ID, F_INT, {} },
        [CERT_TEST04] = (const VarlinkField[]){ F_CLIENT_ID, F_FLOAT, {} },
        [CERT_TEST05] = (const VarlinkField[]){ F_CLIENT_ID, F_STRING, {} },
        [CERT_TEST06] = (const VarlinkField[]){ F_CLIENT_ID, F_BOOL, F_INT, F_FLOAT, F_STRING, {} },
        [CERT_TEST07] = (const VarlinkField[]){ F_CLIENT_ID, F_OBJECT("struct"), {} },
        [CERT_TEST08] = (const VarlinkField[]){ F_CLIENT_ID, F_OBJECT("map"), {} },
        [CERT_TEST09] = (const VarlinkField[]){ F_CLIENT_ID, F_OBJECT("set"), {} },
        [CERT_TEST10] = (const VarlinkField[]){ F_CLIENT_ID, F_OBJECT("mytype"), {} },
        [CERT_TEST11] = (const VarlinkField[]){ F_CLIENT_ID, F_STRINGV("last_more_replies"), {} },
        [CERT_END] = (const VarlinkField[]){ F_CLIENT_ID, {} },
};

static CertClient *cert_client_find(CertServer *s, const char *id)
{
        for (size_t i = 0; i < CERT_CLIENTS_MAX; i++)
                if (s->clients[i].id[0] && streq(s->clients[i].id, id))
                        return &s->clients[i];
        return NULL;
}

/* cert_client_new - a fresh client in a free slot, or in the oldest one's */
static int cert_client_new(CertServer *s, CertClient **ret)
{
        CertClient *slot = &s->clients[0];
        sd_id128_t id;
        int r;

        r = sd_id128_randomize(&id);
        if (r < 0)
                return r;
        for (size_t i = 0; i < CERT_CLIENTS_MAX; i++) {
                CertClient *c = &s->clients[i];
                if (!c->id[0]) {
                        slot = c;
                        break;
                }
                if (c->serial < slot->serial)
                        slot = c;
        }
        *slot = (CertClient){ .next = CERT_TEST01, .serial = ++s->serial };
        sd_id128_to_uuid_string(id, slot->id);
        *ret = slot;
        return 0;
}

/* cert_fail - answer CertificationError {wants, got} (taken over), say so on stderr, mark CLIENT */
static int cert_fail(VarlinkCall *call, CertClient *client, json_t *wants, json_t *got)
{
        _cleanup_(freep) char *w = cert_json_text(wants), *g = cert_json_text(got);

        fprintf(stderr, "cert-server: %s: client %s: CertificationError: wants %s, got %s\n",
                varlink_call_method(call), client->id, strna(w), strna(g));
        client->failed = true;
        return varlink_call_error(call, CERT_ERROR_CERTIFICATION,
                                  json_pack("{s:o,s:o}", "wants", wants, "got", got));
}

/* cert_check_values - the call's parameters besides client_id are the step's; 0 or answered */
static int cert_check_values(VarlinkCall *call, CertClient *client, CertStepId step, json_t *parameters)
{
        _cleanup_(json_decrefp) json_t *want = cert_json(cert_steps[step].call);
        _cleanup_(json_decrefp) json_t *got = json_copy(parameters);
        int r;

        if (!got)
                return -ENOMEM;
        (void) json_object_del(got, "client_id");
        if (cert_json_match(want, got))
                return 0;
        r = cert_fail(call, client, TAKE_PTR(want), TAKE_PTR(got));
        return r < 0 ? r : 1;
}

/* cert_check_flags - Test10 wants "more", Test11 "oneway"; 0 or answered */
static int cert_check_flags(VarlinkCall *call, CertClient *client, CertStepId step, unsigned flags)
{
        unsigned want = cert_steps[step].call_flags & (VARLINK_CALL_MORE | VARLINK_CALL_ONEWAY);
        unsigned got = flags & (VARLINK_CALL_MORE | VARLINK_CALL_ONEWAY);
        int r;

        if ((want & got) == want)
                return 0;
        r = cert_fail(call, client,
                      json_pack("{s:b,s:b}", "more", !!(want & VARLINK_CALL_MORE), "oneway",
                                !!(want & VARLINK_CALL_ONEWAY)),
                      json_pack("{s:b,s:b}", "more", !!(got & VARLINK_CALL_MORE), "oneway",
                                !!(got & VARLINK_CALL_ONEWAY)));
        return r < 0 ? r : 1;
}

static int cert_reply_step(VarlinkCall *call, CertStepId step)
{
        if (step == CERT_TEST10) {
                for (unsigned n = 1; n < CERT_MORE_REPLIES; n++) {
                        int r = varlink_call_notify(call, cert_more_reply(n));
                        if (r < 0)
                                return r;
                }
                return varlink_call_reply(call, cert_more_reply(CERT_MORE_REPLIES));
        }
        /* Test11 is oneway: the server discards this. */
        return varlink_call_reply(call, cert_steps[step].reply ? cert_json(cert_steps[step].reply) : NULL);
}

/* cert_method - every method but Start: client, order, flags, values, then the step's reply */
static int cert_method(VarlinkCall *call, json_t *parameters, unsigned flags, CertServer *s, CertStepId step)
{
        CertParams p = {};
        CertClient *client;
        int r;

        r = varlink_dispatch(call, parameters, cert_fields[step], &p);
        if (r < 0)
                return r;
        client = cert_client_find(s, p.client_id);
        if (!client)
                return varlink_call_error(call, CERT_ERROR_CLIENT_ID, NULL);

        if (step == CERT_END) {
                bool all_ok = client->next == CERT_END && !client->failed;

                fprintf(stderr, "cert-server: client %s: End: all_ok %s%s\n", client->id,
                        all_ok ? "true" : "false", client->next == CERT_END ? "" : " (steps missing)");
                *client = (CertClient){};
                return varlink_call_reply(call, json_pack("{s:b}", "all_ok", all_ok));
        }
        if (client->next != step)
                return cert_fail(call, client, json_pack("{s:s}", "method", cert_steps[client->next].method),
                                 json_pack("{s:s}", "method", cert_steps[step].method));
        r = cert_check_flags(call, client, step, flags);
        if (r != 0)
                return r < 0 ? r : 0;
        r = cert_check_values(call, client, step, parameters);
        if (r != 0)
                return r < 0 ? r : 0;
        client->next = step + 1;
        return cert_reply_step(call, step);
}

static int method_start(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        CertParams p = {};
        CertClient *client;
        int r;

        r = varlink_dispatch(call, parameters, cert_fields[CERT_START], &p);
        if (r < 0)
                return r;
        r = cert_client_new(userdata, &client);
        if (r < 0)
                return r;
        return varlink_call_reply(call, json_pack("{s:s}", "client_id", client->id));
}

#define DEFINE_CERT_METHOD(fn, step)                                                                  \
        static int fn(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)          \
        {                                                                                             \
                return cert_method(call, parameters, flags, userdata, step);                          \
        }

DEFINE_CERT_METHOD(method_test01, CERT_TEST01)
DEFINE_CERT_METHOD(method_test02, CERT_TEST02)
DEFINE_CERT_METHOD(method_test03, CERT_TEST03)
DEFINE_CERT_METHOD(method_test04, CERT_TEST04)
DEFINE_CERT_METHOD(method_test05, CERT_TEST05)
DEFINE_CERT_METHOD(method_test06, CERT_TEST06)
DEFINE_CERT_METHOD(method_test07, CERT_TEST07)
DEFINE_CERT_METHOD(method_test08, CERT_TEST08)
DEFINE_CERT_METHOD(method_test09, CERT_TEST09)
DEFINE_CERT_METHOD(method_test10, CERT_TEST10)
DEFINE_CERT_METHOD(method_test11, CERT_TEST11)
DEFINE_CERT_METHOD(method_end, CERT_END)

/* Test10 is not flagged VARLINK_METHOD_MORE: a call without "more" gets the certification's own
 * CertificationError (and marks the client), as the reference servers answer. */
static const VarlinkInterface cert_interface = {
        .name = CERT_INTERFACE,
        .description = varlink_idl_org_varlink_certification,
        .methods = (const VarlinkMethod[]){
                { "Start", method_start, 0 },
                { "Test01", method_test01, 0 },
                { "Test02", method_test02, 0 },
                { "Test03", method_test03, 0 },
                { "Test04", method_test04, 0 },
                { "Test05", method_test05, 0 },
                { "Test06", method_test06, 0 },
                { "Test07", method_test07, 0 },
                { "Test08", method_test08, 0 },
                { "Test09", method_test09, 0 },
                { "Test10", method_test10, 0 },
                { "Test11", method_test11, 0 },
                { "End", method_end, 0 },
                {},
        },
};

static void on_server_event(VarlinkServer *s, VarlinkServerEvent event, const struct ucred *peer,
                            const char *detail, void *userdata)
{
        if (event == VARLINK_SERVER_PROTOCOL_ERROR)
                fprintf(stderr, "cert-server: dropped client (pid %d): %s\n", peer ? (int) peer->pid : 0,
                        strna(detail));
}

static int run(int argc, char **argv)
{
        _cleanup_(varlink_server_freep) VarlinkServer *server = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        CertServer state = {};
        sigset_t mask;
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: %s SOCKET-PATH\n", program_invocation_short_name);
                return -EINVAL;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        r = sd_event_default(&event);
        if (r < 0)
                return r;
        r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return r;

        r = varlink_server_new(event, &server);
        if (r < 0)
                return r;
        varlink_server_set_info(server, "tern", "tern varlink certification server", TERN_VERSION,
                                "https://varlink.org/");
        varlink_server_set_event_callback(server, on_server_event, NULL);
        r = varlink_server_add_interface(server, &cert_interface, &state);
        if (r < 0) {
                fprintf(stderr, "cert-server: interface does not match its IDL: %s\n", strerror(-r));
                return r;
        }
        r = varlink_server_listen_path(server, argv[1], 0600);
        if (r < 0) {
                fprintf(stderr, "cert-server: cannot listen on %s: %s\n", argv[1], strerror(-r));
                return r;
        }
        return sd_event_loop(event);
}

int main(int argc, char **argv)
{
        int r = run(argc, argv);

        if (r < 0)
                fprintf(stderr, "cert-server: %s\n", strerror(-r));
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
