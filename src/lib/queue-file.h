/* SPDX-License-Identifier: MIT */
/*
 * queue-file.h - Postfix's queue file record format: encoding and decoding, no I/O
 *
 * A record is one type byte, its length as a base-128 varint (low 7 bits first, 0x80 = more),
 * then that many data bytes (global/record.c rec_put/rec_get). A queue file as Postfix's cleanup
 * writes it for ordinary mail, and as tern writes it, is
 *
 *   C  size record, fixed width "%15ld %15ld %15ld %15ld %15ld %15ld": content segment size
 *      (bytes from data_offset to the X record), data_offset (first content record, just after
 *      M), recipient count, qmgr flags, content length, sendopts; rewritten in place at the end
 *   T  arrival "%ld %ld" (seconds, microseconds)
 *   A  create_time=SECONDS
 *   F  full name (optional)
 *   S  sender ("" = null sender)
 *   A  name=value attributes: log_client_name, log_client_address, log_client_port,
 *      log_helo_name, log_protocol_name, log_message_origin, rewrite_context, ...
 *   O  original recipient (optional) then R recipient, per recipient; D = a delivered
 *      recipient: the R type byte overwritten in place
 *   M  start of content (empty)
 *   N  / L  content lines: N a whole line (without its line end), L a piece continued by
 *      the next record (lines longer than QUEUE_FILE_LINE_MAX are cut into L...N)
 *   X  end of content, start of the extracted segment (empty here)
 *   E  end (required)
 *
 * Readers also accept what Postfix writes and tern need not: p pointer records (followed), W
 * warn time, / cancelled and K killed records, V, I, L (content filter), > redirect, and the
 * pseudo-records of the extracted segment. See man/tern-queue.5.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
        REC_TYPE_SIZE = 'C',
        REC_TYPE_TIME = 'T',
        REC_TYPE_ATTR = 'A',
        REC_TYPE_FULL = 'F',
        REC_TYPE_FROM = 'S',
        REC_TYPE_ORCP = 'O',
        REC_TYPE_RCPT = 'R',
        REC_TYPE_DONE = 'D',
        REC_TYPE_DRCP = '/',
        REC_TYPE_KILL = 'K',
        REC_TYPE_WARN = 'W',
        REC_TYPE_PTR = 'p',
        REC_TYPE_MESG = 'M',
        REC_TYPE_NORM = 'N',
        REC_TYPE_CONT = 'L',
        REC_TYPE_PAD = 'w',
        REC_TYPE_XTRA = 'X',
        REC_TYPE_END = 'E',
};

/* Postfix's line_length_limit: content lines are cut into L records of at most this much. */
#define QUEUE_FILE_LINE_MAX 2048
/* The C record's fixed width: six "%15ld" fields and five blanks. */
#define QUEUE_FILE_SIZE_REC_LEN (6 * 15 + 5)
/* The W record's fixed width ("%15ld": the time of the delay warning, rewritten in place with
 * -1 once it is sent, so that there is one warning at most) */
#define QUEUE_FILE_WARN_REC_LEN 15

/* A record's header: type byte and at most 5 varint bytes (lengths fit 32 bits). */
#define QUEUE_FILE_REC_HDR_MAX 6
/* Largest record data tern accepts when reading (Postfix's default is far below). */
#define QUEUE_FILE_REC_MAX (1U << 20)

typedef struct QueueRecord {
        char type;
        const uint8_t *data;            /* points into the buffer given to the reader */
        size_t size;
        uint64_t offset;                /* file offset of the type byte (for in-place marking) */
} QueueRecord;

/* rec_header - encode TYPE + varint(SIZE) into OUT; returns its length */
size_t rec_header(char type, size_t size, uint8_t out[static QUEUE_FILE_REC_HDR_MAX]);

/*
 * A reader over a byte buffer that holds the file from offset BASE on. rec_next: 1 and *ret,
 * 0 at the end of the buffer exactly, -EBADMSG for a garbled record (truncated header or data,
 * varint over 32 bits, data over QUEUE_FILE_REC_MAX). Pure: it can be fed a whole file or a part.
 */
typedef struct RecReader {
        const uint8_t *buf;
        size_t size;
        size_t pos;
        uint64_t base;
} RecReader;

