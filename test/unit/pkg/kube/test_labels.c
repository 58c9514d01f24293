/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/labels.h"
#include "util/macro.h"

/* A label map built from "k=v" strings (sorted as kube_kvs requires). */
typedef struct labels {
        kube_kv items[16];
        char buf[16][128];
        kube_kvs kvs;
} labels;

static int cmp_kv(const void *a, const void *b) {
        return strcmp(((const kube_kv *)a)->key, ((const kube_kv *)b)->key);
}

static void labels_set(labels *l, const char *const *pairs) {
        size_t n = 0;
        for (; pairs[n]; n++) {
                assert_true(n < 16);
                snprintf(l->buf[n], sizeof(l->buf[n]), "%s", pairs[n]);
                char *eq = strchr(l->buf[n], '=');
                assert_non_null(eq);
                *eq = 0;
                l->items[n] = (kube_kv){.key = l->buf[n], .value = eq + 1};
        }
        qsort(l->items, n, sizeof(kube_kv), cmp_kv);
        l->kvs = (kube_kvs){.items = l->items, .n = n};
}

#define LABELS(l, ...) labels_set((l), (const char *const[]){__VA_ARGS__, NULL})

static kube_selector *parse_ok(const char *json) {
        json_object *o = json_tokener_parse(json);
        assert_non_null(o);
        kube_selector *s = NULL;
        char *err = NULL;
        int r = kube_selector_parse(o, &s, &err);
        if (r < 0) fail_msg("parse of %s failed: %d %s", json, r, err ? err : "");
        assert_null(err);
        json_object_put(o);
        return s;
}

/* Expects failure with code want and a message containing substring. */
static void parse_fail(const char *json, int want, const char *substring) {
        json_object *o = json_tokener_parse(json);
        assert_non_null(o);
        kube_selector *s = (kube_selector *)0x1;
        char *err = NULL;
        int r = kube_selector_parse(o, &s, &err);
        json_object_put(o);
        if (r != want) fail_msg("%s: got %d want %d (%s)", json, r, want, err ? err : "-");
        assert_ptr_equal(s, (kube_selector *)0x1); /* untouched on failure */
        assert_non_null(err);
        if (!strstr(err, substring))
                fail_msg("%s: message \"%s\" lacks \"%s\"", json, err, substring);
        free(err);
        /* reterr is optional */
        o = json_tokener_parse(json);
        assert_int_equal(kube_selector_parse(o, &s, NULL), want);
        json_object_put(o);
}

static void check_string(const kube_selector *s, const char *want) {
        char *str = NULL;
        assert_int_equal(kube_selector_to_string(s, &str), 0);
        assert_string_equal(str, want);
        free(str);
}

