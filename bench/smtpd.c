/* SPDX-License-Identifier: MIT */
/*
 * bench/smtpd.c - tern-smtpd's receiving rate from Postfix's smtp-source, end to end through
 * tern-qmgr and tern-smtp to smtp-sink and into tern-discard, and its ETRN latency, beside
 * baselines measured in the same run and Postfix's figures from the issue
 *
 * Usage: bench-smtpd [-n MESSAGES] [-R REPEATS] [-r RUNS] [-e ETRN_TRIES] [-w WRITES] [-d DIR]
 *                    [-P POSTFIX_ROOT] [-K]
 *                    TERN_SMTPD TERN_QMGR TERN_SMTP TERN_DISCARD TERN_FLUSH [TERN_ERROR]
 * (-n: messages per run, default 10,000; -R: how many times runs k f a b are made, default 3,
 * interleaved (k f a b k f a b ...), each figure reported for every repetition and as the median;
 * -r: which runs, as letters, default "kfabte"; -e: ETRN tries, default 5; -w: durable writes in
 * run f, default 2,000; -K: keep the temporary directory (daemons' logs, smtp-sink's and
 * smtp-source's output, perf's and strace's) and say where it is; POSTFIX_ROOT: Debian's postfix
 * package unpacked, default TERN_BUILD_ROOT/postfix-root, fetched with tools/fetch-postfix.sh when
 * smtp-source or smtp-sink is not there; exits 77 (skipped) when they cannot be had. TERN_ERROR
 * is accepted for the benchmark's registration and not used: the deferrals of run e come from
 * a closed port, as in real life.)
 *
 * The client is always Postfix's smtp-source, as in the issue's reference measurement:
 *   smtp-source -c -s 20 -m MESSAGES -l 1024 -M bench.test -f sender@client.test
 *               -t rcpt@relay.test 127.0.0.1:PORT
 * 20 sessions in parallel, one message per connection (its default), 1,024 bytes of payload;
 * -M only fixes the HELO name (no host name of the machine is used), -c writes its count, checked
 * here. smtp-source exits non-zero on any reply it did not expect, so its exit status 0 means every
 * message got its 250.
 *
 * Each run has a directory of its own under DIR (default /var/tmp: a disk; a tmpfs would make
 * fsync free): spool/, run/ (runtime_directory), main.cf, daemons.log (every tern daemon's
 * stderr, TERN_LOG=stderr), sink.out/sink.log, source.out/source.log. Before each timed part the
 * file system is synced (syncfs), so that the previous run's write-back is not timed. The runs:
 *   k  baseline: smtp-source straight into smtp-sink (-c, backlog 1000): what the client and
 *      loopback TCP can do on this machine, the ceiling of every other run. Timed: smtp-source.
 *   f  baseline: create + write + fsync + rename of WRITES 1 kB files, one stream, in the spool's
 *      incoming/ (bench_durable_writes): the per-file fsync rate that a server doing one fsync per
 *      message (Postfix's cleanup) cannot beat, and that group commit must.
 *   a  smtp-source -> tern-smtpd -> tern-qmgr -> tern-smtp -> smtp-sink: relayhost =
 *      [127.0.0.1]:SINKPORT, default and relay transport smtp, connection caching off
 *      (smtp_connection_cache_on_demand = no: no tern-scache is needed; bench-smtp has the cached
 *      variants), default_destination_concurrency_limit 20 (Postfix's default).
 *   b  the same into tern-discard (default_transport = discard): tern-smtpd and tern-qmgr alone.
 *   t  run a once more with tern-smtpd under `strace -f -y --seccomp-bpf -e trace=fsync,fdatasync,
 *      syncfs` (only those syscalls stop the daemon): its group commits, counted exactly: each
 *      batch ends with one fsync of incoming/ (queue-store.c: fsync or syncfs of the files, the
 *      renames, then the directory), so the batches are the fsyncs of incoming/, and the
 *      messages per batch are MESSAGES / batches; with -T, the time inside those calls, during
 *      which tern-smtpd's event loop serves no session. Its rates are shown, slowed by strace.
 *   e  ETRN (tern-flush running, relay_domains = site.test, so fast_flush_domains covers it, and
 *      a [transport] entry site.test = smtp:[127.0.0.1]:SITEPORT), ETRN_TRIES times: 20 messages
 *      to user@site.test through tern-smtpd (smtp-source -s 5 -m 20) while nothing listens on
 *      SITEPORT: tern-smtp's connection is refused, the site is dead in qmgr, all 20 are deferred
 *      and tern-flush lists them in flush/site_test (waited for in the spool). Then smtp-sink
 *      starts on SITEPORT, and over one SMTP session to tern-smtpd this sends "EHLO bench.test",
 *      then "ETRN site.test": timed from the write of the ETRN line until "250 Queuing started"
 *      is read (tern-smtpd -> io.tern.Flush.SendSite, which moves the site's 20 files from
 *      deferred/ to incoming/ and triggers qmgr, then replies), and from that reply until
 *      smtp-sink has received all 20 (its counters polled every millisecond). Then 10 more ETRNs
 *      of the now empty site in the same session (the cost of the round trip alone), QUIT, the
 *      queue empty, smtp-sink stopped: the next try.
 * In runs a, b and t the timed part starts when smtp-source is started: injection = MESSAGES /
 * the seconds until smtp-source exited (every message had its 250, so was fsync'ed: tern-smtpd
 * replies only after the group commit that holds it, src/lib/queue-commit.c); end to end =
 * MESSAGES / the seconds until tern-qmgr logged "ID: removed" for every message (the log is read
 * every 5 ms). Then incoming, active, deferred and hold must be empty, tern-smtpd must have logged
 * "ID: client=" MESSAGES times, tern-smtp "status=sent" MESSAGES times, and smtp-sink, once every
 * tern daemon is stopped and its sessions are gone, must count exactly MESSAGES messages; a
 * deferral, a bounce, a daemon that exits, or 30 s without progress stop the benchmark. In runs a
 * and b tern-smtpd runs under `perf stat --no-inherit -e` BENCH_PERF_SYNC_EVENTS when perf can
 * count them (kernel counters, no ptrace): the fsync, fdatasync and syncfs calls of its main
 * thread, where the group commits run (not of the thread each session's name lookup runs in:
 * inherited counters would cost a perf event set-up per connection), i.e. syncs per message.
 * CPU: utime + stime over the timed part, from /proc: tern-smtpd, tern-qmgr, the agent with the
 * children it forks per qmgr connection (bench_tree_cpu_seconds), smtp-sink, and smtp-source
 * (its rusage); "other": the machine's busy CPU over the same time (/proc/stat) less all of those
 * and this process, i.e. what the rest of a shared machine did meanwhile (a repetition with a
 * large figure there was disturbed); "steal": the hypervisor's.
 *
 * The issue's reference (Postfix on this machine, the same smtp-source command; not measured
 * here): 491 msgs/s end to end to smtp-sink, 647 msgs/s into discard; ETRN answered in 1.1 ms,
 * the site's 20 messages delivered 0.136 s later. Goals: at least twice Postfix's rates (982 and
 * 1,294 msgs/s), every message fsync'ed before its 250. Printed with yes/no.
 *
 * Every process started here is stopped at exit, on failure too: this process is a child
 * subreaper, so what the daemons fork stays under it, and whatever is left under it at exit is
 * sent SIGTERM (then SIGKILL) by pid.
 *
 * Limits: one machine (2 shared CPUs here) runs smtp-source, tern-smtpd, tern-qmgr, up to 20
 * agents, smtp-sink and this process, so the client's CPU is part of what is measured (run k shows
 * how much); smtp-source and smtp-sink are Postfix's unsupported test programs; every daemon logs
 * to one file, read here. Measure a release build.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "macro.h"

const char *const bench_name = "bench-smtpd";

/* Postfix on this machine, from the issue (not measured here) */
#define POSTFIX_SINK_RATE 491.0         /* msgs/s end to end to smtp-sink */
#define POSTFIX_DISCARD_RATE 647.0      /* msgs/s end to end into discard */
#define POSTFIX_ETRN_MSEC 1.1           /* ETRN to "250 Queuing started" */
#define POSTFIX_ETRN_DELIVERY_SEC 0.136 /* from that reply until the site's 20 were delivered */
#define GOAL_FACTOR 2.0

