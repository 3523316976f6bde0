/* SPDX-License-Identifier: MIT */
/*
 * delivery.c - io.tern.Delivery's codec (both directions) and Postfix's delivery log line
 *
 * The request is what qmgr sends an agent (Deliver's parameters), the reply what the agent
 * answers; see idl/io.tern.Delivery.varlink. Decoding is strict, since each side must be able to
 * trust what it acts on: unknown fields, missing or mistyped ones, out-of-range numbers,
 * duplicate recipient offsets, control characters in anything that is logged, and more
 * recipients than DELIVERY_RECIPIENTS_MAX are refused, naming the field. Decoded strings point
 * into the json_t they came from.
 *
 * format_delay() is Postfix's format_tv() with 2 significant digits and
 * delay_logging_resolution_limit = 2 (tern has no such parameter); delivery_log_format() is
 * log_adhoc()'s text, byte for byte, without the tls= field (pflogsumm does not parse it).
 *
 * Limits: the field name or reason a decoder returns lives in a per-thread buffer that the next
 * decode overwrites. orig_to is compared with to ASCII-case-insensitively (Postfix compares
 * UTF-8 case-insensitively); addresses are logged as they are (Postfix's info_log_addr_form
 * default, "external", does the same for ordinary addresses).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "delivery.h"
#include "log.h"
#include "macro.h"
#include "queue-id.h"

/* Longest field name or reason a decoder reports ("recipients[99999].dsnOrigRcpt: ..."). */
#define DELIVERY_WHY_MAX 128

static _Thread_local char why_buf[DELIVERY_WHY_MAX];

static const char *why(const char *format, ...) _printf_(1, 2);
static const char *why(const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        vsnprintf(why_buf, sizeof(why_buf), format, ap);
        va_end(ap);
        return why_buf;
}

/* text_ok - a string we may log: no control characters (a CR or LF would forge log lines) */
static bool text_ok(const char *s, size_t len)
{
        if (strlen(s) != len)
                return false;   /* a NUL inside */
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

/* get_string - OBJ[KEY] as a loggable string of at most MAX bytes; 0 absent/null, 1 set, -EINVAL */
static int get_string(json_t *obj, const char *key, size_t max, const char **ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || json_string_length(v) > max || !text_ok(json_string_value(v), json_string_length(v)))
                return -EINVAL;
        *ret = json_string_value(v);
        return 1;
}

/* get_int - OBJ[KEY] as an integer in [MIN, MAX]; 0 absent/null, 1 set, -EINVAL */
static int get_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return -EINVAL;
        *ret = (int64_t) json_integer_value(v);
        return 1;
}

/* get_bool - OBJ[KEY] as a boolean; 0 absent/null, 1 set, -EINVAL */
static int get_bool(json_t *obj, const char *key, bool *ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_boolean(v))
                return -EINVAL;
        *ret = json_is_true(v);
        return 1;
}

/* only_keys - the first key of OBJ that is not in KEYS (NULL-terminated), or NULL */
static const char *only_keys(json_t *obj, const char *const *keys)
{
        const char *key;
        json_t *v;

        json_object_foreach(obj, key, v) {
                bool known = false;
                for (const char *const *k = keys; *k && !known; k++)
                        known = streq(*k, key);
                if (!known)
                        return key;
        }
        return NULL;
}

static int cmp_int64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

/* offsets_distinct - no two of the N offsets (taken from an array of structs) are equal */
static int offsets_distinct(const void *base, size_t n, size_t stride, size_t offset_of, int64_t *ret_dup)
{
        _cleanup_(freep) int64_t *v = NULL;

        if (n < 2)
                return 1;
        v = malloc(n * sizeof(int64_t));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                memcpy(&v[i], (const char *) base + i * stride + offset_of, sizeof(int64_t));
        qsort(v, n, sizeof(int64_t), cmp_int64);
        for (size_t i = 1; i < n; i++)
                if (v[i] == v[i - 1]) {
                        *ret_dup = v[i];
                        return 0;
                }
        return 1;
}

/* ---- request ------------------------------------------------------------------------------- */

