/* SPDX-License-Identifier: MIT */
/*
 * test-scache-store.c - scache(8)'s data model (src/scache/scache-store.c)
 *
 * Covers, as table-driven scenarios run by one interpreter over real socketpair() descriptors:
 * FIFO order with several sessions per endpoint (which descriptor comes back is checked by
 * writing a byte through it and seeing which peer receives it), find removes, an endpoint goes
 * when its last session goes, save_destination refresh (same endpoint and props: new expiry, same
 * place; other props: appended), find_destination (bindings oldest first, endpoints without
 * sessions skipped, the binding's props returned), expiry with an injected clock (sessions and
 * bindings apart; an expired session's peer sees EOF; a find at or after the expiry never hands
 * it out), next_expiry, eviction at max_sessions (the oldest session of all is closed and
 * reported) and the binding cap. Separately: bad arguments (the descriptor is closed anyway),
 * statistics counters (a destination find is one domain lookup, not an address lookup; peaks
 * after saves), Postfix's exact statistics lines at a fixed start time in TZ=UTC, thousands of
 * sessions for one endpoint, 10,000 endpoints and destinations, and the expiry heap against a
 * brute-force model under random TTLs and finds. Every test checks that the number of open
 * descriptors is the same before and after, including freeing a store with sessions in it.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "scache-store.h"
#include "test-util.h"

/* sessions one scenario may save */
#define SCENARIO_SESSIONS_MAX 16

/* descriptors the test itself may hold besides the ones it counts on (stdio, cmocka, opendir) */
#define FD_RESERVE 64

DEFINE_TRIVIAL_CLEANUP_FUNC(ScacheStore *, scache_store_free);

typedef enum OpKind {
        OP_SAVE_ENDP, /* want: 1 when the save must evict, else 0 */
        OP_FIND_ENDP, /* want: session number (order of OP_SAVE_ENDP from 0) or -ENOENT */
        OP_SAVE_DEST,
        OP_FIND_DEST, /* want: as OP_FIND_ENDP */
        OP_EXPIRE,    /* want: how many items expire */
        OP_COUNTS,
        OP_NEXT_EXPIRY,
        OP_CLOSED, /* want: session number whose descriptor the store must have closed */
        OP_OPEN,   /* want: session number whose descriptor must still be open in the store */
} OpKind;

typedef struct Op {
        OpKind kind;
        uint64_t now, ttl;
        const char *label;    /* endpoint (SAVE_ENDP, FIND_ENDP) or destination (SAVE_DEST, FIND_DEST) */
        const char *props;    /* SAVE_ENDP/SAVE_DEST: props to save; FIND_*: wanted (destination) props */
        const char *endpoint; /* SAVE_DEST: endpoint label; FIND_DEST: wanted endpoint props */
        int want;
        size_t n_sessions, n_endpoints, n_destinations;
        uint64_t next_expiry;
} Op;

#define SAVE_E(t, l, ep, p, ev)                                                                             \
        {                                                                                                   \
                .kind = OP_SAVE_ENDP, .now = (t), .ttl = (l), .label = (ep), .props = (p), .want = (ev)     \
        }
#define FIND_E(t, ep, w, p)                                                                                 \
        {                                                                                                   \
                .kind = OP_FIND_ENDP, .now = (t), .label = (ep), .want = (w), .props = (p)                  \
        }
#define SAVE_D(t, l, d, p, ep)                                                                              \
        {                                                                                                   \
                .kind = OP_SAVE_DEST, .now = (t), .ttl = (l), .label = (d), .props = (p), .endpoint = (ep)  \
        }
#define FIND_D(t, d, w, dp, ep)                                                                             \
        {                                                                                                   \
                .kind = OP_FIND_DEST, .now = (t), .label = (d), .want = (w), .props = (dp),                 \
                .endpoint = (ep)                                                                            \
        }
#define EXPIRE(t, n)                                                                                        \
        {                                                                                                   \
                .kind = OP_EXPIRE, .now = (t), .want = (n)                                                  \
        }
#define COUNTS(s, e, d)                                                                                     \
        {                                                                                                   \
                .kind = OP_COUNTS, .n_sessions = (s), .n_endpoints = (e), .n_destinations = (d)             \
        }
#define NEXT(t)                                                                                             \
        {                                                                                                   \
                .kind = OP_NEXT_EXPIRY, .next_expiry = (t)                                                  \
        }
#define CLOSED(i)                                                                                           \
        {                                                                                                   \
                .kind = OP_CLOSED, .want = (i)                                                              \
        }
#define OPEN(i)                                                                                             \
        {                                                                                                   \
                .kind = OP_OPEN, .want = (i)                                                                \
        }

typedef struct Scenario {
        const char *name;
        size_t max_sessions;
        const Op *ops;
        size_t n_ops;
} Scenario;

#define SCENARIO(n, max, ...)                                                                               \
        {                                                                                                   \
                .name = (n), .max_sessions = (max), .ops = (const Op[]){__VA_ARGS__},                       \
                .n_ops = sizeof((const Op[]){__VA_ARGS__}) / sizeof(Op),                                    \
        }

