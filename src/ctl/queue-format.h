/* SPDX-License-Identifier: MIT */
/*
 * queue-format.h - the mail queue as people and scripts read it: mailq text, postqueue -j lines,
 * a qshape-like summary. Shared by ternctl and tern-sendmail (-bp); pure formatting over
 * io.tern.Queue's JSON, no I/O but the FILE it is given.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* What mailq's trailer counts, accumulated message by message. */
typedef struct MailqState {
        uint64_t messages;
        uint64_t bytes;
} MailqState;

/*
 * mailq_message - one io.tern.Queue.Message in postqueue -p's format (the heading before the
 * first one, a blank line between messages). -EBADMSG, and nothing printed, when MESSAGE lacks
 * its queueId or queueName.
 */
int mailq_message(MailqState *s, FILE *f, json_t *message);
/* mailq_end - "Mail queue is empty", or "-- N Kbytes in M Requests." */
void mailq_end(const MailqState *s, FILE *f);

/* queue_json_line - one message as a postqueue -j line (its members, order and spacing); -EBADMSG */
int queue_json_line(FILE *f, json_t *message);

/* qshape's age buckets (minutes), as io.tern.Queue.DestinationSummary.ages counts them */
#define QUEUE_SUMMARY_BUCKETS 10

/* queue_summary_print - io.tern.Queue.Summary's reply as a qshape table, counts and retries */
void queue_summary_print(FILE *f, json_t *summary, time_t now);

/* queue_format_time - asctime's "Thu Nov 24 18:22:12" (local time, 19 characters) */
void queue_format_time(int64_t t, char buf[static 32]);
