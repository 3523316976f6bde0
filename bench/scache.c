/* SPDX-License-Identifier: MIT */
/*
 * bench/scache.c - save+find round trips through tern-scache with real descriptors, its RSS,
 * and a raw descriptor-passing baseline
 *
 * Usage: bench-scache [-n PAIRS] [-c CLIENTS] [-s SESSIONS] [TERN_SCACHE]
 *
 * Starts tern-scache by hand on a temporary runtime directory (its own main.cf: runtime_directory
 * = DIR, connection_cache_ttl_limit = 3600s so that nothing expires during the run) and waits for
 * its READY=1 on a notification socket of our own, bounded by a deadline. Then, in one run:
 *   scache 1 client     PAIRS save+find pairs through src/lib/scache-client.c: SaveEndpoint with
 *                       one end of a socketpair (SCM_RIGHTS), then FindEndpoint, which hands a
 *                       descriptor for it back (closed at once); one ScacheClient, one connection;
 *   scache N clients    CLIENTS processes, each its own client, socketpair and endpoint label,
 *                       PAIRS/CLIENTS pairs each, started together;
 *   raw 1 conn / N conn the same pattern without a cache: the same request bytes, one request and
 *                       one reply per operation over a socketpair to a minimal poll() process that
 *                       keeps the descriptor a "save" sends and sends it back with the reply to the
 *                       "find" (SCM_RIGHTS both ways, no JSON, no store): what passing a descriptor
 *                       costs by itself;
 *   ... on one CPU      the one-client cases again with the client and the daemon (and the raw
 *                       server) pinned to the same CPU: a round trip then costs two context
 *                       switches and no cross-CPU wakeup, which on a small VM is most of the
 *                       unpinned figure (as bench/varlink.c shows for plain calls);
 *   RSS                 tern-scache's VmRSS (/proc/PID/status) right after start, and with
 *                       SESSIONS (10,000) cached sessions (SESSIONS/10 endpoint labels of 10
 *                       sessions each, one destination bound to each endpoint; Postfix-sized
 *                       labels and properties), and the difference per session.
 * For each case: pairs/s (wall clock), p50 and p99 latency of one pair in µs, and the scache
 * figure as a fraction of the raw one. The goal: >= 30,000 save+find pairs/s; the program
 * prints whether each case met it and exits 0 either way.
 *
 * Descriptors: tern-scache raises its soft RLIMIT_NOFILE to the hard one and caches at most that
 * less SCACHE_FD_RESERVE; this program raises its own soft limit too, and says so if the hard
 * limit cannot hold SESSIONS (the daemon would then evict, and the RSS row says how many it held).
 *
 * Limits: one machine, whatever else runs on it; the first 1000 pairs of each case are a warm-up
 * and not counted. Measure a release build (meson setup build-release --buildtype=release).
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "json-util.h"
#include "macro.h"
#include "scache-client.h"
#include "varlink.h"

#define WARMUP_PAIRS 1000U
#define CLIENTS_MAX 64
#define GOAL_PAIRS_PER_SEC 30000.0
/* what SESSIONS sessions need beyond themselves: the daemon's SCACHE_FD_RESERVE */
#define DAEMON_FD_RESERVE 1024U

const char *const bench_name = "bench-scache";

/* A Postfix-sized endpoint label and properties (smtp_key.c, smtp_session_passivate()). */
#define ENDPOINT_FMT "smtp\n192.0.2.%u\n25\n1\n0\n0\n%u"
static const char endp_props[] = "tls_level=1\nreuse_count=0\nendpoint_features=0\nexpire_time=1700000300\n";
static const char dest_props[] =
        "destination=example.com\nhost_name=mx.example.com\nhost_addr=192.0.2.1\nhost_port=25\n"
        "destination_features=0\n";

/* The raw baseline's messages: the bytes of the same calls and of their replies. */
static const char raw_save[] =
        "{\"method\":\"io.tern.Scache.SaveEndpoint\",\"parameters\":{\"ttl\":2,"
        "\"endpoint\":\"smtp\\n192.0.2.1\\n25\\n1\\n0\\n0\\n0\",\"properties\":"
        "\"tls_level=1\\nreuse_count=0\\nendpoint_features=0\\nexpire_time=1700000300\\n\","
        "\"fd\":0}}";
