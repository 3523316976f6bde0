/* SPDX-License-Identifier: MIT */
/*
 * tern-testagent.c - a scripted delivery agent for qmgr's tests (never installed)
 *
 * Built on src/lib/delivery-agent.c like the real agents, and run like them (-t TRANSPORT, by
 * hand or with systemd-socket-activate --accept). What it does with a Deliver call is chosen by
 * the recipients' local parts (the part before the last '@'), by prefix:
 *
 *   sent...     sent, dsn 2.0.0, "250 2.0.0 Ok" (also any local part not listed here)
 *   defer...    deferred, dsn 4.2.0, "451 4.2.0 try again later"
 *   bounce...   bounced, dsn 5.1.1, "550 5.1.1 no such user"
 *   garbage...  the whole call is answered with a malformed reply (status "exploded")
 *   foreign...  the whole call is answered with a well-formed reply whose result for this
 *               recipient names an offset that was not in the request (offset + 1000000)
 *   hang...     the call is never answered (the process stays until qmgr hangs up or SIGTERM)
 *   crash...    the process aborts (SIGABRT) without answering
 *
 * Precedence within one call: crash, hang, garbage, foreign, then per-recipient results. A
 * nexthop that starts with "hopfail" fails the destination: hop status 4.4.1 "connect to
 * NEXTHOP[192.0.2.1]:25: Connection refused" and every recipient deferred with it.
 *
 * Timing: a local part that contains "slow" followed by digits ("sent-slow300") delays the answer
 * by that many milliseconds (the longest of the call's), on the event loop; TERN_TESTAGENT_DELAY_MS
 * delays every call. Observation: with TERN_TESTAGENT_LOG=FILE each Deliver call appends one line
 * (a single O_APPEND write, so lines of concurrent agents do not mix):
 *
 *   pid=PID transport=T queue_id=QID nexthop=NH recipients=A,B start=SEC.USEC end=SEC.USEC outcome=O
 *
 * where start is when the call arrived and end when it was answered ("-" for hang and crash,
 * whose line is written when the call arrives), and O is answered, garbage, foreign, hang, crash.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delivery-agent.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"

/* Longest line the log gets; recipients beyond it are cut ("..."). */
#define TESTAGENT_LOG_LINE_MAX 8192

typedef struct TestAgent {
        DeliveryJob *hung;              /* a job never answered (abandoned at shutdown) */
        DeliveryJob *delayed;           /* a job waiting for its timer */
        sd_event_source *timer;
        int64_t delayed_start;
} TestAgent;

static TestAgent testagent;

static int64_t now_usec(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* local_part_has - does ADDRESS's local part start with PREFIX? */
static bool local_part_has(const char *address, const char *prefix)
{
        const char *at = strrchr(address, '@');
        size_t n = at ? (size_t) (at - address) : strlen(address);

        return n >= strlen(prefix) && strneq(address, prefix, strlen(prefix));
}

static bool any_recipient(const DeliveryRequest *r, const char *prefix)
{
        for (size_t i = 0; i < r->n_recipients; i++)
                if (local_part_has(r->recipients[i].address, prefix))
                        return true;
        return false;
}

/* slow_ms - the "slowN" of ADDRESS's local part, or 0 */
static uint64_t slow_ms(const char *address)
{
        const char *at = strrchr(address, '@'), *p = address;

        while ((p = strstr(p, "slow")) && (!at || p < at)) {
                char *end;
                unsigned long long v = strtoull(p + 4, &end, 10);

                if (end > p + 4)
                        return v;
                p += 4;
        }
        return 0;
}

static void log_call(const DeliveryRequest *r, int64_t start, int64_t end, const char *outcome)
{
        const char *path = getenv("TERN_TESTAGENT_LOG");
        char line[TESTAGENT_LOG_LINE_MAX], endbuf[32] = "-";
        size_t n;
        int fd;

        if (!path)
                return;
        n = (size_t) snprintf(line, sizeof(line), "pid=%d queue_id=%s nexthop=%s recipients=", (int) getpid(),
                              r->queue_id, r->nexthop);
        for (size_t i = 0; i < r->n_recipients && n < sizeof(line) - 256; i++)
                n += (size_t) snprintf(line + n, sizeof(line) - n, "%s%s", i ? "," : "", r->recipients[i].address);
        if (n >= sizeof(line) - 256)
                n += (size_t) snprintf(line + n, sizeof(line) - n, "...");
        if (end > 0)
                snprintf(endbuf, sizeof(endbuf), "%" PRId64 ".%06" PRId64, end / 1000000, end % 1000000);
        n += (size_t) snprintf(line + n, sizeof(line) - n, " start=%" PRId64 ".%06" PRId64 " end=%s outcome=%s\n",
                               start / 1000000, start % 1000000, endbuf, outcome);
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
                log_warning("TERN_TESTAGENT_LOG %s: %m", path);
                return;
        }
        if (write(fd, line, MIN(n, sizeof(line) - 1)) < 0)
                log_warning("TERN_TESTAGENT_LOG %s: %m", path);
        safe_close(fd);
}