#define DEFAULT_MESSAGES 10000
#define SESSIONS 20         /* smtp-source -s: the issue's command */
#define PAYLOAD 1024        /* smtp-source -l */
#define DEFAULT_WRITES 2000 /* run f: about a second of fsyncs here */
#define WRITE_SIZE 1024
#define CONCURRENCY_LIMIT 20 /* default_destination_concurrency_limit: Postfix's default */
#define SINK_BACKLOG 1000
#define SITE_MESSAGES 20 /* run e: the issue's site */
#define SITE_SESSIONS 5
#define EMPTY_ETRNS 10 /* run e: ETRNs of the empty site after each try */
#define DEFAULT_ETRN_TRIES 5
#define ETRN_TRIES_MAX 50
#define POLL_USEC 5000
#define STALL_SEC 30 /* no progress for this long: stalled */
#define RUN_TIMEOUT_SEC 600
#define STOP_TIMEOUT_MSEC 5000 /* SIGTERM to SIGKILL */
#define SINK_DRAIN_SEC 10      /* smtp-sink's sessions must end within this after the daemons stop */
#define SMTP_TIMEOUT_MSEC 30000
#define ISSUES_KEPT 3
#define DEFAULT_REPEATS 3
#define REPEATS_MAX 20

typedef enum RunKind {
        RUN_SINK_DIRECT,
        RUN_FSYNC,
        RUN_SMTP,
        RUN_DISCARD,
        RUN_TRACED,
        RUN_ETRN,
        _RUN_MAX,
} RunKind;

typedef struct RunSpec {
        char letter;
        const char *name;
        bool tern; /* tern daemons run (a, b, t, e) */
        bool smtp; /* tern-smtp and smtp-sink (a, t) rather than tern-discard (b) */
} RunSpec;

static const RunSpec run_specs[_RUN_MAX] = {
        [RUN_SINK_DIRECT] = {'k', "k) smtp-source -> smtp-sink", false, false},
        [RUN_FSYNC] = {'f', "f) create+write+fsync+rename", false, false},
        [RUN_SMTP] = {'a', "a) tern-smtpd -> smtp -> smtp-sink", true, true},
        [RUN_DISCARD] = {'b', "b) tern-smtpd -> discard", true, false},
        [RUN_TRACED] = {'t', "t) run a, smtpd under strace", true, true},
        [RUN_ETRN] = {'e', "e) ETRN", true, true},
};

typedef struct Result {
        bool ran;
        size_t n;
        double inject_sec, e2e_sec; /* k: both smtp-source's; f: the writes */
        double cpu_smtpd, cpu_qmgr, cpu_agent, cpu_sink, cpu_source; /* < 0: not measured */
        double cpu_other, steal;           /* the rest of the machine over the timed part; < 0: unknown */
        double sync_sec;                   /* run t: tern-smtpd's seconds inside fsync/syncfs (strace -T) */
        long fsyncs, fdatasyncs, syncfses; /* tern-smtpd's; -1: not counted */
        size_t batches, batch1, batch2, batch_many; /* run t: group commits */
        long sink_sess, sink_mesg;                  /* -1: no sink */
        size_t warnings;
        char issue[ISSUES_KEPT][512];
} Result;

typedef struct EtrnResult {
        bool ran;
        unsigned tries;
        double reply_msec[ETRN_TRIES_MAX];  /* the ETRN that moved the site's messages */
        double deliver_sec[ETRN_TRIES_MAX]; /* from its reply until the sink had them all */
        double empty_msec[ETRN_TRIES_MAX * EMPTY_ETRNS];
        size_t n_empty;
        char reply[512]; /* the first ETRN's reply line */
        size_t warnings;
        char issue[ISSUES_KEPT][512];
} EtrnResult;

typedef struct Run {
        const RunSpec *spec;
        unsigned rep;
        char dir[300], spool[340], rt[340], config[340], notify[340], log[340], sink_out[340], sink_log[340],
                source_out[340], source_log[340], perf_out[340], strace_out[340], flushfile[360];
        uint16_t port, sink_port, site_port;
        size_t flush_lines; /* run e: flush/site_test's lines before the try's messages */
        BenchDaemon smtpd, qmgr;
        pid_t agent, flush, sink, source;
        BenchLog tail; /* the daemons' log */
        size_t removed, queued, sent, deferred, bounced;
        size_t *warnings;
        char (*issue)[512];
} Run;

static struct {
        const char *smtpd, *qmgr, *smtp, *discard, *flush;
        BenchPostfix pf;
        size_t n, writes;
        unsigned etrn_tries;
        bool perf, strace;
} B;

/* ---- processes ------------------------------------------------------------------------------ */

/* check_alive - die when a process of the run has exited (smtp-source is waited for elsewhere) */
static void check_alive(const Run *r)
{
        const BenchProc procs[] = {
                {r->smtpd.pid, "tern-smtpd"},
                {r->qmgr.pid, "tern-qmgr"},
                {r->agent, r->spec->smtp ? "tern-smtp" : "tern-discard"},
                {r->flush, "tern-flush"},
                {r->sink, "smtp-sink"},
        };

        bench_check_alive(procs, ELEMENTSOF(procs), r->spec->letter, r->dir);
}

/* ---- the daemons ------------------------------------------------------------------------------ */

static void log_to(const char *log)
{
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0)
                dup2(fd, STDERR_FILENO);
}

static void exec_qmgr(const void *userdata)
{
        const Run *r = userdata;

        log_to(r->log);
        execl(B.qmgr, B.qmgr, "-c", r->config, (char *) NULL);
}

/* exec_smtpd - tern-smtpd -c CONFIG, under perf stat (runs a, b) or strace (run t) */
static void exec_smtpd(const void *userdata)
{
        const Run *r = userdata;

        log_to(r->log);
        if (r->spec - run_specs == RUN_TRACED) {
                /* a sanitizer build: LeakSanitizer cannot stop the threads of a traced process */
                const char *asan = getenv("ASAN_OPTIONS");
                char opts[1024];
                snprintf(opts, sizeof(opts), "%s%sdetect_leaks=0", asan ?: "", asan && *asan ? ":" : "");
                setenv("ASAN_OPTIONS", opts, 1);
                execlp("strace", "strace", "-f", "-qq", "-y", "-T", "--seccomp-bpf", "-e",
                       "trace=fsync,fdatasync,syncfs", "-o", r->strace_out, "--", B.smtpd, "-c", r->config,
                       (char *) NULL);
        } else if (B.perf && r->spec - run_specs != RUN_ETRN)
                /* --no-inherit: the commits run in the main thread; counters inherited by the
                 * thread each session's name lookup runs in would cost tern-smtpd a perf event
                 * set-up and tear-down per connection (measured: about a fifth of its CPU) */
                execlp("perf", "perf", "stat", "--no-inherit", "-x,", "-o", r->perf_out, "-e",
                       BENCH_PERF_SYNC_EVENTS, "--", B.smtpd, "-c", r->config, (char *) NULL);
        else
                execl(B.smtpd, B.smtpd, "-c", r->config, (char *) NULL);
}

