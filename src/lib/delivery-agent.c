/* SPDX-License-Identifier: MIT */
/*
 * delivery-agent.c - the part of every delivery agent that is not delivery (see delivery-agent.h)
 *
 * Deliver: count the use, decode the request (refusals answered here), check the queue file
 * descriptor, hold the process busy (no idle exit) and hand a DeliveryJob to the agent. The job
 * keeps a reference on the call, so the request's strings (in the call's parameters) and the
 * descriptor (in the call's table) stay valid until the job is answered and freed.
 *
 * Invariants: a job is answered exactly once (finish, fail or raw) and freed right after; each
 * recipient is logged exactly once, when its result is set, so the log says what the reply says.
 *
 * Limits: see delivery-agent.h. Results logged before a crash are not answered: qmgr defers those
 * recipients and they are delivered again (the log then shows them twice), as in Postfix when a
 * delivery agent dies between delivering and reporting.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "delivery-agent.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "varlink-idl.h"

struct DeliveryAgent {
        const DeliveryAgentSpec *spec;
        ServiceSpec service_spec;
        Service *service;
};

typedef struct JobResult {
        bool set;
        DeliveryStatus status;
        char *dsn, *text, *relay;
} JobResult;

struct DeliveryJob {
        DeliveryAgent *agent;
        VarlinkCall *call;
        DeliveryRequest request;
        JobResult *results;
        bool hop_failed;
        char *hop_dsn, *hop_text;
        int64_t conn_done_usec;
        int conn_use;
        bool last_call;                 /* max_use reached: the connection ends after the answer */
};

Service *delivery_agent_service(DeliveryAgent *a)
{
        return a->service;
}

sd_event *delivery_agent_event(DeliveryAgent *a)
{
        return service_event(a->service);
}

const Conf *delivery_agent_conf(DeliveryAgent *a)
{
        return service_conf(a->service);
}

const char *delivery_agent_transport(DeliveryAgent *a)
{
        return service_transport(a->service);
}

const DeliveryRequest *delivery_job_request(const DeliveryJob *j)
{
        return &j->request;
}

DeliveryAgent *delivery_job_agent(DeliveryJob *j)
{
        return j->agent;
}

bool delivery_job_connected(const DeliveryJob *j)
{
        return varlink_call_connected(j->call);
}

void delivery_job_set_conn(DeliveryJob *j, int64_t conn_done_usec, int conn_use)
{
        j->conn_done_usec = conn_done_usec;
        j->conn_use = conn_use;
}

static DeliveryJob *job_free(DeliveryJob *j)
{
        if (!j)
                return NULL;
        for (size_t i = 0; j->results && i < j->request.n_recipients; i++) {
                free(j->results[i].dsn);
                free(j->results[i].text);
                free(j->results[i].relay);
        }
        free(j->results);
        free(j->hop_dsn);
        free(j->hop_text);
        delivery_request_done(&j->request);
        varlink_call_unref(j->call);
        if (j->agent)
                service_release(j->agent->service);
        free(j);
        return NULL;
}

