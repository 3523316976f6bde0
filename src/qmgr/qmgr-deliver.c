/* SPDX-License-Identifier: MIT */
/*
 * qmgr-deliver.c - handing entries to delivery agents over io.tern.Delivery
 *
 * What qmgr_deliver.c and the transport allocation of qmgr_transport.c do (postfix-semantics.md
 * §3.6), with varlink in place of Postfix's attribute streams:
 *   - an agent is a connection to runtime_directory/TRANSPORT; each is served by its own
 *     agent process (Accept=yes, or a child of an agent run by hand). Idle connections are
 *     kept and reused, as master reuses agent processes; an agent that hangs up (max_use) is
 *     simply dropped and a new connection made;
 *   - a connection that cannot be made (no socket, refused) makes the transport dead for
 *     transport_retry_time with "4.3.0 mail transport unavailable" and defers its entries; a
 *     full listen backlog (EAGAIN) only waits a moment;
 *   - one Deliver call per connection at a time, with the queue file's descriptor; the answer
 *     gives an outcome per recipient, which qmgr records (qmgr_message_apply), and the hop
 *     status, which is the destination's feedback;
 *   - an agent that hangs up without answering, answers garbage or answers for recipients it
 *     was not given has crashed: "4.3.0 unknown mail transport error", its recipients are
 *     deferred and the transport is throttled (Postfix's DELIVER_STAT_CRASH). One that does not
 *     answer within daemon_timeout is given up the same way (Postfix's qmgr exits there; tern
 *     keeps the other deliveries going) and its connection closed, so a late answer cannot
 *     arrive.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "log.h"
#include "macro.h"
#include "qmgr.h"

/* a connect that found the listen backlog full waits this long before the next try */
#define QMGR_CONNECT_BACKOFF_USEC (100 * USEC_PER_MSEC)

static int on_reply(VarlinkClient *c, VarlinkReply *reply, int error, void *userdata);

void qmgr_agent_free(QmgrAgent *a)
{
        if (!a)
                return;
        LIST_REMOVE(agents, a->transport->agents, a);
        a->timeout = sd_event_source_disable_unref(a->timeout);
        a->entry = NULL;
        /* freeing the client calls on_reply for a call in flight: it sees the agent gone */
        if (a->client) {
                VarlinkClient *c = TAKE_PTR(a->client);
                varlink_client_free(c);
        }
        free(a);
}

static int agent_connect(Qmgr *q, QmgrTransport *t, QmgrAgent **ret)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_(closep) int fd = -EBADF;
        VarlinkClient *c = NULL;
        QmgrAgent *a;
        int r;

        if ((size_t) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", q->runtime_directory, t->name) >=
            sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                return -errno;
        r = varlink_client_new_from_fd(TAKE_FD(fd), &c);
        if (r < 0)
                return r;
        r = varlink_client_attach_event(c, q->event, 0);
        if (r < 0) {
                varlink_client_free(c);
                return r;
        }
        a = calloc(1, sizeof(*a));
        if (!a) {
                varlink_client_free(c);
                return -ENOMEM;
        }
        a->transport = t;
        a->client = c;
        LIST_APPEND(agents, t->agents, a);
        *ret = a;
        return 0;
}

/* agent_idle - an idle connection to reuse. One idle for longer than half of max_idle is
 * closed instead: the agent ends idle connections after max_idle, and a request must not be
 * written into a connection that its agent is closing. */
static QmgrAgent *agent_idle(Qmgr *q, QmgrTransport *t)
{
        int64_t now = qmgr_now_usec(q), stale = q->agent_idle_max_usec;
        QmgrAgent *a, *n;

        LIST_FOREACH_SAFE(agents, a, n, t->agents) {
                if (a->entry || !a->client)
                        continue;
                if (stale > 0 && a->idle_since_usec + stale < now) {
                        qmgr_agent_free(a);
                        continue;
                }
                return a;
        }
        return NULL;
}

