/* SPDX-License-Identifier: MIT */
/*
 * queue-file.c - Postfix's queue file record format: encoding and decoding, no I/O
 *
 * Records (global/record.c): a type byte, the data length as a base-128 varint (low 7 bits
 * first, 0x80 = another byte follows; at most 5 bytes and 32 bits), the data. The reader is a
 * cursor over a caller's buffer; it never reads outside [buf, buf + size) and reports a record
 * cut short by the end of the buffer as -EBADMSG, so a torn file is never mistaken for a short
 * one.
 *
 * Envelope (queue_envelope_parse): the record order Postfix's cleanup writes and its readers
 * (qmgr_message.c, postcat.c) accept, checked as a state machine:
 *
 *   start     C (size record) must come first
 *   envelope  T S F A O R D / K W V L I > < i o n p, until M; exactly one T and one S
 *   content   N L w p, until X (the content itself is not decoded here)
 *   extracted R D O / A F P r e I L > K o n p, until E
 *   end       nothing after E but bytes already reached through pointer records
 *
 * An O must be followed by its R, D or / (the original recipient of that recipient). The
 * per-recipient DSN attributes (A dsn_orig_rcpt=, A notify_flags=: Postfix's pseudo types o
 * and n) go with the next recipient, not into the message's attribute list; A create_time= sets
 * create_time (arrival seconds when absent) and is not listed either. With a size record of 3
 * or more fields, its data offset must be where the content starts and its content size must
 * reach exactly the X record: a C record that was never rewritten is a torn file.
 *
 * Pointer records ("%15ld", 0 = none) are followed wherever they appear. A queue file that
 * Postfix edited in place (milters) reads each byte once; tern allows reading
 * QUEUE_FILE_VISIT_FACTOR times the file's size before it calls the file a pointer loop, and,
 * like Postfix's rec_goto(), at most REVERSE_JUMP_LIMIT backward jumps.
 *
 * Writing: QueueBuf collects records in memory; content lines longer than QUEUE_FILE_LINE_MAX
 * become L records of that size and a last N.
 *
 * Limits and bugs: record data over QUEUE_FILE_REC_MAX is refused both ways. Strings with a NUL
 * byte in an envelope record are refused (Postfix would cut them short at the NUL). Records
 * that tern reads but has no field for (W, V, L filter, I, >, K, P, r, e, F in the extracted
 * segment) are checked for their place only.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "queue-file.h"

/* Postfix rec_goto(): "No-one is likely to insert 10000 message headers". */
#define REVERSE_JUMP_LIMIT 10000
/* Bytes read per byte of file before a pointer chain counts as a loop (Postfix edits read 1). */
#define QUEUE_FILE_VISIT_FACTOR 2
/* Records tern knows but does not decode; where each may stand. */
#define REC_TYPES_ENVELOPE "TSFAORD/KWVLI><ionp"
#define REC_TYPES_CONTENT "NLwp"
#define REC_TYPES_EXTRACTED "RDO/AFPreIL>Konp"

#define MAIL_ATTR_CREATE_TIME "create_time"
#define MAIL_ATTR_DSN_ORCPT "dsn_orig_rcpt"
#define MAIL_ATTR_DSN_NOTIFY "notify_flags"

/* rec_header - encode TYPE + varint(SIZE) into OUT; returns its length */
size_t rec_header(char type, size_t size, uint8_t out[static QUEUE_FILE_REC_HDR_MAX])
{
        size_t n = 0;
        uint64_t rest = size;

        assert(rest <= UINT32_MAX);
        out[n++] = (uint8_t)type;
        do {
                uint8_t b = rest & 0x7f;

                rest >>= 7;
                if (rest)
                        b |= 0x80;
                out[n++] = b;
        } while (rest);
        return n;
}

void rec_reader_init(RecReader *r, const void *buf, size_t size, uint64_t base)
{
        *r = (RecReader){.buf = buf, .size = size, .base = base};
}

