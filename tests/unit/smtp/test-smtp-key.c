/* SPDX-License-Identifier: MIT */
/*
 * test-smtp-key.c - connection cache labels (src/smtp/smtp-key.c): the exact bytes Postfix's
 * smtp_key.c writes, the "*" placeholder for an empty field, base64 for a field that holds the
 * delimiter or the placeholder (so that different field lists never collide).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp-key.h"

static void check_dest(const char *service, const char *dest, const char *want)
{
        char *got = NULL;

        assert_int_equal(smtp_cache_dest_label(service, dest, &got), 0);
        if (strcmp(got, want) != 0)
                fail_msg("dest label for (%s, %s): want \"%s\" got \"%s\"", service, dest, want, got);
        free(got);
}

static void test_dest_label(void **state)
{
        check_dest("smtp", "example.com", "smtp\nexample.com\n0\n0\n0\n");
        check_dest("relay", "[10.0.0.1]:2525", "relay\n[10.0.0.1]:2525\n0\n0\n0\n");
        check_dest("lmtp", "unix:/run/lmtp", "lmtp\nunix:/run/lmtp\n0\n0\n0\n");
        check_dest("", "example.com", "*\nexample.com\n0\n0\n0\n");
        /* the placeholder and the delimiter inside a field: base64 */
        check_dest("smtp", "*", "smtp\nKg==\n0\n0\n0\n");
        check_dest("smtp", "a\nb", "smtp\nYQpi\n0\n0\n0\n");
        check_dest("smtp", "ab*", "smtp\nYWIq\n0\n0\n0\n");
        check_dest("smtp", "abcd\n", "smtp\nYWJjZAo=\n0\n0\n0\n");
}

static void test_endp_label(void **state)
{
        char *got = NULL;

        assert_int_equal(smtp_cache_endp_label("smtp", "127.0.0.1", 25, &got), 0);
        assert_string_equal(got, "smtp\n127.0.0.1\n25\n0\n0\n0\n");
        free(got);
        assert_int_equal(smtp_cache_endp_label("relay", "2001:db8::1", 65535, &got), 0);
        assert_string_equal(got, "relay\n2001:db8::1\n65535\n0\n0\n0\n");
        free(got);
}

/* a destination label and an endpoint label never collide, nor do labels of different services */
static void test_distinct(void **state)
{
        char *a = NULL, *b = NULL, *c = NULL;

        assert_int_equal(smtp_cache_dest_label("smtp", "127.0.0.1", &a), 0);
        assert_int_equal(smtp_cache_endp_label("smtp", "127.0.0.1", 25, &b), 0);
        assert_int_equal(smtp_cache_dest_label("relay", "127.0.0.1", &c), 0);
        assert_string_not_equal(a, b);
        assert_string_not_equal(a, c);
        free(a);
        free(b);
        free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dest_label),
                cmocka_unit_test(test_endp_label),
                cmocka_unit_test(test_distinct),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
