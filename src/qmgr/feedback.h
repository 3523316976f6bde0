/* SPDX-License-Identifier: MIT */
/*
 * feedback.h - concurrency windows, their feedback, and backoff: qmgr_feedback.c and the window
 * arithmetic of qmgr_queue.c, as pure functions (postfix-semantics.md §3.7, §3.10)
 *
 * A destination's window is how many deliveries to it may run at once. It starts at
 * initial_destination_concurrency, grows with positive feedback after deliveries whose
 * destination answered, shrinks with negative feedback after connection-level failures, and
 * drops to 0 (dead) when a whole cohort of deliveries failed (failed_cohort_limit). Feedback is
 * "x", "x/y" or "x/concurrency" (1/N of the window), in [0, 1].
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Feedback {
        double value;                   /* x or x/y */
        bool per_concurrency;           /* x/concurrency: value / window */
} Feedback;

/* feedback_parse - "1", "0.5", "1/4", "1/concurrency"; -EINVAL for anything else or outside [0, 1] */
int feedback_parse(const char *s, Feedback *ret);
double feedback_value(const Feedback *f, int window);

typedef struct WindowParams {
        int init;                       /* initial_destination_concurrency, capped by the limit */
        int limit;                      /* destination_concurrency_limit, 0: none */
        Feedback positive, negative;
        int cohort_limit;               /* failed_cohort_limit, 0: never dead */
} WindowParams;

typedef struct Window {
        int window;                     /* > 0 ready; 0 dead (throttled) */
        double success, failure, fail_cohorts;
} Window;

void window_init(Window *w, const WindowParams *p);
static inline bool window_dead(const Window *w)
{
        return w->window <= 0;
}
/* window_unthrottle - positive feedback after a delivery whose destination answered; a dead
 * window comes back at BUSY (if > 0) or the initial concurrency */
void window_unthrottle(Window *w, const WindowParams *p, int busy);
/* window_throttle - negative feedback after a connection-level failure; true if now dead */
bool window_throttle(Window *w, const WindowParams *p);

/* backoff_next_delay - §3.10: the message's age clamped to [min, max] (min if age unknown, < 0) */
int64_t backoff_next_delay(int64_t age, int64_t minimal_backoff, int64_t maximal_backoff);