static const Scenario scenarios[] = {
        SCENARIO("FIFO per endpoint, find removes, empty endpoint goes", 100, SAVE_E(0, 10, "A", "a0", 0),
                 SAVE_E(0, 10, "A", "a1", 0), SAVE_E(0, 10, "B", "b2", 0), SAVE_E(0, 10, "A", "a3", 0),
                 SAVE_E(0, 10, "B", "b4", 0), COUNTS(5, 2, 0), FIND_E(1, "A", 0, "a0"),
                 FIND_E(1, "A", 1, "a1"), FIND_E(1, "B", 2, "b2"), COUNTS(2, 2, 0), FIND_E(1, "A", 3, "a3"),
                 COUNTS(1, 1, 0), FIND_E(1, "A", -ENOENT, NULL), FIND_E(1, "B", 4, "b4"), COUNTS(0, 0, 0),
                 NEXT(UINT64_MAX), FIND_E(1, "B", -ENOENT, NULL), SAVE_E(2, 10, "A", "a5", 0),
                 COUNTS(1, 1, 0), FIND_E(2, "A", 5, "a5"), FIND_E(2, "C", -ENOENT, NULL)),
        SCENARIO("labels and props are copied, not compared by prefix", 100,
                 SAVE_E(0, 10, "smtp\n192.0.2.1\n25\n1\n0\n0", "reuse_count=0\n\n", 0),
                 SAVE_E(0, 10, "smtp\n192.0.2.1\n25\n1\n0", "", 0), COUNTS(2, 2, 0),
                 FIND_E(0, "smtp\n192.0.2.1\n25\n1\n0", 1, ""),
                 FIND_E(0, "smtp\n192.0.2.1\n25\n1\n0\n0", 0, "reuse_count=0\n\n")),
        SCENARIO("save_destination refresh keeps place, other props append", 100,
                 SAVE_E(0, 20, "A", "pa0", 0), SAVE_E(0, 20, "B", "pb1", 0), SAVE_E(0, 20, "A", "pa2", 0),
                 SAVE_D(0, 5, "D", "d1", "A"), SAVE_D(1, 5, "D", "d2", "B"), NEXT(5),
                 SAVE_D(2, 5, "D", "d1", "A"), COUNTS(3, 2, 1), NEXT(6), SAVE_D(2, 5, "D", "d3", "A"),
                 FIND_D(3, "D", 0, "d1", "pa0"), FIND_D(3, "D", 2, "d1", "pa2"),
                 FIND_D(3, "D", 1, "d2", "pb1"), FIND_D(3, "D", -ENOENT, NULL, NULL), COUNTS(0, 0, 1),
                 EXPIRE(5, 0), EXPIRE(6, 1), COUNTS(0, 0, 1), NEXT(7), EXPIRE(7, 2), COUNTS(0, 0, 0),
                 NEXT(UINT64_MAX)),
        SCENARIO("refresh moves the expiry earlier too", 100, SAVE_D(0, 9, "D", "d", "A"), NEXT(9),
                 SAVE_D(1, 2, "D", "d", "A"), NEXT(3), COUNTS(0, 0, 1), EXPIRE(3, 1), COUNTS(0, 0, 0)),
        SCENARIO("find_destination skips endpoints without sessions", 100, SAVE_D(0, 10, "D", "dx", "X"),
                 SAVE_D(0, 10, "D", "dy", "Y"), SAVE_D(0, 10, "D", "dz", "Z"), SAVE_E(0, 10, "Z", "pz0", 0),
                 SAVE_E(0, 10, "Y", "py1", 0), FIND_D(1, "D", 1, "dy", "py1"),
                 FIND_D(1, "D", 0, "dz", "pz0"), FIND_D(1, "D", -ENOENT, NULL, NULL), COUNTS(0, 0, 1),
                 FIND_D(1, "E", -ENOENT, NULL, NULL)),
        SCENARIO("many-to-many: one endpoint behind two destinations", 100, SAVE_E(0, 10, "A", "pa0", 0),
                 SAVE_E(0, 10, "A", "pa1", 0), SAVE_D(0, 10, "D1", "d1", "A"),
                 SAVE_D(0, 10, "D2", "d2", "A"), COUNTS(2, 1, 2), FIND_D(1, "D2", 0, "d2", "pa0"),
                 FIND_E(1, "A", 1, "pa1"), FIND_D(1, "D1", -ENOENT, NULL, NULL), COUNTS(0, 0, 2)),
        SCENARIO("sessions and bindings expire apart; expired descriptors closed", 100,
                 SAVE_E(0, 10, "A", "pa0", 0), SAVE_E(5, 10, "A", "pa1", 0), SAVE_D(0, 3, "D", "d", "A"),
                 NEXT(3), EXPIRE(2, 0), OPEN(0), EXPIRE(3, 1), COUNTS(2, 1, 0), NEXT(10), OPEN(0),
                 FIND_D(4, "D", -ENOENT, NULL, NULL), EXPIRE(9, 0), EXPIRE(10, 1), CLOSED(0), OPEN(1),
                 COUNTS(1, 1, 0), NEXT(15), SAVE_D(11, 10, "D", "d", "A"), NEXT(15), EXPIRE(15, 1),
                 CLOSED(1), COUNTS(0, 0, 1), NEXT(21), FIND_D(16, "D", -ENOENT, NULL, NULL), EXPIRE(100, 1),
                 NEXT(UINT64_MAX)),
        SCENARIO("a find at the expiry time does not hand out the session", 100, SAVE_E(0, 10, "A", "p0", 0),
                 SAVE_E(1, 10, "A", "p1", 0), FIND_E(10, "A", 1, "p1"), CLOSED(0), COUNTS(0, 0, 0),
                 SAVE_E(20, 5, "B", "p2", 0), SAVE_D(20, 50, "D", "d", "B"),
                 FIND_D(25, "D", -ENOENT, NULL, NULL), CLOSED(2), COUNTS(0, 0, 1)),
        SCENARIO("saves drop what expired first", 100, SAVE_E(0, 10, "A", "p0", 0),
                 SAVE_E(10, 10, "B", "p1", 0), CLOSED(0), COUNTS(1, 1, 0), EXPIRE(10, 0)),
        SCENARIO("a huge TTL saturates and never expires", 100, SAVE_E(5, UINT64_MAX, "A", "p0", 0),
                 NEXT(UINT64_MAX), EXPIRE(UINT64_MAX - 1, 0), OPEN(0), COUNTS(1, 1, 0)),
        SCENARIO("eviction closes the oldest session of all", 3, SAVE_E(0, 10, "A", "pa0", 0),
                 SAVE_E(1, 10, "B", "pb1", 0), SAVE_E(2, 10, "A", "pa2", 0), SAVE_E(3, 10, "C", "pc3", 1),
                 CLOSED(0), OPEN(1), COUNTS(3, 3, 0), SAVE_E(4, 10, "B", "pb4", 1), CLOSED(1),
                 COUNTS(3, 3, 0), NEXT(12), FIND_E(5, "A", 2, "pa2"), SAVE_E(5, 10, "D", "pd5", 0),
                 COUNTS(3, 3, 0), FIND_E(5, "B", 4, "pb4"), FIND_E(5, "C", 3, "pc3")),
        SCENARIO("eviction at max 1, same endpoint and another", 1, SAVE_E(0, 10, "A", "pa0", 0),
                 SAVE_E(0, 10, "A", "pa1", 1), CLOSED(0), COUNTS(1, 1, 0), SAVE_E(0, 10, "B", "pb2", 1),
                 CLOSED(1), COUNTS(1, 1, 0), FIND_E(0, "A", -ENOENT, NULL), FIND_E(0, "B", 2, "pb2")),
        SCENARIO("bindings are capped at max_sessions, oldest first", 2, SAVE_D(0, 10, "D", "d1", "A"),
                 SAVE_D(1, 10, "E", "e1", "A"), SAVE_D(2, 10, "D", "d1", "A"), COUNTS(0, 0, 2),
                 SAVE_D(3, 10, "F", "f1", "A"), COUNTS(0, 0, 2), NEXT(11), SAVE_E(3, 10, "A", "pa0", 0),
                 FIND_D(3, "D", -ENOENT, NULL, NULL), FIND_D(3, "E", 0, "e1", "pa0")),
};