static void test_key_validate(void **state) {
        static const char *const good[] = {
            "a",
            "app",
            "app.kubernetes.io/name",
            "example.com/a_b.c-d",
            "A",
            "Z9",
            "pullpolicy.io/policy",
            "a-b.c/x",
            "x/Y_z",
            "0",
            "a.b-c_d",
        };
        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                if (kube_label_key_validate(good[i]) != 0) fail_msg("rejected %s", good[i]);
        static const char *const bad[] = {
            "",         "/a",       "a/",    "-a",         "a-",     "_a",
            "a.",       "A.com/x",  "a/b/c", "a b",        "a..b/c", "-a.com/x",
            "a.com-/x", "\xc3\xa9", "a=b",   "ex ample/x", ".a/x",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (kube_label_key_validate(bad[i]) != -EINVAL) fail_msg("accepted %s", bad[i]);
        assert_int_equal(kube_label_key_validate(NULL), -EINVAL);

        char k[400];
        memset(k, 'n', 63);
        k[63] = 0;
        assert_int_equal(kube_label_key_validate(k), 0);
        k[63] = 'n', k[64] = 0;
        assert_int_equal(kube_label_key_validate(k), -EINVAL);
        /* a 253-byte prefix is fine, 254 is not */
        memset(k, 'p', 253);
        strcpy(k + 253, "/name");
        assert_int_equal(kube_label_key_validate(k), 0);
        memset(k, 'p', 254);
        strcpy(k + 254, "/name");
        assert_int_equal(kube_label_key_validate(k), -EINVAL);
}

static void test_value_validate(void **state) {
        assert_int_equal(kube_label_value_validate(""), 0);
        assert_int_equal(kube_label_value_validate("a"), 0);
        assert_int_equal(kube_label_value_validate("a_b.c-D9"), 0);
        assert_int_equal(kube_label_value_validate("-a"), -EINVAL);
        assert_int_equal(kube_label_value_validate("a-"), -EINVAL);
        assert_int_equal(kube_label_value_validate("a/b"), -EINVAL);
        assert_int_equal(kube_label_value_validate("a b"), -EINVAL);
        assert_int_equal(kube_label_value_validate(NULL), -EINVAL);
        char v[80];
        memset(v, 'v', 63);
        v[63] = 0;
        assert_int_equal(kube_label_value_validate(v), 0);
        v[63] = 'v', v[64] = 0;
        assert_int_equal(kube_label_value_validate(v), -EINVAL);
}

static void test_empty_matches_everything(void **state) {
        kube_selector *s = parse_ok("{}");
        labels l;
        assert_true(kube_selector_is_empty(s));
        assert_true(kube_selector_matches(s, NULL));
        LABELS(&l, "a=b");
        assert_true(kube_selector_matches(s, &l.kvs));
        check_string(s, "");
        kube_selector_free(s);

        /* JSON nulls and unknown members count as absent */
        s = parse_ok("{\"matchLabels\":null,\"matchExpressions\":null,\"other\":1}");
        assert_true(kube_selector_is_empty(s));
        assert_true(kube_selector_matches(s, &l.kvs));
        kube_selector_free(s);
        s = parse_ok("{\"matchLabels\":{},\"matchExpressions\":[]}");
        assert_true(kube_selector_is_empty(s));
        kube_selector_free(s);
}

static void test_null_matches_nothing(void **state) {
        labels l;
        LABELS(&l, "a=b");
        assert_false(kube_selector_matches(NULL, &l.kvs));
        assert_false(kube_selector_matches(NULL, NULL));
        assert_false(kube_selector_is_empty(NULL));
        assert_null(kube_selector_free(NULL));
}

static void test_match_labels(void **state) {
        kube_selector *s = parse_ok("{\"matchLabels\":{\"team\":\"a\",\"env\":\"prod\"}}");
        labels l;
        LABELS(&l, "team=a", "env=prod", "x=y");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "team=a");
        assert_false(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "team=a", "env=dev");
        assert_false(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "team=A", "env=prod");
        assert_false(kube_selector_matches(s, &l.kvs)); /* case matters */
        assert_false(kube_selector_matches(s, NULL));
        check_string(s, "env=prod,team=a");
        kube_selector_free(s);

        /* an empty value matches only the empty value */
        s = parse_ok("{\"matchLabels\":{\"flag\":\"\"}}");
        LABELS(&l, "flag=");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "flag=x");
        assert_false(kube_selector_matches(s, &l.kvs));
        check_string(s, "flag=");
        kube_selector_free(s);
}

static void test_in(void **state) {
        kube_selector *s = parse_ok("{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\","
                                    "\"values\":[\"web\",\"api\",\"web\"]}]}");
        labels l;
        LABELS(&l, "tier=web");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "tier=api");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "tier=db");
        assert_false(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "other=web");
        assert_false(kube_selector_matches(s, &l.kvs));
        assert_false(kube_selector_matches(s, NULL));
        check_string(s, "tier in (api,web)"); /* sorted, duplicates dropped */
        kube_selector_free(s);
}

static void test_not_in(void **state) {
        kube_selector *s =
            parse_ok("{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\","
                     "\"values\":[\"db\"]}]}");
        labels l;
        LABELS(&l, "tier=web");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "tier=db");
        assert_false(kube_selector_matches(s, &l.kvs));
        /* NotIn holds when the label is absent (apiserver semantics) */
        LABELS(&l, "x=db");
        assert_true(kube_selector_matches(s, &l.kvs));
        assert_true(kube_selector_matches(s, NULL));
        check_string(s, "tier notin (db)");
        kube_selector_free(s);
}

static void test_exists(void **state) {
        kube_selector *s =
            parse_ok("{\"matchExpressions\":[{\"key\":\"pulls\",\"operator\":\"Exists\"}]}");
        labels l;
        LABELS(&l, "pulls=");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "pulls=true");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "pull=true");
        assert_false(kube_selector_matches(s, &l.kvs));
        check_string(s, "pulls");
        kube_selector_free(s);

        /* explicit null or empty values are fine for Exists */
        s = parse_ok("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\","
                     "\"values\":[]},{\"key\":\"b\",\"operator\":\"Exists\",\"values\":null}]}");
        assert_int_equal(s->n_reqs, 2);
        kube_selector_free(s);
}

