/* SPDX-License-Identifier: MIT */
/*
 * qmgr-admin.c - queue administration: what postqueue -p/-j (showq), postcat -q, postsuper
 * -h/-H/-d/-r and qshape do, done inside the daemon that owns the queue
 *
 * Because qmgr is the only process that moves queue files, an operation here cannot race a
 * delivery: a message in core (active) is marked and acted on once its deliveries in flight end
 * (its waiting entries are dropped at once); files in incoming, deferred and hold are moved or
 * removed directly. Queue IDs are long (creation time + inode), so an ID names one message.
 *
 * Logged as postsuper logs: "ID: removed", "ID: placed on hold", "ID: released from hold",
 * "ID: requeued".
 *
 * Listing reads every queue file it lists (and its defer/ and bounce/ logs for the reasons), in
 * the event loop: a queue of N messages costs N file reads per List or Summary.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include <fcntl.h>

#include "qmgr-admin.h"

static const QueueName list_order[] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD };

/* qshape's buckets, in minutes: 0-5, 5-10, ... 1280+ */
static const int64_t age_buckets[] = { 5, 10, 20, 40, 80, 160, 320, 640, 1280 };
#define N_AGE_BUCKETS (ELEMENTSOF(age_buckets) + 1)


static bool domain_match(const char *address, const char *domain)
{
        const char *at = strrchr(address, '@');
        const char *d = at ? at + 1 : "";

        if (domain[0] == '.') {
                size_t ld = strlen(d), lp = strlen(domain);
                /* ".example" matches example itself and its subdomains */
                if (strcasecmp(d, domain + 1) == 0)
                        return true;
                return ld > lp && strcasecmp(d + ld - lp, domain) == 0;
        }
        return strcasecmp(d, domain) == 0;
}

static bool id_listed(json_t *ids, const char *id)
{
        size_t i;
        json_t *e;

        json_array_foreach(ids, i, e)
                if (streq(json_string_value(e), id))
                        return true;
        return false;
}

/* one queue file, decoded, for listing and matching */
typedef struct Item {
        QueueName queue;
        const char *id;
        struct stat st;
        void *map;
        size_t size;
        QueueEnvelope env;
        bool parsed;
} Item;

static void item_done(Item *it)
{
        if (it->parsed)
                queue_envelope_done(&it->env);
        if (it->map)
                munmap(it->map, it->size);
        *it = (Item) {};
}

static int item_load(Qmgr *q, QueueName queue, const char *id, Item *it)
{
        char path[PATH_MAX];
        const char *reason = NULL;
        int fd, r;

        *it = (Item) { .queue = queue, .id = id };
        r = queue_store_path(q->store, queue_name_to_string(queue), id, path, sizeof(path));
        if (r < 0)
                return r;
        fd = openat(queue_store_dirfd(q->store), path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &it->st) < 0 || !S_ISREG(it->st.st_mode) || it->st.st_size <= 0) {
                safe_close(fd);
                return -EBADMSG;
        }
        it->size = (size_t) it->st.st_size;
        it->map = mmap(NULL, it->size, PROT_READ, MAP_SHARED, fd, 0);
        safe_close(fd);
        if (it->map == MAP_FAILED) {
                it->map = NULL;
                return -errno;
        }
        r = queue_envelope_parse(it->map, it->size, &it->env, &reason);
        if (r < 0) {
                munmap(it->map, it->size);
                it->map = NULL;
                return -EBADMSG;
        }
        it->parsed = true;
        return 0;
}

/* filter_needs_envelope - whether matching F reads the queue file, or the name is enough */
static bool filter_needs_envelope(const QmgrFilter *f)
{
        return f->sender || f->recipient || f->recipient_domain || f->older_than >= 0;
}

static bool item_match(const QmgrFilter *f, const Item *it, int64_t now)
{
        if (f->queue_ids && !id_listed(f->queue_ids, it->id))
                return false;
        if (f->queue >= 0 && f->queue != it->queue)
                return false;
        if (!it->parsed)
                return true;            /* the name was all that was asked about */
        if (f->sender && !streq(f->sender, it->env.sender))
                return false;
        if (f->older_than >= 0 && now - it->env.arrival_sec < f->older_than)
                return false;
        if (f->recipient || f->recipient_domain) {
                bool hit = false;
                for (size_t i = 0; i < it->env.n_rcpts && !hit; i++) {
                        const QueueRecipient *r = &it->env.rcpts[i];
                        if (r->done)
                                continue;
                        if (f->recipient && strcasecmp(r->address, f->recipient) != 0)
                                continue;
                        if (f->recipient_domain && !domain_match(r->address, f->recipient_domain))
                                continue;
                        hit = true;
                }
                if (!hit)
                        return false;
        }
        return true;
}

