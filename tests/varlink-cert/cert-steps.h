/* SPDX-License-Identifier: MIT */
/*
 * cert-steps.h - the org.varlink.certification sequence, shared by cert-server and cert-client
 *
 * One table says, for each method of the sequence, which parameters the client sends (besides
 * client_id) and which the server answers. cert-server checks calls against it and answers from
 * it; cert-client sends from it and checks replies against it. Sharing the table cannot hide a
 * mistake in it: each program is run against varlink-go-certification, which has its own
 * values (varlink/go cmd/varlink-go-certification/main.go).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CERT_INTERFACE "org.varlink.certification"
/* Test10 streams this many replies ("Reply number 1" .. "Reply number 10"); Test11 returns them. */
#define CERT_MORE_REPLIES 10U

typedef enum CertStepId {
        CERT_START,
        CERT_TEST01,
        CERT_TEST02,
        CERT_TEST03,
        CERT_TEST04,
        CERT_TEST05,
        CERT_TEST06,
        CERT_TEST07,
        CERT_TEST08,
        CERT_TEST09,
        CERT_TEST10,
        CERT_TEST11,
        CERT_END,
        _CERT_STEP_MAX,
} CertStepId;

typedef struct CertStep {
        const char *method;             /* "org.varlink.certification.Test01" */
        unsigned call_flags;            /* VARLINK_CALL_MORE (Test10), VARLINK_CALL_ONEWAY (Test11) */
        const char *call;               /* JSON: the call's parameters without client_id */
        const char *reply;              /* JSON: the reply's parameters; NULL: Start (any client_id),
                                         * Test10 (cert_more_reply), Test11 (no reply) */
} CertStep;

extern const CertStep cert_steps[_CERT_STEP_MAX];

/* cert_json - parse one of the table's JSON texts (it is ours: failure is a bug, so abort) */
json_t *cert_json(const char *text);
/* cert_more_reply - the parameters of Test10's reply number N (1-based) */
json_t *cert_more_reply(unsigned n);
/*
 * cert_json_match - GOT has the value WANT describes, by varlink's types: objects have the same
 * members (a null or absent member matches null or absent: varlink's "?" types), arrays the same
 * elements in order, an integer is an integer of the same value, a float is any number of the
 * same value (a peer may write 1.0 as 1), strings the same bytes. GOT may be NULL (absent).
 */
bool cert_json_match(const json_t *want, const json_t *got);
/* cert_json_text - VALUE as compact JSON for a message, malloc'ed ("(absent)" for NULL); NULL on OOM */
char *cert_json_text(const json_t *value);
