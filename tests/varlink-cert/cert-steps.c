/* SPDX-License-Identifier: MIT */
/*
 * cert-steps.c - the values of the org.varlink.certification sequence, and a matcher by varlink type
 *
 * The values are those of varlink-go-certification (and of libvarlink's and the Rust
 * implementation's certification servers): each call takes the previous reply, so the table's
 * "call" of one step is the "reply" of the step before it. MyType's "nullable" and
 * "nullable_array_struct" are null; Go omits them, others send null, and both match.
 *
 * Limits: the matcher compares floats exactly, which is right here (every value is written by
 * a float formatter that round-trips: jansson's %.17g, Go's shortest representation).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert-steps.h"
#include "varlink.h"

#define CERT_METHOD(name) CERT_INTERFACE "." name

#define CERT_PI "3.141592653589793"
#define CERT_STRUCT "{\"bool\": false, \"int\": 2, \"float\": " CERT_PI ", \"string\": \"a lot of string\"}"
#define CERT_MAP "{\"bar\": \"Bar\", \"foo\": \"Foo\"}"
#define CERT_SET "{\"one\": {}, \"two\": {}, \"three\": {}}"
#define CERT_MYTYPE                                                                                   \
        "{\"object\": {\"method\": \"org.varlink.certification.Test09\","                              \
        " \"parameters\": {\"map\": {\"foo\": \"Foo\", \"bar\": \"Bar\"}}},"                           \
        " \"enum\": \"two\","                                                                        \
        " \"struct\": {\"first\": 1, \"second\": \"2\"},"                                            \
        " \"array\": [\"one\", \"two\", \"three\"],"                                                 \
        " \"dictionary\": {\"foo\": \"Foo\", \"bar\": \"Bar\"},"                                     \
        " \"stringset\": {\"one\": {}, \"two\": {}, \"three\": {}},"                                 \
        " \"nullable\": null,"                                                                       \
        " \"nullable_array_struct\": null,"                                                          \
        " \"interface\": {\"foo\": [null, {\"Foo\": \"foo\", \"Bar\": \"bar\"}, null,"               \
        " {\"one\": \"foo\", \"two\": \"bar\"}], \"anon\": {\"foo\": true, \"bar\": false}}}"
#define CERT_MORE_LIST                                                                                \
        "[\"Reply number 1\", \"Reply number 2\", \"Reply number 3\", \"Reply number 4\","             \
        " \"Reply number 5\", \"Reply number 6\", \"Reply number 7\", \"Reply number 8\","            \
        " \"Reply number 9\", \"Reply number 10\"]"

const CertStep cert_steps[_CERT_STEP_MAX] = {
        [CERT_START] = { CERT_METHOD("Start"), 0, "{}", NULL },
        [CERT_TEST01] = { CERT_METHOD("Test01"), 0, "{}", "{\"bool\": true}" },
        [CERT_TEST02] = { CERT_METHOD("Test02"), 0, "{\"bool\": true}", "{\"int\": 1}" },
        [CERT_TEST03] = { CERT_METHOD("Test03"), 0, "{\"int\": 1}", "{\"float\": 1.0}" },
        [CERT_TEST04] = { CERT_METHOD("Test04"), 0, "{\"float\": 1.0}", "{\"string\": \"ping\"}" },
        [CERT_TEST05] = { CERT_METHOD("Test05"), 0, "{\"string\": \"ping\"}", CERT_STRUCT },
        [CERT_TEST06] = { CERT_METHOD("Test06"), 0, CERT_STRUCT, "{\"struct\": " CERT_STRUCT "}" },
        [CERT_TEST07] = { CERT_METHOD("Test07"), 0, "{\"struct\": " CERT_STRUCT "}",
                          "{\"map\": " CERT_MAP "}" },
        [CERT_TEST08] = { CERT_METHOD("Test08"), 0, "{\"map\": " CERT_MAP "}", "{\"set\": " CERT_SET "}" },
        [CERT_TEST09] = { CERT_METHOD("Test09"), 0, "{\"set\": " CERT_SET "}",
                          "{\"mytype\": " CERT_MYTYPE "}" },
        [CERT_TEST10] = { CERT_METHOD("Test10"), VARLINK_CALL_MORE, "{\"mytype\": " CERT_MYTYPE "}", NULL },
        [CERT_TEST11] = { CERT_METHOD("Test11"), VARLINK_CALL_ONEWAY,
                          "{\"last_more_replies\": " CERT_MORE_LIST "}", NULL },
        [CERT_END] = { CERT_METHOD("End"), 0, "{}", "{\"all_ok\": true}" },
};

json_t *cert_json(const char *text)
{
        json_error_t err;
        json_t *v;

        v = json_loads(text, JSON_REJECT_DUPLICATES, &err);
        if (!v) {
                fprintf(stderr, "cert-steps: bad table entry (%s at %d): %s\n", err.text, err.position,
                        text);
                abort();
        }
        return v;
}

json_t *cert_more_reply(unsigned n)
{
        char text[64];

        snprintf(text, sizeof(text), "Reply number %u", n);
        return json_pack("{s:s}", "string", text);
}

bool cert_json_match(const json_t *want, const json_t *got)
{
        if (!want || json_is_null(want))
                return !got || json_is_null(got);
        if (!got)
                return false;

        switch (json_typeof(want)) {
        case JSON_OBJECT: {
                const char *key;
                json_t *v;

                if (!json_is_object(got))
                        return false;
                json_object_foreach((json_t *) want, key, v)
                        if (!cert_json_match(v, json_object_get(got, key)))
                                return false;
                /* Members the peer added must be null: absent in WANT. */
                json_object_foreach((json_t *) got, key, v)
                        if (!json_object_get(want, key) && !json_is_null(v))
                                return false;
                return true;
        }
        case JSON_ARRAY:
                if (!json_is_array(got) || json_array_size(got) != json_array_size(want))
                        return false;
                for (size_t i = 0; i < json_array_size(want); i++)
                        if (!cert_json_match(json_array_get(want, i), json_array_get(got, i)))
                                return false;
                return true;
        case JSON_STRING:
                return json_is_string(got) && json_string_length(got) == json_string_length(want) &&
                       memcmp(json_string_value(got), json_string_value(want),
                              json_string_length(want)) == 0;
        case JSON_INTEGER:
                return json_is_integer(got) && json_integer_value(got) == json_integer_value(want);
        case JSON_REAL:
                return json_is_number(got) && json_number_value(got) == json_number_value(want);
        case JSON_TRUE:
        case JSON_FALSE:
                return json_is_boolean(got) && json_is_true(got) == json_is_true(want);
        case JSON_NULL:
                break;
        }
        return false;
}

char *cert_json_text(const json_t *value)
{
        if (!value)
                return strdup("(absent)");
        return json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
}