static const QueueLogEntry *log_find(const QueueLogEntry *v, size_t n, const QueueRecipient *r)
{
        for (size_t i = 0; i < n; i++)
                if ((v[i].offset > 0 && (uint64_t) v[i].offset == r->offset) ||
                    (v[i].offset <= 0 && v[i].recipient && streq(v[i].recipient, r->address)))
                        return &v[i];
        return NULL;
}

/* item_message_json - the postqueue -j record (lowerCamelCase) */
static json_t *item_message_json(Qmgr *q, const Item *it)
{
        QueueLogEntry *defer = NULL, *bounce = NULL;
        size_t n_defer = 0, n_bounce = 0;
        json_t *rcpts = json_array(), *m;

        (void) queue_log_read(q->store, "defer", it->id, &defer, &n_defer);
        (void) queue_log_read(q->store, "bounce", it->id, &bounce, &n_bounce);
        for (size_t i = 0; rcpts && i < it->env.n_rcpts; i++) {
                const QueueRecipient *r = &it->env.rcpts[i];
                const QueueLogEntry *d, *b;
                json_t *o;
                if (r->done)
                        continue;
                o = json_pack("{s:s, s:s}", "origAddress", isempty(r->orig_address) ? r->address : r->orig_address,
                              "address", r->address);
                if (!o)
                        continue;
                d = log_find(defer, n_defer, r);
                b = log_find(bounce, n_bounce, r);
                if (d && d->reason)
                        json_object_set_new(o, "delayReason", json_string(d->reason));
                if (b && b->reason)
                        json_object_set_new(o, "bounceReason", json_string(b->reason));
                json_array_append_new(rcpts, o);
        }
        queue_log_entries_free(defer, n_defer);
        queue_log_entries_free(bounce, n_bounce);

        m = json_pack("{s:s, s:s, s:I, s:I, s:b, s:s, s:o}",
                      "queueName", queue_name_to_string(it->queue),
                      "queueId", it->id,
                      "arrivalTime", (json_int_t) (it->env.arrival_sec > 0 ? it->env.arrival_sec : it->st.st_mtime),
                      "messageSize", (json_int_t) (it->env.size_rec.content_length > 0 ? it->env.size_rec.content_length
                                                                                        : (int64_t) it->size),
                      "forcedExpire", (it->st.st_mode & QUEUE_MODE_EXPIRE) != 0,
                      "sender", isempty(it->env.sender) ? "MAILER-DAEMON" : it->env.sender,
                      "recipients", rcpts ? rcpts : json_array());
        if (m && it->queue == QUEUE_DEFERRED)
                json_object_set_new(m, "nextAttemptTime", json_integer(it->st.st_mtime));
        return m;
}

/* A walk over the files of the queues a filter can match, in showq's order, a few at a time:
 * each queue's names are listed when the walk reaches it (names only), each file is read (when
 * the filter or the caller needs its envelope) as the walk passes it. */
typedef int (*ItemFn)(Qmgr *q, Item *it, void *userdata);

struct QmgrWalk {
        Qmgr *q;
        QmgrFilter f;
        bool need_envelope;
        QueueName queues[_QUEUE_MAX];
        size_t nq, k;                   /* queue being walked */
        QmgrIds c;                      /* its names, listed when k reaches it */
        bool listed;
        size_t i;                       /* next name */
};

static int walk_new(Qmgr *q, const QmgrFilter *f, bool with_corrupt, bool need_envelope, QmgrWalk **ret)
{
        QmgrWalk *w = calloc(1, sizeof(*w));

        if (!w)
                return -ENOMEM;
        w->q = q;
        w->f = *f;
        w->need_envelope = need_envelope || filter_needs_envelope(f);
        for (size_t i = 0; i < ELEMENTSOF(list_order); i++)
                w->queues[w->nq++] = list_order[i];
        if (with_corrupt || f->queue == QUEUE_CORRUPT)
                w->queues[w->nq++] = QUEUE_CORRUPT;
        *ret = w;
        return 0;
}