json_t *delivery_request_to_json(const DeliveryRequest *r)
{
        _cleanup_(json_decrefp) json_t *o = NULL, *rcpts = NULL;

        rcpts = json_array();
        if (!rcpts)
                return NULL;
        for (size_t i = 0; i < r->n_recipients; i++) {
                const DeliveryRecipient *p = &r->recipients[i];
                json_t *e = json_pack("{s:s,s:I}", "address", p->address, "offset", (json_int_t) p->offset);

                if (!e || json_array_append_new(rcpts, e) < 0)
                        return NULL;
                if (p->orig_address && json_object_set_new(e, "origAddress", json_string(p->orig_address)) < 0)
                        return NULL;
                if (p->dsn_orig_rcpt &&
                    json_object_set_new(e, "dsnOrigRcpt", json_string(p->dsn_orig_rcpt)) < 0)
                        return NULL;
                if (p->notify_flags != 0 &&
                    json_object_set_new(e, "notifyFlags", json_integer(p->notify_flags)) < 0)
                        return NULL;
        }

        o = json_pack("{s:s,s:s,s:i,s:I,s:I,s:s,s:s,s:O,s:I,s:I,s:I}", "queueId", r->queue_id, "queueName",
                      r->queue_name ? r->queue_name : "active", "fd", 0, "dataOffset",
                      (json_int_t) r->data_offset, "size", (json_int_t) r->size, "nexthop", r->nexthop,
                      "sender", r->sender, "recipients", rcpts, "arrivalTime", (json_int_t) r->arrival_usec,
                      "activeTime", (json_int_t) r->active_usec, "handoffTime", (json_int_t) r->handoff_usec);
        if (!o)
                return NULL;
        if (r->envelope_id && json_object_set_new(o, "envelopeId", json_string(r->envelope_id)) < 0)
                return NULL;
        if (r->ret_flags != 0 && json_object_set_new(o, "retFlags", json_integer(r->ret_flags)) < 0)
                return NULL;
        if (r->sendopts != 0 && json_object_set_new(o, "sendopts", json_integer(r->sendopts)) < 0)
                return NULL;
        if (r->conn_cache_load && json_object_set_new(o, "connCacheLoad", json_true()) < 0)
                return NULL;
        if (r->conn_cache_store && json_object_set_new(o, "connCacheStore", json_true()) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* decode_recipient - recipients[I] */
static int decode_recipient(json_t *e, size_t i, DeliveryRecipient *ret, const char **ret_field)
{
        static const char *const keys[] = { "address", "origAddress", "offset", "dsnOrigRcpt", "notifyFlags",
                                            NULL };
        DeliveryRecipient p = {};
        const char *bad;
        int64_t v;

        if (!json_is_object(e)) {
                *ret_field = why("recipients[%zu]", i);
                return -EINVAL;
        }
        bad = only_keys(e, keys);
        if (bad) {
                *ret_field = why("recipients[%zu].%s", i, bad);
                return -EINVAL;
        }
#define FAIL(name)                                              \
        do {                                                    \
                *ret_field = why("recipients[%zu]." name, i);   \
                return -EINVAL;                                 \
        } while (0)
        if (get_string(e, "address", DELIVERY_ADDRESS_MAX, &p.address) <= 0 || !*p.address)
                FAIL("address");
        if (get_string(e, "origAddress", DELIVERY_ADDRESS_MAX, &p.orig_address) < 0)
                FAIL("origAddress");
        if (get_int(e, "offset", 0, INT64_MAX, &p.offset) <= 0)
                FAIL("offset");
        if (get_string(e, "dsnOrigRcpt", DELIVERY_ADDRESS_MAX, &p.dsn_orig_rcpt) < 0)
                FAIL("dsnOrigRcpt");
        v = 0;
        if (get_int(e, "notifyFlags", 0, INT32_MAX, &v) < 0)
                FAIL("notifyFlags");
#undef FAIL
        p.notify_flags = (int) v;
        *ret = p;
        return 0;
}

int delivery_request_from_json(json_t *params, const int *fds, size_t n_fds, DeliveryRequest *ret,
                               const char **ret_field)
{
        static const char *const keys[] = { "queueId",     "queueName",   "fd",          "dataOffset",
                                            "size",        "nexthop",     "sender",      "envelopeId",
                                            "retFlags",    "sendopts",    "recipients",  "arrivalTime",
                                            "activeTime",  "handoffTime", "connCacheLoad", "connCacheStore",
                                            NULL };
        _cleanup_(freep) DeliveryRecipient *rcpts = NULL;
        DeliveryRequest r = {};
        json_t *array, *e;
        const char *bad;
        int64_t v, dup;
        size_t i;
        int k;

#define FAIL(name)                              \
        do {                                    \
                *ret_field = why("%s", name);   \
                return -EINVAL;                 \
        } while (0)
        if (!json_is_object(params))
                FAIL("parameters");
        bad = only_keys(params, keys);
        if (bad)
                FAIL(bad);
        if (get_string(params, "queueId", QUEUE_ID_MAX - 1, &r.queue_id) <= 0 || !queue_id_valid(r.queue_id))
                FAIL("queueId");
        if (get_string(params, "queueName", 64, &r.queue_name) <= 0 || !*r.queue_name ||
            strchr(r.queue_name, '/'))
                FAIL("queueName");
        if (get_int(params, "fd", 0, INT32_MAX, &v) <= 0 || (size_t) v >= n_fds || fds[v] < 0)
                FAIL("fd");
        r.fd = fds[v];
        if (get_int(params, "dataOffset", 0, INT64_MAX, &r.data_offset) <= 0)
                FAIL("dataOffset");
        if (get_int(params, "size", 0, INT64_MAX, &r.size) <= 0)
                FAIL("size");
        if (get_string(params, "nexthop", DELIVERY_ADDRESS_MAX, &r.nexthop) <= 0)
                FAIL("nexthop");
        if (get_string(params, "sender", DELIVERY_ADDRESS_MAX, &r.sender) <= 0)
                FAIL("sender");
        if (get_string(params, "envelopeId", DELIVERY_ADDRESS_MAX, &r.envelope_id) < 0)
                FAIL("envelopeId");
        v = 0;
        if (get_int(params, "retFlags", 0, INT32_MAX, &v) < 0)
                FAIL("retFlags");
        r.ret_flags = (int) v;
        v = 0;
        if (get_int(params, "sendopts", 0, INT32_MAX, &v) < 0)
                FAIL("sendopts");
        r.sendopts = (int) v;
        if (get_int(params, "arrivalTime", 0, INT64_MAX, &r.arrival_usec) <= 0)
                FAIL("arrivalTime");
        if (get_int(params, "activeTime", 0, INT64_MAX, &r.active_usec) <= 0)
                FAIL("activeTime");
        if (get_int(params, "handoffTime", 0, INT64_MAX, &r.handoff_usec) <= 0)
                FAIL("handoffTime");
        if (get_bool(params, "connCacheLoad", &r.conn_cache_load) < 0)
                FAIL("connCacheLoad");
        if (get_bool(params, "connCacheStore", &r.conn_cache_store) < 0)
                FAIL("connCacheStore");

        array = json_object_get(params, "recipients");
        if (!json_is_array(array) || json_array_size(array) == 0 ||
            json_array_size(array) > DELIVERY_RECIPIENTS_MAX)
                FAIL("recipients");
#undef FAIL
        rcpts = calloc(json_array_size(array), sizeof(DeliveryRecipient));
        if (!rcpts)
                return -ENOMEM;
        json_array_foreach(array, i, e) {
                k = decode_recipient(e, i, &rcpts[i], ret_field);
                if (k < 0)
                        return k;
        }
        k = offsets_distinct(rcpts, json_array_size(array), sizeof(DeliveryRecipient),
                             offsetof(DeliveryRecipient, offset), &dup);
        if (k < 0)
                return k;
        if (k == 0) {
                for (i = 0; rcpts[i].offset != dup; i++)
                        ;
                for (i++; rcpts[i].offset != dup; i++)
                        ;
                *ret_field = why("recipients[%zu].offset", i);
                return -EINVAL;
        }
        r.recipients = TAKE_PTR(rcpts);
        r.n_recipients = json_array_size(array);
        *ret = r;
        return 0;
}

void delivery_request_done(DeliveryRequest *r)
{
        if (!r)
                return;
        free(r->recipients);
        r->recipients = NULL;
        r->n_recipients = 0;
}

/* ---- reply --------------------------------------------------------------------------------- */

static const char *const status_names[_DELIVERY_STATUS_MAX] = {
        [DELIVERY_SENT] = "sent",
        [DELIVERY_DEFERRED] = "deferred",
        [DELIVERY_BOUNCED] = "bounced",
};

/* the class of the enhanced status code each status must have */
static const char status_class[_DELIVERY_STATUS_MAX] = {
        [DELIVERY_SENT] = '2',
        [DELIVERY_DEFERRED] = '4',
        [DELIVERY_BOUNCED] = '5',
};

const char *delivery_status_to_string(DeliveryStatus s)
{
        if (s < 0 || s >= _DELIVERY_STATUS_MAX)
                return NULL;
        return status_names[s];
}

DeliveryStatus delivery_status_from_string(const char *s)
{
        for (int i = 0; s && i < _DELIVERY_STATUS_MAX; i++)
                if (streq(status_names[i], s))
                        return (DeliveryStatus) i;
        return DELIVERY_STATUS_INVALID;
}

/* digits - N in 1..3 decimal digits at P, then END; returns the length or 0 */
static size_t digits(const char *p, char end)
{
        size_t n = strspn(p, "0123456789");

        return n >= 1 && n <= 3 && p[n] == end ? n : 0;
}

bool dsn_valid(const char *dsn)
{
        size_t n;

        if (!dsn || (dsn[0] != '2' && dsn[0] != '4' && dsn[0] != '5') || dsn[1] != '.')
                return false;
        n = digits(dsn + 2, '.');
        if (n == 0)
                return false;
        return digits(dsn + 2 + n + 1, '\0') > 0;
}

json_t *delivery_reply_to_json(const DeliveryReply *r)
{
        _cleanup_(json_decrefp) json_t *o = NULL, *a = NULL;

        a = json_array();
        if (!a)
                return NULL;
        for (size_t i = 0; i < r->n_results; i++) {
                const DeliveryResult *p = &r->results[i];
                const char *status = delivery_status_to_string(p->status);
                json_t *e;

                if (!status)
                        return NULL;
                e = json_pack("{s:I,s:s,s:s,s:s,s:s}", "offset", (json_int_t) p->offset, "status", status,
                              "dsn", p->dsn, "text", p->text, "relay", p->relay);
                if (!e || json_array_append_new(a, e) < 0)
                        return NULL;
        }
        o = json_pack("{s:O}", "recipients", a);
        if (!o)
                return NULL;
        if (r->hop_failed &&
            json_object_set_new(o, "hopStatus", json_pack("{s:s,s:s}", "dsn", r->hop_dsn, "text", r->hop_text)) <
                    0)
                return NULL;
        if (r->last_call && json_object_set_new(o, "lastCall", json_true()) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Longest text or relay an agent may answer (a multi-line SMTP reply, flattened, fits). */
#define DELIVERY_TEXT_MAX 4096U

static int decode_result(json_t *e, size_t i, DeliveryResult *ret, const char **ret_reason)
{
        static const char *const keys[] = { "offset", "status", "dsn", "text", "relay", NULL };
        DeliveryResult p = {};
        const char *bad, *status = NULL;

        if (!json_is_object(e)) {
                *ret_reason = why("recipients[%zu]: not an object", i);
                return -EBADMSG;
        }
        bad = only_keys(e, keys);
        if (bad) {
                *ret_reason = why("recipients[%zu]: unknown field %.32s", i, bad);
                return -EBADMSG;
        }
#define FAIL(what)                                                      \
        do {                                                            \
                *ret_reason = why("recipients[%zu].%s", i, what);       \
                return -EBADMSG;                                        \
        } while (0)
        if (get_int(e, "offset", 0, INT64_MAX, &p.offset) <= 0)
                FAIL("offset: missing or not a non-negative integer");
        if (get_string(e, "status", 16, &status) <= 0)
                FAIL("status: missing or not a string");
        p.status = delivery_status_from_string(status);
        if (p.status < 0)
                FAIL("status: not sent, deferred or bounced");
        if (get_string(e, "dsn", 16, &p.dsn) <= 0 || !dsn_valid(p.dsn))
                FAIL("dsn: not an enhanced status code");
        if (p.dsn[0] != status_class[p.status])
                FAIL("dsn: class does not match the status");
        if (get_string(e, "text", DELIVERY_TEXT_MAX, &p.text) <= 0)
                FAIL("text: missing, too long, or with control characters");
        if (get_string(e, "relay", DELIVERY_ADDRESS_MAX, &p.relay) <= 0 || !*p.relay)
                FAIL("relay: missing, empty, too long, or with control characters");
#undef FAIL
        *ret = p;
        return 0;
}

int delivery_reply_from_json(json_t *params, DeliveryReply *ret, const char **ret_reason)
{
        static const char *const keys[] = { "recipients", "hopStatus", "lastCall", NULL };
        _cleanup_(freep) DeliveryResult *results = NULL;
        DeliveryReply r = {};
        json_t *array, *hop, *e;
        const char *bad;
        int64_t dup;
        size_t i;
        int k;

        if (!json_is_object(params)) {
                *ret_reason = why("parameters: not an object");
                return -EBADMSG;
        }
        bad = only_keys(params, keys);
        if (bad) {
                *ret_reason = why("unknown field %.32s", bad);
                return -EBADMSG;
        }
        array = json_object_get(params, "recipients");
        if (!json_is_array(array) || json_array_size(array) > DELIVERY_RECIPIENTS_MAX) {
                *ret_reason = why("recipients: missing, not an array, or too long");
                return -EBADMSG;
        }
        e = json_object_get(params, "lastCall");
        if (e && !json_is_null(e)) {
                if (!json_is_boolean(e)) {
                        *ret_reason = why("lastCall: not a boolean");
                        return -EBADMSG;
                }
                r.last_call = json_is_true(e);
        }
        hop = json_object_get(params, "hopStatus");
        if (hop && !json_is_null(hop)) {
                static const char *const hop_keys[] = { "dsn", "text", NULL };

                if (!json_is_object(hop) || only_keys(hop, hop_keys)) {
                        *ret_reason = why("hopStatus: not an object of dsn and text");
                        return -EBADMSG;
                }
                if (get_string(hop, "dsn", 16, &r.hop_dsn) <= 0 || !dsn_valid(r.hop_dsn) || r.hop_dsn[0] == '2') {
                        *ret_reason = why("hopStatus.dsn: not a 4.X.Y or 5.X.Y enhanced status code");
                        return -EBADMSG;
                }
                if (get_string(hop, "text", DELIVERY_TEXT_MAX, &r.hop_text) <= 0) {
                        *ret_reason = why("hopStatus.text: missing, too long, or with control characters");
                        return -EBADMSG;
                }
                r.hop_failed = true;
        }

        if (json_array_size(array) > 0) {
                results = calloc(json_array_size(array), sizeof(DeliveryResult));
                if (!results)
                        return -ENOMEM;
        }
        json_array_foreach(array, i, e) {
                k = decode_result(e, i, &results[i], ret_reason);
                if (k < 0)
                        return k;
        }
        k = offsets_distinct(results, json_array_size(array), sizeof(DeliveryResult),
                             offsetof(DeliveryResult, offset), &dup);
        if (k < 0)
                return k;
        if (k == 0) {
                *ret_reason = why("recipients: two results for offset %" PRId64, dup);
                return -EBADMSG;
        }
        r.results = TAKE_PTR(results);
        r.n_results = json_array_size(array);
        *ret = r;
        return 0;
}

void delivery_reply_done(DeliveryReply *r)
{
        if (!r)
                return;
        free(r->results);
        r->results = NULL;
        r->n_results = 0;
}

/* ---- the log line -------------------------------------------------------------------------- */

/* Postfix's SIG_DIGS and delay_logging_resolution_limit default. */
#define DELAY_SIGNIFICANT_DIGITS 2
#define DELAY_RESOLUTION_DIGITS 2

char *format_delay(int64_t usec, char buf[static DELAY_STRING_MAX])
{
        static const int64_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };
        const int64_t million = 1000000;
        int64_t sec, us, unit, width;
        size_t n;

        if (usec < 0)
                usec = 0;
        sec = usec / million;
        us = usec % million;

        /* The smallest step shown (in µs): 10^-resolution s at most; from 1 s on, 2 significant
         * digits decide it (0.1 s below 10 s, whole seconds from 10 s). */
        unit = million / pow10[DELAY_RESOLUTION_DIGITS];
        width = pow10[DELAY_SIGNIFICANT_DIGITS];
        if (sec > 0) {
                int64_t m = 1;

                while (sec >= m && m <= width / 10)
                        m *= 10;
                unit = (million / width) * m;
        } else {
                while (us >= width * unit)
                        unit *= 10;
        }

        /* Round to the nearest step, carrying into the seconds. */
        if (unit > 1) {
                us += unit / 2;
                if (us >= million) {
                        sec++;
                        us -= million;
                }
        }

        n = (size_t) snprintf(buf, DELAY_STRING_MAX, "%" PRId64, sec);
        if (us >= unit) {
                int64_t rest = us;

                buf[n++] = '.';
                for (int64_t d = million / 10; rest >= unit && d > 0; d /= 10) {
                        buf[n++] = (char) ('0' + rest / d);
                        rest %= d;
                }
                buf[n] = '\0';
        }
        return buf;
}

/* since - B - A, or 0 when the clock went back (Postfix's DELTA) */
static int64_t since(int64_t a, int64_t b)
{
        return b > a ? b - a : 0;
}

int delivery_log_format(const DeliveryLog *l, char **ret)
{
        char d[5][DELAY_STRING_MAX], use[32] = "";
        int64_t now = l->now_usec, pdelay, adelay, sdelay = 0, xdelay = 0;
        bool orig;
        char *s;

        /* Which stamps exist decides what each interval measures, as in log_adhoc(): no active
         * stamp (bounced before qmgr), no hand-off (deferred or bounced by qmgr), no connection
         * set-up (no network client). */
        if (l->active_usec > 0) {
                pdelay = since(l->arrival_usec, l->active_usec);
                if (l->handoff_usec > 0) {
                        adelay = since(l->active_usec, l->handoff_usec);
                        if (l->conn_done_usec > 0) {
                                sdelay = since(l->handoff_usec, l->conn_done_usec);
                                xdelay = since(l->conn_done_usec, now);
                        } else
                                xdelay = since(l->handoff_usec, now);
                } else
                        adelay = since(l->active_usec, now);
        } else {
                pdelay = since(l->arrival_usec, now);
                adelay = 0;
        }

        orig = l->orig_recipient && *l->orig_recipient && strcasecmp(l->recipient, l->orig_recipient) != 0;
        if (l->conn_use > 1)
                snprintf(use, sizeof(use), ", conn_use=%d", l->conn_use);
        if (asprintf(&s, "%s: to=<%s>%s%s%s, relay=%s%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
                     l->queue_id, l->recipient, orig ? ", orig_to=<" : "", orig ? l->orig_recipient : "",
                     orig ? ">" : "", l->relay, use, format_delay(since(l->arrival_usec, now), d[0]),
                     format_delay(pdelay, d[1]), format_delay(adelay, d[2]), format_delay(sdelay, d[3]),
                     format_delay(xdelay, d[4]), l->dsn, l->status, l->text) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

void delivery_log(const DeliveryLog *l)
{
        _cleanup_(freep) char *text = NULL, *f_id = NULL, *f_rcpt = NULL, *f_relay = NULL, *f_status = NULL,
                              *f_dsn = NULL;

        if (delivery_log_format(l, &text) < 0 || asprintf(&f_id, "TERN_QUEUE_ID=%s", l->queue_id) < 0 ||
            asprintf(&f_rcpt, "TERN_RECIPIENT=%s", l->recipient) < 0 ||
            asprintf(&f_relay, "TERN_RELAY=%s", l->relay) < 0 ||
            asprintf(&f_status, "TERN_STATUS=%s", l->status) < 0 || asprintf(&f_dsn, "TERN_DSN=%s", l->dsn) < 0) {
                /* Never lose the fact of a delivery: say it without the decoration. */
                log_error("%s: to=<%s>, status=%s: out of memory while logging", l->queue_id, l->recipient,
                          l->status);
                return;
        }
        log_info_fields(LOG_FIELDS(f_id, f_rcpt, f_relay, f_status, f_dsn), "%s", text);
}
