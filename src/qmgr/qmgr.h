/* SPDX-License-Identifier: MIT */
/*
 * qmgr.h - tern-qmgr's in-core state: messages, transports, destination queues, entries, agents
 *
 * The shape is oqmgr's (postfix-semantics.md §3.5, §3.13): a transport has destination queues
 * (transport + lower-cased nexthop), a queue has FIFO todo and busy entries, an entry is one
 * delivery request (one message, up to destination_recipient_limit recipients of one queue).
 * A message stays in core (its queue file in active/, open) until every entry of the current
 * recipient batch is done; then it is completed (qmgr-message.c) and leaves.
 *
 * Files: qmgr.c (daemon), qmgr-state.c (configuration in, state out), qmgr-scan.c
 * (incoming/deferred scans, the import loop, inotify,
 * triggers), qmgr-message.c (import, routing, completion, defer/bounce logs), qmgr-transport.c
 * (transports, queues, entries, selection, throttling), qmgr-deliver.c (agents, io.tern.Delivery),
 * qmgr-notify.c (bounce and delay notices), qmgr-admin.c (io.tern.Queue), qmgr-varlink.c (the
 * method tables), feedback.c, resolve.c, bounce.c (pure).
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "delivery.h"
#include "feedback.h"
#include "flush-client.h"
#include "list.h"
#include "queue-store.h"
#include "resolve.h"
#include "strmap.h"
#include "varlink.h"

typedef struct Qmgr Qmgr;
typedef struct QmgrMessage QmgrMessage;
typedef struct QmgrTransport QmgrTransport;
typedef struct QmgrQueue QmgrQueue;
typedef struct QmgrEntry QmgrEntry;
typedef struct QmgrAgent QmgrAgent;

/* Postfix's hard cap on one read of recipients (qmgr_message.c) */
#define QMGR_RECIPIENT_READ_MAX 5000
/* Agent connections one transport may hold: Postfix's default_process_limit. */
#define QMGR_AGENTS_PER_TRANSPORT_DEFAULT 100
/* Descriptors kept back from RLIMIT_NOFILE for agents, clients, scans and logs. */
#define QMGR_FD_RESERVE 512

typedef enum QmgrScanKind {
        QMGR_SCAN_INCOMING,
        QMGR_SCAN_DEFERRED,
        _QMGR_SCAN_MAX,
} QmgrScanKind;

/* scan flags (Postfix's QMGR_SCAN_ALL, QMGR_FLUSH_ONCE|QMGR_FLUSH_DFXP) */
enum {
        QMGR_SCAN_ALL = 1U << 0,        /* ignore future next-attempt times */
        QMGR_FLUSH_DFXP = 1U << 1,      /* ignore defer_transports */
        QMGR_SCAN_START = 1U << 2,      /* start now, or restart when the running one ends */
};

/* queue IDs, as a scan or a listing collects them */
typedef struct QmgrIds {
        char (*v)[QUEUE_ID_MAX];
        size_t n, alloc;
} QmgrIds;

typedef struct QmgrScan {
        QmgrScanKind kind;
        QueueName queue;
        QmgrIds names;                  /* snapshot of the directory */
        size_t pos;
        bool running;
        unsigned flags;                 /* flags of the running scan */
        unsigned next_flags;            /* pending: start/restart and the next scan's flags */
        uint64_t files_seen;            /* files the last full pass saw (for Status) */
} QmgrScan;

/* message flags */
enum {
        QMGR_MSG_FLUSH_EACH = 1U << 0,  /* S_IRGRP: unthrottle its destinations (flush send_file) */
        QMGR_MSG_FORCE_EXPIRE = 1U << 1,/* S_IXGRP */
        QMGR_MSG_DFXP = 1U << 2,        /* imported by a scan with QMGR_FLUSH_DFXP */
        QMGR_MSG_DEFERRED = 1U << 3,    /* some recipient was deferred in this pass */
        QMGR_MSG_HOLD = 1U << 4,        /* admin: to hold when its deliveries end */
        QMGR_MSG_DELETE = 1U << 5,      /* admin: to delete when its deliveries end */
        QMGR_MSG_REQUEUE = 1U << 6,     /* admin: back to incoming when its deliveries end */
};