static QmgrWalk *walk_free(QmgrWalk *w)
{
        if (w) {
                qmgr_ids_done(&w->c);
                free(w);
        }
        return NULL;
}

/* walk_list - the names of the queue the walk has reached */
static int walk_list(QmgrWalk *w)
{
        Qmgr *q = w->q;
        QueueName queue = w->queues[w->k];

        w->c = (QmgrIds) {};
        w->i = 0;
        w->listed = true;
        if (w->f.queue >= 0 && w->f.queue != queue)
                return 0;
        if (w->f.queue_ids && json_array_size(w->f.queue_ids) < 64) {
                /* by ID: look the few up instead of listing the directory */
                size_t i;
                json_t *e;
                json_array_foreach(w->f.queue_ids, i, e) {
                        struct stat st;
                        if (queue_store_stat(q->store, queue, json_string_value(e), &st) >= 0 &&
                            qmgr_ids_add(&w->c, json_string_value(e)) < 0)
                                return -ENOMEM;
                }
                return 0;
        }
        return qmgr_ids_list(q->store, queue, &w->c);
}

/* walk_next - FN for at most MAX more matching files; 1: more to come, 0: the walk is over */
static int walk_next(QmgrWalk *w, size_t max, ItemFn fn, void *userdata)
{
        int64_t now = qmgr_now_usec(w->q) / (int64_t) USEC_PER_SEC;
        size_t done = 0;
        int r;

        while (w->k < w->nq) {
                if (!w->listed) {
                        r = walk_list(w);
                        if (r < 0)
                                return r;
                }
                while (w->i < w->c.n) {
                        QueueName queue = w->queues[w->k];
                        const char *id = w->c.v[w->i++];
                        Item it = { .queue = queue, .id = id };

                        if (done >= max) {
                                w->i--;
                                return 1;
                        }
                        if (w->need_envelope && item_load(w->q, queue, id, &it) < 0)
                                continue;       /* gone meanwhile, or not readable: not listed */
                        if (item_match(&w->f, &it, now)) {
                                r = fn(w->q, &it, userdata);
                                done++;
                        } else
                                r = 0;
                        item_done(&it);
                        if (r < 0)
                                return r;
                }
                qmgr_ids_done(&w->c);
                w->listed = false;
                w->k++;
        }
        return 0;
}

/* for_each_item - the whole walk at once (changes, Summary) */
static int for_each_item(Qmgr *q, const QmgrFilter *f, bool with_corrupt, bool need_envelope, ItemFn fn,
                         void *userdata)
{
        QmgrWalk *w = NULL;
        int r;

        r = walk_new(q, f, with_corrupt, need_envelope, &w);
        if (r < 0)
                return r;
        r = walk_next(w, SIZE_MAX, fn, userdata);
        walk_free(w);
        return r < 0 ? r : 0;
}

typedef struct ListCtx {
        QmgrListFn fn;
        void *userdata;
} ListCtx;

static int list_one(Qmgr *q, Item *it, void *userdata)
{
        ListCtx *l = userdata;
        json_t *m = item_message_json(q, it);

        if (!m)
                return -ENOMEM;
        return l->fn(m, l->userdata);
}

int qmgr_lister_new(Qmgr *q, const QmgrFilter *f, QmgrWalk **ret)
{
        return walk_new(q, f, false, true, ret);
}

int qmgr_lister_next(QmgrWalk *w, size_t max, QmgrListFn fn, void *userdata)
{
        ListCtx l = { fn, userdata };

        return walk_next(w, max, list_one, &l);
}

QmgrWalk *qmgr_lister_free(QmgrWalk *w)
{
        return walk_free(w);
}

static json_t *headers_json(const Item *it)
{
        _cleanup_(freep) char *text = NULL;
        size_t size = 0;
        bool truncated = false;
        json_t *a = json_array();
        char *p;

        if (!a || queue_content_text(it->map, it->size, &it->env, 0, true, &text, &size, &truncated) < 0)
                return a;
        /* one string per header: continuation lines (leading blank) join the previous one */
        p = text;
        size_t hdr_start = 0;
        for (size_t i = 0; i <= size; i++) {
                bool end = i == size;
                if (!end && text[i] != '\n')
                        continue;
                bool next_cont = !end && i + 1 < size && (text[i + 1] == ' ' || text[i + 1] == '\t');
                if (!next_cont) {
                        if (i > hdr_start)
                                json_array_append_new(a, json_stringn(p + hdr_start, i - hdr_start));
                        hdr_start = i + 1;
                }
        }
        return a;
}

