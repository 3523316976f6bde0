/* SPDX-License-Identifier: MIT */
/*
 * varlink-wire.h - varlink framing and message decoding, pure code over bytes
 *
 * A varlink stream is a sequence of JSON objects, each terminated by one NUL byte. Descriptors
 * travel as SCM_RIGHTS with the bytes of the message that refers to them: a sender sends a
 * message that carries descriptors with one sendmsg(), descriptors attached to its first byte.
 * Linux never reads past a descriptor-carrying chunk in one recvmsg(), so the descriptors that
 * arrive with a read belong to the last message that starts within that read's bytes. This
 * module records that binding; it does no I/O at all, so it can be fed one byte at a time,
 * split at any offset, and fuzzed.
 *
 * Limits: VARLINK_MESSAGE_MAX bytes per message (a longer one is -EMSGSIZE, the connection is
 * beyond repair); VARLINK_FDS_MAX descriptors per message (-E2BIG).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* systemd's sd-varlink allows 16 MiB; no tern message comes near (a queue listing is streamed). */
#define VARLINK_MESSAGE_MAX (16U * 1024U * 1024U)
/* One descriptor is all any tern method passes (scache, submit, delivery); a few spare for peers. */
#define VARLINK_FDS_MAX 16U
/* Pending descriptor batches per connection: one per message still being read. */
#define VARLINK_FD_BATCHES_MAX 8U

typedef struct VarlinkFdBatch {
        uint64_t message_start;         /* stream offset of the first byte of the owning message */
        int fds[VARLINK_FDS_MAX];
        size_t n_fds;
} VarlinkFdBatch;

typedef struct VarlinkWire {
        char *buf;
        size_t start;                   /* first unconsumed byte */
        size_t end;                     /* one past the last byte read */
        size_t scanned;                 /* bytes [start, scanned) are known to hold no NUL */
        size_t alloc;
        size_t max_message;
        uint64_t stream_offset;         /* stream offset of buf[0] */
        VarlinkFdBatch batches[VARLINK_FD_BATCHES_MAX];
        size_t n_batches;
} VarlinkWire;

/* One framed message: the JSON text (NUL-terminated, valid until the next wire call) and the
 * descriptors that came with it (owned by the receiver of this struct). */
typedef struct VarlinkFrame {
        const char *data;
        size_t size;
        int fds[VARLINK_FDS_MAX];
        size_t n_fds;
} VarlinkFrame;

void varlink_wire_init(VarlinkWire *w, size_t max_message);
void varlink_wire_done(VarlinkWire *w);          /* frees the buffer, closes pending descriptors */

/* varlink_wire_space - room for at least MIN bytes of input; returns -ENOMEM or -EMSGSIZE */
int varlink_wire_space(VarlinkWire *w, size_t min, char **ret, size_t *ret_size);
/* varlink_wire_commit - N bytes were written into the space; FDS (taken over, even on error) came with them */
int varlink_wire_commit(VarlinkWire *w, size_t n, const int *fds, size_t n_fds);
/* varlink_wire_feed - space + memcpy + commit */
int varlink_wire_feed(VarlinkWire *w, const void *data, size_t n, const int *fds, size_t n_fds);
/*
 * varlink_wire_next - the next complete message: 1 and *ret, 0 when more bytes are needed,
 * -EMSGSIZE when the message being read is over the limit.
 */
int varlink_wire_next(VarlinkWire *w, VarlinkFrame *ret);
/* bytes of an incomplete message buffered */
size_t varlink_wire_pending(const VarlinkWire *w);

/* A decoded message. Borrowed pointers point into root. */
typedef struct VarlinkMessage {
        json_t *root;
        const char *method;             /* calls */
        json_t *parameters;             /* never NULL after a successful parse: {} when absent */
        bool more, oneway, upgrade;     /* calls */
        const char *error;              /* replies */
        bool continues;                 /* replies */
} VarlinkMessage;

/*
 * varlink_message_parse_call / _reply - decode one frame. On failure returns -EBADMSG and, if
 * ret_reason is not NULL, a static text saying what was wrong (for the one log line).
 */
int varlink_message_parse_call(const char *data, size_t size, VarlinkMessage *ret, const char **ret_reason);
int varlink_message_parse_reply(const char *data, size_t size, VarlinkMessage *ret, const char **ret_reason);
void varlink_message_done(VarlinkMessage *m);

/* varlink_message_encode - OBJ as compact JSON with the terminating NUL; size includes the NUL */
int varlink_message_encode(json_t *obj, char **ret, size_t *ret_size);

/* Names, as the varlink spec defines them. */
bool varlink_interface_name_valid(const char *s);
bool varlink_member_name_valid(const char *s);   /* Method or Error: [A-Z][A-Za-z0-9]* */
/* split "io.tern.Flush.Add" into interface length; -EINVAL if not INTERFACE.Member */
int varlink_method_split(const char *method, size_t *ret_interface_len);