/* entry_crashed - the agent failed E: defer its recipients, throttle the transport */
static void entry_crashed(QmgrEntry *e, const char *why)
{
        QmgrTransport *t = e->queue->transport;
        QmgrQueue *queue = e->queue;

        log_warning("transport %s failure -- %s", t->name, why);
        qmgr_entry_defer(e, "4.3.0", "unknown mail transport error");
        qmgr_queue_maybe_free(queue);
        qmgr_transport_throttle(t, "4.3.0", "unknown mail transport error");
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        QmgrAgent *a = userdata;
        QmgrEntry *e = a->entry;
        Qmgr *q = a->transport->qmgr;
        QmgrTransport *t = a->transport;

        a->timeout = sd_event_source_disable_unref(a->timeout);
        if (e)
                log_warning("%s: timeout receiving delivery status from transport: %s", e->message->id, t->name);
        qmgr_agent_free(a);
        if (e)
                entry_crashed(e, "no answer within daemon_timeout");
        qmgr_schedule_drain(q);
        return 0;
}

static json_t *entry_request(Qmgr *q, QmgrEntry *e, int64_t handoff)
{
        QmgrMessage *m = e->message;
        _cleanup_(freep) DeliveryRecipient *rcpts = calloc(e->n_rcpts ? e->n_rcpts : 1, sizeof(*rcpts));
        DeliveryRequest req;

        if (!rcpts)
                return NULL;
        for (size_t i = 0; i < e->n_rcpts; i++) {
                const QmgrRcpt *r = &m->rcpts[e->rcpts[i]];
                rcpts[i] = (DeliveryRecipient) {
                        .address = r->address,
                        .orig_address = r->orig_address,
                        .offset = (int64_t) r->offset,
                        .dsn_orig_rcpt = r->dsn_orig_rcpt,
                        .notify_flags = r->notify_flags,
                };
        }
        req = (DeliveryRequest) {
                .queue_id = m->id,
                .queue_name = "active",
                .fd = m->fd,
                .data_offset = m->data_offset,
                .size = m->content_length,
                .nexthop = e->queue->nexthop,
                .sender = m->sender,
                .envelope_id = m->envelope_id,
                .ret_flags = m->ret_flags,
                .sendopts = m->sendopts,
                .recipients = rcpts,
                .n_recipients = e->n_rcpts,
                .arrival_usec = m->arrival_usec,
                .active_usec = m->active_usec,
                .handoff_usec = handoff,
                .conn_cache_load = e->queue->conn_load,
                .conn_cache_store = e->queue->conn_store,
        };
        return delivery_request_to_json(&req);
}

/* agent_send - hand E to A; on failure E is still A's and the caller cleans up */
static int agent_send(Qmgr *q, QmgrAgent *a, QmgrEntry *e)
{
        int64_t now = qmgr_now_usec(q);
        json_t *params;
        int r;

        params = entry_request(q, e, now);
        if (!params)
                return -ENOMEM;
        a->entry = e;
        a->handoff_usec = now;
        a->uses++;
        /* the queue file stays open while the message is in core: no copy of it per call */
        r = varlink_client_invoke(a->client, "io.tern.Delivery.Deliver", params, &e->message->fd, 1,
                                  VARLINK_CALL_BORROW_FDS, on_reply, a);
        if (r < 0)
                return r;
        if (q->daemon_timeout > 0)
                (void) sd_event_add_time_relative(q->event, &a->timeout, CLOCK_MONOTONIC,
                                                  (uint64_t) q->daemon_timeout * USEC_PER_SEC, USEC_PER_SEC,
                                                  on_timeout, a);
        return 0;
}

/* reply_apply - check and record an agent's answer for E; -EBADMSG when it is garbage. A hop
 * failure comes back in HOP_DSN (a valid 4.x.y/5.x.y code, "" when none) and *RET_HOP_TEXT. */