int qmgr_admin_show(Qmgr *q, const char *id, json_t **ret)
{
        static const QueueName order[] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT };
        QueueLogEntry *defer = NULL, *bounce = NULL;
        size_t n_defer = 0, n_bounce = 0;
        Item it = {};
        json_t *rcpts, *attrs, *o;
        int r = -ENOENT;

        if (!queue_id_valid(id))
                return -ENOENT;
        for (size_t k = 0; k < ELEMENTSOF(order); k++) {
                r = item_load(q, order[k], id, &it);
                if (r != -ENOENT)
                        break;
        }
        if (r < 0)
                return r;

        (void) queue_log_read(q->store, "defer", id, &defer, &n_defer);
        (void) queue_log_read(q->store, "bounce", id, &bounce, &n_bounce);
        rcpts = json_array();
        for (size_t i = 0; rcpts && i < it.env.n_rcpts; i++) {
                const QueueRecipient *rc = &it.env.rcpts[i];
                const QueueLogEntry *b = log_find(bounce, n_bounce, rc), *d = log_find(defer, n_defer, rc);
                const QueueLogEntry *le = b ? b : d;
                o = json_pack("{s:s, s:s, s:I, s:b}", "origAddress",
                              isempty(rc->orig_address) ? rc->address : rc->orig_address, "address", rc->address,
                              "offset", (json_int_t) rc->offset, "done", rc->done);
                if (o && le) {
                        json_object_set_new(o, "log", json_string(b ? "bounce" : "defer"));
                        if (le->status)
                                json_object_set_new(o, "status", json_string(le->status));
                        if (le->reason)
                                json_object_set_new(o, "reason", json_string(le->reason));
                }
                if (o)
                        json_array_append_new(rcpts, o);
        }
        queue_log_entries_free(defer, n_defer);
        queue_log_entries_free(bounce, n_bounce);

        attrs = json_object();
        for (size_t i = 0; attrs && i < it.env.n_attrs; i++)
                json_object_set_new(attrs, it.env.attr_names[i], json_string(it.env.attr_values[i]));

        o = json_pack("{s:o, s:I, s:o, s:o, s:o}",
                      "message", item_message_json(q, &it),
                      "createTime", (json_int_t) it.env.create_time,
                      "attributes", attrs ? attrs : json_object(),
                      "recipients", rcpts ? rcpts : json_array(),
                      "headers", headers_json(&it));
        if (o && it.env.full_name)
                json_object_set_new(o, "fullName", json_string(it.env.full_name));
        item_done(&it);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

/* ---- changes */

typedef struct ChangeCtx {
        QmgrAdminOp op;
        json_t *ids;
        bool requeued;
} ChangeCtx;

static void log_admin(const char *id, const char *what)
{
        char f[QMGR_ID_FIELD_MAX];

        log_info_fields(LOG_FIELDS(QMGR_ID_FIELD(f, id)), "%s: %s", id, what);
}