/* peer_state - 1: data or an error other than EAGAIN waiting; 0: EOF; -EAGAIN: open, nothing */
static int peer_state(int peer)
{
        char c;
        ssize_t n = recv(peer, &c, 1, MSG_DONTWAIT);

        if (n > 0)
                return 1;
        if (n == 0)
                return 0;
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : 1;
}

/* which_session - write a byte through FD; the number of the peer that receives it, or -1 */
static int which_session(int fd, const int *peers, size_t n)
{
        int found = -1;

        if (write(fd, "x", 1) != 1)
                return -1;
        for (size_t i = 0; i < n; i++) {
                char c;

                if (peers[i] >= 0 && recv(peers[i], &c, 1, MSG_DONTWAIT) == 1)
                        found = (int) i;
        }
        return found;
}

/* run_scenario - run SC's ops against a new store; fail with got/want on the first mismatch */
static void run_scenario(const Scenario *sc)
{
        _cleanup_(scache_store_freep) ScacheStore *s = NULL;
        int peers[SCENARIO_SESSIONS_MAX];
        bool taken[SCENARIO_SESSIONS_MAX] = {};
        size_t n_saved = 0;

        assert_int_equal(scache_store_new(sc->max_sessions, &s), 0);
        for (size_t i = 0; i < sc->n_ops; i++) {
                const Op *op = &sc->ops[i];

                switch (op->kind) {
                case OP_SAVE_ENDP: {
                        int pair[2];
                        bool evicted = !op->want;
                        int r;

                        assert_true(n_saved < SCENARIO_SESSIONS_MAX);
                        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
                        peers[n_saved++] = pair[1];
                        r = scache_store_save_endpoint(s, op->now, op->ttl, op->label, op->props, pair[0],
                                                       &evicted);
                        if (r != 0 || evicted != !!op->want)
                                fail_msg("%s: op %zu save_endpoint(%s): got r=%d evicted=%d want 0 "
                                         "evicted=%d",
                                         sc->name, i, op->label, r, evicted, op->want);
                        break;
                }
                case OP_FIND_ENDP:
                case OP_FIND_DEST: {
                        _cleanup_(freep) char *dprops = NULL, *eprops = NULL;
                        _cleanup_(closep) int fd = -EBADF;
                        int r, got;

                        if (op->kind == OP_FIND_ENDP)
                                r = scache_store_find_endpoint(s, op->now, op->label, &eprops, &fd);
                        else
                                r = scache_store_find_destination(s, op->now, op->label, &dprops, &eprops,
                                                                  &fd);
                        if (op->want < 0) {
                                if (r != op->want || fd >= 0)
                                        fail_msg("%s: op %zu find(%s): got r=%d fd=%d want %d", sc->name, i,
                                                 op->label, r, fd, op->want);
                                break;
                        }
                        if (r != 0)
                                fail_msg("%s: op %zu find(%s): got %d want session %d", sc->name, i,
                                         op->label, r, op->want);
                        got = which_session(fd, peers, n_saved);
                        if (got != op->want)
                                fail_msg("%s: op %zu find(%s): got session %d want %d", sc->name, i,
                                         op->label, got, op->want);
                        taken[got] = true;
                        if (op->kind == OP_FIND_ENDP && !streq(eprops, op->props))
                                fail_msg("%s: op %zu find_endpoint(%s): got props \"%s\" want \"%s\"",
                                         sc->name, i, op->label, eprops, op->props);
                        if (op->kind == OP_FIND_DEST &&
                            (!streq(dprops, op->props) || !streq(eprops, op->endpoint)))
                                fail_msg("%s: op %zu find_destination(%s): got props \"%s\"/\"%s\" want "
                                         "\"%s\"/\"%s\"",
                                         sc->name, i, op->label, dprops, eprops, op->props, op->endpoint);
                        break;
                }
                case OP_SAVE_DEST: {
                        int r = scache_store_save_destination(s, op->now, op->ttl, op->label, op->props,
                                                              op->endpoint);
                        if (r != 0)
                                fail_msg("%s: op %zu save_destination(%s): got %d want 0", sc->name, i,
                                         op->label, r);
                        break;
                }
                case OP_EXPIRE: {
                        size_t n = scache_store_expire(s, op->now);

                        if (n != (size_t) op->want)
                                fail_msg("%s: op %zu expire(%llu): got %zu want %d", sc->name, i,
                                         (unsigned long long) op->now, n, op->want);
                        break;
                }
                case OP_COUNTS: {
                        size_t ns = scache_store_n_sessions(s), ne = scache_store_n_endpoints(s),
                               nd = scache_store_n_destinations(s);

                        if (ns != op->n_sessions || ne != op->n_endpoints || nd != op->n_destinations)
                                fail_msg(
                                        "%s: op %zu counts: got sessions=%zu endpoints=%zu destinations=%zu "
                                        "want %zu/%zu/%zu",
                                        sc->name, i, ns, ne, nd, op->n_sessions, op->n_endpoints,
                                        op->n_destinations);
                        break;
                }
                case OP_NEXT_EXPIRY: {
                        uint64_t t = scache_store_next_expiry(s);

                        if (t != op->next_expiry)
                                fail_msg("%s: op %zu next_expiry: got %llu want %llu", sc->name, i,
                                         (unsigned long long) t, (unsigned long long) op->next_expiry);
                        break;
                }
                case OP_CLOSED:
                case OP_OPEN: {
                        int st;

                        assert_true((size_t) op->want < n_saved);
                        st = peer_state(peers[op->want]);
                        if (op->kind == OP_CLOSED && st != 0)
                                fail_msg("%s: op %zu session %d: got peer state %d want EOF", sc->name, i,
                                         op->want, st);
                        if (op->kind == OP_OPEN && st != -EAGAIN)
                                fail_msg("%s: op %zu session %d: got peer state %d want open", sc->name, i,
                                         op->want, st);
                        break;
                }
                }
        }

        /* freeing the store closes whatever it still holds: every peer then sees EOF */
        s = scache_store_free(s);
        for (size_t i = 0; i < n_saved; i++) {
                int st = peer_state(peers[i]);

                if (st != 0)
                        fail_msg("%s: after free, session %zu (%s): got peer state %d want EOF", sc->name, i,
                                 taken[i] ? "taken" : "cached", st);
                safe_close(peers[i]);
        }
}