void rec_reader_init(RecReader *r, const void *buf, size_t size, uint64_t base);
int rec_next(RecReader *r, QueueRecord *ret);

/* The C record */
typedef struct QueueSizeRecord {
        int64_t content_size, data_offset, rcpt_count, qmgr_flags, content_length, sendopts;
} QueueSizeRecord;

/* format into exactly QUEUE_FILE_SIZE_REC_LEN bytes (no NUL) */
void queue_size_record_format(const QueueSizeRecord *s, char out[static QUEUE_FILE_SIZE_REC_LEN]);
/* parse; Postfix < 1.0's single field is accepted (the rest 0); -EBADMSG otherwise */
int queue_size_record_parse(const uint8_t *data, size_t size, QueueSizeRecord *ret);

/*
 * The envelope, decoded from a whole queue file (the records up to M, then the recipients and
 * attributes of the extracted segment after X). Strings are copies owned by the envelope and
 * freed by queue_envelope_done(); the buffer may go away after the parse.
 */
typedef struct QueueRecipient {
        const char *address;            /* NUL-terminated copy owned by the envelope */
        const char *orig_address;       /* "" if none */
        uint64_t offset;                /* offset of the R (or D) record's type byte */
        bool done;
        /* Added with queue-file.c: the per-recipient DSN attributes before the O/R records
         * (A dsn_orig_rcpt=, A notify_flags=; Postfix's pseudo types o and n). */
        const char *dsn_orig_rcpt;      /* "" if none; owned by the envelope */
        int dsn_notify;                 /* DSN_NOTIFY_* bits, 0 if none */
} QueueRecipient;

typedef struct QueueEnvelope {
        QueueSizeRecord size_rec;
        int64_t arrival_sec, arrival_usec;
        int64_t create_time;
        char *sender;                   /* "" for the null sender */
        char *full_name;                /* NULL if none */
        char **attr_names, **attr_values;       /* name=value attributes, in file order */
        size_t n_attrs;
        QueueRecipient *rcpts;
        size_t n_rcpts;
        uint64_t content_offset;        /* offset of the first content record (just after M) */
        uint64_t xtra_offset;           /* offset of the X record */
        int64_t warn_time;              /* W: when the delay warning is due; <= 0 none or sent */
        uint64_t warn_offset;           /* offset of the W record's type byte, 0: none */
        bool complete;                  /* E seen */
} QueueEnvelope;

/*
 * queue_envelope_parse - decode a whole queue file held in BUF (SIZE bytes); -EBADMSG with
 * *ret_reason (static text) for anything a queue file must not be: no C first, a missing S,
 * records out of place, a missing M, X or E, garbage after E. Pointer records are followed.
 */
int queue_envelope_parse(const void *buf, size_t size, QueueEnvelope *ret, const char **ret_reason);
void queue_envelope_done(QueueEnvelope *e);
const char *queue_envelope_attr(const QueueEnvelope *e, const char *name);

/*
 * queue_content_text - the message content of the whole queue file BUF (SIZE bytes, E its
 * parsed envelope) as text: each N record ends a line with "\n", L records continue it, w
 * padding is skipped and p pointers are followed, up to the X record. With LIMIT (0: none) the
 * text stops before the first line that would take it over LIMIT bytes, and *ret_truncated is
 * true; with HEADERS_ONLY it stops at the first empty line (not included; not a truncation).
 * *ret is malloc'ed and NUL-terminated, *ret_size excludes the NUL. -EBADMSG for content records
 * that are garbled or out of place, or a pointer loop; -ENOMEM. Pure.
 */
int queue_content_text(const void *buf, size_t size, const QueueEnvelope *e, size_t limit, bool headers_only,
                       char **ret, size_t *ret_size, bool *ret_truncated);

/*
 * Writing: records go into a growing memory buffer (QueueBuf); the caller writes it out. The
 * content is appended line by line (queue_buf_put_line cuts long lines into L records).
 */
typedef struct QueueBuf {
        uint8_t *data;
        size_t size, alloc;
} QueueBuf;

int queue_buf_put(QueueBuf *b, char type, const void *data, size_t size);
int queue_buf_putf(QueueBuf *b, char type, const char *format, ...) __attribute__((format(printf, 3, 4)));
int queue_buf_put_line(QueueBuf *b, const char *line, size_t size);
void queue_buf_done(QueueBuf *b);
