/* SPDX-License-Identifier: MIT */
/*
 * scache-store.c - scache(8)'s data model: destinations -> bindings, endpoints -> sessions, TTLs
 *
 * The semantics are Postfix's global/scache_multi.c (reference §2.4; see scache-store.h). This
 * file is only about how they are made cheap at tens of thousands of operations per second:
 *
 *   - Two hash tables keyed by label (LabelTable: chained, power-of-two buckets, 64-bit FNV-1a
 *     finished with a murmur3 mixer, doubling at load 3/4): endpoint label -> Endpoint,
 *     destination label -> Destination. Each entry holds a doubly linked FIFO list: the
 *     endpoint's sessions, the destination's bindings. Save appends at the tail, find pops the
 *     head, any item unlinks in O(1).
 *   - One binary min-heap over the expiry times of all sessions and bindings; each item keeps its
 *     heap index, so removing or refreshing one is O(log n), and next_expiry() is O(1).
 *   - Two store-wide FIFO lists by creation time, one of sessions and one of bindings: when the
 *     store is full the head (the oldest) goes.
 *
 * Invariants, true between calls:
 *   - an Endpoint is in its table iff it has at least one session; a Destination iff it has at
 *     least one binding (empty lists go at once, as in Postfix);
 *   - every session and binding is in the heap exactly once, and nothing in the store has
 *     expired at the "now" of the last call: save and find first drop what expired at their NOW,
 *     so a late timer in the daemon never hands out an expired session;
 *   - the store owns the descriptor of every session and closes it exactly once (expiry,
 *     eviction, free); find hands it to the caller instead.
 *
 * An item expires when NOW >= its expiry (saved at NOW + TTL), as a Postfix timer fires at TTL.
 *
 * Limits and known bugs:
 *   - At most max_sessions sessions AND at most max_sessions bindings. Postfix bounds neither.
 *     The binding limit is ours: without it a client saving destinations in a loop would grow
 *     the daemon without bound; one delivery makes at most one binding per session it saves, so
 *     the same figure is a generous cap. Evicting a binding closes nothing and is not reported.
 *   - save_destination looks for a binding to refresh by walking the destination's list, and
 *     find_destination walks it too (as Postfix does): linear in the bindings of one destination,
 *     which are as many as its MX hosts in practice.
 *   - The hash is not keyed: a local client that can choose labels could make chains long. The
 *     clients are tern's own delivery agents, and the daemon bounds label lengths.
 *   - The tables and the heap grow but never shrink; their memory after a peak stays (a few
 *     pointers per item of the peak).
 *   - Not thread-safe.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "scache-store.h"

/* initial buckets of a label table: a power of two, small since most caches hold a few labels */
#define LABEL_TABLE_MIN_BUCKETS 64

/* initial heap capacity, doubled as needed */
#define EXPIRY_HEAP_MIN_SIZE 64

typedef enum ItemKind {
        ITEM_SESSION,
        ITEM_BINDING,
} ItemKind;

/* what the expiry heap orders: the first member of Session and Binding */
typedef struct Item {
        uint64_t expiry;
        size_t heap_idx;
        ItemKind kind;
} Item;

/* a hash table entry: the first member of Endpoint and Destination */
typedef struct Entry {
        struct Entry *bucket_next;
        uint64_t hash;
        char *label;
} Entry;

typedef struct LabelTable {
        Entry **buckets;
        size_t n_buckets; /* a power of two */
        size_t n_entries;
} LabelTable;

typedef struct Session Session;
typedef struct Binding Binding;

typedef struct Endpoint {
        Entry entry;
        Session *head, *tail; /* oldest first */
        char label[];
} Endpoint;

typedef struct Destination {
        Entry entry;
        Binding *head, *tail; /* oldest first */
        char label[];
} Destination;

struct Session {
        Item item;
        Endpoint *endpoint;
        Session *prev, *next;         /* the endpoint's FIFO */
        Session *all_prev, *all_next; /* the store's FIFO by save time, for eviction */
        int fd;
        char props[];
};

