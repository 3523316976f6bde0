/* SPDX-License-Identifier: MIT */
/*
 * test-queue-filter.c - decoding io.tern.Queue's Filter: every field, every refusal, and the
 * empty filter that changes may not use
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "queue-filter.h"

/* the JSON of the last decode: the filter (and a bad field's name) borrow from it */
static json_t *last;

static int decode(const char *text, QmgrFilter *f, const char **bad)
{
        json_error_t err;

        json_decref(last);
        last = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!last)
                fail_msg("test JSON: %s: %s", text, err.text);
        *bad = NULL;
        return qmgr_filter_from_json(last, f, bad);
}

static void test_everything(void **state)
{
        QmgrFilter f;
        const char *bad = NULL;

        assert_int_equal(qmgr_filter_from_json(NULL, &f, &bad), 0);
        assert_true(f.all);
        assert_int_equal(f.queue, QUEUE_INVALID);
        assert_int_equal(f.older_than, -1);
        assert_false(qmgr_filter_empty(&f));
        assert_int_equal(decode("null", &f, &bad), 0);
        assert_true(f.all);
}

static void test_fields(void **state)
{
        QmgrFilter f;
        const char *bad;

        assert_int_equal(decode("{\"queue\":\"deferred\",\"olderThan\":60,\"all\":false}", &f, &bad), 0);
        assert_int_equal(f.queue, QUEUE_DEFERRED);
        assert_int_equal(f.older_than, 60);
        assert_false(f.all);
        assert_false(qmgr_filter_empty(&f));

        assert_int_equal(decode("{}", &f, &bad), 0);
        assert_true(qmgr_filter_empty(&f));
        assert_int_equal(decode("{\"all\":false,\"sender\":null}", &f, &bad), 0);
        assert_true(qmgr_filter_empty(&f));
        assert_int_equal(decode("{\"queueIds\":[\"4jY3Tr37NJz1bvsj\"]}", &f, &bad), 0);
        assert_false(qmgr_filter_empty(&f));
        assert_int_equal(decode("{\"sender\":\"\"}", &f, &bad), 0);      /* the null sender */
        assert_false(qmgr_filter_empty(&f));
}

static void test_refused(void **state)
{
        static const struct {
                const char *json, *bad;
        } cases[] = {
                { "[]", "filter" },
                { "3", "filter" },
                { "{\"queueIds\":\"4jY3Tr37NJz1bvsj\"}", "queueIds" },
                { "{\"queueIds\":[\"../etc/passwd\"]}", "queueIds" },
                { "{\"queueIds\":[\"\"]}", "queueIds" },
                { "{\"queueIds\":[1]}", "queueIds" },
                { "{\"sender\":1}", "sender" },
                { "{\"sender\":\"a\\u0000b\"}", "sender" },
                { "{\"recipient\":true}", "recipient" },
                { "{\"recipientDomain\":[]}", "recipientDomain" },
                { "{\"queue\":\"maildrop\"}", "queue" },
                { "{\"queue\":7}", "queue" },
                { "{\"all\":\"yes\"}", "all" },
                { "{\"olderThan\":-1}", "olderThan" },
                { "{\"olderThan\":1.5}", "olderThan" },
                { "{\"site\":\"example.com\"}", "site" },
        };
        QmgrFilter f;
        const char *bad;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_int_equal(decode(cases[i].json, &f, &bad), -EINVAL);
                assert_non_null(bad);
                if (strcmp(bad, cases[i].bad) != 0)
                        fail_msg("%s: bad field %s, want %s", cases[i].json, bad, cases[i].bad);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_everything),
                cmocka_unit_test(test_fields),
                cmocka_unit_test(test_refused),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);

        json_decref(last);
        return r;
}
