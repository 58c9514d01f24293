/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kube/ratelimit.h"

static void test_bucket_burst_then_rate(void **state) {
        kube_token_bucket b;
        kube_token_bucket_init(&b, 10, 3, 100.0);
        /* The burst is free, the fourth waits one refill interval. */
        assert_true(kube_token_bucket_reserve(&b, 100.0) == 0);
        assert_true(kube_token_bucket_reserve(&b, 100.0) == 0);
        assert_true(kube_token_bucket_reserve(&b, 100.0) == 0);
        assert_float_equal(kube_token_bucket_reserve(&b, 100.0), 0.1, 1e-9);
        /* Callers queued on credit wait in order. */
        assert_float_equal(kube_token_bucket_reserve(&b, 100.0), 0.2, 1e-9);
        /* After a long pause the bucket is full again, never fuller. */
        assert_true(kube_token_bucket_reserve(&b, 200.0) == 0);
        assert_true(kube_token_bucket_reserve(&b, 200.0) == 0);
        assert_true(kube_token_bucket_reserve(&b, 200.0) == 0);
        assert_true(kube_token_bucket_reserve(&b, 200.0) > 0);
}

static void test_bucket_unlimited(void **state) {
        kube_token_bucket b;
        kube_token_bucket_init(&b, 0, 1, 0);
        for (int i = 0; i < 1000; i++) assert_true(kube_token_bucket_reserve(&b, 0) == 0);
}

static void test_backoff_bounds(void **state) {
        assert_float_equal(kube_backoff_exp(0.005, 1000, 0), 0.005, 1e-12);
        assert_float_equal(kube_backoff_exp(0.005, 1000, 1), 0.010, 1e-12);
        assert_float_equal(kube_backoff_exp(0.005, 1000, 10), 5.12, 1e-9);
        /* Capped, and huge failure counts neither overflow nor loop for long. */
        assert_float_equal(kube_backoff_exp(0.005, 1000, 18), 1000, 1e-9);
        assert_float_equal(kube_backoff_exp(0.005, 1000, 4000000000u), 1000, 1e-9);
        assert_float_equal(kube_backoff_exp(0, 1000, 5), 0, 0);
}

static void test_backoff_jitter_range(void **state) {
        for (int i = 0; i < 1000; i++) {
                double r = kube_random();
                assert_true(r >= 0 && r < 1);
                double d = kube_backoff_jittered(1, 30, 3, 0.5, r);
                assert_true(d >= 4 && d <= 8);
        }
        assert_float_equal(kube_backoff_jittered(1, 30, 3, 0, 0.3), 8, 1e-12);
        /* Out-of-range draws are clamped rather than trusted. */
        assert_true(kube_backoff_jittered(1, 30, 3, 1, 7) <= 8);
        assert_true(kube_backoff_jittered(1, 30, 3, 1, -1) >= 0);
}

static void test_now_monotonic(void **state) {
        double a = kube_now(), b = kube_now();
        assert_true(b >= a);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_bucket_burst_then_rate),
            cmocka_unit_test(test_bucket_unlimited),
            cmocka_unit_test(test_backoff_bounds),
            cmocka_unit_test(test_backoff_jitter_range),
            cmocka_unit_test(test_now_monotonic),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
