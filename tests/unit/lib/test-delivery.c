/* SPDX-License-Identifier: MIT */
/*
 * test-delivery.c - io.tern.Delivery's codec and the delivery log line (src/lib/delivery.c), and
 * the dsn_split of src/lib/delivery-agent.c
 *
 * Covers: request and reply round trips (every field, optional ones absent and present); every
 * field of a request refused when missing, mistyped, out of range or unknown, with the field's
 * name (nested: "recipients[1].offset"); every way a reply is garbage refused with a reason;
 * dsn_valid(); format_delay() against a table worked out from Postfix's format_tv.c with 2
 * significant digits and delay_logging_resolution_limit = 2; log lines byte for byte against
 * golden/delivery-log.ref (the CONNECTION_CACHE_README example, orig_to shown only when it
 * differs case-insensitively and is not empty, conn_use only above 1, the stamps that are missing
 * as log_adhoc treats them, a clock that went back); the structured fields of delivery_log();
 * delivery_dsn_split() as Postfix's dsn_split().
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test-util.h"

#include "delivery-agent.h"
#include "delivery.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"

#define T0 INT64_C(1700000000000000)

static int test_fds[2] = { -EBADF, -EBADF };

static json_t *load(const char *text)
{
        json_error_t e;
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);

        if (!j)
                fail_msg("bad test JSON: %s: %s", e.text, text);
        return j;
}

static const char request_text[] =
        "{\"queueId\":\"4Yc2Xz1x2Wz9abc\",\"queueName\":\"active\",\"fd\":1,\"dataOffset\":300,\"size\":1234,"
        "\"nexthop\":\"example.com\",\"sender\":\"a@b.example\",\"envelopeId\":\"env-1\",\"retFlags\":1,"
        "\"sendopts\":2,\"recipients\":[{\"address\":\"x@example.com\",\"origAddress\":\"X@Example.com\","
        "\"offset\":120,\"dsnOrigRcpt\":\"rfc822;x@example.com\",\"notifyFlags\":3},"
        "{\"address\":\"y@example.com\",\"offset\":160}],\"arrivalTime\":1700000000000000,"
        "\"activeTime\":1700000000100000,\"handoffTime\":1700000000200000,\"connCacheLoad\":true,"
        "\"connCacheStore\":false}";

static void test_request_decode(void **state)
{
        _cleanup_(json_decrefp) json_t *j = load(request_text);
        DeliveryRequest r = {};
        const char *field = NULL;

        assert_int_equal(delivery_request_from_json(j, test_fds, 2, &r, &field), 0);
        assert_string_equal(r.queue_id, "4Yc2Xz1x2Wz9abc");
        assert_string_equal(r.queue_name, "active");
        assert_int_equal(r.fd, test_fds[1]);
        assert_int_equal(r.data_offset, 300);
        assert_int_equal(r.size, 1234);
        assert_string_equal(r.nexthop, "example.com");
        assert_string_equal(r.sender, "a@b.example");
        assert_string_equal(r.envelope_id, "env-1");
        assert_int_equal(r.ret_flags, 1);
        assert_int_equal(r.sendopts, 2);
        assert_int_equal(r.n_recipients, 2);
        assert_string_equal(r.recipients[0].address, "x@example.com");
        assert_string_equal(r.recipients[0].orig_address, "X@Example.com");
        assert_int_equal(r.recipients[0].offset, 120);
        assert_string_equal(r.recipients[0].dsn_orig_rcpt, "rfc822;x@example.com");
        assert_int_equal(r.recipients[0].notify_flags, 3);
        assert_string_equal(r.recipients[1].address, "y@example.com");
        assert_null(r.recipients[1].orig_address);
        assert_null(r.recipients[1].dsn_orig_rcpt);
        assert_int_equal(r.recipients[1].notify_flags, 0);
        assert_true(r.arrival_usec == T0);
        assert_true(r.active_usec == T0 + 100000);
        assert_true(r.handoff_usec == T0 + 200000);
        assert_true(r.conn_cache_load);
        assert_false(r.conn_cache_store);
        delivery_request_done(&r);
        assert_null(r.recipients);
}

static void test_request_round_trip(void **state)
{
        DeliveryRecipient rcpts[] = {
                { .address = "x@example.com", .orig_address = "X@example.com", .offset = 120,
                  .dsn_orig_rcpt = "rfc822;x@example.com", .notify_flags = 5 },
                { .address = "y@example.com", .offset = 7 },
        };
        const DeliveryRequest cases[] = {
                { .queue_id = "ABCDEF123", .queue_name = "active", .fd = 99, .data_offset = 1, .size = 2,
                  .nexthop = "example.com", .sender = "", .recipients = rcpts, .n_recipients = 2,
                  .arrival_usec = 1, .active_usec = 2, .handoff_usec = 3 },
                { .queue_id = "4Yc2Xz1x2Wz9abc", .queue_name = "active", .fd = 99, .data_offset = 100,
                  .size = 5000, .nexthop = "[192.0.2.1]:25", .sender = "s@example", .envelope_id = "e",
                  .ret_flags = 2, .sendopts = 4, .recipients = rcpts, .n_recipients = 1, .arrival_usec = T0,
                  .active_usec = T0 + 1, .handoff_usec = T0 + 2, .conn_cache_load = true,
                  .conn_cache_store = true },
        };

        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                _cleanup_(json_decrefp) json_t *j = delivery_request_to_json(&cases[c]);
                DeliveryRequest r = {};
                const char *field = NULL;
                int k;

                assert_non_null(j);
                assert_int_equal(json_integer_value(json_object_get(j, "fd")), 0);
                k = delivery_request_from_json(j, test_fds, 1, &r, &field);
                if (k < 0)
                        fail_msg("case %zu: decode of the encoding failed: %d field %s", c, k, field);
                assert_string_equal(r.queue_id, cases[c].queue_id);
                assert_int_equal(r.fd, test_fds[0]);
                assert_int_equal(r.data_offset, cases[c].data_offset);
                assert_int_equal(r.size, cases[c].size);
                assert_string_equal(r.nexthop, cases[c].nexthop);
                assert_string_equal(r.sender, cases[c].sender);
                if (cases[c].envelope_id)
                        assert_string_equal(r.envelope_id, cases[c].envelope_id);
                else
                        assert_null(r.envelope_id);
                assert_int_equal(r.ret_flags, cases[c].ret_flags);
                assert_int_equal(r.sendopts, cases[c].sendopts);
                assert_int_equal(r.n_recipients, cases[c].n_recipients);
                for (size_t i = 0; i < r.n_recipients; i++) {
                        assert_string_equal(r.recipients[i].address, rcpts[i].address);
                        assert_int_equal(r.recipients[i].offset, rcpts[i].offset);
                        assert_int_equal(r.recipients[i].notify_flags, rcpts[i].notify_flags);
                        if (rcpts[i].orig_address)
                                assert_string_equal(r.recipients[i].orig_address, rcpts[i].orig_address);
                        else
                                assert_null(r.recipients[i].orig_address);
                }
                assert_true(r.arrival_usec == cases[c].arrival_usec);
                assert_true(r.active_usec == cases[c].active_usec);
                assert_true(r.handoff_usec == cases[c].handoff_usec);
                assert_int_equal(r.conn_cache_load, cases[c].conn_cache_load);
                assert_int_equal(r.conn_cache_store, cases[c].conn_cache_store);
                delivery_request_done(&r);
        }
}

typedef struct BadCase {
        const char *what;
        const char *path;       /* "key" or "recipients.N.key": what to change */
        const char *value;      /* JSON, or NULL to delete */
        const char *field;      /* the field the decoder must name */
} BadCase;

