/* SPDX-License-Identifier: MIT */
/*
 * bench/submit.c - local submission rate through tern-submit, against the disk's durable-write rate
 *
 * Usage: bench-submit [-n MESSAGES] [-m SENDMAIL_MESSAGES] [-c CLIENTS] [-s SIZE] [-d DIR]
 *                     [TERN_SUBMIT TERN_SENDMAIL]
 *
 * Everything happens in a temporary directory under DIR (default /var/tmp: a disk, not a tmpfs,
 * or the figures mean nothing). In one run:
 *   baseline        MESSAGES times: create a SIZE-byte file in queue_directory/incoming, write it,
 *                   fsync it, rename it; one stream. What one durable write costs here.
 *   varlink 1       MESSAGES io.tern.Submit.Submit calls on one connection, each message in a
 *                   fresh memfd with its size (tern's own C client, src/lib/varlink.h).
 *   varlink C       the same from CLIENTS processes, MESSAGES/CLIENTS each.
 *   sendmail 1/C    SENDMAIL_MESSAGES runs of tern-sendmail (fork + exec per message), from one
 *                   and from CLIENTS processes.
 * Each case gets a fresh tern-submit (by hand, on its own main.cf; READY=1 awaited on a
 * NOTIFY_SOCKET of ours, bounded) and an empty incoming; afterwards incoming must hold exactly
 * the messages acknowledged.
 *
 * Syncs per message: tern-submit runs under `perf stat -e syscalls:sys_enter_{fsync,fdatasync,
 * syncfs}` (tracepoint counters in the kernel, no ptrace: the daemon runs at full speed), so
 * the count is every sync the daemon made in the case, start-up included (none are expected
 * there). Without perf (or without tracepoint access) the column says n/a. The daemon's pid comes
 * with its READY=1 (SCM_CREDENTIALS), and SIGTERM goes to it, not to perf.
 *
 * The goal: with several clients, more messages/s than the single-stream baseline
 * (group commit), while nothing is acknowledged before it is durable; the program prints
 * whether the CLIENTS-client varlink case met it, and exits 0 either way.
 *
 * Limits: one machine and whatever else it runs; the disk's cache policy decides what fsync
 * costs (a virtual disk with a write-back cache makes it cheap). Measure a release build.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "bench-util.h"
#include "json-util.h"
#include "macro.h"
#include "varlink.h"

/* A submission waits for a group commit: generous, against a wedged daemon. */
#define CALL_TIMEOUT_SEC 60
#define CLIENTS_MAX 64

const char *const bench_name = "bench-submit";

typedef struct Setup {
        char dir[256];
        char spool[300], incoming[320], rt[300], config[300], notify[300], perf_out[300], message[300];
        const char *submit, *sendmail;
        bool perf;
        size_t size;
} Setup;

typedef struct Result {
        char name[64];
        size_t messages;
        double seconds;
        long syncs;             /* -1: not counted */
} Result;

/* ---- the message --------------------------------------------------------------------------- */

/* make_message - SIZE bytes of header and body lines */
static char *make_message(size_t size)
{
        static const char head[] = "Subject: bench-submit\n\n";
        char *m = malloc(size + 1);
        size_t i;

        if (!m || size < sizeof(head) + 2)
                die("message size", EINVAL);
        memcpy(m, head, sizeof(head) - 1);
        for (i = sizeof(head) - 1; i < size; i++)
                m[i] = (i + 1) % 64 == 0 || i == size - 1 ? '\n' : (char) ('a' + i % 26);
        m[size] = '\0';
        return m;
}

/* ---- the daemon ------------------------------------------------------------------------------ */

/* exec_submit - the child's last step: tern-submit -c CONFIG, under perf stat when it works */
static void exec_submit(const void *userdata)
{
        const Setup *s = userdata;

        /* the daemon's log lines (one per message) would only slow the terminal */
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0)
                dup2(null, STDERR_FILENO);
        if (s->perf)
                execlp("perf", "perf", "stat", "-x,", "-o", s->perf_out, "-e", BENCH_PERF_SYNC_EVENTS, "--",
                       s->submit, "-c", s->config, (char *) NULL);
        else
                execl(s->submit, s->submit, "-c", s->config, (char *) NULL);
}

/* daemon_stop - SIGTERM to tern-submit, wait for what we forked; the syncs perf counted, or -1 */
static long daemon_stop(const Setup *s, BenchDaemon *d)
{
        /* BENCH_PERF_SYNC_EVENTS, one by one */
        static const char *const events[] = {"syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync",
                                             "syscalls:sys_enter_syncfs"};
        long total = 0;
        int status;

        status = bench_daemon_stop(d);
        if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "bench-submit: warning: tern-submit did not exit cleanly (status %d)\n",
                        status);
        if (!s->perf)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(events); i++) {
                long v = bench_perf_count(s->perf_out, events[i]);
                if (v < 0)
                        return -1; /* not counted (tracepoints closed) */
                total += v;
        }
        return total;
}