/* answer - the answer the recipients' local parts ask for */
static void answer(DeliveryJob *job, int64_t start)
{
        const DeliveryRequest *r = delivery_job_request(job);

        if (any_recipient(r, "garbage")) {
                log_call(r, start, now_usec(), "garbage");
                (void) delivery_job_reply_raw(
                        job, json_pack("{s:[{s:I,s:s,s:s,s:s,s:s}]}", "recipients", "offset",
                                       (json_int_t) r->recipients[0].offset, "status", "exploded", "dsn", "9.9.9",
                                       "text", "garbage", "relay", "testagent"));
                return;
        }
        if (any_recipient(r, "foreign")) {
                json_t *a = json_array();

                for (size_t i = 0; a && i < r->n_recipients; i++) {
                        bool foreign = local_part_has(r->recipients[i].address, "foreign");

                        json_array_append_new(
                                a, json_pack("{s:I,s:s,s:s,s:s,s:s}", "offset",
                                             (json_int_t) (r->recipients[i].offset + (foreign ? 1000000 : 0)),
                                             "status", "sent", "dsn", "2.0.0", "text", "250 2.0.0 Ok", "relay",
                                             "testagent"));
                }
                log_call(r, start, now_usec(), "foreign");
                (void) delivery_job_reply_raw(job, json_pack("{s:o}", "recipients", a));
                return;
        }
        if (strneq(r->nexthop, "hopfail", 7)) {
                char text[512], relay[300];

                snprintf(relay, sizeof(relay), "%.256s[192.0.2.1]:25", r->nexthop);
                snprintf(text, sizeof(text), "connect to %s: Connection refused", relay);
                (void) delivery_job_hop_status(job, "4.4.1", text);
                (void) delivery_job_result_all(job, DELIVERY_DEFERRED, "4.4.1", relay, text);
        }
        for (size_t i = 0; i < r->n_recipients; i++) {
                const char *a = r->recipients[i].address;

                if (local_part_has(a, "defer"))
                        (void) delivery_job_result(job, i, DELIVERY_DEFERRED, "4.2.0", "testagent",
                                                   "451 4.2.0 try again later");
                else if (local_part_has(a, "bounce"))
                        (void) delivery_job_result(job, i, DELIVERY_BOUNCED, "5.1.1", "testagent",
                                                   "550 5.1.1 no such user");
                else
                        (void) delivery_job_result(job, i, DELIVERY_SENT, "2.0.0", "testagent", "250 2.0.0 Ok");
        }
        log_call(r, start, now_usec(), "answered");
        (void) delivery_job_finish(job);
}

static int on_delay(sd_event_source *s, uint64_t usec, void *userdata)
{
        TestAgent *t = userdata;
        DeliveryJob *job = TAKE_PTR(t->delayed);

        t->timer = sd_event_source_disable_unref(t->timer);
        if (job)
                answer(job, t->delayed_start);
        return 0;
}

static int testagent_deliver(DeliveryJob *job, void *userdata)
{
        TestAgent *t = userdata;
        const DeliveryRequest *r = delivery_job_request(job);
        int64_t start = now_usec();
        uint64_t delay = 0;
        const char *env = getenv("TERN_TESTAGENT_DELAY_MS");
        int k;

        if (any_recipient(r, "crash")) {
                log_call(r, start, 0, "crash");
                abort();
        }
        if (any_recipient(r, "hang")) {
                log_call(r, start, 0, "hang");
                t->hung = job;
                return 0;
        }
        if (env)
                delay = strtoull(env, NULL, 10);
        for (size_t i = 0; i < r->n_recipients; i++)
                delay = MAX(delay, slow_ms(r->recipients[i].address));
        if (delay == 0) {
                answer(job, start);
                return 0;
        }
        k = sd_event_add_time_relative(delivery_agent_event(delivery_job_agent(job)), &t->timer, CLOCK_MONOTONIC,
                                       delay * 1000, 0, on_delay, t);
        if (k < 0)
                return k;
        t->delayed = job;
        t->delayed_start = start;
        return 0;
}

static void testagent_shutdown(DeliveryAgent *a, void *userdata)
{
        TestAgent *t = userdata;

        t->timer = sd_event_source_disable_unref(t->timer);
        if (t->delayed)
                delivery_job_abandon(TAKE_PTR(t->delayed));
        if (t->hung)
                delivery_job_abandon(TAKE_PTR(t->hung));
}

int main(int argc, char **argv)
{
        static const DeliveryAgentSpec spec = {
                .program = "testagent",
                .description = "A scripted delivery agent for tests: the recipients' local parts say what "
                               "happens.",
                .deliver = testagent_deliver,
                .shutdown = testagent_shutdown,
                .userdata = &testagent,
        };

        return delivery_agent_main(&spec, argc, argv);
}
