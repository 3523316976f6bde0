/* SPDX-License-Identifier: MIT */
/*
 * bench/bench-util.h - what the benchmarks share: a monotonic clock, dying with a message, latency
 * figures, a daemon started by hand that says READY=1 on a NOTIFY_SOCKET of ours (alone, or on a
 * temporary runtime directory of its own), client processes started together, and a raw
 * socketpair baseline server
 *
 * Each benchmark defines bench_name (its name, the prefix of its messages). The daemon is
 * started with NOTIFY_SOCKET set to a datagram socket the benchmark binds (SO_PASSCRED: the
 * daemon's pid comes with its READY=1), TERN_LOG=stderr, and no LISTEN_FDS/LISTEN_PID; the
 * benchmark's callback execs it (directly, or behind a wrapper such as perf).
 */
#pragma once

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* How long a daemon may take to say READY=1. */
#define BENCH_STARTUP_TIMEOUT_MSEC 10000

/* The benchmark's name, in front of its messages: defined by each benchmark. */
extern const char *const bench_name;

/* now_nsec - CLOCK_MONOTONIC in nanoseconds */
uint64_t now_nsec(void);

/* seconds_since - the seconds from T0 (a now_nsec() value) until now */
double seconds_since(uint64_t t0);

/* die - "NAME: WHAT: strerror(ERROR)" on stderr (ERROR an errno, either sign), and exit 1 */
_noreturn_ void die(const char *what, int error);

/* wait_clients - wait for the N processes PIDS; die unless each exited 0 */
void wait_clients(const pid_t *pids, unsigned n);

typedef struct BenchDaemon {
        pid_t pid;    /* what was forked: the daemon, or a wrapper that runs it */
        pid_t daemon; /* the daemon itself (from READY=1's credentials) */
} BenchDaemon;

/* The child's last step: exec the daemon; if the exec fails it returns, and the child exits 127. */
typedef void (*BenchExecFn)(const void *userdata);

/*
 * bench_daemon_start - bind a notification socket at NOTIFY, fork a child that runs
 * EXEC(USERDATA) with the environment above, and wait for READY=1 from it, at most
 * BENCH_STARTUP_TIMEOUT_MSEC; dies if the child exits first or the time runs out. DAEMON names
 * the daemon in those messages.
 */
void bench_daemon_start(BenchDaemon *d, const char *daemon, const char *notify, BenchExecFn exec,
                        const void *userdata);

/* bench_daemon_stop - SIGTERM to the daemon, wait for what was forked: its wait status (-1: none) */
int bench_daemon_stop(BenchDaemon *d);

/*
 * A daemon on a runtime directory of its own: DIR (/tmp/tern-bench.XXXXXX) holds main.cf
 * ("# written by " bench_name, runtime_directory = DIR, then the spec's extra lines), the
 * notification socket and the daemon's own socket.
 */
typedef struct BenchDaemonSpec {
        const char *program;      /* its name in messages: "tern-testd" */
        const char *socket_name;  /* the file name of its socket in DIR */
        const char *config_extra; /* main.cf lines after runtime_directory ("": none) */
} BenchDaemonSpec;

typedef struct BenchDaemonDir {
        char dir[64];
        char config[128];
        char socket[128];
        char notify[128];
        BenchDaemon proc;
} BenchDaemonDir;

/*
 * bench_daemon_dir_start - make DIR and its main.cf, run PATH -c main.cf with bench_daemon_start()
 * and wait for READY=1; dies if its socket is not there by then
 */
void bench_daemon_dir_start(BenchDaemonDir *d, const BenchDaemonSpec *spec, const char *path);

/* bench_daemon_dir_stop - stop the daemon, remove DIR and what it holds */
void bench_daemon_dir_stop(BenchDaemonDir *d);

/* proc_status_kib - FIELD ("VmRSS", "VmHWM") of /proc/PID/status in KiB; dies if PID is gone,
 * -1 when the field is not there */
long proc_status_kib(pid_t pid, const char *field);

/* ---- latencies -------------------------------------------------------------------------- */

/* shared_array - N uint64_t in shared memory, which forked clients write into */
uint64_t *shared_array(size_t n);

/* latency_percentiles - sort the N latencies NS (nanoseconds); their p50 and p99 in µs */
void latency_percentiles(uint64_t *ns, size_t n, double *ret_p50_us, double *ret_p99_us);

/* pin_to - run this process (and what it forks and execs from now on) on CPU, or anywhere (-1):
 * SAVED holds the affinity from before pinning, and pin_to(-1, SAVED) restores it */
void pin_to(int cpu, cpu_set_t *saved);

/* ---- clients started together ------------------------------------------------------------ */

/* In client I (a forked process): what it does before the start (connect, warm up); its state,
 * handed to the work callback */
typedef void *(*BenchClientSetupFn)(unsigned i, void *userdata);

/* In client I: the timed work; it frees STATE */
typedef void (*BenchClientWorkFn)(unsigned i, void *state, void *userdata);

