/* SPDX-License-Identifier: MIT */
/*
 * bench/varlink.c - varlink call rate and latency against tern-testd, with a raw baseline
 *
 * Usage: bench-varlink [-n CALLS] [-c CLIENTS] [TERN_TESTD]
 *
 * Starts tern-testd by hand on a temporary runtime directory (its own main.cf with
 * runtime_directory = DIR) and waits
 * for its READY=1 on a notification socket of our own (NOTIFY_SOCKET), bounded by a deadline.
 * Then, in one run:
 *   varlink 1 conn   CALLS sequential io.tern.Test.Ping calls on one connection (the sync client);
 *   varlink N conn   CLIENTS processes, each with its own connection, CALLS/CLIENTS calls each;
 *   raw 1 conn / raw N conn   the same request/response pattern (the same request bytes, a
 *                    fixed NUL-terminated reply) against a minimal poll() loop in one process
 *                    over socketpairs: what the kernel and two context switches cost, no JSON.
 *   ... on one CPU   the one-connection cases again with the client and the daemon (and the raw
 *                    server) pinned to the same CPU: a round trip then costs two context
 *                    switches and no cross-CPU wakeup, which on a small VM is most of the
 *                    unpinned figure (and the same for varlink and raw).
 * For each case: calls/s (wall clock), p50 and p99 latency of single calls in µs, and the
 * varlink figure as a fraction of the raw one. The goal: >= 50,000 calls/s on one
 * connection and p99 < 1 ms; the program prints whether it was met and exits 0 either way.
 *
 * Limits: one machine, whatever else runs on it; the first 1000 calls of each case are a
 * warm-up and not counted. The figures depend on the build type: measure a release build.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "macro.h"
#include "varlink.h"

#define WARMUP_CALLS 1000U
#define CLIENTS_MAX 64

const char *const bench_name = "bench-varlink";

static const char ping_call[] = "{\"method\":\"io.tern.Test.Ping\",\"parameters\":{}}";
static const char ping_reply[] = "{\"parameters\":{}}";

/* ---- results ---------------------------------------------------------------------------- */

typedef struct Result {
        const char *name;
        size_t calls;
        double seconds;
        uint64_t *latency_ns; /* calls entries */
        double p50_us, p99_us, rate;
} Result;

static void result_finish(Result *r)
{
        latency_percentiles(r->latency_ns, r->calls, &r->p50_us, &r->p99_us);
        r->rate = (double)r->calls / r->seconds;
}

/* ---- clients ------------------------------------------------------------------------------ */

/* varlink_calls - N Ping calls on C, latencies into OUT (NULL: warm-up) */
static void varlink_calls(VarlinkClient *c, size_t n, uint64_t *out)
{
        for (size_t i = 0; i < n; i++) {
                VarlinkReply reply;
                uint64_t t0 = now_nsec();
                int r = varlink_client_call(c, "io.tern.Test.Ping", NULL, NULL, 0, 0, &reply);

                if (r != 0)
                        die("Ping", r < 0 ? r : EPROTO);
                varlink_reply_done(&reply);
                if (out)
                        out[i] = now_nsec() - t0;
        }
}

/* raw_calls - the same pattern on a plain socket: write the request, read up to the NUL */
static void raw_calls(int fd, size_t n, uint64_t *out)
{
        char buf[256];

        for (size_t i = 0; i < n; i++) {
                uint64_t t0 = now_nsec();
                bool done = false;

                if (write(fd, ping_call, sizeof(ping_call)) != (ssize_t)sizeof(ping_call))
                        die("raw write", errno);
                while (!done) {
                        ssize_t k = read(fd, buf, sizeof(buf));
                        if (k <= 0)
                                die("raw read", k < 0 ? errno : ECONNRESET);
                        done = memchr(buf, '\0', (size_t)k) != NULL;
                }
                if (out)
                        out[i] = now_nsec() - t0;
        }
}

/* ---- the raw baseline server: one process, poll() over its connections -------------------- */

