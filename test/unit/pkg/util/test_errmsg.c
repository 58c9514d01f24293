/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/errmsg.h"

static void test_fail(void **state) {
        char *err = NULL;
        assert_int_equal(errmsg_fail(&err, -EINVAL, "%s[%d] is bad", "items", 3), -EINVAL);
        assert_string_equal(err, "items[3] is bad");
        free(err);
        /* no place for a message: only the code */
        assert_int_equal(errmsg_fail(NULL, -E2BIG, "at most %d", 5), -E2BIG);
}

static void test_quote(void **state) {
        char q[ERRMSG_QUOTE_SIZE];
        errmsg_quote("plain text", q);
        assert_string_equal(q, "plain text");
        errmsg_quote("", q);
        assert_string_equal(q, "");
        /* control characters, quotes, DEL and non-ASCII bytes become '?' */
        errmsg_quote("a\"b\nc\x7f\xc3\xa9", q);
        assert_string_equal(q, "a?b?c???");

        char s[200];
        memset(s, 'x', sizeof(s));
        s[ERRMSG_QUOTE_MAX] = 0;
        errmsg_quote(s, q);
        assert_int_equal(strlen(q), ERRMSG_QUOTE_MAX); /* exactly the limit: no "..." */
        s[ERRMSG_QUOTE_MAX] = 'y';
        s[sizeof(s) - 1] = 0;
        errmsg_quote(s, q);
        assert_int_equal(strlen(q), ERRMSG_QUOTE_MAX + 3);
        assert_int_equal(q[ERRMSG_QUOTE_MAX - 1], 'x');
        assert_string_equal(q + ERRMSG_QUOTE_MAX, "...");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fail),
            cmocka_unit_test(test_quote),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