/* test_scenarios - every table scenario, with no descriptor leaked by any */
static void test_scenarios(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(scenarios); i++) {
                size_t before = count_open_fds(), after;

                run_scenario(&scenarios[i]);
                after = count_open_fds();
                if (after != before)
                        fail_msg("%s: open descriptors: got %zu after want %zu", scenarios[i].name, after,
                                 before);
        }
}

/* test_bad_arguments - refusals, and the descriptor of a refused save is closed all the same */
static void test_bad_arguments(void **state)
{
        _cleanup_(scache_store_freep) ScacheStore *s = NULL;
        ScacheStore *none = NULL;
        size_t before = count_open_fds();
        char *props = NULL;
        int fd = -EBADF;
        struct {
                const char *name;
                uint64_t ttl;
                const char *endpoint, *props;
                int want;
        } saves[] = {
                {"ttl 0", 0, "A", "p", -EINVAL},
                {"no endpoint", 10, NULL, "p", -EINVAL},
                {"no props", 10, "A", NULL, -EINVAL},
        };

        assert_int_equal(scache_store_new(0, &none), -EINVAL);
        assert_null(none);
        assert_int_equal(scache_store_new(4, &s), 0);

        for (size_t i = 0; i < ELEMENTSOF(saves); i++) {
                int pipefd[2], r;

                assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
                r = scache_store_save_endpoint(s, 0, saves[i].ttl, saves[i].endpoint, saves[i].props,
                                               pipefd[1], NULL);
                if (r != saves[i].want)
                        fail_msg("save_endpoint %s: got %d want %d", saves[i].name, r, saves[i].want);
                errno = 0;
                if (fcntl(pipefd[1], F_GETFD) != -1 || errno != EBADF)
                        fail_msg("save_endpoint %s: got descriptor still open want closed", saves[i].name);
                safe_close(pipefd[0]);
        }
        assert_int_equal(scache_store_save_endpoint(s, 0, 10, "A", "p", -1, NULL), -EBADF);
        assert_int_equal(scache_store_save_destination(s, 0, 0, "D", "d", "A"), -EINVAL);
        assert_int_equal(scache_store_save_destination(s, 0, 10, "D", NULL, "A"), -EINVAL);
        assert_int_equal(scache_store_find_endpoint(s, 0, NULL, &props, &fd), -EINVAL);
        assert_int_equal(scache_store_find_destination(s, 0, "D", NULL, &props, &fd), -EINVAL);
        assert_null(props);
        assert_int_equal(fd, -EBADF);
        assert_int_equal(scache_store_n_sessions(s), 0);
        assert_int_equal(scache_store_n_destinations(s), 0);
        assert_null(scache_store_free(NULL));
        s = scache_store_free(s);
        assert_int_equal(count_open_fds(), before);
}

