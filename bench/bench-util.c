/* SPDX-License-Identifier: MIT */
/*
 * bench/bench-util.c - the benchmarks' shared helpers (see bench-util.h)
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

uint64_t now_nsec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

double seconds_since(uint64_t t0)
{
        return (double) (now_nsec() - t0) / 1e9;
}

_noreturn_ void die(const char *what, int error)
{
        fprintf(stderr, "%s: %s: %s\n", bench_name, what, strerror(abs(error)));
        exit(EXIT_FAILURE);
}

void wait_clients(const pid_t *pids, unsigned n)
{
        for (unsigned i = 0; i < n; i++) {
                int status;
                if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        die("a client failed", EPROTO);
        }
}

/* notify_bind - a datagram socket at PATH that receives its senders' credentials */
static int notify_bind(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int nfd, one = 1;

        if (strlen(path) >= sizeof(sa.sun_path))
                die(path, ENAMETOOLONG);
        (void) unlink(path);
        nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        strcpy(sa.sun_path, path);
        if (nfd < 0 || bind(nfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            setsockopt(nfd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                die("notify socket", errno);
        return nfd;
}

/* notify_ready - read one datagram from NFD: the sender's pid if it holds a READY=1 line, else 0 */
static pid_t notify_ready(int nfd)
{
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        char buf[4096];
        struct iovec iov = {buf, sizeof(buf) - 1};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = &control,
                            .msg_controllen = sizeof(control)};
        bool ready = false;
        pid_t pid = 0;
        ssize_t k;

        k = recvmsg(nfd, &mh, MSG_DONTWAIT);
        if (k <= 0)
                return 0;
        buf[k] = '\0';
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
                ready = ready || streq(line, "READY=1");
        if (!ready)
                return 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                        struct ucred uc;
                        memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                        pid = uc.pid;
                }
        if (pid == 0)
                die("READY=1 without credentials", EPROTO);
        return pid;
}

void bench_daemon_start(BenchDaemon *d, const char *daemon, const char *notify, BenchExecFn exec,
                        const void *userdata)
{
        char msg[256];
        uint64_t deadline;
        int nfd;

        /* READY=1 comes to our own notification socket: no polling for the socket file. */
        nfd = notify_bind(notify);
        d->daemon = 0;
        d->pid = fork();
        if (d->pid < 0)
                die("fork", errno);
        if (d->pid == 0) {
                setenv("NOTIFY_SOCKET", notify, 1);
                setenv("TERN_LOG", "stderr", 1);
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                exec(userdata);
                _exit(127);
        }

        deadline = now_nsec() + (uint64_t) BENCH_STARTUP_TIMEOUT_MSEC * 1000000ULL;
        while (d->daemon == 0) {
                struct pollfd p = {.fd = nfd, .events = POLLIN};
                uint64_t now = now_nsec();
                int status;

                if (now >= deadline) {
                        snprintf(msg, sizeof(msg), "%s did not send READY=1 in time", daemon);
                        die(msg, ETIMEDOUT);
                }
                if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
                        snprintf(msg, sizeof(msg), "%s exited before READY=1", daemon);
                        die(msg, ECHILD);
                }
                if (poll(&p, 1, (int) MIN((deadline - now) / 1000000ULL + 1, 100ULL)) <= 0)
                        continue; /* re-check the child and the deadline */
                d->daemon = notify_ready(nfd);
        }
        close(nfd);
}

int bench_daemon_stop(BenchDaemon *d)
{
        int status;

        if (d->pid <= 0)
                return -1;
        kill(d->daemon > 0 ? d->daemon : d->pid, SIGTERM);
        if (waitpid(d->pid, &status, 0) < 0)
                return -1;
        return status;
}