static void test_does_not_exist(void **state) {
        kube_selector *s = parse_ok("{\"matchExpressions\":[{\"key\":\"example.com/legacy\","
                                    "\"operator\":\"DoesNotExist\"}]}");
        labels l;
        LABELS(&l, "example.com/legacy=");
        assert_false(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "legacy=1");
        assert_true(kube_selector_matches(s, &l.kvs));
        assert_true(kube_selector_matches(s, NULL));
        check_string(s, "!example.com/legacy");
        kube_selector_free(s);
}

static void test_combined_and_sorted(void **state) {
        kube_selector *s =
            parse_ok("{\"matchLabels\":{\"b\":\"2\",\"a\":\"1\"},\"matchExpressions\":["
                     "{\"key\":\"c\",\"operator\":\"In\",\"values\":[\"y\",\"x\"]},"
                     "{\"key\":\"d\",\"operator\":\"DoesNotExist\"},"
                     "{\"key\":\"a\",\"operator\":\"Exists\"}]}");
        /* sorted by key; for equal keys matchLabels first, then in input order */
        check_string(s, "a=1,a,b=2,c in (x,y),!d");
        labels l;
        LABELS(&l, "a=1", "b=2", "c=x");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "a=1", "b=2", "c=x", "d=");
        assert_false(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "a=1", "b=2", "c=z");
        assert_false(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "a=2", "b=2", "c=x");
        assert_false(kube_selector_matches(s, &l.kvs));

        char *q = NULL;
        assert_int_equal(kube_selector_to_query(s, &q), 0);
        assert_string_equal(q, "a%3D1%2Ca%2Cb%3D2%2Cc%20in%20%28x%2Cy%29%2C%21d");
        free(q);

        kube_selector *c = NULL;
        assert_int_equal(kube_selector_copy(s, &c), 0);
        assert_ptr_not_equal(c, s);
        check_string(c, "a=1,a,b=2,c in (x,y),!d");
        LABELS(&l, "a=1", "b=2", "c=y");
        assert_true(kube_selector_matches(c, &l.kvs));
        kube_selector_free(c);
        kube_selector_free(s);

        /* the same key twice in expressions: both must hold */
        s = parse_ok("{\"matchExpressions\":["
                     "{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]},"
                     "{\"key\":\"k\",\"operator\":\"NotIn\",\"values\":[\"a\"]}]}");
        LABELS(&l, "k=b");
        assert_true(kube_selector_matches(s, &l.kvs));
        LABELS(&l, "k=a");
        assert_false(kube_selector_matches(s, &l.kvs));
        kube_selector_free(s);
}

static void test_copy_empty(void **state) {
        kube_selector *s = parse_ok("{}"), *c = NULL;
        assert_int_equal(kube_selector_copy(s, &c), 0);
        assert_true(kube_selector_is_empty(c));
        kube_selector_free(c);
        kube_selector_free(s);
        assert_int_equal(kube_selector_copy(NULL, &c), -EINVAL);
}

static void test_parse_errors(void **state) {
        parse_fail("[]", -EINVAL, "must be an object");
        parse_fail("\"a=b\"", -EINVAL, "must be an object");
        parse_fail("{\"matchLabels\":[]}", -EINVAL, "matchLabels must be an object");
        parse_fail("{\"matchLabels\":{\"a\":1}}", -EINVAL, "the value of \"a\" must be a string");
        parse_fail("{\"matchLabels\":{\"a\":null}}", -EINVAL, "must be a string");
        parse_fail("{\"matchLabels\":{\"-a\":\"b\"}}", -EINVAL, "\"-a\" is not a valid label key");
        parse_fail("{\"matchLabels\":{\"a\":\"b c\"}}", -EINVAL,
                   "\"b c\" is not a valid label value");
        parse_fail("{\"matchExpressions\":{}}", -EINVAL, "matchExpressions must be a list");
        parse_fail("{\"matchExpressions\":[1]}", -EINVAL, "matchExpressions[0] must be an object");
        parse_fail("{\"matchExpressions\":[{\"operator\":\"Exists\"}]}", -EINVAL,
                   "matchExpressions[0]: key is required");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\"}]}", -EINVAL, "operator is required");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},"
                   "{\"key\":\"a\",\"operator\":\"in\",\"values\":[\"x\"]}]}",
                   -EINVAL, "matchExpressions[1]: unknown operator \"in\"");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", -EINVAL,
                   "operator In needs at least one value");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[]}]}",
                   -EINVAL, "operator NotIn needs at least one value");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\","
                   "\"values\":[\"x\"]}]}",
                   -EINVAL, "operator Exists must not have values");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"DoesNotExist\","
                   "\"values\":[\"x\"]}]}",
                   -EINVAL, "DoesNotExist must not have values");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":\"x\"}]}",
                   -EINVAL, "values must be a list of strings");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[1]}]}",
                   -EINVAL, "values must be a list of strings");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\","
                   "\"values\":[\"-x\"]}]}",
                   -EINVAL, "\"-x\" is not a valid label value");
        parse_fail("{\"matchExpressions\":[{\"key\":\"a/b/c\",\"operator\":\"Exists\"}]}", -EINVAL,
                   "\"a/b/c\" is not a valid label key");
        parse_fail("{\"matchExpressions\":[{\"key\":7,\"operator\":\"Exists\"}]}", -EINVAL,
                   "key is required");
        /* non-printable input is not echoed as is */
        parse_fail("{\"matchLabels\":{\"a\\u0001b\":\"x\"}}", -EINVAL, "\"a?b\"");
}