/* test_expired_fd_closed - an expired session's descriptor is closed (fcntl says EBADF) */
static void test_expired_fd_closed(void **state)
{
        _cleanup_(scache_store_freep) ScacheStore *s = NULL;
        size_t before = count_open_fds();
        int pipefd[2];

        assert_int_equal(scache_store_new(4, &s), 0);
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        assert_int_equal(scache_store_save_endpoint(s, 100, 50, "A", "p", pipefd[1], NULL), 0);
        assert_int_equal(fcntl(pipefd[1], F_GETFD), FD_CLOEXEC);
        assert_int_equal(scache_store_expire(s, 149), 0);
        assert_int_equal(scache_store_expire(s, 150), 1);
        errno = 0;
        if (fcntl(pipefd[1], F_GETFD) != -1 || errno != EBADF)
                fail_msg("expired session: got descriptor %d still open want closed", pipefd[1]);
        safe_close(pipefd[0]);
        s = scache_store_free(s);
        assert_int_equal(count_open_fds(), before);
}

/* save_socket - save one end of a new socketpair as a session of ENDPOINT, return the other end */
static int save_socket(ScacheStore *s, uint64_t now, const char *endpoint)
{
        int pair[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        assert_int_equal(scache_store_save_endpoint(s, now, 10, endpoint, "p", pair[0], NULL), 0);
        return pair[1];
}

/* test_stats_counters - hits and misses by kind, peaks sampled after saves, reset */
static void test_stats_counters(void **state)
{
        _cleanup_(scache_store_freep) ScacheStore *s = NULL;
        ScacheStats st;
        int peers[3];
        char *props;
        int fd;
        size_t before = count_open_fds();

        assert_int_equal(scache_store_new(10, &s), 0);
        scache_store_stats(s, &st);
        assert_true(st.dest_hits == 0 && st.endp_misses == 0 && st.max_sessions == 0 && st.start == 0);
        scache_store_stats_reset(s, 1000);

        peers[0] = save_socket(s, 0, "A");
        peers[1] = save_socket(s, 0, "A");
        peers[2] = save_socket(s, 0, "B");
        assert_int_equal(scache_store_save_destination(s, 0, 10, "D", "d", "A"), 0);
        assert_int_equal(scache_store_save_destination(s, 0, 10, "E", "e", "B"), 0);
        assert_int_equal(scache_store_save_destination(s, 0, 10, "E", "e", "B"), 0); /* refresh */

        /* a destination hit and miss, none counted as address lookups */
        {
                _cleanup_(freep) char *dp = NULL, *ep = NULL;

                assert_int_equal(scache_store_find_destination(s, 1, "D", &dp, &ep, &fd), 0);
                safe_close(fd);
        }
        assert_int_equal(scache_store_find_destination(s, 1, "nowhere", &props, &props, &fd), -ENOENT);
        /* two address hits, two misses (one through an endpoint that emptied) */
        assert_int_equal(scache_store_find_endpoint(s, 1, "A", &props, &fd), 0);
        free(props);
        safe_close(fd);
        assert_int_equal(scache_store_find_endpoint(s, 1, "A", &props, &fd), -ENOENT);
        assert_int_equal(scache_store_find_endpoint(s, 1, "B", &props, &fd), 0);
        free(props);
        safe_close(fd);
        assert_int_equal(scache_store_find_endpoint(s, 1, "B", &props, &fd), -ENOENT);

        scache_store_stats(s, &st);
        struct {
                const char *name;
                uint64_t got, want;
        } checks[] = {
                {"dest_hits", st.dest_hits, 1},       {"dest_misses", st.dest_misses, 1},
                {"endp_hits", st.endp_hits, 2},       {"endp_misses", st.endp_misses, 2},
                {"max_dests", st.max_dests, 2},       {"max_endps", st.max_endps, 2},
                {"max_sessions", st.max_sessions, 3}, {"start", (uint64_t) st.start, 1000},
        };
        for (size_t i = 0; i < ELEMENTSOF(checks); i++)
                if (checks[i].got != checks[i].want)
                        fail_msg("stats %s: got %llu want %llu", checks[i].name,
                                 (unsigned long long) checks[i].got, (unsigned long long) checks[i].want);

        /* peaks are sampled after saves only: sizes falling do not lower them; reset zeroes all */
        scache_store_stats_reset(s, 2000);
        scache_store_stats(s, &st);
        assert_true(st.dest_hits == 0 && st.dest_misses == 0 && st.endp_hits == 0 && st.endp_misses == 0);
        assert_true(st.max_dests == 0 && st.max_endps == 0 && st.max_sessions == 0 && st.start == 2000);
        assert_int_equal(scache_store_save_destination(s, 2, 10, "F", "f", "A"), 0);
        scache_store_stats(s, &st);
        if (st.max_dests != 3 || st.max_endps != 0 || st.max_sessions != 0)
                fail_msg("peaks after one save_destination: got %zu/%zu/%zu want 3/0/0", st.max_dests,
                         st.max_endps, st.max_sessions);

        for (size_t i = 0; i < ELEMENTSOF(peers); i++)
                safe_close(peers[i]);
        s = scache_store_free(s);
        assert_int_equal(count_open_fds(), before);
}

/* test_stats_format - Postfix scache_status_dump()'s lines, exactly, and which print when */
static void test_stats_format(void **state)
{
        /* 1709460904 = Sun Mar  3 10:15:04 2024 UTC; 1700000000 = Tue Nov 14 22:13:20 2023 UTC */
        static const struct {
                const char *name;
                ScacheStats st;
                const char *want[4];
        } cases[] = {
                {"nothing happened", {.start = 1709460904}, {NULL}},
                {"everything",
                 {.dest_hits = 4,
                  .dest_misses = 2,
                  .endp_hits = 0,
                  .endp_misses = 32,
                  .max_dests = 1,
                  .max_endps = 6,
                  .max_sessions = 7,
                  .start = 1709460904},
                 {"statistics: start interval Mar  3 10:15:04",
                  "statistics: domain lookup hits=4 miss=2 success=66%",
                  "statistics: address lookup hits=0 miss=32 success=0%",
                  "statistics: max simultaneous domains=1 addresses=6 connection=7"}},
                {"address lookups only",
                 {.endp_hits = 3, .start = 1700000000},
                 {"statistics: start interval Nov 14 22:13:20",
                  "statistics: address lookup hits=3 miss=0 success=100%"}},
                {"domain lookups only",
                 {.dest_hits = 1, .dest_misses = 9, .start = 1700000000},
                 {"statistics: start interval Nov 14 22:13:20",
                  "statistics: domain lookup hits=1 miss=9 success=10%"}},
                {"peaks only (one non-zero peak is enough)",
                 {.max_sessions = 1, .start = 0},
                 {"statistics: start interval Jan  1 00:00:00",
                  "statistics: max simultaneous domains=0 addresses=0 connection=1"}},
                {"success rounds down",
                 {.dest_hits = 2, .dest_misses = 1, .endp_hits = 199, .endp_misses = 1, .start = 1709460904},
                 {"statistics: start interval Mar  3 10:15:04",
                  "statistics: domain lookup hits=2 miss=1 success=66%",
                  "statistics: address lookup hits=199 miss=1 success=99%"}},
        };
        char *saved_tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

        assert_int_equal(setenv("TZ", "UTC", 1), 0);
        tzset();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char lines[4][SCACHE_STATS_LINE_MAX];
                size_t want_n = 0, n;

                while (want_n < 4 && cases[i].want[want_n])
                        want_n++;
                n = scache_stats_format(&cases[i].st, lines);
                if (n != want_n)
                        fail_msg("%s: got %zu lines (first \"%s\") want %zu", cases[i].name, n,
                                 n > 0 ? lines[0] : "", want_n);
                for (size_t j = 0; j < n; j++)
                        if (!streq(lines[j], cases[i].want[j]))
                                fail_msg("%s: line %zu: got \"%s\" want \"%s\"", cases[i].name, j, lines[j],
                                         cases[i].want[j]);
        }
        if (saved_tz)
                setenv("TZ", saved_tz, 1);
        else
                unsetenv("TZ");
        tzset();
        free(saved_tz);
}

