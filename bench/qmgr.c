/* SPDX-License-Identifier: MIT */
/*
 * bench/qmgr.c - tern-qmgr's delivery rate, CPU and memory, and its start-up with a large
 * deferred queue
 *
 * Usage: bench-qmgr [-n MESSAGES]... [-s STARTUP_DEFERRED] [-d DIR] TERN_QMGR TERN_DISCARD
 *
 * Everything happens in a temporary directory under DIR (default /var/tmp: a disk). In one run:
 *   baseline      the spool work one message needs at the least, without scheduling or IPC:
 *                 rename incoming -> active, open, read the file, close, unlink, for MESSAGES
 *                 files in one loop. What the file system costs here.
 *   burst N       N small messages (one recipient, routed to tern-discard) made with
 *                 queue-store's own durable writes into hold/ while tern-qmgr is not running;
 *                 then tern-qmgr and tern-discard start, and one io.tern.Queue.Requeue moves
 *                 all of them to incoming at once (what Postfix's "postsuper -r ALL hold" /
 *                 release of held mail does). Timed from that call until incoming, active and
 *                 hold are empty (every message delivered through discard and removed): the
 *                 daemons' log is read on every 10 ms for qmgr's "removed" lines (cheaper than
 *                 listing directories of 100,000 files), then the queues are checked empty.
 *                 qmgr's CPU seconds (utime + stime from
 *                 /proc) over the burst, and its peak RSS (VmHWM).
 *   startup       STARTUP_DEFERRED messages in deferred/ with their next attempt an hour
 *                 away; time from exec to READY=1, and until Status says the deferred scan has
 *                 walked them all; RSS then (memory must follow the active limit, not the
 *                 queue size).
 * The reference: Postfix's qmgr on this machine, 10,000 held messages released at once,
 * 2,892 messages/s through discard, about 1.4 CPU seconds per 10,000, RSS 25 MB; goal: at least
 * twice the rate, memory bounded by the active limit. The ratio to that figure is printed, and
 * the ratio to the same-run baseline.
 *
 * Limits: one machine and whatever else it runs; tern-discard's processes and the journal-less
 * stderr logging (to a file) are part of what is measured. Measure a release build.
 */
#include <dirent.h>
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
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "json-util.h"
#include "macro.h"
#include "queue-file.h"
#include "queue-store.h"
#include "varlink.h"

const char *const bench_name = "bench-qmgr";

/* Postfix's qmgr on this machine, as the issue gives it */
#define POSTFIX_RATE 2892.0
#define POSTFIX_CPU_PER_10K 1.4
#define POSTFIX_RSS_MB 25.0
#define POLL_USEC 10000
#define RUN_TIMEOUT_SEC 600
#define ENQUEUE_BATCH 256
#define SIZES_MAX 4

typedef struct Bench {
        char dir[256], spool[300], rt[300], config[300], notify[300], log[300];
        const char *qmgr, *discard;
        uint8_t *file;                  /* one queue file, copied for each message */
        BenchLog tail;                  /* the daemons' log, as far as count_removed() has read it */
        size_t file_size;
} Bench;

static void make_template(Bench *b)
{
        static const char *const lines[] = {"From: bench@sender.test", "To: rcpt@dest.test", "Subject: bench", "",
                                            "A small message."};
        QueueBuf buf = {};

        bench_message(&buf, "rcpt@dest.test", lines, ELEMENTSOF(lines));
        b->file = buf.data;
        b->file_size = buf.size;
}

