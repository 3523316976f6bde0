/* SPDX-License-Identifier: MIT */
/*
 * bench/bench-util.c - the benchmarks' shared helpers (see bench-util.h)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "queue-file.h"

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

/* exec_config - the child's last step: PATH -c CONFIG */
static void exec_config(const void *userdata)
{
        const char *const *argv = userdata; /* PATH, CONFIG */

        execl(argv[0], argv[0], "-c", argv[1], (char *) NULL);
        fprintf(stderr, "%s: cannot run %s: %s\n", bench_name, argv[0], strerror(errno));
}

void bench_daemon_dir_start(BenchDaemonDir *d, const BenchDaemonSpec *spec, const char *path)
{
        const char *argv[2] = {path, d->config};
        char msg[256];
        FILE *f;

        snprintf(d->dir, sizeof(d->dir), "/tmp/tern-bench.XXXXXX");
        if (!mkdtemp(d->dir))
                die("mkdtemp", errno);
        snprintf(d->config, sizeof(d->config), "%s/main.cf", d->dir);
        snprintf(d->socket, sizeof(d->socket), "%s/%s", d->dir, spec->socket_name);
        snprintf(d->notify, sizeof(d->notify), "%s/notify", d->dir);
        f = fopen(d->config, "we");
        if (!f)
                die(d->config, errno);
        fprintf(f, "# written by %s\nruntime_directory = %s\n%s", bench_name, d->dir, spec->config_extra);
        fclose(f);

        bench_daemon_start(&d->proc, spec->program, d->notify, exec_config, argv);
        if (access(d->socket, F_OK) < 0) {
                snprintf(msg, sizeof(msg), "%s is ready but its socket is not there", spec->program);
                die(msg, errno);
        }
}

void bench_daemon_dir_stop(BenchDaemonDir *d)
{
        (void) bench_daemon_stop(&d->proc);
        (void) unlink(d->socket);
        (void) unlink(d->notify);
        (void) unlink(d->config);
        (void) rmdir(d->dir);
}

