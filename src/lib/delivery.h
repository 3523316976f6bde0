/* SPDX-License-Identifier: MIT */
/*
 * delivery.h - io.tern.Delivery, both sides: the request qmgr sends and the agent decodes, the
 * results the agent sends and qmgr decodes, and Postfix's delivery log line
 *
 * See idl/io.tern.Delivery.varlink for the protocol and who does what: the agent delivers and
 * logs, qmgr marks recipients done and keeps the defer/ and bounce/ logs. Pure code over JSON
 * (no I/O but the log line); the strings of a decoded request or result point into the json_t
 * it came from, which must outlive it.
 */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct DeliveryRecipient {
        const char *address;
        const char *orig_address;       /* NULL: none */
        int64_t offset;                 /* of the R record: names the recipient in the answer */
        const char *dsn_orig_rcpt;      /* NULL: none */
        int notify_flags;               /* 0: none */
} DeliveryRecipient;

typedef struct DeliveryRequest {
        const char *queue_id;
        const char *queue_name;         /* "active" */
        int fd;                         /* the queue file (request: the caller's; decoded: the index's fd) */
        int64_t data_offset, size;      /* first content record; content length */
        const char *nexthop;
        const char *sender;             /* "" null sender */
        const char *envelope_id;        /* NULL: none */
        int ret_flags, sendopts;
        DeliveryRecipient *recipients;  /* decoded: malloc'ed array (delivery_request_done frees it) */
        size_t n_recipients;
        int64_t arrival_usec, active_usec, handoff_usec;        /* epoch microseconds */
        bool conn_cache_load, conn_cache_store;
} DeliveryRequest;

/* Limits on what an agent accepts in one request (qmgr batches by destination_recipient_limit). */
#define DELIVERY_RECIPIENTS_MAX 100000U
#define DELIVERY_ADDRESS_MAX 2048U

/*
 * delivery_request_to_json - the Deliver parameters for R (fd field 0: the caller sends R->fd
 * as the one descriptor of the call). NULL on out of memory.
 */
json_t *delivery_request_to_json(const DeliveryRequest *r);

/*
 * delivery_request_from_json - decode Deliver parameters (FDS/N_FDS: the descriptors of the call;
 * fd must index one). -EINVAL with *ret_field naming the bad or missing field ("recipients[3].offset",
 * "fd"), for an InvalidParameter error. Recipients' offsets must be distinct and >= 0.
 */
int delivery_request_from_json(json_t *params, const int *fds, size_t n_fds, DeliveryRequest *ret,
                               const char **ret_field);
void delivery_request_done(DeliveryRequest *r);

typedef enum DeliveryStatus {
        DELIVERY_SENT,
        DELIVERY_DEFERRED,
        DELIVERY_BOUNCED,
        _DELIVERY_STATUS_MAX,
        DELIVERY_STATUS_INVALID = -EINVAL,
} DeliveryStatus;

const char *delivery_status_to_string(DeliveryStatus s);        /* "sent" "deferred" "bounced" */
DeliveryStatus delivery_status_from_string(const char *s);

typedef struct DeliveryResult {
        int64_t offset;
        DeliveryStatus status;
        const char *dsn;                /* "2.0.0"; must agree with status (2/4/5.x.y) */
        const char *text;
        const char *relay;
} DeliveryResult;

typedef struct DeliveryReply {
        DeliveryResult *results;        /* decoded: malloc'ed */
        size_t n_results;
        bool hop_failed;
        const char *hop_dsn, *hop_text; /* when hop_failed */
        bool last_call;                 /* the agent closes the connection after this answer (max_use) */
} DeliveryReply;

/* delivery_reply_to_json - the agent's answer. NULL on out of memory. */
json_t *delivery_reply_to_json(const DeliveryReply *r);

/*
 * delivery_reply_from_json - decode an agent's answer; -EBADMSG with *ret_reason for garbage: a
 * missing or mistyped field, an unknown status, a dsn that is not "[245].N.N" or disagrees with
 * the status, a text or relay with control characters. Whether the offsets are those of the
 * request is the caller's check (qmgr: a result for a recipient it did not send is garbage).
 */
int delivery_reply_from_json(json_t *params, DeliveryReply *ret, const char **ret_reason);
void delivery_reply_done(DeliveryReply *r);

/* dsn_valid - "2.0.0" .. "5.999.999": class 2, 4 or 5, then 1-3 and 1-3 digits */
bool dsn_valid(const char *dsn);

/*
 * format_delay - Postfix's format_tv() as log_adhoc uses it: seconds with 2 significant digits
 * for small values and at most 2 decimals (delay_logging_resolution_limit), trailing zeros
 * dropped, whole seconds from 10 s on ("0.01", "0.12", "1.2", "12", "3600"); a negative
 * interval prints as "0". Returns BUF.
 */
#define DELAY_STRING_MAX 32
char *format_delay(int64_t usec, char buf[static DELAY_STRING_MAX]);

/*
 * A delivery line as Postfix's log_adhoc() writes it:
 *   QID: to=<RCPT>[, orig_to=<ORIG>], relay=RELAY[, conn_use=N], delay=D,
 *   delays=a/b/c/d, dsn=X.Y.Z, status=STATUS (TEXT)
 * orig_to only when it differs from to (case-insensitively); conn_use only when > 1.
 * delay = now - arrival; a = active - arrival; b = handoff - active; c = conn_done - handoff
 * (connection setup; conn_done 0: none, c = 0); d = now - conn_done (or now - handoff).
 * STATUS is "sent", "deferred", "bounced" or "expired". Logged at info level with the fields
 * TERN_QUEUE_ID, TERN_RECIPIENT, TERN_RELAY, TERN_STATUS, TERN_DSN.
 */
typedef struct DeliveryLog {
        const char *queue_id;
        const char *recipient;
        const char *orig_recipient;     /* NULL: none */
        const char *relay;              /* "none" */
        int conn_use;                   /* 0/1: not shown */
        int64_t arrival_usec, active_usec, handoff_usec, conn_done_usec, now_usec;
        const char *dsn;
        const char *status;
        const char *text;
} DeliveryLog;

/* delivery_log_format - the MESSAGE text (no trailing newline) into a malloc'ed string */
int delivery_log_format(const DeliveryLog *l, char **ret);
/* delivery_log - format and log it */
void delivery_log(const DeliveryLog *l);
