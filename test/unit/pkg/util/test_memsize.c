/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/memsize.h"

static void test_str(void **state) {
        assert_int_equal(memsize_str(NULL), 0);
        assert_int_equal(memsize_str(""), 1 + MEMSIZE_OVERHEAD);
        assert_int_equal(memsize_str("abc"), 4 + MEMSIZE_OVERHEAD);
}

static void test_strv(void **state) {
        assert_int_equal(memsize_strv(NULL, 0), 0);
        char *v[] = {(char *)"a", (char *)"bcd"};
        /* the array block and each string block */
        assert_int_equal(memsize_strv(v, 2), 2 * sizeof(char *) + MEMSIZE_OVERHEAD +
                                                 (2 + MEMSIZE_OVERHEAD) + (4 + MEMSIZE_OVERHEAD));
        assert_int_equal(memsize_strv(v, 1), sizeof(char *) + MEMSIZE_OVERHEAD + memsize_str("a"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_str),
            cmocka_unit_test(test_strv),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