/* rec_next - the record at the cursor: 1, 0 at the very end, -EBADMSG if torn or garbled */
int rec_next(RecReader *r, QueueRecord *ret)
{
        size_t pos = r->pos, start = r->pos;
        uint64_t len = 0;

        if (pos > r->size)
                return -EBADMSG;
        if (pos == r->size)
                return 0;
        pos++; /* type */
        for (unsigned shift = 0;; shift += 7) {
                uint8_t b;

                if (shift > 28)
                        return -EBADMSG; /* a sixth length byte */
                if (pos >= r->size)
                        return -EBADMSG; /* header cut short */
                b = r->buf[pos++];
                len |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80))
                        break;
        }
        if (len > UINT32_MAX || len > QUEUE_FILE_REC_MAX)
                return -EBADMSG;
        if (len > r->size - pos)
                return -EBADMSG; /* data cut short */
        *ret = (QueueRecord){
                .type = (char)r->buf[start],
                .data = r->buf + pos,
                .size = (size_t)len,
                .offset = r->base + start,
        };
        r->pos = pos + (size_t)len;
        return 1;
}

/* queue_size_record_format - the fixed-width C record data */
void queue_size_record_format(const QueueSizeRecord *s, char out[static QUEUE_FILE_SIZE_REC_LEN])
{
        char buf[QUEUE_FILE_SIZE_REC_LEN + 6 * 6 + 1];
        int n;

        n = snprintf(buf, sizeof(buf),
                     "%15" PRId64 " %15" PRId64 " %15" PRId64 " %15" PRId64 " %15" PRId64 " %15" PRId64,
                     s->content_size, s->data_offset, s->rcpt_count, s->qmgr_flags, s->content_length,
                     s->sendopts);
        /* Wider values would move the content; callers keep them within 15 digits. */
        assert(n == QUEUE_FILE_SIZE_REC_LEN);
        memcpy(out, buf, QUEUE_FILE_SIZE_REC_LEN);
}

