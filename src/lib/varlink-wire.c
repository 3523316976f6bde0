/* SPDX-License-Identifier: MIT */
/*
 * varlink-wire.c - varlink framing (NUL-terminated JSON) and message decoding, no I/O
 *
 * Framing: bytes are appended at the end of one buffer; varlink_wire_next() finds the next NUL
 * (remembering how far it already looked, so a message trickling in one byte at a time is
 * scanned once) and hands out the text before it. The buffer is compacted lazily.
 *
 * Descriptors: see varlink-wire.h for why the descriptors of a read belong to the last message
 * starting in it. A batch is stored with that message's stream offset and handed out with the
 * message. A batch whose message never completes is closed by varlink_wire_done().
 *
 * Decoding: jansson parses the text (it rejects invalid UTF-8 and NUL inside the text; we also
 * reject duplicate keys); the varlink envelope fields are checked for type here, so callers
 * only see well-formed calls and replies. Unknown envelope keys are ignored, as the varlink
 * spec asks, for forward compatibility.
 */
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "varlink-wire.h"

/* Growth step for the input buffer; also the most one read asks for. */
#define VARLINK_WIRE_CHUNK (64U * 1024U)

void varlink_wire_init(VarlinkWire *w, size_t max_message)
{
        *w = (VarlinkWire){ .max_message = max_message ? max_message : VARLINK_MESSAGE_MAX };
}

void varlink_wire_done(VarlinkWire *w)
{
        for (size_t i = 0; i < w->n_batches; i++)
                close_many(w->batches[i].fds, w->batches[i].n_fds);
        free(w->buf);
        *w = (VarlinkWire){ .max_message = w->max_message };
}

size_t varlink_wire_pending(const VarlinkWire *w)
{
        return w->end - w->start;
}

/* wire_compact - move the unconsumed bytes to the front of the buffer */
static void wire_compact(VarlinkWire *w)
{
        if (w->start == 0)
                return;
        memmove(w->buf, w->buf + w->start, w->end - w->start);
        w->stream_offset += w->start;
        w->end -= w->start;
        w->scanned -= w->start;
        w->start = 0;
}

int varlink_wire_space(VarlinkWire *w, size_t min, char **ret, size_t *ret_size)
{
        if (min == 0)
                min = 1;
        if (w->alloc - w->end < min)
                wire_compact(w);
        if (w->alloc - w->end < min) {
                size_t want = MAX(w->end + min, MAX(w->alloc * 2, (size_t) VARLINK_WIRE_CHUNK));
                char *b;

                /* Never more than one maximal message plus one read beyond it. */
                if (w->end + min > (size_t) w->max_message + 1 + VARLINK_WIRE_CHUNK)
                        return -EMSGSIZE;
                want = MIN(want, (size_t) w->max_message + 1 + VARLINK_WIRE_CHUNK);
                b = realloc(w->buf, want);
                if (!b)
                        return -ENOMEM;
                w->buf = b;
                w->alloc = want;
        }
        *ret = w->buf + w->end;
        *ret_size = w->alloc - w->end;
        return 0;
}

/* wire_last_message_start - stream offset of the last message that starts in [from, end) */
static uint64_t wire_last_message_start(const VarlinkWire *w, size_t from)
{
        /* A NUL at the very last byte starts a message beyond this range: do not look at it. */
        for (size_t i = w->end - 1; i > from; i--)
                if (w->buf[i - 1] == '\0')
                        return w->stream_offset + i;
        /* No message starts inside the range after `from`: the descriptors belong to the
         * message that is in progress at `from` (which starts exactly there if the sender
         * behaves). Find its start. */
        for (size_t i = from; i > w->start; i--)
                if (w->buf[i - 1] == '\0')
                        return w->stream_offset + i;
        return w->stream_offset + w->start;
}