struct Binding {
        Item item;
        Destination *destination;
        Binding *prev, *next;         /* the destination's FIFO */
        Binding *all_prev, *all_next; /* the store's FIFO by creation time, for eviction */
        char *props;                  /* points into data, after the endpoint label */
        char endpoint_label[];
};

struct ScacheStore {
        size_t max_sessions;
        LabelTable endpoints, destinations;
        Item **heap;
        size_t heap_size, heap_alloc;
        Session *sessions_head, *sessions_tail;
        Binding *bindings_head, *bindings_tail;
        size_t n_sessions, n_bindings;
        ScacheStats stats;
};

/* label_hash - 64-bit FNV-1a over the label, then murmur3's fmix64 so low bits mix well */
static uint64_t label_hash(const char *label)
{
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (const unsigned char *p = (const unsigned char *) label; *p; p++) {
                h ^= *p;
                h *= UINT64_C(0x100000001b3);
        }
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        h *= UINT64_C(0xc4ceb9fe1a85ec53);
        h ^= h >> 33;
        return h;
}

/* label_table_init - an empty table with LABEL_TABLE_MIN_BUCKETS buckets */
static int label_table_init(LabelTable *t)
{
        t->buckets = calloc(LABEL_TABLE_MIN_BUCKETS, sizeof(Entry *));
        if (!t->buckets)
                return -ENOMEM;
        t->n_buckets = LABEL_TABLE_MIN_BUCKETS;
        t->n_entries = 0;
        return 0;
}

/* label_table_find - the entry for LABEL (whose hash is HASH), or NULL */
static Entry *label_table_find(const LabelTable *t, const char *label, uint64_t hash)
{
        for (Entry *e = t->buckets[hash & (t->n_buckets - 1)]; e; e = e->bucket_next)
                if (e->hash == hash && streq(e->label, label))
                        return e;
        return NULL;
}