uint64_t *shared_array(size_t n)
{
        void *p =
                mmap(NULL, n * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                die("mmap", errno);
        return p;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

void latency_percentiles(uint64_t *ns, size_t n, double *ret_p50_us, double *ret_p99_us)
{
        qsort(ns, n, sizeof(uint64_t), cmp_u64);
        *ret_p50_us = (double) ns[n / 2] / 1000.0;
        *ret_p99_us = (double) ns[MIN(n - 1, n * 99 / 100)] / 1000.0;
}

void pin_to(int cpu, cpu_set_t *saved)
{
        cpu_set_t set;

        if (cpu < 0) {
                (void) sched_setaffinity(0, sizeof(*saved), saved);
                return;
        }
        (void) sched_getaffinity(0, sizeof(*saved), saved);
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                die("sched_setaffinity", errno);
}

double bench_run_clients(unsigned n, BenchClientSetupFn setup, BenchClientWorkFn work, void *userdata)
{
        pid_t *pids = calloc(n, sizeof(pid_t));
        int barrier[2];
        uint64_t t0;
        double seconds;

        if (!pids)
                die("calloc", ENOMEM);
        if (pipe2(barrier, O_CLOEXEC) < 0)
                die("pipe", errno);
        for (unsigned i = 0; i < n; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        die("fork", errno);
                if (pids[i] == 0) {
                        void *state = NULL;
                        char b;

                        close(barrier[1]);
                        if (setup)
                                state = setup(i, userdata);
                        (void) !read(barrier[0], &b, 1); /* returns at end of file: go */
                        work(i, state, userdata);
                        _exit(EXIT_SUCCESS);
                }
        }
        close(barrier[0]);
        t0 = now_nsec();
        close(barrier[1]);
        wait_clients(pids, n);
        seconds = seconds_since(t0);
        free(pids);
        return seconds;
}

pid_t bench_raw_server_start(int *fds, unsigned n, BenchServeFn serve)
{
        int *server_fds = calloc(n, sizeof(int));
        pid_t pid;

        if (!server_fds)
                die("calloc", ENOMEM);
        for (unsigned i = 0; i < n; i++) {
                int sp[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                        die("socketpair", errno);
                fds[i] = sp[0];
                server_fds[i] = sp[1];
        }
        pid = fork();
        if (pid < 0)
                die("fork", errno);
        if (pid == 0) {
                for (unsigned i = 0; i < n; i++)
                        close(fds[i]);
                serve(server_fds, n);
                _exit(EXIT_SUCCESS);
        }
        for (unsigned i = 0; i < n; i++)
                close(server_fds[i]);
        free(server_fds);
        return pid;
}

double bench_run_raw_clients(int *fds, unsigned n, BenchServeFn serve, BenchClientSetupFn setup,
                             BenchClientWorkFn work, void *userdata)
{
        /* the server first: it must not hold the barrier open */
        pid_t server = bench_raw_server_start(fds, n, serve);
        double seconds = bench_run_clients(n, setup, work, userdata);

        for (unsigned i = 0; i < n; i++)
                close(fds[i]);
        (void) waitpid(server, NULL, 0);
        return seconds;
}

long proc_status_kib(pid_t pid, const char *field)
{
        char path[64], line[256];
        size_t len = strlen(field);
        long kib = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                die(path, errno);
        while (fgets(line, sizeof(line), f))
                if (strneq(line, field, len) && line[len] == ':') {
                        kib = strtol(line + len + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return kib;
}

static size_t count_dir(const char *path, unsigned depth)
{
        DIR *d = opendir(path);
        struct dirent *de;
        size_t n = 0;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (de->d_type == DT_DIR && depth > 0) {
                        char sub[PATH_MAX];
                        if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int) sizeof(sub))
                                continue;       /* no such path in a spool */
                        n += count_dir(sub, depth - 1);
                } else if (de->d_type == DT_REG)
                        n++;
        }
        closedir(d);
        return n;
}

size_t bench_queue_files(const char *spool, const char *queue)
{
        char path[400];

        snprintf(path, sizeof(path), "%s/%s", spool, queue);
        return count_dir(path, 1);
}

double bench_cpu_seconds(pid_t pid)
{
        char path[64], buf[2048], *p;
        unsigned long long ut = 0, st = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        if (!fgets(buf, sizeof(buf), f)) {
                fclose(f);
                return -1;
        }
        fclose(f);
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return -1;
        return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}

pid_t bench_agent_start(const char *program, const char *config, const char *log, const char *runtime_dir,
                        const char *socket)
{
        char sock[400];
        pid_t pid = fork();

        if (pid < 0)
                die("fork", errno);
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd >= 0)
                        dup2(fd, STDERR_FILENO);
                setenv("TERN_LOG", "stderr", 1);
                execl(program, program, "-c", config, (char *) NULL);
                _exit(127);
        }
        snprintf(sock, sizeof(sock), "%s/%s", runtime_dir, socket);
        for (int i = 0; i < 10000 && access(sock, F_OK) < 0; i++)
                usleep(1000);
        if (access(sock, F_OK) < 0)
                die("a delivery agent did not bind its socket", ETIMEDOUT);
        return pid;
}

void bench_pid_stop(pid_t pid)
{
        kill(pid, SIGTERM);
        (void) waitpid(pid, NULL, 0);
}

/* One process of /proc: who its parent is and its CPU ticks (own; reaped children's). */
typedef struct ProcEntry {
        pid_t pid, ppid;
        unsigned long long self, reaped;
} ProcEntry;

/* proc_table - every process in /proc (those that vanish while read are left out); *RET_N of them */
static ProcEntry *proc_table(size_t *ret_n)
{
        DIR *d = opendir("/proc");
        ProcEntry *t = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *de;

        if (!d)
                die("/proc", errno);
        while ((de = readdir(d))) {
                char path[64], buf[2048], *p;
                unsigned long long ut, st, cut, cst;
                int pid, ppid;
                FILE *f;

                if (de->d_name[0] < '1' || de->d_name[0] > '9' || (pid = atoi(de->d_name)) <= 0)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/stat", pid);
                f = fopen(path, "re");
                if (!f)
                        continue;
                p = fgets(buf, sizeof(buf), f);
                fclose(f);
                if (!p || !(p = strrchr(buf, ')')))
                        continue;
                if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ppid,
                           &ut, &st, &cut, &cst) != 5)
                        continue;
                if (n == alloc) {
                        ProcEntry *nt;
                        alloc = alloc ? 2 * alloc : 256;
                        nt = realloc(t, alloc * sizeof(*t));
                        if (!nt)
                                die("realloc", ENOMEM);
                        t = nt;
                }
                t[n++] = (ProcEntry){.pid = (pid_t) pid, .ppid = ppid, .self = ut + st,
                                     .reaped = cut + cst};
        }
        closedir(d);
        *ret_n = n;
        return t;
}