static const char raw_find[] = "{\"method\":\"io.tern.Scache.FindEndpoint\",\"parameters\":{\"endpoint\":"
                               "\"smtp\\n192.0.2.1\\n25\\n1\\n0\\n0\\n0\"}}";
static const char raw_save_reply[] = "{\"parameters\":{}}";
static const char raw_find_reply[] = "{\"parameters\":{\"properties\":\"tls_level=1\\nreuse_count=0\\n"
                                     "endpoint_features=0\\nexpire_time=1700000300\\n\",\"fd\":0}}";

/* ---- results ---------------------------------------------------------------------------- */

typedef struct Result {
        const char *name;
        size_t pairs;
        double seconds;
        uint64_t *latency_ns; /* pairs entries, shared with forked clients */
        double p50_us, p99_us, rate;
} Result;

static void result_finish(Result *r)
{
        latency_percentiles(r->latency_ns, r->pairs, &r->p50_us, &r->p99_us);
        r->rate = (double) r->pairs / r->seconds;
}

/* ---- descriptor passing on a plain socket ------------------------------------------------- */

/* send_with_fd - write MSG (and its NUL) with FD (-1: none) as SCM_RIGHTS on its first byte */
static void send_with_fd(int sock, const char *msg, size_t len, int fd)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = {(void *) msg, len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        if (fd >= 0) {
                struct cmsghdr *cm;

                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t) len)
                die("sendmsg", errno);
}

/* recv_message - read up to and including a NUL; the descriptor that came with it, or -1.
 * Returns false at end of file. Requests and replies here are one per round trip, so a read
 * never takes bytes of the next message. */
static bool recv_message(int sock, int *ret_fd)
{
        char buf[4096];
        bool done = false;

        *ret_fd = -1;
        while (!done) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * 4)];
                } control;
                struct iovec iov = {buf, sizeof(buf)};
                struct msghdr mh = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = control.buf,
                                    .msg_controllen = sizeof(control.buf)};
                ssize_t k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

                if (k < 0)
                        die("recvmsg", errno);
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                                size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t i = 0; i < n; i++) {
                                        int fd;
                                        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                                        if (*ret_fd < 0)
                                                *ret_fd = fd;
                                        else
                                                close(fd);
                                }
                        }
                if (k == 0)
                        return false;
                done = memchr(buf, '\0', (size_t) k) != NULL;
        }
        return true;
}

/* ---- clients ------------------------------------------------------------------------------ */