static int reply_apply(Qmgr *q, QmgrEntry *e, json_t *params, int64_t handoff, char hop_dsn[static 16],
                       char **ret_hop_text, bool *ret_last)
{
        QmgrMessage *m = e->message;
        DeliveryReply reply = {};
        const char *reason = NULL;
        _cleanup_(freep) QmgrOutcome *out = NULL;
        _cleanup_(freep) bool *seen = NULL;
        int r;

        hop_dsn[0] = 0;
        r = delivery_reply_from_json(params, &reply, &reason);
        if (r < 0) {
                log_warning("%s: malformed reply from transport %s: %s", m->id, e->queue->transport->name,
                            strna(reason));
                return -EBADMSG;
        }
        out = calloc(e->n_rcpts ? e->n_rcpts : 1, sizeof(QmgrOutcome));
        seen = calloc(e->n_rcpts ? e->n_rcpts : 1, sizeof(bool));
        if (!out || !seen) {
                delivery_reply_done(&reply);
                return -ENOMEM;
        }

        /* every result names one recipient of the request, once; recipients without a result
         * were not delivered: deferred */
        for (size_t i = 0; i < e->n_rcpts; i++)
                out[i] = (QmgrOutcome) { .status = DELIVERY_DEFERRED, .dsn = "4.3.0",
                                         .text = "no delivery status from transport", .relay = "none",
                                         .handoff_usec = handoff, .log_line = true };
        for (size_t j = 0; j < reply.n_results; j++) {
                const DeliveryResult *res = &reply.results[j];
                size_t i;
                for (i = 0; i < e->n_rcpts; i++)
                        if ((int64_t) m->rcpts[e->rcpts[i]].offset == res->offset)
                                break;
                if (i == e->n_rcpts || seen[i]) {
                        log_warning("%s: transport %s answered for a recipient it was not given (offset %lld)",
                                    m->id, e->queue->transport->name, (long long) res->offset);
                        delivery_reply_done(&reply);
                        return -EBADMSG;
                }
                seen[i] = true;
                out[i] = (QmgrOutcome) { .status = res->status, .dsn = res->dsn, .text = res->text,
                                         .relay = res->relay, .handoff_usec = handoff, .log_line = false };
        }
        (void) qmgr_message_apply(m, e->rcpts, out, e->n_rcpts);
        *ret_last = reply.last_call;
        if (reply.hop_failed) {
                /* the destination failed: feedback is negative whatever the code says */
                snprintf(hop_dsn, 16, "%s", reply.hop_dsn && dsn_valid(reply.hop_dsn) ? reply.hop_dsn : "4.0.0");
                *ret_hop_text = strdup(strempty(reply.hop_text));
        }
        delivery_reply_done(&reply);
        return 0;
}

static int on_reply(VarlinkClient *c, VarlinkReply *reply, int error, void *userdata)
{
        QmgrAgent *a = userdata;
        QmgrEntry *e;
        QmgrTransport *t;
        Qmgr *q;
        char hop_dsn[16];
        _cleanup_(freep) char *hop_text = NULL;
        bool last = false;
        int r;

        if (!a->client)
                return 0;               /* being freed: the entry was taken care of */
        e = TAKE_PTR(a->entry);
        t = a->transport;
        q = t->qmgr;
        a->idle_since_usec = qmgr_now_usec(q);
        a->timeout = sd_event_source_disable_unref(a->timeout);
        if (!e)
                return 0;

        if (!reply) {
                char why[128];
                snprintf(why, sizeof(why), "connection closed before an answer: %s", strerror(-error));
                qmgr_agent_free(a);
                entry_crashed(e, why);
                qmgr_schedule_drain(q);
                return 0;
        }
        if (reply->error) {
                /* an interface error (InvalidRequest): the agent is alive, the request failed */
                char text[256];
                json_t *why = json_object_get(reply->parameters, "reason");
                snprintf(text, sizeof(text), "delivery agent refused the request: %s%s%s", reply->error,
                         json_is_string(why) ? ": " : "", json_is_string(why) ? json_string_value(why) : "");
                log_warning("%s: transport %s: %s", e->message->id, t->name, text);
                qmgr_entry_defer(e, "4.3.0", text);
                qmgr_schedule_drain(q);
                return 0;
        }
        r = reply_apply(q, e, reply->parameters, a->handoff_usec, hop_dsn, &hop_text, &last);
        if (r < 0) {
                qmgr_agent_free(a);
                entry_crashed(e, "malformed reply");
                qmgr_schedule_drain(q);
                return 0;
        }
        /* an agent at its max_use closes the connection after this answer: do not reuse it */
        if (last)
                qmgr_agent_free(a);
        qmgr_queue_done_entry(e, hop_dsn[0] ? hop_dsn : NULL, hop_text);
        return 0;
}