/* proc_tree_mark - mark (IN[i] = true) PID's entry and every entry under it; false: PID not there */
static bool proc_tree_mark(const ProcEntry *t, size_t n, pid_t pid, bool *in)
{
        bool found = false, grew = true;

        for (size_t i = 0; i < n; i++)
                if (t[i].pid == pid)
                        in[i] = found = true;
        /* a parent may come after its children in /proc's order: repeat until nothing is added */
        while (found && grew) {
                grew = false;
                for (size_t i = 0; i < n; i++) {
                        if (in[i])
                                continue;
                        for (size_t j = 0; j < n; j++)
                                if (in[j] && t[j].pid == t[i].ppid) {
                                        in[i] = grew = true;
                                        break;
                                }
                }
        }
        return found;
}

size_t bench_descendants(pid_t pid, pid_t *ret, size_t max)
{
        size_t n, k = 0;
        ProcEntry *t = proc_table(&n);
        bool *in = calloc(n + 1, sizeof(bool));

        if (!in)
                die("calloc", ENOMEM);
        if (proc_tree_mark(t, n, pid, in))
                for (size_t i = 0; i < n; i++)
                        if (in[i] && t[i].pid != pid) {
                                if (ret && k < max)
                                        ret[k] = t[i].pid;
                                k++;
                        }
        free(in);
        free(t);
        return k;
}

double bench_tree_cpu_seconds(pid_t pid)
{
        size_t n;
        ProcEntry *t = proc_table(&n);
        bool *in = calloc(n + 1, sizeof(bool));
        unsigned long long ticks = 0;
        bool found;

        if (!in)
                die("calloc", ENOMEM);
        found = proc_tree_mark(t, n, pid, in);
        for (size_t i = 0; i < n; i++)
                if (in[i])
                        ticks += t[i].self + t[i].reaped;
        free(in);
        free(t);
        return found ? (double) ticks / (double) sysconf(_SC_CLK_TCK) : -1;
}

void bench_message(QueueBuf *buf, const char *rcpt, const char *const *lines, size_t n)
{
        char blank[QUEUE_FILE_SIZE_REC_LEN];
        size_t data_offset, xtra;
        int64_t content = 0, now = (int64_t) time(NULL);

        buf->size = 0;
        memset(blank, ' ', sizeof(blank));
        if (queue_buf_put(buf, REC_TYPE_SIZE, blank, sizeof(blank)) < 0 ||
            queue_buf_putf(buf, REC_TYPE_TIME, "%lld 0", (long long) now) < 0 ||
            queue_buf_putf(buf, REC_TYPE_ATTR, "create_time=%lld", (long long) now) < 0 ||
            queue_buf_put(buf, REC_TYPE_FROM, "bench@sender.test", 17) < 0 ||
            queue_buf_put(buf, REC_TYPE_RCPT, rcpt, strlen(rcpt)) < 0 || queue_buf_put(buf, REC_TYPE_MESG, "", 0) < 0)
                die("queue file", ENOMEM);
        data_offset = buf->size;
        for (size_t i = 0; i < n; i++) {
                if (queue_buf_put_line(buf, lines[i], strlen(lines[i])) < 0)
                        die("queue file", ENOMEM);
                content += (int64_t) strlen(lines[i]) + 1;
        }
        xtra = buf->size;
        if (queue_buf_put(buf, REC_TYPE_XTRA, "", 0) < 0 || queue_buf_put(buf, REC_TYPE_END, "", 0) < 0)
                die("queue file", ENOMEM);
        QueueSizeRecord sr = {.content_size = (int64_t) (xtra - data_offset),
                              .data_offset = (int64_t) data_offset,
                              .rcpt_count = 1,
                              .content_length = content};
        queue_size_record_format(&sr, (char *) buf->data + 2);
}

/* ---- processes under this one */

