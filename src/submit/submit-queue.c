/* SPDX-License-Identifier: MIT */
/*
 * submit-queue.c - local submission: descriptor -> cleanup -> queue file -> group commit
 *
 * One Submission reads the client's descriptor to its end: a regular file or memfd with pread()
 * from offset 0 (its size is known, its data complete when the call arrives), a pipe or socket
 * with non-blocking reads driven by the event loop, with ipc_timeout as the limit on silence.
 * The bytes go through cleanup (src/lib/cleanup.c); at the end the queue file is written under
 * its temporary name and the submission joins the pending batch.
 *
 * Group commit (queue-commit.h): every submission that finished reading since the last batch
 * joins the same queue_store_commit(). Nobody is answered before it has returned for their file
 * (Postfix's rule: never say "queued" before the file is safe).
 *
 * A client that leaves before the commit gets nothing queued (SubmissionAliveFn, asked right
 * before the commit). A pipe or socket must come with the message's size: its end looks the same
 * whether the writer finished or died half-way, and the writer's hang-up on the varlink
 * connection can arrive after it, so only the size tells a whole message from half of one. A
 * memfd or regular file is complete when the call arrives; its size is what it holds.
 *
 * Limits: message_size_limit (cleanup refuses more); reads of a regular file are synchronous, at
 * most message_size_limit bytes from the page cache.
 */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "cleanup.h"
#include "event.h"
#include "macro.h"
#include "queue-commit.h"
#include "queue-store.h"
#include "submit-queue.h"

/* One read from a descriptor; also what a regular file is read in. */
#define SUBMIT_READ_CHUNK (64U * 1024U)

struct Submission {
        Submitter *submitter;
        QueueCommitWaiter waiter;       /* in the pending batch */
        bool pending;
        Submission *all_prev, *all_next;        /* every live submission, for the exit */
        Cleanup *cleanup;
        QueueNew *qnew;
        int fd;
        sd_event_source *io, *timer, *later;
        int64_t size_expected;
        uint64_t size_read;
        int error;                      /* decided before the commit (reported from "later") */
        char *error_text;
        SubmissionDoneFn done;
        SubmissionAliveFn alive;
        void *userdata;
        char id[QUEUE_ID_MAX];
};

struct Submitter {
        sd_event *event;
        const Conf *conf;
        QueueStore *store;
        uint64_t message_size_limit;
        size_t recipient_limit;
        uint64_t ipc_timeout_usec;
        QueueCommitter *committer;
        Submission *all;
};

static void submission_free(Submission *sub)
{
        if (!sub)
                return;
        if (sub->all_prev)
                sub->all_prev->all_next = sub->all_next;
        else if (sub->submitter->all == sub)
                sub->submitter->all = sub->all_next;
        if (sub->all_next)
                sub->all_next->all_prev = sub->all_prev;
        sd_event_source_disable_unref(sub->io);
        sd_event_source_disable_unref(sub->timer);
        sd_event_source_disable_unref(sub->later);
        cleanup_free(sub->cleanup);
        queue_new_free(sub->qnew);     /* an uncommitted temporary file goes */
        safe_close(sub->fd);
        free(sub->error_text);
        free(sub);
}

/* complete - tell the owner, then forget the submission */
static void complete(Submission *sub, int error)
{
        if (error < 0 && !sub->error_text && sub->cleanup && cleanup_error(sub->cleanup))
                sub->error_text = strdup(cleanup_error(sub->cleanup));
        if (error < 0 && !sub->error_text)
                sub->error_text = strdup(strerror(-error));
        sub->done(sub, error, sub->userdata);
        submission_free(sub);
}

static int on_later(sd_event_source *source, void *userdata)
{
        Submission *sub = userdata;

        complete(sub, sub->error);
        return 0;
}

/* fail_later - stop reading and report ERROR from the event loop */
static void fail_later(Submission *sub, int error, const char *text)
{
        sub->io = sd_event_source_disable_unref(sub->io);
        sub->timer = sd_event_source_disable_unref(sub->timer);
        sub->error = error;
        if (text && !sub->error_text)
                sub->error_text = strdup(text);
        if (!sub->later && sd_event_add_defer(sub->submitter->event, &sub->later, on_later, sub) < 0)
                /* Cannot even schedule the report: report now (no caller frame is ours here). */
                complete(sub, error);
}

static void on_committed(QueueCommitWaiter *w, int error)
{
        Submission *sub = container_of(w, Submission, waiter);

        sub->pending = false;
        if (error >= 0)
                snprintf(sub->id, sizeof(sub->id), "%s", queue_new_id(sub->qnew));
        complete(sub, error);
}

static bool on_commit_alive(QueueCommitWaiter *w)
{
        Submission *sub = container_of(w, Submission, waiter);

        return !sub->alive || sub->alive(sub->userdata);
}

