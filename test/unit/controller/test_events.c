/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "events.h"

/* With no client the recorder runs its filters and counts what it would send. */
static const pp_object_ref policy = {"pullpolicy.io/v1alpha1", "PullPolicy", "project-b", "p",
                                     "uid-1"};

static void test_dedupe_window(void **state) {
        pp_events *e = NULL;
        assert_int_equal(pp_events_new(NULL, NULL, &e), 0);
        assert_int_equal(pp_events_record(e, &policy, false, "Linked", "linked x", 0), 1);
        /* The same message again inside ten minutes is only counted. */
        assert_int_equal(pp_events_record(e, &policy, false, "Linked", "linked x", 10), 0);
        /* A different message, or the same after the window, goes out. */
        assert_int_equal(pp_events_record(e, &policy, false, "Linked", "linked y", 11), 1);
        assert_int_equal(pp_events_record(e, &policy, false, "Linked", "linked y", 700), 1);
        pp_events_stats st;
        pp_events_get_stats(e, &st);
        assert_int_equal(st.sent, 3);
        assert_int_equal(st.suppressed, 1);
        pp_events_free(e);
}

static void test_spam_filter_per_object(void **state) {
        pp_events *e = NULL;
        pp_events_opts o = {.burst = 3, .refill_seconds = 100};
        assert_int_equal(pp_events_new(NULL, &o, &e), 0);
        char msg[32];
        int sent = 0;
        for (int i = 0; i < 50; i++) {
                snprintf(msg, sizeof(msg), "flap %d", i);
                sent += pp_events_record(e, &policy, true, "Conflict", msg, 1.0);
        }
        assert_int_equal(sent, 3);
        /* Another object has its own bucket. */
        pp_object_ref other = policy;
        other.name = "q";
        assert_int_equal(pp_events_record(e, &other, true, "Conflict", "x", 1.0), 1);
        /* One token returns after the refill interval, not more. */
        assert_int_equal(pp_events_record(e, &policy, true, "Conflict", "late 1", 101.5), 1);
        assert_int_equal(pp_events_record(e, &policy, true, "Conflict", "late 2", 101.5), 0);
        pp_events_free(e);
}

static void test_bounded_memory(void **state) {
        pp_events *e = NULL;
        pp_events_opts o = {.max_objects = 8};
        assert_int_equal(pp_events_new(NULL, &o, &e), 0);
        char name[32];
        for (int i = 0; i < 1000; i++) {
                pp_object_ref r = policy;
                snprintf(name, sizeof(name), "p%d", i);
                r.name = name;
                assert_int_equal(pp_events_record(e, &r, false, "Linked", "m", i), 1);
        }
        pp_events_free(e);
}

static void test_bad_arguments(void **state) {
        pp_events *e = NULL;
        assert_int_equal(pp_events_new(NULL, NULL, &e), 0);
        pp_object_ref r = policy;
        r.name = NULL;
        assert_int_equal(pp_events_record(e, &r, false, "Linked", "m", 0), -EINVAL);
        assert_int_equal(pp_events_record(e, &policy, false, NULL, "m", 0), -EINVAL);
        assert_null(pp_events_free(NULL));
        pp_events_free(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dedupe_window),
            cmocka_unit_test(test_spam_filter_per_object),
            cmocka_unit_test(test_bounded_memory),
            cmocka_unit_test(test_bad_arguments),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
