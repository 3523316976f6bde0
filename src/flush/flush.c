/* SPDX-License-Identifier: MIT */
/*
 * flush.c - tern-flush: the fast flush service (Postfix's flush(8))
 *
 * Socket-activated on runtime_directory/flush (io.tern.Flush). It keeps, per destination, a
 * logfile of the queue IDs of mail deferred to it (queue_directory/flush/<site>), so that ETRN,
 * sendmail -qR and ternctl flush send-site deliver one site's mail by moving exactly its files
 * from deferred to incoming, without a scan of the deferred queue. The rules are
 * flush-entries.c's and flush-site.c's, the files flush-log.c's; this file runs the process:
 * configuration, the spool, triggers to tern-qmgr (io.tern.Qmgr.Trigger on an asynchronous
 * connection, so that a request never waits for qmgr), and refresh/purge, which answer at once
 * and then work through the logfiles FLUSH_REFRESH_BATCH at a time below the priority of
 * requests, holding off the idle exit until they are done. Like Postfix's flush it exits after
 * max_idle with no client, and systemd starts it again on the next connection; max_use does
 * not apply (tern-qmgr's connection can stay for as long as it defers mail, and a process that
 * stops accepting to drain would keep every other client waiting). See man/tern-flush.8.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flush.h"
#include "log.h"
#include "macro.h"

struct FlushJob {
        char **names;
        size_t pos;
        int64_t max_age;
        uint64_t sent, purged;
        sd_event_source *source;
};

static Flush flush;

int64_t flush_now(void)
{
        return (int64_t) time(NULL);
}

/* ---- triggers to tern-qmgr */

static int on_trigger_reply(VarlinkClient *c, VarlinkReply *reply, int error, void *userdata)
{
        Flush *f = userdata;

        if (!reply)
                log_warning("trigger %s: %s", f->qmgr_path, strerror(-error));
        else if (reply->error)
                log_warning("trigger %s: %s", f->qmgr_path, reply->error);
        return 0;
}

void flush_trigger_qmgr(Flush *f, const char *const *requests, size_t n)
{
        json_t *v = json_array();
        int r;

        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                (void) json_array_append_new(v, json_string(requests[i]));
        if (f->qmgr && varlink_client_failed(f->qmgr))
                f->qmgr = varlink_client_free(f->qmgr);
        if (!f->qmgr) {
                r = varlink_client_connect_event(f->qmgr_path, f->event, SD_EVENT_PRIORITY_NORMAL, &f->qmgr);
                if (r < 0) {
                        log_warning_errno(r, "trigger %s: %m", f->qmgr_path);
                        json_decref(v);
                        return;
                }
        }
        r = varlink_client_invoke(f->qmgr, "io.tern.Qmgr.Trigger", json_pack("{s:o}", "requests", v), NULL, 0, 0,
                                  on_trigger_reply, f);
        if (r < 0)
                log_warning_errno(r, "trigger %s: %m", f->qmgr_path);
}

/* ---- refresh and purge in the background */

/* job_drop - free the refresh or purge in progress (unfinished at exit: harmless, the next
 * one reaches what it did not) */
static void job_drop(Flush *f)
{
        FlushJob *j = f->job;

        if (!j)
                return;
        j->source = sd_event_source_disable_unref(j->source);
        flush_names_free(j->names);
        f->job = mfree(j);
}

/* job_free - the job is done: free it and let the process exit when idle */
static void job_free(Flush *f)
{
        if (!f->job)
                return;
        job_drop(f);
        service_release(f->service);
}

static int on_job(sd_event_source *s, void *userdata)
{
        Flush *f = userdata;
        FlushJob *j = f->job;
        int64_t again;

        for (unsigned i = 0; i < FLUSH_REFRESH_BATCH && j->names[j->pos]; i++, j->pos++) {
                int r = flush_log_refresh_one(f, j->names[j->pos], j->max_age);
                if (r > 0)
                        j->purged++;
        }
        if (j->names[j->pos])
                return 0;       /* the defer source runs again on the next iteration */
        log_debug("%s done: %zu logfiles, %" PRIu64 " removed", j->max_age == 0 ? "purge" : "refresh", j->pos,
                  j->purged);
        job_free(f);
        again = f->job_again_max_age;
        f->job_again_max_age = -1;
        if (again >= 0)
                (void) flush_refresh_start(f, again);
        return 0;
}

