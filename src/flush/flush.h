/* SPDX-License-Identifier: MIT */
/*
 * flush.h - tern-flush's state, shared by flush.c (life, qmgr triggers, background jobs),
 * flush-log.c (the logfiles and the queue files they name) and flush-varlink.c (io.tern.Flush)
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "domain-list.h"
#include "event.h"
#include "flush-entries.h"
#include "flush-site.h"
#include "queue-store.h"
#include "varlink.h"

/* Logfiles one refresh/purge step handles before the loop serves requests again */
#define FLUSH_REFRESH_BATCH 32

typedef struct FlushJob FlushJob;

typedef struct Flush {
        Service *service;
        sd_event *event;
        const Conf *conf;
        QueueStore *store;
        int dirfd;                      /* queue_directory/flush */
        DomainList domains;             /* fast_flush_domains */
        bool fallback;                  /* fast_flush_fallback */
        int64_t refresh_time, purge_time;
        char *qmgr_path;                /* runtime_directory/qmgr */
        VarlinkClient *qmgr;            /* NULL: not connected */
        FlushJob *job;                  /* the refresh or purge in progress */
        int64_t job_again_max_age;      /* -1: none; else a refresh/purge asked for while one ran */
} Flush;

/* Which of Postfix's strategies a send uses (flush_send_path's how) */
typedef enum FlushHow {
        FLUSH_SEND_SITE,                /* flushDead before, incoming after */
        FLUSH_REFRESH_ONLY,             /* refresh/purge: incoming after only */
} FlushHow;

/* ---- flush.c */
/* flush_trigger_qmgr - io.tern.Qmgr.Trigger(REQUESTS), asynchronously, in order; a failure is a
 * warning (qmgr finds the files on its next scan) */
void flush_trigger_qmgr(Flush *f, const char *const *requests, size_t n);
/* flush_refresh_start - a refresh (MAX_AGE fast_flush_refresh_time) or purge (0) in the background */
int flush_refresh_start(Flush *f, int64_t max_age);
int64_t flush_now(void);

/* ---- flush-log.c (return -errno; the warnings of §1.12 are logged here) */
/* flush_log_add - append ID to logfile NAME (created 0600), under an exclusive lock */
int flush_log_add(Flush *f, const char *name, const char *id);
/* flush_log_send - §1.5 for logfile NAME; *ret_moved: files moved from deferred to incoming.
 * A logfile that does not exist is 0 moved. */
int flush_log_send(Flush *f, const char *name, FlushHow how, uint64_t *ret_moved);
/* flush_log_send_file - §1.6: touch, unthrottle and move ID; 1 touched, 0 not found */
int flush_log_send_file(Flush *f, const char *id);
/* flush_log_refresh_one - flush_refresh_action() for logfile NAME, and do it */
int flush_log_refresh_one(Flush *f, const char *name, int64_t max_age);
/* flush_log_stat - entries, size and times of logfile NAME, as a List item (json_t *) */
int flush_log_stat(Flush *f, const char *name, void **ret_json);
/* flush_log_names - the valid logfile names in flush/ (malloc'ed NULL-terminated list, sorted) */
int flush_log_names(Flush *f, char ***ret);
void flush_names_free(char **names);

/* ---- flush-varlink.c */
extern const VarlinkInterface flush_interface;