typedef struct QmgrRcpt {
        char *address;
        char *orig_address;             /* NULL: none */
        char *dsn_orig_rcpt;            /* NULL: none */
        int notify_flags;
        uint64_t offset;                /* of its R record */
} QmgrRcpt;

struct QmgrMessage {
        char id[QUEUE_ID_MAX];
        QueueName from;                 /* incoming or deferred: where it came from */
        int fd;                         /* the queue file in active/, read-write */
        unsigned flags;
        char *sender;
        char *envelope_id;
        int ret_flags, sendopts;
        int64_t create_time;            /* epoch seconds: the base of expiry and backoff */
        int64_t arrival_usec;           /* incoming arrival (T record) */
        int64_t active_usec;            /* when qmgr took it in */
        int64_t data_offset, content_length;
        int64_t warn_time;              /* W record: delay notice due, <= 0 none or sent */
        uint64_t warn_offset;           /* its offset, 0: no W record */
        uint64_t rcpt_total;            /* the C record's count */
        size_t rcpt_next;               /* index in the file's recipients where the next read starts */
        size_t rcpts_in_file;           /* recipient records in the file (done or not) */
        char **flush_sites;             /* recipient domains deferred (NULL-terminated): fast flush */
        QmgrRcpt *rcpts;                /* this batch */
        size_t n_rcpts;
        unsigned refcount;              /* entries of this batch not yet done */
        LIST_FIELDS(QmgrMessage, all);
};

struct QmgrEntry {
        QmgrMessage *message;
        QmgrQueue *queue;
        size_t *rcpts;                  /* indexes into message->rcpts */
        size_t n_rcpts;
        bool busy;                      /* on queue->busy_list (handed to an agent) */
        LIST_FIELDS(QmgrEntry, queue);  /* on queue->todo or queue->busy */
};

struct QmgrQueue {
        QmgrTransport *transport;
        char *name;                     /* lower-cased nexthop: the key */
        char *nexthop;
        Window window;
        int busy;                       /* == busy list length */
        LIST_HEAD(QmgrEntry, todo);
        LIST_HEAD(QmgrEntry, busy_list);
        char *dsn, *reason;             /* why it is dead */
        int64_t dead_until;
        sd_event_source *unthrottle_timer;
        sd_event_source *suspend_timer; /* destination_rate_delay */
        bool suspended;
        bool conn_load, conn_store;     /* connection cache hints (§3.9) */
        int64_t last_done_usec;
        int64_t clog_warned;            /* no clog warning before this time (epoch seconds) */
        LIST_FIELDS(QmgrQueue, rr);     /* the transport's round-robin list */
};

struct QmgrTransport {
        Qmgr *qmgr;
        char *name;
        WindowParams params;
        int recipient_limit;            /* destination_recipient_limit */
        int64_t rate_delay_usec;        /* destination_rate_delay */
        int64_t transport_rate_delay_usec;
        int64_t rate_locked_until;
        bool dead;
        char *dsn, *reason;
        int64_t dead_until;
        sd_event_source *unthrottle_timer;
        StrMap *queues;                 /* name -> QmgrQueue */
        LIST_HEAD(QmgrQueue, queue_rr);
        LIST_HEAD(QmgrAgent, agents);
        int agents_max;
        size_t todo;                    /* entries waiting in all its queues */
        LIST_FIELDS(QmgrTransport, rr);
};

struct QmgrAgent {
        QmgrTransport *transport;
        VarlinkClient *client;
        QmgrEntry *entry;               /* the delivery in flight, NULL: idle */
        int64_t handoff_usec;
        int64_t idle_since_usec;        /* when its last answer came */
        sd_event_source *timeout;
        unsigned uses;
        LIST_FIELDS(QmgrAgent, agents);
};

