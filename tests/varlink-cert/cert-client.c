/* SPDX-License-Identifier: MIT */
/*
 * cert-client.c - the org.varlink.certification sequence on tern's varlink clients
 *
 * Usage: cert-client ADDRESS (a socket path, "unix:" prefix allowed). Runs what
 * varlink-go-certification --client runs, against any certification server
 * (varlink-go-certification --varlink=unix:PATH, or tern's own cert-server): Start, Test01 ..
 * Test09 with the values of cert-steps.c, Test10 with "more" read to its last reply, Test11
 * oneway with the ten strings Test10 streamed, End, which must say all_ok: true. Unlike the Go
 * client, every reply is checked: no error, exactly the expected members and values (by varlink
 * type: cert_json_match), "continues" on all but the last of Test10's ten replies.
 *
 * Two passes, each on its own connection and client_id: the synchronous client
 * (varlink_client_send/read/call), then the asynchronous one on sd-event (varlink_client_invoke,
 * the next call issued from the previous reply's callback). The synchronous pass then probes the
 * error paths every certification server shares: a client_id after End gets ClientIdError, an
 * unknown method org.varlink.service.MethodNotFound, a wrong value (Test02 with false)
 * CertificationError; and GetInterfaceDescription returns the IDL compiled in here.
 *
 * Exit status 0 only if both passes and all probes pass; every step is printed.
 * Limits: a peer that does not answer is given CERT_TIMEOUT_USEC per pass.
 */
#include <stdio.h>
#include <systemd/sd-event.h>

#include "cert-idl.h"
#include "cert-steps.h"
#include "json-util.h"
#include "macro.h"
#include "varlink.h"

/* A whole pass takes milliseconds; this only keeps a hung peer from hanging the test. */
#define CERT_TIMEOUT_USEC (30U * USEC_PER_SEC)

typedef struct CertRun {
        const char *label;              /* "sync", "async" */
        char *client_id;
        CertStepId step;
        unsigned n_more;                /* Test10 replies seen */
        json_t *more;                   /* their strings, for Test11 */
        bool failed;
        bool done;                      /* End answered */
        sd_event *event;                /* the asynchronous pass */
} CertRun;

static void cert_run_done(CertRun *run)
{
        free(run->client_id);
        json_decref(run->more);
        *run = (CertRun){};
}

/* cert_run_fail - print what went wrong at the current step; returns -EBADMSG */
static int cert_run_fail(CertRun *run, const char *what, const json_t *want, const json_t *got)
{
        _cleanup_(freep) char *w = want ? cert_json_text(want) : NULL, *g = got ? cert_json_text(got) : NULL;

        run->failed = true;
        printf("[%s] %s: FAIL: %s", run->label, cert_steps[run->step].method, what);
        if (w)
                printf("; wants %s", w);
        if (g)
                printf("; got %s", g);
        printf("\n");
        return -EBADMSG;
}

