/* SPDX-License-Identifier: MIT */
/*
 * cleanup.h - what Postfix's cleanup(8) does to locally submitted mail, as pure code over bytes
 *
 * The one place that turns an envelope and a message into queue file records (DESIGN.md: used by
 * tern-submit, tern-smtpd and qmgr's bounces). For local submission it:
 *   - qualifies bare addresses ("user" -> "user@$myorigin"), refuses what is not an address;
 *   - with CLEANUP_EXTRACT_RCPT (sendmail -t), takes recipients from To:, Cc: and Bcc: and
 *     drops Bcc: headers; with CLEANUP_IGNORE_DOTS unset (sendmail without -i), a line "." ends
 *     the message;
 *   - adds, when missing, From: (hfrom_format standard: "Full Name" <sender>; MAILER-DAEMON for
 *     the null sender), Date:, Message-Id: <YYYYMMDDhhmmss.QUEUEID@$myhostname>, and always a
 *     Received: by $myhostname (tern, from userid UID) id QUEUEID; DATE line first;
 *   - ends lines at LF or CRLF alike (stored without them), keeps a lone CR, refuses NUL bytes,
 *     cuts lines over QUEUE_FILE_LINE_MAX into L records, refuses a message over
 *     message_size_limit and envelopes over the recipient limit.
 * Input arrives in chunks of any size (one byte at a time works: tests do it); nothing is written
 * anywhere but the QueueBuf that cleanup_finish() fills.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue-file.h"

enum {
        CLEANUP_EXTRACT_RCPT = 1U << 0,         /* sendmail -t */
        CLEANUP_IGNORE_DOTS = 1U << 1,          /* sendmail -i / -oi: "." is an ordinary line */
        /* SMTP (tern-smtpd): smtpd's Received: header from the log_client_*, log_helo_name and
         * log_protocol_name options instead of pickup's */
        CLEANUP_SMTP = 1U << 2,
        /* no Message-Id:, Date: or From: added: a remote SMTP client outside
         * local_header_rewrite_clients (Postfix adds them only for local clients) */
        CLEANUP_NO_ADD_HEADERS = 1U << 3,
};

typedef struct CleanupOptions {
        const char *myhostname;
        const char *myorigin;
        uint64_t message_size_limit;            /* bytes of content; 0: none */
        size_t recipient_limit;                 /* 0: none */
        unsigned flags;
        uid_t uid;                              /* the submitting user (SO_PEERCRED) */
        int64_t delay_warning_time;             /* seconds; > 0: a W record for qmgr's delay notice */
        /* A attributes: NULL to leave out */
        const char *log_client_name, *log_client_address, *log_helo_name, *log_protocol_name;
        const char *log_message_origin;         /* Postfix writes the submitting user's name: "user" */
        /* RFC 3461 MAIL FROM parameters: ENVID (decoded; NULL: none), RET bits (1 FULL, 2 HDRS; 0: none) */
        const char *dsn_envid;
        int dsn_ret;
} CleanupOptions;

typedef struct Cleanup Cleanup;

int cleanup_new(const CleanupOptions *o, Cleanup **ret);
Cleanup *cleanup_free(Cleanup *c);

/* cleanup_set_sender - the envelope sender ("" = null sender) and full name (may be NULL);
 * -EINVAL (with cleanup_error()) if not an address */
int cleanup_set_sender(Cleanup *c, const char *sender, const char *full_name);
/* cleanup_add_recipient - one envelope recipient; -EINVAL not an address, -E2BIG over the limit */
int cleanup_add_recipient(Cleanup *c, const char *recipient);
/* cleanup_add_recipient_dsn - the same, with RFC 3461's ORCPT ("type;address", NULL: none) and
 * NOTIFY bits (queue-file.h's DSN_NOTIFY_*; 0: none), written as A records before its R */
int cleanup_add_recipient_dsn(Cleanup *c, const char *recipient, const char *dsn_orcpt, int dsn_notify);
/* cleanup_write - message bytes; -EFBIG over message_size_limit, -EBADMSG NUL byte (the message
 * is refused; later calls return the same error) */
int cleanup_write(Cleanup *c, const void *data, size_t size);
/* cleanup_write_line - one line of the message as the bytes it holds, without its line end (a CR
 * in it is data); MORE: a piece of a longer line, the next call continues it. For tern-smtpd,
 * which has found the lines already. Errors as cleanup_write(); not to be mixed with it. */
int cleanup_write_line(Cleanup *c, const void *data, size_t size, bool more);
/* cleanup_done_input - true once a "." line ended the message (without CLEANUP_IGNORE_DOTS) */
bool cleanup_done_input(const Cleanup *c);
/*
 * cleanup_finish - the end of the message: build the whole queue file into OUT for QUEUE_ID,
 * arrived at NOW_SEC.NOW_USEC. -ENOMSG when there is no recipient at all (after -t extraction).
 */
int cleanup_finish(Cleanup *c, const char *queue_id, int64_t now_sec, int64_t now_usec, QueueBuf *out);
/* what was wrong, for the client: "recipient address syntax error: <a b>", ... (static or owned by C) */
const char *cleanup_error(const Cleanup *c);

/* The envelope as it will be written (qualified), for logging: from=<...>, nrcpt, size */
const char *cleanup_sender(const Cleanup *c);
size_t cleanup_n_recipients(const Cleanup *c);
const char *cleanup_recipient(const Cleanup *c, size_t i);
uint64_t cleanup_content_size(const Cleanup *c);

/* Address helpers, pure (also used by the smtp server later) */
/* addr_qualify - "user" -> "user@ORIGIN"; a full address as it is; RET malloc'ed */
int addr_qualify(const char *addr, const char *origin, char **ret);
/* addr_valid - an RFC 5321 forward/reverse path without the brackets: local@domain, local, "" */
bool addr_valid(const char *addr);
/* addr_list_parse - the addresses of an RFC 5322 address-list header value (To:, Cc:, Bcc:):
 * display names, comments, groups and quoted local parts handled; NULL-terminated malloc'ed
 * vector in *ret (free each and the vector); -EINVAL if the list cannot be parsed */
int addr_list_parse(const char *value, size_t size, char ***ret);
