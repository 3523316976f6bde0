/* SPDX-License-Identifier: MIT */
/*
 * strmap.c - string-keyed hash table (see strmap.h)
 *
 * Iteration state is a flat index over buckets and the position in the bucket's chain, packed
 * as bucket * STRMAP_CHAIN_SPAN + position; chains are short (load <= 1) and are walked anew.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "macro.h"
#include "strmap.h"

#define STRMAP_MIN_BUCKETS 16U
/* positions per bucket in an iteration state: at load <= 1 with a seeded hash no chain comes
 * near this; iteration would stop early in a chain longer than this */
#define STRMAP_CHAIN_SPAN 4096U

typedef struct Node {
        struct Node *next;
        const char *key;
        void *value;
        uint64_t hash;
} Node;

struct StrMap {
        Node **buckets;
        size_t n_buckets, n;
        uint64_t seed;
};

static uint64_t hash_key(const StrMap *m, const char *key)
{
        uint64_t h = 0xcbf29ce484222325ULL ^ m->seed;

        for (const unsigned char *p = (const unsigned char *) key; *p; p++) {
                h ^= *p;
                h *= 0x100000001b3ULL;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        return h;
}

int strmap_new(StrMap **ret)
{
        StrMap *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        m->buckets = calloc(STRMAP_MIN_BUCKETS, sizeof(Node *));
        if (!m->buckets) {
                free(m);
                return -ENOMEM;
        }
        m->n_buckets = STRMAP_MIN_BUCKETS;
        if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != sizeof(m->seed))
                m->seed = (uint64_t) (uintptr_t) m;
        *ret = m;
        return 0;
}

StrMap *strmap_free(StrMap *m)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_buckets; i++)
                for (Node *n = m->buckets[i], *next; n; n = next) {
                        next = n->next;
                        free(n);
                }
        free(m->buckets);
        free(m);
        return NULL;
}

static Node **find_slot(const StrMap *m, const char *key, uint64_t h)
{
        Node **p = &m->buckets[h & (m->n_buckets - 1)];

        for (; *p; p = &(*p)->next)
                if ((*p)->hash == h && streq((*p)->key, key))
                        break;
        return p;
}

void *strmap_get(const StrMap *m, const char *key)
{
        Node *n;

        if (!m || !key)
                return NULL;
        n = *find_slot(m, key, hash_key(m, key));
        return n ? n->value : NULL;
}

static int grow(StrMap *m)
{
        size_t nb = m->n_buckets * 2;
        Node **b = calloc(nb, sizeof(Node *));

        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buckets; i++)
                for (Node *n = m->buckets[i], *next; n; n = next) {
                        next = n->next;
                        n->next = b[n->hash & (nb - 1)];
                        b[n->hash & (nb - 1)] = n;
                }
        free(m->buckets);
        m->buckets = b;
        m->n_buckets = nb;
        return 0;
}

int strmap_put(StrMap *m, const char *key, void *value)
{
        uint64_t h;
        Node **p, *n;

        if (!m || !key)
                return -EINVAL;
        h = hash_key(m, key);
        p = find_slot(m, key, h);
        if (*p)
                return -EEXIST;
        if (m->n >= m->n_buckets && grow(m) >= 0)
                p = find_slot(m, key, h);       /* a failed grow only makes chains longer */
        n = malloc(sizeof(*n));
        if (!n)
                return -ENOMEM;
        *n = (Node) { .key = key, .value = value, .hash = h };
        *p = n;
        m->n++;
        return 0;
}

void *strmap_remove(StrMap *m, const char *key)
{
        Node **p, *n;
        void *v;

        if (!m || !key)
                return NULL;
        p = find_slot(m, key, hash_key(m, key));
        n = *p;
        if (!n)
                return NULL;
        *p = n->next;
        v = n->value;
        free(n);
        m->n--;
        return v;
}

size_t strmap_size(const StrMap *m)
{
        return m ? m->n : 0;
}

bool strmap_next(const StrMap *m, size_t *state, const char **ret_key, void **ret_value)
{
        if (!m)
                return false;
        for (size_t b = *state / STRMAP_CHAIN_SPAN, pos = *state % STRMAP_CHAIN_SPAN; b < m->n_buckets;
             b++, pos = 0) {
                size_t i = 0;
                for (Node *n = m->buckets[b]; n; n = n->next, i++)
                        if (i == pos) {
                                *state = b * STRMAP_CHAIN_SPAN + pos + 1;
                                if (ret_key)
                                        *ret_key = n->key;
                                if (ret_value)
                                        *ret_value = n->value;
                                return true;
                        }
        }
        *state = m->n_buckets * STRMAP_CHAIN_SPAN;
        return false;
}