/* ---- the spool ----------------------------------------------------------------------------- */

/* incoming_clear - remove every file in incoming; returns how many there were */
static size_t incoming_clear(const Setup *s)
{
        DIR *dir = opendir(s->incoming);
        struct dirent *de;
        size_t n = 0;

        if (!dir)
                return 0;
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.' && unlinkat(dirfd(dir), de->d_name, 0) == 0)
                        n++;
        closedir(dir);
        return n;
}

/* ---- clients ------------------------------------------------------------------------------- */

static void varlink_submit_n(const Setup *s, const char *msg, size_t n)
{
        char path[512];
        VarlinkClient *c = NULL;
        int r;

        snprintf(path, sizeof(path), "%s/submit", s->rt);
        r = varlink_client_connect(path, &c);
        if (r < 0)
                die("connect", r);
        varlink_client_set_timeout(c, CALL_TIMEOUT_SEC * USEC_PER_SEC);
        for (size_t i = 0; i < n; i++) {
                int fd = memfd_create("bench-submit", MFD_CLOEXEC);
                VarlinkReply reply = {};

                if (fd < 0 || write(fd, msg, s->size) != (ssize_t) s->size)
                        die("memfd", errno);
                r = varlink_client_call(c, "io.tern.Submit.Submit",
                                        json_pack("{s:s,s:[s],s:i,s:I}", "sender", "bench@example.org",
                                                  "recipients", "rcpt@example.com", "fd", 0, "size",
                                                  (json_int_t) s->size),
                                        &fd, 1, 0, &reply);
                close(fd);
                if (r != 0) {
                        fprintf(stderr, "bench-submit: Submit: %s\n", r < 0 ? strerror(-r) : reply.error);
                        exit(EXIT_FAILURE);
                }
                varlink_reply_done(&reply);
        }
        varlink_client_free(c);
}

static void sendmail_submit_n(const Setup *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int status;
                pid_t pid = fork();

                if (pid < 0)
                        die("fork", errno);
                if (pid == 0) {
                        int fd = open(s->message, O_RDONLY | O_CLOEXEC);
                        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                                _exit(127);
                        execl(s->sendmail, s->sendmail, "-C", s->config, "-f", "bench@example.org",
                              "rcpt@example.com", (char *) NULL);
                        _exit(127);
                }
                if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        die("tern-sendmail failed", EPROTO);
        }
}

/* A run_case() case, as its clients see it */
typedef struct Case {
        const Setup *s;
        const char *msg, *how;
        size_t per;
} Case;

/* case_work - one client: PER messages through tern-sendmail or varlink */
static void case_work(unsigned i, void *state, void *userdata)
{
        const Case *k = userdata;

        if (streq(k->how, "sendmail"))
                sendmail_submit_n(k->s, k->per);
        else
                varlink_submit_n(k->s, k->msg, k->per);
}

/*
 * run_case - a fresh daemon; CLIENTS processes submit MESSAGES/CLIENTS each (through tern-sendmail
 * or varlink), starting together; wall clock from the start to the last client's exit.
 */
static Result run_case(const Setup *s, const char *msg, const char *how, size_t messages, unsigned clients)
{
        Result res = { .messages = messages / clients * clients };
        Case k = { .s = s, .msg = msg, .how = how, .per = messages / clients };
        BenchDaemon d;
        size_t found;

        snprintf(res.name, sizeof(res.name), "%s, %u client%s", how, clients, clients > 1 ? "s" : "");
        incoming_clear(s);
        bench_daemon_start(&d, "tern-submit", s->notify, exec_submit, s);
        res.seconds = bench_run_clients(clients, NULL, case_work, &k);
        res.syncs = daemon_stop(s, &d);
        found = incoming_clear(s);
        if (found != res.messages) {
                fprintf(stderr, "bench-submit: %zu messages acknowledged, %zu files in incoming\n",
                        res.messages, found);
                exit(EXIT_FAILURE);
        }
        return res;
}

/* run_baseline - create + write + fsync + rename of SIZE-byte files, one stream, in incoming
 * itself (the files are removed afterwards) */
static Result run_baseline(const Setup *s, size_t n)
{
        Result res = { .name = "baseline: create+write+fsync+rename", .messages = n, .syncs = (long) n };

        res.seconds = bench_durable_writes(s->incoming, n, s->size);
        return res;
}

static void print_row(const Result *r, const Result *baseline)
{
        double rate = (double) r->messages / r->seconds;

        printf("%-40s %8zu %10.0f", r->name, r->messages, rate);
        if (r->syncs >= 0)
                printf(" %10.3f", (double) r->syncs / (double) r->messages);
        else
                printf(" %10s", "n/a");
        printf(" %8.2f x\n", rate / ((double) baseline->messages / baseline->seconds));
}

