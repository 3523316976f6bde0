/* SPDX-License-Identifier: MIT */
/*
 * list.h - intrusive doubly linked lists with a head and a tail (FIFO order, O(1) unlink)
 *
 * A list is a ListHead-like pair of pointers declared with LIST_HEAD(type, name); an element
 * carries LIST_FIELDS(type, name) for each list it can be on. The same element may be on
 * several lists through differently named fields.
 */
#pragma once

#include <stddef.h>

#define LIST_HEAD(t, name) struct { t *head, *tail; size_t n; } name
#define LIST_FIELDS(t, name) t *name##_prev, *name##_next

#define LIST_APPEND(name, list, item)                                   \
        do {                                                            \
                __typeof__(item) _i = (item);                           \
                _i->name##_next = NULL;                                 \
                _i->name##_prev = (list).tail;                          \
                if ((list).tail)                                        \
                        (list).tail->name##_next = _i;                  \
                else                                                    \
                        (list).head = _i;                               \
                (list).tail = _i;                                       \
                (list).n++;                                             \
        } while (0)

#define LIST_PREPEND(name, list, item)                                  \
        do {                                                            \
                __typeof__(item) _i = (item);                           \
                _i->name##_prev = NULL;                                 \
                _i->name##_next = (list).head;                          \
                if ((list).head)                                        \
                        (list).head->name##_prev = _i;                  \
                else                                                    \
                        (list).tail = _i;                               \
                (list).head = _i;                                       \
                (list).n++;                                             \
        } while (0)

#define LIST_REMOVE(name, list, item)                                   \
        do {                                                            \
                __typeof__(item) _i = (item);                           \
                if (_i->name##_prev)                                    \
                        _i->name##_prev->name##_next = _i->name##_next; \
                else                                                    \
                        (list).head = _i->name##_next;                  \
                if (_i->name##_next)                                    \
                        _i->name##_next->name##_prev = _i->name##_prev; \
                else                                                    \
                        (list).tail = _i->name##_prev;                  \
                _i->name##_prev = _i->name##_next = NULL;               \
                (list).n--;                                             \
        } while (0)

/* LIST_ROTATE_AFTER - make ITEM the tail, so that round robin starts after it next time */
#define LIST_ROTATE_AFTER(name, list, item)                             \
        do {                                                            \
                if ((list).tail != (item)) {                            \
                        LIST_REMOVE(name, list, item);                  \
                        LIST_APPEND(name, list, item);                  \
                }                                                       \
        } while (0)

#define LIST_FOREACH(name, i, list) for ((i) = (list).head; (i); (i) = (i)->name##_next)
/* safe against removal of i */
#define LIST_FOREACH_SAFE(name, i, n, list) \
        for ((i) = (list).head; (i) && ((n) = (i)->name##_next, 1); (i) = (n))