/* reap - collect PID if it is our child and has exited; true when it is gone */
static bool reap(pid_t pid)
{
        if (waitpid(pid, NULL, WNOHANG) == pid)
                return true;
        return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Processes under ROOT looked at, at most */
#define BENCH_PROCS_MAX 4096

void bench_stop_under(pid_t root, pid_t spare, unsigned timeout_msec)
{
        static pid_t pids[BENCH_PROCS_MAX], keep[BENCH_PROCS_MAX];
        uint64_t t0 = now_nsec();
        bool killed = false;

        for (;;) {
                size_t n = MIN(bench_descendants(root, pids, BENCH_PROCS_MAX), (size_t) BENCH_PROCS_MAX);
                size_t k = spare > 0 ? MIN(bench_descendants(spare, keep, BENCH_PROCS_MAX),
                                           (size_t) BENCH_PROCS_MAX)
                                     : 0;
                size_t left = 0;

                for (size_t i = 0; i < n; i++) {
                        bool spared = pids[i] == spare;
                        for (size_t j = 0; j < k && !spared; j++)
                                spared = pids[i] == keep[j];
                        if (spared || reap(pids[i]))
                                continue;
                        left++;
                        if (seconds_since(t0) * 1000 > timeout_msec) {
                                (void) kill(pids[i], SIGKILL);
                                killed = true;
                        } else
                                (void) kill(pids[i], SIGTERM);
                }
                if (left == 0)
                        break;
                if (seconds_since(t0) * 1000 > 2.0 * timeout_msec) {
                        fprintf(stderr, "%s: %zu processes would not go\n", bench_name, left);
                        break;
                }
                usleep(10000);
        }
        if (killed)
                fprintf(stderr, "%s: some processes needed SIGKILL\n", bench_name);
}

void bench_syncfs(const char *path)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || syncfs(fd) < 0)
                die("syncfs", errno);
        close(fd);
}

double bench_durable_writes(const char *dir, size_t n, size_t size)
{
        char *data = malloc(size);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        uint64_t t0;
        double seconds;

        if (!data)
                die("malloc", ENOMEM);
        if (dfd < 0)
                die(dir, errno);
        for (size_t i = 0; i < size; i++)
                data[i] = (i + 1) % 64 == 0 ? '\n' : (char) ('a' + i % 26);
        t0 = now_nsec();
        for (size_t i = 0; i < n; i++) {
                char tmp[64], name[64];
                int fd;

                snprintf(tmp, sizeof(tmp), "%zu.%d", i, (int) getpid());
                snprintf(name, sizeof(name), "B%zu", i);
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0 || write(fd, data, size) != (ssize_t) size || fsync(fd) < 0)
                        die("durable write", errno);
                close(fd);
                if (renameat(dfd, tmp, dfd, name) < 0)
                        die("durable write: rename", errno);
        }
        seconds = seconds_since(t0);
        for (size_t i = 0; i < n; i++) {
                char name[64];
                snprintf(name, sizeof(name), "B%zu", i);
                (void) unlinkat(dfd, name, 0);
        }
        close(dfd);
        free(data);
        return seconds;
}

/* ---- a log file read as it grows */

void bench_log_open(BenchLog *l, const char *path)
{
        struct stat st;

        *l = (BenchLog){};
        snprintf(l->path, sizeof(l->path), "%s", path);
        if (stat(path, &st) == 0)
                l->off = (uint64_t) st.st_size;
}