void qmgr_drain(Qmgr *q)
{
        QmgrTransport *t;

        while ((t = qmgr_transport_select(q))) {
                QmgrAgent *a = agent_idle(q, t);
                QmgrEntry *e;
                int r;

                if (!a) {
                        r = agent_connect(q, t, &a);
                        if (r == -EAGAIN) {
                                /* backlog full: agents are busy starting; try again shortly */
                                t->rate_locked_until = qmgr_now_usec(q) + (int64_t) QMGR_CONNECT_BACKOFF_USEC;
                                qmgr_schedule_drain_at(q, t->rate_locked_until);
                                continue;
                        }
                        if (r < 0) {
                                log_warning("connect to transport %s: %s", t->name, strerror(-r));
                                qmgr_transport_throttle(t, "4.3.0", "mail transport unavailable");
                                continue;
                        }
                }
                e = qmgr_entry_select(q, t);
                if (!e)
                        break;
                r = agent_send(q, a, e);
                if (r == -ENOTCONN || r == -EPIPE || r == -ECONNRESET) {
                        /* the agent hung up while idle (max_idle): nothing was sent; a fresh
                         * connection takes the request */
                        a->entry = NULL;
                        qmgr_agent_free(a);
                        a = NULL;
                        r = agent_connect(q, t, &a);
                        if (r >= 0)
                                r = agent_send(q, a, e);
                }
                if (r < 0) {
                        if (a) {
                                a->entry = NULL;
                                qmgr_agent_free(a);
                        }
                        entry_crashed(e, "cannot send the delivery request");
                }
        }
}

static int on_drain_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        qmgr_drain(userdata);
        return 0;
}

/* qmgr_schedule_drain_at - a drain at realtime USEC (a rate delay or a backoff ends then) */
void qmgr_schedule_drain_at(Qmgr *q, int64_t usec)
{
        uint64_t when = (uint64_t) MAX(usec, (int64_t) 0);

        if (!q->drain_timer) {
                if (sd_event_add_time(q->event, &q->drain_timer, CLOCK_REALTIME, when, 10 * USEC_PER_MSEC,
                                      on_drain_timer, q) < 0)
                        return;
                return;
        }
        /* keep the earliest pending time */
        uint64_t cur = 0;
        int enabled = 0;
        (void) sd_event_source_get_enabled(q->drain_timer, &enabled);
        (void) sd_event_source_get_time(q->drain_timer, &cur);
        if (enabled == SD_EVENT_OFF || when < cur)
                (void) sd_event_source_set_time(q->drain_timer, when);
        (void) sd_event_source_set_enabled(q->drain_timer, SD_EVENT_ONESHOT);
}

static int on_drain(sd_event_source *s, void *userdata)
{
        Qmgr *q = userdata;

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        qmgr_drain(q);
        return 0;
}

void qmgr_schedule_drain(Qmgr *q)
{
        if (!q->drain_source) {
                if (sd_event_add_defer(q->event, &q->drain_source, on_drain, q) < 0)
                        return;
                (void) sd_event_source_set_priority(q->drain_source, SD_EVENT_PRIORITY_NORMAL + 1);
        }
        (void) sd_event_source_set_enabled(q->drain_source, SD_EVENT_ONESHOT);
}
