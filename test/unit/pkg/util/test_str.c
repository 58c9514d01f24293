/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/str.h"

static void test_dup_opt(void **state) {
        char *d = (char *)0x1;
        assert_int_equal(str_dup_opt(NULL, &d), 0);
        assert_null(d);

        const char *s = "value";
        assert_int_equal(str_dup_opt(s, &d), 0);
        assert_non_null(d);
        assert_ptr_not_equal(d, s);
        assert_string_equal(d, s);
        free(d);

        assert_int_equal(str_dup_opt("", &d), 0);
        assert_string_equal(d, "");
        free(d);
}

static void test_utf8_cut(void **state) {
        /* fits: untouched */
        assert_int_equal(str_utf8_cut("abc", 3, 3), 3);
        assert_int_equal(str_utf8_cut("abc", 3, 10), 3);
        assert_int_equal(str_utf8_cut("", 0, 0), 0);
        /* ASCII: cut at max */
        assert_int_equal(str_utf8_cut("abcdef", 6, 4), 4);
        assert_int_equal(str_utf8_cut("abcdef", 6, 0), 0);

        /* "aé€" = 61 | c3 a9 | e2 82 ac: never inside a sequence */
        const char *s = "a\xc3\xa9\xe2\x82\xac";
        size_t n = strlen(s);
        assert_int_equal(n, 6);
        assert_int_equal(str_utf8_cut(s, n, 1), 1);
        assert_int_equal(str_utf8_cut(s, n, 2), 1); /* would split é */
        assert_int_equal(str_utf8_cut(s, n, 3), 3);
        assert_int_equal(str_utf8_cut(s, n, 4), 3); /* would split € */
        assert_int_equal(str_utf8_cut(s, n, 5), 3);
        assert_int_equal(str_utf8_cut(s, n, 6), 6);

        /* only the len bytes count, not the NUL */
        assert_int_equal(str_utf8_cut("abcdef", 2, 4), 2);
        /* continuation bytes only: nothing can be kept */
        assert_int_equal(str_utf8_cut("\x80\x80\x80", 3, 2), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dup_opt),
            cmocka_unit_test(test_utf8_cut),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