void bench_log_read(BenchLog *l, void (*fn)(const char *line, size_t len, void *userdata), void *userdata)
{
        static char buf[65536];
        int fd = open(l->path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        for (;;) {
                ssize_t k = pread(fd, buf, sizeof(buf), (off_t) l->off);
                if (k <= 0)
                        break;
                l->off += (uint64_t) k;
                for (ssize_t i = 0; i < k;) {
                        char *nl = memchr(buf + i, '\n', (size_t) (k - i));
                        size_t take = nl ? (size_t) (nl - (buf + i)) : (size_t) (k - i);
                        size_t room = sizeof(l->part) - 1 - l->plen;

                        memcpy(l->part + l->plen, buf + i, MIN(take, room));
                        l->plen += MIN(take, room);
                        i += (ssize_t) take;
                        if (!nl)
                                break;
                        i++;
                        l->part[l->plen] = '\0';
                        fn(l->part, l->plen, userdata);
                        l->plen = 0;
                }
        }
        close(fd);
}

/* ---- perf stat */

bool bench_perf_works(const char *events, const char *scratch)
{
        char cmd[1400];
        bool ok;

        snprintf(cmd, sizeof(cmd), "perf stat -x, -o '%s' -e '%s' -- true >/dev/null 2>&1 && ! grep -q '<not' '%s'",
                 scratch, events, scratch);
        ok = system(cmd) == 0;
        (void) unlink(scratch);
        return ok;
}

long bench_perf_count(const char *path, const char *event)
{
        char line[512];
        size_t len = strlen(event);
        long count = -1;
        FILE *f = fopen(path, "re");

        if (!f)
                return -1;
        /* CSV: "count,unit,event,..." per event; "<not counted>" or "<not supported>" instead of
         * the count when it was not */
        while (fgets(line, sizeof(line), f)) {
                char *p = strchr(line, ','), *end;
                long v;

                if (!p || !(p = strchr(p + 1, ',')) || !strneq(p + 1, event, len) ||
                    (p[1 + len] != ',' && p[1 + len] != '\n' && p[1 + len] != '\0'))
                        continue;
                v = strtol(line, &end, 10);
                if (end != line && *end == ',')
                        count = v;
                break;
        }
        fclose(f);
        return count;
}

/* ---- Postfix's test programs and loopback TCP */

static bool postfix_has(const BenchPostfix *pf, const char *const *programs)
{
        for (const char *const *p = programs; *p; p++) {
                char path[700];
                snprintf(path, sizeof(path), "%s/usr/sbin/%s", pf->root, *p);
                if (access(path, X_OK) < 0)
                        return false;
        }
        return true;
}

bool bench_postfix_find(BenchPostfix *pf, const char *root, const char *fetch_script,
                        const char *const *programs)
{
        snprintf(pf->root, sizeof(pf->root), "%s", root);
        snprintf(pf->libs, sizeof(pf->libs), "%s/usr/lib/postfix", root);
        if (postfix_has(pf, programs))
                return true;
        if (fetch_script) {
                char cmd[1200];
                snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", fetch_script, root);
                fprintf(stderr, "%s: Postfix's %s not under %s: running %s\n", bench_name, programs[0], root,
                        cmd);
                if (system(cmd) == 0 && postfix_has(pf, programs))
                        return true;
        }
        return false;
}

pid_t bench_postfix_spawn(const BenchPostfix *pf, const char *const *argv, const char *out, const char *err)
{
        pid_t pid = fork();

        if (pid < 0)
                die("fork", errno);
        if (pid == 0) {
                char path[700];
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                if (o < 0 || dup2(o, STDOUT_FILENO) < 0)
                        _exit(127);
                if (err) {
                        int e = open(err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                        if (e < 0 || dup2(e, STDERR_FILENO) < 0)
                                _exit(127);
                }
                setenv("LD_LIBRARY_PATH", pf->libs, 1);
                snprintf(path, sizeof(path), "%s/usr/sbin/%s", pf->root, argv[0]);
                execv(path, (char *const *) argv);
                fprintf(stderr, "%s: cannot run %s: %s\n", bench_name, path, strerror(errno));
                _exit(127);
        }
        return pid;
}

pid_t bench_sink_start(const BenchPostfix *pf, uint16_t port, unsigned backlog, const char *out,
                       const char *err)
{
        char listen_on[64], backlog_arg[16];
        const char *argv[8];
        size_t n = 0, listening = 0, sessions;
        pid_t pid;

        snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%u", port);
        snprintf(backlog_arg, sizeof(backlog_arg), "%u", backlog);
        argv[n++] = "smtp-sink";
        if (geteuid() == 0) {
                argv[n++] = "-u"; /* it refuses to run as root */
                argv[n++] = "nobody";
        }
        argv[n++] = "-c";
        argv[n++] = listen_on;
        argv[n++] = backlog_arg;
        argv[n] = NULL;
        pid = bench_postfix_spawn(pf, argv, out, err);
        for (int i = 0; i < 1000 && listening == 0; i++) {
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        die("smtp-sink exited at start", ECHILD);
                usleep(10000);
                bench_tcp_count(port, &listening, &sessions);
        }
        if (listening == 0)
                die("smtp-sink did not listen", ETIMEDOUT);
        return pid;
}

BenchSinkCounters bench_sink_counters(const char *path)
{
        BenchSinkCounters c = {};
        FILE *f = fopen(path, "re");
        static char buf[1 << 16];
        size_t len;
        long off;

        if (!f)
                die(path, errno);
        /* the counters are rewritten in place with \r: the tail holds the latest */
        if (fseek(f, 0, SEEK_END) < 0 || (off = ftell(f)) < 0)
                die(path, errno);
        (void) fseek(f, off > (long) sizeof(buf) - 1 ? off - (long) sizeof(buf) + 1 : 0, SEEK_SET);
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        for (char *p = buf; (p = strstr(p, "sess=")); p++) {
                BenchSinkCounters t;
                if (sscanf(p, "sess=%ld quit=%ld mesg=%ld", &t.sess, &t.quit, &t.mesg) == 3)
                        c = t;
        }
        return c;
}

uint16_t bench_free_port(void)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                die("a free port", errno);
        close(fd);
        return ntohs(sa.sin_port);
}

void bench_tcp_count(uint16_t port, size_t *ret_listen, size_t *ret_sessions)
{
        FILE *f = fopen("/proc/net/tcp", "re");
        char line[512];
        size_t listen = 0, sessions = 0;

        if (!f)
                die("/proc/net/tcp", errno);
        while (fgets(line, sizeof(line), f)) {
                unsigned addr, lport, state;
                if (sscanf(line, " %*u: %8X:%4X %*8X:%*4X %2X", &addr, &lport, &state) != 3 || lport != port)
                        continue;
                if (state == 0x0A)
                        listen++;
                else if (state == 0x01 || state == 0x08)
                        sessions++;
        }
        fclose(f);
        *ret_listen = listen;
        *ret_sessions = sessions;
}

double bench_machine_cpu_seconds(double *ret_steal)
{
        unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal = 0;
        FILE *f = fopen("/proc/stat", "re");
        int n;

        if (!f)
                return -1;
        n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq,
                   &softirq, &steal);
        fclose(f);
        if (n < 7)
                return -1;
        if (ret_steal)
                *ret_steal = (double) steal / (double) sysconf(_SC_CLK_TCK);
        return (double) (user + nice + sys + irq + softirq) / (double) sysconf(_SC_CLK_TCK);
}