static int change_one(Qmgr *q, Item *it, void *userdata)
{
        ChangeCtx *c = userdata;
        int64_t now = qmgr_now_usec(q) / (int64_t) USEC_PER_SEC;
        QmgrMessage *m = NULL;
        int r = 0;

        if (it->queue == QUEUE_ACTIVE)
                m = strmap_get(q->messages, it->id);

        switch (c->op) {
        case QMGR_ADMIN_HOLD:
                if (it->queue == QUEUE_HOLD || it->queue == QUEUE_CORRUPT)
                        return 0;
                if (m) {
                        m->flags |= QMGR_MSG_HOLD;
                        break;
                }
                r = queue_store_move(q->store, it->queue, it->id, QUEUE_HOLD, -1);
                if (r >= 0)
                        log_admin(it->id, "placed on hold");
                break;
        case QMGR_ADMIN_RELEASE:
                if (it->queue != QUEUE_HOLD)
                        return 0;
                r = queue_store_move(q->store, QUEUE_HOLD, it->id, QUEUE_DEFERRED, -1);
                if (r >= 0)
                        log_admin(it->id, "released from hold");
                break;
        case QMGR_ADMIN_DELETE:
                if (m) {
                        m->flags |= QMGR_MSG_DELETE;
                        break;
                }
                r = queue_store_remove(q->store, it->queue, it->id);
                if (r >= 0) {
                        (void) queue_log_remove(q->store, "defer", it->id);
                        (void) queue_log_remove(q->store, "bounce", it->id);
                        log_admin(it->id, "removed");
                }
                break;
        case QMGR_ADMIN_REQUEUE:
                if (it->queue == QUEUE_CORRUPT)
                        return 0;
                if (m) {
                        m->flags |= QMGR_MSG_REQUEUE;
                        break;
                }
                r = queue_store_move(q->store, it->queue, it->id, QUEUE_INCOMING, now);
                if (r >= 0) {
                        log_admin(it->id, "requeued");
                        c->requeued = true;
                }
                break;
        }
        if (r == -ENOENT)
                return 0;               /* gone meanwhile */
        if (r < 0) {
                log_warning_errno(r, "%s: cannot change queue file: %m", it->id);
                return 0;
        }
        return json_array_append_new(c->ids, json_string(it->id)) < 0 ? -ENOMEM : 0;
}

/* drop_waiting_entries - entries not yet handed out of messages that an operation marked: the
 * message leaves as soon as its deliveries in flight end */
static void drop_waiting_entries(Qmgr *q)
{
        _cleanup_(freep) QmgrEntry **drop = NULL;
        size_t n = 0, alloc = 0;
        QmgrTransport *t;

        LIST_FOREACH(rr, t, q->transport_rr) {
                QmgrQueue *queue;
                LIST_FOREACH(rr, queue, t->queue_rr) {
                        QmgrEntry *e;
                        LIST_FOREACH(queue, e, queue->todo) {
                                if (!(e->message->flags & (QMGR_MSG_HOLD | QMGR_MSG_DELETE | QMGR_MSG_REQUEUE)))
                                        continue;
                                if (n == alloc) {
                                        size_t na = alloc ? alloc * 2 : 64;
                                        QmgrEntry **nv = reallocarray(drop, na, sizeof(*nv));
                                        if (!nv)
                                                goto apply;     /* the rest leave after delivery */
                                        drop = nv;
                                        alloc = na;
                                }
                                drop[n++] = e;
                        }
                }
        }
apply:
        /* each entry holds a reference on its message: the message outlives all but its last */
        for (size_t i = 0; i < n; i++) {
                QmgrMessage *m = drop[i]->message;
                if (!(m->flags & QMGR_MSG_DELETE))
                        m->flags |= QMGR_MSG_DEFERRED;  /* not delivered: it stays in the file */
                qmgr_entry_free(drop[i]);
                qmgr_message_entry_done(m);
        }
        LIST_FOREACH(rr, t, q->transport_rr) {
                QmgrQueue *queue, *qn;
                LIST_FOREACH_SAFE(rr, queue, qn, t->queue_rr)
                        qmgr_queue_maybe_free(queue);
        }
}

int qmgr_admin_change(Qmgr *q, QmgrAdminOp op, const QmgrFilter *f, json_t **ret_ids)
{
        ChangeCtx c = { .op = op, .ids = json_array() };
        int r;

        if (!c.ids)
                return -ENOMEM;
        r = for_each_item(q, f, op == QMGR_ADMIN_DELETE, false, change_one, &c);
        if (r < 0) {
                json_decref(c.ids);
                return r;
        }
        drop_waiting_entries(q);
        if (c.requeued)
                qmgr_scan_request(q, QMGR_SCAN_INCOMING, QMGR_SCAN_START);
        qmgr_schedule_drain(q);
        *ret_ids = c.ids;
        return 0;
}

/* ---- summary */

typedef struct Dest {
        char *domain;
        int64_t recipients, messages, oldest, next_attempt;
        int64_t ages[N_AGE_BUCKETS];
        char *reason;
        uint64_t last_message;          /* the message it last counted (SummaryCtx.serial) */
} Dest;

typedef struct SummaryCtx {
        int64_t now;
        int64_t counts[_QUEUE_MAX];
        int64_t oldest;
        StrMap *dests;
        uint64_t serial;                /* of the message being counted */
} SummaryCtx;

