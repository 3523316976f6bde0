/* SPDX-License-Identifier: MIT */
/*
 * flush-entries.h - the pure rules of fast flush: logfile lines, the duplicate filter, and the
 * refresh/purge ages (postfix-semantics.md §1.4, §1.5, §1.7)
 *
 * A logfile is one queue ID per line, "\n"-terminated, appended by Add. Reading it:
 *   - FlushLines splits bytes into lines, fed any number of bytes at a time; a line that is
 *     not a queue ID (empty, too long, a character outside [A-Za-z0-9_]) is reported as bad
 *     with its first FLUSH_BAD_LINE_SHOW bytes, for Postfix's warning; a last line without
 *     its newline (a writer that died mid-line) is reported by flush_lines_end().
 *   - FlushDupFilter remembers the IDs seen in one flush, up to a bound (Postfix's
 *     FLUSH_DUP_FILTER_SIZE, 10000); past the bound every ID passes, which costs at most a
 *     second touch of a file, never a skipped one.
 * Refresh and purge: flush_refresh_action() decides for one logfile from its size and times.
 *
 * Pure code; no I/O.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue-id.h"
#include "strmap.h"

#define FLUSH_DUP_FILTER_SIZE 10000
/* a bad line is shown in the warning with this many bytes (Postfix: "%.30s...") */
#define FLUSH_BAD_LINE_SHOW 30

typedef struct FlushLines {
        char line[QUEUE_ID_MAX];        /* the line so far (only its first bytes once too long) */
        size_t len;                     /* bytes of the line so far, also past QUEUE_ID_MAX */
} FlushLines;

/* FlushLineFn - one whole line: a queue ID (VALID) or a bad line (its start, NUL-terminated).
 * A negative return stops the feed and is returned. */
typedef int (*FlushLineFn)(const char *line, bool valid, void *userdata);

int flush_lines_feed(FlushLines *p, const char *buf, size_t n, FlushLineFn fn, void *userdata);
/* flush_lines_end - the end of the file: a partial last line is reported (as a line) */
int flush_lines_end(FlushLines *p, FlushLineFn fn, void *userdata);

typedef struct FlushDupFilter {
        StrMap *seen;                   /* id -> its own malloc'ed copy */
        size_t limit;
} FlushDupFilter;

int flush_dup_filter_init(FlushDupFilter *f, size_t limit);
/* flush_dup_filter_check - 1: first time (or the filter is full), 0: seen before, -ENOMEM */
int flush_dup_filter_check(FlushDupFilter *f, const char *id);
void flush_dup_filter_done(FlushDupFilter *f);

typedef enum FlushRefreshAction {
        FLUSH_REFRESH_KEEP,
        FLUSH_REFRESH_PURGE,            /* empty and not updated for purge_time: remove it */
        FLUSH_REFRESH_SEND,             /* listed mail, not read for max_age: flush it */
} FlushRefreshAction;

/* flush_refresh_action - Postfix's flush_refresh_service() for one logfile: an empty one is
 * removed when MTIME + PURGE_TIME < NOW; a non-empty one is flushed when ATIME + MAX_AGE < NOW
 * (refresh: fast_flush_refresh_time; purge: 0). Times in seconds; MAX_AGE and PURGE_TIME >= 0. */
FlushRefreshAction flush_refresh_action(uint64_t size, int64_t atime, int64_t mtime, int64_t now,
                                        int64_t max_age, int64_t purge_time);
