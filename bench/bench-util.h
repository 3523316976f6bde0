/* SPDX-License-Identifier: MIT */
/*
 * bench/bench-util.h - what the benchmarks share: a monotonic clock, dying with a message, and a
 * daemon started by hand that says READY=1 on a NOTIFY_SOCKET of ours
 *
 * Each benchmark defines bench_name (its name, the prefix of its messages). The daemon is
 * started with NOTIFY_SOCKET set to a datagram socket the benchmark binds (SO_PASSCRED: the
 * daemon's pid comes with its READY=1), TERN_LOG=stderr, and no LISTEN_FDS/LISTEN_PID; the
 * benchmark's callback execs it (directly, or behind a wrapper such as perf).
 */
#pragma once

#include <stdbool.h>
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