/* need_fds - skip the test unless N more descriptors can be opened */
static void need_fds(size_t n)
{
        struct rlimit rl;

        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n + count_open_fds() + FD_RESERVE) {
                print_message("RLIMIT_NOFILE %llu is below %zu: skipped\n", (unsigned long long) rl.rlim_cur,
                              n + FD_RESERVE);
                skip();
        }
}

/* test_many_sessions_one_endpoint - thousands of sessions for one endpoint stay in FIFO order */
static void test_many_sessions_one_endpoint(void **state)
{
        enum { N = 4000 };
        _cleanup_(scache_store_freep) ScacheStore *s = NULL;
        _cleanup_(closep) int base = -EBADF, peer = -EBADF;
        static int fds[N];
        size_t before;
        int pair[2];

        need_fds(N + 2);
        before = count_open_fds();
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        base = pair[0];
        peer = pair[1];
        assert_int_equal(scache_store_new(N, &s), 0);
        /* the store hands back the very descriptor it was given: its number identifies the session */
        for (int i = 0; i < N; i++) {
                char props[32];

                fds[i] = fcntl(base, F_DUPFD_CLOEXEC, 3);
                assert_true(fds[i] >= 0);
                snprintf(props, sizeof(props), "n=%d", i);
                assert_int_equal(scache_store_save_endpoint(s, i, 1000000, "one", props, fds[i], NULL), 0);
        }
        assert_int_equal(scache_store_n_sessions(s), N);
        assert_int_equal(scache_store_n_endpoints(s), 1);
        assert_int_equal(scache_store_next_expiry(s), 1000000);
        for (int i = 0; i < N / 2; i++) {
                _cleanup_(freep) char *props = NULL;
                char want[32];
                int fd;

                assert_int_equal(scache_store_find_endpoint(s, N, "one", &props, &fd), 0);
                snprintf(want, sizeof(want), "n=%d", i);
                if (fd != fds[i] || !streq(props, want))
                        fail_msg("find %d: got fd %d props %s want fd %d props %s", i, fd, props, fds[i],
                                 want);
                safe_close(fd);
        }
        assert_int_equal(scache_store_next_expiry(s), 1000000 + N / 2);
        /* the rest expire one per microsecond, oldest first */
        assert_int_equal(scache_store_expire(s, 1000000 + N - 11), N / 2 - 10);
        assert_int_equal(scache_store_n_sessions(s), 10);
        s = scache_store_free(s); /* with 10 sessions in it */
        base = safe_close(base);
        peer = safe_close(peer);
        assert_int_equal(count_open_fds(), before);
}