static _noreturn_ void raw_server(const int *fds, size_t n)
{
        struct pollfd pfd[CLIENTS_MAX];
        size_t open = n;

        for (size_t i = 0; i < n; i++)
                pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        while (open > 0) {
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(EXIT_FAILURE);
                }
                for (size_t i = 0; i < n; i++) {
                        char buf[64 * 1024];
                        ssize_t k;

                        if (pfd[i].fd < 0 || !pfd[i].revents)
                                continue;
                        k = read(pfd[i].fd, buf, sizeof(buf));
                        if (k <= 0) {
                                close(pfd[i].fd);
                                pfd[i].fd = -1;
                                open--;
                                continue;
                        }
                        /* one fixed reply per NUL-terminated request */
                        for (ssize_t j = 0; j < k; j++)
                                if (buf[j] == '\0' && write(pfd[i].fd, ping_reply, sizeof(ping_reply)) !=
                                                              (ssize_t)sizeof(ping_reply))
                                        _exit(EXIT_FAILURE);
                }
        }
        _exit(EXIT_SUCCESS);
}

/* ---- cases -------------------------------------------------------------------------------- */

static Result run_varlink_sequential(const char *socket_path, size_t calls)
{
        Result res = {.name = "varlink, 1 connection", .calls = calls};
        VarlinkClient *c = NULL;
        uint64_t t0;
        int r;

        res.latency_ns = calloc(calls, sizeof(uint64_t));
        if (!res.latency_ns)
                die("calloc", ENOMEM);
        r = varlink_client_connect(socket_path, &c);
        if (r < 0)
                die("connect", r);
        varlink_client_set_timeout(c, 10 * USEC_PER_SEC);
        varlink_calls(c, WARMUP_CALLS, NULL);
        t0 = now_nsec();
        varlink_calls(c, calls, res.latency_ns);
        res.seconds = seconds_since(t0);
        varlink_client_free(c);
        result_finish(&res);
        return res;
}

static Result run_raw_sequential(size_t calls)
{
        Result res = {.name = "raw socketpair, 1 connection", .calls = calls};
        int fd, status;
        uint64_t t0;
        pid_t pid;

        res.latency_ns = calloc(calls, sizeof(uint64_t));
        if (!res.latency_ns)
                die("calloc", ENOMEM);
        pid = bench_raw_server_start(&fd, 1, raw_server);
        raw_calls(fd, WARMUP_CALLS, NULL);
        t0 = now_nsec();
        raw_calls(fd, calls, res.latency_ns);
        res.seconds = seconds_since(t0);
        close(fd);
        (void)waitpid(pid, &status, 0);
        result_finish(&res);
        return res;
}

/* A run_concurrent() case, as its clients see it: RAW_FDS NULL for varlink to SOCKET_PATH */
typedef struct Concurrent {
        const char *socket_path;
        const int *raw_fds;
        unsigned clients;
        size_t per;
        uint64_t *latency_ns;
} Concurrent;

/* concurrent_setup - client I: connect (varlink) and warm up; its VarlinkClient, or NULL (raw) */
static void *concurrent_setup(unsigned i, void *userdata)
{
        const Concurrent *cc = userdata;
        VarlinkClient *c = NULL;
        int r;

        if (cc->raw_fds) {
                raw_calls(cc->raw_fds[i], WARMUP_CALLS / cc->clients, NULL);
                return NULL;
        }
        r = varlink_client_connect(cc->socket_path, &c);
        if (r < 0)
                die("connect", r);
        varlink_client_set_timeout(c, 10 * USEC_PER_SEC);
        varlink_calls(c, WARMUP_CALLS / cc->clients, NULL);
        return c;
}

/* concurrent_work - client I: its PER timed calls */
static void concurrent_work(unsigned i, void *state, void *userdata)
{
        const Concurrent *cc = userdata;

        if (cc->raw_fds)
                raw_calls(cc->raw_fds[i], cc->per, cc->latency_ns + i * cc->per);
        else {
                varlink_calls(state, cc->per, cc->latency_ns + i * cc->per);
                varlink_client_free(state);
        }
}

/*
 * run_concurrent - CLIENTS processes, each its own connection, CALLS/CLIENTS calls each; they
 * start together when the parent closes the barrier pipe. RAW: socketpairs to one raw server.
 */
static Result run_concurrent(const char *name, const char *socket_path, size_t calls, unsigned clients,
                             bool raw)
{
        Result res = {.name = name};
        Concurrent cc = {.socket_path = socket_path, .clients = clients, .per = calls / clients};
        int raw_fds[CLIENTS_MAX];

        res.calls = cc.per * clients;
        res.latency_ns = cc.latency_ns = shared_array(res.calls);
        if (raw) {
                cc.raw_fds = raw_fds;
                res.seconds = bench_run_raw_clients(raw_fds, clients, raw_server, concurrent_setup,
                                                    concurrent_work, &cc);
        } else
                res.seconds = bench_run_clients(clients, concurrent_setup, concurrent_work, &cc);
        result_finish(&res);
        return res;
}

