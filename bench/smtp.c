/* SPDX-License-Identifier: MIT */
/*
 * bench/smtp.c - tern-smtp's delivery rate to smtp-sink on loopback, with connection caching off,
 * always on, and on demand, beside tern-discard (what tern-qmgr alone can do)
 *
 * Usage: bench-smtp [-n MESSAGES] [-R REPEATS] [-r RUNS] [-d DIR] [-P POSTFIX_ROOT] [-K]
 *                   TERN_QMGR TERN_SMTP TERN_SCACHE TERN_DISCARD
 * (-n: the burst, default 10,000; -R: how many times each run is made, default 3, interleaved
 * (a b c d a b c d ...), the repetition with the median rate shown with the range of all; -r:
 * which runs, as letters, default "abcd"; -K: keep the temporary directory, with the daemons'
 * logs and smtp-sink's output, and say where it is; POSTFIX_ROOT: Debian's postfix package
 * unpacked, default TERN_BUILD_ROOT/postfix-root, which is fetched with tools/fetch-postfix.sh
 * when smtp-sink is not there)
 *
 * Each run (each repetition) has a directory of its own under DIR (default /var/tmp: a disk):
 * spool/, run/ (runtime_directory), main.cf, daemons.log (the tern daemons' stderr), sink.out
 * and sink.log (smtp-sink's stdout and stderr). In each run:
 *   spool    MESSAGES one-recipient messages of about 1 kB (rcpt@dest.test, the same queue file
 *            for all) made durable with queue-store's commits into incoming/ and moved to hold/
 *            while nothing runs (as bench-qmgr does), then syncfs() on the spool, so that their
 *            write-back does not land in the timed part;
 *   sink     Postfix's smtp-sink on 127.0.0.1:PORT (a free port: port 0 bound first), backlog
 *            1000, -c (it prints "sess=N quit=N mesg=N\r" to stdout, flushed, whenever a session
 *            ends, a QUIT comes or a message is received), -u nobody when we are root; waited for
 *            in /proc/net/tcp (a test connection would count as a session);
 *   daemons  tern-scache (runs b and c), tern-smtp or tern-discard, each run by hand on run/
 *            (bench_agent_start), then tern-qmgr (READY=1);
 *   burst    one io.tern.Queue.Requeue of hold/ moves every message to incoming at once (what
 *            Postfix's "postsuper -r ALL hold" does). Timed from that call until qmgr has logged
 *            "ID: removed" for every message (its log is read on every 10 ms: cheaper for qmgr
 *            than a Status call, which lists the queue directories); io.tern.Qmgr.Status must
 *            then show every queue empty and no message in core, and tern-smtp must have logged
 *            every message "status=sent". A deferral or bounce in the log, a daemon exiting, or
 *            30 s without a message removed stop the benchmark with the line or qmgr's Status;
 *   CPU      utime + stime from /proc over the burst: tern-qmgr; the agent with the children it
 *            forked per qmgr connection (bench_tree_cpu_seconds); tern-scache; smtp-sink;
 *   sessions tern-qmgr, tern-smtp (and its children) and tern-scache are stopped, so that every
 *            connection, cached ones too, is closed. smtp-sink counts a session and writes its
 *            counters before it closes the socket, so once /proc/net/tcp shows it no session
 *            (ESTABLISHED or CLOSE_WAIT on PORT), its last counters are final: sess (every
 *            connection made) and mesg, which must be exactly MESSAGES. "reused" is the
 *            deliveries tern-smtp logged with conn_use= (a session's second and later ones).
 * The runs, each on a fresh spool, daemons and smtp-sink:
 *   a) caching off: smtp_connection_cache_on_demand = no, no smtp_connection_cache_destinations;
 *   b) caching on: smtp_connection_cache_destinations = 127.0.0.1 (every delivery to the
 *      destination loads and saves sessions), on demand off, tern-scache running;
 *   c) on demand (Postfix's default): smtp_connection_cache_on_demand = yes, no destinations:
 *      tern-smtp caches when qmgr's request says so (a backlog for the destination);
 *   d) tern-discard instead (default_transport = discard): qmgr's own ceiling, no smtp-sink.
 * main.cf in all: relayhost = [127.0.0.1]:PORT (nothing can leave the machine: no DNS, and
 * every non-local address goes to the sink), default_transport and relay_transport smtp,
 * mydestination = localhost and local_transport = discard (no local mail is made here),
 * inet_protocols = ipv4, myhostname = bench.test, queue_run_delay 3600s (no deferred scan during
 * the burst), max_idle 3600s and max_use 1000000 (no agent exits during the burst),
 * default_destination_concurrency_limit 20 (Postfix's default, as in the reference run).
 *
 * The issue's reference (Postfix on this machine, not measured here): the same burst released at
 * once, 1,355 messages/s to smtp-sink; a 2,000-message burst used 21 connections with caching,
 * and caching was slower on loopback (0.76 x the uncached rate). Goals: at least twice Postfix's
 * rate, and caching never slower than no caching. Both are printed with yes/no for each run.
 *
 * Every process started here is stopped at exit, on failure too: this process is a child
 * subreaper, so what the daemons fork stays under it, and whatever is left under it at exit is
 * sent SIGTERM (then SIGKILL) by pid.
 *
 * Limits: one machine (2 shared CPUs here) runs qmgr, up to 20 agents, tern-scache, smtp-sink
 * and this process; smtp-sink is Postfix's unsupported test server and its speed is part of
 * what is measured; the log is written to a file and read here. Measure a release build.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "json-util.h"
#include "macro.h"
#include "queue-file.h"
#include "queue-store.h"
#include "varlink.h"

const char *const bench_name = "bench-smtp";

/* Postfix on this machine, from the issue text (not measured here) */
#define POSTFIX_RATE 1355.0      /* msgs/s, smtp-sink on loopback, burst released at once */
#define POSTFIX_CACHED_CONNS 21  /* connections a 2,000-message burst used with caching */
#define POSTFIX_CACHE_RATIO 0.76 /* cached / uncached rate */
#define GOAL_RATE (2.0 * POSTFIX_RATE)