/* parse_long - a "%ld" field at *P (leading blanks, optional '-', digits); -EBADMSG if none */
static int parse_long(const uint8_t **p, const uint8_t *end, int64_t *ret)
{
        const uint8_t *s = *p;
        bool neg = false;
        uint64_t v = 0;
        size_t digits = 0;

        while (s < end && (*s == ' ' || *s == '\t'))
                s++;
        if (s < end && *s == '-') {
                neg = true;
                s++;
        }
        for (; s < end && *s >= '0' && *s <= '9'; s++, digits++) {
                if (v > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
                        return -EBADMSG;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        if (digits == 0)
                return -EBADMSG;
        *ret = neg ? -(int64_t)v : (int64_t)v;
        *p = s;
        return 0;
}

/* parse_longs - up to MAX "%ld" fields filling the whole of DATA; returns how many */
static int parse_longs(const uint8_t *data, size_t size, int64_t *fields, int max)
{
        const uint8_t *p = data, *end = data + size;
        int n = 0;

        while (n < max) {
                const uint8_t *q = p;

                while (q < end && (*q == ' ' || *q == '\t'))
                        q++;
                if (q == end)
                        break;
                if (n > 0 && q == p)
                        return -EBADMSG; /* "12-3": no blank between fields */
                if (parse_long(&p, end, &fields[n]) < 0)
                        return -EBADMSG;
                n++;
        }
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        if (p != end)
                return -EBADMSG;
        return n;
}

/* queue_size_record_parse - the C record: 6 fields (Postfix 3), 3 to 5 (older), or 1 (< 1.0) */
int queue_size_record_parse(const uint8_t *data, size_t size, QueueSizeRecord *ret)
{
        int64_t f[6] = {};
        int n;

        n = parse_longs(data, size, f, 6);
        if (n < 0 || n == 0 || n == 2)
                return -EBADMSG;
        *ret = (QueueSizeRecord){
                .content_size = f[0],
                .data_offset = f[1],
                .rcpt_count = f[2],
                .qmgr_flags = f[3],
                .content_length = f[4],
                .sendopts = f[5],
        };
        return 0;
}

/* ---- envelope ------------------------------------------------------------------------------ */

enum {
        STATE_START,
        STATE_ENVELOPE,
        STATE_CONTENT,
        STATE_EXTRACTED,
        STATE_END,
};

typedef struct EnvelopeParser {
        QueueEnvelope *e;
        size_t alloc_attrs, alloc_rcpts;
        char *orig_rcpt; /* pending O record */
        char *dsn_orcpt; /* pending A dsn_orig_rcpt= */
        int dsn_notify;  /* pending A notify_flags= */
        bool have_time, have_create_time, size_fields_ok;
} EnvelopeParser;

/* record_strdup - the record's data as a C string; NULL with -EBADMSG if it holds a NUL */
static int record_strdup(const QueueRecord *rec, char **ret)
{
        char *s;

        if (memchr(rec->data, '\0', rec->size))
                return -EBADMSG;
        s = malloc(rec->size + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, rec->data, rec->size);
        s[rec->size] = '\0';
        *ret = s;
        return 0;
}

/* envelope_add_rcpt - append the recipient of REC (R, D or /) with the pending O and DSN data */
static int envelope_add_rcpt(EnvelopeParser *p, const QueueRecord *rec, const char **reason)
{
        QueueEnvelope *e = p->e;
        _cleanup_(freep) char *address = NULL;
        QueueRecipient *rc;
        int r;

        r = record_strdup(rec, &address);
        if (r < 0) {
                *reason = "NUL byte in a recipient record";
                return r;
        }
        if (e->n_rcpts == p->alloc_rcpts) {
                size_t n = p->alloc_rcpts ? p->alloc_rcpts * 2 : 8;
                QueueRecipient *a = reallocarray(e->rcpts, n, sizeof(*a));

                if (!a)
                        return -ENOMEM;
                e->rcpts = a;
                p->alloc_rcpts = n;
        }
        rc = &e->rcpts[e->n_rcpts++];
        *rc = (QueueRecipient){
                .address = TAKE_PTR(address),
                .orig_address = p->orig_rcpt ? TAKE_PTR(p->orig_rcpt) : strdup(""),
                .dsn_orig_rcpt = p->dsn_orcpt ? TAKE_PTR(p->dsn_orcpt) : strdup(""),
                .dsn_notify = p->dsn_notify,
                .offset = rec->offset,
                .done = rec->type != REC_TYPE_RCPT,
        };
        p->dsn_notify = 0;
        if (!rc->orig_address || !rc->dsn_orig_rcpt)
                return -ENOMEM;
        return 0;
}

/* envelope_add_attr - an A record: create_time, per-recipient DSN data, or a message attribute */
static int envelope_add_attr(EnvelopeParser *p, const QueueRecord *rec, const char **reason)
{
        QueueEnvelope *e = p->e;
        _cleanup_(freep) char *text = NULL, *name = NULL, *value = NULL;
        const char *eq;
        int r;

        r = record_strdup(rec, &text);
        if (r < 0) {
                *reason = "NUL byte in an attribute record";
                return r;
        }
        eq = strchr(text, '=');
        if (!eq || eq == text || strcspn(text, " \t") < (size_t)(eq - text)) {
                *reason = "malformed attribute record (want name=value)";
                return -EBADMSG;
        }
        name = strndup(text, (size_t)(eq - text));
        value = strdup(eq + 1);
        if (!name || !value)
                return -ENOMEM;

        if (streq(name, MAIL_ATTR_CREATE_TIME)) {
                const uint8_t *v = (const uint8_t *)value;
                int64_t t;

                if (parse_longs(v, strlen(value), &t, 1) != 1) {
                        *reason = "malformed create_time attribute";
                        return -EBADMSG;
                }
                e->create_time = t;
                p->have_create_time = true;
                return 0;
        }
        if (streq(name, MAIL_ATTR_DSN_ORCPT)) {
                free(p->dsn_orcpt);
                p->dsn_orcpt = TAKE_PTR(value);
                return 0;
        }
        if (streq(name, MAIL_ATTR_DSN_NOTIFY)) {
                int64_t v;

                if (parse_longs((const uint8_t *)value, strlen(value), &v, 1) != 1 || v < 0 || v > INT_MAX) {
                        *reason = "malformed notify_flags attribute";
                        return -EBADMSG;
                }
                p->dsn_notify = (int)v;
                return 0;
        }

        if (e->n_attrs == p->alloc_attrs) {
                size_t n = p->alloc_attrs ? p->alloc_attrs * 2 : 8;
                char **names = reallocarray(e->attr_names, n, sizeof(char *));

                if (!names)
                        return -ENOMEM;
                e->attr_names = names;
                char **values = reallocarray(e->attr_values, n, sizeof(char *));
                if (!values)
                        return -ENOMEM;
                e->attr_values = values;
                p->alloc_attrs = n;
        }
        e->attr_names[e->n_attrs] = TAKE_PTR(name);
        e->attr_values[e->n_attrs] = TAKE_PTR(value);
        e->n_attrs++;
        return 0;
}

/* parse_pointer - a p record's target; 0 = none; -EBADMSG if malformed */
static int parse_pointer(const QueueRecord *rec, int64_t *ret)
{
        int64_t v;

        if (parse_longs(rec->data, rec->size, &v, 1) != 1 || v < 0)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* envelope_record - one record (not a pointer) in the current state; updates the state */
static int envelope_record(EnvelopeParser *p, int *state, const QueueRecord *rec, const char **reason)
{
        QueueEnvelope *e = p->e;
        char t = rec->type;
        int r;

        if (p->orig_rcpt && t != REC_TYPE_RCPT && t != REC_TYPE_DONE && t != REC_TYPE_DRCP) {
                *reason = "original recipient record (O) not followed by a recipient";
                return -EBADMSG;
        }

        switch (*state) {
        case STATE_START:
                if (t != REC_TYPE_SIZE) {
                        *reason = "first record is not the size record (C)";
                        return -EBADMSG;
                }
                if (queue_size_record_parse(rec->data, rec->size, &e->size_rec) < 0) {
                        *reason = "malformed size record (C)";
                        return -EBADMSG;
                }
                /* 3 or more fields: data offset and content size are there to be checked */
                p->size_fields_ok = parse_longs(rec->data, rec->size, (int64_t[6]){}, 6) >= 3;
                if (p->size_fields_ok && (e->size_rec.data_offset <= 0 || e->size_rec.content_size <= 0)) {
                        *reason = "size record (C) with no data offset or content size";
                        return -EBADMSG;
                }
                *state = STATE_ENVELOPE;
                return 0;

        case STATE_ENVELOPE:
                if (t == REC_TYPE_MESG) {
                        if (!p->have_time) {
                                *reason = "no arrival time record (T) before the content";
                                return -EBADMSG;
                        }
                        if (!e->sender) {
                                *reason = "no sender record (S) before the content";
                                return -EBADMSG;
                        }
                        if (rec->size != 0) {
                                *reason = "content record (M) with data";
                                return -EBADMSG;
                        }
                        e->content_offset =
                                rec->offset + rec_header(t, 0, (uint8_t[QUEUE_FILE_REC_HDR_MAX]){});
                        *state = STATE_CONTENT;
                        return 0;
                }
                if (t == REC_TYPE_SIZE) {
                        *reason = "second size record (C)";
                        return -EBADMSG;
                }
                if (!strchr(REC_TYPES_ENVELOPE, t) || t == '\0') {
                        *reason = "record type out of place in the envelope";
                        return -EBADMSG;
                }
                break;

        case STATE_CONTENT:
                if (t == REC_TYPE_XTRA) {
                        e->xtra_offset = rec->offset;
                        *state = STATE_EXTRACTED;
                        return 0;
                }
                if (!strchr(REC_TYPES_CONTENT, t) || t == '\0') {
                        *reason = "record type out of place in the message content";
                        return -EBADMSG;
                }
                return 0;

        case STATE_EXTRACTED:
                if (t == REC_TYPE_END) {
                        if (p->dsn_orcpt || p->dsn_notify) {
                                *reason = "recipient DSN attribute not followed by a recipient";
                                return -EBADMSG;
                        }
                        e->complete = true;
                        *state = STATE_END;
                        return 0;
                }
                if (!strchr(REC_TYPES_EXTRACTED, t) || t == '\0') {
                        *reason = "record type out of place in the extracted segment";
                        return -EBADMSG;
                }
                break;

        default:
                *reason = "record after the end record (E)";
                return -EBADMSG;
        }

        /* Envelope and extracted segment records. */
        switch (t) {
        case REC_TYPE_TIME: {
                int64_t f[2] = {};
                int n;

                if (p->have_time) {
                        *reason = "second arrival time record (T)";
                        return -EBADMSG;
                }
                n = parse_longs(rec->data, rec->size, f, 2);
                if (n < 1 || f[0] < 0 || f[1] < 0 || f[1] >= 1000000) {
                        *reason = "malformed arrival time record (T)";
                        return -EBADMSG;
                }
                e->arrival_sec = f[0];
                e->arrival_usec = f[1];
                p->have_time = true;
                return 0;
        }
        case REC_TYPE_FROM:
                if (e->sender) {
                        *reason = "second sender record (S)";
                        return -EBADMSG;
                }
                r = record_strdup(rec, &e->sender);
                if (r < 0)
                        *reason = "NUL byte in the sender record (S)";
                return r;
        case REC_TYPE_FULL:
                if (e->full_name)
                        return 0; /* the first one counts */
                r = record_strdup(rec, &e->full_name);
                if (r < 0)
                        *reason = "NUL byte in the full name record (F)";
                return r;
        case REC_TYPE_ATTR:
                return envelope_add_attr(p, rec, reason);
        case REC_TYPE_ORCP:
                r = record_strdup(rec, &p->orig_rcpt);
                if (r < 0)
                        *reason = "NUL byte in an original recipient record (O)";
                return r;
        case REC_TYPE_RCPT:
        case REC_TYPE_DONE:
        case REC_TYPE_DRCP:
                return envelope_add_rcpt(p, rec, reason);
        case REC_TYPE_WARN: {
                int64_t f[1] = {};
                const uint8_t *d = rec->data;
                size_t sz = rec->size;
                bool negative;

                /* the first one counts; the data must keep its width to be rewritten in place;
                 * -1 (sent) is the one negative value written */
                if (e->warn_offset != 0)
                        return 0;
                while (sz > 0 && *d == ' ')
                        d++, sz--;
                negative = sz > 0 && *d == '-';
                if (negative)
                        d++, sz--;
                if (rec->size != QUEUE_FILE_WARN_REC_LEN || parse_longs(d, sz, f, 1) != 1) {
                        *reason = "malformed warning time record (W)";
                        return -EBADMSG;
                }
                e->warn_time = negative ? -f[0] : f[0];
                e->warn_offset = rec->offset;
                return 0;
        }
        default:
                return 0; /* V L I > K P r e < i o n: known, no field */
        }
}

/* queue_envelope_parse - decode a whole queue file; -EBADMSG with a static *ret_reason */
int queue_envelope_parse(const void *buf, size_t size, QueueEnvelope *ret, const char **ret_reason)
{
        QueueEnvelope e = {};
        EnvelopeParser p = {.e = &e};
        const char *reason = NULL;
        RecReader rd;
        uint64_t visited = 0, high = 0, last_jump = 0;
        unsigned reverse_jumps = 0;
        int state = STATE_START, r;

        rec_reader_init(&rd, buf, size, 0);
        for (;;) {
                QueueRecord rec;

                r = rec_next(&rd, &rec);
                if (r < 0) {
                        reason = "record cut short or garbled (torn file?)";
                        goto fail;
                }
                if (r == 0) {
                        reason = state == STATE_START      ? "empty file"
                                 : state == STATE_ENVELOPE ? "no content record (M)"
                                 : state == STATE_CONTENT  ? "no extracted segment record (X)"
                                                           : "no end record (E)";
                        r = -EBADMSG;
                        goto fail;
                }
                visited += rd.pos - (size_t)rec.offset;
                high = MAX(high, (uint64_t)rd.pos);
                if (visited > (uint64_t)size * QUEUE_FILE_VISIT_FACTOR) {
                        reason = "pointer records loop";
                        r = -EBADMSG;
                        goto fail;
                }

                if (rec.type == REC_TYPE_PTR && state != STATE_START) {
                        int64_t target;

                        if (parse_pointer(&rec, &target) < 0) {
                                reason = "malformed pointer record (p)";
                                r = -EBADMSG;
                                goto fail;
                        }
                        if (target == 0)
                                continue;
                        if ((uint64_t)target >= size) {
                                reason = "pointer record (p) beyond the end of the file";
                                r = -EBADMSG;
                                goto fail;
                        }
                        if ((uint64_t)target <= last_jump && ++reverse_jumps > REVERSE_JUMP_LIMIT) {
                                reason = "too many backward pointer records";
                                r = -EBADMSG;
                                goto fail;
                        }
                        last_jump = (uint64_t)target;
                        rd.pos = (size_t)target;
                        continue;
                }

                r = envelope_record(&p, &state, &rec, &reason);
                if (r < 0)
                        goto fail;
                if (state == STATE_END)
                        break;
        }

        /* What follows E must have been read already, through pointers (appended records). */
        if (high < size) {
                reason = "data after the end record (E)";
                r = -EBADMSG;
                goto fail;
        }
        if (p.size_fields_ok &&
            ((uint64_t)e.size_rec.data_offset != e.content_offset ||
             (uint64_t)e.size_rec.data_offset + (uint64_t)e.size_rec.content_size != e.xtra_offset)) {
                reason = "size record (C) does not match the content (not rewritten: torn file?)";
                r = -EBADMSG;
                goto fail;
        }
        if (!p.have_create_time)
                e.create_time = e.arrival_sec;
        free(p.orig_rcpt);
        free(p.dsn_orcpt);
        *ret = e;
        return 0;

fail:
        free(p.orig_rcpt);
        free(p.dsn_orcpt);
        queue_envelope_done(&e);
        if (ret_reason)
                *ret_reason = r == -ENOMEM ? "out of memory" : reason ? reason : "invalid queue file";
        return r;
}

void queue_envelope_done(QueueEnvelope *e)
{
        if (!e)
                return;
        free(e->sender);
        free(e->full_name);
        for (size_t i = 0; i < e->n_attrs; i++) {
                free(e->attr_names[i]);
                free(e->attr_values[i]);
        }
        free(e->attr_names);
        free(e->attr_values);
        for (size_t i = 0; i < e->n_rcpts; i++) {
                free((char *)e->rcpts[i].address);
                free((char *)e->rcpts[i].orig_address);
                free((char *)e->rcpts[i].dsn_orig_rcpt);
        }
        free(e->rcpts);
        *e = (QueueEnvelope){};
}

/* queue_envelope_attr - the value of the first attribute NAME, or NULL */
const char *queue_envelope_attr(const QueueEnvelope *e, const char *name)
{
        for (size_t i = 0; i < e->n_attrs; i++)
                if (streq(e->attr_names[i], name))
                        return e->attr_values[i];
        return NULL;
}

/* ---- content as text ------------------------------------------------------------------------ */

typedef struct TextBuf {
        char *data;
        size_t size, alloc;
} TextBuf;

/* text_append - N bytes of DATA and room for the NUL after them */
static int text_append(TextBuf *t, const void *data, size_t n)
{
        if (t->alloc - t->size <= n) {
                size_t want;
                char *d;

                if (n >= SIZE_MAX / 2 - t->size)
                        return -ENOMEM;
                want = MAX(t->size + n + 1, MAX(t->alloc * 2, (size_t)256));
                d = realloc(t->data, want);
                if (!d)
                        return -ENOMEM;
                t->data = d;
                t->alloc = want;
        }
        if (n > 0)
                memcpy(t->data + t->size, data, n);
        t->size += n;
        t->data[t->size] = '\0';
        return 0;
}

/* queue_content_text - the content records between M and X as text, LF line ends */
int queue_content_text(const void *buf, size_t size, const QueueEnvelope *e, size_t limit, bool headers_only,
                       char **ret, size_t *ret_size, bool *ret_truncated)
{
        _cleanup_(freep) char *freeme = NULL;
        TextBuf t = {};
        RecReader rd;
        uint64_t visited = 0, last_jump = 0;
        unsigned reverse_jumps = 0;
        size_t line_start = 0; /* where the line being built by L records began */
        bool truncated = false;
        int r;

        if (e->content_offset == 0 || e->content_offset > size)
                return -EBADMSG;
        r = text_append(&t, "", 0);
        freeme = t.data;
        if (r < 0)
                return r;
        rec_reader_init(&rd, buf, size, 0);
        rd.pos = (size_t)e->content_offset;
        for (;;) {
                QueueRecord rec;

                r = rec_next(&rd, &rec);
                if (r == 0)
                        r = -EBADMSG; /* no X record */
                if (r < 0)
                        return r;
                visited += rd.pos - (size_t)rec.offset;
                if (visited > (uint64_t)size * QUEUE_FILE_VISIT_FACTOR)
                        return -EBADMSG;

                if (rec.type == REC_TYPE_XTRA)
                        break;
                if (rec.type == REC_TYPE_PAD)
                        continue;
                if (rec.type == REC_TYPE_PTR) {
                        int64_t target;

                        if (parse_pointer(&rec, &target) < 0)
                                return -EBADMSG;
                        if (target == 0)
                                continue;
                        if ((uint64_t)target >= size)
                                return -EBADMSG;
                        if ((uint64_t)target <= last_jump && ++reverse_jumps > REVERSE_JUMP_LIMIT)
                                return -EBADMSG;
                        last_jump = (uint64_t)target;
                        rd.pos = (size_t)target;
                        continue;
                }
                if (rec.type != REC_TYPE_NORM && rec.type != REC_TYPE_CONT)
                        return -EBADMSG;

                /* the empty line between headers and body */
                if (headers_only && rec.type == REC_TYPE_NORM && rec.size == 0 && t.size == line_start)
                        break;
                /* the line (with its "\n" once it ends) must fit in LIMIT */
                if (limit > 0 && t.size + rec.size + (rec.type == REC_TYPE_NORM) > limit) {
                        t.size = line_start;
                        t.data[t.size] = '\0';
                        truncated = true;
                        break;
                }
                r = text_append(&t, rec.data, rec.size);
                if (r >= 0 && rec.type == REC_TYPE_NORM)
                        r = text_append(&t, "\n", 1);
                freeme = t.data;
                if (r < 0)
                        return r;
                if (rec.type == REC_TYPE_NORM)
                        line_start = t.size;
        }

        *ret = TAKE_PTR(freeme);
        *ret_size = t.size;
        if (ret_truncated)
                *ret_truncated = truncated;
        return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

/* queue_buf_reserve - room for N more bytes */
static int queue_buf_reserve(QueueBuf *b, size_t n)
{
        size_t want;
        uint8_t *d;

        if (b->alloc - b->size >= n)
                return 0;
        if (n > SIZE_MAX / 2 - b->size)
                return -ENOMEM;
        want = MAX(b->size + n, MAX(b->alloc * 2, (size_t)4096));
        d = realloc(b->data, want);
        if (!d)
                return -ENOMEM;
        b->data = d;
        b->alloc = want;
        return 0;
}

/* queue_buf_put - append one record; -EMSGSIZE if SIZE is over QUEUE_FILE_REC_MAX */
int queue_buf_put(QueueBuf *b, char type, const void *data, size_t size)
{
        uint8_t hdr[QUEUE_FILE_REC_HDR_MAX];
        size_t n;
        int r;

        if (size > QUEUE_FILE_REC_MAX)
                return -EMSGSIZE;
        n = rec_header(type, size, hdr);
        r = queue_buf_reserve(b, n + size);
        if (r < 0)
                return r;
        memcpy(b->data + b->size, hdr, n);
        if (size > 0)
                memcpy(b->data + b->size + n, data, size);
        b->size += n + size;
        return 0;
}

/* queue_buf_putf - append one record whose data is printf-formatted */
int queue_buf_putf(QueueBuf *b, char type, const char *format, ...)
{
        _cleanup_(freep) char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vasprintf(&s, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return queue_buf_put(b, type, s, (size_t)n);
}

/* queue_buf_put_line - append a content line (no line end): L records of the maximum, then N */
int queue_buf_put_line(QueueBuf *b, const char *line, size_t size)
{
        int r;

        while (size > QUEUE_FILE_LINE_MAX) {
                r = queue_buf_put(b, REC_TYPE_CONT, line, QUEUE_FILE_LINE_MAX);
                if (r < 0)
                        return r;
                line += QUEUE_FILE_LINE_MAX;
                size -= QUEUE_FILE_LINE_MAX;
        }
        return queue_buf_put(b, REC_TYPE_NORM, line, size);
}

void queue_buf_done(QueueBuf *b)
{
        if (!b)
                return;
        free(b->data);
        *b = (QueueBuf){};
}
