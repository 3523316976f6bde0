/* SPDX-License-Identifier: MIT */
/* flush-entries.c - logfile lines, the duplicate filter, refresh/purge ages (see flush-entries.h) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flush-entries.h"
#include "macro.h"

static int line_done(FlushLines *p, FlushLineFn fn, void *userdata)
{
        bool valid;
        size_t shown = MIN(p->len, (size_t) QUEUE_ID_MAX - 1);

        p->line[shown] = '\0';
        /* a NUL inside the line makes it bad too (queue_id_valid() would stop at it) */
        valid = p->len < QUEUE_ID_MAX && strlen(p->line) == p->len && queue_id_valid(p->line);
        if (!valid && shown > FLUSH_BAD_LINE_SHOW)
                p->line[FLUSH_BAD_LINE_SHOW] = '\0';
        p->len = 0;
        return fn(p->line, valid, userdata);
}

int flush_lines_feed(FlushLines *p, const char *buf, size_t n, FlushLineFn fn, void *userdata)
{
        for (size_t i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                        int r = line_done(p, fn, userdata);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (p->len < QUEUE_ID_MAX - 1)
                        p->line[p->len] = buf[i];
                if (p->len < SIZE_MAX)
                        p->len++;
        }
        return 0;
}

int flush_lines_end(FlushLines *p, FlushLineFn fn, void *userdata)
{
        if (p->len == 0)
                return 0;
        return line_done(p, fn, userdata);
}

int flush_dup_filter_init(FlushDupFilter *f, size_t limit)
{
        *f = (FlushDupFilter){ .limit = limit };
        return strmap_new(&f->seen);
}

int flush_dup_filter_check(FlushDupFilter *f, const char *id)
{
        char *copy;
        int r;

        if (strmap_get(f->seen, id))
                return 0;
        if (strmap_size(f->seen) >= f->limit)
                return 1;       /* full: no filtering, every ID is processed */
        copy = strdup(id);
        if (!copy)
                return -ENOMEM;
        r = strmap_put(f->seen, copy, copy);
        if (r < 0) {
                free(copy);
                return r;
        }
        return 1;
}

void flush_dup_filter_done(FlushDupFilter *f)
{
        const char *key;
        void *value;
        size_t state = 0;

        if (!f->seen)
                return;
        while (strmap_next(f->seen, &state, &key, &value))
                free(value);
        f->seen = strmap_free(f->seen);
}

FlushRefreshAction flush_refresh_action(uint64_t size, int64_t atime, int64_t mtime, int64_t now,
                                        int64_t max_age, int64_t purge_time)
{
        if (size == 0)
                return mtime > INT64_MAX - purge_time || mtime + purge_time >= now ? FLUSH_REFRESH_KEEP
                                                                                  : FLUSH_REFRESH_PURGE;
        return atime > INT64_MAX - max_age || atime + max_age >= now ? FLUSH_REFRESH_KEEP : FLUSH_REFRESH_SEND;
}