#define DEFAULT_MESSAGES 10000
#define CONCURRENCY_LIMIT 20 /* default_destination_concurrency_limit: Postfix's default */
#define SINK_BACKLOG 1000
#define ENQUEUE_BATCH 256
#define POLL_USEC 10000
#define STALL_SEC 30 /* no message removed for this long: stalled */
#define RUN_TIMEOUT_SEC 600
#define STOP_TIMEOUT_MSEC 5000 /* SIGTERM to SIGKILL */
#define SINK_DRAIN_SEC 10      /* smtp-sink's sessions must end within this after the daemons stop */
#define BODY_LINES 12          /* 12 x 72 characters: a message of about 1 kB */
#define ISSUES_KEPT 3     /* warning/deferral lines quoted per run */
#define DEFAULT_REPEATS 3 /* a burst lasts about 2 s here: one alone is noisy */
#define REPEATS_MAX 20

typedef enum RunKind {
        RUN_UNCACHED,
        RUN_CACHED,
        RUN_ON_DEMAND,
        RUN_DISCARD,
        _RUN_MAX,
} RunKind;

typedef struct RunSpec {
        char letter;
        const char *name;
        bool smtp;   /* tern-smtp and smtp-sink; else tern-discard */
        bool scache; /* tern-scache running */
        const char *config;
} RunSpec;

static const RunSpec run_specs[_RUN_MAX] = {
        [RUN_UNCACHED] = {'a', "a) smtp, caching off", true, false,
                          "default_transport = smtp\nrelay_transport = smtp\n"
                          "smtp_connection_cache_on_demand = no\nsmtp_connection_cache_destinations =\n"},
        [RUN_CACHED] = {'b', "b) smtp, caching on (127.0.0.1)", true, true,
                        "default_transport = smtp\nrelay_transport = smtp\n"
                        "smtp_connection_cache_on_demand = no\n"
                        "smtp_connection_cache_destinations = 127.0.0.1\n"},
        [RUN_ON_DEMAND] = {'c', "c) smtp, caching on demand", true, true,
                           "default_transport = smtp\nrelay_transport = smtp\n"
                           "smtp_connection_cache_on_demand = yes\nsmtp_connection_cache_destinations =\n"},
        [RUN_DISCARD] = {'d', "d) tern-discard instead", false, false,
                         "default_transport = discard\nrelay_transport = discard\n"},
};

typedef struct Result {
        bool ran;
        size_t n;
        double seconds;
        double cpu_qmgr, cpu_agents, cpu_scache, cpu_sink; /* < 0: not measured */
        long sessions, quits, mesgs;                       /* smtp-sink's counters; -1: none */
        size_t sent, reused, agents;
        size_t warnings;           /* in this run; in the report, over every repetition */
        double rate_min, rate_max; /* in the report: over every repetition */
        unsigned repeats;
        char issue[ISSUES_KEPT][512];
} Result;

