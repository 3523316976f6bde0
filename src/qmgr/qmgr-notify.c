/* SPDX-License-Identifier: MIT */
/*
 * qmgr-notify.c - sending delivery status notifications: what Postfix's bounce(8) daemon does
 * when qmgr asks it to flush bounce/ID (abounce_flush) or return defer/ID (adefer_flush)
 *
 * The notice text comes from bounce.c (pure); it is queued through the one queue-writing
 * library (cleanup + queue_store_commit: durable before anything is removed) with the null
 * sender, to the original sender:
 *   - a message from the null sender cannot be returned: its notice goes to
 *     2bounce_notice_recipient (postmaster) as a "postmaster non-delivery notification" from
 *     double_bounce_sender@$myhostname; if that one bounces too, no further notice is made:
 *     "warning: ID: undeliverable postmaster notification discarded", as bounce(8) does;
 *   - "ID: sender non-delivery notification: NEWID" (or postmaster ...) is logged, as bounce(8)
 *     does, so collate.pl-style tools link the two;
 *   - returning the defer log (expiry) marks those recipients done in the original file.
 * A notice that cannot be queued (full disk) leaves the logs in place: the message stays in
 * the queue and the notice is tried again on its next pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "qmgr.h"

/* message_content - the original's text for part 3: the whole message when it fits in LIMIT
 * bytes (and HEADERS is false), else its headers alone, *ret_headers_only saying which */
static int message_content(QmgrMessage *m, size_t limit, bool headers, char **ret, size_t *ret_size,
                           bool *ret_headers_only)
{
        struct stat st;
        QueueEnvelope env = {};
        const char *reason = NULL;
        void *map;
        bool cut = false, unused;
        int r;

        if (fstat(m->fd, &st) < 0)
                return -errno;
        if (st.st_size <= 0)
                return -EBADMSG;
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, m->fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        r = queue_envelope_parse(map, (size_t) st.st_size, &env, &reason);
        if (r >= 0) {
                if (!headers) {
                        r = queue_content_text(map, (size_t) st.st_size, &env, limit, false, ret, ret_size, &cut);
                        if (r >= 0 && cut)
                                *ret = mfree(*ret);
                }
                if (r >= 0 && (headers || cut))
                        r = queue_content_text(map, (size_t) st.st_size, &env, 0, true, ret, ret_size, &unused);
                if (r >= 0)
                        *ret_headers_only = headers || cut;
                queue_envelope_done(&env);
        }
        munmap(map, (size_t) st.st_size);
        return r;
}

/* post_notice - queue TEXT from SENDER to RCPT; the new queue ID in NEWID */
static int post_notice(Qmgr *q, const char *sender, const char *rcpt, const char *text, size_t size,
                       char newid[static QUEUE_ID_MAX])
{
        const Conf *c = q->conf;
        CleanupOptions o = {
                .myhostname = conf_get_string(c, "myhostname"),
                .myorigin = conf_get_string(c, "myorigin"),
                .flags = CLEANUP_IGNORE_DOTS,
                .uid = geteuid(),
                .log_message_origin = "MAILER-DAEMON",
        };
        Cleanup *cl = NULL;
        QueueNew *qn = NULL;
        QueueBuf buf = {};
        struct timespec ts;
        int r;

        r = cleanup_new(&o, &cl);
        if (r < 0)
                return r;
        r = cleanup_set_sender(cl, sender, "Mail Delivery System");
        if (r >= 0)
                r = cleanup_add_recipient(cl, rcpt);
        if (r >= 0)
                r = cleanup_write(cl, text, size);
        if (r >= 0)
                r = queue_new(q->store, &qn);
        if (r >= 0) {
                clock_gettime(CLOCK_REALTIME, &ts);
                r = cleanup_finish(cl, queue_new_id(qn), ts.tv_sec, ts.tv_nsec / 1000, &buf);
        }
        if (r >= 0)
                r = queue_new_write(qn, buf.data, buf.size);
        if (r >= 0)
                r = queue_store_commit(q->store, &qn, 1, NULL);
        if (r >= 0)
                snprintf(newid, QUEUE_ID_MAX, "%s", queue_new_id(qn));
        queue_buf_done(&buf);
        queue_new_free(qn);
        cleanup_free(cl);
        return r;
}

/* notice_recipients - the log entries as the notice's recipients, with ACTION */
static BounceRecipient *notice_recipients(const QueueLogEntry *entries, size_t n, const char *action)
{
        BounceRecipient *v = calloc(n, sizeof(*v));

        for (size_t i = 0; v && i < n; i++)
                v[i] = (BounceRecipient) {
                        .address = entries[i].recipient,
                        .orig_address = entries[i].original_recipient,
                        .status = entries[i].status,
                        .action = action,
                        .diag_type = entries[i].diag_type,
                        .diag_text = entries[i].diag_text,
                        .mta_type = entries[i].mta_type,
                        .mta_mname = entries[i].mta_mname,
                        .reason = entries[i].reason,
                };
        return v;
}

/* mark_logged_done - the recipients of ENTRIES are done with (a returned defer log) */
static void mark_logged_done(QmgrMessage *m, const QueueLogEntry *entries, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (entries[i].offset > 0 && queue_file_mark_done(m->fd, (uint64_t) entries[i].offset) < 0)
                        log_warning("%s: defer log offset %lld is not a recipient record", m->id,
                                    (long long) entries[i].offset);
}