static int summary_one(Qmgr *q, Item *it, void *userdata)
{
        SummaryCtx *s = userdata;
        int64_t arrival = it->env.arrival_sec > 0 ? it->env.arrival_sec : it->st.st_mtime;
        int64_t age_min = (s->now - arrival) / 60;
        size_t bucket = 0;
        QueueLogEntry *defer = NULL;
        size_t n_defer = 0;

        s->counts[it->queue]++;
        if (s->oldest == 0 || arrival < s->oldest)
                s->oldest = arrival;
        if (it->queue != QUEUE_DEFERRED && it->queue != QUEUE_ACTIVE)
                return 0;
        while (bucket < ELEMENTSOF(age_buckets) && age_min >= age_buckets[bucket])
                bucket++;
        if (it->queue == QUEUE_DEFERRED)
                (void) queue_log_read(q->store, "defer", it->id, &defer, &n_defer);

        s->serial++;
        for (size_t i = 0; i < it->env.n_rcpts; i++) {
                const QueueRecipient *r = &it->env.rcpts[i];
                const char *at = strrchr(r->address, '@');
                _cleanup_(freep) char *domain = strdup(at ? at + 1 : "");
                Dest *d;
                if (r->done || !domain)
                        continue;
                for (char *p = domain; *p; p++)
                        *p = (char) tolower((unsigned char) *p);
                d = strmap_get(s->dests, domain);
                if (!d) {
                        d = calloc(1, sizeof(*d));
                        if (!d || strmap_put(s->dests, domain, d) < 0) {
                                free(d);
                                queue_log_entries_free(defer, n_defer);
                                return -ENOMEM;
                        }
                        d->domain = TAKE_PTR(domain);
                }
                d->recipients++;
                /* messages per destination: once per domain the message has */
                if (d->last_message != s->serial) {
                        d->last_message = s->serial;
                        d->messages++;
                }
                d->ages[bucket]++;
                if (d->oldest == 0 || arrival < d->oldest)
                        d->oldest = arrival;
                if (it->queue == QUEUE_DEFERRED &&
                    (d->next_attempt == 0 || it->st.st_mtime < d->next_attempt))
                        d->next_attempt = it->st.st_mtime;
                const QueueLogEntry *le = log_find(defer, n_defer, r);
                if (le && le->reason) {
                        free(d->reason);
                        d->reason = strdup(le->reason);
                }
        }
        queue_log_entries_free(defer, n_defer);
        return 0;
}

/* destination_dead - a dead destination queue (or one of a dead transport) for DOMAIN */
static bool destination_dead(Qmgr *q, const char *domain)
{
        QmgrTransport *t;

        LIST_FOREACH(rr, t, q->transport_rr) {
                QmgrQueue *queue = strmap_get(t->queues, domain);
                if (queue && (t->dead || window_dead(&queue->window)))
                        return true;
        }
        return false;
}

