/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/strbuf.h"

static void test_build(void **state) {
        strbuf b = {0};
        strbuf_add(&b, "key");
        strbuf_add(&b, "=");
        strbuf_add_mem(&b, "value-and-more", 5);
        assert_string_equal(b.s, "key=value"); /* NUL-terminated as it grows */
        for (int i = 0; i < 1000; i++) strbuf_add(&b, "0123456789");
        char *out = NULL;
        size_t len = 0;
        assert_int_equal(strbuf_finish(&b, &out, &len), 0);
        assert_int_equal(len, 9 + 10000);
        assert_int_equal(strlen(out), len);
        assert_memory_equal(out, "key=value0123456789", 19);
        assert_memory_equal(out + len - 10, "0123456789", 10);
        free(out);
        /* finishing leaves the buffer empty and reusable */
        assert_null(b.s);
        assert_int_equal(b.len, 0);
        strbuf_add(&b, "again");
        assert_int_equal(strbuf_finish(&b, &out, NULL), 0);
        assert_string_equal(out, "again");
        free(out);
}

static void test_empty(void **state) {
        strbuf b = {0};
        char *out = NULL;
        size_t len = 99;
        assert_int_equal(strbuf_finish(&b, &out, &len), 0);
        assert_non_null(out);
        assert_string_equal(out, "");
        assert_int_equal(len, 0);
        free(out);

        strbuf_add(&b, "");
        assert_int_equal(strbuf_finish(&b, &out, NULL), 0);
        assert_string_equal(out, "");
        free(out);
}

static void test_failed(void **state) {
        /* a failure (here: set by hand, as an out-of-memory add sets it) drops further
         * text and is reported once by finish, which frees what was built */
        strbuf b = {0};
        strbuf_add(&b, "partial");
        b.oom = true;
        strbuf_add(&b, "dropped");
        assert_string_equal(b.s, "partial");
        char *out = (char *)0x1;
        assert_int_equal(strbuf_finish(&b, &out, NULL), -ENOMEM);
        assert_ptr_equal(out, (char *)0x1);
        assert_null(b.s);
        assert_false(b.oom);

        /* a size that cannot be represented fails instead of wrapping around */
        strbuf_add(&b, "x");
        strbuf_add_mem(&b, "y", SIZE_MAX);
        assert_true(b.oom);
        assert_int_equal(strbuf_finish(&b, &out, NULL), -ENOMEM);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_build),
            cmocka_unit_test(test_empty),
            cmocka_unit_test(test_failed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