/* enqueue - N messages made durable through queue-store, then moved to TO (with NEXT_ATTEMPT) */
static void enqueue(Bench *b, size_t n, QueueName to, int64_t next_attempt)
{
        char *const hashed[] = { (char *) "deferred", (char *) "defer", NULL };
        QueueStore *s = NULL;
        QueueNew *batch[ENQUEUE_BATCH];
        int r;

        r = queue_store_open(b->spool, hashed, 1, &s);
        if (r < 0)
                die("queue_store_open", r);
        for (size_t done = 0; done < n;) {
                size_t k = MIN((size_t) ENQUEUE_BATCH, n - done);
                for (size_t i = 0; i < k; i++) {
                        r = queue_new(s, &batch[i]);
                        if (r < 0)
                                die("queue_new", r);
                        if (write(queue_new_fd(batch[i]), b->file, b->file_size) != (ssize_t) b->file_size)
                                die("write", errno);
                }
                r = queue_store_commit(s, batch, k, NULL);
                if (r < 0)
                        die("queue_store_commit", r);
                for (size_t i = 0; i < k; i++) {
                        char id[QUEUE_ID_MAX];
                        snprintf(id, sizeof(id), "%s", queue_new_id(batch[i]));
                        queue_new_free(batch[i]);
                        r = queue_store_move(s, QUEUE_INCOMING, id, to, next_attempt);
                        if (r < 0)
                                die("queue_store_move", r);
                }
                done += k;
        }
        queue_store_free(s);
}

static void count_removed_line(const char *line, size_t len, void *userdata)
{
        static const char removed[] = ": removed";
        size_t *n = userdata;

        if (len >= sizeof(removed) - 1 && streq(line + len - (sizeof(removed) - 1), removed))
                (*n)++;
}

/* count_removed - "ID: removed" lines qmgr logged since the last call: the log is read on from
 * where the last call stopped, so polling costs what was written, not the queue's size (listing
 * a 100,000-file directory every 10 ms would compete with qmgr for the CPUs) */
static size_t count_removed(Bench *b)
{
        size_t n = 0;

        bench_log_read(&b->tail, count_removed_line, &n);
        return n;
}

static void exec_qmgr(const void *userdata)
{
        const Bench *b = userdata;
        int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0)
                dup2(fd, STDERR_FILENO);
        execl(b->qmgr, b->qmgr, "-c", b->config, (char *) NULL);
}

static pid_t start_discard(const Bench *b)
{
        return bench_agent_start(b->discard, b->config, b->log, b->rt, "discard");
}

static void qmgr_call(const Bench *b, const char *method, json_t *params, VarlinkReply *ret)
{
        char sock[400];
        VarlinkClient *c = NULL;
        int r;

        snprintf(sock, sizeof(sock), "%s/qmgr", b->rt);
        r = varlink_client_connect(sock, &c);
        if (r < 0)
                die("connect to tern-qmgr", r);
        varlink_client_set_timeout(c, 60 * USEC_PER_SEC);
        r = varlink_client_call(c, method, params, NULL, 0, 0, ret);
        if (r != 0)
                die(method, r < 0 ? r : EPROTO);
        varlink_client_free(c);
}

typedef struct Burst {
        size_t n;
        double seconds, cpu, rss_mb;
} Burst;

static void run_burst(Bench *b, size_t n, Burst *ret)
{
        BenchDaemon qmgr;
        VarlinkReply reply = {};
        pid_t discard;
        uint64_t t0;
        double cpu0;

        enqueue(b, n, QUEUE_HOLD, -1);
        (void) unlink(b->log);
        bench_log_open(&b->tail, b->log); /* from 0: the file is not there */
        discard = start_discard(b);
        bench_daemon_start(&qmgr, "tern-qmgr", b->notify, exec_qmgr, b);

        cpu0 = bench_cpu_seconds(qmgr.daemon);
        t0 = now_nsec();
        qmgr_call(b, "io.tern.Queue.Requeue", json_pack("{s:{s:s, s:b}}", "filter", "queue", "hold", "all", 1),
                  &reply);
        varlink_reply_done(&reply);
        for (size_t removed = 0;;) {
                removed += count_removed(b);
                if (removed >= n)
                        break;
                if (seconds_since(t0) > RUN_TIMEOUT_SEC)
                        die("the burst did not finish", ETIMEDOUT);
                usleep(POLL_USEC);
        }
        if (bench_queue_files(b->spool, "hold") + bench_queue_files(b->spool, "incoming") + bench_queue_files(b->spool, "active") != 0)
                die("messages left in the queue after the burst", EIO);
        ret->n = n;
        ret->seconds = seconds_since(t0);
        ret->cpu = bench_cpu_seconds(qmgr.daemon) - cpu0;
        ret->rss_mb = (double) proc_status_kib(qmgr.daemon, "VmHWM") / 1024.0;
        if (bench_queue_files(b->spool, "deferred") != 0)
                die("messages were deferred in the burst", EIO);
        (void) bench_daemon_stop(&qmgr);
        bench_pid_stop(discard);
}