struct Qmgr {
        sd_event *event;
        const Conf *conf;
        QueueStore *store;
        Resolver *resolver;
        FlushClient *flush;             /* Add(domain, id) for every deferral (fast flush) */
        char *runtime_directory;

        /* configuration, read once */
        int64_t message_active_limit, message_recipient_limit, message_recipient_minimum;
        int64_t minimal_backoff, maximal_backoff, queue_run_delay, transport_retry_time;
        int64_t maximal_queue_lifetime, bounce_queue_lifetime, daemon_timeout, clog_warn_time;
        int64_t delay_warning_time;
        int64_t agent_idle_max_usec;    /* idle agent connections are closed after this (max_idle/2) */
        bool allow_min_user;
        char *double_bounce_sender, *myhostname;

        /* messages in core */
        StrMap *messages;               /* id -> QmgrMessage */
        LIST_HEAD(QmgrMessage, active);
        uint64_t recipients_in_core;

        /* transports */
        LIST_HEAD(QmgrTransport, transport_rr);

        /* scans and the import loop */
        QmgrScan scans[_QMGR_SCAN_MAX];
        QmgrScanKind next_scan;         /* whose turn it is */
        sd_event_source *import_source; /* defer source: imports while there is room and work */
        sd_event_source *drain_source;  /* defer source: hands entries to agents */
        sd_event_source *drain_timer;   /* a drain when a rate delay or connect backoff ends */
        sd_event_source *deferred_timer;/* queue_run_delay */
        sd_event_source *inotify_source;
        int inotify_fd;
};

/* ---- qmgr-transport.c */
int qmgr_transport_get(Qmgr *q, const char *name, QmgrTransport **ret);
QmgrTransport *qmgr_transport_find(Qmgr *q, const char *name);
void qmgr_transport_free(QmgrTransport *t);
/* qmgr_queue_get - the queue NAME (qmgr_queue_name()) of T, created with NEXTHOP if new */
int qmgr_queue_get(QmgrTransport *t, const char *name, const char *nexthop, QmgrQueue **ret);
/* qmgr_queue_name - §3.4 step 8: lower(nexthop), or lower(localpart-without-extension@nexthop)
 * for transports with destination_recipient_limit 1 (one queue per recipient) */
int qmgr_queue_name(const QmgrTransport *t, const char *nexthop, const char *address, char **ret);
void qmgr_queue_maybe_free(QmgrQueue *queue);
/* an entry for MESSAGE on QUEUE (appended to todo) with room for LIMIT recipients */
int qmgr_entry_new(QmgrQueue *queue, QmgrMessage *m, size_t limit, QmgrEntry **ret);
void qmgr_entry_free(QmgrEntry *e);
/* qmgr_entry_select - the next entry to hand out: round robin over transports, then over the
 * transport's queues with room in their window; moved to busy. NULL: nothing to do now. */
QmgrEntry *qmgr_entry_select(Qmgr *q, QmgrTransport *t);
QmgrTransport *qmgr_transport_select(Qmgr *q);
/* after a delivery: feedback and bookkeeping; HOP_DSN/HOP_TEXT non-NULL: the destination failed */
void qmgr_queue_done_entry(QmgrEntry *e, const char *hop_dsn, const char *hop_text);
void qmgr_queue_throttle(QmgrQueue *queue, const char *dsn, const char *text);
void qmgr_queue_unthrottle(QmgrQueue *queue);
void qmgr_transport_throttle(QmgrTransport *t, const char *dsn, const char *text);
void qmgr_transport_unthrottle(QmgrTransport *t);
void qmgr_enable_all(Qmgr *q);
/* defer every todo entry of QUEUE / T with the reason (qmgr-message.c writes the logs) */
void qmgr_defer_queue_todo(QmgrQueue *queue, const char *dsn, const char *text);
void qmgr_defer_transport_todo(QmgrTransport *t, const char *dsn, const char *text);

