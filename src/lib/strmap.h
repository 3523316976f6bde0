/* SPDX-License-Identifier: MIT */
/*
 * strmap.h - a string-keyed hash table of pointers (chained, power-of-two buckets, grows at
 * load 1). Keys are borrowed: they must live as long as their entry (usually a field of the
 * value). The hash is FNV-1a with a per-table random seed, so that names chosen by a remote
 * peer (destinations, queue IDs) cannot be made to collide on purpose.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct StrMap StrMap;

int strmap_new(StrMap **ret);
StrMap *strmap_free(StrMap *m);         /* the values are the caller's */
void *strmap_get(const StrMap *m, const char *key);
/* strmap_put - -EEXIST if KEY is there, -ENOMEM */
int strmap_put(StrMap *m, const char *key, void *value);
void *strmap_remove(StrMap *m, const char *key);
size_t strmap_size(const StrMap *m);
/* iteration: *state starts at 0; returns false at the end; no changes while iterating */
bool strmap_next(const StrMap *m, size_t *state, const char **ret_key, void **ret_value);