/* baseline - rename to active, open, read, close, unlink, per file */
static double run_baseline(Bench *b, size_t n)
{
        char inc[400], act[400], from[500], to[500];
        uint8_t buf[4096];
        uint64_t t0;

        enqueue(b, n, QUEUE_INCOMING, -1);
        snprintf(inc, sizeof(inc), "%s/incoming", b->spool);
        snprintf(act, sizeof(act), "%s/active", b->spool);
        DIR *d = opendir(inc);
        char (*names)[QUEUE_ID_MAX] = calloc(n, QUEUE_ID_MAX);
        size_t k = 0;
        struct dirent *de;
        if (!d || !names)
                die("baseline", ENOMEM);
        while ((de = readdir(d)) && k < n)
                if (de->d_name[0] != '.')
                        snprintf(names[k++], QUEUE_ID_MAX, "%.*s", QUEUE_ID_MAX - 1, de->d_name);
        closedir(d);

        t0 = now_nsec();
        for (size_t i = 0; i < k; i++) {
                snprintf(from, sizeof(from), "%s/%s", inc, names[i]);
                snprintf(to, sizeof(to), "%s/%s", act, names[i]);
                if (rename(from, to) < 0)
                        die("rename", errno);
                int fd = open(to, O_RDWR | O_CLOEXEC);
                if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
                        die("open/read", errno);
                close(fd);
                if (unlink(to) < 0)
                        die("unlink", errno);
        }
        double s = seconds_since(t0);
        free(names);
        return (double) k / s;
}

static void run_startup(Bench *b, size_t n, double *ret_ready, double *ret_scanned, double *ret_rss)
{
        BenchDaemon qmgr;
        uint64_t t0;

        enqueue(b, n, QUEUE_DEFERRED, (int64_t) time(NULL) + 3600);
        t0 = now_nsec();
        bench_daemon_start(&qmgr, "tern-qmgr", b->notify, exec_qmgr, b);
        *ret_ready = seconds_since(t0);
        for (;;) {
                VarlinkReply reply = {};
                json_t *scan;
                qmgr_call(b, "io.tern.Qmgr.Status", NULL, &reply);
                scan = json_object_get(json_object_get(reply.parameters, "scans"), "deferred");
                bool done = scan && !json_is_true(json_object_get(scan, "running")) &&
                            json_integer_value(json_object_get(scan, "lastFiles")) >= (json_int_t) n;
                varlink_reply_done(&reply);
                if (done)
                        break;
                if (seconds_since(t0) > RUN_TIMEOUT_SEC)
                        die("the deferred scan did not finish", ETIMEDOUT);
                /* Status counts the queue directories: polled less often than the burst is */
                usleep(5 * POLL_USEC);
        }
        *ret_scanned = seconds_since(t0);
        *ret_rss = (double) proc_status_kib(qmgr.daemon, "VmHWM") / 1024.0;
        (void) bench_daemon_stop(&qmgr);
}

