/* SPDX-License-Identifier: MIT */
/*
 * delivery-agent.h - what every delivery agent shares: the process (a per-connection service on
 * the scaffold, -t TRANSPORT), io.tern.Delivery.Deliver decoded into a DeliveryRequest, one
 * Postfix log line per recipient result, the reply, and max_use counting
 *
 * An agent is a DeliveryAgentSpec and a deliver() function. deliver() gets a DeliveryJob, sets
 * a result for each recipient (delivery_job_result(), which also logs the recipient's line) and
 * answers with delivery_job_finish(): at once, or later from the event loop
 * (delivery_agent_event()) for an agent that works asynchronously. Until then the process is not
 * idle (max_idle waits); the job holds the call and the queue file descriptor.
 *
 * What the library answers by itself, before deliver() is called:
 *  - a parameter that is missing, mistyped, unknown or out of range (delivery_request_from_json()):
 *    org.varlink.service.InvalidParameter {"parameter": "recipients[2].offset"};
 *  - a queue file descriptor that is not a regular file open for reading:
 *    io.tern.Delivery.InvalidRequest {"reason": "fd: not a regular file"}.
 * Every Deliver call counts towards max_use, answered or refused: after the max_use'th reply the
 * connection is closed and the process exits (qmgr connects again and gets a fresh process).
 *
 * Limits: one job at a time per process (calls on one connection are served in order; qmgr sends
 * one at a time anyway); DELIVERY_RECIPIENTS_MAX recipients per call (delivery.h).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "delivery.h"
#include "event.h"
#include "varlink.h"

typedef struct DeliveryAgent DeliveryAgent;
typedef struct DeliveryJob DeliveryJob;

typedef struct DeliveryAgentSpec {
        const char *program;            /* "discard": log identifier tern/discard; default transport */
        const char *description;        /* one line for --help */
        const char *const *transports;  /* the names -t accepts (NULL: any) */
        /* optional: after configuration, in the process that serves the connection */
        int (*setup)(DeliveryAgent *a, void *userdata);
        /* deliver JOB: 0 (answered, or will be answered later), or -errno before anything was
         * answered: the call gets io.tern.System and the job is dropped */
        int (*deliver)(DeliveryJob *job, void *userdata);
        /* optional: once, when the process stops */
        void (*shutdown)(DeliveryAgent *a, void *userdata);
        void *userdata;
} DeliveryAgentSpec;

/* The io.tern.Delivery table (Deliver), for the check that C and IDL agree. */
extern const VarlinkInterface delivery_interface;

/* delivery_agent_main - the agent's whole life; returns the process exit status */
int delivery_agent_main(const DeliveryAgentSpec *spec, int argc, char **argv);

Service *delivery_agent_service(DeliveryAgent *a);
sd_event *delivery_agent_event(DeliveryAgent *a);
const Conf *delivery_agent_conf(DeliveryAgent *a);
const char *delivery_agent_transport(DeliveryAgent *a);        /* -t TRANSPORT */

/* A job: one Deliver call being worked on. */
const DeliveryRequest *delivery_job_request(const DeliveryJob *j);
DeliveryAgent *delivery_job_agent(DeliveryJob *j);
/* delivery_job_connected - is qmgr still waiting for the answer? (an agent may stop early) */
bool delivery_job_connected(const DeliveryJob *j);

/* delivery_job_set_conn - connection set-up done at CONN_DONE_USEC (epoch µs; delays=../c/..)
 * over a session used CONN_USE times so far (conn_use=, shown when > 1) */
void delivery_job_set_conn(DeliveryJob *j, int64_t conn_done_usec, int conn_use);

/*
 * delivery_job_result - what became of recipient I: recorded for the reply and logged now, as
 * "QID: to=<...>, relay=RELAY, delay=..., dsn=DSN, status=STATUS (TEXT)". DSN's class must
 * match STATUS (2 sent, 4 deferred, 5 bounced); TEXT and RELAY must hold no control characters.
 * -EINVAL for a bad argument, -EALREADY if I has a result, -ENOMEM.
 */
int delivery_job_result(DeliveryJob *j, size_t i, DeliveryStatus status, const char *dsn, const char *relay,
                        const char *text);
/* delivery_job_result_all - the same for every recipient that has no result yet */
int delivery_job_result_all(DeliveryJob *j, DeliveryStatus status, const char *dsn, const char *relay,
                            const char *text);
/* delivery_job_hop_status - the destination itself failed (connection, handshake): DSN 4.X.Y/5.X.Y */
int delivery_job_hop_status(DeliveryJob *j, const char *dsn, const char *text);

/*
 * delivery_job_finish - answer the call with the results and free the job. A recipient without a
 * result is an agent bug: it is answered deferred (4.3.0 "delivery agent reported no result")
 * with a warning. -ENOTCONN when qmgr is gone (the job is freed all the same).
 */
int delivery_job_finish(DeliveryJob *j);
/* delivery_job_fail - answer io.tern.Delivery.InvalidRequest {"reason": REASON}; free the job */
int delivery_job_fail(DeliveryJob *j, const char *reason);
/* delivery_job_reply_raw - answer PARAMS (taken over) exactly as given, unchecked; free the job.
 * For test agents that must send qmgr garbage. */
int delivery_job_reply_raw(DeliveryJob *j, json_t *params);

/* delivery_job_abandon - free J without answering (its connection is going away: shutdown) */
void delivery_job_abandon(DeliveryJob *j);

/* Longest enhanced status code, NUL included ("5.999.999"). */
#define DELIVERY_DSN_MAX 10

/*
 * delivery_dsn_split - Postfix's dsn_split(): TEXT may start (after blanks) with an enhanced
 * status code followed by a blank or the end ("5.1.1 no such user"); that code, else DEF_DSN, is
 * copied to DSN. Returns the rest of TEXT, leading blanks skipped.
 */
const char *delivery_dsn_split(const char *def_dsn, const char *text, char dsn[static DELIVERY_DSN_MAX]);

/*
 * delivery_job_answer_nexthop - what discard(8) and error(8) do: every recipient gets STATUS with
 * relay=none and the nexthop as the reason; a leading enhanced status code in the nexthop is the
 * dsn, else DEF_DSN, and a code of another class than DEF_DSN's is replaced by it with Postfix's
 * warning "FUNCTION: ignoring dsn code". An empty nexthop is an InvalidRequest. Answers the job
 * (which frees it) on every path.
 */
void delivery_job_answer_nexthop(DeliveryJob *job, DeliveryStatus status, const char *def_dsn,
                                 const char *function);