static const BadCase bad_requests[] = {
        { "queueId missing", "queueId", NULL, "queueId" },
        { "queueId a number", "queueId", "5", "queueId" },
        { "queueId with a slash", "queueId", "\"../etc\"", "queueId" },
        { "queueId empty", "queueId", "\"\"", "queueId" },
        { "queueName missing", "queueName", NULL, "queueName" },
        { "queueName with a slash", "queueName", "\"a/b\"", "queueName" },
        { "fd missing", "fd", NULL, "fd" },
        { "fd a string", "fd", "\"0\"", "fd" },
        { "fd beyond the descriptors sent", "fd", "2", "fd" },
        { "fd negative", "fd", "-1", "fd" },
        { "dataOffset missing", "dataOffset", NULL, "dataOffset" },
        { "dataOffset negative", "dataOffset", "-1", "dataOffset" },
        { "dataOffset a float", "dataOffset", "1.5", "dataOffset" },
        { "size missing", "size", NULL, "size" },
        { "size negative", "size", "-7", "size" },
        { "nexthop missing", "nexthop", NULL, "nexthop" },
        { "nexthop with a newline", "nexthop", "\"a\\nb\"", "nexthop" },
        { "sender missing", "sender", NULL, "sender" },
        { "sender null", "sender", "null", "sender" },
        { "sender with a NUL", "sender", "\"a\\u0000b\"", "sender" },
        { "envelopeId a number", "envelopeId", "1", "envelopeId" },
        { "retFlags a string", "retFlags", "\"1\"", "retFlags" },
        { "retFlags negative", "retFlags", "-1", "retFlags" },
        { "sendopts too large", "sendopts", "4294967296", "sendopts" },
        { "arrivalTime missing", "arrivalTime", NULL, "arrivalTime" },
        { "activeTime negative", "activeTime", "-1", "activeTime" },
        { "handoffTime a bool", "handoffTime", "true", "handoffTime" },
        { "connCacheLoad a number", "connCacheLoad", "1", "connCacheLoad" },
        { "connCacheStore a string", "connCacheStore", "\"yes\"", "connCacheStore" },
        { "an unknown field", "bogus", "1", "bogus" },
        { "recipients missing", "recipients", NULL, "recipients" },
        { "recipients empty", "recipients", "[]", "recipients" },
        { "recipients an object", "recipients", "{}", "recipients" },
        { "a recipient a string", "recipients", "[\"x@y\"]", "recipients[0]" },
        { "recipient address missing", "recipients.1.address", NULL, "recipients[1].address" },
        { "recipient address empty", "recipients.1.address", "\"\"", "recipients[1].address" },
        { "recipient address with CR", "recipients.0.address", "\"a\\rb\"", "recipients[0].address" },
        { "recipient origAddress a number", "recipients.0.origAddress", "1", "recipients[0].origAddress" },
        { "recipient offset missing", "recipients.1.offset", NULL, "recipients[1].offset" },
        { "recipient offset negative", "recipients.0.offset", "-5", "recipients[0].offset" },
        { "recipient offsets equal", "recipients.1.offset", "120", "recipients[1].offset" },
        { "recipient dsnOrigRcpt a bool", "recipients.0.dsnOrigRcpt", "false", "recipients[0].dsnOrigRcpt" },
        { "recipient notifyFlags negative", "recipients.0.notifyFlags", "-1", "recipients[0].notifyFlags" },
        { "recipient unknown field", "recipients.1.extra", "1", "recipients[1].extra" },
};