/* ---- tern-testd ------------------------------------------------------------------------- */

static const BenchDaemonSpec testd_spec = {
        .program = "tern-testd",
        .socket_name = "test",
        .config_extra = "",
};

static void print_row(const Result *r, const Result *baseline)
{
        printf("%-34s %9zu %12.0f %9.1f %9.1f", r->name, r->calls, r->rate, r->p50_us, r->p99_us);
        if (baseline)
                printf("   %5.2f x raw", r->rate / baseline->rate);
        printf("\n");
}

int main(int argc, char **argv)
{
        size_t calls = 100000;
        unsigned clients = 8;
        const char *testd = NULL;
        char default_testd[512];
        BenchDaemonDir d = {};
        Result vs, rs, vc, rc, vp, rp;
        cpu_set_t saved;
        char name_vc[64], name_rc[64];
        int c;

        while ((c = getopt(argc, argv, "n:c:h")) >= 0)
                switch (c) {
                case 'n':
                        calls = strtoul(optarg, NULL, 10);
                        break;
                case 'c':
                        clients = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                default:
                        fprintf(stderr, "usage: %s [-n CALLS] [-c CLIENTS] [TERN_TESTD]\n", argv[0]);
                        return c == 'h' ? EXIT_SUCCESS : 64;
                }
        if (calls < 100 || clients < 1 || clients > CLIENTS_MAX) {
                fprintf(stderr, "bench-varlink: need -n >= 100 and 1 <= -c <= %d\n", CLIENTS_MAX);
                return 64;
        }
        if (optind < argc)
                testd = argv[optind];
        else {
#ifdef TERN_BUILD_ROOT
                snprintf(default_testd, sizeof(default_testd), "%s/tests/tern-testd", TERN_BUILD_ROOT);
                testd = default_testd;
#else
                fprintf(stderr, "bench-varlink: give the path of tern-testd\n");
                return 64;
#endif
        }
        signal(SIGPIPE, SIG_IGN);

        bench_daemon_dir_start(&d, &testd_spec, testd);
        vs = run_varlink_sequential(d.socket, calls);
        snprintf(name_vc, sizeof(name_vc), "varlink, %u connections", clients);
        vc = run_concurrent(name_vc, d.socket, calls, clients, false);
        bench_daemon_dir_stop(&d);
        rs = run_raw_sequential(calls);
        snprintf(name_rc, sizeof(name_rc), "raw socketpair, %u connections", clients);
        rc = run_concurrent(name_rc, NULL, calls, clients, true);

        pin_to(0, &saved);
        bench_daemon_dir_start(&d, &testd_spec, testd);
        vp = run_varlink_sequential(d.socket, calls);
        vp.name = "varlink, 1 connection, one CPU";
        bench_daemon_dir_stop(&d);
        rp = run_raw_sequential(calls);
        rp.name = "raw socketpair, 1 conn, one CPU";
        pin_to(-1, &saved);

        printf("\nio.tern.Test.Ping against tern-testd; baseline: raw NUL-terminated echo, same run\n\n");
        printf("%-34s %9s %12s %9s %9s\n", "case", "calls", "calls/s", "p50 us", "p99 us");
        print_row(&vs, &rs);
        print_row(&rs, NULL);
        print_row(&vc, &rc);
        print_row(&rc, NULL);
        print_row(&vp, &rp);
        print_row(&rp, NULL);
        printf("\ngoal (one connection: >= 50000 calls/s, p99 < 1000 us): %s across CPUs, %s on one CPU\n",
               vs.rate >= 50000 && vs.p99_us < 1000 ? "met" : "NOT met",
               vp.rate >= 50000 && vp.p99_us < 1000 ? "met" : "NOT met");

        free(vs.latency_ns);
        free(rs.latency_ns);
        free(vp.latency_ns);
        free(rp.latency_ns);
        munmap(vc.latency_ns, vc.calls * sizeof(uint64_t));
        munmap(rc.latency_ns, rc.calls * sizeof(uint64_t));
        return EXIT_SUCCESS;
}
