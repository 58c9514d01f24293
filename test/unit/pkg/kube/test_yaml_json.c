/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/yaml_json.h"
#include "util/macro.h"

/* Parses y and compares the compact JSON rendering with expect. */
static void expect_json(const char *y, const yaml_json_limits *lim, const char *expect) {
        struct json_object *o = NULL;
        char *err = NULL;
        int r = yaml_json_parse(y, strlen(y), lim, &o, &err);
        if (r < 0) fail_msg("parse failed: %d %s", r, err);
        const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE)
                          : "(none)";
        assert_string_equal(s, expect);
        json_object_put(o);
}

static int expect_error(const char *y, const yaml_json_limits *lim, const char *msg_part) {
        struct json_object *o = (struct json_object *)0x1;
        char *err = NULL;
        int r = yaml_json_parse(y, strlen(y), lim, &o, &err);
        assert_true(r < 0);
        assert_ptr_equal(o, (struct json_object *)0x1);
        assert_non_null(err);
        if (!strstr(err, msg_part)) fail_msg("error \"%s\" lacks \"%s\"", err, msg_part);
        free(err);
        return r;
}

static void test_scalars(void **state) {
        /* YAML 1.2 core schema: "yes" is a string; an integer too big for int64 is a float. */
        expect_json("a: 1\nb: -7\nc: 0x1F\nd: 0o17\ne: 1.5\nf: 2e3\ng: true\nh: False\ni: null\n"
                    "j: ~\nk:\nl: yes\nm: \"1\"\nn: 'true'\no: text with spaces\np: .inf\n"
                    "q: 99999999999999999999\nr: 007\ns: +3\n",
                    NULL,
                    "{\"a\":1,\"b\":-7,\"c\":31,\"d\":15,\"e\":1.5,\"f\":2000.0,\"g\":true,"
                    "\"h\":false,\"i\":null,\"j\":null,\"k\":null,\"l\":\"yes\",\"m\":\"1\","
                    "\"n\":\"true\",\"o\":\"text with spaces\",\"p\":\".inf\","
                    "\"q\":1e+20,\"r\":7,\"s\":3}");
}

static void test_tags_and_blocks(void **state) {
        expect_json("a: !!str 12\nb: !!int \"42\"\nc: !!bool \"true\"\nd: !!float 3\n"
                    "e: !custom 5\nf: |\n  line1\n  line2\ng: >\n  folded\n  text\n",
                    NULL,
                    "{\"a\":\"12\",\"b\":42,\"c\":true,\"d\":3.0,\"e\":5,"
                    "\"f\":\"line1\\nline2\\n\",\"g\":\"folded text\\n\"}");
        expect_error("a: !!int abc\n", NULL, "scalar does not match its tag");
        expect_error("a: !!bool maybe\n", NULL, "scalar does not match its tag");
}

static void test_structure(void **state) {
        expect_json("list:\n- a\n- {x: 1, y: [1, 2]}\n- - nested\nempty_map: {}\nempty_list: []\n",
                    NULL,
                    "{\"list\":[\"a\",{\"x\":1,\"y\":[1,2]},[\"nested\"]],\"empty_map\":{},"
                    "\"empty_list\":[]}");
        expect_json("", NULL, "(none)");
        expect_json("# only a comment\n", NULL, "(none)");
        expect_json("---\nfoo\n...\n", NULL, "\"foo\"");
        expect_json("[1, 2]", NULL, "[1,2]");

        expect_error("a: 1\na: 2\n", NULL, "line 2 column 1: duplicate key \"a\"");
        expect_error("? [a, b]\n: 1\n", NULL, "mapping keys must be scalars");
        expect_error("a: [1, 2\n", NULL, "line ");
        expect_error("a: 1\n---\nb: 2\n", NULL, "more than one document");
        expect_error("\t- x\n", NULL, "line 1");
}

static void test_multi_document(void **state) {
        const char *y = "a: 1\n---\n---\n- b\n";
        struct json_object *o = NULL;
        char *err = NULL;
        assert_int_equal(yaml_json_parse_all(y, strlen(y), NULL, &o, &err), 0);
        assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                            "[{\"a\":1},null,[\"b\"]]");
        json_object_put(o);
        assert_int_equal(yaml_json_parse_all("", 0, NULL, &o, &err), 0);
        assert_int_equal(json_object_array_length(o), 0);
        json_object_put(o);
}