/* finish_input - the message is read: write its queue file and join the batch */
static void finish_input(Submission *sub)
{
        Submitter *s = sub->submitter;
        QueueBuf buf = {};
        struct timespec ts;
        int r;

        sub->io = sd_event_source_disable_unref(sub->io);
        sub->timer = sd_event_source_disable_unref(sub->timer);
        sub->fd = safe_close(sub->fd);

        if (sub->size_expected >= 0 && sub->size_read != (uint64_t) sub->size_expected &&
            !cleanup_done_input(sub->cleanup)) {
                char text[128];
                snprintf(text, sizeof(text), "message ends after %llu of %lld bytes",
                         (unsigned long long) sub->size_read, (long long) sub->size_expected);
                fail_later(sub, -EPIPE, text);
                return;
        }
        r = queue_new(s->store, &sub->qnew);
        if (r < 0) {
                fail_later(sub, r, NULL);
                return;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        r = cleanup_finish(sub->cleanup, queue_new_id(sub->qnew), ts.tv_sec, ts.tv_nsec / 1000, &buf);
        if (r >= 0)
                r = queue_new_write(sub->qnew, buf.data, buf.size);
        queue_buf_done(&buf);
        if (r < 0) {
                /* the temporary file goes now, before the client hears of the failure (ENOSPC) */
                sub->qnew = queue_new_free(sub->qnew);
                fail_later(sub, r, NULL);
                return;
        }

        sub->waiter = (QueueCommitWaiter){ .qnew = sub->qnew, .done = on_committed, .alive = on_commit_alive };
        sub->pending = true;
        queue_commit_join(s->committer, &sub->waiter);
}

/* feed - bytes read from the descriptor; false when the submission has failed */
static bool feed(Submission *sub, const void *data, size_t n)
{
        int r;

        sub->size_read += n;
        if (sub->size_expected >= 0 && sub->size_read > (uint64_t) sub->size_expected) {
                fail_later(sub, -EPIPE, "message is longer than its size");
                return false;
        }
        r = cleanup_write(sub->cleanup, data, n);
        if (r < 0) {
                fail_later(sub, r, NULL);
                return false;
        }
        return true;
}

static int on_read_file(sd_event_source *source, void *userdata)
{
        Submission *sub = userdata;
        _cleanup_(freep) uint8_t *buf = malloc(SUBMIT_READ_CHUNK);
        off_t off = 0;

        sub->later = sd_event_source_disable_unref(sub->later);
        if (!buf)
                return fail_later(sub, -ENOMEM, NULL), 0;
        for (;;) {
                ssize_t k = pread(sub->fd, buf, SUBMIT_READ_CHUNK, off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return fail_later(sub, -EBADF, strerror(errno)), 0;
                if (k == 0)
                        break;
                off += k;
                if (!feed(sub, buf, (size_t) k))
                        return 0;
                if (cleanup_done_input(sub->cleanup))
                        break;
        }
        finish_input(sub);
        return 0;
}

static int on_readable(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        Submission *sub = userdata;
        uint8_t buf[SUBMIT_READ_CHUNK];
        uint64_t now;

        for (unsigned i = 0; i < 16; i++) {     /* a fair share of the loop per wakeup */
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        break;
                if (k < 0) {
                        fail_later(sub, -EBADF, strerror(errno));
                        return 0;
                }
                if (k == 0) {
                        finish_input(sub);
                        return 0;
                }
                if (!feed(sub, buf, (size_t) k))
                        return 0;
                if (cleanup_done_input(sub->cleanup)) {
                        finish_input(sub);
                        return 0;
                }
        }
        /* progress: the silence limit starts again */
        (void) sd_event_now(sub->submitter->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(sub->timer, now + sub->submitter->ipc_timeout_usec);
        return 0;
}

static int on_read_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
        fail_later(userdata, -ETIMEDOUT, "no data from the message descriptor within ipc_timeout");
        return 0;
}

/* user_name - the login name of UID, or its number */
static void user_name(uid_t uid, char *buf, size_t size)
{
        struct passwd pw, *res = NULL;
        char tmp[4096];

        if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
                snprintf(buf, size, "%s", res->pw_name);
        else
                snprintf(buf, size, "%u", (unsigned) uid);
}

int submission_start(Submitter *s, const SubmissionRequest *req, int fd, SubmissionDoneFn done,
                     SubmissionAliveFn alive, void *userdata, Submission **ret)
{
        char user[256];
        CleanupOptions o = {
                .myhostname = conf_get_string(s->conf, "myhostname"),
                .myorigin = conf_get_string(s->conf, "myorigin"),
                .message_size_limit = s->message_size_limit,
                .recipient_limit = s->recipient_limit,
                .flags = (req->extract_recipients ? CLEANUP_EXTRACT_RCPT : 0) |
                         (req->ignore_dots ? CLEANUP_IGNORE_DOTS : 0),
                .uid = req->uid,
                .log_message_origin = user,
                .delay_warning_time = conf_get_time(s->conf, "delay_warning_time"),
        };
        Submission *sub;
        struct stat st;
        int r, fl;

        user_name(req->uid, user, sizeof(user));
        sub = calloc(1, sizeof(*sub));
        if (!sub) {
                safe_close(fd);
                return -ENOMEM;
        }
        *sub = (Submission){ .submitter = s, .fd = fd, .size_expected = req->size, .done = done,
                             .alive = alive, .userdata = userdata, .all_next = s->all };
        if (s->all)
                s->all->all_prev = sub;
        s->all = sub;

        r = cleanup_new(&o, &sub->cleanup);
        if (r < 0)
                goto fail;

        /* Every problem from here on is the client's: it is answered, from the event loop. */
        r = cleanup_set_sender(sub->cleanup, req->sender, req->full_name);
        for (size_t i = 0; r >= 0 && i < req->n_recipients; i++)
                r = cleanup_add_recipient(sub->cleanup, req->recipients[i]);
        if (r < 0) {
                fail_later(sub, r, NULL);
                goto done;
        }

        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fstat(fd, &st) < 0 || (fl & O_ACCMODE) == O_WRONLY) {
                fail_later(sub, -EBADF, "the descriptor is not open for reading");
                goto done;
        }
        if (S_ISREG(st.st_mode)) {
                if (req->size >= 0 && st.st_size < req->size) {
                        fail_later(sub, -EPIPE, "the file is shorter than the size given");
                        goto done;
                }
                /* complete already: read it from the loop, so the caller hears back from there */
                r = sd_event_add_defer(s->event, &sub->later, on_read_file, sub);
        } else if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
                uint64_t now;

                /* The end of a pipe looks the same whether the client finished or died half-way
                 * (its hang-up can arrive after the pipe's end): only a promised size tells. */
                if (req->size < 0) {
                        fail_later(sub, -ESPIPE, "a pipe or socket needs the message size");
                        goto done;
                }

                (void) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                r = sd_event_add_io(s->event, &sub->io, fd, EPOLLIN, on_readable, sub);
                if (r >= 0) {
                        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                        r = sd_event_add_time(s->event, &sub->timer, CLOCK_MONOTONIC,
                                              now + s->ipc_timeout_usec, 0, on_read_timeout, sub);
                }
        } else {
                fail_later(sub, -EBADF, "the descriptor is not a file, memfd, pipe or socket");
                goto done;
        }
        if (r < 0)
                goto fail;
done:
        *ret = sub;
        return 0;
fail:
        sub->done = NULL;
        submission_free(sub);
        return r;
}