/* ---- qmgr-message.c */
/* qmgr_message_import - move ID from Q to active and take it in; 0 taken (or gone), 1 not
 * eligible (future mtime, not ready), < 0 error */
int qmgr_message_import(Qmgr *q, QueueName from, const char *id, unsigned scan_flags);
void qmgr_message_entry_done(QmgrMessage *m);
/* per-recipient outcomes written by qmgr: defer/ and bounce/ logs, done marks, log lines */
typedef struct QmgrOutcome {
        DeliveryStatus status;
        const char *dsn, *text, *relay;
        int64_t handoff_usec;           /* 0: not handed to an agent (qmgr's own line) */
        bool log_line;                  /* qmgr logs the delivery line itself (agent did not) */
} QmgrOutcome;
/* apply outcomes to RCPT indexes of M: logs first (durable), then done marks (durable) */
int qmgr_message_apply(QmgrMessage *m, const size_t *rcpts, const QmgrOutcome *outcomes, size_t n);
/* defer the recipients of E without a delivery (dead destination, no agent, crash) */
void qmgr_entry_defer(QmgrEntry *e, const char *dsn, const char *text);
void qmgr_message_free(QmgrMessage *m);
Qmgr *qmgr_of_message(const QmgrMessage *m);

/* ---- qmgr-deliver.c */
/* qmgr_drain - hand todo entries to agents while transports have room */
void qmgr_drain(Qmgr *q);
void qmgr_schedule_drain(Qmgr *q);
void qmgr_schedule_drain_at(Qmgr *q, int64_t usec);
void qmgr_agent_free(QmgrAgent *a);

/* ---- qmgr-scan.c */
/* qmgr_ids_add - append ID; qmgr_ids_list - append the name of every queue file of Q */
int qmgr_ids_add(QmgrIds *ids, const char *id);
int qmgr_ids_list(QueueStore *s, QueueName q, QmgrIds *ids);
void qmgr_ids_done(QmgrIds *ids);
int qmgr_scan_setup(Qmgr *q);
void qmgr_scan_done(Qmgr *q);
void qmgr_scan_request(Qmgr *q, QmgrScanKind kind, unsigned flags);
void qmgr_schedule_import(Qmgr *q);
/* qmgr_trigger - Postfix's trigger bytes as names; -EINVAL with *ret_bad for an unknown one */
int qmgr_trigger(Qmgr *q, const char *const *requests, size_t n, const char **ret_bad);

/* ---- qmgr-notify.c */
/* qmgr_notify_bounce - the non-delivery notice of M from bounce/ID (or, EXPIRED, defer/ID);
 * 0 sent or nothing to send, < 0 try again later */
int qmgr_notify_bounce(Qmgr *q, QmgrMessage *m, bool expired);
/* qmgr_notify_delay - the sender delay notice of M from defer/ID (delay_warning_time);
 * 0 sent or nothing to send, < 0 try again on the next pass */
int qmgr_notify_delay(Qmgr *q, QmgrMessage *m);

/* ---- qmgr-state.c */
/* qmgr_open - Q from the configuration C, on EVENT: parameters, queue store, resolver */
int qmgr_open(Qmgr *q, sd_event *event, const Conf *c);
/* qmgr_close - free what Q holds (not EVENT or C); safe to call twice */
void qmgr_close(Qmgr *q);

/* ---- qmgr.c */
Qmgr *qmgr_global(void);
int64_t qmgr_now_usec(const Qmgr *q);

/* QMGR_ID_FIELD - "TERN_QUEUE_ID=ID" written into BUF (an array of QMGR_ID_FIELD_MAX), for
 * LOG_FIELDS(): every line about a message carries it */
#define QMGR_ID_FIELD_MAX (sizeof("TERN_QUEUE_ID=") + QUEUE_ID_MAX)
#define QMGR_ID_FIELD(buf, id) (snprintf((buf), sizeof(buf), "TERN_QUEUE_ID=%s", (id)), (const char *) (buf))
