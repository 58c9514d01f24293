/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>

#include "util/timefmt.h"

static void test_format(void **state) {
        char buf[TIMEFMT_RFC3339_MAX];
        assert_int_equal(timefmt_rfc3339(0, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "1970-01-01T00:00:00Z");
        assert_int_equal(timefmt_rfc3339(1795921200, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "2026-11-29T03:00:00Z");
        struct timespec ts = {1795921200, 123456789};
        assert_int_equal(timefmt_rfc3339_micro(&ts, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "2026-11-29T03:00:00.123456Z");
        char tiny[8];
        assert_int_equal(timefmt_rfc3339(0, tiny, sizeof(tiny)), -EINVAL);
        assert_int_equal(timefmt_rfc3339_micro(&ts, tiny, sizeof(tiny)), -EINVAL);
}

static void test_parse(void **state) {
        struct timespec ts = {7, 7};
        assert_int_equal(timefmt_parse_rfc3339("2026-11-29T03:00:00Z", &ts), 0);
        assert_int_equal(ts.tv_sec, 1795921200);
        assert_int_equal(ts.tv_nsec, 0);
        assert_int_equal(timefmt_parse_rfc3339("2026-11-29T03:00:00.5Z", &ts), 0);
        assert_int_equal(ts.tv_nsec, 500000000);
        assert_int_equal(timefmt_parse_rfc3339("2026-11-29T04:30:00+01:30", &ts), 0);
        assert_int_equal(ts.tv_sec, 1795921200);
        const char *bad[] = {"",
                             "2026-11-29",
                             "2026-11-29T03:00:00",
                             "2026-13-29T03:00:00Z",
                             "2026-11-29T03:00:00Zjunk",
                             "2026-11-29T03:00:00.Z",
                             "x"};
        ts.tv_sec = 42;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(timefmt_parse_rfc3339(bad[i], &ts), -EINVAL);
        assert_int_equal(ts.tv_sec, 42);
        assert_int_equal(timefmt_parse_rfc3339(NULL, &ts), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_format),
            cmocka_unit_test(test_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