typedef struct Run {
        const RunSpec *spec;
        unsigned rep;
        char dir[300], spool[340], rt[340], config[340], notify[340], log[340], sink_out[340], sink_log[340],
                qmgr_sock[360];
        uint16_t port;
        BenchDaemon qmgr;
        pid_t agent, scache, sink;
        BenchLog tail; /* the daemons' log, read on from where the last read stopped */
        size_t removed, deferred, bounced;
        Result *res;
} Run;

static struct {
        const char *qmgr, *smtp, *scache, *discard;
        BenchPostfix pf;
        size_t n;
        uint8_t *file; /* the queue file copied for each message */
        size_t file_size;
} B;

/* ---- processes ------------------------------------------------------------------------------ */

/* check_alive - die when a daemon of the run has exited */
static void check_alive(const Run *r)
{
        const BenchProc procs[] = {
                {r->qmgr.pid, "tern-qmgr"},
                {r->agent, r->spec->smtp ? "tern-smtp" : "tern-discard"},
                {r->scache, "tern-scache"},
                {r->sink, "smtp-sink"},
        };

        bench_check_alive(procs, ELEMENTSOF(procs), r->spec->letter, r->dir);
}

/* ---- the spool -------------------------------------------------------------------------------- */

static void make_template(void)
{
        static const char *const headers[] = {"From: bench@sender.test",
                                              "To: rcpt@dest.test",
                                              "Subject: bench",
                                              "Message-ID: <bench@sender.test>",
                                              "Date: Thu, 1 Jan 2026 00:00:00 +0000",
                                              ""};
        char body[BODY_LINES][80];
        const char *lines[ELEMENTSOF(headers) + BODY_LINES];
        QueueBuf buf = {};

        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                if (i < ELEMENTSOF(headers)) {
                        lines[i] = headers[i];
                        continue;
                }
                memset(body[i - ELEMENTSOF(headers)], 'a' + (int) (i % 26), 72);
                body[i - ELEMENTSOF(headers)][72] = '\0';
                lines[i] = body[i - ELEMENTSOF(headers)];
        }
        bench_message(&buf, "rcpt@dest.test", lines, ELEMENTSOF(lines));
        B.file = buf.data;
        B.file_size = buf.size;
}

/* enqueue - N messages made durable through queue-store, then moved to hold/ */
static void enqueue(const Run *r, size_t n)
{
        char *const hashed[] = {(char *) "deferred", (char *) "defer", NULL};
        QueueStore *s = NULL;
        QueueNew *batch[ENQUEUE_BATCH];
        int k;

        k = queue_store_open(r->spool, hashed, 1, &s);
        if (k < 0)
                die("queue_store_open", k);
        for (size_t done = 0; done < n;) {
                size_t m = MIN((size_t) ENQUEUE_BATCH, n - done);
                bench_check_interrupted();
                for (size_t i = 0; i < m; i++) {
                        k = queue_new(s, &batch[i]);
                        if (k < 0)
                                die("queue_new", k);
                        k = queue_new_write(batch[i], B.file, B.file_size);
                        if (k < 0)
                                die("queue_new_write", k);
                }
                k = queue_store_commit(s, batch, m, NULL);
                if (k < 0)
                        die("queue_store_commit", k);
                for (size_t i = 0; i < m; i++) {
                        char id[QUEUE_ID_MAX];
                        snprintf(id, sizeof(id), "%s", queue_new_id(batch[i]));
                        queue_new_free(batch[i]);
                        k = queue_store_move(s, QUEUE_INCOMING, id, QUEUE_HOLD, -1);
                        if (k < 0)
                                die("queue_store_move", k);
                }
                done += m;
        }
        queue_store_free(s);
}

/* ---- smtp-sink -------------------------------------------------------------------------------- */

/* find_sink - smtp-sink under ROOT; when it is not there and ROOT is the build tree's, fetched
 * with tools/fetch-postfix.sh (a root given with -P is used as it is) */
static void find_sink(const char *root, bool fetch)
{
        static const char *const programs[] = {"smtp-sink", NULL};
        char path[600];

        if (bench_postfix_find(&B.pf, root, fetch ? TERN_SOURCE_ROOT "/tools/fetch-postfix.sh" : NULL,
                               programs))
                return;
        fprintf(stderr,
                "%s: smtp-sink is needed: Debian's postfix package, unpacked with tools/fetch-postfix.sh "
                "into %s\n",
                bench_name, root);
        snprintf(path, sizeof(path), "%s/usr/sbin/smtp-sink", root);
        die(path, ENOENT);
}

