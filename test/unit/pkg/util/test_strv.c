/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/macro.h"
#include "util/strv.h"

static void test_push_contains_free(void **state) {
        char **v = NULL;
        size_t n = 0, cap = 0;
        char word[] = "alpha";

        assert_false(strv_contains(v, n, "alpha"));
        assert_int_equal(strv_push(&v, &n, &cap, word), 0);
        /* a copy is kept: changing the source does not change the vector */
        word[0] = 'A';
        assert_string_equal(v[0], "alpha");
        for (int i = 0; i < 20; i++) assert_int_equal(strv_push(&v, &n, &cap, "x"), 0);
        assert_int_equal(strv_push(&v, &n, &cap, "omega"), 0);
        assert_int_equal(n, 22);
        assert_true(cap >= n);
        assert_true(strv_contains(v, n, "alpha"));
        assert_true(strv_contains(v, n, "omega"));
        assert_false(strv_contains(v, n, "Alpha"));
        /* only the first n strings count */
        assert_false(strv_contains(v, n - 1, "omega"));
        strv_free(v, n);
        strv_free(NULL, 0);
        strv_free(NULL, 3);
}

static void test_copy(void **state) {
        char *src[] = {(char *)"a", (char *)"bb", (char *)""};
        char **d = (char **)0x1;

        assert_int_equal(strv_copy(src, 0, &d), 0);
        assert_null(d);
        assert_int_equal(strv_copy(src, ARRAY_SIZE(src), &d), 0);
        assert_non_null(d);
        for (size_t i = 0; i < ARRAY_SIZE(src); i++) {
                assert_string_equal(d[i], src[i]);
                assert_ptr_not_equal(d[i], src[i]);
        }
        strv_free(d, ARRAY_SIZE(src));
}

static char **make(const char *const *words, size_t n) {
        char **v = calloc(n, sizeof(char *));
        assert_non_null(v);
        for (size_t i = 0; i < n; i++) assert_non_null(v[i] = strdup(words[i]));
        return v;
}

static void test_sort_uniq(void **state) {
        static const char *const words[] = {"b", "a", "c", "a", "b", "b", "", "ab"};
        char **v = make(words, ARRAY_SIZE(words));
        size_t n = strv_sort_uniq(v, ARRAY_SIZE(words));
        static const char *const want[] = {"", "a", "ab", "b", "c"};
        assert_int_equal(n, ARRAY_SIZE(want));
        for (size_t i = 0; i < n; i++) assert_string_equal(v[i], want[i]);
        /* the repeats were freed (valgrind/ASan would see a leak otherwise) */
        strv_free(v, n);

        static const char *const one[] = {"z"};
        v = make(one, 1);
        assert_int_equal(strv_sort_uniq(v, 1), 1);
        assert_string_equal(v[0], "z");
        strv_free(v, 1);
        assert_int_equal(strv_sort_uniq(NULL, 0), 0);
}

static void test_qsort_cmp(void **state) {
        const char *v[] = {"b", "a", "c"};
        qsort(v, ARRAY_SIZE(v), sizeof(char *), strv_qsort_cmp);
        assert_string_equal(v[0], "a");
        assert_string_equal(v[1], "b");
        assert_string_equal(v[2], "c");
        const char *key = "b";
        const char **hit = bsearch(&key, v, ARRAY_SIZE(v), sizeof(char *), strv_qsort_cmp);
        assert_non_null(hit);
        assert_ptr_equal(hit, &v[1]);
        key = "bb";
        assert_null(bsearch(&key, v, ARRAY_SIZE(v), sizeof(char *), strv_qsort_cmp));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_push_contains_free),
            cmocka_unit_test(test_copy),
            cmocka_unit_test(test_sort_uniq),
            cmocka_unit_test(test_qsort_cmp),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