/* mutate - apply one BadCase to J */
static void mutate(json_t *j, const char *path, const char *value)
{
        char key[64];
        json_t *target = j;
        const char *k = path;

        if (strneq(path, "recipients.", 11)) {
                size_t i = (size_t) strtoul(path + 11, NULL, 10);
                target = json_array_get(json_object_get(j, "recipients"), i);
                k = strchr(path + 11, '.') + 1;
        }
        snprintf(key, sizeof(key), "%s", k);
        if (!value)
                json_object_del(target, key);
        else {
                json_t *v = json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
                assert_non_null(v);
                json_object_set_new(target, key, v);
        }
}

static void test_request_bad_fields(void **state)
{
        for (size_t c = 0; c < ELEMENTSOF(bad_requests); c++) {
                const BadCase *b = &bad_requests[c];
                _cleanup_(json_decrefp) json_t *j = load(request_text);
                DeliveryRequest r = { .queue_id = "untouched" };
                const char *field = NULL;
                int k;

                mutate(j, b->path, b->value);
                k = delivery_request_from_json(j, test_fds, 2, &r, &field);
                if (k != -EINVAL)
                        fail_msg("%s: got %d want -EINVAL", b->what, k);
                if (!field || !streq(field, b->field))
                        fail_msg("%s: named field \"%s\" want \"%s\"", b->what, strna(field), b->field);
                if (!streq(r.queue_id, "untouched") || r.recipients)
                        fail_msg("%s: failed but wrote its output", b->what);
        }
}