/* start_sink - smtp-sink on the run's port; the run's directory (sink.log) is kept if it does
 * not start */
static void start_sink(Run *r)
{
        bool keep = bench_session.keep;

        bench_session.keep = true;
        r->sink = bench_sink_start(&B.pf, r->port, SINK_BACKLOG, r->sink_out, r->sink_log);
        bench_session.keep = keep;
}

/* ---- tern-qmgr and its log ---------------------------------------------------------------- */

static void exec_qmgr(const void *userdata)
{
        const Run *r = userdata;
        int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0)
                dup2(fd, STDERR_FILENO);
        execl(B.qmgr, B.qmgr, "-c", r->config, (char *) NULL);
}

static void qmgr_call(const Run *r, const char *method, json_t *params, VarlinkReply *ret)
{
        VarlinkClient *c = NULL;
        int k;

        k = varlink_client_connect(r->qmgr_sock, &c);
        if (k < 0)
                die("connect to tern-qmgr", k);
        varlink_client_set_timeout(c, 60 * USEC_PER_SEC);
        k = varlink_client_call(c, method, params, NULL, 0, 0, ret);
        if (k != 0) {
                if (k > 0)
                        fprintf(stderr, "%s: %s: %s\n", bench_name, method, ret->error);
                die(method, k < 0 ? k : EPROTO);
        }
        varlink_client_free(c);
}

static void keep_issue(Result *res, const char *line)
{
        if (res->warnings < ISSUES_KEPT) {
                /* quoted up to the room there is: the start of a line says what it is */
                size_t len = MIN(strlen(line), sizeof(res->issue[0]) - 1);
                memcpy(res->issue[res->warnings], line, len);
                res->issue[res->warnings][len] = '\0';
        }
        res->warnings++;
}

/* log_line - one whole line of the daemons' log: what it says about the burst */
static void log_line(const char *line, size_t len, void *userdata)
{
        static const char removed[] = ": removed";
        Run *r = userdata;

        if (len >= sizeof(removed) - 1 && streq(line + len - (sizeof(removed) - 1), removed))
                r->removed++;
        else if (strstr(line, ", status=sent (")) {
                r->res->sent++;
                if (strstr(line, ", conn_use="))
                        r->res->reused++;
        } else if (strstr(line, ", status=deferred (") || strstr(line, ", status=bounced (")) {
                if (strstr(line, ", status=deferred ("))
                        r->deferred++;
                else
                        r->bounced++;
                fprintf(stderr, "%s: run %c: %s\n", bench_name, r->spec->letter, line);
                keep_issue(r->res, line);
        } else if (strstr(line, ": warning: ") || strstr(line, ": error: ") || strstr(line, ": fatal: ") ||
                   strstr(line, ": panic: "))
                keep_issue(r->res, line);
}

static void print_status(const Run *r)
{
        VarlinkReply reply = {};
        char *s;

        qmgr_call(r, "io.tern.Qmgr.Status", NULL, &reply);
        s = json_dumps(reply.parameters, JSON_INDENT(1) | JSON_COMPACT);
        fprintf(stderr, "%s: tern-qmgr's Status:\n%s\n", bench_name, strna(s));
        free(s);
        varlink_reply_done(&reply);
}

/* check_drained - Status: every queue empty, nothing in core; the transport's agent connections */
static void check_drained(const Run *r, const char *transport)
{
        static const char *const queues[] = {"incoming", "active", "deferred", "hold", "corrupt"};
        VarlinkReply reply = {};
        json_t *q, *t;
        size_t i;
        bool ok;

        qmgr_call(r, "io.tern.Qmgr.Status", NULL, &reply);
        q = json_object_get(reply.parameters, "queues");
        ok = q && json_integer_value(json_object_get(reply.parameters, "messages")) == 0;
        for (i = 0; ok && i < ELEMENTSOF(queues); i++)
                ok = json_is_integer(json_object_get(q, queues[i])) &&
                     json_integer_value(json_object_get(q, queues[i])) == 0;
        json_array_foreach (json_object_get(reply.parameters, "transports"), i, t)
                if (streq(strempty(json_string_value(json_object_get(t, "name"))), transport))
                        r->res->agents = (size_t) json_integer_value(json_object_get(t, "agents"));
        varlink_reply_done(&reply);
        if (!ok) {
                print_status(r);
                bench_session.keep = true;
                die("the queue is not empty after every message was removed", EPROTO);
        }
}