/*
 * bench_run_clients - fork N clients that each run SETUP (NULL: none), wait on a barrier pipe,
 * run WORK and exit 0; the parent opens the barrier once all are forked and waits for them all
 * (dies unless each exited 0). Returns the seconds from opening the barrier until the last one
 * exited. Fork anything that must not hold the barrier open (a raw server) before calling this.
 */
double bench_run_clients(unsigned n, BenchClientSetupFn setup, BenchClientWorkFn work, void *userdata);

/* ---- the raw baseline ----------------------------------------------------------------------- */

/* A raw baseline server: serves the N connections FDS until each is at end of file; it may exit
 * itself, else its process exits 0 when it returns. */
typedef void (*BenchServeFn)(const int *fds, size_t n);

/*
 * bench_raw_server_start - N socketpairs; fork a child that runs SERVE over one end of each, and
 * put the other ends (the clients') into FDS. Returns the child's pid.
 */
pid_t bench_raw_server_start(int *fds, unsigned n, BenchServeFn serve);

/*
 * bench_run_raw_clients - bench_raw_server_start(FDS, N, SERVE) and bench_run_clients(N, SETUP,
 * WORK, USERDATA), client I using FDS[I]; then close FDS and wait for the server. Returns the
 * clients' seconds.
 */
double bench_run_raw_clients(int *fds, unsigned n, BenchServeFn serve, BenchClientSetupFn setup,
                             BenchClientWorkFn work, void *userdata);

/* bench_queue_files - queue files in SPOOL/QUEUE and its hash subdirectories */
size_t bench_queue_files(const char *spool, const char *queue);
/* bench_cpu_seconds - user + system CPU time of PID so far (-1: unknown) */
double bench_cpu_seconds(pid_t pid);
/* bench_agent_start - a delivery agent run by hand (PROGRAM -c CONFIG, stderr appended to LOG,
 * TERN_LOG=stderr), once it has bound RUNTIME_DIR/SOCKET; dies if it does not within 10 s */
pid_t bench_agent_start(const char *program, const char *config, const char *log, const char *runtime_dir,
                        const char *socket);
/* bench_pid_stop - SIGTERM to PID and wait for it */
void bench_pid_stop(pid_t pid);
/* bench_descendants - the processes under PID (its children, theirs, ...; zombies too), at most
 * MAX into RET (NULL: only counted); how many there are */
size_t bench_descendants(pid_t pid, pid_t *ret, size_t max);
/* bench_tree_cpu_seconds - user + system CPU time of PID and of every live process under it, with
 * what each of them has reaped (cutime + cstime): the CPU of a daemon that forks a child per
 * connection (-1: PID unknown) */
double bench_tree_cpu_seconds(pid_t pid);

/*
 * bench_message - a whole queue file, as cleanup writes one, into BUF (emptied first): sender
 * bench@sender.test, the one recipient RCPT, and LINES (N, without line ends) as the content;
 * the C record is filled in. die()s when out of memory.
 */
struct QueueBuf;
void bench_message(struct QueueBuf *buf, const char *rcpt, const char *const *lines, size_t n);

/* ---- processes under this one ---------------------------------------------------------------- */

/*
 * bench_stop_under - SIGTERM to every process under ROOT (a child subreaper: this process) except
 * SPARE (> 0) and what is under it, again to any that appear (an agent's children, orphans handed
 * to ROOT), until none is left; SIGKILL after TIMEOUT_MSEC, a message if some still remain after
 * twice that. ROOT's own children are reaped here.
 */
void bench_stop_under(pid_t root, pid_t spare, unsigned timeout_msec);

/*
 * A benchmark's session (bench-smtp, bench-smtpd): bench_session_start() makes this process the
 * subreaper of everything it starts (what the daemons fork stays ours to find and stop),
 * installs SIGINT/SIGTERM/SIGHUP handlers that bench_check_interrupted() turns into die(), and
 * makes the run directory BASE/tern-bench-NAME.XXXXXX; at exit every process under us is
 * stopped (SIGKILL after STOP_MSEC) and the directory removed, unless bench_session.keep is set
 * (-K, or a failure worth a look).
 */
typedef struct BenchSession {
        char dir[256];
        bool keep;
        pid_t main_pid;
        unsigned stop_msec;
} BenchSession;

extern BenchSession bench_session;

void bench_session_start(const char *base, unsigned stop_msec);
void bench_check_interrupted(void);

/* bench_check_alive - die, keeping the directory, when one of the N PROCS (pid 0: none) has
 * exited during run RUN (its files in RUN_DIR) */
typedef struct BenchProc {
        pid_t pid;
        const char *name;
} BenchProc;

void bench_check_alive(const BenchProc *procs, size_t n, char run, const char *run_dir);

/* bench_syncfs - syncfs() on the file system of PATH: what was written before goes to disk now,
 * not during what is timed next; dies on failure */
void bench_syncfs(const char *path);