static void keep_issue(Run *r, const char *line)
{
        if (*r->warnings < ISSUES_KEPT) {
                size_t len = MIN(strlen(line), sizeof(r->issue[0]) - 1);
                memcpy(r->issue[*r->warnings], line, len);
                r->issue[*r->warnings][len] = '\0';
        }
        (*r->warnings)++;
}

/* log_line - one whole line of the daemons' log: what it says about the run */
static void log_line(const char *line, size_t len, void *userdata)
{
        static const char removed[] = ": removed";
        Run *r = userdata;

        if (len >= sizeof(removed) - 1 && streq(line + len - (sizeof(removed) - 1), removed))
                r->removed++;
        else if (strneq(line, "tern/smtpd: ", 12) && strstr(line, ": client="))
                r->queued++;
        else if (strstr(line, ", status=sent ("))
                r->sent++;
        else if (strstr(line, ", status=deferred (") || strstr(line, ", status=bounced (")) {
                if (strstr(line, ", status=deferred ("))
                        r->deferred++;
                else
                        r->bounced++;
                /* run e defers on purpose */
                if (r->spec - run_specs != RUN_ETRN || r->bounced > 0) {
                        fprintf(stderr, "%s: run %c: %s\n", bench_name, r->spec->letter, line);
                        keep_issue(r, line);
                }
        } else if (strstr(line, ": warning: ") || strstr(line, ": error: ") || strstr(line, ": fatal: ") ||
                   strstr(line, ": panic: ") || strstr(line, "reject: "))
                keep_issue(r, line);
}

static size_t queue_files(const Run *r)
{
        static const char *const queues[] = {"incoming", "active", "deferred", "hold"};
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(queues); i++)
                n += bench_queue_files(r->spool, queues[i]);
        return n;
}

/* ---- one run's directory ------------------------------------------------------------------ */

static void run_paths(Run *r)
{
        snprintf(r->dir, sizeof(r->dir), "%s/%c%u", bench_session.dir, r->spec->letter, r->rep + 1);
        snprintf(r->spool, sizeof(r->spool), "%s/spool", r->dir);
        snprintf(r->rt, sizeof(r->rt), "%s/run", r->dir);
        snprintf(r->config, sizeof(r->config), "%s/main.cf", r->dir);
        snprintf(r->notify, sizeof(r->notify), "%s/notify", r->dir);
        snprintf(r->log, sizeof(r->log), "%s/daemons.log", r->dir);
        snprintf(r->sink_out, sizeof(r->sink_out), "%s/sink.out", r->dir);
        snprintf(r->sink_log, sizeof(r->sink_log), "%s/sink.log", r->dir);
        snprintf(r->source_out, sizeof(r->source_out), "%s/source.out", r->dir);
        snprintf(r->source_log, sizeof(r->source_log), "%s/source.log", r->dir);
        snprintf(r->perf_out, sizeof(r->perf_out), "%s/perf.out", r->dir);
        snprintf(r->strace_out, sizeof(r->strace_out), "%s/strace.out", r->dir);
        snprintf(r->flushfile, sizeof(r->flushfile), "%s/flush/site_test", r->spool);
        if (mkdir(r->dir, 0755) < 0 || mkdir(r->spool, 0700) < 0 || mkdir(r->rt, 0700) < 0)
                die("mkdir", errno);
}

/* write_config - main.cf: nothing can leave the machine (every non-local address goes to
 * [127.0.0.1]:SINKPORT, site.test to [127.0.0.1]:SITEPORT) */
static void write_config(const Run *r)
{
        const char *transport = r->spec->smtp ? "smtp" : "discard";
        bool etrn = r->spec - run_specs == RUN_ETRN;
        FILE *f = fopen(r->config, "we");

        if (!f)
                die(r->config, errno);
        fprintf(f,
                "# written by bench-smtpd: run %s\nqueue_directory = %s\nruntime_directory = %s\n"
                "myhostname = bench.test\nmydestination = localhost\ninet_interfaces = loopback-only\n"
                "inet_protocols = ipv4\nsmtpd_listen = 127.0.0.1:%u\nrelay_domains = %s\n"
                "relayhost = [127.0.0.1]:%u\ndefault_transport = %s\nrelay_transport = %s\n"
                "local_transport = discard\nqueue_run_delay = 3600s\nmax_idle = 3600s\n"
                "max_use = 1000000\ndefault_destination_concurrency_limit = %d\n"
                "smtp_connection_cache_on_demand = no\n",
                r->spec->name, r->spool, r->rt, r->port, etrn ? "site.test" : "", r->sink_port, transport,
                transport, CONCURRENCY_LIMIT);
        if (etrn)
                fprintf(f, "\n[transport]\nsite.test = smtp:[127.0.0.1]:%u\n", r->site_port);
        fclose(f);
}

/* start_tern - the agents by hand, then tern-qmgr and tern-smtpd (READY=1); the log is read
 * from here on (start-up lines, such as qmgr's RLIMIT_NOFILE note, are not the run's) */
static void start_tern(Run *r)
{
        if (r->spec - run_specs == RUN_ETRN)
                r->flush = bench_agent_start(B.flush, r->config, r->log, r->rt, "flush");
        r->agent = bench_agent_start(r->spec->smtp ? B.smtp : B.discard, r->config, r->log, r->rt,
                                     r->spec->smtp ? "smtp" : "discard");
        bench_daemon_start(&r->qmgr, "tern-qmgr", r->notify, exec_qmgr, r);
        bench_daemon_start(&r->smtpd, "tern-smtpd", r->notify, exec_smtpd, r);
        bench_log_open(&r->tail, r->log);
}

/* stop_tern - tern-smtpd first (perf or strace writes its counts as it exits), then tern-qmgr,
 * then every agent, so that every session with smtp-sink is closed */
static void stop_tern(Run *r)
{
        int status = bench_daemon_stop(&r->smtpd);

        if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "%s: run %c: tern-smtpd (or its wrapper) did not exit 0 (status 0x%x)\n",
                        bench_name, r->spec->letter, (unsigned) status);
                keep_issue(r, "tern-smtpd did not exit 0 on SIGTERM");
        }
        r->smtpd.pid = 0;
        (void) bench_daemon_stop(&r->qmgr);
        r->qmgr.pid = 0;
        bench_stop_under(bench_session.main_pid, r->sink, STOP_TIMEOUT_MSEC);
        r->agent = r->flush = 0;
}

/* sink_stop - wait until smtp-sink has no session left (its counters are then final), read them,
 * stop it */
static BenchSinkCounters sink_stop(Run *r)
{
        BenchSinkCounters c;
        uint64_t t0 = now_nsec();

        for (;;) {
                size_t listening, sessions;
                bench_tcp_count(r->sink_port, &listening, &sessions);
                if (sessions == 0)
                        break;
                if (seconds_since(t0) > SINK_DRAIN_SEC) {
                        fprintf(stderr, "%s: run %c: smtp-sink still has %zu sessions %d s after the end\n",
                                bench_name, r->spec->letter, sessions, SINK_DRAIN_SEC);
                        break;
                }
                usleep(POLL_USEC);
        }
        c = bench_sink_counters(r->sink_out);
        kill(r->sink, SIGTERM);
        (void) waitpid(r->sink, NULL, 0);
        r->sink = 0;
        return c;
}

