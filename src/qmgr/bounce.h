/* SPDX-License-Identifier: MIT */
/*
 * bounce.h - the text of delivery status notifications, as Postfix's bounce(8) writes them
 *
 * Pure code: from the original message's envelope, the defer/ or bounce/ log entries of its
 * recipients and its content, build the notification message (headers and body, LF line
 * ends) that qmgr then queues through cleanup with the null sender. RFC 3464: a
 * multipart/report; report-type=delivery-status with three parts:
 *   1. text/plain: Postfix's default template (bounce(5)) for the kind, then one
 *      "<recipient>: reason" block per recipient (the "transcript");
 *   2. message/delivery-status: Reporting-MTA: dns; $myhostname, X-Postfix-Queue-ID,
 *      X-Postfix-Sender: rfc822; SENDER, Arrival-Date, then per recipient Final-Recipient
 *      (and Original-Recipient when there is one), Action (failed / delayed), Status,
 *      Diagnostic-Code (x-unix; or smtp; from the log entry's diag_type/diag_text, else the
 *      reason as "X-Postfix; reason");
 *   3. the original: message/rfc822 with the whole message when it is at most
 *      bounce_size_limit bytes, else text/rfc822-headers with only its headers (the headers
 *      alone too when RET=HDRS was asked).
 * Headers: From: MAILER-DAEMON@$myhostname (Mail Delivery System), Subject: (per kind),
 * To: the recipient of the notice, Auto-Submitted: auto-replied, MIME-Version: 1.0,
 * Content-Type with boundary "QUEUEID.UNIXTIME/$myhostname", Content-Transfer-Encoding: 8bit.
 * cleanup adds Date:, Message-Id: and Received:.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum BounceKind {
        BOUNCE_FAILED,          /* non-delivery: "Undelivered Mail Returned to Sender" */
        BOUNCE_DELAYED,         /* delay_warning_time: "Delayed Mail (still being retried)" */
        BOUNCE_POSTMASTER,      /* the postmaster's copy of a bounce that could not be returned:
                                   "Postmaster Copy: Undelivered Mail"; part 3 headers only */
} BounceKind;

typedef struct BounceRecipient {
        const char *address;
        const char *orig_address;       /* NULL or "": none */
        const char *status;             /* "5.1.1" */
        const char *action;             /* "failed", "delayed" */
        const char *diag_type;          /* NULL: none ("smtp") */
        const char *diag_text;          /* NULL: none ("550 5.1.1 <x@y>: no such user") */
        const char *mta_type, *mta_mname;       /* NULL: none ("dns", "mx.example") */
        const char *reason;             /* what Postfix logged in parentheses */
} BounceRecipient;

typedef struct BounceInput {
        BounceKind kind;
        const char *queue_id;           /* the original's */
        const char *sender;             /* the original's envelope sender */
        const char *notify_to;          /* the notification's recipient (To:) */
        const char *myhostname;
        const char *mail_name;          /* "tern" */
        int64_t arrival_sec;            /* the original's arrival */
        int64_t now_sec;                /* for the boundary */
        const char *envelope_id;        /* NULL: none (Original-Envelope-Id) */
        bool headers_only;              /* RET=HDRS */
        int64_t delay_warning_sec;      /* BOUNCE_DELAYED: delay_warning_time, for the text */
        int64_t max_lifetime_sec;       /* BOUNCE_DELAYED: maximal_queue_lifetime, for the text */
        const BounceRecipient *recipients;
        size_t n_recipients;
        const char *content;            /* the original message (headers, empty line, body), LF */
        size_t content_size;
        size_t size_limit;              /* bounce_size_limit */
} BounceInput;

/* bounce_build - the notification message, malloc'ed in *ret (*ret_size bytes, also NUL-terminated) */
int bounce_build(const BounceInput *in, char **ret, size_t *ret_size);
