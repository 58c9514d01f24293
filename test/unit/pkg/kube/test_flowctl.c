/* SPDX-License-Identifier: Apache-2.0 */
/* The client's AIMD window (flowctl.h), on a clock driven by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kube/flowctl.h"

/* Fills the window at `now`: as many starts as it allows. Returns how many. */
static unsigned fill(kube_flowctl *f, double now) {
        unsigned n = 0;
        while (kube_flowctl_may_start(f, now, NULL)) {
                kube_flowctl_started(f);
                n++;
        }
        return n;
}

/* One round trip of a full window answered by `status` after `rtt`. */
static void round_trip(kube_flowctl *f, double *now, double rtt, long status, double retry_after) {
        double started = *now;
        unsigned n = fill(f, started);
        *now += rtt;
        for (unsigned i = 0; i < n; i++)
                kube_flowctl_done(f, *now, started, status, retry_after, true);
}

static void test_window_bounds_starts(void **state) {
        kube_flowctl f;
        kube_flowctl_init(&f, 8, 128, 0);
        assert_int_equal(kube_flowctl_limit(&f), 8);
        assert_int_equal(fill(&f, 0), 8);
        double wait = -1;
        assert_false(kube_flowctl_may_start(&f, 0, &wait));
        assert_float_equal(wait, 0, 0); /* waits for an answer, not for a time */
        kube_flowctl_done(&f, 0.002, 0, 200, 0, true);
        assert_true(kube_flowctl_may_start(&f, 0.002, NULL));
        /* a cancelled request frees its slot too */
        kube_flowctl_started(&f);
        kube_flowctl_abandon(&f);
        assert_true(kube_flowctl_may_start(&f, 0.002, NULL));
        /* clamps */
        kube_flowctl_init(&f, 0, 0, 0);
        assert_int_equal(kube_flowctl_limit(&f), 1);
        kube_flowctl_init(&f, 50, 10, 0);
        assert_int_equal(kube_flowctl_limit(&f), 10);
}

static void test_grows_while_prompt(void **state) {
        kube_flowctl f;
        double now = 0;
        kube_flowctl_init(&f, 8, 128, now);
        /* about one more per full window of prompt answers: 8 round trips, 8 + 4..8 */
        for (int i = 0; i < 8; i++) round_trip(&f, &now, 0.002, 201, 0);
        assert_in_range(kube_flowctl_limit(&f), 12, 16);
        for (int i = 0; i < 10000; i++) round_trip(&f, &now, 0.002, 200, 0);
        assert_int_equal(kube_flowctl_limit(&f), 128); /* never past the ceiling */
        assert_int_equal(f.decreases, 0);
}

static void test_idle_client_does_not_grow(void **state) {
        kube_flowctl f;
        kube_flowctl_init(&f, 8, 128, 0);
        /* one request at a time: the window is never used, the server's capacity never tested */
        for (int i = 0; i < 1000; i++) {
                kube_flowctl_started(&f);
                kube_flowctl_done(&f, i * 0.01 + 0.002, i * 0.01, 200, 0, true);
        }
        assert_int_equal(kube_flowctl_limit(&f), 8);
}

static void test_halves_on_429_once_per_round_trip(void **state) {
        kube_flowctl f;
        double now = 0;
        kube_flowctl_init(&f, 64, 128, now);
        /* a whole window of 429s sent together halves once, not 64 times */
        round_trip(&f, &now, 0.002, 429, 0);
        assert_int_equal(kube_flowctl_limit(&f), 32);
        assert_int_equal(f.throttled, 64);
        /* the next window's 429s halve again: the server still refuses */
        round_trip(&f, &now, 0.002, 429, 0);
        assert_int_equal(kube_flowctl_limit(&f), 16);
        round_trip(&f, &now, 0.002, 503, 0);
        assert_int_equal(kube_flowctl_limit(&f), 8);
        for (int i = 0; i < 10; i++) round_trip(&f, &now, 0.002, 429, 0);
        assert_int_equal(kube_flowctl_limit(&f), 1); /* never below one */
        assert_true(kube_flowctl_may_start(&f, now, NULL));
        /* and it recovers additively */
        for (int i = 0; i < 3; i++) round_trip(&f, &now, 0.002, 200, 0);
        assert_in_range(kube_flowctl_limit(&f), 2, 4);
}