/* label_table_grow - double the buckets; on -ENOMEM the table stays as it was, only slower */
static void label_table_grow(LabelTable *t)
{
        size_t n = t->n_buckets * 2;
        Entry **b;

        if (n < t->n_buckets || n > SIZE_MAX / sizeof(Entry *))
                return;
        b = calloc(n, sizeof(Entry *));
        if (!b)
                return;
        for (size_t i = 0; i < t->n_buckets; i++)
                for (Entry *e = t->buckets[i], *next; e; e = next) {
                        next = e->bucket_next;
                        e->bucket_next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        free(t->buckets);
        t->buckets = b;
        t->n_buckets = n;
}

/* label_table_add - insert E (not yet in the table; its hash set); never fails */
static void label_table_add(LabelTable *t, Entry *e)
{
        Entry **b;

        if ((t->n_entries + 1) * 4 > t->n_buckets * 3)
                label_table_grow(t);
        b = &t->buckets[e->hash & (t->n_buckets - 1)];
        e->bucket_next = *b;
        *b = e;
        t->n_entries++;
}

/* label_table_remove - unlink E, which is in the table */
static void label_table_remove(LabelTable *t, Entry *e)
{
        Entry **p = &t->buckets[e->hash & (t->n_buckets - 1)];

        while (*p != e)
                p = &(*p)->bucket_next;
        *p = e->bucket_next;
        e->bucket_next = NULL;
        t->n_entries--;
}

/* heap_set - put ITEM at slot I and tell it so */
static void heap_set(ScacheStore *s, size_t i, Item *item)
{
        s->heap[i] = item;
        item->heap_idx = i;
}

/* heap_sift_up - move the item at slot I towards the root while it expires before its parent */
static void heap_sift_up(ScacheStore *s, size_t i)
{
        Item *item = s->heap[i];

        while (i > 0) {
                size_t parent = (i - 1) / 2;

                if (s->heap[parent]->expiry <= item->expiry)
                        break;
                heap_set(s, i, s->heap[parent]);
                i = parent;
        }
        heap_set(s, i, item);
}

/* heap_sift_down - move the item at slot I towards the leaves while a child expires before it */
static void heap_sift_down(ScacheStore *s, size_t i)
{
        Item *item = s->heap[i];

        for (;;) {
                size_t child = 2 * i + 1;

                if (child >= s->heap_size)
                        break;
                if (child + 1 < s->heap_size && s->heap[child + 1]->expiry < s->heap[child]->expiry)
                        child++;
                if (item->expiry <= s->heap[child]->expiry)
                        break;
                heap_set(s, i, s->heap[child]);
                i = child;
        }
        heap_set(s, i, item);
}

/* heap_reserve - make room for one more item, so that heap_push cannot fail */
static int heap_reserve(ScacheStore *s)
{
        size_t n;
        Item **h;

        if (s->heap_size < s->heap_alloc)
                return 0;
        n = s->heap_alloc ? s->heap_alloc * 2 : EXPIRY_HEAP_MIN_SIZE;
        if (n > SIZE_MAX / sizeof(Item *))
                return -ENOMEM;
        h = realloc(s->heap, n * sizeof(Item *));
        if (!h)
                return -ENOMEM;
        s->heap = h;
        s->heap_alloc = n;
        return 0;
}

/* heap_push - add ITEM (room reserved with heap_reserve) */
static void heap_push(ScacheStore *s, Item *item)
{
        assert(s->heap_size < s->heap_alloc);
        heap_set(s, s->heap_size++, item);
        heap_sift_up(s, item->heap_idx);
}

/* heap_remove - take ITEM, wherever it is, out of the heap */
static void heap_remove(ScacheStore *s, Item *item)
{
        size_t i = item->heap_idx;
        Item *last;

        assert(i < s->heap_size && s->heap[i] == item);
        last = s->heap[--s->heap_size];
        if (last == item)
                return;
        heap_set(s, i, last);
        if (i > 0 && s->heap[(i - 1) / 2]->expiry > last->expiry)
                heap_sift_up(s, i);
        else
                heap_sift_down(s, i);
}

/* heap_update - ITEM's expiry changed: restore heap order */
static void heap_update(ScacheStore *s, Item *item)
{
        heap_sift_up(s, item->heap_idx);
        heap_sift_down(s, item->heap_idx);
}

/* expiry_at - NOW + TTL, saturating: an item whose expiry would overflow never expires */
static uint64_t expiry_at(uint64_t now, uint64_t ttl)
{
        return ttl > UINT64_MAX - now ? UINT64_MAX : now + ttl;
}

/* session_unlink - take SESS out of its endpoint (dropping the endpoint if empty), the store's list
 * and the heap; the descriptor is left alone and SESS is not freed */
static void session_unlink(ScacheStore *s, Session *sess)
{
        Endpoint *ep = sess->endpoint;

        if (sess->prev)
                sess->prev->next = sess->next;
        else
                ep->head = sess->next;
        if (sess->next)
                sess->next->prev = sess->prev;
        else
                ep->tail = sess->prev;

        if (sess->all_prev)
                sess->all_prev->all_next = sess->all_next;
        else
                s->sessions_head = sess->all_next;
        if (sess->all_next)
                sess->all_next->all_prev = sess->all_prev;
        else
                s->sessions_tail = sess->all_prev;

        heap_remove(s, &sess->item);
        s->n_sessions--;

        if (!ep->head) {
                label_table_remove(&s->endpoints, &ep->entry);
                free(ep);
        }
}

/* session_drop - unlink SESS, close its descriptor and free it */
static void session_drop(ScacheStore *s, Session *sess)
{
        session_unlink(s, sess);
        safe_close(sess->fd);
        free(sess);
}

/* binding_drop - unlink B from its destination (dropping the destination if empty), the store's
 * list and the heap, and free it */
static void binding_drop(ScacheStore *s, Binding *b)
{
        Destination *d = b->destination;

        if (b->prev)
                b->prev->next = b->next;
        else
                d->head = b->next;
        if (b->next)
                b->next->prev = b->prev;
        else
                d->tail = b->prev;

        if (b->all_prev)
                b->all_prev->all_next = b->all_next;
        else
                s->bindings_head = b->all_next;
        if (b->all_next)
                b->all_next->all_prev = b->all_prev;
        else
                s->bindings_tail = b->all_prev;

        heap_remove(s, &b->item);
        s->n_bindings--;
        free(b);

        if (!d->head) {
                label_table_remove(&s->destinations, &d->entry);
                free(d);
        }
}

/* item_drop - drop a session or a binding, whichever ITEM is */
static void item_drop(ScacheStore *s, Item *item)
{
        if (item->kind == ITEM_SESSION)
                session_drop(s, container_of(item, Session, item));
        else
                binding_drop(s, container_of(item, Binding, item));
}

/* stats_sample - raise the peaks to the current sizes (after each save, as Postfix does) */
static void stats_sample(ScacheStore *s)
{
        s->stats.max_dests = MAX(s->stats.max_dests, s->destinations.n_entries);
        s->stats.max_endps = MAX(s->stats.max_endps, s->endpoints.n_entries);
        s->stats.max_sessions = MAX(s->stats.max_sessions, s->n_sessions);
}

/* endpoint_find_hashed - the endpoint for LABEL, whose hash is HASH, or NULL */
static Endpoint *endpoint_find_hashed(const ScacheStore *s, const char *label, uint64_t hash)
{
        Entry *e = label_table_find(&s->endpoints, label, hash);

        return e ? container_of(e, Endpoint, entry) : NULL;
}

/* endpoint_find - the endpoint for LABEL, or NULL */
static Endpoint *endpoint_find(const ScacheStore *s, const char *label)
{
        return endpoint_find_hashed(s, label, label_hash(label));
}

/* destination_find_hashed - the destination for LABEL, whose hash is HASH, or NULL */
static Destination *destination_find_hashed(const ScacheStore *s, const char *label, uint64_t hash)
{
        Entry *e = label_table_find(&s->destinations, label, hash);

        return e ? container_of(e, Destination, entry) : NULL;
}

/* destination_find - the destination for LABEL, or NULL */
static Destination *destination_find(const ScacheStore *s, const char *label)
{
        return destination_find_hashed(s, label, label_hash(label));
}

/* scache_store_new - an empty store holding at most MAX_SESSIONS sessions (and as many bindings) */
int scache_store_new(size_t max_sessions, ScacheStore **ret)
{
        _cleanup_(freep) ScacheStore *s = NULL;
        int r;

        if (!ret || max_sessions == 0)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->max_sessions = max_sessions;
        r = label_table_init(&s->endpoints);
        if (r < 0)
                return r;
        r = label_table_init(&s->destinations);
        if (r < 0) {
                free(s->endpoints.buckets);
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

/* scache_store_free - close every cached descriptor, free everything; returns NULL */
ScacheStore *scache_store_free(ScacheStore *s)
{
        if (!s)
                return NULL;
        for (Session *sess = s->sessions_head, *next; sess; sess = next) {
                next = sess->all_next;
                safe_close(sess->fd);
                free(sess);
        }
        for (Binding *b = s->bindings_head, *next; b; b = next) {
                next = b->all_next;
                free(b);
        }
        for (size_t i = 0; i < s->endpoints.n_buckets; i++)
                for (Entry *e = s->endpoints.buckets[i], *next; e; e = next) {
                        next = e->bucket_next;
                        free(container_of(e, Endpoint, entry));
                }
        for (size_t i = 0; i < s->destinations.n_buckets; i++)
                for (Entry *e = s->destinations.buckets[i], *next; e; e = next) {
                        next = e->bucket_next;
                        free(container_of(e, Destination, entry));
                }
        free(s->endpoints.buckets);
        free(s->destinations.buckets);
        free(s->heap);
        free(s);
        return NULL;
}

/* scache_store_expire - drop every item whose expiry is at or before NOW; returns how many went */
size_t scache_store_expire(ScacheStore *s, uint64_t now)
{
        size_t n = 0;

        while (s->heap_size > 0 && s->heap[0]->expiry <= now) {
                item_drop(s, s->heap[0]);
                n++;
        }
        return n;
}

/* scache_store_next_expiry - when the next item expires; UINT64_MAX when the store is empty */
uint64_t scache_store_next_expiry(const ScacheStore *s)
{
        return s->heap_size > 0 ? s->heap[0]->expiry : UINT64_MAX;
}

/* scache_store_save_endpoint - append a session (FD, PROPS) to ENDPOINT, evicting the oldest
 * session of the store when it is full; FD is the store's from now on, also on failure */
int scache_store_save_endpoint(ScacheStore *s, uint64_t now, uint64_t ttl, const char *endpoint,
                               const char *props, int fd, bool *ret_evicted)
{
        _cleanup_(closep) int fd_owned = fd;
        _cleanup_(freep) Session *sess = NULL;
        _cleanup_(freep) Endpoint *ep_new = NULL;
        Endpoint *ep;
        uint64_t hash;
        size_t props_len;
        bool evicted = false;

        if (!s || !endpoint || !props || ttl == 0)
                return -EINVAL;
        if (fd < 0)
                return -EBADF;

        scache_store_expire(s, now);

        props_len = strlen(props);
        sess = malloc(sizeof(Session) + props_len + 1);
        if (!sess)
                return -ENOMEM;
        memcpy(sess->props, props, props_len + 1);

        hash = label_hash(endpoint);
        ep = endpoint_find_hashed(s, endpoint, hash);
        if (!ep) {
                size_t len = strlen(endpoint);

                ep_new = malloc(sizeof(Endpoint) + len + 1);
                if (!ep_new)
                        return -ENOMEM;
                memcpy(ep_new->label, endpoint, len + 1);
                ep_new->entry.hash = hash;
                ep_new->entry.label = ep_new->label;
                ep_new->entry.bucket_next = NULL;
                ep_new->head = ep_new->tail = NULL;
        }
        if (heap_reserve(s) < 0)
                return -ENOMEM;

        /* nothing fails from here on */
        if (ep_new) {
                ep = TAKE_PTR(ep_new);
                label_table_add(&s->endpoints, &ep->entry);
        }
        sess->item.kind = ITEM_SESSION;
        sess->item.expiry = expiry_at(now, ttl);
        sess->endpoint = ep;
        sess->fd = TAKE_FD(fd_owned);
        sess->next = NULL;
        sess->prev = ep->tail;
        if (ep->tail)
                ep->tail->next = sess;
        else
                ep->head = sess;
        ep->tail = sess;
        sess->all_next = NULL;
        sess->all_prev = s->sessions_tail;
        if (s->sessions_tail)
                s->sessions_tail->all_next = sess;
        else
                s->sessions_head = sess;
        s->sessions_tail = sess;
        heap_push(s, &sess->item);
        s->n_sessions++;
        TAKE_PTR(sess);

        /* the new session is the newest of all, so it is never the one to go */
        while (s->n_sessions > s->max_sessions) {
                session_drop(s, s->sessions_head);
                evicted = true;
        }

        stats_sample(s);
        if (ret_evicted)
                *ret_evicted = evicted;
        return 0;
}

/* session_take - pop the oldest session of EP: its props (copied) and descriptor to the caller */
static int session_take(ScacheStore *s, Endpoint *ep, char **ret_props, int *ret_fd)
{
        Session *sess = ep->head;
        char *props;

        props = strdup(sess->props);
        if (!props)
                return -ENOMEM;
        session_unlink(s, sess); /* may free ep */
        *ret_props = props;
        *ret_fd = sess->fd;
        free(sess);
        return 0;
}

/* scache_store_find_endpoint - take ENDPOINT's oldest session; counts an address hit or miss */
int scache_store_find_endpoint(ScacheStore *s, uint64_t now, const char *endpoint, char **ret_props,
                               int *ret_fd)
{
        Endpoint *ep;
        int r;

        if (!s || !endpoint || !ret_props || !ret_fd)
                return -EINVAL;

        scache_store_expire(s, now);

        ep = endpoint_find(s, endpoint);
        if (!ep) {
                s->stats.endp_misses++;
                return -ENOENT;
        }
        r = session_take(s, ep, ret_props, ret_fd);
        if (r < 0)
                return r;
        s->stats.endp_hits++;
        return 0;
}

/* scache_store_save_destination - bind DESTINATION to ENDPOINT with DEST_PROPS, or refresh the
 * expiry of the binding that has that endpoint and those props already (it keeps its place) */
int scache_store_save_destination(ScacheStore *s, uint64_t now, uint64_t ttl, const char *destination,
                                  const char *dest_props, const char *endpoint)
{
        _cleanup_(freep) Destination *d_new = NULL;
        Destination *d;
        Binding *b;
        size_t endpoint_len, props_len;
        uint64_t hash;

        if (!s || !destination || !dest_props || !endpoint || ttl == 0)
                return -EINVAL;

        scache_store_expire(s, now);

        hash = label_hash(destination);
        d = destination_find_hashed(s, destination, hash);
        if (d)
                for (b = d->head; b; b = b->next)
                        if (streq(b->endpoint_label, endpoint) && streq(b->props, dest_props)) {
                                b->item.expiry = expiry_at(now, ttl);
                                heap_update(s, &b->item);
                                stats_sample(s);
                                return 0;
                        }

        if (!d) {
                size_t len = strlen(destination);

                d_new = malloc(sizeof(Destination) + len + 1);
                if (!d_new)
                        return -ENOMEM;
                memcpy(d_new->label, destination, len + 1);
                d_new->entry.hash = hash;
                d_new->entry.label = d_new->label;
                d_new->entry.bucket_next = NULL;
                d_new->head = d_new->tail = NULL;
        }
        endpoint_len = strlen(endpoint);
        props_len = strlen(dest_props);
        b = malloc(sizeof(Binding) + endpoint_len + 1 + props_len + 1);
        if (!b)
                return -ENOMEM;
        if (heap_reserve(s) < 0) {
                free(b);
                return -ENOMEM;
        }

        /* nothing fails from here on */
        if (d_new) {
                d = TAKE_PTR(d_new);
                label_table_add(&s->destinations, &d->entry);
        }
        memcpy(b->endpoint_label, endpoint, endpoint_len + 1);
        b->props = b->endpoint_label + endpoint_len + 1;
        memcpy(b->props, dest_props, props_len + 1);
        b->item.kind = ITEM_BINDING;
        b->item.expiry = expiry_at(now, ttl);
        b->destination = d;
        b->next = NULL;
        b->prev = d->tail;
        if (d->tail)
                d->tail->next = b;
        else
                d->head = b;
        d->tail = b;
        b->all_next = NULL;
        b->all_prev = s->bindings_tail;
        if (s->bindings_tail)
                s->bindings_tail->all_next = b;
        else
                s->bindings_head = b;
        s->bindings_tail = b;
        heap_push(s, &b->item);
        s->n_bindings++;

        /* the new binding is the newest of all, so it is never the one to go */
        while (s->n_bindings > s->max_sessions)
                binding_drop(s, s->bindings_head);

        stats_sample(s);
        return 0;
}

/* scache_store_find_destination - the first of DESTINATION's bindings, oldest first, whose
 * endpoint has a session: that session (taken) and the binding's props; counts a domain hit or
 * miss (not an address lookup) */
int scache_store_find_destination(ScacheStore *s, uint64_t now, const char *destination,
                                  char **ret_dest_props, char **ret_endp_props, int *ret_fd)
{
        Destination *d;

        if (!s || !destination || !ret_dest_props || !ret_endp_props || !ret_fd)
                return -EINVAL;

        scache_store_expire(s, now);

        d = destination_find(s, destination);
        if (d)
                for (Binding *b = d->head; b; b = b->next) {
                        Endpoint *ep = endpoint_find(s, b->endpoint_label);
                        _cleanup_(freep) char *dest_props = NULL;
                        int r;

                        if (!ep)
                                continue;
                        dest_props = strdup(b->props);
                        if (!dest_props)
                                return -ENOMEM;
                        r = session_take(s, ep, ret_endp_props, ret_fd);
                        if (r < 0)
                                return r;
                        *ret_dest_props = TAKE_PTR(dest_props);
                        s->stats.dest_hits++;
                        return 0;
                }
        s->stats.dest_misses++;
        return -ENOENT;
}

/* scache_store_n_sessions - sessions in the store */
size_t scache_store_n_sessions(const ScacheStore *s)
{
        return s->n_sessions;
}

/* scache_store_n_endpoints - endpoints with at least one session */
size_t scache_store_n_endpoints(const ScacheStore *s)
{
        return s->endpoints.n_entries;
}

/* scache_store_n_destinations - destinations with at least one binding */
size_t scache_store_n_destinations(const ScacheStore *s)
{
        return s->destinations.n_entries;
}

/* scache_store_stats - the counters and peaks of the current interval */
void scache_store_stats(const ScacheStore *s, ScacheStats *ret)
{
        *ret = s->stats;
}

/* scache_store_stats_reset - zero counters and peaks, and start the interval at REALTIME_NOW */
void scache_store_stats_reset(ScacheStore *s, int64_t realtime_now)
{
        s->stats = (ScacheStats){
                .start = realtime_now,
        };
}

/* success_percent - Postfix's integer hits * 100 / (hits + misses); 0 when both are 0 */
static unsigned success_percent(uint64_t hits, uint64_t misses)
{
        return hits + misses > 0 ? (unsigned) (hits * 100 / (hits + misses)) : 0;
}

/* scache_stats_format - Postfix scache_status_dump()'s lines, each when its figures are non-zero */
size_t scache_stats_format(const ScacheStats *st, char lines[4][SCACHE_STATS_LINE_MAX])
{
        size_t n = 0;

        if (st->dest_hits || st->dest_misses || st->endp_hits || st->endp_misses || st->max_dests ||
            st->max_endps || st->max_sessions) {
                time_t start = (time_t) st->start;
                char buf[64]; /* ctime_r() needs 26; more in case of a year beyond 9999 */
                const char *when = "???";

                if (ctime_r(&start, buf) && strlen(buf) >= 4 + 15)
                        when = buf + 4;
                snprintf(lines[n++], SCACHE_STATS_LINE_MAX, "statistics: start interval %.15s", when);
        }
        if (st->dest_hits || st->dest_misses)
                snprintf(lines[n++], SCACHE_STATS_LINE_MAX,
                         "statistics: domain lookup hits=%" PRIu64 " miss=%" PRIu64 " success=%u%%",
                         st->dest_hits, st->dest_misses, success_percent(st->dest_hits, st->dest_misses));
        if (st->endp_hits || st->endp_misses)
                snprintf(lines[n++], SCACHE_STATS_LINE_MAX,
                         "statistics: address lookup hits=%" PRIu64 " miss=%" PRIu64 " success=%u%%",
                         st->endp_hits, st->endp_misses, success_percent(st->endp_hits, st->endp_misses));
        if (st->max_dests || st->max_endps || st->max_sessions)
                snprintf(lines[n++], SCACHE_STATS_LINE_MAX,
                         "statistics: max simultaneous domains=%zu addresses=%zu connection=%zu",
                         st->max_dests, st->max_endps, st->max_sessions);
        return n;
}