/* ---- the session ------------------------------------------------------------------------------ */

BenchSession bench_session;
static volatile sig_atomic_t bench_interrupted;

static void bench_session_end(void)
{
        if (getpid() != bench_session.main_pid)
                return;
        bench_stop_under(bench_session.main_pid, 0, bench_session.stop_msec);
        if (!bench_session.keep && bench_session.dir[0]) {
                char cmd[400];
                snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", bench_session.dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "%s: could not remove %s\n", bench_name, bench_session.dir);
        } else if (bench_session.dir[0])
                fprintf(stderr, "%s: kept %s\n", bench_name, bench_session.dir);
}

static void bench_on_signal(int sig)
{
        bench_interrupted = sig;
}

void bench_session_start(const char *base, unsigned stop_msec)
{
        struct sigaction sa = {.sa_handler = bench_on_signal};

        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                die("PR_SET_CHILD_SUBREAPER", errno);
        bench_session.main_pid = getpid();
        bench_session.stop_msec = stop_msec;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        snprintf(bench_session.dir, sizeof(bench_session.dir), "%s/tern-%s.XXXXXX", base, bench_name);
        if (!mkdtemp(bench_session.dir))
                die("mkdtemp", errno);
        atexit(bench_session_end);
}

void bench_check_interrupted(void)
{
        if (bench_interrupted)
                die("interrupted", EINTR);
}

void bench_check_alive(const BenchProc *procs, size_t n, char run, const char *run_dir)
{
        for (size_t i = 0; i < n; i++) {
                int status;

                if (procs[i].pid > 0 && waitpid(procs[i].pid, &status, WNOHANG) == procs[i].pid) {
                        fprintf(stderr, "%s: %s exited (status 0x%x) during run %c; see %s\n", bench_name,
                                procs[i].name, (unsigned) status, run, run_dir);
                        bench_session.keep = true;
                        die("a daemon exited", ECHILD);
                }
        }
}