static void test_limits(void **state) {
        char buf[8192];
        size_t o = 0;
        /* 64 labels parse, 65 do not */
        for (int n = 64; n <= 65; n++) {
                o = (size_t)snprintf(buf, sizeof(buf), "{\"matchLabels\":{");
                for (int i = 0; i < n; i++)
                        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"k%d\":\"v\"",
                                              i ? "," : "", i);
                snprintf(buf + o, sizeof(buf) - o, "}}");
                if (n == 64) {
                        kube_selector *s = parse_ok(buf);
                        assert_int_equal(s->n_reqs, 64);
                        kube_selector_free(s);
                } else {
                        parse_fail(buf, -E2BIG, "at most 64 labels");
                }
        }
        for (int n = 64; n <= 65; n++) {
                o = (size_t)snprintf(buf, sizeof(buf), "{\"matchExpressions\":[");
                for (int i = 0; i < n; i++)
                        o += (size_t)snprintf(buf + o, sizeof(buf) - o,
                                              "%s{\"key\":\"k%d\",\"operator\":\"Exists\"}",
                                              i ? "," : "", i);
                snprintf(buf + o, sizeof(buf) - o, "]}");
                if (n == 64) {
                        kube_selector *s = parse_ok(buf);
                        assert_int_equal(s->n_reqs, 64);
                        kube_selector_free(s);
                } else {
                        parse_fail(buf, -E2BIG, "at most 64 expressions");
                }
        }
        for (int n = 64; n <= 65; n++) {
                o = (size_t)snprintf(buf, sizeof(buf),
                                     "{\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\","
                                     "\"values\":[");
                for (int i = 0; i < n; i++)
                        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"v%d\"", i ? "," : "",
                                              i);
                snprintf(buf + o, sizeof(buf) - o, "]}]}");
                if (n == 64) {
                        kube_selector *s = parse_ok(buf);
                        assert_int_equal(s->reqs[0].n_values, 64);
                        kube_selector_free(s);
                } else {
                        parse_fail(buf, -E2BIG, "at most 64 values");
                }
        }
}

static void test_bad_args(void **state) {
        kube_selector *s = NULL;
        char *str = NULL;
        assert_int_equal(kube_selector_parse(NULL, &s, NULL), -EINVAL);
        json_object *o = json_object_new_object();
        assert_int_equal(kube_selector_parse(o, NULL, NULL), -EINVAL);
        json_object_put(o);
        assert_int_equal(kube_selector_to_string(NULL, &str), -EINVAL);
        assert_int_equal(kube_selector_to_query(NULL, &str), -EINVAL);
        assert_null(str);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_key_validate),
            cmocka_unit_test(test_value_validate),
            cmocka_unit_test(test_empty_matches_everything),
            cmocka_unit_test(test_null_matches_nothing),
            cmocka_unit_test(test_match_labels),
            cmocka_unit_test(test_in),
            cmocka_unit_test(test_not_in),
            cmocka_unit_test(test_exists),
            cmocka_unit_test(test_does_not_exist),
            cmocka_unit_test(test_combined_and_sorted),
            cmocka_unit_test(test_copy_empty),
            cmocka_unit_test(test_parse_errors),
            cmocka_unit_test(test_limits),
            cmocka_unit_test(test_bad_args),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
