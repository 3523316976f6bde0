/* SPDX-License-Identifier: MIT */
/*
 * submit-queue.h - one local submission from descriptor to durable queue file, and the group
 * commit that batches them (tern-submit's work; knows nothing of varlink)
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf.h"

typedef struct Submitter Submitter;
typedef struct Submission Submission;

typedef struct SubmissionRequest {
        const char *sender;
        const char *const *recipients;
        size_t n_recipients;
        const char *full_name;          /* NULL: none */
        int64_t size;                   /* -1: unknown (a regular file or memfd only) */
        bool extract_recipients, ignore_dots;
        uid_t uid;                      /* the submitting user */
        gid_t gid;
        pid_t pid;
} SubmissionRequest;

/*
 * Outcome, given to the done callback once: 0 (queued: submission_queue_id() etc. are set) or
 *   -EINVAL bad address, -E2BIG too many recipients, -EFBIG too big, -EBADMSG NUL bytes,
 *   -ENOMSG no recipients, -EPIPE shorter than the promised size, -EBADF unreadable descriptor,
 *   -ETIMEDOUT the descriptor gave nothing for ipc_timeout, -ECONNRESET the client left,
 *   -ESPIPE a pipe or socket without a size,
 *   -ENOSPC/-EIO/... the queue could not take it.
 * submission_error() has the text for the client. The callback must not free the submission;
 * it is freed after the callback returns.
 */
typedef void (*SubmissionDoneFn)(Submission *sub, int error, void *userdata);
/* Is the client still waiting? Asked right before the commit: nothing is queued for a client that
 * left (its descriptor may have ended early). */
typedef bool (*SubmissionAliveFn)(void *userdata);

int submitter_new(sd_event *event, const Conf *conf, Submitter **ret);
Submitter *submitter_free(Submitter *s);
/* Batches committed and syncs made, for STATUS= and the benchmark */
void submitter_stats(const Submitter *s, uint64_t *ret_messages, uint64_t *ret_batches, uint64_t *ret_syncs);

/* submission_start - take over FD and begin; the callback runs from the event loop, never inside this call */
int submission_start(Submitter *s, const SubmissionRequest *req, int fd, SubmissionDoneFn done,
                     SubmissionAliveFn alive, void *userdata, Submission **ret);
/* submission_cancel - the client is gone: drop everything, no callback */
void submission_cancel(Submission *sub);

const char *submission_queue_id(const Submission *sub);
const char *submission_error(const Submission *sub);
const char *submission_sender(const Submission *sub);
size_t submission_n_recipients(const Submission *sub);
const char *submission_recipient(const Submission *sub, size_t i);
uint64_t submission_size(const Submission *sub);