int flush_refresh_start(Flush *f, int64_t max_age)
{
        FlushJob *j;
        int r;

        if (f->job) {
                /* one at a time: the stricter of what was asked for runs when this one ends */
                if (f->job_again_max_age < 0 || max_age < f->job_again_max_age)
                        f->job_again_max_age = max_age;
                return 0;
        }
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->max_age = max_age;
        r = flush_log_names(f, &j->names);
        if (r >= 0)
                r = sd_event_add_defer(f->event, &j->source, on_job, f);
        if (r < 0) {
                flush_names_free(j->names);
                free(j);
                return r;
        }
        /* below requests: an add or a send never waits behind a refresh */
        (void) sd_event_source_set_priority(j->source, SD_EVENT_PRIORITY_NORMAL + 10);
        (void) sd_event_source_set_enabled(j->source, SD_EVENT_ON);
        f->job = j;
        service_hold(f->service);
        return 0;
}

/* ---- the process */

static int flush_setup(Service *s, void *userdata)
{
        Flush *f = userdata;
        const Conf *c = service_conf(s);
        int r;

        f->service = s;
        f->event = service_event(s);
        f->conf = c;
        f->dirfd = -EBADF;
        f->job_again_max_age = -1;
        f->fallback = conf_get_bool(c, "fast_flush_fallback");
        f->refresh_time = conf_get_time(c, "fast_flush_refresh_time");
        f->purge_time = conf_get_time(c, "fast_flush_purge_time");
        r = flush_domains_from_conf(c, &f->domains);
        if (r < 0)
                return r;
        if (domain_list_empty(&f->domains))
                log_debug("fast_flush_domains is empty: fast flush is off%s",
                          f->fallback ? " (send requests flush the whole queue)" : "");
        r = service_runtime_path(c, "qmgr", &f->qmgr_path);
        if (r < 0)
                return r;
        r = queue_store_open(conf_get_string(c, "queue_directory"), conf_get_list(c, "hash_queue_names"),
                             (unsigned) conf_get_int(c, "hash_queue_depth"), &f->store);
        if (r < 0) {
                log_error_errno(r, "open queue directory %s: %m", conf_get_string(c, "queue_directory"));
                return r;
        }
        if (mkdirat(queue_store_dirfd(f->store), "flush", 0700) < 0 && errno != EEXIST) {
                r = -errno;
                log_error_errno(r, "create %s/flush: %m", conf_get_string(c, "queue_directory"));
                return r;
        }
        f->dirfd = openat(queue_store_dirfd(f->store), "flush", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (f->dirfd < 0) {
                r = -errno;
                log_error_errno(r, "open %s/flush: %m", conf_get_string(c, "queue_directory"));
                return r;
        }
        return varlink_server_add_interface(service_varlink(s), &flush_interface, f);
}

static void flush_shutdown(Service *s, void *userdata)
{
        Flush *f = userdata;

        /* a refresh cut short by SIGTERM is harmless: what it did not reach waits for the next */
        if (f->job)
                log_debug("stopping with a refresh in progress (%zu logfiles done)", f->job->pos);
}

int main(int argc, char **argv)
{
        static const ServiceSpec spec = {
                .program = "flush",
                .description = "Fast flush: per-destination logs of deferred mail (io.tern.Flush).",
                .socket_mode = 0666,
                /* tern-qmgr keeps its connection while it defers mail: a process draining for
                 * max_use would wait for it to leave and keep every other client out meanwhile */
                .no_max_use = true,
                .setup = flush_setup,
                .shutdown = flush_shutdown,
                .userdata = &flush,
        };
        int r;

        r = service_main(&spec, argc, argv);
        job_drop(&flush);
        flush.qmgr = varlink_client_free(flush.qmgr);
        safe_close(flush.dirfd);
        flush.store = queue_store_free(flush.store);
        domain_list_done(&flush.domains);
        free(flush.qmgr_path);
        return r;
}