int varlink_wire_commit(VarlinkWire *w, size_t n, const int *fds, size_t n_fds)
{
        size_t from = w->end;
        VarlinkFdBatch *b = NULL;
        uint64_t owner;

        assert(w->end + n <= w->alloc);
        w->end += n;
        if (n_fds == 0)
                return 0;
        if (n == 0) {
                /* Descriptors without a byte cannot belong to any message. */
                close_many(fds, n_fds);
                return -EBADMSG;
        }

        owner = wire_last_message_start(w, from);
        for (size_t i = 0; i < w->n_batches; i++)
                if (w->batches[i].message_start == owner)
                        b = &w->batches[i];
        if (!b) {
                if (w->n_batches >= VARLINK_FD_BATCHES_MAX) {
                        close_many(fds, n_fds);
                        return -E2BIG;
                }
                b = &w->batches[w->n_batches++];
                *b = (VarlinkFdBatch){ .message_start = owner };
        }
        if (b->n_fds + n_fds > VARLINK_FDS_MAX) {
                close_many(fds, n_fds);
                return -E2BIG;
        }
        memcpy(b->fds + b->n_fds, fds, n_fds * sizeof(int));
        b->n_fds += n_fds;
        return 0;
}

int varlink_wire_feed(VarlinkWire *w, const void *data, size_t n, const int *fds, size_t n_fds)
{
        char *p;
        size_t size;
        int r;

        r = varlink_wire_space(w, n, &p, &size);
        if (r < 0) {
                close_many(fds, n_fds);
                return r;
        }
        if (n > 0)
                memcpy(p, data, n);
        return varlink_wire_commit(w, n, fds, n_fds);
}

int varlink_wire_next(VarlinkWire *w, VarlinkFrame *ret)
{
        const char *nul;
        uint64_t message_start;
        size_t k = 0;

        /* Nothing new to look at (also: no buffer yet, and memchr(NULL, ...) is undefined). */
        nul = w->end > w->scanned ? memchr(w->buf + w->scanned, '\0', w->end - w->scanned) : NULL;
        if (!nul) {
                w->scanned = w->end;
                if (w->end - w->start > w->max_message)
                        return -EMSGSIZE;
                return 0;
        }
        if ((size_t) (nul - (w->buf + w->start)) > w->max_message)
                return -EMSGSIZE;

        *ret = (VarlinkFrame){
                .data = w->buf + w->start,
                .size = (size_t) (nul - (w->buf + w->start)),
        };

        /* Hand out this message's descriptors; drop batches for messages already gone. */
        message_start = w->stream_offset + w->start;
        for (size_t i = 0; i < w->n_batches; i++) {
                VarlinkFdBatch *b = &w->batches[i];

                if (b->message_start == message_start) {
                        memcpy(ret->fds, b->fds, b->n_fds * sizeof(int));
                        ret->n_fds = b->n_fds;
                } else if (b->message_start > message_start) {
                        w->batches[k++] = *b;
                        continue;
                } else
                        close_many(b->fds, b->n_fds);
        }
        w->n_batches = k;

        w->start = (size_t) (nul - w->buf) + 1;
        w->scanned = w->start;
        if (w->start == w->end) {
                /* Cheap compaction: nothing is buffered. */
                w->stream_offset += w->start;
                w->start = w->end = w->scanned = 0;
        }
        return 1;
}

/* name_component_valid - [A-Za-z0-9] with inner '-' runs, first char a letter when FIRST */
static bool name_component_valid(const char *s, size_t n, bool first)
{
        if (n == 0 || s[0] == '-' || s[n - 1] == '-')
                return false;
        if (first && !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-'))
                        return false;
        }
        return true;
}

/* varlink_interface_name_valid - reverse-domain name of at least two components */
bool varlink_interface_name_valid(const char *s)
{
        size_t components = 0;
        const char *p = s;

        if (!s || strlen(s) > 255)
                return false;
        for (;;) {
                const char *dot = strchr(p, '.');
                size_t n = dot ? (size_t) (dot - p) : strlen(p);

                if (!name_component_valid(p, n, components == 0))
                        return false;
                components++;
                if (!dot)
                        break;
                p = dot + 1;
        }
        return components >= 2;
}

bool varlink_member_name_valid(const char *s)
{
        if (!s || !(s[0] >= 'A' && s[0] <= 'Z') || strlen(s) > 255)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
                        return false;
        return true;
}

int varlink_method_split(const char *method, size_t *ret_interface_len)
{
        const char *dot = method ? strrchr(method, '.') : NULL;
        char iface[256];
        size_t n;

        if (!dot)
                return -EINVAL;
        n = (size_t) (dot - method);
        if (n == 0 || n >= sizeof(iface) || !varlink_member_name_valid(dot + 1))
                return -EINVAL;
        memcpy(iface, method, n);
        iface[n] = '\0';
        if (!varlink_interface_name_valid(iface))
                return -EINVAL;
        *ret_interface_len = n;
        return 0;
}