/* ---- smtp-source ------------------------------------------------------------------------------ */

static pid_t source_start(const Run *r, const char *rcpt, size_t n, unsigned sessions, uint16_t port)
{
        char count[32], sess[16], len[16], target[64];
        const char *argv[] = {"smtp-source", "-c", "-s",   sess,         "-m", count,
                              "-l",          len,  "-M",   "bench.test", "-f", "sender@client.test",
                              "-t",          rcpt, target, NULL};

        snprintf(count, sizeof(count), "%zu", n);
        snprintf(sess, sizeof(sess), "%u", sessions);
        snprintf(len, sizeof(len), "%d", PAYLOAD);
        snprintf(target, sizeof(target), "127.0.0.1:%u", port);
        return bench_postfix_spawn(&B.pf, argv, r->source_out, r->source_log);
}

/* source_count - the last count smtp-source -c wrote ("\rN" per DATA done) */
static long source_count(const Run *r)
{
        FILE *f = fopen(r->source_out, "re");
        char buf[256];
        long off, count = -1;
        size_t len;

        if (!f)
                return -1;
        if (fseek(f, 0, SEEK_END) < 0 || (off = ftell(f)) < 0) {
                fclose(f);
                return -1;
        }
        (void) fseek(f, off > (long) sizeof(buf) - 1 ? off - (long) sizeof(buf) + 1 : 0, SEEK_SET);
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        for (char *p = strtok(buf, "\r\n"); p; p = strtok(NULL, "\r\n"))
                count = strtol(p, NULL, 10);
        return count;
}

/* source_check - smtp-source's exit: 0 and a count of N, else die with its stderr's place */
static void source_check(Run *r, int status, size_t n)
{
        long count = source_count(r);

        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || count != (long) n) {
                fprintf(stderr,
                        "%s: run %c: smtp-source exited with status 0x%x after %ld of %zu messages; see "
                        "%s\n",
                        bench_name, r->spec->letter, (unsigned) status, count, n, r->source_log);
                bench_session.keep = true;
                die("smtp-source failed", EPROTO);
        }
}