/* is_double_bounce_sender - SENDER is $double_bounce_sender@$myhostname (or unqualified) */
static bool is_double_bounce_sender(const Qmgr *q, const char *sender)
{
        size_t l = strlen(q->double_bounce_sender);

        if (strncasecmp(sender, q->double_bounce_sender, l) != 0)
                return false;
        return sender[l] == '\0' || (sender[l] == '@' && strcasecmp(sender + l + 1, q->myhostname) == 0);
}

/* notice_queue - the notice of KIND about M for the log ENTRIES, queued from SENDER to TO; the
 * new queue ID in NEWID. WHAT names it in warnings ("sender non-delivery"). */
static int notice_queue(Qmgr *q, QmgrMessage *m, BounceKind kind, const QueueLogEntry *entries, size_t n,
                        const char *sender, const char *to, const char *what, char newid[static QUEUE_ID_MAX])
{
        _cleanup_(freep) BounceRecipient *rcpts = NULL;
        _cleanup_(freep) char *content = NULL, *text = NULL;
        size_t content_size = 0, text_size = 0, limit = (size_t) conf_get_int(q->conf, "bounce_size_limit");
        bool headers_only = false;
        int r;

        rcpts = notice_recipients(entries, n, kind == BOUNCE_DELAYED ? "delayed" : "failed");
        if (!rcpts)
                return -ENOMEM;
        /* delay notices and postmaster copies carry the original's headers only (bounce(8)) */
        r = message_content(m, limit, kind != BOUNCE_FAILED, &content, &content_size, &headers_only);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot read the message for its %s notification: %m", m->id,
                                         what);
        BounceInput in = {
                .kind = kind,
                .queue_id = m->id,
                .sender = m->sender,
                .notify_to = to,
                .myhostname = q->myhostname,
                .mail_name = conf_get_string(q->conf, "mail_name"),
                .arrival_sec = m->arrival_usec / (int64_t) USEC_PER_SEC,
                .now_sec = qmgr_now_usec(q) / (int64_t) USEC_PER_SEC,
                .envelope_id = m->envelope_id,
                .headers_only = headers_only,
                .delay_warning_sec = q->delay_warning_time,
                .max_lifetime_sec = q->maximal_queue_lifetime,
                .recipients = rcpts,
                .n_recipients = n,
                .content = content,
                .content_size = content_size,
                .size_limit = limit,
        };
        r = bounce_build(&in, &text, &text_size);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot build the %s notification: %m", m->id, what);
        r = post_notice(q, sender, to, text, text_size, newid);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot queue the %s notification: %m", m->id, what);
        return 0;
}

int qmgr_notify_bounce(Qmgr *q, QmgrMessage *m, bool expired)
{
        const char *log = expired ? "defer" : "bounce";
        QueueLogEntry *entries = NULL;
        size_t n = 0;
        _cleanup_(freep) char *sender_buf = NULL;
        bool postmaster = isempty(m->sender);
        const char *notice_sender = "", *notice_to = m->sender;
        char newid[QUEUE_ID_MAX], f[QMGR_ID_FIELD_MAX];
        int r;

        r = queue_log_read(q->store, log, m->id, &entries, &n);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_warning_errno(r, "%s: cannot read %s log: %m", m->id, log);
        if (n == 0) {
                queue_log_entries_free(entries, n);
                if (!expired)
                        (void) queue_log_remove(q->store, log, m->id);
                return 0;
        }

        QMGR_ID_FIELD(f, m->id);
        if (is_double_bounce_sender(q, m->sender)) {
                /* a postmaster notice that could not be delivered is not returned once more:
                 * bounce(8)'s bounce_notify_service discards it with a warning */
                log_warning_fields(LOG_FIELDS(f), "%s: undeliverable postmaster notification discarded", m->id);
        } else {
                if (postmaster) {
                        if (asprintf(&sender_buf, "%s@%s", q->double_bounce_sender, q->myhostname) < 0) {
                                sender_buf = NULL;
                                r = -ENOMEM;
                                goto finish;
                        }
                        notice_sender = sender_buf;
                        notice_to = conf_get_string(q->conf, "2bounce_notice_recipient");
                }
                r = notice_queue(q, m, postmaster ? BOUNCE_POSTMASTER : BOUNCE_FAILED, entries, n, notice_sender,
                                 notice_to, postmaster ? "postmaster non-delivery" : "sender non-delivery", newid);
                if (r < 0)
                        goto finish;
                log_info_fields(LOG_FIELDS(f), "%s: %s non-delivery notification: %s", m->id,
                                postmaster ? "postmaster" : "sender", newid);
        }

        /* the recipients of a returned defer log are done with */
        if (expired)
                mark_logged_done(m, entries, n);
        (void) queue_log_remove(q->store, log, m->id);
        r = 0;
finish:
        queue_log_entries_free(entries, n);
        return r;
}

int qmgr_notify_delay(Qmgr *q, QmgrMessage *m)
{
        QueueLogEntry *entries = NULL;
        size_t n = 0;
        char newid[QUEUE_ID_MAX], f[QMGR_ID_FIELD_MAX];
        int r;

        /* notices are not warned about: the null sender, or a postmaster notice */
        if (isempty(m->sender) || is_double_bounce_sender(q, m->sender))
                return 0;
        r = queue_log_read(q->store, "defer", m->id, &entries, &n);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_warning_errno(r, "%s: cannot read defer log: %m", m->id);
        if (n > 0) {
                r = notice_queue(q, m, BOUNCE_DELAYED, entries, n, "", m->sender, "sender delay", newid);
                if (r >= 0)
                        log_info_fields(LOG_FIELDS(QMGR_ID_FIELD(f, m->id)),
                                        "%s: sender delay notification: %s", m->id, newid);
        }
        queue_log_entries_free(entries, n);
        return r < 0 ? r : 0;
}
