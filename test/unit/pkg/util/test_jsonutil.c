/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/jsonutil.h"

static void test_member(void **state) {
        json_object *o = json_tokener_parse(
            "{\"s\":\"text\",\"n\":null,\"i\":7,\"o\":{\"x\":\"y\"},\"e\":\"\"}");
        assert_non_null(o);

        assert_non_null(jsonutil_member(o, "o"));
        assert_string_equal(jsonutil_member_str(jsonutil_member(o, "o"), "x"), "y");
        assert_ptr_equal(jsonutil_member(o, "i"), json_object_object_get(o, "i"));
        /* absent and null are alike */
        assert_null(jsonutil_member(o, "n"));
        assert_null(jsonutil_member(o, "missing"));
        /* not an object, or no object at all */
        assert_null(jsonutil_member(jsonutil_member(o, "i"), "x"));
        assert_null(jsonutil_member(NULL, "x"));

        assert_string_equal(jsonutil_member_str(o, "s"), "text");
        assert_string_equal(jsonutil_member_str(o, "e"), "");
        assert_null(jsonutil_member_str(o, "i")); /* not a string */
        assert_null(jsonutil_member_str(o, "o"));
        assert_null(jsonutil_member_str(o, "n"));
        assert_null(jsonutil_member_str(o, "missing"));
        assert_null(jsonutil_member_str(NULL, "s"));
        json_object_put(o);
}

static json_object *parse(const char *text, int depth) {
        return jsonutil_parse(text, strlen(text), depth);
}

static void test_parse(void **state) {
        static const char *const good[] = {
            "{}", "[1,2]", "\"s\"", "3 ", " {\"a\":1}", "{\"a\":1} \t\r\n", "true\n"};
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                json_object *o = parse(good[i], 10);
                if (!o) fail_msg("%s should parse", good[i]);
                json_object_put(o);
        }
        /* "null" parses to JSON null, which json-c represents as NULL */
        /* a bare number or literal that ends the text is unfinished to json-c (below) */
        assert_null(parse("null", 10));

        static const char *const bad[] = {"",      "{",    "{} {}", "{}x", "{\"a\"}",
                                          "{} \v", "{}\f", "tru",   "3",   "true"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                json_object *o = parse(bad[i], 10);
                if (o) fail_msg("\"%s\" should not parse", bad[i]);
        }

        /* depth as json-c counts it: [[]] takes two levels, [[1]] three */
        json_object *o = parse("[[]]", 2);
        assert_non_null(o);
        json_object_put(o);
        assert_null(parse("[[]]", 1));
        o = parse("[[1]]", 3);
        assert_non_null(o);
        json_object_put(o);
        assert_null(parse("[[1]]", 2));

        /* only len bytes are read: a value cut short is malformed, one followed by junk
         * beyond len is whole */
        assert_null(jsonutil_parse("{\"a\":1}", 5, 10));
        o = jsonutil_parse("{\"a\":1}junk", 7, 10);
        assert_non_null(o);
        assert_int_equal(json_object_get_int(json_object_object_get(o, "a")), 1);
        json_object_put(o);
}

static void test_add(void **state) {
        json_object *o = json_object_new_object();
        assert_non_null(o);
        assert_int_equal(jsonutil_add(o, "a", json_object_new_string("x")), 0);
        assert_string_equal(jsonutil_member_str(o, "a"), "x");
        /* replaces an existing member */
        assert_int_equal(jsonutil_add(o, "a", json_object_new_int(2)), 0);
        assert_int_equal(json_object_get_int(jsonutil_member(o, "a")), 2);
        /* a value that could not be made is an allocation failure */
        assert_int_equal(jsonutil_add(o, "b", NULL), -ENOMEM);
        assert_null(jsonutil_member(o, "b"));
        assert_int_equal(json_object_object_length(o), 1);
        json_object_put(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_member),
            cmocka_unit_test(test_parse),
            cmocka_unit_test(test_add),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