int qmgr_admin_summary(Qmgr *q, json_t **ret)
{
        SummaryCtx s = { .now = qmgr_now_usec(q) / (int64_t) USEC_PER_SEC };
        QmgrFilter all = { .all = true, .queue = QUEUE_INVALID, .older_than = -1 };
        json_t *queues, *dests, *o;
        size_t state = 0;
        void *v;
        int r;

        r = strmap_new(&s.dests);
        if (r < 0)
                return r;
        r = for_each_item(q, &all, true, true, summary_one, &s);

        queues = json_object();
        for (QueueName k = 0; queues && k < _QUEUE_MAX; k++)
                json_object_set_new(queues, queue_name_to_string(k), json_integer(s.counts[k]));
        dests = json_array();
        while (strmap_next(s.dests, &state, NULL, &v)) {
                Dest *d = v;
                json_t *ages = json_array();
                for (size_t i = 0; ages && i < N_AGE_BUCKETS; i++)
                        json_array_append_new(ages, json_integer(d->ages[i]));
                o = json_pack("{s:s, s:I, s:I, s:o, s:I, s:b}", "domain", d->domain, "recipients",
                              (json_int_t) d->recipients, "messages", (json_int_t) d->messages, "ages",
                              ages ? ages : json_array(), "oldest", (json_int_t) d->oldest, "dead",
                              destination_dead(q, d->domain));
                if (o && d->next_attempt)
                        json_object_set_new(o, "nextAttempt", json_integer(d->next_attempt));
                if (o && d->reason)
                        json_object_set_new(o, "reason", json_string(d->reason));
                if (o && dests)
                        json_array_append_new(dests, o);
                free(d->domain);
                free(d->reason);
                free(d);
        }
        strmap_free(s.dests);
        if (r < 0) {
                json_decref(queues);
                json_decref(dests);
                return r;
        }
        o = json_pack("{s:o, s:o}", "queues", queues ? queues : json_object(), "destinations",
                      dests ? dests : json_array());
        if (o && s.oldest)
                json_object_set_new(o, "oldestArrival", json_integer(s.oldest));
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

/* ---- Status */

static int count_one(QueueStore *s, QueueName queue, const char *id, const struct stat *st, void *userdata)
{
        (*(int64_t *) userdata)++;
        return 0;
}

static int64_t count_files(Qmgr *q, QueueName queue)
{
        int64_t n = 0;

        (void) queue_store_list(q->store, queue, count_one, &n);
        return n;
}

json_t *qmgr_status_json(Qmgr *q)
{
        json_t *transports = json_array(), *dests = json_array(), *counts, *scans;
        QmgrTransport *t;

        LIST_FOREACH(rr, t, q->transport_rr) {
                QmgrAgent *a;
                QmgrQueue *queue;
                int n = 0, idle = 0;
                LIST_FOREACH(agents, a, t->agents) {
                        n++;
                        if (!a->entry)
                                idle++;
                }
                json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:b, s:i}", "name", t->name, "agents", n, "idleAgents",
                                      idle, "pending", (int) t->todo, "dead", t->dead, "destinations",
                                      (int) strmap_size(t->queues));
                if (o && t->dead && t->reason)
                        json_object_set_new(o, "reason", json_string(t->reason));
                if (o && t->dead)
                        json_object_set_new(o, "deadUntil", json_integer(t->dead_until));
                if (o && transports)
                        json_array_append_new(transports, o);
                LIST_FOREACH(rr, queue, t->queue_rr) {
                        json_t *d = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:b}", "transport", t->name, "nexthop",
                                              queue->nexthop, "window", MAX(queue->window.window, 0), "limit",
                                              t->params.limit, "busy", queue->busy, "todo", (int) queue->todo.n,
                                              "dead", window_dead(&queue->window));
                        if (d && window_dead(&queue->window) && queue->reason)
                                json_object_set_new(d, "reason", json_string(queue->reason));
                        if (d && window_dead(&queue->window))
                                json_object_set_new(d, "deadUntil", json_integer(queue->dead_until));
                        if (d && dests)
                                json_array_append_new(dests, d);
                }
        }
        counts = json_pack("{s:I, s:I, s:I, s:I, s:I}",
                           "incoming", (json_int_t) count_files(q, QUEUE_INCOMING),
                           "active", (json_int_t) q->active.n,
                           "deferred", (json_int_t) count_files(q, QUEUE_DEFERRED),
                           "hold", (json_int_t) count_files(q, QUEUE_HOLD),
                           "corrupt", (json_int_t) count_files(q, QUEUE_CORRUPT));
        scans = json_pack("{s:{s:b, s:I, s:I, s:I}, s:{s:b, s:I, s:I, s:I}}",
                          "incoming", "running", q->scans[0].running, "position", (json_int_t) q->scans[0].pos, "files",
                          (json_int_t) q->scans[0].names.n, "lastFiles", (json_int_t) q->scans[0].files_seen,
                          "deferred", "running", q->scans[1].running, "position", (json_int_t) q->scans[1].pos, "files",
                          (json_int_t) q->scans[1].names.n, "lastFiles", (json_int_t) q->scans[1].files_seen);
        return json_pack("{s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
                         "queues", counts ? counts : json_object(),
                         "messages", (json_int_t) q->active.n,
                         "messageLimit", (json_int_t) q->message_active_limit,
                         "recipients", (json_int_t) q->recipients_in_core,
                         "recipientLimit", (json_int_t) q->message_recipient_limit,
                         "scans", scans ? scans : json_object(),
                         "transports", transports ? transports : json_array(),
                         "destinations", dests ? dests : json_array());
}