static void test_aliases(void **state) {
        const char *y = "base: &b {x: 1}\nuse: *b\n";
        /* Refused by default. */
        assert_int_equal(expect_error(y, NULL, "line 1 column 7: anchors are not allowed"),
                         -EBADMSG);
        expect_error("a: *nope\n", NULL, "aliases are not allowed");

        yaml_json_limits lim = {.allow_aliases = true};
        expect_json(y, &lim, "{\"base\":{\"x\":1},\"use\":{\"x\":1}}");
        expect_error("a: *nope\n", &lim, "undefined alias");
        /* An alias to an ancestor would be a cycle: the anchor is not defined yet. */
        expect_error("a: &a [1, *a]\n", &lim, "undefined alias");

        /* The copy is deep: changing one does not change the other. */
        struct json_object *o = NULL;
        assert_int_equal(yaml_json_parse(y, strlen(y), &lim, &o, NULL), 0);
        struct json_object *base = json_object_object_get(o, "base");
        json_object_object_add(base, "x", json_object_new_int(2));
        assert_int_equal(
            json_object_get_int(json_object_object_get(json_object_object_get(o, "use"), "x")), 1);
        json_object_put(o);
}

static void test_alias_bomb(void **state) {
        /* 9^6 = 531441 leaves once expanded, from a few hundred bytes. */
        const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
                           "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                           "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                           "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                           "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                           "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
        yaml_json_limits lim = {.allow_aliases = true, .max_nodes = 100000};
        assert_int_equal(expect_error(bomb, &lim, "more than 100000 nodes"), -E2BIG);

        /* A few aliases within the budget are fine. */
        const char *small = "a: &a [x, x]\nb: [*a, *a]\n";
        expect_json(small, &lim, "{\"a\":[\"x\",\"x\"],\"b\":[[\"x\",\"x\"],[\"x\",\"x\"]]}");
}

static void test_limits(void **state) {
        yaml_json_limits lim = {.max_depth = 5};
        expect_json("a: {b: {c: [1]}}", &lim, "{\"a\":{\"b\":{\"c\":[1]}}}");
        assert_int_equal(expect_error("a: {b: {c: {d: {e: 1}}}}", &lim, "nesting deeper than 5"),
                         -E2BIG);

        yaml_json_limits bytes = {.max_bytes = 10};
        assert_int_equal(expect_error("a: 12345678901", &bytes, "input larger than 10 bytes"),
                         -E2BIG);

        yaml_json_limits nodes = {.max_nodes = 5};
        assert_int_equal(expect_error("[1, 2, 3, 4, 5, 6]", &nodes, "more than 5 nodes"), -E2BIG);

        /* The default depth stops a deeply nested flow sequence early. */
        size_t n = 10000;
        char *deep = malloc(2 * n + 1);
        assert_non_null(deep);
        memset(deep, '[', n);
        memset(deep + n, ']', n);
        deep[2 * n] = 0;
        assert_int_equal(expect_error(deep, NULL, "nesting deeper than 64"), -E2BIG);
        free(deep);

        /* A NUL byte inside a key is refused; one in a quoted value is kept. */
        const char nul_key[] = "\"a\\0b\": 1\n";
        expect_error(nul_key, NULL, "NUL byte in a mapping key");
        struct json_object *o = NULL;
        const char nul_val[] = "a: \"x\\0y\"\n";
        assert_int_equal(yaml_json_parse(nul_val, strlen(nul_val), NULL, &o, NULL), 0);
        assert_int_equal(json_object_get_string_len(json_object_object_get(o, "a")), 3);
        json_object_put(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_scalars),   cmocka_unit_test(test_tags_and_blocks),
            cmocka_unit_test(test_structure), cmocka_unit_test(test_multi_document),
            cmocka_unit_test(test_aliases),   cmocka_unit_test(test_alias_bomb),
            cmocka_unit_test(test_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