/*
 * bench_durable_writes - N times: create a SIZE-byte file in DIR under a temporary name, write it,
 * fsync it, rename it (one stream, what one durable write of a message costs here, as Postfix's
 * cleanup does per message); the files are removed afterwards. Returns the seconds the N writes
 * took.
 */
double bench_durable_writes(const char *dir, size_t n, size_t size);

/* ---- a log file written by the daemons, read as it grows ---------------------------------- */

/* The longest line bench_log_read() hands on, with its NUL; longer ones are cut */
#define BENCH_LOG_LINE_MAX 4096

typedef struct BenchLog {
        char path[512];
        uint64_t off;                  /* read up to here */
        char part[BENCH_LOG_LINE_MAX]; /* the start of a line not yet whole (longer lines are cut) */
        size_t plen;
} BenchLog;

/* bench_log_open - read PATH from its current end on (from 0 when it is not there yet) */
void bench_log_open(BenchLog *l, const char *path);

/* bench_log_read - FN(LINE, LEN, USERDATA) for each whole line added since the last call (LINE
 * NUL-terminated, without its newline) */
void bench_log_read(BenchLog *l, void (*fn)(const char *line, size_t len, void *userdata), void *userdata);

/* ---- counting a daemon's syscalls with perf stat ------------------------------------------ */

/* The durable-write syscalls, as perf's tracepoint events (kernel counters: no ptrace, the daemon
 * runs at full speed). */
#define BENCH_PERF_SYNC_EVENTS "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_syncfs"

/* bench_perf_works - whether `perf stat -x, -o SCRATCH -e EVENTS -- true` counts EVENTS here (perf
 * installed, tracepoints readable) */
bool bench_perf_works(const char *events, const char *scratch);

/* bench_perf_count - the count of EVENT ("syscalls:sys_enter_fsync") in PATH, perf stat -x,'s
 * output; -1 when it is not there or was not counted */
long bench_perf_count(const char *path, const char *event);

/* ---- Postfix's test programs (smtp-sink, smtp-source) and loopback TCP --------------------- */

typedef struct BenchPostfix {
        char root[512]; /* Debian's postfix package unpacked here (tools/fetch-postfix.sh) */
        char libs[600]; /* ROOT/usr/lib/postfix: LD_LIBRARY_PATH for its programs */
} BenchPostfix;

/*
 * bench_postfix_find - ROOT holds each of PROGRAMS (NULL-terminated, names in ROOT/usr/sbin);
 * when one is missing and FETCH_SCRIPT is not NULL, runs `sh FETCH_SCRIPT ROOT` once and looks
 * again. False when they are not all there.
 */
bool bench_postfix_find(BenchPostfix *pf, const char *root, const char *fetch_script,
                        const char *const *programs);

/*
 * bench_postfix_spawn - fork and exec ROOT/usr/sbin/ARGV[0] with ARGV and LD_LIBRARY_PATH, stdout
 * to OUT and stderr appended to ERR (NULL: inherited); the child's pid
 */
pid_t bench_postfix_spawn(const BenchPostfix *pf, const char *const *argv, const char *out, const char *err);

/*
 * bench_sink_start - Postfix's smtp-sink on 127.0.0.1:PORT with BACKLOG, -c (its counters to OUT,
 * see bench_sink_counters), -u nobody when we are root, stderr appended to ERR; returns once
 * /proc/net/tcp shows it listening (no test connection: it would count as a session). Dies when
 * it exits first or is not listening within 10 s.
 */
pid_t bench_sink_start(const BenchPostfix *pf, uint16_t port, unsigned backlog, const char *out,
                       const char *err);

typedef struct BenchSinkCounters {
        long sess, quit, mesg; /* sessions ended, QUITs, messages received */
} BenchSinkCounters;

/* bench_sink_counters - the last "sess=N quit=N mesg=N" smtp-sink -c wrote to PATH (zeros: none
 * yet). smtp-sink counts a session and writes (flushed) before it closes the socket. */
BenchSinkCounters bench_sink_counters(const char *path);

/* bench_free_port - a TCP port on 127.0.0.1 that nothing uses now (the kernel's choice for port 0) */
uint16_t bench_free_port(void);

/* bench_tcp_count - sockets in /proc/net/tcp bound locally to 127.0.0.1:PORT: listening, and in a
 * session the server side has not closed yet (ESTABLISHED, CLOSE_WAIT) */
void bench_tcp_count(uint16_t port, size_t *ret_listen, size_t *ret_sessions);

/* bench_machine_cpu_seconds - CPU seconds every CPU of the machine has been busy since boot
 * (user, nice, system, irq, softirq from /proc/stat; not idle or iowait), and into RET_STEAL (NULL:
 * not wanted) the seconds the hypervisor took; -1 when /proc/stat cannot be read. The difference
 * over a run, less the CPU of the run's own processes, is what the rest of the machine did. */
double bench_machine_cpu_seconds(double *ret_steal);