static void test_request_limits(void **state)
{
        _cleanup_(json_decrefp) json_t *j = load(request_text);
        json_t *a = json_array();
        DeliveryRequest r = {};
        const char *field = NULL;
        char big[DELIVERY_ADDRESS_MAX + 2];

        /* DELIVERY_RECIPIENTS_MAX + 1 recipients: refused before any is decoded */
        for (size_t i = 0; i <= DELIVERY_RECIPIENTS_MAX; i++)
                json_array_append_new(a, json_pack("{s:s,s:I}", "address", "a@b", "offset", (json_int_t) i));
        json_object_set_new(j, "recipients", a);
        assert_int_equal(delivery_request_from_json(j, test_fds, 2, &r, &field), -EINVAL);
        assert_string_equal(field, "recipients");

        /* exactly the maximum is fine */
        json_array_remove(a, 0);
        assert_int_equal(delivery_request_from_json(j, test_fds, 2, &r, &field), 0);
        assert_int_equal(r.n_recipients, DELIVERY_RECIPIENTS_MAX);
        delivery_request_done(&r);

        /* an address of DELIVERY_ADDRESS_MAX + 1 bytes */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        json_object_set_new(j, "recipients", json_pack("[{s:s,s:i}]", "address", big, "offset", 1));
        assert_int_equal(delivery_request_from_json(j, test_fds, 2, &r, &field), -EINVAL);
        assert_string_equal(field, "recipients[0].address");
        big[sizeof(big) - 2] = '\0';
        assert_int_equal(delivery_request_from_json(j, test_fds, 2, &r, &field), -EINVAL); /* still the old one */
        json_object_set_new(j, "recipients", json_pack("[{s:s,s:i}]", "address", big, "offset", 1));
        assert_int_equal(delivery_request_from_json(j, test_fds, 2, &r, &field), 0);
        delivery_request_done(&r);

        /* not an object at all */
        {
                _cleanup_(json_decrefp) json_t *arr = json_array();
                assert_int_equal(delivery_request_from_json(arr, test_fds, 2, &r, &field), -EINVAL);
        }
}

static const char reply_text[] =
        "{\"recipients\":[{\"offset\":120,\"status\":\"sent\",\"dsn\":\"2.0.0\",\"text\":\"250 2.0.0 Ok\","
        "\"relay\":\"mx.example[192.0.2.1]:25\"},{\"offset\":160,\"status\":\"deferred\",\"dsn\":\"4.4.1\","
        "\"text\":\"connect to x: refused\",\"relay\":\"none\"},{\"offset\":200,\"status\":\"bounced\","
        "\"dsn\":\"5.1.1\",\"text\":\"550 5.1.1 no\",\"relay\":\"none\"}],"
        "\"hopStatus\":{\"dsn\":\"4.4.1\",\"text\":\"connect to x: refused\"}}";