/* ---- one run ---------------------------------------------------------------------------------- */

static void run_setup(Run *r)
{
        FILE *f;

        snprintf(r->dir, sizeof(r->dir), "%s/%c%u", bench_session.dir, r->spec->letter, r->rep + 1);
        snprintf(r->spool, sizeof(r->spool), "%s/spool", r->dir);
        snprintf(r->rt, sizeof(r->rt), "%s/run", r->dir);
        snprintf(r->config, sizeof(r->config), "%s/main.cf", r->dir);
        snprintf(r->notify, sizeof(r->notify), "%s/notify", r->dir);
        snprintf(r->log, sizeof(r->log), "%s/daemons.log", r->dir);
        snprintf(r->sink_out, sizeof(r->sink_out), "%s/sink.out", r->dir);
        snprintf(r->sink_log, sizeof(r->sink_log), "%s/sink.log", r->dir);
        snprintf(r->qmgr_sock, sizeof(r->qmgr_sock), "%s/qmgr", r->rt);
        if (mkdir(r->dir, 0755) < 0 || mkdir(r->spool, 0700) < 0 || mkdir(r->rt, 0700) < 0)
                die("mkdir", errno);
        r->port = bench_free_port();
        f = fopen(r->config, "we");
        if (!f)
                die(r->config, errno);
        /* nothing can leave the machine: every non-local address goes to 127.0.0.1:PORT */
        fprintf(f,
                "# written by bench-smtp: run %s\nqueue_directory = %s\nruntime_directory = %s\n"
                "myhostname = bench.test\nmydestination = localhost\ninet_interfaces = loopback-only\n"
                "inet_protocols = ipv4\nrelay_domains =\nrelayhost = [127.0.0.1]:%u\n"
                "local_transport = discard\nqueue_run_delay = 3600s\nmax_idle = 3600s\n"
                "max_use = 1000000\ndefault_destination_concurrency_limit = %d\n%s",
                r->spec->name, r->spool, r->rt, r->port, CONCURRENCY_LIMIT, r->spec->config);
        fclose(f);
}

/* run_stop - stop the tern daemons (qmgr first: its agents see their connections end), so that
 * every session with smtp-sink is closed; then read smtp-sink's last counters and stop it */
static void run_stop(Run *r)
{
        (void) bench_daemon_stop(&r->qmgr);
        r->qmgr.pid = 0;
        bench_stop_under(bench_session.main_pid, r->sink, STOP_TIMEOUT_MSEC);
        r->agent = r->scache = 0;
        if (r->sink <= 0)
                return;
        uint64_t t0 = now_nsec();
        for (;;) {
                size_t listening, sessions;
                bench_tcp_count(r->port, &listening, &sessions);
                if (sessions == 0)
                        break;
                if (seconds_since(t0) > SINK_DRAIN_SEC) {
                        fprintf(stderr, "%s: run %c: smtp-sink still has %zu sessions %d s after the end\n",
                                bench_name, r->spec->letter, sessions, SINK_DRAIN_SEC);
                        break;
                }
                usleep(POLL_USEC);
        }
        /* smtp-sink's disconnect() counts the session and writes the counters (flushed) before it
         * closes the socket: with no session left, the last counters are in the file */
        BenchSinkCounters c = bench_sink_counters(r->sink_out);
        r->res->sessions = c.sess;
        r->res->quits = c.quit;
        r->res->mesgs = c.mesg;
        bench_stop_under(bench_session.main_pid, 0, STOP_TIMEOUT_MSEC);
        r->sink = 0;
}