/* scache_pairs - N save+find pairs of one end of a socketpair under ENDPOINT; latencies into OUT */
static void scache_pairs(ScacheClient *c, const char *endpoint, size_t n, uint64_t *out)
{
        int sp[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                die("socketpair", errno);
        for (size_t i = 0; i < n; i++) {
                uint64_t t0 = now_nsec();
                char *props = NULL;
                int fd = -1, r;

                r = scache_client_save_endpoint(c, 2, endpoint, endp_props, sp[0]);
                if (r < 0)
                        die("SaveEndpoint", r);
                r = scache_client_find_endpoint(c, endpoint, &props, &fd);
                if (r < 0)
                        die("FindEndpoint", r);
                free(props);
                close(fd);
                if (out)
                        out[i] = now_nsec() - t0;
        }
        close(sp[0]);
        close(sp[1]);
}

/* raw_pairs - the same two round trips on a plain socket to raw_server() */
static void raw_pairs(int sock, size_t n, uint64_t *out)
{
        int sp[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                die("socketpair", errno);
        for (size_t i = 0; i < n; i++) {
                uint64_t t0 = now_nsec();
                int fd;

                send_with_fd(sock, raw_save, sizeof(raw_save), sp[0]);
                if (!recv_message(sock, &fd))
                        die("raw server", ECONNRESET);
                send_with_fd(sock, raw_find, sizeof(raw_find), -1);
                if (!recv_message(sock, &fd) || fd < 0)
                        die("raw server: no descriptor", EPROTO);
                close(fd);
                if (out)
                        out[i] = now_nsec() - t0;
        }
        close(sp[0]);
        close(sp[1]);
}

/* ---- the raw baseline server: one process, poll() over its connections -------------------- */

/* raw_server - a request with a descriptor is a save: keep it, fixed reply; one without is a
 * find: reply with the kept descriptor and close ours */
static _noreturn_ void raw_server(const int *fds, size_t n)
{
        struct pollfd pfd[CLIENTS_MAX];
        int kept[CLIENTS_MAX];
        size_t open = n;

        for (size_t i = 0; i < n; i++) {
                pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                kept[i] = -1;
        }
        while (open > 0) {
                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(EXIT_FAILURE);
                }
                for (size_t i = 0; i < n; i++) {
                        int fd;

                        if (pfd[i].fd < 0 || !pfd[i].revents)
                                continue;
                        if (!recv_message(pfd[i].fd, &fd)) {
                                close(pfd[i].fd);
                                pfd[i].fd = -1;
                                open--;
                                continue;
                        }
                        if (fd >= 0) {
                                if (kept[i] >= 0)
                                        close(kept[i]);
                                kept[i] = fd;
                                send_with_fd(pfd[i].fd, raw_save_reply, sizeof(raw_save_reply), -1);
                        } else {
                                send_with_fd(pfd[i].fd, raw_find_reply, sizeof(raw_find_reply), kept[i]);
                                close(kept[i]);
                                kept[i] = -1;
                        }
                }
        }
        _exit(EXIT_SUCCESS);
}

/* ---- cases -------------------------------------------------------------------------------- */

static ScacheClient *client_new(const char *socket_path)
{
        ScacheClient *c = NULL;
        int r = scache_client_new(socket_path, 10 * USEC_PER_SEC, USEC_PER_SEC, &c);

        if (r < 0)
                die("scache_client_new", r);
        return c;
}

/* A run_case() case, as its clients see it: SOCKET_PATH NULL for raw, over RAW_FDS */
typedef struct Case {
        const char *socket_path;
        const int *raw_fds;
        unsigned clients;
        size_t per;
        uint64_t *latency_ns;
} Case;

/* A client's own state: its ScacheClient (NULL: raw) and endpoint label */
typedef struct CaseClient {
        ScacheClient *c;
        char endpoint[128];
} CaseClient;

/* case_setup - client I: its endpoint label, its client (not raw), and the warm-up */
static void *case_setup(unsigned i, void *userdata)
{
        const Case *k = userdata;
        CaseClient *cl = calloc(1, sizeof(CaseClient));

        if (!cl)
                die("calloc", ENOMEM);
        snprintf(cl->endpoint, sizeof(cl->endpoint), ENDPOINT_FMT, 1u, i);
        if (!k->socket_path)
                raw_pairs(k->raw_fds[i], WARMUP_PAIRS / k->clients, NULL);
        else {
                cl->c = client_new(k->socket_path);
                scache_pairs(cl->c, cl->endpoint, WARMUP_PAIRS / k->clients, NULL);
        }
        return cl;
}

/* case_work - client I: its PER timed pairs */
static void case_work(unsigned i, void *state, void *userdata)
{
        const Case *k = userdata;
        CaseClient *cl = state;

        if (!k->socket_path)
                raw_pairs(k->raw_fds[i], k->per, k->latency_ns + i * k->per);
        else {
                scache_pairs(cl->c, cl->endpoint, k->per, k->latency_ns + i * k->per);
                scache_client_free(cl->c);
        }
        free(cl);
}

/*
 * run_case - CLIENTS processes (SOCKET_PATH NULL: raw, to one raw server over socketpairs),
 * PAIRS/CLIENTS pairs each; they start together when the parent closes the barrier pipe.
 */
static Result run_case(const char *name, const char *socket_path, size_t pairs, unsigned clients)
{
        Result res = {.name = name};
        Case k = {.socket_path = socket_path, .clients = clients, .per = pairs / clients};
        int raw_fds[CLIENTS_MAX];

        res.pairs = k.per * clients;
        res.latency_ns = k.latency_ns = shared_array(res.pairs);
        if (!socket_path) {
                k.raw_fds = raw_fds;
                res.seconds = bench_run_raw_clients(raw_fds, clients, raw_server, case_setup, case_work, &k);
        } else
                res.seconds = bench_run_clients(clients, case_setup, case_work, &k);
        result_finish(&res);
        return res;
}

/* ---- tern-scache -------------------------------------------------------------------------- */

static const BenchDaemonSpec scache_spec = {
        .program = "tern-scache",
        .socket_name = "scache",
        .config_extra = "connection_cache_ttl_limit = 3600s\nmax_idle = 3600s\n",
};

/* cached_sessions - "sessions" from io.tern.Scache.Statistics */
static long cached_sessions(const char *socket_path)
{
        VarlinkClient *c = NULL;
        VarlinkReply reply;
        long n;
        int r;

        r = varlink_client_connect(socket_path, &c);
        if (r < 0)
                die("connect", r);
        varlink_client_set_timeout(c, 10 * USEC_PER_SEC);
        r = varlink_client_call(c, "io.tern.Scache.Statistics", NULL, NULL, 0, 0, &reply);
        if (r != 0)
                die("Statistics", r < 0 ? r : EPROTO);
        n = (long) json_integer_value(json_object_get(reply.parameters, "sessions"));
        varlink_reply_done(&reply);
        varlink_client_free(c);
        return n;
}

/* fill - SESSIONS sessions (socketpair ends, ours closed at once) under SESSIONS/10 endpoints, one
 * destination bound to each endpoint */
static void fill(const char *socket_path, unsigned sessions)
{
        ScacheClient *c = client_new(socket_path);

        for (unsigned i = 0; i < sessions; i++) {
                char endpoint[128];
                int sp[2], r;

                snprintf(endpoint, sizeof(endpoint), ENDPOINT_FMT, 2u + i / 10 % 250, i / 10);
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                        die("socketpair", errno);
                r = scache_client_save_endpoint(c, 3600, endpoint, endp_props, sp[0]);
                if (r < 0)
                        die("SaveEndpoint", r);
                close(sp[0]);
                close(sp[1]);
                if (i % 10 == 0) {
                        char destination[128];

                        snprintf(destination, sizeof(destination), "smtp\nexample%u.com\n1\n0\n0\n", i / 10);
                        r = scache_client_save_destination(c, 3600, destination, dest_props, endpoint);
                        if (r < 0)
                                die("SaveDestination", r);
                }
        }
        scache_client_free(c);
}

/* raise_nofile - the soft RLIMIT_NOFILE up to the hard one; returns the hard one */
static rlim_t raise_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                die("getrlimit", errno);
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                die("setrlimit", errno);
        return rl.rlim_max;
}