static void test_reply_round_trip(void **state)
{
        _cleanup_(json_decrefp) json_t *j = load(reply_text), *enc = NULL;
        DeliveryReply r = {}, again = {};
        const char *reason = NULL;

        assert_int_equal(delivery_reply_from_json(j, &r, &reason), 0);
        assert_int_equal(r.n_results, 3);
        assert_int_equal(r.results[0].status, DELIVERY_SENT);
        assert_int_equal(r.results[1].status, DELIVERY_DEFERRED);
        assert_int_equal(r.results[2].status, DELIVERY_BOUNCED);
        assert_string_equal(r.results[0].relay, "mx.example[192.0.2.1]:25");
        assert_true(r.hop_failed);
        assert_string_equal(r.hop_dsn, "4.4.1");

        enc = delivery_reply_to_json(&r);
        assert_non_null(enc);
        assert_true(json_equal(enc, j));
        assert_int_equal(delivery_reply_from_json(enc, &again, &reason), 0);
        assert_int_equal(again.n_results, 3);
        delivery_reply_done(&again);
        delivery_reply_done(&r);

        /* no hop status, no results */
        {
                _cleanup_(json_decrefp) json_t *e = load("{\"recipients\":[]}");
                _cleanup_(json_decrefp) json_t *e2 = NULL;

                assert_int_equal(delivery_reply_from_json(e, &r, &reason), 0);
                assert_false(r.hop_failed);
                assert_int_equal(r.n_results, 0);
                e2 = delivery_reply_to_json(&r);
                assert_true(json_equal(e, e2));
                delivery_reply_done(&r);
        }
}

static const BadCase bad_replies[] = {
        { "recipients missing", "recipients", NULL, "recipients" },
        { "recipients an object", "recipients", "{}", "recipients" },
        { "unknown top-level field", "status", "0", "unknown field" },
        { "a result a number", "recipients", "[1]", "recipients[0]" },
        { "offset missing", "recipients.0.offset", NULL, "recipients[0].offset" },
        { "offset negative", "recipients.1.offset", "-1", "recipients[1].offset" },
        { "offset a string", "recipients.1.offset", "\"1\"", "recipients[1].offset" },
        { "offsets equal", "recipients.2.offset", "120", "offset 120" },
        { "status missing", "recipients.0.status", NULL, "recipients[0].status" },
        { "status unknown", "recipients.0.status", "\"delivered\"", "recipients[0].status" },
        { "status expired (qmgr's, not an agent's)", "recipients.0.status", "\"expired\"", "recipients[0].status" },
        { "dsn missing", "recipients.0.dsn", NULL, "recipients[0].dsn" },
        { "dsn not a code", "recipients.0.dsn", "\"250\"", "recipients[0].dsn" },
        { "dsn class 3", "recipients.0.dsn", "\"3.0.0\"", "recipients[0].dsn" },
        { "dsn four digits", "recipients.0.dsn", "\"2.0.1000\"", "recipients[0].dsn" },
        { "dsn disagrees with sent", "recipients.0.dsn", "\"5.0.0\"", "recipients[0].dsn: class" },
        { "dsn disagrees with deferred", "recipients.1.dsn", "\"2.0.0\"", "recipients[1].dsn: class" },
        { "dsn disagrees with bounced", "recipients.2.dsn", "\"4.0.0\"", "recipients[2].dsn: class" },
        { "text missing", "recipients.0.text", NULL, "recipients[0].text" },
        { "text with a newline", "recipients.0.text", "\"a\\nstatus=sent\"", "recipients[0].text" },
        { "text with a NUL", "recipients.0.text", "\"a\\u0000b\"", "recipients[0].text" },
        { "relay missing", "recipients.2.relay", NULL, "recipients[2].relay" },
        { "relay empty", "recipients.2.relay", "\"\"", "recipients[2].relay" },
        { "relay with DEL", "recipients.2.relay", "\"a\\u007f\"", "recipients[2].relay" },
        { "unknown result field", "recipients.1.queueId", "\"x\"", "recipients[1]: unknown field" },
        { "hopStatus a string", "hopStatus", "\"down\"", "hopStatus" },
        { "hopStatus dsn class 2", "hopStatus", "{\"dsn\":\"2.0.0\",\"text\":\"x\"}", "hopStatus.dsn" },
        { "hopStatus without text", "hopStatus", "{\"dsn\":\"4.0.0\"}", "hopStatus.text" },
        { "hopStatus with more", "hopStatus", "{\"dsn\":\"4.0.0\",\"text\":\"x\",\"y\":1}", "hopStatus" },
};