void varlink_message_done(VarlinkMessage *m)
{
        if (m->root)
                json_decref(m->root);
        *m = (VarlinkMessage){};
}

/* get_bool - optional boolean member; -EBADMSG when present with another type */
static int get_bool(json_t *o, const char *key, bool *ret)
{
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                *ret = false;
                return 0;
        }
        if (!json_is_boolean(v))
                return -EBADMSG;
        *ret = json_is_true(v);
        return 0;
}

/* message_load - text to a JSON object with an object or absent "parameters" */
static int message_load(const char *data, size_t size, VarlinkMessage *m, const char **reason)
{
        json_error_t err;
        json_t *p;

        *m = (VarlinkMessage){};
        m->root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &err);
        if (!m->root) {
                *reason = "message is not valid JSON";
                return -EBADMSG;
        }
        if (!json_is_object(m->root)) {
                *reason = "message is not a JSON object";
                return -EBADMSG;
        }
        p = json_object_get(m->root, "parameters");
        if (!p || json_is_null(p)) {
                p = json_object();
                if (!p || json_object_set_new(m->root, "parameters", p) < 0) {
                        *reason = "out of memory";
                        return -ENOMEM;
                }
        } else if (!json_is_object(p)) {
                *reason = "\"parameters\" is not an object";
                return -EBADMSG;
        }
        m->parameters = p;
        return 0;
}

int varlink_message_parse_call(const char *data, size_t size, VarlinkMessage *ret, const char **ret_reason)
{
        const char *reason = NULL;
        VarlinkMessage m;
        json_t *method;
        size_t ilen;
        int r;

        r = message_load(data, size, &m, &reason);
        if (r < 0)
                goto fail;
        method = json_object_get(m.root, "method");
        if (!json_is_string(method)) {
                reason = "\"method\" is missing or not a string";
                goto bad;
        }
        m.method = json_string_value(method);
        if (strlen(m.method) != json_string_length(method) || varlink_method_split(m.method, &ilen) < 0) {
                reason = "\"method\" is not a valid interface.Method name";
                goto bad;
        }
        if (get_bool(m.root, "more", &m.more) < 0 || get_bool(m.root, "oneway", &m.oneway) < 0 ||
            get_bool(m.root, "upgrade", &m.upgrade) < 0) {
                reason = "\"more\", \"oneway\" or \"upgrade\" is not a boolean";
                goto bad;
        }
        if (m.more + m.oneway + m.upgrade > 1) {
                reason = "\"more\", \"oneway\" and \"upgrade\" exclude each other";
                goto bad;
        }
        *ret = m;
        return 0;
bad:
        r = -EBADMSG;
fail:
        varlink_message_done(&m);
        if (ret_reason)
                *ret_reason = reason;
        return r;
}

int varlink_message_parse_reply(const char *data, size_t size, VarlinkMessage *ret, const char **ret_reason)
{
        const char *reason = NULL;
        VarlinkMessage m;
        json_t *error;
        size_t ilen;
        int r;

        r = message_load(data, size, &m, &reason);
        if (r < 0)
                goto fail;
        error = json_object_get(m.root, "error");
        if (error && !json_is_null(error)) {
                if (!json_is_string(error) ||
                    strlen(json_string_value(error)) != json_string_length(error) ||
                    varlink_method_split(json_string_value(error), &ilen) < 0) {
                        reason = "\"error\" is not a valid interface.Error name";
                        goto bad;
                }
                m.error = json_string_value(error);
        }
        if (get_bool(m.root, "continues", &m.continues) < 0) {
                reason = "\"continues\" is not a boolean";
                goto bad;
        }
        if (m.error && m.continues) {
                reason = "an error cannot continue";
                goto bad;
        }
        *ret = m;
        return 0;
bad:
        r = -EBADMSG;
fail:
        varlink_message_done(&m);
        if (ret_reason)
                *ret_reason = reason;
        return r;
}

int varlink_message_encode(json_t *obj, char **ret, size_t *ret_size)
{
        char *s;
        size_t n;

        s = json_dumps(obj, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        n = strlen(s) + 1;
        if (n - 1 > VARLINK_MESSAGE_MAX) {
                free(s);
                return -EMSGSIZE;
        }
        *ret = s;
        *ret_size = n;
        return 0;
}