static void run_one(const RunSpec *spec, unsigned rep, Result *res)
{
        Run r = {.spec = spec, .rep = rep, .res = res};
        VarlinkReply reply = {};
        double cpu0_qmgr, cpu0_agent, cpu0_scache = 0, cpu0_sink = 0;
        uint64_t t0, last_progress;
        size_t last_removed = 0;
        const char *transport = spec->smtp ? "smtp" : "discard";

        *res = (Result){.ran = true,
                        .n = B.n,
                        .cpu_scache = -1,
                        .cpu_sink = -1,
                        .sessions = -1,
                        .quits = -1,
                        .mesgs = -1};
        run_setup(&r);
        fprintf(stderr, "%s: run %s (%u): writing %zu messages into hold/...\n", bench_name, spec->name,
                rep + 1, B.n);
        enqueue(&r, B.n);
        bench_syncfs(r.spool);
        if (bench_queue_files(r.spool, "hold") != B.n)
                die("hold/ does not hold the burst", EIO);

        if (spec->smtp)
                start_sink(&r);
        if (spec->scache)
                r.scache = bench_agent_start(B.scache, r.config, r.log, r.rt, "scache");
        r.agent = bench_agent_start(spec->smtp ? B.smtp : B.discard, r.config, r.log, r.rt, transport);
        bench_daemon_start(&r.qmgr, "tern-qmgr", r.notify, exec_qmgr, &r);

        fprintf(stderr, "%s: run %s (%u): releasing the burst...\n", bench_name, spec->name, rep + 1);
        cpu0_qmgr = bench_cpu_seconds(r.qmgr.daemon);
        cpu0_agent = bench_tree_cpu_seconds(r.agent);
        if (r.scache > 0)
                cpu0_scache = bench_cpu_seconds(r.scache);
        if (r.sink > 0)
                cpu0_sink = bench_cpu_seconds(r.sink);
        /* the log is read from here on: start-up lines (qmgr's RLIMIT_NOFILE note) are not the burst's */
        bench_log_open(&r.tail, r.log);
        t0 = last_progress = now_nsec();
        qmgr_call(&r, "io.tern.Queue.Requeue",
                  json_pack("{s:{s:s, s:b}}", "filter", "queue", "hold", "all", 1), &reply);
        varlink_reply_done(&reply);
        for (;;) {
                bench_log_read(&r.tail, log_line, &r);
                if (r.removed >= B.n)
                        break;
                if (r.deferred + r.bounced > 0) {
                        bench_session.keep = true;
                        fprintf(stderr,
                                "%s: run %c: %zu deferred, %zu bounced after %.1f s (%zu of %zu "
                                "removed); logs in %s\n",
                                bench_name, spec->letter, r.deferred, r.bounced, seconds_since(t0),
                                r.removed, B.n, r.dir);
                        print_status(&r);
                        die("not every message was delivered", EIO);
                }
                if (r.removed != last_removed) {
                        last_removed = r.removed;
                        last_progress = now_nsec();
                } else if (seconds_since(last_progress) > STALL_SEC || seconds_since(t0) > RUN_TIMEOUT_SEC) {
                        bench_session.keep = true;
                        fprintf(stderr,
                                "%s: run %c: stalled: %zu of %zu removed after %.1f s, none in the last "
                                "%d s; logs in %s\n",
                                bench_name, spec->letter, r.removed, B.n, seconds_since(t0), STALL_SEC,
                                r.dir);
                        print_status(&r);
                        die("the burst did not finish", ETIMEDOUT);
                }
                check_alive(&r);
                bench_check_interrupted();
                usleep(POLL_USEC);
        }
        res->seconds = seconds_since(t0);
        res->cpu_qmgr = bench_cpu_seconds(r.qmgr.daemon) - cpu0_qmgr;
        res->cpu_agents = bench_tree_cpu_seconds(r.agent) - cpu0_agent;
        if (r.scache > 0)
                res->cpu_scache = bench_cpu_seconds(r.scache) - cpu0_scache;
        if (r.sink > 0)
                res->cpu_sink = bench_cpu_seconds(r.sink) - cpu0_sink;
        if (r.removed != B.n)
                die("more messages removed than were queued", EPROTO);
        check_drained(&r, transport);
        if (spec->smtp && res->sent != B.n) {
                fprintf(stderr, "%s: run %c: tern-smtp logged %zu deliveries as sent, not %zu\n", bench_name,
                        spec->letter, res->sent, B.n);
                bench_session.keep = true;
                die("deliveries missing from the log", EPROTO);
        }
        run_stop(&r);
        if (spec->smtp && res->mesgs != (long) B.n) {
                fprintf(stderr,
                        "%s: run %c: smtp-sink received %ld messages, not %zu (sessions %ld); see %s\n",
                        bench_name, spec->letter, res->mesgs, B.n, res->sessions, r.dir);
                bench_session.keep = true;
                die("smtp-sink did not get every message exactly once", EPROTO);
        }
        /* the spool is not needed any more: give the next run's writes a quiet disk */
        if (!bench_session.keep) {
                char cmd[400];
                snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", r.spool);
                if (system(cmd) != 0)
                        fprintf(stderr, "%s: could not remove %s\n", bench_name, r.spool);
        }
}

/* ---- the report ------------------------------------------------------------------------------- */

static double rate(const Result *r)
{
        return (double) r->n / r->seconds;
}

static int cmp_rate(const void *a, const void *b)
{
        double x = rate(*(const Result *const *) a), y = rate(*(const Result *const *) b);
        return x < y ? -1 : x > y;
}