static void test_reply_garbage(void **state)
{
        for (size_t c = 0; c < ELEMENTSOF(bad_replies); c++) {
                const BadCase *b = &bad_replies[c];
                _cleanup_(json_decrefp) json_t *j = load(reply_text);
                DeliveryReply r = { .n_results = 77 };
                const char *reason = NULL;
                int k;

                mutate(j, b->path, b->value);
                k = delivery_reply_from_json(j, &r, &reason);
                if (k != -EBADMSG)
                        fail_msg("%s: got %d want -EBADMSG", b->what, k);
                if (!reason || !strstr(reason, b->field))
                        fail_msg("%s: reason \"%s\" does not say \"%s\"", b->what, strna(reason), b->field);
                if (r.n_results != 77 || r.results)
                        fail_msg("%s: failed but wrote its output", b->what);
        }
}

static void test_status_names(void **state)
{
        assert_string_equal(delivery_status_to_string(DELIVERY_SENT), "sent");
        assert_string_equal(delivery_status_to_string(DELIVERY_DEFERRED), "deferred");
        assert_string_equal(delivery_status_to_string(DELIVERY_BOUNCED), "bounced");
        assert_null(delivery_status_to_string(_DELIVERY_STATUS_MAX));
        assert_null(delivery_status_to_string(DELIVERY_STATUS_INVALID));
        assert_int_equal(delivery_status_from_string("bounced"), DELIVERY_BOUNCED);
        assert_int_equal(delivery_status_from_string("Sent"), DELIVERY_STATUS_INVALID);
        assert_int_equal(delivery_status_from_string(NULL), DELIVERY_STATUS_INVALID);
}