/* test_many_endpoints - 10,000 endpoints with one session each and 10,000 destinations */
static void test_many_endpoints(void **state)
{
        enum { N = 10000 };
        _cleanup_(scache_store_freep) ScacheStore *s = NULL;
        _cleanup_(closep) int base = -EBADF, peer = -EBADF;
        static int fds[N];
        size_t before;
        int pair[2];

        need_fds(N + 2);
        before = count_open_fds();
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        base = pair[0];
        peer = pair[1];
        assert_int_equal(scache_store_new(N, &s), 0);
        for (int i = 0; i < N; i++) {
                char ep[64], dest[64];

                snprintf(ep, sizeof(ep), "smtp\n192.0.%d.%d\n25\n1\n0\n0", i / 256, i % 256);
                snprintf(dest, sizeof(dest), "smtp\nexample%d.com\n1\n0\n0", i);
                fds[i] = fcntl(base, F_DUPFD_CLOEXEC, 3);
                assert_true(fds[i] >= 0);
                assert_int_equal(scache_store_save_endpoint(s, 0, 100 + i, ep, ep, fds[i], NULL), 0);
                assert_int_equal(scache_store_save_destination(s, 0, 100 + i, dest, dest, ep), 0);
        }
        assert_int_equal(scache_store_n_sessions(s), N);
        assert_int_equal(scache_store_n_endpoints(s), N);
        assert_int_equal(scache_store_n_destinations(s), N);
        /* every even destination finds its own endpoint's descriptor */
        for (int i = 0; i < N; i += 2) {
                _cleanup_(freep) char *dprops = NULL, *eprops = NULL;
                char ep[64];
                int fd;

                char dest[64];

                snprintf(ep, sizeof(ep), "smtp\n192.0.%d.%d\n25\n1\n0\n0", i / 256, i % 256);
                snprintf(dest, sizeof(dest), "smtp\nexample%d.com\n1\n0\n0", i);
                assert_int_equal(scache_store_find_destination(s, 0, dest, &dprops, &eprops, &fd), 0);
                if (fd != fds[i] || !streq(eprops, ep) || !streq(dprops, dest))
                        fail_msg("find_destination %d: got fd %d props %s want fd %d props %s", i, fd,
                                 eprops, fds[i], ep);
                safe_close(fd);
        }
        assert_int_equal(scache_store_n_sessions(s), N / 2);
        assert_int_equal(scache_store_n_endpoints(s), N / 2);
        assert_int_equal(scache_store_next_expiry(s), 100);
        /* expiry at 100 + N/2 takes bindings 0..N/2 and odd sessions below N/2 + 1 */
        assert_int_equal(scache_store_expire(s, 100 + N / 2), (N / 2 + 1) + (N / 4));
        assert_int_equal(scache_store_n_sessions(s), N / 4);
        s = scache_store_free(s);
        base = safe_close(base);
        peer = safe_close(peer);
        assert_int_equal(count_open_fds(), before);
}

