/* SPDX-License-Identifier: MIT */
/*
 * scache-client-test.c - src/lib/scache-client.c against a real tern-scache (never installed)
 *
 * Usage: scache-client-test live SOCKET RETRY_DELAY_MS
 *        scache-client-test absent SOCKET RETRY_DELAY_MS
 *
 * Run by tests/integration/test_scache.py, which judges every line it prints.
 *
 * live (tern-scache serves SOCKET):
 *   1. one end of a socketpair is saved under an endpoint, the endpoint is bound to a
 *      destination, the destination is found: the descriptor that comes back is the same
 *      connection (bytes written to it come out at the other end of the pair), with both
 *      properties; a second find misses (-ENOENT); a save with ttl 0 is refused (-EINVAL);
 *   2. it prints "kill the daemon" and waits for a line on stdin (the suite SIGKILLs tern-scache);
 *   3. a find: the first try fails on the dead connection (EPIPE: Postfix says nothing), the
 *      second, RETRY_DELAY_MS later, cannot connect (ECONNREFUSED: the socket file is left) and
 *      warns, then caching is disabled;
 *   4. a save and a find: -EUNATCH at once (well within RETRY_DELAY_MS), no further warning.
 * absent (nothing at SOCKET): steps 3 and 4, with ENOENT on both tries (the first one quiet).
 * At the end its descriptor count must be what it was at the start.
 *
 * Warnings from the library's callback come out as "warn: TEXT" lines, where they happen.
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "scache-client.h"

/* "at once": a disabled client answers without trying, so far below any retry delay */
#define AT_ONCE_MSEC 50

static const char *yes_no(bool b)
{
        return b ? "yes" : "no";
}

static void on_warn(const char *text, void *userdata)
{
        printf("warn: %s\n", text);
        fflush(stdout);
}

static const char *errname(int r)
{
        static char buf[64];

        switch (-r) {
        case 0:
                return "0";
        case ENOENT:
                return "ENOENT";
        case EINVAL:
                return "EINVAL";
        case EUNATCH:
                return "EUNATCH";
        case EPIPE:
                return "EPIPE";
        case ECONNREFUSED:
                return "ECONNREFUSED";
        case ECONNRESET:
                return "ECONNRESET";
        default:
                snprintf(buf, sizeof(buf), "%d (%s)", r, strerror(-r));
                return buf;
        }
}

static uint64_t now_msec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* count_fds - entries of /proc/self/fd (the directory's own descriptor included, every time) */
static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;

        if (!d)
                return -1;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static int fail(const char *what)
{
        printf("FAILED: %s\n", what);
        return 1;
}

/* live_steps - step 1: save, bind, find through the cache; 0 when all went as expected */
static int live_steps(ScacheClient *c)
{
        _cleanup_(freep) char *dprops = NULL, *eprops = NULL, *p2 = NULL;
        int pair[2], fd = -EBADF, fd2 = -EBADF, r;
        char buf[16] = {};

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return fail("socketpair");
        r = scache_client_save_endpoint(c, 10, "smtp\n127.0.0.1\n25", "reuse_count=0\n", pair[0]);
        printf("save-endpoint: %s\n", errname(r));
        safe_close(pair[0]); /* the caller's copy: the cache holds its own */
        r = scache_client_save_destination(c, 10, "smtp\nexample.com", "destination=example.com\n",
                                           "smtp\n127.0.0.1\n25");
        printf("save-destination: %s\n", errname(r));
        r = scache_client_find_destination(c, "smtp\nexample.com", &dprops, &eprops, &fd);
        printf("find-destination: %s\n", errname(r));
        if (r < 0) {
                safe_close(pair[1]);
                return 1;
        }
        printf("destination properties: %s", dprops);
        printf("endpoint properties: %s", eprops);
        if (write(fd, "ping", 4) != 4 || read(pair[1], buf, sizeof(buf) - 1) != 4)
                printf("same connection: no (%m)\n");
        else
                printf("same connection: %s\n", streq(buf, "ping") ? "yes" : buf);
        safe_close(fd);
        safe_close(pair[1]);
        r = scache_client_find_endpoint(c, "smtp\n127.0.0.1\n25", &p2, &fd2);
        printf("find-endpoint again: %s\n", errname(r));
        safe_close(fd2);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return fail("socketpair");
        r = scache_client_save_endpoint(c, 0, "smtp\n127.0.0.1\n25", "", pair[0]);
        printf("save-endpoint ttl 0: %s\n", errname(r));
        safe_close(pair[0]);
        safe_close(pair[1]);
        printf("disabled: %s\n", yes_no(scache_client_disabled(c)));
        return 0;
}

/* dead_steps - steps 3 and 4: the service is gone */
static int dead_steps(ScacheClient *c, unsigned retry_delay_msec)
{
        _cleanup_(freep) char *props = NULL, *dprops = NULL, *eprops = NULL;
        int pair[2], fd = -EBADF, r;
        uint64_t t0, ms;

        t0 = now_msec();
        r = scache_client_find_endpoint(c, "smtp\n127.0.0.1\n25", &props, &fd);
        ms = now_msec() - t0;
        printf("find-endpoint: %s\n", errname(r));
        printf("waited the retry delay: %s\n", yes_no(ms >= retry_delay_msec));
        printf("disabled: %s\n", yes_no(scache_client_disabled(c)));
        safe_close(fd);

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return fail("socketpair");
        t0 = now_msec();
        r = scache_client_save_endpoint(c, 10, "smtp\n127.0.0.1\n25", "", pair[0]);
        ms = now_msec() - t0;
        printf("save-endpoint: %s%s\n", errname(r), ms < AT_ONCE_MSEC ? " at once" : " (slowly)");
        safe_close(pair[0]);
        safe_close(pair[1]);
        t0 = now_msec();
        r = scache_client_find_destination(c, "smtp\nexample.com", &dprops, &eprops, &fd);
        ms = now_msec() - t0;
        printf("find-destination: %s%s\n", errname(r), ms < AT_ONCE_MSEC ? " at once" : " (slowly)");
        safe_close(fd);
        return 0;
}

int main(int argc, char **argv)
{
        ScacheClient *c = NULL;
        unsigned retry_delay_msec;
        char line[16];
        int fds0, r;

        if (argc != 4 || !(streq(argv[1], "live") || streq(argv[1], "absent"))) {
                fprintf(stderr, "Usage: %s live|absent SOCKET RETRY_DELAY_MS\n", argv[0]);
                return 64;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        retry_delay_msec = (unsigned) atoi(argv[3]);
        fds0 = count_fds();
        r = scache_client_new(argv[2], 5 * USEC_PER_SEC, (uint64_t) retry_delay_msec * 1000, &c);
        if (r < 0)
                return fail("scache_client_new");
        scache_client_set_warn(c, on_warn, NULL);

        if (streq(argv[1], "live")) {
                if (live_steps(c) != 0) {
                        scache_client_free(c);
                        return 1;
                }
                printf("kill the daemon\n");
                if (!fgets(line, sizeof(line), stdin))
                        return fail("no line on stdin");
        }
        r = dead_steps(c, retry_delay_msec);
        scache_client_free(c);
        printf("descriptors as at the start: %s\n", yes_no(count_fds() == fds0));
        return r;
}