static void test_dsn_valid(void **state)
{
        static const char *const good[] = { "2.0.0", "4.4.1", "5.1.1", "5.999.999", "2.10.0", "4.0.100" };
        static const char *const bad[] = { "",       "2",        "2.0",      "2.0.",    "3.0.0",  "6.0.0",
                                           "2.0.0 ", "2.0.0.0",  "2.1000.0", "2..0",    "x.0.0",  "2.0.0x",
                                           " 2.0.0", "2.0.1000", "25.0.0",   "2.-1.0" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                if (!dsn_valid(good[i]))
                        fail_msg("dsn_valid(\"%s\") is false", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (dsn_valid(bad[i]))
                        fail_msg("dsn_valid(\"%s\") is true", bad[i]);
        assert_false(dsn_valid(NULL));
}

/*
 * format_delay: Postfix's format_tv(sec, usec, 2, 2) as log_adhoc calls it. Below 1 s: at most 2
 * decimals, rounded to the nearest 0.01; 1-9.x s: one decimal; from 10 s whole seconds; rounding
 * carries over ("0.995" is "1", "9.95" is "10"); trailing zeros are dropped.
 */
static void test_format_delay(void **state)
{
        static const struct {
                int64_t usec;
                const char *want;
        } table[] = {
                { 0, "0" },                     { 1, "0" },
                { 4999, "0" },                  { 5000, "0.01" },
                { 10000, "0.01" },              { 14999, "0.01" },
                { 15000, "0.02" },              { 44000, "0.04" },
                { 99999, "0.1" },               { 100000, "0.1" },
                { 104999, "0.1" },              { 105000, "0.11" },
                { 120000, "0.12" },             { 125000, "0.13" },
                { 216000, "0.22" },             { 500000, "0.5" },
                { 994999, "0.99" },             { 995000, "1" },
                { 1000000, "1" },               { 1049999, "1" },
                { 1050000, "1.1" },             { 1250000, "1.3" },
                { 2000000, "2" },               { 9940000, "9.9" },
                { 9949999, "9.9" },             { 9950000, "10" },
                { 10000000, "10" },             { 10499999, "10" },
                { 10500000, "11" },             { 99500000, "100" },
                { 3600000000, "3600" },         { 3600499999, "3600" },
                { 3600500000, "3601" },         { 86400000000, "86400" },
                { -1, "0" },                    { -5000000, "0" },
                { INT64_C(9223372036854775807), "9223372036855" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                char buf[DELAY_STRING_MAX];

                if (!streq(format_delay(table[i].usec, buf), table[i].want))
                        fail_msg("format_delay(%lld) = \"%s\" want \"%s\"", (long long) table[i].usec, buf,
                                 table[i].want);
        }
}

/* The log line cases, in the order of golden/delivery-log.ref. */
static const DeliveryLog log_cases[] = {
        /* CONNECTION_CACHE_README's example */
        { .queue_id = "19B6B2900FE", .recipient = "wietse@test.example.com", .orig_recipient = "wietse@test",
          .relay = "mail.example.com[1.2.3.4]", .conn_use = 2, .arrival_usec = T0, .active_usec = T0 + 44000,
          .handoff_usec = T0 + 58000, .conn_done_usec = T0 + 112000, .now_usec = T0 + 216000, .dsn = "2.0.0",
          .status = "sent", .text = "250 2.0.0 Ok" },
        /* orig_to equal but for case: not shown; conn_use 1: not shown; no connection stamp */
        { .queue_id = "4Yc2Xz1x2Wz9abc", .recipient = "User@Example.com", .orig_recipient = "user@example.COM",
          .relay = "none", .conn_use = 1, .arrival_usec = T0, .active_usec = T0 + 1500000,
          .handoff_usec = T0 + 1600000, .now_usec = T0 + 1601000, .dsn = "2.0.0", .status = "sent",
          .text = "discarded" },
        /* empty orig_to: not shown; a bounce after a day */
        { .queue_id = "ABC123", .recipient = "x@example.net", .orig_recipient = "", .relay = "none",
          .arrival_usec = T0, .active_usec = T0 + 86400000000, .handoff_usec = T0 + 86400010000,
          .now_usec = T0 + 86400020000, .dsn = "5.0.0", .status = "bounced", .text = "no such transport" },
        /* deferred by qmgr: no hand-off stamp: b runs to now, c and d are 0 */
        { .queue_id = "ABC124", .recipient = "y@example.net", .relay = "none", .arrival_usec = T0,
          .active_usec = T0 + 20000, .now_usec = T0 + 3020000, .dsn = "4.3.0", .status = "deferred",
          .text = "mail transport unavailable" },
        /* no active stamp (bounced before qmgr): a runs to now */
        { .queue_id = "ABC125", .recipient = "z@example.net", .relay = "none", .arrival_usec = T0,
          .now_usec = T0 + 12340000, .dsn = "5.7.1", .status = "expired", .text = "message too old" },
        /* the clock went back: negative intervals print as 0; conn_use 17 */
        { .queue_id = "ABC126", .recipient = "w@example.org", .orig_recipient = "alias@example.org",
          .relay = "mx.example.org[2001:db8::1]:25", .conn_use = 17, .arrival_usec = T0 + 5000000,
          .active_usec = T0 + 4000000, .handoff_usec = T0 + 4500000, .conn_done_usec = T0 + 4400000,
          .now_usec = T0 + 4450000, .dsn = "4.4.2", .status = "deferred", .text = "lost connection" },
        /* null sender context does not matter; a text with parentheses and an empty one */
        { .queue_id = "ABC127", .recipient = "v@example.org", .relay = "none", .arrival_usec = T0,
          .active_usec = T0, .handoff_usec = T0, .now_usec = T0, .dsn = "2.0.0", .status = "sent", .text = "" },
};

static void test_log_golden(void **state)
{
        _cleanup_(freep) char *golden = read_file(TERN_SOURCE_ROOT "/tests/unit/lib/golden/delivery-log.ref");
        char *line = golden;

        for (size_t i = 0; i < ELEMENTSOF(log_cases); i++) {
                _cleanup_(freep) char *got = NULL;
                char *eol = strchr(line, '\n');

                if (!eol)
                        fail_msg("golden/delivery-log.ref has fewer lines than the %zu cases", ELEMENTSOF(log_cases));
                *eol = '\0';
                assert_int_equal(delivery_log_format(&log_cases[i], &got), 0);
                if (!streq(got, line))
                        fail_msg("case %zu:\n got: %s\nwant: %s", i, got, line);
                line = eol + 1;
        }
        if (*line)
                fail_msg("golden/delivery-log.ref has more lines than cases: %s", line);
}

typedef struct Captured {
        int priority;
        char message[1024];
        char fields[8][256];
        size_t n_fields;
        size_t n;
} Captured;

static void sink(int priority, const char *message, const char *const *fields, void *userdata)
{
        Captured *c = userdata;

        c->n++;
        c->priority = priority;
        snprintf(c->message, sizeof(c->message), "%s", message);
        c->n_fields = 0;
        for (size_t i = 0; fields && fields[i] && i < 8; i++)
                snprintf(c->fields[c->n_fields++], sizeof(c->fields[0]), "%s", fields[i]);
}

static bool has_field(const Captured *c, const char *f)
{
        for (size_t i = 0; i < c->n_fields; i++)
                if (streq(c->fields[i], f))
                        return true;
        return false;
}

static void test_log_fields(void **state)
{
        Captured c = {};
        _cleanup_(freep) char *want = NULL;

        log_set_sink(sink, &c);
        delivery_log(&log_cases[0]);
        log_set_sink(NULL, NULL);
        assert_int_equal(c.n, 1);
        assert_int_equal(c.priority, LOG_INFO);
        assert_int_equal(delivery_log_format(&log_cases[0], &want), 0);
        assert_string_equal(c.message, want);
        assert_true(has_field(&c, "TERN_QUEUE_ID=19B6B2900FE"));
        assert_true(has_field(&c, "TERN_RECIPIENT=wietse@test.example.com"));
        assert_true(has_field(&c, "TERN_RELAY=mail.example.com[1.2.3.4]"));
        assert_true(has_field(&c, "TERN_STATUS=sent"));
        assert_true(has_field(&c, "TERN_DSN=2.0.0"));
}

/* delivery_dsn_split: Postfix's dsn_split() as discard(8) and error(8) use it on the nexthop */
static void test_dsn_split(void **state)
{
        static const struct {
                const char *def, *text, *dsn, *rest;
        } table[] = {
                { "5.0.0", "mailbox unavailable", "5.0.0", "mailbox unavailable" },
                { "5.0.0", "5.1.1 no such user", "5.1.1", "no such user" },
                { "5.0.0", "  5.1.1\t  no such user", "5.1.1", "no such user" },
                { "4.0.0", "4.7.1", "4.7.1", "" },
                { "5.0.0", "4.7.1 try later", "4.7.1", "try later" },      /* the class is the caller's check */
                { "2.0.0", "example.com", "2.0.0", "example.com" },
                { "2.0.0", "5.1.1x nope", "2.0.0", "5.1.1x nope" },
                { "2.0.0", "2.0.1000 x", "2.0.0", "2.0.1000 x" },
                { "2.0.0", "", "2.0.0", "" },
                { "2.0.0", "   ", "2.0.0", "" },
                { "2.0.0", "2.0.0.0 x", "2.0.0", "2.0.0.0 x" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                char dsn[DELIVERY_DSN_MAX];
                const char *rest = delivery_dsn_split(table[i].def, table[i].text, dsn);

                if (!streq(dsn, table[i].dsn) || !streq(rest, table[i].rest))
                        fail_msg("dsn_split(%s, \"%s\") = %s \"%s\" want %s \"%s\"", table[i].def, table[i].text, dsn,
                                 rest, table[i].dsn, table[i].rest);
        }
}

static int setup(void **state)
{
        test_fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        test_fds[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return test_fds[0] < 0 || test_fds[1] < 0;
}

static int teardown(void **state)
{
        close_many(test_fds, 2);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_decode),   cmocka_unit_test(test_request_round_trip),
                cmocka_unit_test(test_request_bad_fields), cmocka_unit_test(test_request_limits),
                cmocka_unit_test(test_reply_round_trip), cmocka_unit_test(test_reply_garbage),
                cmocka_unit_test(test_status_names),     cmocka_unit_test(test_dsn_valid),
                cmocka_unit_test(test_format_delay),     cmocka_unit_test(test_log_golden),
                cmocka_unit_test(test_log_fields),       cmocka_unit_test(test_dsn_split),
        };

        return cmocka_run_group_tests_name("delivery", tests, setup, teardown);
}