int main(int argc, char **argv)
{
        size_t messages = 2000, sendmail_messages = 400;
        unsigned clients = 8;
        const char *base = "/var/tmp";
        Setup s = { .size = 1024 };
        Result base_r, res[4];
        char *msg;
        FILE *f;
        int c;

        while ((c = getopt(argc, argv, "n:m:c:s:d:h")) >= 0)
                switch (c) {
                case 'n':
                        messages = strtoul(optarg, NULL, 10);
                        break;
                case 'm':
                        sendmail_messages = strtoul(optarg, NULL, 10);
                        break;
                case 'c':
                        clients = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        s.size = strtoul(optarg, NULL, 10);
                        break;
                case 'd':
                        base = optarg;
                        break;
                default:
                        fprintf(stderr,
                                "usage: %s [-n MESSAGES] [-m SENDMAIL_MESSAGES] [-c CLIENTS] [-s SIZE] "
                                "[-d DIR] [TERN_SUBMIT TERN_SENDMAIL]\n",
                                argv[0]);
                        return c == 'h' ? EXIT_SUCCESS : 64;
                }
        if (clients < 1 || clients > CLIENTS_MAX || messages < clients || sendmail_messages < clients ||
            s.size < 64 || s.size > 1024 * 1024) {
                fprintf(stderr, "bench-submit: need 1 <= -c <= %d, -n and -m >= -c, 64 <= -s <= 1 MiB\n",
                        CLIENTS_MAX);
                return 64;
        }
        if (optind + 2 <= argc) {
                s.submit = argv[optind];
                s.sendmail = argv[optind + 1];
        } else {
#ifdef TERN_BUILD_ROOT
                s.submit = TERN_BUILD_ROOT "/src/submit/tern-submit";
                s.sendmail = TERN_BUILD_ROOT "/src/sendmail/tern-sendmail";
#else
                fprintf(stderr, "bench-submit: give the paths of tern-submit and tern-sendmail\n");
                return 64;
#endif
        }
        signal(SIGPIPE, SIG_IGN);

        snprintf(s.dir, sizeof(s.dir), "%s/tern-bench-submit.XXXXXX", base);
        if (!mkdtemp(s.dir))
                die(s.dir, errno);
        snprintf(s.spool, sizeof(s.spool), "%s/spool", s.dir);
        snprintf(s.incoming, sizeof(s.incoming), "%s/incoming", s.spool);
        snprintf(s.rt, sizeof(s.rt), "%s/run", s.dir);
        snprintf(s.config, sizeof(s.config), "%s/main.cf", s.dir);
        snprintf(s.notify, sizeof(s.notify), "%s/notify", s.dir);
        snprintf(s.perf_out, sizeof(s.perf_out), "%s/perf.csv", s.dir);
        snprintf(s.message, sizeof(s.message), "%s/message", s.dir);
        if (mkdir(s.spool, 0700) < 0 || mkdir(s.incoming, 0700) < 0 || mkdir(s.rt, 0755) < 0)
                die("mkdir", errno);
        f = fopen(s.config, "we");
        if (!f)
                die(s.config, errno);
        fprintf(f, "# written by bench-submit\nqueue_directory = %s\nruntime_directory = %s\n"
                   "myhostname = tern.test\nmyorigin = tern.test\n", s.spool, s.rt);
        fclose(f);
        msg = make_message(s.size);
        f = fopen(s.message, "we");
        if (!f || fwrite(msg, 1, s.size, f) != s.size || fclose(f) != 0)
                die(s.message, errno);
        s.perf = bench_perf_works(BENCH_PERF_SYNC_EVENTS, s.perf_out);

        base_r = run_baseline(&s, messages);
        res[0] = run_case(&s, msg, "varlink", messages, 1);
        res[1] = run_case(&s, msg, "varlink", messages, clients);
        res[2] = run_case(&s, msg, "sendmail", sendmail_messages, 1);
        res[3] = run_case(&s, msg, "sendmail", sendmail_messages, clients);

        printf("\nlocal submission of %zu-byte messages into %s; syncs counted %s\n\n", s.size, s.spool,
               s.perf ? "by perf (fsync+fdatasync+syncfs of tern-submit)" : "n/a (perf unavailable)");
        printf("%-40s %8s %10s %10s %10s\n", "case", "messages", "msgs/s", "syncs/msg", "vs base");
        print_row(&base_r, &base_r);
        for (size_t i = 0; i < ELEMENTSOF(res); i++)
                print_row(&res[i], &base_r);
        printf("\ngoal (%u varlink clients faster than one stream of fsyncs): %s\n", clients,
               (double) res[1].messages / res[1].seconds > (double) base_r.messages / base_r.seconds
                       ? "met"
                       : "NOT met");

        free(msg);
        (void) unlink(s.config);
        (void) unlink(s.notify);
        (void) unlink(s.perf_out);
        (void) unlink(s.message);
        {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", s.dir);
                (void) !system(cmd);
        }
        return EXIT_SUCCESS;
}