/* lcg - a fixed pseudo-random sequence, so a failure repeats */
static uint32_t lcg(uint32_t *x)
{
        *x = *x * 1664525u + 1013904223u;
        return *x >> 8;
}

/* test_heap_model - expiry order and next_expiry against a brute-force model, with removals from the
 * middle of the heap (finds) and refreshes in both directions */
static void test_heap_model(void **state)
{
        enum { N = 3000, ENDPOINTS = 37 };
        _cleanup_(scache_store_freep) ScacheStore *s = NULL;
        static uint64_t expiry[N]; /* 0: not in the store */
        static int fds[N];
        size_t before = count_open_fds();
        int null_fd;
        uint32_t x = 12345;

        need_fds(N);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(null_fd >= 0);
        assert_int_equal(scache_store_new(N, &s), 0);
        for (int i = 0; i < N; i++) {
                char ep[16];

                snprintf(ep, sizeof(ep), "e%d", i % ENDPOINTS);
                fds[i] = fcntl(null_fd, F_DUPFD_CLOEXEC, 3);
                expiry[i] = 1 + lcg(&x) % 5000;
                assert_int_equal(scache_store_save_endpoint(s, 0, expiry[i], ep, "", fds[i], NULL), 0);
        }
        /* take the oldest session of some endpoints: they leave the heap from anywhere */
        for (int k = 0; k < 500; k++) {
                char ep[16], *props;
                int fd, e = lcg(&x) % ENDPOINTS, i;

                snprintf(ep, sizeof(ep), "e%d", e);
                for (i = e; i < N && expiry[i] == 0; i += ENDPOINTS)
                        ;
                if (i >= N) {
                        assert_int_equal(scache_store_find_endpoint(s, 0, ep, &props, &fd), -ENOENT);
                        continue;
                }
                assert_int_equal(scache_store_find_endpoint(s, 0, ep, &props, &fd), 0);
                if (fd != fds[i])
                        fail_msg("find %s: got fd %d want %d", ep, fd, fds[i]);
                free(props);
                safe_close(fd);
                expiry[i] = 0;
        }
        for (uint64_t now = 0, done = 0; !done; now = MIN(now + 1 + lcg(&x) % 97, 5001)) {
                size_t want = 0, left = 0;
                uint64_t want_next = UINT64_MAX;

                for (int i = 0; i < N; i++) {
                        if (expiry[i] == 0)
                                continue;
                        if (expiry[i] <= now) {
                                want++;
                                expiry[i] = 0;
                                continue;
                        }
                        left++;
                        want_next = MIN(want_next, expiry[i]);
                }
                done = now == 5001;
                size_t got = scache_store_expire(s, now);
                if (got != want || scache_store_n_sessions(s) != left ||
                    scache_store_next_expiry(s) != want_next)
                        fail_msg("expire(%llu): got %zu gone, %zu left, next %llu want %zu, %zu, %llu",
                                 (unsigned long long) now, got, scache_store_n_sessions(s),
                                 (unsigned long long) scache_store_next_expiry(s), want, left,
                                 (unsigned long long) want_next);
        }
        assert_int_equal(scache_store_n_sessions(s), 0);
        assert_int_equal(scache_store_n_endpoints(s), 0);

        /* bindings: refresh later and earlier, check next_expiry against the model each time */
        static uint64_t bexp[500];
        for (int i = 0; i < 500; i++) {
                char d[16];

                snprintf(d, sizeof(d), "d%d", i);
                bexp[i] = 10000 + lcg(&x) % 1000;
                assert_int_equal(scache_store_save_destination(s, 10000, bexp[i] - 10000, d, "p", "A"), 0);
        }
        for (int k = 0; k < 2000; k++) {
                int i = lcg(&x) % 500;
                uint64_t want_next = UINT64_MAX;
                char d[16];

                snprintf(d, sizeof(d), "d%d", i);
                bexp[i] = 10000 + 1 + lcg(&x) % 1000;
                assert_int_equal(scache_store_save_destination(s, 10000, bexp[i] - 10000, d, "p", "A"), 0);
                for (int j = 0; j < 500; j++)
                        want_next = MIN(want_next, bexp[j]);
                if (scache_store_next_expiry(s) != want_next)
                        fail_msg("after refresh %d: got next %llu want %llu", k,
                                 (unsigned long long) scache_store_next_expiry(s),
                                 (unsigned long long) want_next);
        }
        assert_int_equal(scache_store_n_destinations(s), 500);
        assert_int_equal(scache_store_expire(s, 20000), 500);
        safe_close(null_fd);
        s = scache_store_free(s);
        assert_int_equal(count_open_fds(), before);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scenarios),         cmocka_unit_test(test_bad_arguments),
                cmocka_unit_test(test_expired_fd_closed), cmocka_unit_test(test_stats_counters),
                cmocka_unit_test(test_stats_format),      cmocka_unit_test(test_many_sessions_one_endpoint),
                cmocka_unit_test(test_many_endpoints),    cmocka_unit_test(test_heap_model),
        };
        struct rlimit rl;

        /* the large tests hold thousands of descriptors: take what the hard limit allows */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
