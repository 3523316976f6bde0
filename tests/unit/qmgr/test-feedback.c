/* SPDX-License-Identifier: MIT */
/*
 * test-feedback.c - destination concurrency windows against Postfix's arithmetic
 * (qmgr_queue_unthrottle / qmgr_queue_throttle, postfix-semantics.md §3.7) and backoff (§3.10)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "feedback.h"

static WindowParams params(int init, int limit, const char *pos, const char *neg, int cohorts)
{
        WindowParams p = { .init = init, .limit = limit, .cohort_limit = cohorts };

        assert_int_equal(feedback_parse(pos, &p.positive), 0);
        assert_int_equal(feedback_parse(neg, &p.negative), 0);
        return p;
}

static void test_parse(void **state)
{
        Feedback f;

        assert_int_equal(feedback_parse("1", &f), 0);
        assert_true(f.value == 1 && !f.per_concurrency);
        assert_int_equal(feedback_parse("0.5", &f), 0);
        assert_true(f.value == 0.5);
        assert_int_equal(feedback_parse("1/4", &f), 0);
        assert_true(f.value == 0.25 && !f.per_concurrency);
        assert_int_equal(feedback_parse("1/concurrency", &f), 0);
        assert_true(f.value == 1 && f.per_concurrency);
        assert_true(feedback_value(&f, 4) == 0.25);
        assert_int_equal(feedback_parse("0", &f), 0);

        const char *bad[] = { "", "2", "-1", "abc", "1/0", "1/x", "1/", "1x", "nan", "1/-2", "1/concurrencyx" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(feedback_parse(bad[i], &f), -EINVAL);
}

/* slow start: +1 per delivery while the window is below busy + init, up to the limit */
static void test_positive(void **state)
{
        WindowParams p = params(5, 20, "1", "1", 1);
        Window w;

        window_init(&w, &p);
        assert_int_equal(w.window, 5);
        /* busy 5: window may grow to 9 */
        for (int i = 0; i < 10; i++)
                window_unthrottle(&w, &p, 5);
        assert_int_equal(w.window, 10);         /* stops once window >= busy + init (10) */
        for (int i = 0; i < 100; i++)
                window_unthrottle(&w, &p, 100);
        assert_int_equal(w.window, 20);         /* the limit */

        /* no load, no growth */
        window_init(&w, &p);
        window_unthrottle(&w, &p, 0);
        assert_int_equal(w.window, 5);
}

static void test_positive_per_concurrency(void **state)
{
        WindowParams p = params(4, 0, "1/concurrency", "1", 1);
        Window w;

        window_init(&w, &p);
        /* g = 1/4: success .25 .5 .75 (with g/2 = .125 below 1), then 1.0 -> window 5 */
        for (int i = 0; i < 3; i++) {
                window_unthrottle(&w, &p, 4);
                assert_int_equal(w.window, 4);
        }
        window_unthrottle(&w, &p, 4);
        assert_int_equal(w.window, 5);
}

/* negative feedback: Postfix's reverse hysteresis; the cohort limit declares it dead */
static void test_negative_and_dead(void **state)
{
        WindowParams p = params(5, 20, "1", "1", 1);
        Window w;

        window_init(&w, &p);
        /* fail_cohorts 1/5; failure -1 -> two decrements (-1-0.5 < 0, 0-0.5 < 0) */
        assert_false(window_throttle(&w, &p));
        assert_int_equal(w.window, 3);
        assert_true(w.failure == 1);
        /* fail_cohorts 0.2 + 1/3; failure 0 -> one decrement */
        assert_false(window_throttle(&w, &p));
        assert_int_equal(w.window, 2);
        /* fail_cohorts 0.533 + 0.5 >= 1: dead */
        assert_true(window_throttle(&w, &p));
        assert_true(window_dead(&w));
        assert_int_equal(w.window, 0);

        /* back from dead: at what is running, else the initial concurrency */
        window_unthrottle(&w, &p, 3);
        assert_int_equal(w.window, 3);
        assert_true(w.fail_cohorts == 0 && w.success == 0 && w.failure == 0);
        assert_true(window_throttle(&w, &p) == false);
        w.window = 0;
        window_unthrottle(&w, &p, 0);
        assert_int_equal(w.window, 5);
}

static void test_success_resets_cohorts(void **state)
{
        WindowParams p = params(2, 20, "1", "1", 1);
        Window w;

        window_init(&w, &p);
        /* failure, success, failure, ... never dies: each success clears fail_cohorts */
        for (int i = 0; i < 50; i++) {
                assert_false(window_throttle(&w, &p));
                window_unthrottle(&w, &p, 1);
        }
        assert_false(window_dead(&w));
}

static void test_no_cohort_limit(void **state)
{
        WindowParams p = params(5, 20, "1", "1", 0);
        Window w;

        window_init(&w, &p);
        for (int i = 0; i < 100; i++)
                assert_false(window_throttle(&w, &p));
        assert_int_equal(w.window, 1);          /* never below 1 */
}

static void test_backoff(void **state)
{
        assert_int_equal(backoff_next_delay(-1, 300, 4000), 300);
        assert_int_equal(backoff_next_delay(0, 300, 4000), 300);
        assert_int_equal(backoff_next_delay(299, 300, 4000), 300);
        assert_int_equal(backoff_next_delay(1000, 300, 4000), 1000);
        assert_int_equal(backoff_next_delay(4000, 300, 4000), 4000);
        assert_int_equal(backoff_next_delay(86400, 300, 4000), 4000);
        /* maximal below minimal: minimal wins, as Postfix's clamping does */
        assert_int_equal(backoff_next_delay(86400, 300, 100), 300);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_positive),
                cmocka_unit_test(test_positive_per_concurrency),
                cmocka_unit_test(test_negative_and_dead),
                cmocka_unit_test(test_success_resets_cohorts),
                cmocka_unit_test(test_no_cohort_limit),
                cmocka_unit_test(test_backoff),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