/* median_result - the repetition with the median rate (the lower middle one of an even number),
 * with the range of rates and the warnings of them all (the quoted lines: the first ones) */
static Result median_result(const Result *all, unsigned n)
{
        const Result *sorted[REPEATS_MAX];
        Result m;
        size_t warnings = 0;

        for (unsigned i = 0; i < n; i++)
                sorted[i] = &all[i];
        qsort(sorted, n, sizeof(sorted[0]), cmp_rate);
        m = *sorted[(n - 1) / 2];
        m.rate_min = rate(sorted[0]);
        m.rate_max = rate(sorted[n - 1]);
        m.repeats = n;
        for (unsigned i = 0; i < n; i++) {
                if (all[i].warnings > 0 && warnings == 0)
                        memcpy(m.issue, all[i].issue, sizeof(m.issue));
                warnings += all[i].warnings;
        }
        m.warnings = warnings;
        return m;
}

static void fmt_cpu(char *buf, size_t size, double cpu)
{
        if (cpu < 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.2f", cpu);
}

static void report(const Result *res)
{
        unsigned repeats = 0;

        printf("\ntern-smtp: a burst of %zu one-recipient messages (%zu-byte queue files) released from\n"
               "hold at once, delivered by tern-qmgr through one destination ([127.0.0.1]:port,\n"
               "concurrency limit %d) to Postfix's smtp-sink\n\n",
               B.n, B.file_size, CONCURRENCY_LIMIT);
        printf("%-32s %7s %11s %7s %8s %6s %6s %6s %8s %9s %6s %8s\n", "run", "msgs/s", "range", "seconds",
               "sessions", "QUITs", "reused", "agents", "qmgr CPU", "agent CPU", "scache", "sink CPU");
        for (RunKind k = 0; k < _RUN_MAX; k++) {
                char sess[32] = "-", quits[32] = "-", reused[32] = "-", range[48], c1[32], c2[32], c3[32],
                     c4[32];
                if (!res[k].ran)
                        continue;
                if (res[k].sessions >= 0)
                        snprintf(sess, sizeof(sess), "%ld", res[k].sessions);
                if (res[k].quits >= 0)
                        snprintf(quits, sizeof(quits), "%ld", res[k].quits);
                if (run_specs[k].smtp)
                        snprintf(reused, sizeof(reused), "%zu", res[k].reused);
                snprintf(range, sizeof(range), "%.0f-%.0f", res[k].rate_min, res[k].rate_max);
                fmt_cpu(c1, sizeof(c1), res[k].cpu_qmgr);
                fmt_cpu(c2, sizeof(c2), res[k].cpu_agents);
                fmt_cpu(c3, sizeof(c3), res[k].cpu_scache);
                fmt_cpu(c4, sizeof(c4), res[k].cpu_sink);
                printf("%-32s %7.0f %11s %7.2f %8s %6s %6s %6zu %8s %9s %6s %8s\n", run_specs[k].name,
                       rate(&res[k]), range, res[k].seconds, sess, quits, reused, res[k].agents, c1, c2, c3,
                       c4);
        }
        for (RunKind k = 0; k < _RUN_MAX; k++)
                if (res[k].ran)
                        repeats = res[k].repeats;
        printf("(repetitions of each run: %u, each on a fresh spool; shown: the median one by rate\n",
               repeats);
        printf(" and the range of all. msgs/s: from the Requeue of hold/ until qmgr logged every\n"
               " message removed; sessions: the connections smtp-sink saw, all ended by then; QUITs:\n"
               " those ended with QUIT; reused: deliveries tern-smtp logged with conn_use=; agents:\n"
               " qmgr's connections to the transport's agents at the end; CPU: utime+stime seconds\n"
               " over the burst, the agent with its per-connection children)\n");
        for (RunKind k = 0; k < _RUN_MAX; k++) {
                if (!res[k].ran || res[k].warnings == 0)
                        continue;
                printf("%s: %zu warning/error lines in the daemons' logs over the repetitions, e.g.:\n",
                       run_specs[k].name, res[k].warnings);
                for (size_t i = 0; i < MIN(res[k].warnings, (size_t) ISSUES_KEPT); i++)
                        printf("  %s\n", res[k].issue[i]);
        }

        printf("\nPostfix on this machine (the issue's figures, not measured here): the same burst\n"
               "released at once, 1,355 msgs/s to smtp-sink; a 2,000-message burst used %d connections\n"
               "with caching; caching %.2f x the uncached rate\n",
               POSTFIX_CACHED_CONNS, POSTFIX_CACHE_RATIO);
        for (RunKind k = 0; k < _RUN_MAX; k++)
                if (res[k].ran)
                        printf("%-34s %.2f x Postfix's rate\n", run_specs[k].name,
                               rate(&res[k]) / POSTFIX_RATE);
        if (res[RUN_UNCACHED].ran) {
                double base = rate(&res[RUN_UNCACHED]);
                if (res[RUN_CACHED].ran)
                        printf("cached / uncached:    %.2f (Postfix: %.2f)\n", rate(&res[RUN_CACHED]) / base,
                               POSTFIX_CACHE_RATIO);
                if (res[RUN_ON_DEMAND].ran)
                        printf("on demand / uncached: %.2f\n", rate(&res[RUN_ON_DEMAND]) / base);
        }
        if (res[RUN_DISCARD].ran)
                for (RunKind k = 0; k < RUN_DISCARD; k++)
                        if (res[k].ran)
                                printf("%-34s %.2f of qmgr's ceiling through discard\n", run_specs[k].name,
                                       rate(&res[k]) / rate(&res[RUN_DISCARD]));

        printf("\ngoal: >= 2x Postfix (2,710 msg/s):");
        for (RunKind k = 0; k < RUN_DISCARD; k++)
                if (res[k].ran)
                        printf(" %c) %.0f %s;", run_specs[k].letter, rate(&res[k]),
                               rate(&res[k]) >= GOAL_RATE ? "yes" : "no");
        printf("\ngoal: caching >= uncached:");
        if (!res[RUN_UNCACHED].ran)
                printf(" (run a not made)");
        else
                for (RunKind k = RUN_CACHED; k <= RUN_ON_DEMAND; k++)
                        if (res[k].ran)
                                printf(" %c) %.2f x %s;", run_specs[k].letter,
                                       rate(&res[k]) / rate(&res[RUN_UNCACHED]),
                                       rate(&res[k]) >= rate(&res[RUN_UNCACHED]) ? "yes" : "no");
        printf("\n");
        fflush(stdout);
}

int main(int argc, char **argv)
{
        const char *base = "/var/tmp", *runs = "abcd", *postfix_root = NULL;
        static Result all[_RUN_MAX][REPEATS_MAX];
        Result res[_RUN_MAX] = {};
        unsigned repeats = DEFAULT_REPEATS;
        int opt;

        B.n = DEFAULT_MESSAGES;
        while ((opt = getopt(argc, argv, "n:R:r:d:P:K")) > 0) {
                switch (opt) {
                case 'n':
                        B.n = (size_t) strtoul(optarg, NULL, 10);
                        break;
                case 'R':
                        repeats = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'r':
                        runs = optarg;
                        break;
                case 'd':
                        base = optarg;
                        break;
                case 'P':
                        postfix_root = optarg;
                        break;
                case 'K':
                        bench_session.keep = true;
                        break;
                default:
                        return 2;
                }
        }
        if (optind + 4 != argc || B.n == 0 || repeats == 0 || repeats > REPEATS_MAX ||
            strspn(runs, "abcd") != strlen(runs) || !*runs) {
                fprintf(stderr,
                        "usage: bench-smtp [-n MESSAGES] [-R REPEATS (1-%d)] [-r RUNS (of abcd)] [-d DIR] "
                        "[-P POSTFIX_ROOT] [-K] TERN_QMGR TERN_SMTP TERN_SCACHE TERN_DISCARD\n",
                        REPEATS_MAX);
                return 2;
        }
        B.qmgr = argv[optind];
        B.smtp = argv[optind + 1];
        B.scache = argv[optind + 2];
        B.discard = argv[optind + 3];
        if (strpbrk(runs, "abc"))
                find_sink(postfix_root ?: TERN_BUILD_ROOT "/postfix-root", !postfix_root);

        bench_session_start(base, STOP_TIMEOUT_MSEC);
        setenv("TERN_LOG", "stderr", 1);
        make_template();

        for (unsigned i = 0; i < repeats; i++)
                for (RunKind k = 0; k < _RUN_MAX; k++)
                        if (strchr(runs, run_specs[k].letter))
                                run_one(&run_specs[k], i, &all[k][i]);
        for (RunKind k = 0; k < _RUN_MAX; k++)
                if (strchr(runs, run_specs[k].letter))
                        res[k] = median_result(all[k], repeats);
        report(res);
        free(B.file);
        return 0;
}