/* cert_run_parameters - the parameters of the current step's call */
static int cert_run_parameters(CertRun *run, json_t **ret)
{
        _cleanup_(json_decrefp) json_t *p = NULL;

        if (run->step == CERT_TEST11)
                p = json_pack("{s:O}", "last_more_replies", run->more);
        else
                p = cert_json(cert_steps[run->step].call);
        if (!p)
                return -ENOMEM;
        if (run->step != CERT_START && json_object_set_new(p, "client_id", json_string(run->client_id)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

/* cert_run_reply - check one reply to the current step: 1 the step is done, 0 more replies
 * follow, -EBADMSG it is not what the certification wants */
static int cert_run_reply(CertRun *run, const VarlinkReply *reply)
{
        _cleanup_(json_decrefp) json_t *want = NULL;
        _cleanup_(freep) char *text = NULL;
        const CertStep *step = &cert_steps[run->step];
        bool last = true;

        if (reply->error) {
                json_t *e = json_pack("{s:s,s:O}", "error", reply->error, "parameters", reply->parameters);
                int r = cert_run_fail(run, "error reply", NULL, e);
                json_decref(e);
                return r;
        }
        switch (run->step) {
        case CERT_START: {
                json_t *id = json_object_get(reply->parameters, "client_id");

                if (!json_is_string(id) || json_string_length(id) == 0)
                        return cert_run_fail(run, "no client_id", NULL, reply->parameters);
                run->client_id = strdup(json_string_value(id));
                if (!run->client_id)
                        return -ENOMEM;
                want = json_pack("{s:s}", "client_id", run->client_id);
                break;
        }
        case CERT_TEST10:
                run->n_more++;
                if (run->n_more > CERT_MORE_REPLIES)
                        return cert_run_fail(run, "more replies than the certification sends", NULL,
                                             reply->parameters);
                want = cert_more_reply(run->n_more);
                last = run->n_more == CERT_MORE_REPLIES;
                break;
        default:
                want = step->reply ? cert_json(step->reply) : json_object();
                break;
        }
        if (!want)
                return -ENOMEM;
        if (!cert_json_match(want, reply->parameters))
                return cert_run_fail(run, "unexpected reply", want, reply->parameters);
        if (reply->continues != !last)
                return cert_run_fail(run, reply->continues ? "\"continues\" on the last reply"
                                                           : "the stream ended early",
                                     NULL, reply->parameters);
        if (run->step == CERT_TEST10 &&
            json_array_append(run->more, json_object_get(reply->parameters, "string")) < 0)
                return -ENOMEM;
        if (run->step == CERT_END)
                run->done = true;

        text = cert_json_text(reply->parameters);
        printf("[%s] %s: %s%s\n", run->label, step->method, strna(text),
               reply->continues ? " (continues)" : "");
        return last ? 1 : 0;
}

static int cert_run_init(CertRun *run, const char *label)
{
        *run = (CertRun){ .label = label, .step = CERT_START, .more = json_array() };
        return run->more ? 0 : -ENOMEM;
}

/* ---- the synchronous pass */

/* expect_error - call METHOD (PARAMETERS taken over) and require the error NAME */
static int expect_error(VarlinkClient *c, const char *label, const char *method, json_t *parameters,
                        const char *name)
{
        VarlinkReply reply = {};
        int r;

        r = varlink_client_call(c, method, parameters, NULL, 0, 0, &reply);
        if (r < 0) {
                printf("[%s] probe %s: FAIL: %s\n", label, method, strerror(-r));
                return r;
        }
        if (r == 0 || !streq(reply.error, name)) {
                printf("[%s] probe %s: FAIL: wants error %s, got %s\n", label, method, name,
                       reply.error ? reply.error : "a successful reply");
                varlink_reply_done(&reply);
                return -EBADMSG;
        }
        printf("[%s] probe %s: %s (as expected)\n", label, method, name);
        varlink_reply_done(&reply);
        return 0;
}

/* cert_probe_description - GetInterfaceDescription is the IDL we compiled in */
static int cert_probe_description(VarlinkClient *c, const char *label)
{
        VarlinkReply reply = {};
        bool same;
        json_t *d;
        int r;

        r = varlink_client_call(c, "org.varlink.service.GetInterfaceDescription",
                                json_pack("{s:s}", "interface", CERT_INTERFACE), NULL, 0, 0, &reply);
        if (r != 0) {
                printf("[%s] probe GetInterfaceDescription: FAIL: %s\n", label,
                       r < 0 ? strerror(-r) : reply.error);
                varlink_reply_done(&reply);
                return r < 0 ? r : -EBADMSG;
        }
        d = json_object_get(reply.parameters, "description");
        same = json_is_string(d) && streq(json_string_value(d), varlink_idl_org_varlink_certification);
        r = same ? 0 : -EBADMSG;
        printf("[%s] probe GetInterfaceDescription: %s\n", label,
               r == 0 ? "the IDL compiled in, byte for byte" : "FAIL: differs from the IDL compiled in");
        varlink_reply_done(&reply);
        return r;
}

/* cert_probes - the error paths every certification server shares (after a finished RUN) */
static int cert_probes(VarlinkClient *c, const CertRun *run)
{
        VarlinkReply reply = {}, test01 = {};
        json_t *id;
        int r, ret = 0;

        r = expect_error(c, run->label, cert_steps[CERT_TEST01].method,
                         json_pack("{s:s}", "client_id", run->client_id), CERT_INTERFACE ".ClientIdError");
        ret = ret ?: r;
        r = expect_error(c, run->label, CERT_INTERFACE ".NoSuchMethod", NULL,
                         VARLINK_ERROR_METHOD_NOT_FOUND);
        ret = ret ?: r;
        r = cert_probe_description(c, run->label);
        ret = ret ?: r;

        /* A wrong value, on a client of its own (the server may now count it as failed). */
        r = varlink_client_call(c, cert_steps[CERT_START].method, NULL, NULL, 0, 0, &reply);
        id = r == 0 ? json_object_get(reply.parameters, "client_id") : NULL;
        if (!json_is_string(id)) {
                printf("[%s] probe Start: FAIL\n", run->label);
                varlink_reply_done(&reply);
                return r < 0 ? r : -EBADMSG;
        }
        r = varlink_client_call(c, cert_steps[CERT_TEST01].method, json_pack("{s:O}", "client_id", id),
                                NULL, 0, 0, &test01);
        varlink_reply_done(&test01);
        if (r != 0)
                printf("[%s] probe Test01: FAIL\n", run->label);
        ret = ret ?: (r < 0 ? r : r > 0 ? -EBADMSG : 0);
        r = expect_error(c, run->label, cert_steps[CERT_TEST02].method,
                         json_pack("{s:O,s:b}", "client_id", id, "bool", false),
                         CERT_INTERFACE ".CertificationError");
        ret = ret ?: r;
        varlink_reply_done(&reply);
        return ret;
}

static int cert_run_sync(const char *address)
{
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        CertRun run;
        int r;

        r = cert_run_init(&run, "sync");
        if (r < 0)
                return r;
        r = varlink_client_connect(address, &c);
        if (r < 0) {
                printf("[sync] cannot connect to %s: %s\n", address, strerror(-r));
                goto out;
        }
        varlink_client_set_timeout(c, CERT_TIMEOUT_USEC);

        for (run.step = CERT_START; run.step <= CERT_END; run.step++) {
                const CertStep *step = &cert_steps[run.step];
                json_t *parameters = NULL;

                r = cert_run_parameters(&run, &parameters);
                if (r < 0)
                        goto out;
                r = varlink_client_send(c, step->method, parameters, NULL, 0, step->call_flags);
                if (r < 0) {
                        cert_run_fail(&run, strerror(-r), NULL, NULL);
                        goto out;
                }
                if (step->call_flags & VARLINK_CALL_ONEWAY) {
                        printf("[sync] %s: sent oneway\n", step->method);
                        continue;
                }
                do {
                        VarlinkReply reply = {};

                        r = varlink_client_read(c, &reply);
                        if (r < 0) {
                                cert_run_fail(&run, strerror(-r), NULL, NULL);
                                goto out;
                        }
                        r = cert_run_reply(&run, &reply);
                        varlink_reply_done(&reply);
                        if (r < 0)
                                goto out;
                } while (r == 0);
        }
        run.step = CERT_END;
        r = cert_probes(c, &run);
out:
        r = r < 0 ? r : run.failed || !run.done ? -EBADMSG : 0;
        cert_run_done(&run);
        return r;
}

/* ---- the asynchronous pass */

static int on_async_reply(VarlinkClient *c, VarlinkReply *reply, int error, void *userdata);

/* cert_async_next - issue the current step's call (and a oneway one's successor) */
static int cert_async_next(CertRun *run, VarlinkClient *c)
{
        for (; run->step <= CERT_END; run->step++) {
                const CertStep *step = &cert_steps[run->step];
                bool oneway = step->call_flags & VARLINK_CALL_ONEWAY;
                json_t *parameters = NULL;
                int r;

                r = cert_run_parameters(run, &parameters);
                if (r < 0)
                        return r;
                r = varlink_client_invoke(c, step->method, parameters, NULL, 0, step->call_flags,
                                          oneway ? NULL : on_async_reply, run);
                if (r < 0)
                        return cert_run_fail(run, strerror(-r), NULL, NULL);
                if (!oneway)
                        return 0;
                printf("[%s] %s: sent oneway\n", run->label, step->method);
        }
        return 0;
}

static int on_async_reply(VarlinkClient *c, VarlinkReply *reply, int error, void *userdata)
{
        CertRun *run = userdata;
        int r;

        if (!reply) {
                (void) cert_run_fail(run, strerror(-error), NULL, NULL);
                return sd_event_exit(run->event, error);
        }
        r = cert_run_reply(run, reply);
        if (r < 0)
                return sd_event_exit(run->event, r);
        if (r == 0)
                return 0;
        if (run->step == CERT_END)
                return sd_event_exit(run->event, 0);
        run->step++;
        r = cert_async_next(run, c);
        if (r < 0)
                return sd_event_exit(run->event, r);
        return 0;
}

static int on_async_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
        CertRun *run = userdata;

        (void) cert_run_fail(run, "timed out", NULL, NULL);
        return sd_event_exit(run->event, -ETIMEDOUT);
}

static int cert_run_async(const char *address)
{
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        CertRun run;
        int r;

        r = cert_run_init(&run, "async");
        if (r < 0)
                return r;
        r = sd_event_new(&event);
        if (r < 0)
                goto out;
        run.event = event;
        r = sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, CERT_TIMEOUT_USEC, 0, on_async_timeout,
                                       &run);
        if (r < 0)
                goto out;
        r = varlink_client_connect(address, &c);
        if (r < 0) {
                printf("[async] cannot connect to %s: %s\n", address, strerror(-r));
                goto out;
        }
        r = varlink_client_attach_event(c, event, 0);
        if (r < 0)
                goto out;
        r = cert_async_next(&run, c);
        if (r < 0)
                goto out;
        r = sd_event_loop(event);
out:
        /* Callbacks still pending hear of the hang-up now, while RUN is still valid. */
        c = varlink_client_free(c);
        r = r < 0 ? r : run.failed || !run.done ? -EBADMSG : 0;
        cert_run_done(&run);
        return r;
}

int main(int argc, char **argv)
{
        int r_sync, r_async;

        if (argc != 2) {
                fprintf(stderr, "usage: %s ADDRESS\n", program_invocation_short_name);
                return EXIT_FAILURE;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);

        r_sync = cert_run_sync(argv[1]);
        r_async = cert_run_async(argv[1]);
        printf("cert-client: synchronous client %s, asynchronous client %s\n",
               r_sync < 0 ? "FAILED" : "passed", r_async < 0 ? "FAILED" : "passed");
        return r_sync < 0 || r_async < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