static void print_row(const Result *r, const Result *baseline)
{
        printf("%-30s %9zu %12.0f %9.1f %9.1f", r->name, r->pairs, r->rate, r->p50_us, r->p99_us);
        if (baseline)
                printf("   %5.2f x raw", r->rate / baseline->rate);
        printf("\n");
}

int main(int argc, char **argv)
{
        size_t pairs = 100000;
        unsigned clients = 8, sessions = 10000;
        const char *scache = NULL;
        char default_scache[512], name_sc[64], name_rc[64];
        BenchDaemonDir d = {};
        Result s1, r1, sc, rc, sp, rp;
        cpu_set_t saved;
        long rss_empty, rss_full, held;
        rlim_t nofile;
        int c;

        while ((c = getopt(argc, argv, "n:c:s:h")) >= 0)
                switch (c) {
                case 'n':
                        pairs = strtoul(optarg, NULL, 10);
                        break;
                case 'c':
                        clients = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        sessions = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                default:
                        fprintf(stderr, "usage: %s [-n PAIRS] [-c CLIENTS] [-s SESSIONS] [TERN_SCACHE]\n",
                                argv[0]);
                        return c == 'h' ? EXIT_SUCCESS : 64;
                }
        if (pairs < 100 || clients < 1 || clients > CLIENTS_MAX || sessions < 10) {
                fprintf(stderr, "bench-scache: need -n >= 100, 1 <= -c <= %d, -s >= 10\n", CLIENTS_MAX);
                return 64;
        }
        if (optind < argc)
                scache = argv[optind];
        else {
#ifdef TERN_BUILD_ROOT
                snprintf(default_scache, sizeof(default_scache), "%s/src/scache/tern-scache",
                         TERN_BUILD_ROOT);
                scache = default_scache;
#else
                fprintf(stderr, "bench-scache: give the path of tern-scache\n");
                return 64;
#endif
        }
        signal(SIGPIPE, SIG_IGN);
        /* the daemon inherits the hard limit and raises its soft one to it */
        nofile = raise_nofile();
        if (nofile != RLIM_INFINITY && nofile < (rlim_t) sessions + DAEMON_FD_RESERVE)
                fprintf(stderr,
                        "bench-scache: warning: RLIMIT_NOFILE hard limit %llu: tern-scache will hold fewer "
                        "than %u sessions\n",
                        (unsigned long long) nofile, sessions);

        bench_daemon_dir_start(&d, &scache_spec, scache);
        rss_empty = proc_status_kib(d.proc.daemon, "VmRSS");
        s1 = run_case("scache, 1 client", d.socket, pairs, 1);
        snprintf(name_sc, sizeof(name_sc), "scache, %u clients", clients);
        sc = run_case(name_sc, d.socket, pairs, clients);
        fill(d.socket, sessions);
        rss_full = proc_status_kib(d.proc.daemon, "VmRSS");
        held = cached_sessions(d.socket);
        bench_daemon_dir_stop(&d);

        r1 = run_case("raw socketpair, 1 conn", NULL, pairs, 1);
        snprintf(name_rc, sizeof(name_rc), "raw socketpair, %u conns", clients);
        rc = run_case(name_rc, NULL, pairs, clients);

        pin_to(0, &saved);
        bench_daemon_dir_start(&d, &scache_spec, scache);
        sp = run_case("scache, 1 client, one CPU", d.socket, pairs, 1);
        bench_daemon_dir_stop(&d);
        rp = run_case("raw socketpair, 1 conn, 1 CPU", NULL, pairs, 1);
        pin_to(-1, &saved);

        printf("\nSaveEndpoint + FindEndpoint pairs through tern-scache (src/lib/scache-client.c), one end "
               "of a\n"
               "socketpair passed each way; baseline: the same request/reply pattern with SCM_RIGHTS over a "
               "raw\n"
               "socketpair to a poll() process that keeps and returns the descriptor, same run\n\n");
        printf("%-30s %9s %12s %9s %9s\n", "case", "pairs", "pairs/s", "p50 us", "p99 us");
        print_row(&s1, &r1);
        print_row(&r1, NULL);
        print_row(&sc, &rc);
        print_row(&rc, NULL);
        print_row(&sp, &rp);
        print_row(&rp, NULL);
        printf("\ntern-scache VmRSS: %ld KiB empty, %ld KiB with %ld cached sessions (%u endpoints, %u "
               "destinations): %.2f KiB per session\n",
               rss_empty, rss_full, held, sessions / 10, sessions / 10,
               held > 0 ? (double) (rss_full - rss_empty) / (double) held : 0.0);
        printf("goal (>= %.0f save+find pairs/s): 1 client %s, %u clients %s, 1 client on one CPU %s\n",
               GOAL_PAIRS_PER_SEC, s1.rate >= GOAL_PAIRS_PER_SEC ? "met" : "NOT met", clients,
               sc.rate >= GOAL_PAIRS_PER_SEC ? "met" : "NOT met",
               sp.rate >= GOAL_PAIRS_PER_SEC ? "met" : "NOT met");

        munmap(s1.latency_ns, s1.pairs * sizeof(uint64_t));
        munmap(sc.latency_ns, sc.pairs * sizeof(uint64_t));
        munmap(r1.latency_ns, r1.pairs * sizeof(uint64_t));
        munmap(rc.latency_ns, rc.pairs * sizeof(uint64_t));
        munmap(sp.latency_ns, sp.pairs * sizeof(uint64_t));
        munmap(rp.latency_ns, rp.pairs * sizeof(uint64_t));
        return EXIT_SUCCESS;
}