int main(int argc, char **argv)
{
        size_t sizes[SIZES_MAX], n_sizes = 0, startup_n = 100000;
        const char *base = "/var/tmp";
        Bench b = {};
        Burst bursts[SIZES_MAX];
        double baseline, ready, scanned, startup_rss;
        int opt;

        while ((opt = getopt(argc, argv, "n:s:d:")) > 0) {
                switch (opt) {
                case 'n':
                        if (n_sizes < SIZES_MAX)
                                sizes[n_sizes++] = (size_t) strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        startup_n = (size_t) strtoul(optarg, NULL, 10);
                        break;
                case 'd':
                        base = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (optind + 2 != argc) {
                fprintf(stderr, "usage: bench-qmgr [-n MESSAGES]... [-s DEFERRED] [-d DIR] TERN_QMGR TERN_DISCARD\n");
                return 2;
        }
        b.qmgr = argv[optind];
        b.discard = argv[optind + 1];
        if (n_sizes == 0) {
                sizes[n_sizes++] = 10000;
                sizes[n_sizes++] = 100000;
        }

        snprintf(b.dir, sizeof(b.dir), "%s/tern-bench-qmgr.XXXXXX", base);
        if (!mkdtemp(b.dir))
                die("mkdtemp", errno);
        snprintf(b.spool, sizeof(b.spool), "%s/spool", b.dir);
        snprintf(b.rt, sizeof(b.rt), "%s/run", b.dir);
        snprintf(b.config, sizeof(b.config), "%s/main.cf", b.dir);
        snprintf(b.notify, sizeof(b.notify), "%s/notify", b.dir);
        snprintf(b.log, sizeof(b.log), "%s/daemons.log", b.dir);
        if (mkdir(b.spool, 0700) < 0 || mkdir(b.rt, 0700) < 0)
                die("mkdir", errno);
        FILE *f = fopen(b.config, "we");
        if (!f)
                die(b.config, errno);
        /* nothing can leave the machine: every class of address goes to discard */
        fprintf(f, "# written by bench-qmgr\nqueue_directory = %s\nruntime_directory = %s\n"
                   "myhostname = bench.test\nmydestination = localhost\ndefault_transport = discard\n"
                   "relay_transport = discard\nlocal_transport = discard\nrelayhost =\n",
                b.spool, b.rt);
        fclose(f);
        make_template(&b);
        setenv("TERN_LOG", "stderr", 1);

        baseline = run_baseline(&b, sizes[0]);
        for (size_t i = 0; i < n_sizes; i++)
                run_burst(&b, sizes[i], &bursts[i]);
        run_startup(&b, startup_n, &ready, &scanned, &startup_rss);

        printf("\ntern-qmgr: bursts of small messages released from hold at once, delivered through "
               "tern-discard\n\n");
        printf("%-34s %9s %10s %9s %11s %9s %9s\n", "case", "messages", "msgs/s", "CPU s", "CPU s/10k",
               "RSS MB", "vs base");
        printf("%-34s %9zu %10.0f %9s %11s %9s %9s\n", "baseline (spool work only)", sizes[0], baseline, "-", "-",
               "-", "1.00 x");
        for (size_t i = 0; i < n_sizes; i++) {
                double rate = (double) bursts[i].n / bursts[i].seconds;
                char name[64];
                snprintf(name, sizeof(name), "burst %zu", bursts[i].n);
                printf("%-34s %9zu %10.0f %9.2f %11.2f %9.1f %7.2f x\n", name, bursts[i].n, rate, bursts[i].cpu,
                       bursts[i].cpu * 10000.0 / (double) bursts[i].n, bursts[i].rss_mb, rate / baseline);
        }
        printf("\nstart-up with %zu deferred messages: READY=1 after %.2f s, deferred scan done after %.2f s, "
               "RSS %.1f MB\n", startup_n, ready, scanned, startup_rss);
        double rate10k = (double) bursts[0].n / bursts[0].seconds;
        printf("\nPostfix's qmgr (issue's figure, %zu held released): %.0f msgs/s, %.1f CPU s/10k, RSS %.0f MB\n",
               (size_t) 10000, POSTFIX_RATE, POSTFIX_CPU_PER_10K, POSTFIX_RSS_MB);
        printf("tern-qmgr burst %zu: %.2f x Postfix's rate (goal: >= 2.00 x): %s\n", bursts[0].n,
               rate10k / POSTFIX_RATE, rate10k >= 2 * POSTFIX_RATE ? "met" : "NOT met");

        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", b.dir);
        if (system(cmd) != 0)
                fprintf(stderr, "bench-qmgr: could not remove %s\n", b.dir);
        free(b.file);
        return 0;
}