void submission_cancel(Submission *sub)
{
        Submitter *s;

        if (!sub)
                return;
        s = sub->submitter;
        if (sub->pending)
                queue_commit_leave(s->committer, &sub->waiter);
        submission_free(sub);
}

const char *submission_queue_id(const Submission *sub)
{
        return sub->id;
}

const char *submission_error(const Submission *sub)
{
        return sub->error_text ? sub->error_text : "";
}

const char *submission_sender(const Submission *sub)
{
        return cleanup_sender(sub->cleanup);
}

size_t submission_n_recipients(const Submission *sub)
{
        return cleanup_n_recipients(sub->cleanup);
}

const char *submission_recipient(const Submission *sub, size_t i)
{
        return cleanup_recipient(sub->cleanup, i);
}

uint64_t submission_size(const Submission *sub)
{
        return cleanup_content_size(sub->cleanup);
}

int submitter_new(sd_event *event, const Conf *conf, Submitter **ret)
{
        _cleanup_(freep) char *qmgr_socket = NULL;
        Submitter *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->conf = conf;
        s->message_size_limit = conf_get_size(conf, "message_size_limit");
        s->recipient_limit = (size_t) conf_get_int(conf, "smtpd_recipient_limit");
        s->ipc_timeout_usec = (uint64_t) conf_get_time(conf, "ipc_timeout") * USEC_PER_SEC;
        r = queue_store_open(conf_get_string(conf, "queue_directory"),
                             conf_get_list(conf, "hash_queue_names"),
                             (unsigned) conf_get_int(conf, "hash_queue_depth"), &s->store);
        if (r < 0)
                goto fail;
        r = service_runtime_path(conf, "qmgr", &qmgr_socket);
        if (r < 0)
                goto fail;
        r = queue_committer_new(event, s->store, qmgr_socket, s->ipc_timeout_usec, &s->committer);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        submitter_free(s);
        return r;
}

Submitter *submitter_free(Submitter *s)
{
        if (!s)
                return NULL;
        /* Exiting with submissions under way: their clients hear nothing (their connections are
         * gone), nothing of theirs is queued, and their owners free what they hold. */
        while (s->all)
                complete(s->all, -ECONNRESET);
        s->committer = queue_committer_free(s->committer);
        queue_store_free(s->store);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void submitter_stats(const Submitter *s, uint64_t *ret_messages, uint64_t *ret_batches, uint64_t *ret_syncs)
{
        queue_committer_stats(s->committer, ret_messages, ret_batches, ret_syncs);
}