/* loggable - no control characters (they would forge log lines; the reply decoder refuses them) */
static bool loggable(const char *s)
{
        for (; s && *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        return s != NULL;
}

static int64_t now_usec(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int delivery_job_result(DeliveryJob *j, size_t i, DeliveryStatus status, const char *dsn, const char *relay,
                        const char *text)
{
        static const char class_of[_DELIVERY_STATUS_MAX] = { '2', '4', '5' };
        JobResult *r;

        if (i >= j->request.n_recipients || status < 0 || status >= _DELIVERY_STATUS_MAX || !dsn_valid(dsn) ||
            dsn[0] != class_of[status] || !loggable(relay) || !*relay || !loggable(text))
                return -EINVAL;
        r = &j->results[i];
        if (r->set)
                return -EALREADY;
        r->dsn = strdup(dsn);
        r->relay = strdup(relay);
        r->text = strdup(text);
        if (!r->dsn || !r->relay || !r->text) {
                free(r->dsn);
                free(r->relay);
                free(r->text);
                *r = (JobResult){};
                return -ENOMEM;
        }
        r->status = status;
        r->set = true;

        delivery_log(&(DeliveryLog){
                .queue_id = j->request.queue_id,
                .recipient = j->request.recipients[i].address,
                .orig_recipient = j->request.recipients[i].orig_address,
                .relay = relay,
                .conn_use = j->conn_use,
                .arrival_usec = j->request.arrival_usec,
                .active_usec = j->request.active_usec,
                .handoff_usec = j->request.handoff_usec,
                .conn_done_usec = j->conn_done_usec,
                .now_usec = now_usec(),
                .dsn = dsn,
                .status = delivery_status_to_string(status),
                .text = text,
        });
        return 0;
}

int delivery_job_result_all(DeliveryJob *j, DeliveryStatus status, const char *dsn, const char *relay,
                            const char *text)
{
        for (size_t i = 0; i < j->request.n_recipients; i++) {
                int r;

                if (j->results[i].set)
                        continue;
                r = delivery_job_result(j, i, status, dsn, relay, text);
                if (r < 0)
                        return r;
        }
        return 0;
}

int delivery_job_hop_status(DeliveryJob *j, const char *dsn, const char *text)
{
        char *d, *t;

        if (!dsn_valid(dsn) || dsn[0] == '2' || !loggable(text))
                return -EINVAL;
        d = strdup(dsn);
        t = strdup(text);
        if (!d || !t) {
                free(d);
                free(t);
                return -ENOMEM;
        }
        free(j->hop_dsn);
        free(j->hop_text);
        j->hop_dsn = d;
        j->hop_text = t;
        j->hop_failed = true;
        return 0;
}

int delivery_job_finish(DeliveryJob *j)
{
        _cleanup_(freep) DeliveryResult *results = NULL;
        DeliveryReply reply = {};
        json_t *params;
        int r;

        for (size_t i = 0; i < j->request.n_recipients; i++)
                if (!j->results[i].set) {
                        log_warning("%s: to=<%s>: the delivery agent reported no result; deferring",
                                    j->request.queue_id, j->request.recipients[i].address);
                        (void) delivery_job_result(j, i, DELIVERY_DEFERRED, "4.3.0", "none",
                                                   "delivery agent reported no result");
                }
        results = calloc(j->request.n_recipients, sizeof(DeliveryResult));
        if (!results) {
                r = varlink_call_error_errno(j->call, ENOMEM);
                job_free(j);
                return r;
        }
        for (size_t i = 0; i < j->request.n_recipients; i++) {
                const JobResult *p = &j->results[i];

                results[i] = (DeliveryResult){
                        .offset = j->request.recipients[i].offset,
                        .status = p->set ? p->status : DELIVERY_DEFERRED,
                        .dsn = p->set ? p->dsn : "4.3.0",
                        .text = p->set ? p->text : "delivery agent reported no result",
                        .relay = p->set ? p->relay : "none",
                };
        }
        reply = (DeliveryReply){ .results = results,
                                 .n_results = j->request.n_recipients,
                                 .hop_failed = j->hop_failed,
                                 .hop_dsn = j->hop_dsn,
                                 .hop_text = j->hop_text,
                                 .last_call = j->last_call };
        params = delivery_reply_to_json(&reply);
        if (!params)
                r = varlink_call_error_errno(j->call, ENOMEM);
        else
                r = varlink_call_reply(j->call, params);
        if (r < 0)
                log_debug_errno(r, "%s: cannot answer: %m", j->request.queue_id);
        job_free(j);
        return r;
}

void delivery_job_abandon(DeliveryJob *j)
{
        job_free(j);
}

static int invalid_request(VarlinkCall *call, const char *reason)
{
        return varlink_call_error(call, "io.tern.Delivery.InvalidRequest", json_pack("{s:s}", "reason", reason));
}

int delivery_job_fail(DeliveryJob *j, const char *reason)
{
        int r = invalid_request(j->call, reason);

        job_free(j);
        return r;
}

int delivery_job_reply_raw(DeliveryJob *j, json_t *params)
{
        int r = varlink_call_reply(j->call, params);

        job_free(j);
        return r;
}

static const char *skip_blanks(const char *p)
{
        while (*p && strchr(" \t\r\n\v\f", *p))
                p++;
        return p;
}

const char *delivery_dsn_split(const char *def_dsn, const char *text, char dsn[static DELIVERY_DSN_MAX])
{
        const char *p = skip_blanks(text);
        size_t n = strcspn(p, " \t\r\n\v\f");

        /* An enhanced status code ends at a blank or at the end of the text. */
        if (n < DELIVERY_DSN_MAX) {
                char code[DELIVERY_DSN_MAX];

                memcpy(code, p, n);
                code[n] = '\0';
                if (dsn_valid(code)) {
                        memcpy(dsn, code, n + 1);
                        return skip_blanks(p + n);
                }
        }
        snprintf(dsn, DELIVERY_DSN_MAX, "%s", def_dsn);
        return p;
}

/* check_queue_file - the descriptor must be a regular file we can read */
static const char *check_queue_file(int fd)
{
        struct stat st;
        int fl;

        if (fstat(fd, &st) < 0)
                return "fd: cannot fstat";
        if (!S_ISREG(st.st_mode))
                return "fd: not a regular file";
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY)
                return "fd: not open for reading";
        return NULL;
}

static int method_deliver(VarlinkCall *call, json_t *parameters, unsigned flags, void *userdata)
{
        DeliveryAgent *a = userdata;
        int fds[VARLINK_FDS_MAX];
        size_t n_fds = MIN(varlink_call_n_fds(call), (size_t) VARLINK_FDS_MAX);
        const char *field = NULL, *bad;
        DeliveryJob *j;
        int r;

        bool last = service_use(a->service, call);
        for (size_t i = 0; i < n_fds; i++)
                fds[i] = varlink_call_peek_fd(call, i);

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->last_call = last;
        r = delivery_request_from_json(parameters, fds, n_fds, &j->request, &field);
        if (r == -EINVAL) {
                free(j);
                log_warning("Deliver from pid %d: bad parameter %s", (int) varlink_call_peer(call)->pid,
                            field ? field : "?");
                return varlink_call_error_invalid_parameter(call, field ? field : "parameters");
        }
        if (r < 0) {
                free(j);
                return r;
        }
        bad = check_queue_file(j->request.fd);
        if (bad) {
                log_warning("%s: Deliver from pid %d: %s", j->request.queue_id,
                            (int) varlink_call_peer(call)->pid, bad);
                delivery_request_done(&j->request);
                free(j);
                return invalid_request(call, bad);
        }
        j->results = calloc(j->request.n_recipients, sizeof(JobResult));
        if (!j->results) {
                delivery_request_done(&j->request);
                free(j);
                return -ENOMEM;
        }
        j->call = varlink_call_ref(call);
        j->agent = a;
        service_hold(a->service);
        service_status(a->service, "Delivering %s to %s (%zu recipient%s)", j->request.queue_id,
                       j->request.nexthop, j->request.n_recipients, j->request.n_recipients == 1 ? "" : "s");

        r = a->spec->deliver(j, a->spec->userdata);
        if (r < 0) {
                /* The agent answered nothing (a job it answered is freed and gone). */
                (void) varlink_call_error_errno(call, r);
                job_free(j);
        }
        return 0;
}

static const VarlinkMethod delivery_methods[] = {
        { "Deliver", method_deliver, VARLINK_METHOD_FDS },
        {},
};

const VarlinkInterface delivery_interface = {
        .name = "io.tern.Delivery",
        .description = varlink_idl_io_tern_Delivery,
        .methods = delivery_methods,
};

static int agent_setup(Service *s, void *userdata)
{
        DeliveryAgent *a = userdata;
        int r;

        a->service = s;
        r = varlink_server_add_interface(service_varlink(s), &delivery_interface, a);
        if (r < 0)
                return r;
        if (a->spec->setup)
                return a->spec->setup(a, a->spec->userdata);
        return 0;
}

static void agent_shutdown(Service *s, void *userdata)
{
        DeliveryAgent *a = userdata;

        if (a->spec->shutdown)
                a->spec->shutdown(a, a->spec->userdata);
}

int delivery_agent_main(const DeliveryAgentSpec *spec, int argc, char **argv)
{
        static DeliveryAgent agent;

        agent = (DeliveryAgent){ .spec = spec };
        agent.service_spec = (ServiceSpec){
                .program = spec->program,
                .description = spec->description,
                .per_connection = true,
                .transports = spec->transports,
                .setup = agent_setup,
                .shutdown = agent_shutdown,
                .userdata = &agent,
        };
        return service_main(&agent.service_spec, argc, argv);
}

void delivery_job_answer_nexthop(DeliveryJob *job, DeliveryStatus status, const char *def_dsn,
                                 const char *function)
{
        const DeliveryRequest *req = delivery_job_request(job);
        char dsn[DELIVERY_DSN_MAX];
        const char *text;

        if (isempty(req->nexthop)) {
                (void) delivery_job_fail(job, "empty nexthop");
                return;
        }
        text = delivery_dsn_split(def_dsn, req->nexthop, dsn);
        if (dsn[0] != def_dsn[0]) {
                log_warning("%s: ignoring dsn code \"%s\"", function, dsn);
                snprintf(dsn, sizeof(dsn), "%s", def_dsn);
        }
        if (delivery_job_result_all(job, status, dsn, "none", text) < 0) {
                (void) delivery_job_fail(job, "cannot record the results");
                return;
        }
        (void) delivery_job_finish(job);
}