static void test_retry_after_holds_every_start(void **state) {
        kube_flowctl f;
        kube_flowctl_init(&f, 8, 128, 0);
        kube_flowctl_started(&f);
        kube_flowctl_done(&f, 1.0, 0.999, 429, 5, true);
        double wait = 0;
        assert_false(kube_flowctl_may_start(&f, 1.0, &wait));
        assert_float_equal(wait, 5, 1e-9);
        assert_false(kube_flowctl_may_start(&f, 5.9, &wait));
        assert_float_equal(wait, 0.1, 1e-9);
        assert_true(kube_flowctl_may_start(&f, 6.0, NULL));
        /* a 5xx with Retry-After holds too; a huge one is capped */
        kube_flowctl_started(&f);
        kube_flowctl_done(&f, 10, 9.9, 500, 1e9, true);
        assert_false(kube_flowctl_may_start(&f, 10 + KUBE_FLOWCTL_MAX_HOLD_S - 1, NULL));
        assert_true(kube_flowctl_may_start(&f, 10 + KUBE_FLOWCTL_MAX_HOLD_S, NULL));
        /* a Retry-After on a 2xx means nothing */
        kube_flowctl_started(&f);
        kube_flowctl_done(&f, 100, 99.9, 200, 30, true);
        assert_true(kube_flowctl_may_start(&f, 100, NULL));
}

static void test_halves_on_rising_latency(void **state) {
        kube_flowctl f;
        double now = 0;
        kube_flowctl_init(&f, 32, 128, now);
        round_trip(&f, &now, 0.002, 200, 0); /* base latency 2 ms */
        unsigned before = kube_flowctl_limit(&f);
        /* within 4 x base + 100 ms: still prompt */
        round_trip(&f, &now, 0.09, 200, 0);
        assert_true(kube_flowctl_limit(&f) >= before);
        /* a second: the server queues */
        round_trip(&f, &now, 1.0, 200, 0);
        assert_int_equal(kube_flowctl_limit(&f), before / 2);
        /* unmeasured answers (a large LIST page) and transport failures say nothing */
        unsigned l = kube_flowctl_limit(&f);
        double started = now;
        fill(&f, now);
        now += 5;
        kube_flowctl_done(&f, now, started, 200, 0, false);
        kube_flowctl_done(&f, now, started, 0, 0, true);
        assert_int_equal(kube_flowctl_limit(&f), l);
}

static void test_slow_server_becomes_the_norm(void **state) {
        kube_flowctl f;
        double now = 0;
        kube_flowctl_init(&f, 8, 128, now);
        round_trip(&f, &now, 0.001, 200, 0);
        /* the server got slower for good (0.5 s): after two base periods that is the norm */
        for (int i = 0; i < 200; i++) round_trip(&f, &now, 0.5, 200, 0);
        unsigned l = kube_flowctl_limit(&f);
        for (int i = 0; i < 200; i++) round_trip(&f, &now, 0.5, 200, 0);
        assert_true(kube_flowctl_limit(&f) > l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_window_bounds_starts),
            cmocka_unit_test(test_grows_while_prompt),
            cmocka_unit_test(test_idle_client_does_not_grow),
            cmocka_unit_test(test_halves_on_429_once_per_round_trip),
            cmocka_unit_test(test_retry_after_holds_every_start),
            cmocka_unit_test(test_halves_on_rising_latency),
            cmocka_unit_test(test_slow_server_becomes_the_norm),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