/* source_run - smtp-source to completion (no daemon of ours involved); its seconds and CPU */
static double source_run(Run *r, const char *rcpt, size_t n, unsigned sessions, uint16_t port,
                         double *ret_cpu)
{
        struct rusage ru;
        uint64_t t0 = now_nsec();
        int status;
        pid_t pid = source_start(r, rcpt, n, sessions, port);
        double seconds;

        if (wait4(pid, &status, 0, &ru) != pid)
                die("wait4", errno);
        seconds = seconds_since(t0);
        source_check(r, status, n);
        if (ret_cpu)
                *ret_cpu = (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                           (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        return seconds;
}

/* ---- what else the machine did --------------------------------------------------------------- */

typedef struct MachineMark {
        double busy, steal, self;
} MachineMark;

static double self_cpu_seconds(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static MachineMark machine_mark(void)
{
        MachineMark m = {.steal = 0};

        m.busy = bench_machine_cpu_seconds(&m.steal);
        m.self = self_cpu_seconds();
        return m;
}

/* machine_other - since M0: the machine's busy CPU less this process's and the run's processes'
 * (the CPU figures of RES that are known), and the hypervisor's steal */
static void machine_other(const MachineMark *m0, Result *res)
{
        MachineMark m1 = machine_mark();
        double ours = m1.self - m0->self;
        const double cpu[] = {res->cpu_smtpd, res->cpu_qmgr, res->cpu_agent, res->cpu_sink, res->cpu_source};

        if (m0->busy < 0 || m1.busy < 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(cpu); i++)
                if (cpu[i] > 0)
                        ours += cpu[i];
        res->cpu_other = MAX(m1.busy - m0->busy - ours, 0.0);
        res->steal = m1.steal - m0->steal;
}

/* ---- runs k and f: the baselines -------------------------------------------------------------- */

static void run_sink_direct(Run *r, Result *res)
{
        BenchSinkCounters c;

        r->sink_port = bench_free_port();
        r->sink = bench_sink_start(&B.pf, r->sink_port, SINK_BACKLOG, r->sink_out, r->sink_log);
        bench_syncfs(r->dir);
        MachineMark m0 = machine_mark();
        double cpu0 = bench_cpu_seconds(r->sink);
        res->inject_sec = res->e2e_sec =
                source_run(r, "rcpt@relay.test", B.n, SESSIONS, r->sink_port, &res->cpu_source);
        res->cpu_sink = bench_cpu_seconds(r->sink) - cpu0;
        machine_other(&m0, res);
        c = sink_stop(r);
        res->sink_sess = c.sess;
        res->sink_mesg = c.mesg;
        if (c.mesg != (long) B.n) {
                fprintf(stderr, "%s: run k: smtp-sink received %ld messages, not %zu\n", bench_name, c.mesg,
                        B.n);
                bench_session.keep = true;
                die("smtp-sink did not get every message", EPROTO);
        }
}

static void run_fsync(Run *r, Result *res)
{
        char incoming[400];

        snprintf(incoming, sizeof(incoming), "%s/incoming", r->spool);
        if (mkdir(incoming, 0700) < 0)
                die("mkdir", errno);
        bench_syncfs(r->dir);
        res->n = B.writes;
        MachineMark m0 = machine_mark();
        res->inject_sec = res->e2e_sec = bench_durable_writes(incoming, B.writes, WRITE_SIZE);
        machine_other(&m0, res);
}

/* ---- runs a, b and t: smtp-source into tern-smtpd ---------------------------------------- */

/* strace_batches - run t: the group commits in strace's output (see the top of the file) */
static void strace_batches(const Run *r, Result *res)
{
        FILE *f = fopen(r->strace_out, "re");
        char line[1024];
        unsigned files = 0;
        bool many = false;

        if (!f)
                die(r->strace_out, errno);
        res->fsyncs = res->fdatasyncs = res->syncfses = 0;
        while (fgets(line, sizeof(line), f)) {
                char *d = strrchr(line, '<');
                if (d && (strstr(line, "sync(") || strstr(line, "syncfs(")))
                        res->sync_sec += strtod(d + 1, NULL);
                if (strstr(line, "syncfs(")) {
                        res->syncfses++;
                        many = true;
                } else if (strstr(line, "fdatasync("))
                        res->fdatasyncs++;
                else if (strstr(line, "fsync(")) {
                        res->fsyncs++;
                        if (strstr(line, "/incoming>)")) {
                                /* the batch's last step */
                                res->batches++;
                                if (many)
                                        res->batch_many++;
                                else if (files == 1)
                                        res->batch1++;
                                else if (files == 2)
                                        res->batch2++;
                                files = 0;
                                many = false;
                        } else
                                files++;
                }
        }
        fclose(f);
}

static void run_smtpd(Run *r, Result *res)
{
        double cpu0_smtpd, cpu0_qmgr, cpu0_agent, cpu0_sink = 0;
        uint64_t t0, last_progress;
        size_t last = 0;
        bool injected = false;
        struct rusage ru;
        int status;

        r->port = bench_free_port();
        r->sink_port = bench_free_port();
        write_config(r);
        if (r->spec->smtp)
                r->sink = bench_sink_start(&B.pf, r->sink_port, SINK_BACKLOG, r->sink_out, r->sink_log);
        start_tern(r);
        bench_syncfs(r->dir);

        fprintf(stderr, "%s: run %s (%u): %zu messages...\n", bench_name, r->spec->name, r->rep + 1, B.n);
        cpu0_smtpd = bench_cpu_seconds(r->smtpd.daemon);
        cpu0_qmgr = bench_cpu_seconds(r->qmgr.daemon);
        cpu0_agent = bench_tree_cpu_seconds(r->agent);
        if (r->sink > 0)
                cpu0_sink = bench_cpu_seconds(r->sink);
        MachineMark m0 = machine_mark();
        t0 = last_progress = now_nsec();
        r->source = source_start(r, "rcpt@relay.test", B.n, SESSIONS, r->port);
        for (;;) {
                if (!injected && wait4(r->source, &status, WNOHANG, &ru) == r->source) {
                        res->inject_sec = seconds_since(t0);
                        injected = true;
                        r->source = 0;
                        source_check(r, status, B.n);
                        res->cpu_source = (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                          (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
                }
                bench_log_read(&r->tail, log_line, r);
                if (injected && r->removed >= B.n)
                        break;
                if (r->deferred + r->bounced > 0) {
                        bench_session.keep = true;
                        fprintf(stderr, "%s: run %c: %zu deferred, %zu bounced after %.1f s; logs in %s\n",
                                bench_name, r->spec->letter, r->deferred, r->bounced, seconds_since(t0),
                                r->dir);
                        die("not every message was delivered", EIO);
                }
                if (r->removed + r->queued != last) {
                        last = r->removed + r->queued;
                        last_progress = now_nsec();
                } else if (seconds_since(last_progress) > STALL_SEC || seconds_since(t0) > RUN_TIMEOUT_SEC) {
                        bench_session.keep = true;
                        fprintf(stderr,
                                "%s: run %c: stalled: %zu queued, %zu removed of %zu after %.1f s, nothing "
                                "in "
                                "the last %d s; logs in %s\n",
                                bench_name, r->spec->letter, r->queued, r->removed, B.n, seconds_since(t0),
                                STALL_SEC, r->dir);
                        die("the run did not finish", ETIMEDOUT);
                }
                check_alive(r);
                bench_check_interrupted();
                usleep(POLL_USEC);
        }
        res->e2e_sec = seconds_since(t0);
        res->cpu_smtpd = bench_cpu_seconds(r->smtpd.daemon) - cpu0_smtpd;
        res->cpu_qmgr = bench_cpu_seconds(r->qmgr.daemon) - cpu0_qmgr;
        res->cpu_agent = bench_tree_cpu_seconds(r->agent) - cpu0_agent;
        if (r->sink > 0)
                res->cpu_sink = bench_cpu_seconds(r->sink) - cpu0_sink;
        machine_other(&m0, res);

        if (r->removed != B.n || r->queued != B.n || (r->spec->smtp && r->sent != B.n) ||
            queue_files(r) != 0) {
                fprintf(stderr,
                        "%s: run %c: %zu queued by tern-smtpd, %zu sent, %zu removed of %zu; %zu files left "
                        "in "
                        "the queue; logs in %s\n",
                        bench_name, r->spec->letter, r->queued, r->sent, r->removed, B.n, queue_files(r),
                        r->dir);
                bench_session.keep = true;
                die("the messages do not add up", EPROTO);
        }
        stop_tern(r);
        if (r->sink > 0) {
                BenchSinkCounters c = sink_stop(r);
                res->sink_sess = c.sess;
                res->sink_mesg = c.mesg;
                if (c.mesg != (long) B.n) {
                        fprintf(stderr, "%s: run %c: smtp-sink received %ld messages, not %zu; see %s\n",
                                bench_name, r->spec->letter, c.mesg, B.n, r->dir);
                        bench_session.keep = true;
                        die("smtp-sink did not get every message exactly once", EPROTO);
                }
        }
        if (r->spec - run_specs == RUN_TRACED)
                strace_batches(r, res);
        else if (B.perf) {
                res->fsyncs = bench_perf_count(r->perf_out, "syscalls:sys_enter_fsync");
                res->fdatasyncs = bench_perf_count(r->perf_out, "syscalls:sys_enter_fdatasync");
                res->syncfses = bench_perf_count(r->perf_out, "syscalls:sys_enter_syncfs");
        }
}

/* ---- run e: ETRN ---------------------------------------------------------------------------- */

typedef struct SmtpConn {
        int fd;
        char buf[4096];
        size_t len;
} SmtpConn;

/* smtp_reply - read one whole reply (its lines up to the one with a space after the code); its
 * last line into LAST; die on a timeout or end of file */
static void smtp_reply(SmtpConn *c, char *last, size_t size)
{
        uint64_t t0 = now_nsec();

        for (;;) {
                char *nl;
                while ((nl = memchr(c->buf, '\n', c->len))) {
                        size_t n = (size_t) (nl - c->buf) + 1;
                        bool end = n >= 4 && c->buf[3] != '-';
                        if (end) {
                                size_t k = MIN(n, size - 1);
                                memcpy(last, c->buf, k);
                                last[k] = '\0';
                                last[strcspn(last, "\r\n")] = '\0';
                        }
                        memmove(c->buf, c->buf + n, c->len - n);
                        c->len -= n;
                        if (end)
                                return;
                }
                if (c->len == sizeof(c->buf))
                        die("an SMTP reply line too long", EPROTO);
                ssize_t k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
                if (k == 0)
                        die("tern-smtpd closed the session", ECONNRESET);
                if (k < 0 && errno != EINTR && errno != EAGAIN)
                        die("recv", errno);
                if (k > 0)
                        c->len += (size_t) k;
                if (seconds_since(t0) * 1000 > SMTP_TIMEOUT_MSEC)
                        die("no SMTP reply", ETIMEDOUT);
        }
}

static void smtp_send(SmtpConn *c, const char *line)
{
        size_t len = strlen(line);

        if (send(c->fd, line, len, MSG_NOSIGNAL) != (ssize_t) len)
                die("send", errno);
}

static void smtp_connect(SmtpConn *c, uint16_t port)
{
        struct sockaddr_in sa = {
                .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct timeval tv = {.tv_sec = SMTP_TIMEOUT_MSEC / 1000};
        char line[512];
        int one = 1;

        c->len = 0;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                die("connect to tern-smtpd", errno);
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void) setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        smtp_reply(c, line, sizeof(line));
        if (!strneq(line, "220 ", 4))
                die("tern-smtpd's greeting is not 220", EPROTO);
        smtp_send(c, "EHLO bench.test\r\n");
        smtp_reply(c, line, sizeof(line));
        if (!strneq(line, "250 ", 4))
                die("tern-smtpd's reply to EHLO is not 250", EPROTO);
}

/* etrn - ETRN site.test; its reply line into LINE, the milliseconds from the write to the reply */
static double etrn(SmtpConn *c, char *line, size_t size)
{
        uint64_t t0 = now_nsec();

        smtp_send(c, "ETRN site.test\r\n");
        smtp_reply(c, line, size);
        return seconds_since(t0) * 1000;
}

static size_t count_lines(const char *path)
{
        FILE *f = fopen(path, "re");
        size_t n = 0;
        int ch;

        if (!f)
                return 0;
        while ((ch = getc(f)) != EOF)
                n += ch == '\n';
        fclose(f);
        return n;
}

/* wait_for - poll COND(R) every POLL_USEC for at most STALL_SEC; die with WHAT when it never holds */
static void wait_for(Run *r, bool (*cond)(Run *r), const char *what)
{
        uint64_t t0 = now_nsec();

        for (;;) {
                bench_log_read(&r->tail, log_line, r);
                if (cond(r))
                        return;
                if (seconds_since(t0) > STALL_SEC) {
                        bench_session.keep = true;
                        fprintf(stderr, "%s: run e: %s after %d s; logs in %s\n", bench_name, what,
                                STALL_SEC, r->dir);
                        die("run e stalled", ETIMEDOUT);
                }
                check_alive(r);
                bench_check_interrupted();
                usleep(POLL_USEC);
        }
}

/* site_deferred - the site's messages deferred, nothing else in the queue, each listed for fast
 * flush (tern-flush's logfile has a line per Add) */
static bool site_deferred(Run *r)
{
        return bench_queue_files(r->spool, "deferred") == SITE_MESSAGES &&
               bench_queue_files(r->spool, "incoming") == 0 && bench_queue_files(r->spool, "active") == 0 &&
               count_lines(r->flushfile) >= r->flush_lines + SITE_MESSAGES;
}

static bool queue_empty(Run *r)
{
        return queue_files(r) == 0;
}

static void run_etrn(Run *r, EtrnResult *res)
{
        char line[512];
        size_t removed = 0;

        r->port = bench_free_port();
        r->sink_port = bench_free_port();
        r->site_port = bench_free_port();
        write_config(r);
        start_tern(r);
        for (unsigned i = 0; i < B.etrn_tries; i++) {
                SmtpConn c;
                BenchSinkCounters sc = {};
                uint64_t t_reply;
                double cpu;

                /* the site's messages, deferred: nothing listens on its port */
                r->flush_lines = count_lines(r->flushfile);
                (void) source_run(r, "user@site.test", SITE_MESSAGES, SITE_SESSIONS, r->port, &cpu);
                wait_for(r, site_deferred, "the site's messages not deferred and listed for fast flush");
                bench_syncfs(r->dir);

                snprintf(r->sink_out, sizeof(r->sink_out), "%s/sink%u.out", r->dir, i + 1);
                r->sink = bench_sink_start(&B.pf, r->site_port, SINK_BACKLOG, r->sink_out, r->sink_log);
                smtp_connect(&c, r->port);
                res->reply_msec[i] = etrn(&c, line, sizeof(line));
                t_reply = now_nsec();
                if (i == 0)
                        snprintf(res->reply, sizeof(res->reply), "%s", line);
                if (!streq(line, "250 Queuing started")) {
                        fprintf(stderr, "%s: run e: ETRN site.test: %s\n", bench_name, line);
                        bench_session.keep = true;
                        die("ETRN was not answered 250 Queuing started", EPROTO);
                }
                while (sc.mesg < SITE_MESSAGES) {
                        if (seconds_since(t_reply) > STALL_SEC) {
                                fprintf(stderr,
                                        "%s: run e: smtp-sink has %ld of %d messages %d s after ETRN\n",
                                        bench_name, sc.mesg, SITE_MESSAGES, STALL_SEC);
                                bench_session.keep = true;
                                die("ETRN did not deliver the site's messages", ETIMEDOUT);
                        }
                        check_alive(r);
                        usleep(1000);
                        sc = bench_sink_counters(r->sink_out);
                }
                res->deliver_sec[i] = seconds_since(t_reply);

                for (unsigned j = 0; j < EMPTY_ETRNS; j++) {
                        res->empty_msec[res->n_empty++] = etrn(&c, line, sizeof(line));
                        if (!streq(line, "250 Queuing started")) {
                                fprintf(stderr, "%s: run e: ETRN site.test (empty): %s\n", bench_name, line);
                                die("ETRN was not answered 250 Queuing started", EPROTO);
                        }
                }
                smtp_send(&c, "QUIT\r\n");
                smtp_reply(&c, line, sizeof(line));
                close(c.fd);
                removed += SITE_MESSAGES;
                wait_for(r, queue_empty, "the queue not empty after the site's messages were delivered");
                sc = sink_stop(r);
                if (sc.mesg != SITE_MESSAGES) {
                        fprintf(stderr, "%s: run e: smtp-sink received %ld messages, not %d\n", bench_name,
                                sc.mesg, SITE_MESSAGES);
                        bench_session.keep = true;
                        die("smtp-sink did not get the site's messages exactly once", EPROTO);
                }
                res->tries++;
        }
        bench_log_read(&r->tail, log_line, r);
        stop_tern(r);
        if (r->removed != removed || r->bounced != 0) {
                fprintf(stderr, "%s: run e: %zu removed, %zu bounced; expected %zu removed; logs in %s\n",
                        bench_name, r->removed, r->bounced, removed, r->dir);
                bench_session.keep = true;
                die("run e: the messages do not add up", EPROTO);
        }
}

/* ---- one run ---------------------------------------------------------------------------------- */

static void run_one(RunKind k, unsigned rep, Result *res, EtrnResult *etrn_res)
{
        Run r = {.spec = &run_specs[k], .rep = rep};

        if (res) {
                *res = (Result){.ran = true,
                                .n = B.n,
                                .cpu_smtpd = -1,
                                .cpu_qmgr = -1,
                                .cpu_agent = -1,
                                .cpu_sink = -1,
                                .cpu_source = -1,
                                .cpu_other = -1,
                                .steal = -1,
                                .fsyncs = -1,
                                .fdatasyncs = -1,
                                .syncfses = -1,
                                .sink_sess = -1,
                                .sink_mesg = -1};
                r.warnings = &res->warnings;
                r.issue = res->issue;
        } else {
                etrn_res->ran = true;
                r.warnings = &etrn_res->warnings;
                r.issue = etrn_res->issue;
        }
        run_paths(&r);
        switch (k) {
        case RUN_SINK_DIRECT:
                fprintf(stderr, "%s: run %s (%u)...\n", bench_name, r.spec->name, rep + 1);
                run_sink_direct(&r, res);
                break;
        case RUN_FSYNC:
                fprintf(stderr, "%s: run %s (%u)...\n", bench_name, r.spec->name, rep + 1);
                run_fsync(&r, res);
                break;
        case RUN_ETRN:
                fprintf(stderr, "%s: run %s: %u tries...\n", bench_name, r.spec->name, B.etrn_tries);
                run_etrn(&r, etrn_res);
                break;
        default:
                run_smtpd(&r, res);
                break;
        }
        /* the spool is not needed any more: give the next run a quiet disk */
        if (!bench_session.keep) {
                char cmd[400];
                snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", r.spool);
                if (system(cmd) != 0)
                        fprintf(stderr, "%s: could not remove %s\n", bench_name, r.spool);
        }
}

/* ---- the report ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

/* median - of N values (the lower middle one of an even number); VALUES is left as it was */
static double median(const double *values, size_t n)
{
        double sorted[ETRN_TRIES_MAX * EMPTY_ETRNS];

        if (n == 0)
                return -1;
        n = MIN(n, ELEMENTSOF(sorted));
        memcpy(sorted, values, n * sizeof(double));
        qsort(sorted, n, sizeof(double), cmp_double);
        return sorted[(n - 1) / 2];
}

static double min_of(const double *v, size_t n)
{
        double m = v[0];
        for (size_t i = 1; i < n; i++)
                m = MIN(m, v[i]);
        return m;
}

static double max_of(const double *v, size_t n)
{
        double m = v[0];
        for (size_t i = 1; i < n; i++)
                m = MAX(m, v[i]);
        return m;
}

static double inject_rate(const Result *r)
{
        return (double) r->n / r->inject_sec;
}

static double e2e_rate(const Result *r)
{
        return (double) r->n / r->e2e_sec;
}

/* median_rate - the median over the repetitions of run K of FN */
static double median_rate(Result all[][REPEATS_MAX], RunKind k, unsigned n, double (*fn)(const Result *))
{
        double v[REPEATS_MAX];

        for (unsigned i = 0; i < n; i++)
                v[i] = fn(&all[k][i]);
        return median(v, n);
}

static void fmt_cpu(char *buf, size_t size, double v)
{
        if (v < 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.2f", v);
}

static void fmt_long(char *buf, size_t size, long v)
{
        if (v < 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%ld", v);
}

static void report_runs(Result all[][REPEATS_MAX], unsigned repeats, const bool *ran)
{
        printf("\ntern-smtpd: Postfix's smtp-source, %d sessions, %zu messages of %d bytes, one per\n"
               "connection, on loopback (%s)\n\n",
               SESSIONS, B.n, PAYLOAD,
               B.perf ? "syncs: tern-smtpd's, counted by perf stat" : "perf unavailable: no sync counts");
        printf("%-36s %2s %8s %8s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n", "run", "#", "inject/s",
               "e2e/s", "inject", "e2e", "fsync", "syncfs", "smtpd", "qmgr", "agent", "sink", "src", "other",
               "steal");
        printf("%-36s %2s %8s %8s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n", "", "", "msgs/s", "msgs/s",
               "s", "s", "calls", "calls", "CPU s", "CPU s", "CPU s", "CPU s", "CPU s", "CPU s", "s");
        for (RunKind k = 0; k < _RUN_MAX; k++) {
                unsigned n = k == RUN_TRACED ? 1 : repeats;
                if (!ran[k] || k == RUN_ETRN)
                        continue;
                for (unsigned i = 0; i < n; i++) {
                        const Result *r = &all[k][i];
                        char c[9][32], e2e[32] = "-", e2e_sec[32] = "-";
                        if (k == RUN_FSYNC)
                                snprintf(c[0], sizeof(c[0]), "%zu", r->n);
                        else
                                fmt_long(c[0], sizeof(c[0]), r->fsyncs);
                        fmt_long(c[1], sizeof(c[1]), r->syncfses);
                        fmt_cpu(c[2], sizeof(c[2]), r->cpu_smtpd);
                        fmt_cpu(c[3], sizeof(c[3]), r->cpu_qmgr);
                        fmt_cpu(c[4], sizeof(c[4]), r->cpu_agent);
                        fmt_cpu(c[5], sizeof(c[5]), r->cpu_sink);
                        fmt_cpu(c[6], sizeof(c[6]), r->cpu_source);
                        fmt_cpu(c[7], sizeof(c[7]), r->cpu_other);
                        fmt_cpu(c[8], sizeof(c[8]), r->steal);
                        if (k != RUN_FSYNC) {
                                snprintf(e2e, sizeof(e2e), "%.0f", e2e_rate(r));
                                snprintf(e2e_sec, sizeof(e2e_sec), "%.2f", r->e2e_sec);
                        }
                        printf("%-36s %2u %8.0f %8s %6.2f %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n",
                               run_specs[k].name, i + 1, inject_rate(r), e2e, r->inject_sec, e2e_sec, c[0],
                               c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]);
                }
        }
        printf("(inject: until smtp-source had its last 250 and exited; e2e: until tern-qmgr logged the\n"
               " last message removed (smtp-sink had it); run k: smtp-source into smtp-sink directly; run "
               "f:\n"
               " %zu durable writes of %d bytes, one stream (inject/s: writes/s); fsync/syncfs: "
               "tern-smtpd's\n"
               " calls over the whole run; CPU: utime+stime over the timed part; src: smtp-source; other:\n"
               " the machine's busy CPU less this benchmark's processes (other work on a shared machine, "
               "and\n"
               " interrupts and kernel threads); steal: the hypervisor's)\n",
               B.writes, WRITE_SIZE);

        if (ran[RUN_SMTP] || ran[RUN_DISCARD]) {
                printf("\nsyncs per message (tern-smtpd):");
                for (RunKind k = RUN_SMTP; k <= RUN_DISCARD; k++)
                        if (ran[k] && all[k][0].fsyncs >= 0) {
                                double s = 0;
                                for (unsigned i = 0; i < repeats; i++)
                                        s += (double) (all[k][i].fsyncs + MAX(all[k][i].fdatasyncs, 0L) +
                                                       all[k][i].syncfses) /
                                             (double) all[k][i].n;
                                printf(" %c) %.3f;", run_specs[k].letter, s / repeats);
                        }
                printf("\n");
        }
        if (ran[RUN_TRACED]) {
                const Result *t = &all[RUN_TRACED][0];
                printf("\ngroup commits (run t, tern-smtpd under strace): %zu batches for %zu messages, "
                       "%.1f "
                       "messages per batch;\n  %zu of 1 message (fsync), %zu of 2 (fsync each), %zu of 3 or "
                       "more "
                       "(syncfs); %ld fsync, %ld syncfs, %ld fdatasync calls\n",
                       t->batches, t->n, t->batches ? (double) t->n / (double) t->batches : 0.0, t->batch1,
                       t->batch2, t->batch_many, t->fsyncs, t->syncfses, t->fdatasyncs);
                printf("  time inside those calls (strace -T; they run in tern-smtpd's event loop, which "
                       "serves\n"
                       "  no session meanwhile): %.2f s of the run's %.2f s (%.0f%%), %.2f ms per batch\n",
                       t->sync_sec, t->e2e_sec, 100.0 * t->sync_sec / t->e2e_sec,
                       t->batches ? 1000.0 * t->sync_sec / (double) t->batches : 0.0);
        }
        for (RunKind k = 0; k < _RUN_MAX; k++) {
                unsigned n = k == RUN_TRACED ? 1 : repeats;
                size_t w = 0;
                if (!ran[k] || k == RUN_ETRN)
                        continue;
                for (unsigned i = 0; i < n; i++)
                        w += all[k][i].warnings;
                if (w == 0)
                        continue;
                printf("%s: %zu warning/error/reject lines in the daemons' logs, e.g.:\n", run_specs[k].name,
                       w);
                for (unsigned i = 0, shown = 0; i < n && shown < ISSUES_KEPT; i++)
                        for (size_t j = 0;
                             j < MIN(all[k][i].warnings, (size_t) ISSUES_KEPT) && shown < ISSUES_KEPT;
                             j++, shown++)
                                printf("  %s\n", all[k][i].issue[j]);
        }
}

static void report_etrn(const EtrnResult *e)
{
        if (!e->ran)
                return;
        printf("\nETRN (run e): %u tries, each with %d messages for site.test deferred (its port closed),\n"
               "then smtp-sink on that port and ETRN site.test over one session to tern-smtpd\n",
               e->tries, SITE_MESSAGES);
        printf("  reply \"%s\": median %.2f ms (%.2f-%.2f ms); each:", e->reply,
               median(e->reply_msec, e->tries), min_of(e->reply_msec, e->tries),
               max_of(e->reply_msec, e->tries));
        for (unsigned i = 0; i < e->tries; i++)
                printf(" %.2f", e->reply_msec[i]);
        printf("\n  the %d messages at smtp-sink after the reply: median %.3f s (%.3f-%.3f s); each:",
               SITE_MESSAGES, median(e->deliver_sec, e->tries), min_of(e->deliver_sec, e->tries),
               max_of(e->deliver_sec, e->tries));
        for (unsigned i = 0; i < e->tries; i++)
                printf(" %.3f", e->deliver_sec[i]);
        printf("\n  ETRN of the empty site (%zu, %d after each try): median %.2f ms (%.2f-%.2f ms)\n",
               e->n_empty, EMPTY_ETRNS, median(e->empty_msec, e->n_empty), min_of(e->empty_msec, e->n_empty),
               max_of(e->empty_msec, e->n_empty));
        printf("  Postfix (the issue's): reply %.1f ms, delivered %.3f s later; tern / Postfix: reply %.2f "
               "x, "
               "delivery %.2f x (below 1: faster)\n",
               POSTFIX_ETRN_MSEC, POSTFIX_ETRN_DELIVERY_SEC,
               median(e->reply_msec, e->tries) / POSTFIX_ETRN_MSEC,
               median(e->deliver_sec, e->tries) / POSTFIX_ETRN_DELIVERY_SEC);
        if (e->warnings > 0) {
                printf("  %zu warning/error/reject lines in the daemons' logs, e.g.:\n", e->warnings);
                for (size_t j = 0; j < MIN(e->warnings, (size_t) ISSUES_KEPT); j++)
                        printf("    %s\n", e->issue[j]);
        }
}

static void report_ratios(Result all[][REPEATS_MAX], unsigned repeats, const bool *ran)
{
        double sink = ran[RUN_SINK_DIRECT] ? median_rate(all, RUN_SINK_DIRECT, repeats, e2e_rate) : -1;
        double fs = ran[RUN_FSYNC] ? median_rate(all, RUN_FSYNC, repeats, e2e_rate) : -1;
        const struct {
                RunKind k;
                double postfix;
                const char *what;
        } paths[] = {
                {RUN_SMTP, POSTFIX_SINK_RATE, "to smtp-sink"},
                {RUN_DISCARD, POSTFIX_DISCARD_RATE, "into discard"},
        };

        printf("\nmedians over %u repetitions; Postfix (the issue's, same smtp-source command, this "
               "machine):\n"
               "%.0f msgs/s end to end to smtp-sink, %.0f into discard\n",
               repeats, POSTFIX_SINK_RATE, POSTFIX_DISCARD_RATE);
        if (sink > 0)
                printf("baseline k, smtp-source -> smtp-sink: %.0f msgs/s (the client's ceiling here)\n",
                       sink);
        if (fs > 0)
                printf("baseline f, one stream of create+write+fsync+rename: %.0f files/s (%.2f ms each)\n",
                       fs, 1000.0 / fs);
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                RunKind k = paths[i].k;
                double inj, e2e;
                if (!ran[k])
                        continue;
                inj = median_rate(all, k, repeats, inject_rate);
                e2e = median_rate(all, k, repeats, e2e_rate);
                printf("%s: injection %.0f msgs/s, end to end %.0f msgs/s = %.2f x Postfix's %.0f",
                       run_specs[k].name, inj, e2e, e2e / paths[i].postfix, paths[i].postfix);
                if (sink > 0)
                        printf("; injection %.2f of baseline k", inj / sink);
                if (fs > 0)
                        printf("; %.2f x baseline f", inj / fs);
                printf("\n");
        }
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                RunKind k = paths[i].k;
                double e2e;
                bool every = true;
                if (!ran[k])
                        continue;
                e2e = median_rate(all, k, repeats, e2e_rate);
                for (unsigned j = 0; j < repeats; j++)
                        every = every && e2e_rate(&all[k][j]) >= GOAL_FACTOR * paths[i].postfix;
                printf("goal: >= %.0fx Postfix end to end %s (>= %.0f msgs/s): %.0f %s (every repetition: "
                       "%s)\n",
                       GOAL_FACTOR, paths[i].what, GOAL_FACTOR * paths[i].postfix, e2e,
                       e2e >= GOAL_FACTOR * paths[i].postfix ? "yes" : "no", every ? "yes" : "no");
        }
}

int main(int argc, char **argv)
{
        static const char *const postfix_programs[] = {"smtp-source", "smtp-sink", NULL};
        const char *base = "/var/tmp", *runs = "kfabte", *postfix_root = NULL;
        static Result all[_RUN_MAX][REPEATS_MAX];
        static EtrnResult etrn_res;
        bool ran[_RUN_MAX] = {};
        unsigned repeats = DEFAULT_REPEATS;
        char scratch[300];
        int opt;

        B.n = DEFAULT_MESSAGES;
        B.writes = DEFAULT_WRITES;
        B.etrn_tries = DEFAULT_ETRN_TRIES;
        while ((opt = getopt(argc, argv, "n:R:r:e:w:d:P:K")) > 0) {
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
                case 'e':
                        B.etrn_tries = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'w':
                        B.writes = (size_t) strtoul(optarg, NULL, 10);
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
        if ((argc - optind != 5 && argc - optind != 6) || B.n == 0 || B.writes == 0 || repeats == 0 ||
            repeats > REPEATS_MAX || B.etrn_tries == 0 || B.etrn_tries > ETRN_TRIES_MAX || !*runs ||
            strspn(runs, "kfabte") != strlen(runs)) {
                fprintf(stderr,
                        "usage: bench-smtpd [-n MESSAGES] [-R REPEATS (1-%d)] [-r RUNS (of kfabte)] "
                        "[-e ETRN_TRIES (1-%d)] [-w WRITES] [-d DIR] [-P POSTFIX_ROOT] [-K] TERN_SMTPD "
                        "TERN_QMGR "
                        "TERN_SMTP TERN_DISCARD TERN_FLUSH [TERN_ERROR]\n",
                        REPEATS_MAX, ETRN_TRIES_MAX);
                return 2;
        }
        B.smtpd = argv[optind];
        B.qmgr = argv[optind + 1];
        B.smtp = argv[optind + 2];
        B.discard = argv[optind + 3];
        B.flush = argv[optind + 4];
        if (strpbrk(runs, "kabte") &&
            !bench_postfix_find(&B.pf, postfix_root ?: TERN_BUILD_ROOT "/postfix-root",
                                postfix_root ? NULL : TERN_SOURCE_ROOT "/tools/fetch-postfix.sh",
                                postfix_programs)) {
                fprintf(stderr,
                        "%s: skipped: Postfix's smtp-source and smtp-sink are needed: Debian's postfix "
                        "package, "
                        "unpacked with tools/fetch-postfix.sh into %s\n",
                        bench_name, B.pf.root);
                return 77;
        }

        bench_session_start(base, STOP_TIMEOUT_MSEC);
        setenv("TERN_LOG", "stderr", 1);
        snprintf(scratch, sizeof(scratch), "%s/perf-check", bench_session.dir);
        B.perf = bench_perf_works(BENCH_PERF_SYNC_EVENTS, scratch);
        B.strace = system("strace -V >/dev/null 2>&1") == 0;
        if (strchr(runs, 't') && !B.strace)
                fprintf(stderr, "%s: no strace: run t is left out\n", bench_name);

        for (unsigned i = 0; i < repeats; i++)
                for (RunKind k = 0; k <= RUN_DISCARD; k++)
                        if (strchr(runs, run_specs[k].letter)) {
                                run_one(k, i, &all[k][i], NULL);
                                ran[k] = true;
                        }
        if (strchr(runs, 't') && B.strace) {
                run_one(RUN_TRACED, 0, &all[RUN_TRACED][0], NULL);
                ran[RUN_TRACED] = true;
        }
        if (strchr(runs, 'e')) {
                run_one(RUN_ETRN, 0, NULL, &etrn_res);
                ran[RUN_ETRN] = true;
        }

        report_runs(all, repeats, ran);
        report_etrn(&etrn_res);
        report_ratios(all, repeats, ran);
        fflush(stdout);
        return 0;
}
