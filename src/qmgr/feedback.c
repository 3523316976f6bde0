/* SPDX-License-Identifier: MIT */
/*
 * feedback.c - destination concurrency windows and backoff (see feedback.h)
 *
 * The arithmetic is Postfix's, line for line (qmgr_queue_unthrottle, qmgr_queue_throttle,
 * qmgr_feedback.c), including its "reverse hysteresis": a failure takes one off the window
 * first and then pays it back in the failure accumulator, a success adds to the window only
 * while the window is below busy + init (no growth without the load to use it).
 * Postfix's sqrt_concurrency form is compiled out there and not offered here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "feedback.h"

int feedback_parse(const char *s, Feedback *ret)
{
        char *end;
        double x, y = 1;
        bool per_concurrency = false;

        if (!s || !ret)
                return -EINVAL;
        errno = 0;
        x = strtod(s, &end);
        if (errno || end == s)
                return -EINVAL;
        if (*end == '/') {
                const char *d = end + 1;
                if (strcmp(d, "concurrency") == 0)
                        per_concurrency = true;
                else {
                        errno = 0;
                        y = strtod(d, &end);
                        if (errno || end == d || *end || y <= 0)
                                return -EINVAL;
                }
        } else if (*end)
                return -EINVAL;
        x /= y;
        if (!(x >= 0 && x <= 1))        /* NaN fails too */
                return -EINVAL;
        *ret = (Feedback) { .value = x, .per_concurrency = per_concurrency };
        return 0;
}

double feedback_value(const Feedback *f, int window)
{
        if (f->per_concurrency)
                return window > 0 ? f->value / window : f->value;
        return f->value;
}

void window_init(Window *w, const WindowParams *p)
{
        *w = (Window) { .window = p->init > 0 ? p->init : 1 };
}

void window_unthrottle(Window *w, const WindowParams *p, int busy)
{
        double g;

        if (window_dead(w)) {
                /* back from dead: what is running, else a fresh start */
                *w = (Window) { .window = busy > 0 ? busy : (p->init > 0 ? p->init : 1) };
                return;
        }
        w->fail_cohorts = 0;
        if ((p->limit == 0 || p->limit > w->window) && w->window < busy + p->init) {
                g = feedback_value(&p->positive, w->window);
                w->success += g;
                while (w->success + g / 2 >= 1) {
                        w->window += 1;
                        w->success -= 1;
                        w->failure = 0;
                }
                if (p->limit > 0 && w->window > p->limit)
                        w->window = p->limit;
        }
}

bool window_throttle(Window *w, const WindowParams *p)
{
        double f;

        if (window_dead(w))
                return true;
        w->fail_cohorts += 1.0 / w->window;
        if (p->cohort_limit > 0 && w->fail_cohorts >= p->cohort_limit) {
                w->window = 0;
                return true;
        }
        f = feedback_value(&p->negative, w->window);
        w->failure -= f;
        /* f == 0 would loop forever in Postfix's form; no feedback means no change */
        if (f > 0)
                while (w->failure - f / 2 < 0) {
                        w->window -= 1;
                        w->success = 0;
                        w->failure += 1;
                }
        if (w->window < 1)
                w->window = 1;
        return false;
}

int64_t backoff_next_delay(int64_t age, int64_t minimal_backoff, int64_t maximal_backoff)
{
        if (maximal_backoff < minimal_backoff)
                maximal_backoff = minimal_backoff;
        if (age < minimal_backoff)
                return minimal_backoff;
        if (age > maximal_backoff)
                return maximal_backoff;
        return age;
}
